"""What a CDR says, as one digest that is the same whether the row comes from an API page or
back from the destination: reconcile compares the two to find corrections (a re-rated
``charge``, a moved ``calldate``) without keeping either row.

The digest covers the API's fields, i.e. every column but ``account``, ``deleted_at`` and dlt's
own, and only their non-null values, so a field absent from a page and a null column agree.
Values are put in one form first: instants in UTC, decimals as floats, JSON (objects, lists,
and text holding them, such as ``labels``) with sorted keys. Where the two sides still differ
in form only, the row is reported changed and merged again: that costs a merge, never a loss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from datetime import time as clock_time
from decimal import Decimal
from typing import Any

import orjson

from pipelines.voipstudio import settings

IGNORED_COLUMNS = frozenset({settings.ACCOUNT_COLUMN, settings.DELETED_AT_COLUMN})
DIGEST_SIZE = 16


def is_content(column: str) -> bool:
    """Whether a column of ``cdrs`` holds one of the API's fields."""
    return column not in IGNORED_COLUMNS and not column.startswith("_dlt")


def canonical(value: Any) -> Any:
    """One form for a value, whichever side it comes from (see the module docstring)."""
    if isinstance(value, datetime):
        instant = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return instant.astimezone(UTC).isoformat()
    if isinstance(value, (date, clock_time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dict, list, tuple)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        return orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS).decode()
    return value


def digest(row: Mapping[str, Any]) -> bytes:
    """The digest of one row's content (the API's fields, non-null values only)."""
    pairs = sorted(
        (name, canonical(value))
        for name, value in row.items()
        if value is not None and is_content(name)
    )
    return hashlib.blake2b(orjson.dumps(pairs), digest_size=DIGEST_SIZE).digest()


def digests(rows: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """The digest of each row."""
    return [digest(row) for row in rows]
