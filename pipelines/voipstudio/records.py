"""A dated collection's records to Arrow tables typed by its declaration, and rejects for what
cannot be typed.

dlt's per-row path costs far more time and memory than handing it Arrow tables, so each page is
converted column by column. The fast path reads a whole page with pyarrow's JSON reader. A page
it cannot take as it is (a number sent as a string, a number no column holds, text that is not
UTF-8, ...) is decoded again leniently (:mod:`pipelines.voipstudio.jsontext`) and checked value by
value, so that one odd value never takes its page down with it: lossless coercions are made
(``"12"`` for 12, ``12.0`` for 12, a lone label for a list of one), and a record holding a value
its column cannot hold goes to the rejects table with its raw JSON and the reason, while the rest
of the page loads.

The columns are the collection's declared fields (``collection.DatedCollection.columns``), typed
(:func:`table_schema`); the cursor as a UTC instant (from wall-clock text, see
:mod:`pipelines.voipstudio.wallclock`, or from Unix seconds) next to ``<cursor>_raw``, the API's
text as sent (wall-clock text only); and ``extra_fields``, every field the API sends that is not
declared, as the text of one JSON object (keys sorted, null values left out; null when a record
has none). Undeclared fields never become columns: their names cannot collide after
normalization (``Billsec``, ``src-name``) and their types cannot flip between syncs (``3``, then
``"n/a"``), so they cannot fail a load.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from pipelines.voipstudio import jsontext
from pipelines.voipstudio.collection import EPOCH, DataType, DatedCollection
from pipelines.voipstudio.errors import ApiRequestError
from pipelines.voipstudio.jsontext import INT64_MAX, INT64_MIN, RawNumber
from pipelines.voipstudio.settings import API_DATETIME_FORMAT, EXTRA_FIELDS_COLUMN
from pipelines.voipstudio.wallclock import BoolArray, FoldRows, Localized, localize

log = logging.getLogger(__name__)

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
WALL_TYPE = pa.timestamp("us")
EXTRA_FIELDS = EXTRA_FIELDS_COLUMN
LABELS_TYPE = pa.list_(pa.string())
# Unix seconds a timestamp may hold: 1970 to the end of 9999.
EPOCH_MAX = 253_402_300_799
# How each declared type is stored, and how the page reader reads it.
_STORED: dict[DataType, pa.DataType] = {
    "bigint": pa.int64(),
    "double": pa.float64(),
    "text": pa.string(),
    "bool": pa.bool_(),
    "timestamp": TIMESTAMP_TYPE,
    "text_list": pa.string(),
}


@dataclass(frozen=True, eq=False)
class _Layout:
    """How one collection's pages are read and its table laid out."""

    collection: DatedCollection
    schema: pa.Schema  # the table
    known: frozenset[str]  # the fields with a column of their own
    read_fields: list[pa.Field]  # how the page reader reads them
    page_schema: pa.Schema  # the reader's schema of a page

    @property
    def cursor(self) -> str:
        return self.collection.cursor.path

    def reader_schema(self, text_fields: Sequence[str] = ()) -> pa.Schema:
        """The reader's schema; ``text_fields``: undeclared fields to read as text."""
        return _reader_schema(self.read_fields, text_fields)


def _reader_schema(read_fields: list[pa.Field], text_fields: Sequence[str] = ()) -> pa.Schema:
    fields = read_fields + [pa.field(name, pa.string()) for name in text_fields]
    return pa.schema([("data", pa.list_(pa.struct(fields))), ("total", pa.int64())])


@functools.cache
def _layout(collection: DatedCollection) -> _Layout:
    cursor = collection.cursor
    fields: list[pa.Field] = []
    read: list[pa.Field] = []
    for name, data_type in collection.columns.items():
        stored = _STORED[data_type]
        fields.append(pa.field(name, stored, nullable=name != collection.primary_key))
        if name == cursor.path:
            if cursor.raw_column is not None:
                fields.append(pa.field(cursor.raw_column, pa.string()))
            read.append(pa.field(name, pa.int64() if cursor.format == EPOCH else pa.string()))
        elif data_type == "text_list":
            read.append(pa.field(name, LABELS_TYPE))
        else:
            read.append(pa.field(name, stored))
    fields.append(pa.field(EXTRA_FIELDS, pa.string()))
    known = frozenset(collection.columns)
    return _Layout(collection, pa.schema(fields), known, read, _reader_schema(read))


def table_schema(collection: DatedCollection) -> pa.Schema:
    """The Arrow schema of the collection's rows as the source hands them on (before the
    ``account`` column): the declared columns in order, ``<cursor>_raw`` after the cursor,
    ``extra_fields`` last."""
    return _layout(collection).schema


# Control characters orjson escapes as \u00XX, \b or \f: rare enough to leave to orjson.
_RARE_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def _json_strings(texts: pa.Array) -> pa.Array | None:
    """Each text as a JSON string literal, as orjson writes it (null stays null), built with
    Arrow's string kernels; None if a text holds a control character this does not escape."""
    if pc.any(pc.match_substring_regex(texts, _RARE_CONTROL)).as_py():
        return None
    escaped = texts
    for old, new in _ESCAPES:
        escaped = pc.replace_substring(escaped, old, new)
    return pc.binary_join_element_wise('"', escaped, '"', "")


def labels_as_json(labels: pa.Array) -> pa.Array:
    """A list-of-text column as JSON text, null staying null (what ``orjson.dumps`` writes)."""
    items = labels.flatten() if isinstance(labels, pa.ListArray) else None
    quoted = None if items is None or items.null_count else _json_strings(items)
    if quoted is None or labels.offset:
        return pa.array(
            [None if v is None else orjson.dumps(v).decode() for v in labels.to_pylist()],
            type=pa.string(),
        )
    lists = pa.ListArray.from_arrays(labels.offsets, quoted, mask=labels.is_null())
    joined = pc.binary_join(lists, ",")
    return pc.binary_join_element_wise("[", joined, "]", "")


@dataclass(frozen=True)
class Reject:
    """A record that could not be parsed."""

    record_id: str | None
    reason: str
    raw: str

    def as_row(self, rejected_at: datetime) -> dict[str, Any]:
        """The row written to the rejects table (``record_hash`` makes re-reads idempotent)."""
        return {
            "record_hash": hashlib.sha256(self.raw.encode()).hexdigest()[:32],
            "id": self.record_id,
            "reason": self.reason,
            "raw": self.raw,
            "rejected_at": rejected_at,
        }


class _UnfitError(Exception):
    """A value its column cannot hold; the message completes ``"<field>: <value> ..."``."""


def _as_int(value: Any) -> int | None:
    """An int64 from an int, an integral float, or text of an integral number ("" is null)."""
    if isinstance(value, bool):
        raise _UnfitError("is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise _UnfitError("is not an integer")
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            decimal = Decimal(text)
        except InvalidOperation:
            raise _UnfitError("is not an integer") from None
        if not decimal.is_finite() or decimal != decimal.to_integral_value():
            raise _UnfitError("is not an integer")
        if decimal.adjusted() > 19:  # never build a huge int from '1e999999999'
            raise _UnfitError("is beyond the 64-bit integer range")
        number = int(decimal)
    elif isinstance(value, RawNumber) and value.is_number:
        raise _UnfitError("is beyond the 64-bit integer range")
    else:
        raise _UnfitError("is not an integer")
    if not INT64_MIN <= number <= INT64_MAX:
        raise _UnfitError("is beyond the 64-bit integer range")
    return number


def _as_float(value: Any) -> float | None:
    """A finite double from a number or its text ("" is null)."""
    if isinstance(value, bool):
        raise _UnfitError("is not a number")
    if isinstance(value, RawNumber):
        reason = "is beyond the range of a double" if value.is_number else "is not a number"
        raise _UnfitError(reason)
    try:
        if isinstance(value, (int, float)):
            result = float(value)
        elif isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            result = float(text)
        else:
            raise _UnfitError("is not a number")
    except OverflowError:
        raise _UnfitError("is beyond the range of a double") from None
    except ValueError:
        raise _UnfitError("is not a number") from None
    if math.isnan(result):
        raise _UnfitError("is not a number")
    if math.isinf(result):
        raise _UnfitError("is beyond the range of a double")
    return result


def _as_text(value: Any) -> str:
    # Text columns keep anything losslessly: numbers as their digits, objects as JSON.
    if isinstance(value, str):
        return value
    if isinstance(value, RawNumber):
        return value.text
    return jsontext.dumps(value)


def _as_labels(value: Any) -> list[str | None] | None:
    if isinstance(value, list):
        return [None if item is None else _as_text(item) for item in value]
    if isinstance(value, str):
        # A lone label for a list of one; an empty text for no labels.
        return [value] if value.strip() else []
    raise _UnfitError("is not a list of labels")


def _as_bool(value: Any) -> bool | None:
    """A boolean from a JSON boolean, 0 or 1, or their text ("" is null)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if not text:
            return None
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
    raise _UnfitError("is not a boolean")


def _show(value: Any) -> str:
    text = value.text if isinstance(value, RawNumber) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _slow_column(
    name: str,
    values: list[Any],
    arrow_type: pa.DataType,
    convert: Callable[[Any], Any],
    bad: dict[int, str],
) -> pa.Array:
    converted: list[Any] = []
    for index, value in enumerate(values):
        if value is None:
            converted.append(None)
            continue
        try:
            converted.append(convert(value))
        except _UnfitError as unfit:
            bad.setdefault(index, f"{name}: {_show(value)} {unfit}")
            converted.append(None)
    return pa.array(converted, type=arrow_type)


# What pyarrow's type inference may give for a column that then converts exactly.
_EXACT_INFERRED: dict[pa.DataType, tuple[pa.DataType, ...]] = {
    pa.int64(): (pa.int64(), pa.null()),
    pa.float64(): (pa.float64(), pa.int64(), pa.null()),
    pa.string(): (pa.string(), pa.null()),
    pa.bool_(): (pa.bool_(), pa.null()),
    LABELS_TYPE: (LABELS_TYPE, pa.list_(pa.null()), pa.null()),
}
# The conversion of each declared type's values, value by value.
_CONVERT: dict[DataType, Callable[[Any], Any]] = {
    "bigint": _as_int,
    "double": _as_float,
    "bool": _as_bool,
    "text_list": _as_labels,
}


def _column(
    name: str,
    values: list[Any],
    data_type: DataType,
    arrow_type: pa.DataType,
    bad: dict[int, str],
) -> pa.Array:
    # pyarrow's inference is strict (a float among ints makes the column double, a bool among
    # numbers fails), unlike a conversion to a given type, which truncates 12.5 to 12.
    inferred = None
    # (Inference would also make a double of 0.0 and True.)
    if arrow_type in (pa.string(), pa.bool_()) or not any(
        value.__class__ is bool for value in values
    ):
        try:
            inferred = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            inferred = None
    if inferred is not None and inferred.type in _EXACT_INFERRED.get(arrow_type, ()):
        try:
            return inferred.cast(arrow_type)
        except pa.ArrowInvalid:  # an integer a double only approximates: converted below
            pass
    convert = _CONVERT.get(data_type)
    if convert is not None:
        return _slow_column(name, values, arrow_type, convert, bad)
    return pa.array([None if v is None else _as_text(v) for v in values], type=arrow_type)


# Besides the API's own format: ISO's "T" and fractions of a second.
_LIBERAL_TIME = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6})\d*)?\s*$"
)


def _liberal_time(value: Any) -> datetime | None:
    match = _LIBERAL_TIME.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    *parts, fraction = match.groups()
    year, month, day, hour, minute, second = (int(part) for part in parts)
    micro = int((fraction or "0").ljust(6, "0"))
    try:
        return datetime(year, month, day, hour, minute, second, micro)  # a wall-clock reading
    except ValueError:
        return None


def _wall_column(name: str, values: list[Any], bad: dict[int, str]) -> pa.Array:
    """Wall-clock readings (no zone) of the API's date texts."""
    texts = pa.array([v if isinstance(v, str) else None for v in values], type=pa.string())
    parsed = pc.strptime(texts, format=API_DATETIME_FORMAT, unit="us", error_is_null=True)
    if not parsed.null_count:
        return parsed
    stamps = parsed.to_pylist()
    for index, (value, stamp) in enumerate(zip(values, stamps, strict=True)):
        if stamp is None:
            stamps[index] = _liberal_time(value)
            if stamps[index] is None:
                what = "missing" if value is None else f"{_show(value)} is not a timestamp"
                bad.setdefault(index, f"{name}: {what} ('YYYY-MM-DD HH:MM:SS' expected)")
    return pa.array(stamps, type=WALL_TYPE)


def _epoch_column(name: str, values: list[Any], bad: dict[int, str]) -> pa.Array:
    """UTC instants of the API's Unix seconds."""
    stamps: list[int | None] = []
    for index, value in enumerate(values):
        seconds: int | None = None
        if value is not None:
            try:
                seconds = _as_int(value)
            except _UnfitError:
                seconds = None
        if seconds is None or not 0 <= seconds <= EPOCH_MAX:
            what = "missing" if value is None else f"{_show(value)} is not a timestamp"
            bad.setdefault(index, f"{name}: {what} (Unix seconds expected)")
            seconds = None
        stamps.append(None if seconds is None else seconds * 1_000_000)
    return pa.array(stamps, type=pa.int64()).cast(TIMESTAMP_TYPE)


def _epoch_instants(seconds: pa.Array) -> pa.Array | None:
    """Unix seconds as UTC instants; None if one is out of range (the lenient path says)."""
    bounds = pc.min_max(seconds)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is not None and (low < 0 or high > EPOCH_MAX):
        return None
    return pc.multiply(seconds, 1_000_000).cast(TIMESTAMP_TYPE)


def _extra_column(records: Sequence[dict[str, Any]], known: frozenset[str]) -> pa.Array:
    """``extra_fields``: the JSON text of each record's undeclared, non-null fields."""
    names = sorted(set().union(*records) - known)
    texts: list[str | None] = []
    for record in records:
        extra = {n: record[n] for n in names if record.get(n) is not None}
        texts.append(jsontext.dumps(extra) if extra else None)
    return pa.array(texts, type=pa.string())


@dataclass
class ParsedPage:
    """One page of a dated collection: loadable rows, rejects, and what the window check needs.

    Attributes:
        table: the loadable rows (:func:`table_schema`); rows of a repeated hour provisionally
            in its first pass (``ambiguous`` says which).
        rejects: the records that could not be parsed.
        keys: what makes each record of the page distinct (its id), rejects included.
        total: the ``total`` the page reported.
        fold_rows: the page's evidence for placing repeated-hour records (see ``wallclock``).
        ambiguous: which rows of ``table`` are in a repeated hour (None: none).
        repaired: strings whose unstorable characters were replaced by U+FFFD.
    """

    table: pa.Table
    rejects: list[Reject]
    keys: list[Any]
    total: int
    fold_rows: FoldRows | None = None
    ambiguous: BoolArray | None = None
    repaired: int = 0


def _assemble(layout: _Layout, columns: dict[str, pa.Array], timezone: str) -> ParsedPage:
    """The page's table from its columns (a wall-clock cursor still as readings)."""
    collection = layout.collection
    cursor = layout.cursor
    if collection.cursor.format == EPOCH:
        localized = Localized(columns[cursor])
    else:
        localized = localize(columns[cursor], timezone)
        columns = {**columns, cursor: localized.utc}
    table = pa.Table.from_arrays([columns[f.name] for f in layout.schema], schema=layout.schema)
    lasting = None if collection.written_after is None else table.column(collection.written_after)
    fold_rows = FoldRows.of_page(table.column(collection.primary_key), localized, lasting)
    return ParsedPage(table, [], [], 0, fold_rows, localized.ambiguous)


def records_to_table(
    records: Sequence[dict[str, Any]], collection: DatedCollection, timezone: str = "UTC"
) -> tuple[pa.Table, list[Reject]]:
    """Convert one page of records (as decoded from JSON) into a table and its rejects.

    Repeated-hour records take their first pass here; :func:`parse_page` also returns what
    is needed to place them.
    """
    page = _records_page(_layout(collection), records, timezone)
    return page.table, page.rejects


def _records_page(layout: _Layout, records: Sequence[dict[str, Any]], timezone: str) -> ParsedPage:
    collection = layout.collection
    cursor = collection.cursor
    key = collection.primary_key
    bad: dict[int, str] = {}
    columns: dict[str, pa.Array] = {}
    for name, data_type in collection.columns.items():
        values = [record.get(name) for record in records]
        if name == cursor.path:
            if cursor.format == EPOCH:
                columns[name] = _epoch_column(name, values, bad)
            else:
                columns[name] = _wall_column(name, values, bad)
            if cursor.raw_column is not None:
                columns[cursor.raw_column] = pa.array(
                    [None if v is None else _as_text(v) for v in values], type=pa.string()
                )
        elif data_type == "text_list":
            columns[name] = labels_as_json(_column(name, values, data_type, LABELS_TYPE, bad))
        else:
            columns[name] = _column(name, values, data_type, _STORED[data_type], bad)
    columns[EXTRA_FIELDS] = _extra_column(records, layout.known)
    ids = columns[key].to_pylist()
    for index, value in enumerate(ids):
        if value is None and index not in bad:
            bad[index] = f"{key}: missing; a {collection.record} without an {key} cannot be merged"
    if bad:
        keep = pa.array([index not in bad for index in range(len(records))])
        columns = {name: array.filter(keep) for name, array in columns.items()}
    page = _assemble(layout, columns, timezone)
    # What makes each record distinct in the window check: its id, as the integer it stands
    # for when it is one.
    page.keys = [
        ids[i] if ids[i] is not None else _raw_key(records[i].get(key), i)
        for i in range(len(records))
    ]
    page.rejects = [
        Reject(
            record_id=None if records[i].get(key) is None else _as_text(records[i].get(key)),
            reason=reason,
            raw=jsontext.dumps(records[i]),
        )
        for i, reason in sorted(bad.items())
    ]
    return page


def _raw_key(value: Any, index: int) -> Any:
    if value is None or isinstance(value, (dict, list)):
        return ("no usable id", index)
    return value


def parse_page(body: bytes, collection: DatedCollection, timezone: str = "UTC") -> ParsedPage:
    """Parse the body of a page of ``collection`` straight into Arrow.

    The fast path is pyarrow's JSON reader with the page's schema: it runs in C++ without the
    GIL, so worker threads parse pages in parallel. A page it cannot take as is (a value of
    another type, a number beyond 64 bits or a double, a cursor that is not a time, a record
    without id, text that is not UTF-8) is decoded again leniently and record by record by
    :func:`records_to_table`, which sorts out the rejects.

    Args:
        body: the answer's body.
        collection: what it is a page of.
        timezone: the zone of wall-clock date texts.

    Raises:
        ValueError: the body is not JSON at all (the client retries such answers).
        ApiRequestError: the body is JSON but not the collection envelope.
    """
    layout = _layout(collection)
    fast = _parse_fast(layout, body, timezone)
    if fast is not None:
        return fast
    decoded = jsontext.loads(body)
    payload = decoded.value
    data = payload.get("data") if isinstance(payload, dict) else None
    try:
        total = _as_int(payload.get("total")) if isinstance(payload, dict) else None
    except _UnfitError:
        total = None
    if data is None and total is not None:
        # A null where a list was expected: no records (the window check judges the total).
        data = []
    if not isinstance(data, list) or total is None or total < 0:
        raise ApiRequestError(
            f"GET {collection.path} answered without the collection envelope "
            "{data: [...], total: N}; the API may have changed"
        )
    records = [r if isinstance(r, dict) else {"value": r} for r in data]
    page = _records_page(layout, records, timezone)
    page.total = total
    page.repaired = decoded.repaired
    if decoded.repaired:
        log.warning(
            "a page of %s held %d texts with bytes that are not UTF-8, NUL characters or "
            "lone surrogates: they were replaced by U+FFFD",
            collection.path,
            decoded.repaired,
        )
    return page


def _read(body: bytes, schema: pa.Schema) -> pa.Table | None:
    try:
        return pa_json.read_json(
            io.BytesIO(body),
            read_options=pa_json.ReadOptions(block_size=len(body) + 1, use_threads=False),
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def _has_nul(columns: dict[str, pa.Array]) -> bool:
    """Whether a text holds NUL (``\\u0000``), which PostgreSQL refuses: its bytes are zero."""
    for array in columns.values():
        if pa.types.is_list(array.type):
            array = array.flatten()
        if pa.types.is_string(array.type):
            data = array.buffers()[2]
            if data is not None and data.size and not np.all(np.frombuffer(data, np.uint8)):
                return True
    return False


def _parse_fast(layout: _Layout, body: bytes, timezone: str) -> ParsedPage | None:
    parsed = _read(body, layout.page_schema)
    if parsed is None:
        return None
    columns = _struct_columns(parsed)
    if columns is None:
        return None
    known = layout.known
    # The reader infers timestamps from date-like text: read those fields again as text.
    dated = [
        name
        for name, array in columns.items()
        if name not in known and pa.types.is_temporal(array.type)
    ]
    if dated:
        again = _read(body, layout.reader_schema(dated))
        columns = None if again is None else _struct_columns(again)
        if columns is None:
            return None
    collection = layout.collection
    cursor = collection.cursor
    total = parsed.column("total")[0].as_py()
    ids, raw = columns[collection.primary_key], columns[cursor.path]
    if ids.null_count or raw.null_count or _has_nul(columns):
        return None  # (NUL characters are replaced on the lenient path)
    if not body.isascii():
        # The reader does not check that text is UTF-8; DuckDB and PostgreSQL refuse it.
        try:
            for array in columns.values():
                array.validate(full=True)
        except pa.ArrowInvalid:
            return None
    if cursor.format == EPOCH:
        stamps = _epoch_instants(raw)
        if stamps is None:
            return None
    else:
        stamps = pc.strptime(raw, format=API_DATETIME_FORMAT, unit="us", error_is_null=True)
        if stamps.null_count:
            return None
    extra = _extra_json(
        {name: array for name, array in columns.items() if name not in known}, len(ids)
    )
    if extra is None:
        return None
    typed = {name: columns[name] for name in collection.api_fields}
    typed[cursor.path] = stamps
    if cursor.raw_column is not None:
        typed[cursor.raw_column] = raw
    for name, data_type in collection.columns.items():
        if data_type == "text_list":
            typed[name] = labels_as_json(columns[name])
    typed[EXTRA_FIELDS] = extra
    page = _assemble(layout, typed, timezone)
    page.keys = ids.to_pylist()
    page.total = int(total)
    return page


def _struct_columns(parsed: pa.Table) -> dict[str, pa.Array] | None:
    """The record fields of a page read by pyarrow, or None if it is not a clean envelope."""
    if parsed.num_rows != 1 or parsed.column("total").null_count:
        return None
    records = parsed.column("data").combine_chunks()
    if records.null_count:
        return None
    struct = records.flatten()
    names = struct.type.names if isinstance(struct.type, pa.StructType) else []
    return dict(zip(names, struct.flatten(), strict=True))


_NULL_TEXT = pa.scalar(None, pa.string())


def _extra_json(extra: dict[str, pa.Array], rows: int) -> pa.Array | None:
    """The ``extra_fields`` column built without Python per row: the same text the lenient
    path writes (``jsontext.dumps`` of the object with sorted keys, nulls left out). None when
    a field has a type this cannot spell exactly (objects, lists): the page takes the lenient
    path."""
    pieces: list[pa.Array] = []
    for name in sorted(extra):
        array = extra[name]
        if pa.types.is_null(array.type):
            continue
        if pa.types.is_string(array.type):
            quoted = _json_strings(array)
            if quoted is None:
                return None
            value = quoted
        elif pa.types.is_int64(array.type) or pa.types.is_boolean(array.type):
            value = array.cast(pa.string())
        elif pa.types.is_float64(array.type):
            # The reader makes integers beyond 64 bits doubles, silently: decode those exactly.
            numbers = array.to_numpy(zero_copy_only=False)
            if bool(np.any((np.abs(numbers) >= 2.0**53) & (numbers == np.floor(numbers)))):
                return None
            # The lenient path writes floats with orjson; so does this (one call per column).
            texts = orjson.dumps(array.to_pylist())[1:-1].split(b",")
            value = pa.array([None if t == b"null" else t.decode() for t in texts], pa.string())
        else:
            return None
        key = orjson.dumps(name).decode() + ":"
        pieces.append(pc.binary_join_element_wise(key, value, ",", "").fill_null(""))
    if not pieces:
        return pa.nulls(rows, pa.string())
    joined = pc.utf8_rtrim(pc.binary_join_element_wise(*pieces, ""), characters=",")
    wrapped = pc.binary_join_element_wise("{", joined, "}", "")
    return pc.if_else(pc.equal(joined, ""), _NULL_TEXT, wrapped)


def api_time(seconds: int) -> str:
    """Format wall-clock seconds (see :func:`wall_seconds`) as the API's timestamp text."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime(API_DATETIME_FORMAT)


def wall_seconds(value: datetime) -> int:
    """Seconds since 1970 of a wall-clock reading, ignoring its zone (the API compares
    ``calldate`` as text in its own zone, so windows are cut on the wall clock)."""
    return int(value.replace(tzinfo=UTC).timestamp())
