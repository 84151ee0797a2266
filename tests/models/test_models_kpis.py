"""Every KPI of the reporting models against values computed by hand.

The hand-made CDRs of handmade_cdrs.py go through the real pipeline: the emulator serves them
over HTTP (it starts with no CDRs), the real sync loads them into a DuckDB file, the runner
builds the models with the reporting time zone Europe/Madrid. Each expected value below is
worked out in its comment from the CDRs, not read off the models.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from handmade_cdrs import N1, N2, N3, N4, RECORDS, X1, X2, A, B, C, _leg
from models_harness import (
    DATASET,
    NOT_LOADED_BY_DEFAULT,
    ModelsHarness,
    day,
    empty_company,
    epoch,
    utc,
)

from pipelines.emulator.server import EmulatorServer
from pipelines.models import (
    BuildResult,
    DataTestResult,
    build_models,
    load_project,
    run_data_tests,
)


@dataclass
class Built:
    harness: ModelsHarness
    build: BuildResult
    tests: list[DataTestResult]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp_path: Path = tmp_path_factory.mktemp("kpis")
    with pytest.MonkeyPatch.context() as monkeypatch, EmulatorServer(empty_company()) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.add_cdrs(RECORDS)
        harness.sync()
        build = build_models(harness.pipeline())
        tests = run_data_tests(harness.pipeline())
        yield Built(harness, build, tests)


def assert_rows(
    actual: list[dict[str, Any]],
    expected: list[dict[str, Any]],
    *key: str,
    every: bool = True,
) -> None:
    """The same rows (by the ``key`` columns; ``every=False``: at least these) and, in each, the
    expected value of every column named."""

    def key_of(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[column] for column in key)

    by_key = {key_of(row): row for row in actual}
    assert len(by_key) == len(actual), f"{key} is not unique"
    if every:
        assert sorted(by_key, key=str) == sorted(map(key_of, expected), key=str)
    for want in expected:
        got = by_key[key_of(want)]
        for column, value in want.items():
            if isinstance(value, float):
                number = None if got[column] is None else float(got[column])  # DECIMAL cost
                assert number == pytest.approx(value), (key_of(want), column, got[column])
            else:
                assert got[column] == value, (key_of(want), column, got[column], value)


def expected_rows(
    columns: list[str], table: list[tuple[Any, ...]], date_column: str
) -> list[dict[str, Any]]:
    """The rows of a table of expected values, ``date_column`` turned from text into a date."""
    rows = [dict(zip(columns, values, strict=True)) for values in table]
    for row in rows:
        row[date_column] = day(row[date_column])
    return rows


def test_everything_builds_and_every_data_test_passes(built: Built) -> None:
    assert not built.build.skipped
    # Every model but those of the collections loaded only when named.
    assert len(built.build.built) == len(load_project().models) - len(NOT_LOADED_BY_DEFAULT)
    # 15 call models, the 4 queue views, and 4 queue staging models and dimensions
    assert len(built.build.built) == 23
    assert set(built.build.not_loaded) == NOT_LOADED_BY_DEFAULT
    assert {m.mode for m in built.build.built} == {"full"}  # the first build
    assert {t.name: t.failures for t in built.tests} == {t.name: 0 for t in built.tests}
    # the key tests of the voicemail model, which is not built, are left out
    assert "unique_key__fct_calls" in {t.name for t in built.tests}
    assert not {t.name for t in built.tests} & {"unique_key__stg_voipstudio__voicemessages"}
    assert len(built.tests) >= 12
    assert len(built.harness.table("cdrs")) == len(RECORDS)
    # One account configured the simple way: every row of every model is account 'default'.
    for model in built.build.built:
        columns = built.harness.query(f"describe {DATASET}.{model.name}")
        assert columns[0]["column_name"] == "account", model.name
        accounts = built.harness.query(f"select distinct account from {DATASET}.{model.name}")
        assert accounts == [{"account": "default"}], model.name


def test_staging_types_directions_numbers_and_local_times(built: Built) -> None:
    rows = built.harness.table("stg_voipstudio__cdrs", "cdr_id")
    assert_rows(
        rows,
        [
            # direction from type; internal when src_id and dst_id are both users
            {
                "cdr_id": 1,
                "direction": "missed",
                "src_number": N1,
                "dst_number": "101",
                "external_number": N1,
                "is_answered": False,
                "ring_seconds": 12,
            },
            {
                "cdr_id": 2,
                "direction": "inbound",
                "is_answered": True,
                "talk_seconds": 300,
                "ring_seconds": 12,
                "answered_epoch": epoch("2024-03-29 09:00:12"),
            },
            {"cdr_id": 3, "src_number": N2, "external_number": N2},  # national + country code
            {
                "cdr_id": 4,
                "direction": "outbound",
                "dst_number": N2,
                "external_number": N2,
                "src_user_id": A,
            },
            {"cdr_id": 5, "src_number": N3},  # 00 prefix
            {"cdr_id": 6, "src_number": N4},
            {
                "cdr_id": 9,
                "direction": "internal",
                "src_user_id": A,
                "dst_user_id": B,
                "external_number": None,
            },
            {
                "cdr_id": 10,
                "call_key": -10,
                "call_id": None,
                "dst_number": "+447700900123",
                "disposition": "FAILED",
            },
            {
                "cdr_id": 11,
                "src_number": None,
                "external_number": None,  # 'anonymous'
                "calldate_utc": utc("2024-03-28 23:30:00"),
                "calldate_local": utc("2024-03-29 00:30:00"),
                "local_date": day("2024-03-29"),
            },
            {"cdr_id": 12, "direction": "unknown", "cdr_type": "V", "external_number": None},
            # the clock change in spring: 00:30 UTC is 01:30 CET, 01:30 UTC is 03:30 CEST
            {
                "cdr_id": 16,
                "calldate_local": utc("2024-03-31 01:30:00"),
                "end_epoch": epoch("2024-03-31 01:00:04"),
            },
            {"cdr_id": 17, "calldate_local": utc("2024-03-31 03:30:00"), "dst_number": N2},
            {
                "cdr_id": 18,
                "src_number": N2,  # trunk prefix 0 dropped
                "calldate_local": utc("2024-10-27 00:30:00"),
                "local_date": day("2024-10-27"),
            },
            # the clock change in autumn: both are 02:30 local, one hour apart
            {"cdr_id": 19, "calldate_local": utc("2024-10-27 02:30:00")},
            {"cdr_id": 20, "calldate_local": utc("2024-10-27 02:30:00")},
            {"cdr_id": 21, "dst_number": N1},  # 0034...
        ],
        "cdr_id",
        every=False,
    )
    assert len(rows) == len(RECORDS)


# Every call: (call_key, direction, call_date, duration, wait, talk, cost, outcome,
# answered, missed, abandoned, short_abandon, offered, within_sl, transferred, business_hours,
# answering_user_id, calling_user_id, external_number, destination, legs)
CALLS = [
    # 00:30 local, busy, never rang: missed but not abandoned nor offered
    (1011, "inbound", "2024-03-29", 5, 5, 0, 0.0, "busy",
     False, True, False, False, False, False, False, False, None, None, None, None, 1),
    # 09:00:00 local: business hours include their start
    (1008, "outbound", "2024-03-29", 4, 4, 0, 0.0, "busy",
     False, False, False, False, False, False, False, True, None, B, N4, "France Landline", 1),
    # 09:00:00-09:05:12; B answers at 09:00:12: wait 12 <= 20
    (1001, "inbound", "2024-03-29", 312, 12, 300, 0.0, "answered",
     True, False, False, False, True, True, False, True, B, None, N1, "Sales", 2),
    # rings 25 s > 5: abandoned, not short
    (1002, "inbound", "2024-03-29", 25, 25, 0, 0.0, "no_answer",
     False, True, True, False, True, False, False, True, None, None, N2, None, 1),
    (1003, "outbound", "2024-03-29", 70, 10, 60, 0.028, "answered",
     True, False, False, False, False, False, False, True, None, A, N2, "Spain Mobile", 1),
    # 3 s <= 5: short abandon
    (1004, "inbound", "2024-03-29", 3, 3, 0, 0.0, "no_answer",
     False, True, True, True, True, False, False, True, None, None, N3, None, 1),
    # 12:00:00 to 12:00:48+205 s = 12:04:13; A answers at 12:00:08, B at 12:00:53
    (1006, "inbound", "2024-03-29", 253, 8, 240, 0.0, "answered",
     True, False, False, False, True, True, True, True, A, None, N4, None, 2),
    # internal: the answering user is the called user
    (1007, "internal", "2024-03-29", 65, 5, 60, 0.0, "answered",
     True, False, False, False, False, False, False, True, B, A, None, "Internal", 1),
    (-10, "outbound", "2024-03-29", 3, 3, 0, 0.0, "failed",
     False, False, False, False, False, False, False, True, None, C, "+447700900123",
     "United Kingdom Mobile", 1),
    (1020, "unknown", "2024-03-29", 10, 10, 0, 0.0, "no_answer",
     False, False, False, False, False, False, False, True, None, None, None, None, 1),
    # 18:00:00 local is outside business hours; wait = 20 s on A + 10 s ring on C = 30 > 20
    (1005, "inbound", "2024-03-29", 150, 30, 120, 0.0, "answered",
     True, False, False, False, True, False, False, False, C, None, N3, "Sales", 2),
    # 23:50 local: counted on the 29th although it ends on the 30th
    (1010, "outbound", "2024-03-29", 1210, 10, 1200, 0.56, "answered",
     True, False, False, False, False, False, False, False, None, A, N1, "Spain Mobile", 1),
    (1012, "inbound", "2024-03-31", 1804, 4, 1800, 0.0, "answered",
     True, False, False, False, True, True, False, False, A, None, N1, None, 1),
    (1013, "outbound", "2024-03-31", 96, 6, 90, 0.042, "answered",
     True, False, False, False, False, False, False, False, None, B, N2, "Spain Mobile", 1),
    # 22:30 UTC on the 26th is 00:30 local on the 27th
    (1014, "inbound", "2024-10-27", 115, 15, 100, 0.0, "answered",
     True, False, False, False, True, True, False, False, C, None, N2, None, 1),
    (1015, "inbound", "2024-10-27", 625, 25, 600, 0.0, "answered",
     True, False, False, False, True, False, False, False, A, None, N1, None, 1),
    (1016, "inbound", "2024-10-27", 30, 30, 0, 0.0, "no_answer",
     False, True, True, False, True, False, False, False, None, None, N1, None, 1),
    (1017, "outbound", "2024-10-27", 30, 30, 0, 0.0, "no_answer",
     False, False, False, False, False, False, False, False, None, A, N1, "Spain Mobile", 1),
    (1018, "inbound", "2024-10-27", 40, 40, 0, 0.0, "no_answer",
     False, True, True, False, True, False, False, False, None, None, N4, None, 1),
    (1019, "inbound", "2024-10-27", 55, 5, 50, 0.0, "answered",
     True, False, False, False, True, True, False, False, C, None, N3, None, 1),
    # Monday 09:00 local
    (1021, "outbound", "2024-10-28", 65, 5, 60, 0.02, "answered",
     True, False, False, False, False, False, False, True, None, B,
     N3, "United Kingdom Landline", 1),
]  # fmt: skip
CALL_COLUMNS = [
    "call_key",
    "direction",
    "call_date",
    "duration_seconds",
    "wait_seconds",
    "talk_seconds",
    "cost",
    "outcome",
    "is_answered",
    "is_missed",
    "is_abandoned",
    "is_short_abandon",
    "is_offered",
    "is_answered_within_sl",
    "is_transferred",
    "is_business_hours",
    "answering_user_id",
    "calling_user_id",
    "external_number",
    "destination",
    "leg_count",
]


def test_fct_calls_one_row_per_call_with_every_flag(built: Built) -> None:
    rows = built.harness.table("fct_calls", "start_epoch")
    assert_rows(rows, expected_rows(CALL_COLUMNS, CALLS, "call_date"), "call_key")
    # The call crossing midnight keeps its start; the DST calls keep their local times.
    by_key = {row["call_key"]: row for row in rows}
    assert by_key[1010]["started_at_local"] == utc("2024-03-29 23:50:00")
    assert by_key[1010]["ended_at_utc"] == utc("2024-03-29 23:10:10")
    assert by_key[1015]["started_at_local"] == by_key[1016]["started_at_local"]
    assert by_key[1016]["start_epoch"] - by_key[1015]["start_epoch"] == 3600


DAILY_COLUMNS = [
    "call_date",
    "direction",
    "attempts",
    "answered_calls",
    "asr",
    "effective_calls",
    "ner",
    "talk_seconds",
    "talk_minutes",
    "acd_seconds",
    "answered_wait_seconds",
    "asa_seconds",
    "cost",
    "missed_calls",
    "offered_calls",
    "abandoned_calls",
    "short_abandoned_calls",
    "offered_calls_excl_short",
    "abandoned_calls_excl_short",
    "abandon_rate",
    "answered_within_sl_calls",
    "service_level",
]
DAILY = [
    # inbound on the 29th: 1011, 1001, 1002, 1004, 1006, 1005. Answered 1001, 1006, 1005.
    # Effective: all 6 (3 answered, 2 no answer, 1 busy). Talk 300 + 240 + 120 = 660, ACD 220.
    # Wait of answered calls 12 + 8 + 30 = 50: ASA 50 / 3. Missed 1011, 1002, 1004; offered
    # = answered + abandoned (1002, 1004) = 5; short 1004. Abandon rate (2 - 1) / (5 - 1).
    # Within 20 s: 1001, 1006: SL 2 / 4.
    ("2024-03-29", "inbound", 6, 3, 0.5, 6, 1.0, 660, 11.0, 220.0, 50, 50 / 3, 0.0,
     3, 5, 2, 1, 4, 1, 0.25, 2, 0.5),
    # outbound on the 29th: 1008 (busy), 1003, -10 (failed), 1010. Effective 3 of 4.
    # Talk 60 + 1200, ACD 630, wait 10 + 10, cost 0.028 + 0.56.
    ("2024-03-29", "outbound", 4, 2, 0.5, 3, 0.75, 1260, 21.0, 630.0, 20, 10.0, 0.588,
     0, 0, 0, 0, 0, 0, None, 0, None),
    ("2024-03-29", "internal", 1, 1, 1.0, 1, 1.0, 60, 1.0, 60.0, 5, 5.0, 0.0,
     0, 0, 0, 0, 0, 0, None, 0, None),
    ("2024-03-29", "unknown", 1, 0, 0.0, 1, 1.0, 0, 0.0, None, 0, None, 0.0,
     0, 0, 0, 0, 0, 0, None, 0, None),
    # the 23-hour day
    ("2024-03-31", "inbound", 1, 1, 1.0, 1, 1.0, 1800, 30.0, 1800.0, 4, 4.0, 0.0,
     0, 1, 0, 0, 1, 0, 0.0, 1, 1.0),
    ("2024-03-31", "outbound", 1, 1, 1.0, 1, 1.0, 90, 1.5, 90.0, 6, 6.0, 0.042,
     0, 0, 0, 0, 0, 0, None, 0, None),
    # the 25-hour day: 1014 (00:30 local, the 26th in UTC), 1015, 1016, 1018, 1019.
    # Answered 1014, 1015, 1019: talk 750, wait 15 + 25 + 5. Abandoned 1016, 1018, none short.
    # Within 20 s: 1014, 1019.
    ("2024-10-27", "inbound", 5, 3, 0.6, 5, 1.0, 750, 12.5, 250.0, 45, 15.0, 0.0,
     2, 5, 2, 0, 5, 2, 0.4, 2, 0.4),
    ("2024-10-27", "outbound", 1, 0, 0.0, 1, 1.0, 0, 0.0, None, 0, None, 0.0,
     0, 0, 0, 0, 0, 0, None, 0, None),
    ("2024-10-28", "outbound", 1, 1, 1.0, 1, 1.0, 60, 1.0, 60.0, 5, 5.0, 0.02,
     0, 0, 0, 0, 0, 0, None, 0, None),
]  # fmt: skip


def test_agg_calls_daily_every_kpi(built: Built) -> None:
    rows = built.harness.table("agg_calls_daily", "call_date, direction")
    expected = expected_rows(DAILY_COLUMNS, DAILY, "call_date")
    # No row for 2024-03-28 or 2024-10-26: those calls started after local midnight.
    assert_rows(rows, expected, "call_date", "direction")
    assert {row["service_level_seconds"] for row in rows} == {20}
    assert {row["short_abandon_seconds"] for row in rows} == {5}


def test_agg_traffic_hourly_splits_talk_by_hour_across_midnight_and_dst(built: Built) -> None:
    rows = built.harness.table("agg_traffic_hourly", "hour_start_epoch")
    per_day = Counter(row["call_date"] for row in rows)
    # From 00:00 local on 2024-03-29 (the first call's hour) to 09:00 local on 2024-10-28.
    assert rows[0]["hour_start_utc"] == utc("2024-03-28 23:00:00")
    assert rows[0]["hour_start_local"] == utc("2024-03-29 00:00:00")
    assert rows[-1]["hour_start_local"] == utc("2024-10-28 09:00:00")
    assert len(rows) == (epoch("2024-10-28 08:00:00") - epoch("2024-03-28 23:00:00")) // 3600 + 1
    assert per_day[day("2024-03-29")] == 24
    assert per_day[day("2024-03-31")] == 23  # clocks forward
    assert per_day[day("2024-10-27")] == 25  # clocks back
    assert per_day[day("2024-10-28")] == 10
    hours_31 = sorted(r["hour_of_day"] for r in rows if r["call_date"] == day("2024-03-31"))
    assert 2 not in hours_31 and len(set(hours_31)) == 23
    hours_27 = Counter(r["hour_of_day"] for r in rows if r["call_date"] == day("2024-10-27"))
    assert hours_27[2] == 2 and set(hours_27.values()) == {1, 2}

    by_hour = {row["hour_start_utc"]: row for row in rows}
    expected = {
        # hour start UTC: (local hour, attempts, talk seconds, holding seconds (every leg from
        # its start to its end), peak concurrent calls, peak channels, busy hour)
        "2024-03-28 23:00:00": (0, 1, 0, 5, 1, 1, False),  # 1011 at 00:30 local
        "2024-03-29 08:00:00": (9, 1, 0, 4, 1, 1, False),  # 1008, busy
        # 1001 talks 09:00:12-09:05:12; 1002 rings 09:02:00-09:02:25 during 1001: 2 at once.
        # Holding: A's leg 12 s + B's 312 s + 1002's 25 s; channels: A and B ring together.
        "2024-03-29 09:00:00": (10, 2, 300, 349, 2, 2, False),
        # 40 s + 200 s of the transfer; its legs are up 48 + 205 s, one after the other
        "2024-03-29 12:00:00": (13, 1, 240, 253, 1, 1, False),
        "2024-03-29 17:00:00": (18, 1, 120, 150, 1, 1, False),  # 1005: 20 s + 130 s
        # 1010 talks 22:50:10-23:10:10 UTC: 590 s in the 23:00 local hour, 610 s in the next;
        # it is up from 22:50:00: 600 s held in the first hour
        "2024-03-29 22:00:00": (23, 1, 590, 600, 1, 1, True),
        "2024-03-29 23:00:00": (0, 0, 610, 610, 1, 1, True),  # busy hour of the 30th
        # 1012 talks 00:30:04-01:00:04 UTC: 1796 s at 01:00 CET, 4 s at 03:00 CEST, plus 90 s
        # of 1013 (01:30:06-01:31:36 UTC) in that hour; held 1800 s + 4 s + 96 s
        "2024-03-31 00:00:00": (1, 1, 1796, 1800, 1, 1, True),
        "2024-03-31 01:00:00": (3, 1, 94, 100, 1, 1, False),
        "2024-10-26 22:00:00": (0, 1, 100, 115, 1, 1, False),  # 1014, 00:30 local on the 27th
        "2024-10-27 00:00:00": (2, 1, 600, 625, 1, 1, True),  # 1015, first 02:00 hour (CEST)
        "2024-10-27 01:00:00": (2, 1, 0, 30, 1, 1, False),  # 1016, second 02:00 hour (CET)
        "2024-10-27 21:00:00": (22, 1, 50, 55, 1, 1, False),
        "2024-10-28 08:00:00": (9, 1, 60, 65, 1, 1, True),
    }
    for start, (hour, attempts, talk, holding, peak, channels, busy) in expected.items():
        row = by_hour[utc(start)]
        assert (
            row["hour_of_day"],
            row["call_attempts"],
            row["talk_seconds"],
            row["holding_seconds"],
            row["peak_concurrent_calls"],
            row["peak_concurrent_channels"],
            row["is_busy_hour"],
        ) == (hour, attempts, talk, holding, peak, channels, busy), start
        assert row["carried_erlangs"] == pytest.approx(holding / 3600)
        assert row["talk_erlangs"] == pytest.approx(talk / 3600)
        # every leg here has an outside party but internal call 1007 (13:00 UTC)
        assert row["external_holding_seconds"] == holding
    # Internal call 1007 (A calls B, 65 s) holds a channel but no trunk.
    internal = by_hour[utc("2024-03-29 13:00:00")]
    assert (internal["holding_seconds"], internal["external_holding_seconds"]) == (65, 0)
    # Quarters of the hour: 1010 is up 22:50:00-23:10:10 UTC: 600 s in the last quarter of its
    # first hour, 610 s in the first quarter (00:00-00:15 local) of the next; its attempt in the
    # 45 quarter.
    first, second = by_hour[utc("2024-03-29 22:00:00")], by_hour[utc("2024-03-29 23:00:00")]
    quarters = ("holding_seconds_00", "holding_seconds_15", "holding_seconds_30")
    assert [first[q] for q in (*quarters, "holding_seconds_45")] == [0, 0, 0, 600]
    assert [second[q] for q in (*quarters, "holding_seconds_45")] == [610, 0, 0, 0]
    assert (first["call_attempts_45"], first["call_attempts_00"]) == (1, 0)
    # Complete hours: from the first call's (2024-03-28 23:30 UTC) to those ending by the
    # newest call (2024-10-28 08:00 UTC) minus the sync's lag of 6 h: the first hour is partial
    # and the last complete one starts at 01:00 UTC on the 28th.
    complete = [row["hour_start_utc"] for row in rows if row["is_complete"]]
    assert complete[0] == utc("2024-03-29 00:00:00")
    assert complete[-1] == utc("2024-10-28 01:00:00")
    assert (
        len(complete) == (epoch("2024-10-28 01:00:00") - epoch("2024-03-29 00:00:00")) // 3600 + 1
    )
    # Every talked second lands in exactly one hour; one busy hour per day with talk.
    assert sum(row["talk_seconds"] for row in rows) == 4680
    assert sum(row["holding_seconds"] for row in rows) == sum(r["duration"] for r in RECORDS)
    assert sum(row["call_attempts"] for row in rows) == len(CALLS)
    busy_days = Counter(row["call_date"] for row in rows if row["is_busy_hour"])
    assert busy_days == {
        day(d): 1 for d in ("2024-03-29", "2024-03-30", "2024-03-31", "2024-10-27", "2024-10-28")
    }
    quiet = [r for r in rows if r["call_date"] == day("2024-05-01")]
    assert len(quiet) == 24 and all(r["talk_seconds"] == 0 for r in quiet)
    assert not any(r["is_busy_hour"] or r["peak_concurrent_calls"] for r in quiet)


USER_COLUMNS = [
    "call_date",
    "user_id",
    "handled_calls",
    "inbound_handled_calls",
    "outbound_calls",
    "outbound_answered_calls",
    "internal_calls",
    "missed_calls",
    "missed_unanswered_calls",
    "talk_seconds",
    "answered_ring_seconds",
    "inbound_answered_legs",
    "avg_ring_seconds",
    "callbacks_made",
]
USERS = [
    # A on the 29th: answered 1003 (out), 1006 (in, 8 s ring), 1007 (internal), 1010 (out);
    # rang and missed 1001 (B answered), 1002 (nobody), 1005 (C answered); 1020 is unknown.
    # Talk 60 + 40 + 60 + 1200. 1003 is the callback of 1002.
    ("2024-03-29", A, 4, 1, 2, 2, 1, 3, 1, 1360, 8, 1, 8.0, 1),
    # B: answered 1001 (12 s ring) and 1006 (5 s ring); 1008 out busy; missed 1004.
    ("2024-03-29", B, 2, 2, 1, 0, 0, 1, 1, 500, 17, 2, 8.5, 0),
    # C: answered 1005 (10 s ring); 1011 missed (busy); -10 out, failed.
    ("2024-03-29", C, 1, 1, 1, 0, 0, 1, 1, 120, 10, 1, 10.0, 0),
    ("2024-03-31", A, 1, 1, 0, 0, 0, 0, 0, 1800, 4, 1, 4.0, 0),
    ("2024-03-31", B, 1, 0, 1, 1, 0, 0, 0, 90, 0, 0, None, 0),
    # A: answered 1015 (25 s ring), missed 1016, called back with 1017 (unanswered).
    ("2024-10-27", A, 1, 1, 1, 0, 0, 1, 1, 600, 25, 1, 25.0, 1),
    ("2024-10-27", B, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, None, 0),
    # C: 1014 (15 s ring) and 1019 (5 s ring)
    ("2024-10-27", C, 2, 2, 0, 0, 0, 0, 0, 150, 20, 2, 10.0, 0),
    ("2024-10-28", B, 1, 0, 1, 1, 0, 0, 0, 60, 0, 0, None, 0),
]


def test_agg_user_daily(built: Built) -> None:
    users = {row["id"]: row for row in built.harness.table("users")}
    rows = built.harness.table("agg_user_daily", "call_date, user_id")
    expected = expected_rows(USER_COLUMNS, USERS, "call_date")
    for row in expected:
        user = users[row["user_id"]]
        row["user_name"] = f"{user['first_name']} {user['last_name']}"
        row["extension"] = user["ext"]
    assert_rows(rows, expected, "call_date", "user_id")


DESTINATIONS = [
    # (month, direction, destination, attempts, answered, asr, talk, minutes, acd, cost, cpm)
    ("2024-03-01", "inbound", "Sales", 2, 2, 1.0, 420, 7.0, 210.0, 0.0, 0.0),  # 1001, 1005
    # 1011, 1002, 1004, 1006, 1012 have no destination
    ("2024-03-01", "inbound", "unknown", 5, 2, 0.4, 2040, 34.0, 1020.0, 0.0, 0.0),
    # 1003, 1010, 1013: 0.028 + 0.56 + 0.042 for 1350 s
    ("2024-03-01", "outbound", "Spain Mobile", 3, 3, 1.0, 1350, 22.5, 450.0, 0.63, 0.028),
    ("2024-03-01", "outbound", "France Landline", 1, 0, 0.0, 0, 0.0, None, 0.0, None),
    ("2024-03-01", "outbound", "United Kingdom Mobile", 1, 0, 0.0, 0, 0.0, None, 0.0, None),
    ("2024-03-01", "internal", "Internal", 1, 1, 1.0, 60, 1.0, 60.0, 0.0, 0.0),
    ("2024-03-01", "unknown", "unknown", 1, 0, 0.0, 0, 0.0, None, 0.0, None),
    ("2024-10-01", "inbound", "unknown", 5, 3, 0.6, 750, 12.5, 250.0, 0.0, 0.0),
    ("2024-10-01", "outbound", "Spain Mobile", 1, 0, 0.0, 0, 0.0, None, 0.0, None),
    ("2024-10-01", "outbound", "United Kingdom Landline", 1, 1, 1.0, 60, 1.0, 60.0, 0.02, 0.02),
]
DESTINATION_COLUMNS = [
    "month_start",
    "direction",
    "destination",
    "attempts",
    "answered_calls",
    "asr",
    "talk_seconds",
    "talk_minutes",
    "acd_seconds",
    "cost",
    "cost_per_minute",
]


def test_agg_destination_monthly(built: Built) -> None:
    rows = built.harness.table("agg_destination_monthly", "month_start, direction, destination")
    expected = expected_rows(DESTINATION_COLUMNS, DESTINATIONS, "month_start")
    assert_rows(rows, expected, "month_start", "direction", "destination")


def test_missed_call_callbacks(built: Built) -> None:
    rows = built.harness.table("fct_missed_call_callbacks", "missed_call_key")
    horizon = epoch("2024-10-28 08:00:00")  # the newest call's start
    assert_rows(
        rows,
        [
            # 1002 ended 09:02:25; A called back at 10:30:00: 5255 s
            {
                "missed_call_key": 1002,
                "external_number": N2,
                "is_business_hours": True,
                "callback_call_key": 1003,
                "callback_type": "callback",
                "callback_user_id": A,
                "is_callback_answered": True,
                "time_to_callback_seconds": 5255,
                "callback_date": day("2024-03-29"),
                "called_back_within_1h": False,
                "called_back_within_4h": True,
                "called_back_within_24h": True,
                "is_too_recent": False,
                "missed_at_local": utc("2024-03-29 10:02:00"),
            },
            # 1004 (short abandon) ended 11:00:03; they called again at 17:00:00 and C answered
            {
                "missed_call_key": 1004,
                "external_number": N3,
                "callback_call_key": 1005,
                "callback_type": "retry",
                "callback_user_id": C,
                "time_to_callback_seconds": 21597,
                "called_back_within_1h": False,
                "called_back_within_4h": False,
                "called_back_within_24h": True,
                "is_too_recent": False,
            },
            # 1016 ended 01:30:30; A called at 06:00:00 (unanswered: the attempt counts); the
            # number's answered call 1015 was earlier and does not count
            {
                "missed_call_key": 1016,
                "external_number": N1,
                "is_business_hours": False,
                "callback_call_key": 1017,
                "callback_type": "callback",
                "is_callback_answered": False,
                "time_to_callback_seconds": 16170,
                "called_back_within_1h": False,
                "called_back_within_4h": False,
                "called_back_within_24h": True,
                "is_too_recent": False,
            },
            # 1018 ended 20:00:40 on the 27th; nothing since; the data ends 43160 s later:
            # the 1 h and 4 h windows have passed, the 24 h one is still open
            {
                "missed_call_key": 1018,
                "external_number": N4,
                "callback_call_key": None,
                "time_to_callback_seconds": None,
                "called_back_within_1h": False,
                "called_back_within_4h": False,
                "called_back_within_24h": None,
                "callback_window_closed_1h": True,
                "callback_window_closed_4h": True,
                "callback_window_closed_24h": False,
                "is_too_recent": True,
                "missed_ended_date": day("2024-10-27"),  # 21:00:40 CET
            },
        ],
        "missed_call_key",
    )
    # 1011 has no number (anonymous): it cannot be called back and has no row.
    assert horizon - epoch("2024-10-27 20:00:40") == 43160


def test_dim_accounts_is_the_horizon_of_the_data(built: Built) -> None:
    [row] = built.harness.table("dim_accounts")
    # The newest call starts 2024-10-28 08:00:00; the first at 2024-03-28 23:30:00 UTC (00:30
    # local on the 29th), in the local hour starting 23:00 UTC.
    assert row["data_horizon_epoch"] == epoch("2024-10-28 08:00:00")
    assert row["data_horizon_utc"] == utc("2024-10-28 08:00:00")
    assert row["first_call_epoch"] == epoch("2024-03-28 23:30:00")
    assert row["first_hour_epoch"] == epoch("2024-03-28 23:00:00")
    assert row["last_activity_epoch"] >= row["data_horizon_epoch"]
    assert row["call_count"] == len(built.harness.table("fct_calls"))


def test_repeat_callers(built: Built) -> None:
    rows = built.harness.table("rpt_repeat_callers", "caller_number")
    assert_rows(
        rows,
        [
            # X1: 1001 (03-29 09:00), 1012 (1 d 15.5 h later: repeat), 1015 (7 months later),
            # 1016 (1 h later: repeat). Both repeats followed an answered call.
            {
                "caller_number": N1,
                "inbound_calls": 4,
                "repeat_calls": 2,
                "repeat_rate": 0.5,
                "repeats_after_answered": 2,
                "repeats_after_missed": 0,
                "answered_calls": 3,
                "missed_calls": 1,
                "shortest_gap_seconds": 3600,
                "first_call_at_utc": utc("2024-03-29 09:00:00"),
                "last_call_at_utc": utc("2024-10-27 01:30:00"),
                "repeat_call_days": 7,
            },
            # X3: 1004 (missed 11:00), 1005 (17:00: repeat after a missed call), 1019 (Oct)
            {
                "caller_number": N3,
                "inbound_calls": 3,
                "repeat_calls": 1,
                "repeat_rate": 1 / 3,
                "repeats_after_answered": 0,
                "repeats_after_missed": 1,
                "answered_calls": 2,
                "missed_calls": 1,
                "shortest_gap_seconds": 21600,
            },
        ],
        "caller_number",
        every=False,
    )
    # Every number that called in has a row, also those that never called again (X2, X4).
    assert {row["caller_number"] for row in rows} == {N1, N2, N3, N4}
    assert {row["repeat_calls"] for row in rows if row["caller_number"] in (N2, N4)} == {0}


def test_a_callback_is_a_contact_within_24_hours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missed call called back 25 h after it ended has no callback; one called back 23 h
    after has one. (Hand-computed: ends 10:00:20 and 12:00:20 UTC; the outbound calls start
    25 h and 23 h later.)"""
    records = [
        _leg(1, 1, "M", "2024-05-06 10:00:00", A, caller=X1,
             duration=20, billsec=0, disposition="NO ANSWER"),
        _leg(2, 2, "O", "2024-05-07 11:00:20", A, called=N1,
             duration=30, billsec=20, disposition="CONNECTED"),
        _leg(3, 3, "M", "2024-05-06 12:00:00", B, caller=X2,
             duration=20, billsec=0, disposition="NO ANSWER"),
        _leg(4, 4, "O", "2024-05-07 11:00:20", B, called=N2,
             duration=30, billsec=20, disposition="CONNECTED"),
    ]  # fmt: skip
    with EmulatorServer(empty_company()) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.add_cdrs(records)
        harness.sync()
        build_models(harness.pipeline())
        rows = harness.table("fct_missed_call_callbacks", "missed_call_key")
    assert_rows(
        rows,
        [
            {
                "missed_call_key": 1,
                "callback_call_key": None,
                "time_to_callback_seconds": None,
                "called_back_within_24h": False,
                "missed_ended_date": day("2024-05-06"),
            },
            {
                "missed_call_key": 3,
                "callback_call_key": 4,
                "time_to_callback_seconds": 23 * 3600,
                "called_back_within_24h": True,
            },
        ],
        "missed_call_key",
    )
