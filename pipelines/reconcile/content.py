"""What a CDR says, as one digest that is the same whether the row comes from an API page or
back from the destination: reconcile compares the two to find corrections (a re-rated
``charge``, a moved ``calldate``) without keeping either row.

A digest covers a fixed list of columns: the content columns of the stored table (every column
but ``account``, ``deleted_at`` and dlt's own), in name order; a column a page lacks counts as
null. Each value is first put in one text form, column by column with Arrow (a Python loop over
every value would cost several times the read itself): instants as UTC microseconds, numbers
in one type each (integers, floats, decimals as floats), JSON columns (objects, lists) with
sorted keys. Values are framed by their length, so that no two rows' texts run together the
same way. Where both sides still differ in form only, the row is reported changed and merged
again: that costs a merge, never a loss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from datetime import time as clock_time
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.voipstudio import settings

IGNORED_COLUMNS = frozenset({settings.ACCOUNT_COLUMN, settings.DELETED_AT_COLUMN})
DIGEST_SIZE = 16
_NULL = "~"
_INSTANT = pa.timestamp("us", tz="UTC")


def is_content(column: str) -> bool:
    """Whether a column of ``cdrs`` holds one of the API's fields."""
    return column not in IGNORED_COLUMNS and not column.startswith("_dlt")


def canonical(value: Any) -> str:
    """One text for a value of a type Arrow does not put in text form itself (objects, lists,
    JSON text), whichever side it comes from."""
    if isinstance(value, datetime):
        instant = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return instant.astimezone(UTC).isoformat()
    if isinstance(value, (date, clock_time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return repr(float(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, str):
        if value[:1] not in ("{", "["):
            return value
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        return canonical(parsed) if isinstance(parsed, (dict, list)) else value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def _as_text(column: pa.Array, json: bool) -> pa.Array:
    """A column's values in their one text form (null stays null)."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if json or not (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
        or pa.types.is_null(kind)
    ):
        return pa.array(
            [None if v is None else canonical(v) for v in column.to_pylist()], pa.string()
        )
    if pa.types.is_timestamp(kind):
        # A timestamp without a zone is UTC (how this project writes and reads them).
        micros = pc.cast(column, _INSTANT, safe=False).cast(pa.int64())
        return micros.cast(pa.string())
    if pa.types.is_integer(kind):
        return column.cast(pa.int64()).cast(pa.string())
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return column.cast(pa.float64()).cast(pa.string())
    return column.cast(pa.string())


def _framed(texts: pa.Array) -> pa.Array:
    """Each text as ``<length>:<text>``, null as ``~``: texts joined this way stay apart."""
    lengths = pc.utf8_length(texts).cast(pa.string())
    return pc.fill_null(pc.binary_join_element_wise(lengths, texts, ":"), _NULL)


def digests(
    table: pa.Table, columns: Sequence[str], json_columns: Collection[str] = ()
) -> list[bytes]:
    """The digest of every row of ``table`` over ``columns`` (one the table lacks is null).

    Args:
        table: rows from an API page or from the destination.
        columns: the content columns, in the order every digest compared uses.
        json_columns: columns holding JSON (objects and lists, or their text on one side).
    """
    if table.num_rows == 0:
        return []
    parts: list[pa.Array] = []
    for name in columns:
        if name in table.column_names:
            column = table.column(name).combine_chunks()
            parts.append(_framed(_as_text(column, name in json_columns)))
        else:
            parts.append(pa.array([_NULL] * table.num_rows, pa.string()))
    joined = pc.binary_join_element_wise(*parts, "") if len(parts) > 1 else parts[0]
    blake2b = hashlib.blake2b
    return [blake2b(text.encode(), digest_size=DIGEST_SIZE).digest() for text in joined.to_pylist()]


def unknown_values(table: pa.Table, columns: Collection[str]) -> pa.Array | None:
    """Rows holding a value in a column that is not among ``columns`` (a field the API added
    since the table was loaded: the stored row lacks it), or None when no row does."""
    mask: pa.Array | None = None
    for name in table.column_names:
        if name in columns or not is_content(name):
            continue
        present = pc.is_valid(table.column(name))
        mask = present if mask is None else pc.or_(mask, present)
    if mask is None or not pc.any(mask).as_py():
        return None
    return mask
