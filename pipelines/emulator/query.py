"""Parsing of the collection query string: ``page``, ``limit``, ``filter``, ``sort``, ``dir``,
``group_by``, ``include`` and ``fields[NAME]``, the same for every collection.

Parsing is kept apart from evaluation (``store.py``) so that every malformed request is turned
into a :class:`QueryError` (HTTP 400 with the API's ``{message, errors}`` envelope) before any
data is touched, and never into a 500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from pipelines.emulator.fields import CollectionSpec, FieldType

# The documented maximum page size: a larger `limit` is served this many records (the page is
# shorter than asked, as the live API's seems to be), unless the emulator is told another cap.
PAGE_CAP = 5000
# The real default page size is undocumented; clients must always send `limit`.
DEFAULT_LIMIT = 20

# Operator aliases of the API introduction, mapped to one canonical name each.
OPERATORS: dict[str, str] = {
    "eq": "eq",
    "=": "eq",
    "ne": "ne",
    "neq": "ne",
    "<>": "ne",
    "!=": "ne",
    "lt": "lt",
    "<": "lt",
    "lte": "lte",
    "<=": "lte",
    "gt": "gt",
    ">": "gt",
    "gte": "gte",
    ">=": "gte",
    "in": "in",
    "like": "like",
    "notlike": "notlike",
}

FILTERABLE_TYPES: frozenset[FieldType] = frozenset(
    {"int", "str", "number", "datetime", "epoch", "bool"}
)


class QueryError(Exception):
    """A request the API answers with HTTP 400 and ``{"message": ..., "errors": [...]}``."""

    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


@dataclass(frozen=True)
class Condition:
    """One filter entry, its value already converted to the field's type."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class KeyScope:
    """The records a key may see: those whose ``owners`` fields name ``user_id``, whose
    ``number_fields`` hold one of the user's ``numbers``, or whose ``shared`` field is true;
    none at all when ``nobody``."""

    owners: tuple[str, ...]
    user_id: int
    number_fields: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    shared: str | None = None
    nobody: bool = False


@dataclass(frozen=True)
class Query:
    """A parsed collection request.

    Attributes:
        sort: the field to sort by; None is storage order (ascending ``id``).
        limit: the page size served, ``limit`` as asked but at most the page cap.
        include: the ``include=`` names, each one of the collection's declared includes.
        sparse: ``fields[NAME]=a,b``: the keys kept in each included record of ``NAME``.
        scope: the records the request's key may see; None for all (set by the caller, from
            the key, not from the query string).
    """

    conditions: tuple[Condition, ...] = ()
    sort: str | None = None
    descending: bool = True
    page: int = 1
    limit: int = DEFAULT_LIMIT
    group_by: str | None = None
    include: tuple[str, ...] = ()
    sparse: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scope: KeyScope | None = None


def parse_datetime(value: str) -> int:
    """Parse an API timestamp (``YYYY-MM-DD HH:MM:SS`` or a bare ``YYYY-MM-DD``) to epoch seconds.

    Raises:
        ValueError: the text is neither form.
    """
    text = value.strip()
    fmt = "%Y-%m-%d" if len(text) == 10 else "%Y-%m-%d %H:%M:%S"
    parsed = datetime.strptime(text.replace("T", " "), fmt).replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _invalid(field: str, value: Any) -> QueryError:
    return QueryError(
        "Filtration error",
        [f"SF0010 This value is not valid: {value!r} for property '{field}'"],
    )


def convert_value(field: str, ftype: FieldType, value: Any) -> Any:
    """Convert one filter value to the type the field is compared with.

    Returns ``None`` for a JSON null (``eq``/``ne`` null mean IS NULL / IS NOT NULL).
    """
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise _invalid(field, value)
    if ftype in ("int", "number"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _invalid(field, value) from None
        # float() also reads "nan", "inf" and "1e999": no column holds those, and NaN would
        # compare unequal to everything (so "ne" would match every row).
        if not math.isfinite(number):
            raise _invalid(field, value)
        return number
    if ftype == "bool":
        text = str(value).strip().lower()
        if text in ("1", "true"):
            return 1.0
        if text in ("0", "false"):
            return 0.0
        raise _invalid(field, value)
    if ftype == "datetime":
        if not isinstance(value, str):
            raise _invalid(field, value)
        try:
            return parse_datetime(value)
        except ValueError:
            raise _invalid(field, value) from None
    if ftype == "epoch":
        # Unix seconds; a date in the API's text form is read as its instant too [guess].
        if isinstance(value, bool):
            raise _invalid(field, value)
        if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
            try:
                return parse_datetime(value)
            except ValueError:
                raise _invalid(field, value) from None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _invalid(field, value) from None
        if not math.isfinite(number):
            raise _invalid(field, value)
        return number
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _parse_int(name: str, raw: str | None, default: int) -> int:
    """A positive integer parameter (``page``, ``limit``), or its default when absent."""
    if raw is None or raw == "":
        return default
    try:
        number = int(raw)
    except ValueError:
        raise QueryError(
            "Invalid parameter", [f"'{name}' must be an integer, got {raw!r}"]
        ) from None
    if number < 1:
        raise QueryError("Invalid parameter", [f"'{name}' must be at least 1, got {number}"])
    return number


def parse_query(params: dict[str, str], spec: CollectionSpec, page_cap: int = PAGE_CAP) -> Query:
    """Turn query-string parameters into a :class:`Query`.

    Args:
        params: the decoded query string (last value wins for repeated keys).
        spec: the collection's declaration (its fields and includes).
        page_cap: the largest page served; a larger ``limit`` is cut to it, not refused.

    Raises:
        QueryError: anything malformed, unknown or unsupported.
    """
    fields = spec.fields
    page = _parse_int("page", params.get("page"), 1)
    limit = min(_parse_int("limit", params.get("limit"), DEFAULT_LIMIT), page_cap)

    conditions: list[Condition] = []
    raw_filter = params.get("filter")
    if raw_filter:
        try:
            entries = orjson.loads(raw_filter)
        except orjson.JSONDecodeError as exc:
            raise QueryError("Filtration error", [f"filter is not valid JSON: {exc}"]) from None
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list):
            raise QueryError("Filtration error", ["filter must be a JSON array of objects"])
        for entry in entries:
            conditions.append(_parse_condition(entry, fields, spec.unfilterable))

    sort = _property(params, "sort", "sorted", fields)
    # Without a sort the emulator answers newest first (id DESC), like the official CLI's
    # default; an explicit sort without dir is ascending, as SQL's ORDER BY. A blank ``sort=``
    # counts as no sort.
    direction = (params.get("dir") or ("ASC" if sort else "DESC")).upper()
    if direction not in ("ASC", "DESC"):
        raise QueryError("Invalid parameter", [f"'dir' must be ASC or DESC, got {direction!r}"])

    group_by = _property(params, "group_by", "grouped", fields)

    include, sparse = parse_includes(params, spec)
    return Query(
        conditions=tuple(conditions),
        sort=sort,
        descending=direction == "DESC",
        page=page,
        limit=limit,
        group_by=group_by,
        include=include,
        sparse=sparse,
    )


def _property(
    params: dict[str, str], name: str, verb: str, fields: dict[str, FieldType]
) -> str | None:
    """The property a ``sort`` or ``group_by`` parameter names; None when absent or blank.

    Raises:
        QueryError: an unknown property, or one that cannot be sorted or grouped (a list).
    """
    value = params.get(name) or None
    if value is None:
        return None
    if value not in fields:
        raise QueryError("Invalid parameter", [f"Unknown {name} property '{value}'"])
    if fields[value] not in FILTERABLE_TYPES:
        raise QueryError("Invalid parameter", [f"Property '{value}' cannot be {verb}"])
    return value


def parse_includes(
    params: dict[str, str], spec: CollectionSpec
) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """``include=a,b`` and ``fields[a]=x,y``: what to include, and which keys of each.

    Keys named in ``fields[...]`` that a record does not have are left out, not refused.

    Raises:
        QueryError: an ``include`` the collection does not declare.
    """
    include = tuple(name for name in (params.get("include") or "").split(",") if name)
    for name in include:
        if name not in spec.includes:
            known = ", ".join(sorted(spec.includes)) or "nothing"
            raise QueryError(
                "Invalid parameter",
                [f"Unknown include '{name}' (this collection can include: {known})"],
            )
    sparse = {
        name: tuple(key for key in (params.get(f"fields[{name}]") or "").split(",") if key)
        for name in include
        if params.get(f"fields[{name}]")
    }
    return include, sparse


def _parse_condition(
    entry: Any, fields: dict[str, FieldType], unfilterable: frozenset[str] = frozenset()
) -> Condition:
    if not isinstance(entry, dict):
        raise QueryError("Filtration error", [f"filter entry must be an object, got {entry!r}"])
    missing = [key for key in ("property", "operator") if key not in entry]
    if missing:
        raise QueryError("Filtration error", [f"filter entry lacks {', '.join(missing)}"])
    field = entry["property"]
    raw_op = entry["operator"]
    if not isinstance(field, str) or field not in fields:
        raise QueryError("Filtration error", [f"Unknown property {field!r}"])
    if not isinstance(raw_op, str) or raw_op.lower() not in OPERATORS:
        raise QueryError("Filtration error", [f"Unknown operator {raw_op!r}"])
    ftype = fields[field]
    if ftype not in FILTERABLE_TYPES or field in unfilterable:
        raise QueryError("Filtration error", [f"Property '{field}' cannot be filtered"])
    op = OPERATORS[raw_op.lower()]
    value = entry.get("value")
    if op == "in":
        if not isinstance(value, list):
            raise QueryError("Filtration error", ["operator 'in' needs an array value"])
        converted = tuple(convert_value(field, ftype, item) for item in value)
        return Condition(field, op, tuple(item for item in converted if item is not None))
    if op in ("like", "notlike"):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise _invalid(field, value)
        pattern = str(value)
        # A value without "%" matches as a substring: the official CLI sends its "partial
        # match" number filters that way, checked against the live API.
        return Condition(field, op, pattern if "%" in pattern else f"%{pattern}%")
    converted_value = convert_value(field, ftype, value)
    if converted_value is None and op not in ("eq", "ne"):
        raise _invalid(field, value)
    return Condition(field, op, converted_value)
