"""Wall-clock calldate texts across daylight-saving changes: the skipped and the repeated hour."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pytest

from pipelines.voipstudio.catalog import CDRS
from pipelines.voipstudio.records import parse_page, wall_seconds
from pipelines.voipstudio.wallclock import (
    FoldResolver,
    localize,
    longest_fold,
    widen_start,
    zone_shifts,
)

MADRID = "Europe/Madrid"
ZONE = ZoneInfo(MADRID)
# Europe/Madrid goes back from 03:00 CEST to 02:00 CET at 01:00 UTC on this day.
FOLD_AT = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def wall_text(instant: datetime) -> str:
    return instant.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")


def record(record_id: int, start: datetime, duration: int) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in CDRS.api_fields}
    row.update(id=record_id, calldate=wall_text(start), duration=duration, billsec=0, labels=[])
    return row


def night(seed: int = 1, every: int = 150) -> tuple[list[dict[str, Any]], dict[int, datetime]]:
    """Calls all night around the change, ids in the order the calls ended (as a PBX writes
    them), and each CDR's true start."""
    rng = random.Random(seed)
    calls = []
    moment = FOLD_AT - timedelta(hours=4)
    while moment < FOLD_AT + timedelta(hours=4):
        duration = rng.choice([rng.randint(5, 400), rng.randint(5, 400), rng.randint(600, 5400)])
        calls.append((moment, duration))
        moment += timedelta(seconds=rng.randint(every // 2, every * 3 // 2))
    calls.sort(key=lambda call: call[0] + timedelta(seconds=call[1]))
    records, truth = [], {}
    for record_id, (start, duration) in enumerate(calls, start=1000):
        records.append(record(record_id, start, duration))
        truth[record_id] = start
    return records, truth


def page(records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"data": records, "total": len(records)})


def resolve(pages: list[list[dict[str, Any]]]) -> dict[int, datetime]:
    """Feed pages to a resolver as the resource does; the loaded calldate of every id."""
    resolver = FoldResolver(MADRID)
    loaded: dict[int, datetime] = {}
    for rows in pages:
        parsed = parse_page(page(rows), CDRS, MADRID)
        table = resolver.take(parsed.table, parsed.fold_rows, parsed.ambiguous)
        loaded.update(
            zip(table.column("id").to_pylist(), table.column("calldate").to_pylist(), strict=True)
        )
    held = resolver.release()
    if held is not None:
        loaded.update(
            zip(held.column("id").to_pylist(), held.column("calldate").to_pylist(), strict=True)
        )
    return loaded


def test_the_zone_changes_are_found() -> None:
    shifts = zone_shifts(
        MADRID, wall_seconds(datetime(2026, 1, 1)), wall_seconds(datetime(2026, 12, 31))
    )
    spring, autumn = shifts
    assert not spring.is_fold and autumn.is_fold
    assert datetime.fromtimestamp(autumn.at, UTC) == FOLD_AT
    assert datetime.fromtimestamp(autumn.wall_start, UTC) == datetime(2026, 10, 25, 2, tzinfo=UTC)
    assert autumn.wall_end - autumn.wall_start == 3600
    assert longest_fold(MADRID) == 3600 and longest_fold("UTC") == 0
    assert longest_fold("Asia/Tokyo") == 0


def test_skipped_hour_takes_the_offset_before_the_change() -> None:
    wall = pa.array(
        [
            datetime(2026, 3, 29, 1, 59, 59),
            datetime(2026, 3, 29, 2, 30),
            datetime(2026, 3, 29, 3, 0),
        ],
        type=pa.timestamp("us"),
    )
    localized = localize(wall, MADRID)
    assert localized.utc.to_pylist() == [
        datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # as if the clock had not moved yet
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    ]
    assert localized.ambiguous is None


def test_repeated_hour_is_flagged_and_provisionally_first() -> None:
    wall = pa.array(
        [
            datetime(2026, 10, 25, 1, 59),
            datetime(2026, 10, 25, 2, 30),
            None,
            datetime(2026, 10, 25, 3),
        ],
        type=pa.timestamp("us"),
    )
    localized = localize(wall, MADRID)
    assert localized.utc.to_pylist() == [
        datetime(2026, 10, 24, 23, 59, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        None,
        datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
    ]
    assert localized.ambiguous is not None
    assert localized.ambiguous.tolist() == [False, True, False, False]


def test_utc_needs_nothing() -> None:
    wall = pa.array([datetime(2026, 10, 25, 2, 30)], type=pa.timestamp("us"))
    localized = localize(wall, "UTC")
    assert localized.utc.to_pylist() == [datetime(2026, 10, 25, 2, 30, tzinfo=UTC)]
    assert localized.ambiguous is None and localized.shifts == ()


def test_every_cdr_of_a_busy_night_is_placed_in_its_pass() -> None:
    records, truth = night()
    in_fold = [r for r in records if r["calldate"].startswith("2026-10-25 02:")]
    first = [r for r in in_fold if truth[r["id"]] < FOLD_AT]
    assert len(first) > 10 and len(in_fold) - len(first) > 10, "the night must fill both passes"
    assert resolve([records]) == truth


@pytest.mark.parametrize("size", [1, 7, 50])
def test_page_and_window_boundaries_do_not_matter(size: int) -> None:
    records, truth = night(seed=2)
    pages = [records[i : i + size] for i in range(0, len(records), size)]
    # Pages arrive in any order (windows are read concurrently, cut on calldate).
    random.Random(size).shuffle(pages)
    by_window = sorted(records, key=lambda r: r["calldate"])
    windows = [by_window[i : i + size] for i in range(0, len(by_window), size)]
    assert resolve(pages) == truth
    assert resolve(windows) == truth


def test_a_cdr_alone_in_the_hour_takes_the_first_pass() -> None:
    # Nothing written in the hour before it: no evidence, so the documented choice.
    second_pass = FOLD_AT + timedelta(minutes=30)
    alone = [
        record(1, FOLD_AT - timedelta(hours=3), 60),
        record(2, second_pass, 60),
        record(3, FOLD_AT + timedelta(hours=3), 60),
    ]
    loaded = resolve([alone])
    assert alone[1]["calldate"] == "2026-10-25 02:30:00"
    assert loaded[2] == second_pass - timedelta(hours=1)


def test_a_cdr_written_before_it_tells_the_second_pass() -> None:
    second_pass = FOLD_AT + timedelta(minutes=30)
    rows = [
        record(1, FOLD_AT - timedelta(minutes=10), 60),  # 02:50 CEST, ended 00:51 UTC
        record(2, second_pass, 60),  # 02:30 CET: its first-pass reading would end 00:31
    ]
    loaded = resolve([rows])
    assert loaded == {1: FOLD_AT - timedelta(minutes=10), 2: second_pass}


def test_a_cdr_written_more_than_an_hour_late_keeps_the_first_pass() -> None:
    late = FOLD_AT - timedelta(minutes=40)  # 02:20 CEST, a 60 s call, written after...
    rows = [
        record(1, FOLD_AT + timedelta(minutes=65), 30),  # ...this call of 03:05 CET ended
        record(2, late, 60),
    ]
    # Both readings end before a CDR written earlier: the evidence is against both passes.
    assert resolve([rows])[2] == late


def test_a_range_starting_inside_the_repeated_hour_is_read_from_before_it() -> None:
    inside = wall_seconds(datetime(2026, 10, 25, 2, 20))
    assert widen_start(inside, MADRID) == wall_seconds(datetime(2026, 10, 25, 0, 0))
    just_before = wall_seconds(datetime(2026, 10, 25, 1, 0))
    assert widen_start(just_before, MADRID) == wall_seconds(datetime(2026, 10, 25, 0, 0))
    after = wall_seconds(datetime(2026, 10, 25, 3, 0))
    assert widen_start(after, MADRID) == after
    assert widen_start(inside, "UTC") == inside
