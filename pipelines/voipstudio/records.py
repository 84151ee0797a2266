"""CDR records to Arrow tables with an explicit schema, and rejects for what cannot be parsed.

dlt's per-row path costs far more time and memory than handing it Arrow tables, so each page is
converted column by column. The fast path converts a whole column at once; only a column that
fails falls back to checking its values one by one, so a malformed record costs little and never
takes its page down with it: it goes to the rejects table with its raw JSON and the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

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
        ("labels", pa.list_(pa.string())),
        ("nb_notes", pa.int64()),
    ]
)
KNOWN_FIELDS = frozenset(CDR_SCHEMA.names)


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


def api_time(seconds: int) -> str:
    """Format wall-clock seconds (see :func:`wall_seconds`) as the API's timestamp text."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime(API_DATETIME_FORMAT)


def wall_seconds(value: datetime) -> int:
    """Seconds since 1970 of a wall-clock reading, ignoring its zone (the API compares
    ``calldate`` as text in its own zone, so windows are cut on the wall clock)."""
    return int(value.replace(tzinfo=UTC).timestamp())
