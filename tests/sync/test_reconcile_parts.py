"""The pure parts of reconcile: its wall-clock days, and the content digest that must be equal
for a row from an API page and the same row read back from DuckDB or PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from pipelines.reconcile.content import digests, is_content, unknown_values
from pipelines.reconcile.days import date_of, days_between, midnight, wall_of
from pipelines.voipstudio.records import api_time, wall_seconds


def test_days_are_whole_wall_clock_days_up_to_the_end() -> None:
    end = wall_seconds(datetime(2026, 10, 26, 9, 30))
    days = days_between(date(2026, 10, 24), end)
    assert [day.date for day in days] == [
        date(2026, 10, 24),
        date(2026, 10, 25),
        date(2026, 10, 26),
    ]
    # (D-1 23:59:59, D 23:59:59]: every second of the day, even the 25-hour DST day of Madrid
    # (the API's wall clock shows 86,400 distinct seconds whatever the zone did).
    assert api_time(days[1].start) == "2026-10-24 23:59:59"
    assert api_time(days[1].end) == "2026-10-25 23:59:59"
    assert not days[1].partial
    assert days[2].partial and api_time(days[2].end) == "2026-10-26 09:30:00"
    assert days_between(date(2026, 10, 27), end) == []


def test_a_configured_start_cuts_the_first_day() -> None:
    start = wall_seconds(datetime(2026, 3, 1, 12, 0)) - 1
    days = days_between(date(2026, 2, 27), wall_seconds(datetime(2026, 3, 2, 23, 59, 59)), start)
    assert [day.date for day in days] == [date(2026, 3, 1), date(2026, 3, 2)]
    assert api_time(days[0].start) == "2026-03-01 11:59:59"


def test_stored_instants_fall_on_the_accounts_own_day() -> None:
    madrid = ZoneInfo("Europe/Madrid")
    late_evening_utc = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)  # 00:30 on July 2 in Madrid
    assert date_of(wall_of(late_evening_utc, madrid)) == date(2026, 7, 2)
    assert date_of(wall_of(late_evening_utc, ZoneInfo("UTC"))) == date(2026, 7, 1)
    assert midnight(date(2026, 7, 2)) == wall_seconds(datetime(2026, 7, 2))
    assert wall_of(late_evening_utc.replace(tzinfo=None), madrid) == wall_of(
        late_evening_utc, madrid
    )


def one(row: dict[str, Any], json: tuple[str, ...] = ("queue",)) -> bytes:
    """The digest of one row, over the columns a stored table with these would have."""
    columns = sorted(name for name in COLUMNS if is_content(name))
    table = pa.Table.from_pylist([row])
    [digest] = digests(table, columns, json_columns=json)
    return digest


COLUMNS = ("account", "id", "calldate", "charge", "labels", "info", "queue", "src", "dst")


def test_the_digest_sees_content_not_its_form() -> None:
    api = {
        "account": "default",
        "id": 7,
        "calldate": datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        "charge": 0.25,
        "labels": '["vip","callback"]',
        "info": None,
        "queue": {"b": 1, "a": 2},  # a JSON column: an object on one side ...
    }
    stored = {
        "account": "other",  # not content
        "id": 7,
        "calldate": datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        "charge": Decimal("0.25"),
        "labels": '["vip","callback"]',
        "queue": '{"a": 2, "b": 1}',  # ... its text on the other
        "deleted_at": datetime(2026, 3, 5, tzinfo=UTC),  # not content
        "_dlt_load_id": "1234.5",  # not content
    }
    assert one(api) == one(stored)
    assert one(api) != one({**stored, "charge": Decimal("0.26")})
    assert one(api) != one({**stored, "calldate": datetime(2026, 3, 1, 9, 0, 1, tzinfo=UTC)})
    assert one(api) != one({**stored, "labels": '["vip"]'})
    assert one(api) != one({**stored, "info": "a note"})
    # Values are framed: the same text split differently between columns is different content.
    assert one({"id": 7, "src": "100"}) != one({"id": 7, "dst": "100"})
    assert one({"id": 7, "src": "1:2", "dst": "3"}) != one({"id": 7, "src": "1", "dst": "2:3"})


def test_rows_holding_a_field_the_table_lacks_are_found() -> None:
    table = pa.Table.from_pylist([{"id": 1, "queue_id": None}, {"id": 2, "queue_id": 7}])
    mask = unknown_values(table, ["id"])
    assert mask is not None and mask.to_pylist() == [False, True]
    assert unknown_values(table, ["id", "queue_id"]) is None
