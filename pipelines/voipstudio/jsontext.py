"""JSON as the API may send it, decoded without losing a value, and written back exactly.

A page must never be "unreadable" because of one value in it. :func:`loads` accepts what strict
decoders refuse or silently change, keeping every value for the record-level checks to judge:

- integers of any size, exactly (orjson turns those beyond 64 bits into floats);
- numbers a double cannot hold (``1e400``) and the non-standard ``NaN`` / ``Infinity``, as
  :class:`RawNumber` (their text);
- control characters inside strings;
- bytes that are not UTF-8, the character NUL, and lone UTF-16 surrogates (``\\ud800``):
  replaced by U+FFFD, since no destination can store them (PostgreSQL refuses NUL in text).

:func:`dumps` writes such values back as JSON text, numbers in their original spelling.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1
# orjson reads integers beyond 64 bits as floats, silently: a body holding a run of 20 digits,
# or of 19 after a minus, is decoded exactly. Found with bytes.translate and bytes.find, which
# are a hundred times faster than a regular expression over a page of digits.
_DIGIT_MAP = bytes(
    ord("1") if chr(c).isdigit() and c < 128 else ord("2") if c == ord("-") else ord("0")
    for c in range(256)
)
_TWENTY_DIGITS = b"1" * 20
_MINUS_NINETEEN = b"2" + b"1" * 19
# Escapes that decode to characters no destination stores: NUL, and UTF-16 surrogates (a pair
# decodes to one character; a lone one stays a surrogate). Checked with a cheap find first.
_UNSTORABLE = re.compile(rb"\\u0000|\x00|\\u[dD][89a-fA-F]")
_UNSTORABLE_MARKERS = (b"\x00", b"\\u0000", b"\\ud", b"\\uD")
_SURROGATES = re.compile("[\ud800-\udfff\x00]")


def _long_integer(body: bytes) -> bool:
    digits = body.translate(_DIGIT_MAP)
    return _TWENTY_DIGITS in digits or _MINUS_NINETEEN in digits


def _unstorable(body: bytes) -> bool:
    if not any(marker in body for marker in _UNSTORABLE_MARKERS):
        return False
    return _UNSTORABLE.search(body) is not None


REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class RawNumber:
    """A JSON number no column type holds (beyond a double), or ``NaN`` / ``Infinity``: its text."""

    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def is_number(self) -> bool:
        """Standard JSON (``1e400``), as opposed to ``NaN``, ``Infinity``, ``-Infinity``."""
        return self.text not in ("NaN", "Infinity", "-Infinity")


@dataclass(frozen=True)
class Decoded:
    """A decoded body, and how many strings had characters replaced by U+FFFD."""

    value: Any
    repaired: int = 0


def _float(text: str) -> float | RawNumber:
    value = float(text)
    return value if math.isfinite(value) else RawNumber(text)


def loads(body: bytes) -> Decoded:
    """Decode a JSON body leniently (see the module docstring).

    Raises:
        ValueError: the body is not JSON at all (an HTML error page, a cut-off answer).
    """
    value: Any = None
    decoded = False
    if not _long_integer(body):
        try:
            value = orjson.loads(body)
            decoded = True
        except orjson.JSONDecodeError:
            pass
    repaired = 0
    if not decoded:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("utf-8", errors="replace")
            repaired = 1
        try:
            value = json.loads(text, strict=False, parse_float=_float, parse_constant=RawNumber)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"the body is not JSON: {exc}") from None
    if _unstorable(body):
        value, cleaned = _clean(value)
        repaired += cleaned
    return Decoded(value, repaired)


def _clean(value: Any) -> tuple[Any, int]:
    """``value`` with NUL and surrogates in its strings replaced; how many strings changed."""
    if isinstance(value, str):
        fixed = _SURROGATES.sub(REPLACEMENT, value)
        return fixed, int(fixed != value)
    if isinstance(value, list):
        items = [_clean(item) for item in value]
        return [item for item, _ in items], sum(count for _, count in items)
    if isinstance(value, dict):
        pairs = {key: _clean(item) for key, item in value.items()}
        fixed_keys = {_SURROGATES.sub(REPLACEMENT, key): item for key, (item, _) in pairs.items()}
        return fixed_keys, sum(count for _, count in pairs.values())
    return value, 0


def _default(value: Any) -> Any:
    if isinstance(value, RawNumber):
        # Standard JSON keeps its spelling; NaN and Infinity are not JSON: kept as text.
        return orjson.Fragment(value.text.encode()) if value.is_number else value.text
    raise TypeError(f"{type(value).__name__} is not JSON")


def _big_integers(value: Any) -> Any:
    """``value`` with integers orjson cannot write as exact JSON fragments."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (
            orjson.Fragment(str(value).encode()) if not INT64_MIN <= value <= _UINT64_MAX else value
        )
    if isinstance(value, list):
        return [_big_integers(item) for item in value]
    if isinstance(value, dict):
        return {key: _big_integers(item) for key, item in value.items()}
    return value


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON text of a decoded value, :class:`RawNumber` and big integers as spelled."""
    option = orjson.OPT_PASSTHROUGH_DATACLASS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        return orjson.dumps(value, default=_default, option=option).decode()
    except orjson.JSONEncodeError:
        return orjson.dumps(_big_integers(value), default=_default, option=option).decode()
