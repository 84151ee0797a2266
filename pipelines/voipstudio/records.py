"""CDR records to Arrow tables with an explicit schema, and rejects for what cannot be parsed.

dlt's per-row path costs far more time and memory than handing it Arrow tables, so each page is
converted column by column. The fast path converts a whole column at once; only a column that
fails falls back to checking its values one by one, so a malformed record costs little and never
takes its page down with it: it goes to the rejects table with its raw JSON and the reason.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from pipelines.voipstudio.errors import ApiRequestError
from pipelines.voipstudio.settings import API_DATETIME_FORMAT

INT_FIELDS = (
    "id",
    "call_id",
    "live_id",
    "parent_live_id",
    "user_id",
    "sip_endpoint_id",
    "server_id",
    "duration",
    "billsec",
    "nb_notes",
)
FLOAT_FIELDS = ("rate", "charge")
STRING_FIELDS = (
    "type",
    "clid",
    "src",
    "src_id",
    "src_name",
    "src_ua",
    "src_codec",
    "dst",
    "dst_id",
    "dst_name",
    "dst_ua",
    "dst_codec",
    "disposition",
    "destination",
    "context",
    "t_cause",
    "info",
    "metadata",
)
TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")

# The table's column order follows the API's field list.
CDR_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        ("call_id", pa.int64()),
        ("live_id", pa.int64()),
        ("parent_live_id", pa.int64()),
        ("user_id", pa.int64()),
        ("sip_endpoint_id", pa.int64()),
        ("server_id", pa.int64()),
        ("type", pa.string()),
        ("calldate", TIMESTAMP_TYPE),
        ("clid", pa.string()),
        ("src", pa.string()),
        ("src_id", pa.string()),
        ("src_name", pa.string()),
        ("src_ua", pa.string()),
        ("src_codec", pa.string()),
        ("dst", pa.string()),
        ("dst_id", pa.string()),
        ("dst_name", pa.string()),
        ("dst_ua", pa.string()),
        ("dst_codec", pa.string()),
        ("duration", pa.int64()),
        ("billsec", pa.int64()),
        ("disposition", pa.string()),
        ("destination", pa.string()),
        ("context", pa.string()),
        ("rate", pa.float64()),
        ("charge", pa.float64()),
        ("t_cause", pa.string()),
        ("info", pa.string()),
        ("metadata", pa.string()),
        # JSON text (loaded as a JSON column): every destination takes text, while an Arrow
        # list column cannot be written to the CSV/INSERT files of PostgreSQL and others.
        ("labels", pa.string()),
        ("nb_notes", pa.int64()),
    ]
)
KNOWN_FIELDS = frozenset(CDR_SCHEMA.names)
LABELS_TYPE = pa.list_(pa.string())


def labels_as_json(labels: pa.Array) -> pa.Array:
    """A list-of-text column as JSON text, null staying null."""
    return pa.array(
        [None if value is None else orjson.dumps(value).decode() for value in labels.to_pylist()],
        type=pa.string(),
    )


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


def _as_int(value: Any) -> int | None:
    """An integer from an int, an integral float or a string of digits; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _as_text(value: Any) -> str:
    # Text columns keep anything losslessly: numbers as their digits, objects as JSON.
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return orjson.dumps(value).decode()


def _as_labels(value: Any) -> list[str] | None:
    if isinstance(value, list):
        return [_as_text(item) for item in value]
    if isinstance(value, str):
        return [value]
    return None


def _slow_column(
    name: str,
    values: list[Any],
    arrow_type: pa.DataType,
    convert: Callable[[Any], Any],
    bad: dict[int, str],
    what: str,
) -> pa.Array:
    converted: list[Any] = []
    for index, value in enumerate(values):
        if value is None:
            converted.append(None)
            continue
        result = convert(value)
        if result is None:
            bad.setdefault(index, f"{name}: {value!r} is not {what}")
        converted.append(result)
    return pa.array(converted, type=arrow_type)


def _column(name: str, values: list[Any], arrow_type: pa.DataType, bad: dict[int, str]) -> pa.Array:
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    if name in INT_FIELDS:
        return _slow_column(name, values, arrow_type, _as_int, bad, "an integer")
    if name in FLOAT_FIELDS:
        return _slow_column(name, values, arrow_type, _as_float, bad, "a number")
    if name == "labels":
        return _slow_column(name, values, arrow_type, _as_labels, bad, "a list of labels")
    return pa.array([None if v is None else _as_text(v) for v in values], type=arrow_type)


def _calldate_column(values: list[Any], timezone: str, bad: dict[int, str]) -> pa.Array:
    texts = pa.array([v if isinstance(v, str) else None for v in values], type=pa.string())
    parsed = pc.strptime(texts, format=API_DATETIME_FORMAT, unit="us", error_is_null=True)
    if parsed.null_count:
        for index, (value, stamp) in enumerate(zip(values, parsed.to_pylist(), strict=True)):
            if stamp is None:
                bad.setdefault(
                    index, f"calldate: {value!r} is not a timestamp 'YYYY-MM-DD HH:MM:SS'"
                )
    if timezone == "UTC":
        return parsed.cast(TIMESTAMP_TYPE)
    # The API writes wall-clock times of its own zone: localize, then store as UTC. An hour
    # that does not exist or repeats at a DST change takes its earliest reading.
    local = pc.assume_timezone(
        parsed, timezone=timezone, ambiguous="earliest", nonexistent="earliest"
    )
    return local.cast(TIMESTAMP_TYPE)


def _extra_column(values: list[Any]) -> pa.Array:
    """A field the schema does not know yet: inferred, or as JSON text if its values mix types."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return pa.array([None if v is None else _as_text(v) for v in values], type=pa.string())


def records_to_table(
    records: Sequence[dict[str, Any]], timezone: str = "UTC"
) -> tuple[pa.Table, list[Reject]]:
    """Convert one page of CDRs.

    Args:
        records: the page's records as decoded from JSON.
        timezone: the zone of the API's ``calldate`` wall-clock times.

    Returns:
        The table of good records (``CDR_SCHEMA`` columns first, then any fields the API added),
        and the rejected ones.
    """
    bad: dict[int, str] = {}
    arrays: list[pa.Array] = []
    for field in CDR_SCHEMA:
        values = [record.get(field.name) for record in records]
        if field.name == "calldate":
            arrays.append(_calldate_column(values, timezone, bad))
        elif field.name == "labels":
            arrays.append(labels_as_json(_column(field.name, values, LABELS_TYPE, bad)))
        else:
            arrays.append(_column(field.name, values, field.type, bad))
    names = list(CDR_SCHEMA.names)
    extra = sorted({key for record in records for key in record} - KNOWN_FIELDS)
    for name in extra:
        arrays.append(_extra_column([record.get(name) for record in records]))
        names.append(name)
    ids = arrays[0]
    if ids.null_count:
        for index, value in enumerate(ids.to_pylist()):
            if value is None:
                bad.setdefault(index, "id: missing; a CDR without an id cannot be merged")
    schema = pa.schema(
        [
            *CDR_SCHEMA,
            *(pa.field(n, a.type) for n, a in zip(extra, arrays[len(CDR_SCHEMA) :], strict=True)),
        ]
    )
    if not bad:
        return pa.Table.from_arrays(arrays, schema=schema), []
    table = pa.Table.from_arrays(arrays, names=names)
    keep = pa.array([index not in bad for index in range(len(records))])
    rejects = [
        Reject(
            record_id=None if records[i].get("id") is None else _as_text(records[i].get("id")),
            reason=reason,
            raw=orjson.dumps(records[i]).decode(),
        )
        for i, reason in sorted(bad.items())
    ]
    return table.filter(keep).cast(schema), rejects


@dataclass
class ParsedPage:
    """One page of ``/cdrs``: loadable rows, rejects, and what the window check needs."""

    table: pa.Table
    rejects: list[Reject]
    keys: list[Any]  # what makes each record of the page distinct (its id), rejects included
    total: int


# How a page is read before conversion: `calldate` as text (parsed and localized after), and
# `labels` as the list the API sends (turned into JSON text after).
_PARSE_TYPES = {"calldate": pa.string(), "labels": LABELS_TYPE}
_PAGE_SCHEMA = pa.schema(
    [
        (
            "data",
            pa.list_(
                pa.struct([pa.field(f.name, _PARSE_TYPES.get(f.name, f.type)) for f in CDR_SCHEMA])
            ),
        ),
        ("total", pa.int64()),
    ]
)


def parse_cdr_page(body: bytes, timezone: str = "UTC") -> ParsedPage:
    """Parse the body of a ``/cdrs`` page straight into Arrow.

    The fast path is pyarrow's JSON reader with the page's schema: it runs in C++ without the
    GIL, so worker threads parse pages in parallel. A page it cannot take as is (a value of
    the wrong type, a ``calldate`` that is not a time, a record without id) is decoded again
    record by record by :func:`records_to_table`, which sorts out the rejects.

    Raises:
        ValueError: the body is not JSON (the client retries such answers).
        ApiRequestError: the body is JSON but not the collection envelope.
    """
    fast = _parse_fast(body, timezone)
    if fast is not None:
        return fast
    payload = orjson.loads(body)
    data = payload.get("data") if isinstance(payload, dict) else None
    total = payload.get("total") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not isinstance(total, int):
        raise ApiRequestError(
            "GET /cdrs answered without the collection envelope {data: [...], total: N}; "
            "the API may have changed"
        )
    records = [r if isinstance(r, dict) else {"value": r} for r in data]
    table, rejects = records_to_table(records, timezone)
    keys = [
        ("no usable id", i)
        if r.get("id") is None or isinstance(r.get("id"), (dict, list))
        else r.get("id")
        for i, r in enumerate(records)
    ]
    return ParsedPage(table, rejects, keys, total)


def _parse_fast(body: bytes, timezone: str) -> ParsedPage | None:
    try:
        parsed = pa_json.read_json(
            io.BytesIO(body),
            read_options=pa_json.ReadOptions(block_size=len(body) + 1, use_threads=False),
            parse_options=pa_json.ParseOptions(
                explicit_schema=_PAGE_SCHEMA, unexpected_field_behavior="infer"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if parsed.num_rows != 1 or parsed.column("total").null_count:
        return None
    total = parsed.column("total")[0].as_py()
    records = parsed.column("data").combine_chunks()
    if records.null_count:
        return None
    struct = records.flatten()
    names = struct.type.names if isinstance(struct.type, pa.StructType) else []
    columns = dict(zip(names, struct.flatten(), strict=True))
    ids, texts = columns["id"], columns["calldate"]
    if ids.null_count or texts.null_count:
        return None
    stamps = pc.strptime(texts, format=API_DATETIME_FORMAT, unit="us", error_is_null=True)
    if stamps.null_count:
        return None
    if timezone == "UTC":
        columns["calldate"] = stamps.cast(TIMESTAMP_TYPE)
    else:
        columns["calldate"] = pc.assume_timezone(
            stamps, timezone=timezone, ambiguous="earliest", nonexistent="earliest"
        ).cast(TIMESTAMP_TYPE)
    columns["labels"] = labels_as_json(columns["labels"])
    extra = [name for name in names if name not in KNOWN_FIELDS]
    schema = pa.schema([*CDR_SCHEMA, *(pa.field(n, columns[n].type) for n in extra)])
    table = pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
    return ParsedPage(table, [], ids.to_pylist(), int(total))


def api_time(seconds: int) -> str:
    """Format wall-clock seconds (see :func:`wall_seconds`) as the API's timestamp text."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime(API_DATETIME_FORMAT)


def wall_seconds(value: datetime) -> int:
    """Seconds since 1970 of a wall-clock reading, ignoring its zone (the API compares
    ``calldate`` as text in its own zone, so windows are cut on the wall clock)."""
    return int(value.replace(tzinfo=UTC).timestamp())
