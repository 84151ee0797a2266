"""CDR records to Arrow: types, time zones, new fields and rejects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from pipelines.voipstudio.records import CDR_SCHEMA, records_to_table


def cdr(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {name: None for name in CDR_SCHEMA.names}
    record.update(
        id=1,
        call_id=10,
        type="I",
        calldate="2026-03-29 01:30:00",
        duration=30,
        billsec=20,
        rate=0.0,
        charge=0.0,
        labels=[],
        src="+34910000000",
    )
    record.update(fields)
    return record


def test_types_follow_the_schema() -> None:
    table, rejects = records_to_table([cdr(), cdr(id=2, rate=1, labels=["vip"])])
    assert rejects == []
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("calldate").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("rate").type == pa.float64()
    assert table.column("rate").to_pylist() == [0.0, 1.0]
    assert table.column("calldate").to_pylist()[0] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert table.column("labels").to_pylist() == ["[]", '["vip"]']


def test_lossless_coercions_are_not_rejects() -> None:
    table, rejects = records_to_table([cdr(id="7", billsec=12.0, src=34910000000, rate="0.05")])
    assert rejects == []
    row = table.to_pylist()[0]
    assert (row["id"], row["billsec"], row["src"], row["rate"]) == (7, 12, "34910000000", 0.05)


def test_unparseable_records_are_rejected_not_dropped() -> None:
    records = [
        cdr(id=1),
        cdr(id=2, calldate="0000-00-00 00:00:00"),
        cdr(id=3, billsec="twelve"),
        cdr(id=None),
        cdr(id=5, calldate=None),
    ]
    table, rejects = records_to_table(records)
    assert table.column("id").to_pylist() == [1]
    reasons = {r.record_id: r.reason for r in rejects}
    assert set(reasons) == {"2", "3", None, "5"}
    assert "calldate" in reasons["2"] and "billsec" in reasons["3"] and "id" in reasons[None]
    assert all('"id"' in r.raw for r in rejects)
    rows = [r.as_row(datetime.now(UTC)) for r in rejects]
    assert len({row["record_hash"] for row in rows}) == 4


def test_api_timezone_is_converted_to_utc_across_dst() -> None:
    # 2026-03-29 is the spring-forward day in Madrid: 01:30 is CET (+1), 03:30 is CEST (+2).
    table, _ = records_to_table(
        [cdr(id=1, calldate="2026-03-29 01:30:00"), cdr(id=2, calldate="2026-03-29 03:30:00")],
        timezone="Europe/Madrid",
    )
    assert table.column("calldate").to_pylist() == [
        datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
    ]


def test_fields_the_api_adds_are_kept() -> None:
    table, _ = records_to_table(
        [cdr(recording_url="https://x/1.wav", score=3), cdr(id=2, score="high")]
    )
    assert table.column("recording_url").to_pylist() == ["https://x/1.wav", None]
    # Mixed types cannot be guessed: kept as text rather than dropped.
    assert table.column("score").to_pylist() == ["3", "high"]
    assert table.schema.names[: len(CDR_SCHEMA)] == CDR_SCHEMA.names


def test_unique_rows_drops_ids_already_handed_on() -> None:
    from pipelines.voipstudio import unique_rows
    from pipelines.voipstudio.memory import IdSet

    seen = IdSet()
    first, _ = records_to_table([cdr(id=1), cdr(id=2)])
    assert unique_rows(first, seen).column("id").to_pylist() == [1, 2]
    again, _ = records_to_table([cdr(id=2), cdr(id=3), cdr(id=3)])
    assert unique_rows(again, seen).column("id").to_pylist() == [3]
    assert len(seen) == 3 and all(record_id in seen for record_id in (1, 2, 3))
