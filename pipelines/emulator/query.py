"""Parsing of the collection query string: ``page``, ``limit``, ``filter``, ``sort``, ``dir``,
``group_by``.

Parsing is kept apart from evaluation (``store.py``) so that every malformed request is turned
into a :class:`QueryError` (HTTP 400 with the API's ``{message, errors}`` envelope) before any
data is touched, and never into a 500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from pipelines.emulator.fields import FieldType

MAX_LIMIT = 5000
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

FILTERABLE_TYPES: frozenset[FieldType] = frozenset({"int", "str", "number", "datetime", "bool"})


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
class Query:
    """A parsed collection request."""

    conditions: tuple[Condition, ...] = ()
    sort: str = "id"
    descending: bool = True
    page: int = 1
    limit: int = DEFAULT_LIMIT
    group_by: str | None = None


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
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _parse_int(name: str, raw: str | None, default: int, low: int, high: int | None) -> int:
    if raw is None or raw == "":
        return default
    try:
        number = int(raw)
    except ValueError:
        raise QueryError(
            "Invalid parameter", [f"'{name}' must be an integer, got {raw!r}"]
        ) from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise QueryError("Invalid parameter", [f"'{name}' must be {bound}, got {number}"])
    return number


def parse_query(params: dict[str, str], fields: dict[str, FieldType]) -> Query:
    """Turn query-string parameters into a :class:`Query`.

    Args:
        params: the decoded query string (last value wins for repeated keys).
        fields: the collection's field types.

    Raises:
        QueryError: anything malformed, unknown or unsupported.
    """
    page = _parse_int("page", params.get("page"), 1, 1, None)
    limit = _parse_int("limit", params.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)

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
            conditions.append(_parse_condition(entry, fields))

    sort = params.get("sort") or "id"
    if sort not in fields:
        raise QueryError("Invalid parameter", [f"Unknown sort property '{sort}'"])
    if fields[sort] not in FILTERABLE_TYPES:
        raise QueryError("Invalid parameter", [f"Property '{sort}' cannot be sorted"])
    # Without a sort the emulator answers newest first (id DESC), like the official CLI's
    # default; an explicit sort without dir is ascending, as SQL's ORDER BY. A blank ``sort=``
    # counts as no sort.
    direction = (params.get("dir") or ("ASC" if params.get("sort") else "DESC")).upper()
    if direction not in ("ASC", "DESC"):
        raise QueryError("Invalid parameter", [f"'dir' must be ASC or DESC, got {direction!r}"])

    group_by = params.get("group_by") or None
    if group_by is not None:
        if group_by not in fields:
            raise QueryError("Invalid parameter", [f"Unknown group_by property '{group_by}'"])
        if fields[group_by] not in FILTERABLE_TYPES:
            raise QueryError("Invalid parameter", [f"Property '{group_by}' cannot be grouped"])

    return Query(
        conditions=tuple(conditions),
        sort=sort,
        descending=direction == "DESC",
        page=page,
        limit=limit,
        group_by=group_by,
    )


def _parse_condition(entry: Any, fields: dict[str, FieldType]) -> Condition:
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
    if ftype not in FILTERABLE_TYPES:
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
        return Condition(field, op, str(value))
    converted_value = convert_value(field, ftype, value)
    if converted_value is None and op not in ("eq", "ne"):
        raise _invalid(field, value)
    return Condition(field, op, converted_value)
