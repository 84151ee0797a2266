"""The queue views (fct_calls' queue columns, fct_queue_calls, agg_queue_interval,
agg_queue_daily, agg_agent_daily) against values computed by hand.

The CDRs below go through the real pipeline (emulator over HTTP, the real sync, the runner),
reporting time zone Europe/Madrid, service level 20 s, short abandons up to 5 s. The emulator
company has two queues, Sales (7001) and Support (7002); a CDR names its queue in
``destination`` with ``context = from-queue`` (the emulator's convention, a guess about the live
API). The emulator never sends a call through two queues (it generates no overflow), so call
2002 is made by hand: it rings Sales for 20 s and then goes to Support, which answers.

Europe/Madrid: CET (UTC+1) until 2024-03-31 01:00 UTC, CEST (UTC+2) until 2024-10-27 01:00 UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from handmade_cdrs import X1, X2, X3, X4, A, B, C, _leg
from models_harness import DATASET, ModelsHarness, day, empty_company, utc
from test_models_incremental import assert_same, duckdb_rows, full_rebuild_of
from test_models_kpis import assert_rows
from test_models_postgres import _row

from pipelines.emulator.server import EmulatorServer
from pipelines.models import build_models, run_data_tests
from pipelines.models.metrics import METRICS, read_metrics

SALES, SUPPORT = "Sales", "Support"
Q = "from-queue"

RECORDS: list[dict[str, Any]] = [
    # 2001: 10:00 local; Sales rings A and B; B answers after 12 s, talks 300 s.
    _leg(101, 2001, "M", "2024-03-29 09:00:00", A, caller=X1, duration=12, billsec=0,
         disposition="NO ANSWER", destination=SALES, context=Q),
    _leg(102, 2001, "I", "2024-03-29 09:00:00", B, caller=X1, duration=312, billsec=300,
         disposition="CONNECTED", destination=SALES, context=Q),
    # 2002: 10:10 local; Sales rings A for 20 s, then the call overflows to Support, where C
    # answers after 15 s and talks 60 s.
    _leg(103, 2002, "M", "2024-03-29 09:10:00", A, caller=X2, duration=20, billsec=0,
         disposition="NO ANSWER", destination=SALES, context=Q),
    _leg(104, 2002, "I", "2024-03-29 09:10:20", C, caller=X2, duration=75, billsec=60,
         disposition="CONNECTED", destination=SUPPORT, context=Q),
    # 2003: 10:20 local; the caller hangs up after 45 s in Sales.
    _leg(105, 2003, "M", "2024-03-29 09:20:00", A, caller=X3, duration=45, billsec=0,
         disposition="NO ANSWER", destination=SALES, context=Q),
    # 2004: 10:40 local; a short abandon (4 s) in Support.
    _leg(106, 2004, "M", "2024-03-29 09:40:00", C, caller=X4, duration=4, billsec=0,
         disposition="NO ANSWER", destination=SUPPORT, context=Q),
    # 2008: 13:00 local; a direct call (no queue), answered.
    _leg(107, 2008, "I", "2024-03-29 12:00:00", A, caller=X4, duration=70, billsec=60,
         disposition="CONNECTED"),
    # 2012: 15:00 local; A calls X3 back (abandoned in Sales at 10:20), 10 s ring, 30 s talk.
    _leg(117, 2012, "O", "2024-03-29 14:00:00", A, called="+44 20 7946 0000", duration=40,
         billsec=30, disposition="CONNECTED", destination="United Kingdom Landline"),
    # 2005: 23:55 local; Sales rings A twice (20 s rounds), then B answers after 65 s in all and
    # talks 600 s, until 00:06:05 local on the 30th: the call crosses local midnight.
    _leg(108, 2005, "M", "2024-03-29 22:55:00", A, caller=X1, duration=20, billsec=0,
         disposition="NO ANSWER", destination=SALES, context=Q),
    _leg(109, 2005, "M", "2024-03-29 22:55:20", A, caller=X1, duration=20, billsec=0,
         disposition="NO ANSWER", destination=SALES, context=Q),
    _leg(110, 2005, "I", "2024-03-29 22:55:40", B, caller=X1, duration=625, billsec=600,
         disposition="CONNECTED", destination=SALES, context=Q),
    # 2006: 01:50 CET on 2024-03-31 (clocks go forward at 02:00): Support, answered after 8 s.
    _leg(111, 2006, "I", "2024-03-31 00:50:00", C, caller=X2, duration=108, billsec=100,
         disposition="CONNECTED", destination=SUPPORT, context=Q),
    # 2007: 03:05 CEST, 15 minutes of real time later: abandoned in Support after 30 s.
    _leg(112, 2007, "M", "2024-03-31 01:05:00", C, caller=X3, duration=30, billsec=0,
         disposition="NO ANSWER", destination=SUPPORT, context=Q),
    # 2009 and 2010: 02:10 local twice on 2024-10-27 (clocks go back at 03:00), once in CEST and
    # once in CET; Sales, answered after 5 s, 50 s talk each.
    _leg(113, 2009, "I", "2024-10-27 00:10:00", A, caller=X1, duration=55, billsec=50,
         disposition="CONNECTED", destination=SALES, context=Q),
    _leg(114, 2010, "I", "2024-10-27 01:10:00", A, caller=X2, duration=55, billsec=50,
         disposition="CONNECTED", destination=SALES, context=Q),
    # 2011: Monday 09:00 local, outbound: the data horizon (completes 2024-10-27).
    _leg(115, 2011, "O", "2024-10-28 08:00:00", B, called="+44 20 7946 0000", duration=65,
         billsec=60, disposition="CONNECTED", destination="United Kingdom Landline"),
]  # fmt: skip


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelsHarness]:
    tmp_path: Path = tmp_path_factory.mktemp("queues")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        EmulatorServer(empty_company(queues=2)) as server,
    ):
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.add_cdrs(RECORDS)
        harness.sync()
        build_models(harness.pipeline())
        failed = [t.describe() for t in run_data_tests(harness.pipeline()) if not t.passed]
        assert failed == []
        yield harness


def test_the_emulator_company_has_the_two_queues(harness: ModelsHarness) -> None:
    queues = harness.table("stg_voipstudio__queues", "queue_id")
    assert [(q["queue_id"], q["queue_name"]) for q in queues] == [(7001, SALES), (7002, SUPPORT)]


def test_fct_calls_keeps_the_first_queue_and_counts_them(harness: ModelsHarness) -> None:
    rows = harness.table("fct_calls", "call_key")
    expected = [
        {"call_key": 2001, "queue_name": SALES, "queue_count": 1},
        # through Sales, then Support: keeps the first, counts both
        {"call_key": 2002, "queue_name": SALES, "queue_count": 2},
        {"call_key": 2003, "queue_name": SALES, "queue_count": 1},
        {"call_key": 2004, "queue_name": SUPPORT, "queue_count": 1},
        {"call_key": 2005, "queue_name": SALES, "queue_count": 1},
        {"call_key": 2006, "queue_name": SUPPORT, "queue_count": 1},
        {"call_key": 2007, "queue_name": SUPPORT, "queue_count": 1},
        # direct calls: no queue
        {"call_key": 2008, "queue_name": None, "queue_count": 0},
        {"call_key": 2009, "queue_name": SALES, "queue_count": 1},
        {"call_key": 2010, "queue_name": SALES, "queue_count": 1},
        {"call_key": 2011, "queue_name": None, "queue_count": 0},
        {"call_key": 2012, "queue_name": None, "queue_count": 0},
    ]
    assert_rows(rows, expected, "call_key")
    # the first queue's id, by name (stg_voipstudio__queue_names); null for direct calls
    ids = {SALES: 7001, SUPPORT: 7002, None: None}
    assert {r["call_key"]: r["queue_id"] for r in rows} == {
        r["call_key"]: ids[r["queue_name"]] for r in expected
    }
    # the same mapping as fct_queue_calls' first queue
    first = {
        r["call_key"]: r["queue_id"]
        for r in harness.table("fct_queue_calls")
        if r["queue_sequence"] == 1
    }
    assert {r["call_key"]: r["queue_id"] for r in rows if r["queue_count"]} == first


def test_the_queue_of_a_name(harness: ModelsHarness) -> None:
    rows = harness.table("stg_voipstudio__queue_names", "queue_name")
    assert [(r["queue_name"], r["queue_id"], r["queue_count"]) for r in rows] == [
        (SALES, 7001, 1),
        (SUPPORT, 7002, 1),
    ]


def test_fct_queue_calls_one_row_per_queue_entered(harness: ModelsHarness) -> None:
    rows = harness.table("fct_queue_calls", "call_key, queue_sequence")
    # (call, queue): sequence, wait, talk, holding, offered, answered, abandoned, overflowed
    table = [
        (2001, SALES, 1, 12, 300, 312, True, True, False, False),
        (2002, SALES, 1, 20, 0, 20, True, False, False, True),  # moved on to Support
        (2002, SUPPORT, 2, 15, 60, 75, True, True, False, False),  # 09:10:20 -> 09:10:35
        (2003, SALES, 1, 45, 0, 45, True, False, True, False),
        (2004, SUPPORT, 1, 4, 0, 4, True, False, True, False),
        (2005, SALES, 1, 65, 600, 665, True, True, False, False),  # 22:55:00 -> 23:06:05
        (2006, SUPPORT, 1, 8, 100, 108, True, True, False, False),
        (2007, SUPPORT, 1, 30, 0, 30, True, False, True, False),
        (2009, SALES, 1, 5, 50, 55, True, True, False, False),
        (2010, SALES, 1, 5, 50, 55, True, True, False, False),
    ]
    columns = [
        "call_key", "queue_name", "queue_sequence", "wait_seconds", "talk_seconds",
        "holding_seconds", "is_offered", "is_answered", "is_abandoned", "is_overflowed",
    ]  # fmt: skip
    expected = [dict(zip(columns, values, strict=True)) for values in table]
    assert_rows(rows, expected, "call_key", "queue_name")
    by_key = {(r["call_key"], r["queue_name"]): r for r in rows}
    assert by_key[2004, SUPPORT]["is_short_abandon"] is True
    assert by_key[2003, SALES]["is_short_abandon"] is False
    # answered within the 20 s service level: 2001 (12 s), 2002 in Support (15 s); not 2005
    assert by_key[2002, SUPPORT]["is_answered_within_sl"] is True
    assert by_key[2005, SALES]["is_answered_within_sl"] is False
    # the call crossing midnight counts on the day it entered the queue
    assert by_key[2005, SALES]["call_date"] == day("2024-03-29")


INTERVAL_COLUMNS = [
    "interval_start_utc", "queue_name", "interval_start_local", "call_date", "offered_calls",
    "answered_calls", "answered_within_sl_calls", "abandoned_calls", "short_abandoned_calls",
    "abandoned_within_sl_calls", "abandoned_after_sl_calls", "overflowed_calls",
    "offered_calls_excl_short", "answered_or_abandoned_after_sl_calls", "service_level",
    "service_level_incl_short", "service_level_excl_early_abandons", "abandon_rate",
    "answered_wait_seconds", "asa_seconds", "longest_wait_seconds", "talk_seconds",
    "holding_seconds", "erlangs", "is_complete",
]  # fmt: skip

INTERVALS = [
    # Sales 10:00 local: 2001 answered in 12 s, 2002 overflowed after 20 s, 2003 abandoned
    # after 45 s. SL 1/3, excluding early abandons 1/(1 + 1); holding 312 + 20 + 45.
    ("2024-03-29 09:00:00", SALES, "2024-03-29 10:00:00", "2024-03-29", 3, 1, 1, 1, 0, 0, 1, 1,
     3, 2, 1 / 3, 1 / 3, 1 / 2, 1 / 3, 12, 12.0, 45, 300, 377, 377 / 1800, True),
    # Support 10:00 local: 2002 after its overflow (it entered Support at 10:10:20).
    ("2024-03-29 09:00:00", SUPPORT, "2024-03-29 10:00:00", "2024-03-29", 1, 1, 1, 0, 0, 0, 0,
     0, 1, 1, 1.0, 1.0, 1.0, 0.0, 15, 15.0, 15, 60, 75, 75 / 1800, True),
    # Support 10:30 local: 2004, a short abandon: left out of SL and abandon rate (0 / 0).
    ("2024-03-29 09:30:00", SUPPORT, "2024-03-29 10:30:00", "2024-03-29", 1, 0, 0, 1, 1, 1, 0,
     0, 0, 0, None, 0.0, None, None, 0, None, 4, 0, 4, 4 / 1800, True),
    # Sales 23:30 local: 2005 entered at 23:55 and talked past midnight: all counted here.
    ("2024-03-29 22:30:00", SALES, "2024-03-29 23:30:00", "2024-03-29", 1, 1, 0, 0, 0, 0, 0, 0,
     1, 1, 0.0, 0.0, 0.0, 0.0, 65, 65.0, 65, 600, 665, 665 / 1800, True),
    # 2024-03-31: 01:30 CET and 03:00 CEST follow each other (00:30 and 01:00 UTC).
    ("2024-03-31 00:30:00", SUPPORT, "2024-03-31 01:30:00", "2024-03-31", 1, 1, 1, 0, 0, 0, 0,
     0, 1, 1, 1.0, 1.0, 1.0, 0.0, 8, 8.0, 8, 100, 108, 108 / 1800, True),
    ("2024-03-31 01:00:00", SUPPORT, "2024-03-31 03:00:00", "2024-03-31", 1, 0, 0, 1, 0, 0, 1,
     0, 1, 1, 0.0, 0.0, 0.0, 1.0, 0, None, 30, 0, 30, 30 / 1800, True),
    # 2024-10-27: two 02:00 local intervals, one hour of real time apart.
    ("2024-10-27 00:00:00", SALES, "2024-10-27 02:00:00", "2024-10-27", 1, 1, 1, 0, 0, 0, 0, 0,
     1, 1, 1.0, 1.0, 1.0, 0.0, 5, 5.0, 5, 50, 55, 55 / 1800, True),
    ("2024-10-27 01:00:00", SALES, "2024-10-27 02:00:00", "2024-10-27", 1, 1, 1, 0, 0, 0, 0, 0,
     1, 1, 1.0, 1.0, 1.0, 0.0, 5, 5.0, 5, 50, 55, 55 / 1800, True),
]  # fmt: skip


def _expected(columns: list[str], table: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    rows = [dict(zip(columns, values, strict=True)) for values in table]
    for row in rows:
        row["call_date"] = day(row["call_date"])
        for column in ("interval_start_utc", "interval_start_local"):
            if column in row:
                row[column] = utc(row[column])
    return rows


def test_agg_queue_interval(harness: ModelsHarness) -> None:
    rows = harness.table("agg_queue_interval", "interval_start_utc, queue_name")
    assert_rows(rows, _expected(INTERVAL_COLUMNS, INTERVALS), "interval_start_utc", "queue_name")
    assert {r["interval_minutes"] for r in rows} == {30}
    assert {r["queue_id"] for r in rows if r["queue_name"] == SALES} == {7001}
    sales_10 = next(r for r in rows if r["queue_name"] == SALES and r["offered_calls"] == 3)
    buckets = {k: v for k, v in sales_10.items() if "_wait_" in k and k.endswith("_calls")}
    assert buckets == {
        "answered_wait_0_10_calls": 0,
        "answered_wait_10_20_calls": 1,  # 12 s
        "answered_wait_20_30_calls": 0,
        "answered_wait_30_60_calls": 0,
        "answered_wait_60_plus_calls": 0,
        "abandoned_wait_0_10_calls": 0,
        "abandoned_wait_10_20_calls": 0,
        "abandoned_wait_20_30_calls": 0,
        "abandoned_wait_30_60_calls": 1,  # 45 s
        "abandoned_wait_60_plus_calls": 0,
    }
    late = next(r for r in rows if r["longest_wait_seconds"] == 65)
    assert late["answered_wait_60_plus_calls"] == 1
    short = next(r for r in rows if r["short_abandoned_calls"] == 1)
    assert short["abandoned_wait_0_10_calls"] == 1


DAILY_COLUMNS = [
    "call_date", "queue_name", "offered_calls", "answered_calls", "answered_within_sl_calls",
    "abandoned_calls", "short_abandoned_calls", "abandoned_after_sl_calls", "overflowed_calls",
    "service_level", "service_level_excl_early_abandons", "abandon_rate",
    "answered_wait_seconds", "asa_seconds", "longest_wait_seconds", "talk_seconds",
    "holding_seconds", "period_seconds", "erlangs", "is_complete",
]  # fmt: skip

DAILY = [
    # the account's first day: not complete
    ("2024-03-29", SALES, 4, 2, 1, 1, 0, 1, 1, 1 / 4, 1 / 3, 1 / 4, 77, 38.5, 65, 900, 1042,
     86400, 1042 / 86400, False),
    # the short abandon is out of SL and abandon rate: 1 / (2 - 1) and 0 / (2 - 1)
    ("2024-03-29", SUPPORT, 2, 1, 1, 1, 1, 0, 0, 1.0, 1.0, 0.0, 15, 15.0, 15, 60, 79, 86400,
     79 / 86400, False),
    # the spring changeover day has 23 hours
    ("2024-03-31", SUPPORT, 2, 1, 1, 1, 0, 1, 0, 0.5, 0.5, 0.5, 8, 8.0, 30, 100, 138, 82800,
     138 / 82800, True),
    # the autumn one 25
    ("2024-10-27", SALES, 2, 2, 2, 0, 0, 0, 0, 1.0, 1.0, 0.0, 10, 5.0, 5, 100, 110, 90000,
     110 / 90000, True),
]  # fmt: skip


def test_agg_queue_daily(harness: ModelsHarness) -> None:
    rows = harness.table("agg_queue_daily", "call_date, queue_name")
    assert_rows(rows, _expected(DAILY_COLUMNS, DAILY), "call_date", "queue_name")


FIFTEEN = {"MODELS__QUEUE_INTERVAL_MINUTES": "15"}
# The models the queue settings and the queues shape (compared on PostgreSQL).
QUEUE_VIEWS = (
    "fct_calls",
    "fct_queue_calls",
    "agg_queue_interval",
    "agg_queue_daily",
    "agg_agent_daily",
)


@pytest.fixture(scope="module")
def fifteen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelsHarness]:
    """The CDRs above with 15-minute intervals, on DuckDB."""
    tmp_path: Path = tmp_path_factory.mktemp("fifteen")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        EmulatorServer(empty_company(queues=2)) as server,
    ):
        harness = ModelsHarness(server, tmp_path, monkeypatch, **FIFTEEN)
        harness.add_cdrs(RECORDS)
        harness.sync()
        build_models(harness.pipeline())
        yield harness


def test_intervals_of_15_minutes(fifteen: ModelsHarness) -> None:
    harness = fifteen
    rows = harness.table("agg_queue_interval", "interval_start_utc, queue_name")
    sales = [r for r in rows if r["queue_name"] == SALES and r["call_date"] == day("2024-03-29")]
    # 2001 (10:00) and 2002 (10:10) in 10:00-10:15, 2003 (10:20) in 10:15, 2005 (23:55) in 23:45
    assert [(r["interval_start_local"], r["offered_calls"]) for r in sales] == [
        (utc("2024-03-29 10:00:00"), 2),
        (utc("2024-03-29 10:15:00"), 1),
        (utc("2024-03-29 23:45:00"), 1),
    ]
    assert {r["interval_minutes"] for r in rows} == {15}
    assert sales[0]["erlangs"] == pytest.approx(332 / 900)
    # the daily figures do not depend on the interval
    daily = harness.table("agg_queue_daily", "call_date, queue_name")
    assert_rows(daily, _expected(DAILY_COLUMNS, DAILY), "call_date", "queue_name")


def test_intervals_of_15_minutes_on_postgres(
    fifteen: ModelsHarness, postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same CDRs and settings synced into PostgreSQL: every queue view row for row as on
    DuckDB (the interval arithmetic transpiled)."""
    psycopg2 = pytest.importorskip("psycopg2")
    dataset = f"fifteen_{uuid.uuid4().hex[:10]}"
    with EmulatorServer(empty_company(queues=2)) as server:
        harness = ModelsHarness(
            server,
            tmp_path,
            monkeypatch,
            PIPELINES__VOIPSTUDIO__DESTINATION_TYPE="postgres",
            DESTINATION__POSTGRES__CREDENTIALS=postgres_dsn,
            PIPELINES__VOIPSTUDIO__DATASET_NAME=dataset,
            **FIFTEEN,
        )
        harness.add_cdrs(RECORDS)
        harness.sync()
        result = build_models(harness.pipeline())
    assert result.dialect == "postgres"
    with (
        duckdb.connect(str(fifteen.db_path), read_only=True) as db,
        psycopg2.connect(postgres_dsn) as pg,
        pg.cursor() as cursor,
    ):
        for model in QUEUE_VIEWS:
            columns = [row[0] for row in db.execute(f"describe {DATASET}.{model}").fetchall()]
            sql = f"select {', '.join(columns)} from {{schema}}.{model}"
            on_duckdb = sorted(
                map(_row, db.execute(sql.format(schema=DATASET)).fetchall()), key=repr
            )
            cursor.execute(sql.format(schema=dataset))
            on_postgres = sorted(map(_row, cursor.fetchall()), key=repr)
            assert on_duckdb and on_postgres == on_duckdb, model
        cursor.execute(f"select distinct interval_minutes from {dataset}.agg_queue_interval")
        assert cursor.fetchall() == [(15,)]


# Direct calls (no queue) answered by C after midnight: 01:30 CET on Saturday 2024-03-30, in
# Friday's night shift; 01:30 CEST on Monday 2024-04-01, in Sunday's (not a business day).
AFTER_MIDNIGHT = [
    _leg(901, 2101, "I", "2024-03-30 00:30:00", C, caller=X4, duration=40, billsec=30,
         disposition="CONNECTED"),
    _leg(902, 2102, "I", "2024-03-31 23:30:00", C, caller=X4, duration=40, billsec=30,
         disposition="CONNECTED"),
]  # fmt: skip


def test_a_business_day_past_midnight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Night-shift business hours (20:00 to 04:00 the next morning): a business day has 8
    hours, and 2005, which enters Sales at 23:55 on Friday and talks past midnight, counts on
    Friday with all its talk, inside business hours. The hours after midnight belong to the
    business day they started on: Friday night's run into Saturday, Sunday night's are none."""
    with EmulatorServer(empty_company(queues=2)) as server:
        harness = ModelsHarness(
            server,
            tmp_path,
            monkeypatch,
            MODELS__BUSINESS_HOURS_START="20:00",
            MODELS__BUSINESS_HOURS_END="04:00",
        )
        harness.add_cdrs(RECORDS + AFTER_MIDNIGHT)
        harness.sync()
        build_models(harness.pipeline())
    night = 8 * 3600
    rows = harness.table("agg_agent_daily", "call_date, user_id, queue_key")
    by_key = {(r["call_date"], r["user_id"], r["queue_key"]): r for r in rows}
    friday = by_key[day("2024-03-29"), B, SALES]
    # 2001 (10:00, 300 s) and 2005 (23:55 to 00:06:05 on Saturday, 600 s): both on Friday
    assert (friday["answered_calls"], friday["talk_seconds"]) == (2, 900)
    assert friday["business_seconds"] == night
    assert friday["occupancy_proxy"] == pytest.approx(900 / night)
    # Saturday, where 2005 ended, has no row of B; Sunday is not a business day
    assert not [r for r in rows if r["call_date"] == day("2024-03-30") and r["user_id"] == B]
    assert {r["business_seconds"] for r in rows if r["call_date"] == day("2024-03-31")} == {0}
    assert {r["business_seconds"] for r in rows if r["call_date"] == day("2024-10-28")} == {night}
    calls = {r["call_key"]: r for r in harness.table("fct_calls")}
    assert calls[2005]["is_business_hours"] is True  # 23:55 on a Friday
    assert calls[2001]["is_business_hours"] is False  # 10:00: outside the night shift
    assert calls[2006]["is_business_hours"] is False  # 01:50 on a Sunday
    assert calls[2101]["is_business_hours"] is True  # 01:30 on a Saturday: Friday night's
    assert calls[2102]["is_business_hours"] is False  # 01:30 on a Monday: Sunday night's


def test_queue_metrics_of_the_registry(harness: ModelsHarness) -> None:
    def fetch(sql: str) -> Any:
        with duckdb.connect(str(harness.db_path), read_only=True) as db:
            return db.execute(sql).fetchone()

    queue = [m for m in METRICS if m.mart == "agg_queue_daily"]
    values = read_metrics(fetch, lambda m: (f"{DATASET}.{m}", "true"), queue)
    # offered 4 + 2 + 2 + 2; within T 1 + 1 + 1 + 2 of (4 + 1 + 2 + 2) offered less short
    # abandons; abandoned after short ones 1 + 0 + 1 + 0; waits 77 + 15 + 8 + 10 over 6 answers
    assert values["queue_offered_calls"].value == 10
    assert values["queue_service_level"].value == pytest.approx(5 / 9)
    assert values["queue_abandon_rate"].value == pytest.approx(2 / 9)
    assert values["queue_asa"].value == pytest.approx(110 / 6)


def test_incremental_builds_of_the_queue_views_equal_full_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorServer(empty_company(queues=2)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.add_cdrs(RECORDS[:-1])
        # First without the queues: fct_calls is built all the same (queue_id is an optional
        # input), its queue_id null; the queue marts wait for the queues.
        harness.setenv("SOURCES__VOIPSTUDIO__RESOURCES", "cdrs,users")
        harness.sync()
        result = build_models(harness.pipeline())
        assert "fct_calls" in {m.name for m in result.built}
        assert {r["queue_id"] for r in harness.table("fct_calls")} == {None}
        # The queues loaded later reach the calls (a full rebuild of fct_calls: its input came).
        harness.delenv("SOURCES__VOIPSTUDIO__RESOURCES")
        harness.sync()
        build_models(harness.pipeline())
        assert_same(
            "queues loaded",
            duckdb_rows(harness.db_path),
            full_rebuild_of(harness.db_path, tmp_path),
        )
        assert {r["call_key"]: r["queue_id"] for r in harness.table("fct_calls")}[2004] == 7002
        # A late leg: 2003's caller, abandoned in Sales, overflowed to Support and was answered
        # there (the call now has two queues: Sales's row becomes an overflow); and the newest
        # call, which moves the horizon and completes 2024-10-27.
        harness.add_cdrs(
            [
                _leg(116, 2003, "I", "2024-03-29 09:20:45", C, caller=X3, duration=70,
                     billsec=60, disposition="CONNECTED", destination=SUPPORT, context=Q),
                RECORDS[-1],
            ]
        )  # fmt: skip
        harness.sync(start="2024-03-29 00:00:00")  # a backfill: the leg is older than the lag
        result = build_models(harness.pipeline())
        modes = {m.name: m.mode for m in result.built}
        assert modes["agg_queue_interval"] == "incremental", modes
        assert_same(
            "late leg", duckdb_rows(harness.db_path), full_rebuild_of(harness.db_path, tmp_path)
        )
        calls = {r["call_key"]: r for r in harness.table("fct_calls")}
        assert (calls[2003]["queue_name"], calls[2003]["queue_count"]) == (SALES, 2)
        # Support renamed: its calls keep the name their CDRs carry, which no queue has now.
        response = harness.admin.post(
            "/queues/patch", json={"updates": [{"id": 7002, "set": {"name": "Help desk"}}]}
        )
        assert response.json()["patched"] == 1
        harness.sync()
        build_models(harness.pipeline())
        assert_same(
            "queue renamed",
            duckdb_rows(harness.db_path),
            full_rebuild_of(harness.db_path, tmp_path),
        )
        calls = {r["call_key"]: r for r in harness.table("fct_calls")}
        assert (calls[2004]["queue_name"], calls[2004]["queue_id"]) == (SUPPORT, None)
        # A new queue takes the old name: the calls naming it get its id, incrementally.
        response = harness.admin.post(
            "/collections/queues",
            json={"records": [{"id": 7003, "name": SUPPORT, "number": "7003", "users": []}]},
        )
        assert response.json()["added"] == 1, response.text
        new_id = 7003
        harness.sync()
        result = build_models(harness.pipeline())
        modes = {m.name: m.mode for m in result.built}
        assert modes["fct_calls"] == "incremental", modes
        assert_same(
            "queue named again",
            duckdb_rows(harness.db_path),
            full_rebuild_of(harness.db_path, tmp_path),
        )
        renamed = {r["call_key"]: r for r in harness.table("fct_calls")}
    calls = {r["call_key"]: r for r in harness.table("fct_queue_calls")}
    assert (calls[2004]["queue_name"], calls[2004]["queue_id"]) == (SUPPORT, new_id)
    assert renamed[2004]["queue_id"] == new_id
    assert renamed[2001]["queue_id"] == 7001
    daily = harness.table("agg_queue_daily", "call_date, queue_name")
    assert {r["queue_id"] for r in daily if r["queue_name"] == SUPPORT} == {new_id}


AGENT_COLUMNS = [
    "call_date", "user_id", "queue_key", "queue_id", "queue_name", "offered_calls",
    "answered_calls", "rona_calls", "answered_talk_seconds", "avg_handle_seconds",
    "outbound_calls", "callbacks_made", "talk_seconds", "business_seconds", "occupancy_proxy",
]  # fmt: skip

WEEKDAY = 9 * 3600  # business hours 09:00-18:00 on a weekday; 0 on weekends

AGENTS = [
    # A in Sales: rung by 2001, 2002, 2003 and 2005 (twice, one call), answered none; every
    # leg ended with cause 16, not 26 (a colleague answering): four RONAs.
    ("2024-03-29", A, SALES, 7001, SALES, 4, 0, 4, 0, None, 0, 0, 0, WEEKDAY, 0.0),
    # A outside queues: 2008 answered (60 s), and 2012, the callback of 2003 (30 s talk).
    ("2024-03-29", A, "", None, None, 1, 1, 0, 60, 60.0, 1, 1, 90, WEEKDAY, 90 / WEEKDAY),
    # B in Sales: 2001 (300 s) and 2005 (600 s, past midnight: on the day it started).
    ("2024-03-29", B, SALES, 7001, SALES, 2, 2, 0, 900, 450.0, 0, 0, 900, WEEKDAY,
     900 / WEEKDAY),
    # C in Support: 2002 after its overflow (60 s), and 2004, the short abandon, a RONA.
    ("2024-03-29", C, SUPPORT, 7002, SUPPORT, 2, 1, 1, 60, 60.0, 0, 0, 60, WEEKDAY,
     60 / WEEKDAY),
    # Sundays: no business hours, no occupancy
    ("2024-03-31", C, SUPPORT, 7002, SUPPORT, 2, 1, 1, 100, 100.0, 0, 0, 100, 0, None),
    ("2024-10-27", A, SALES, 7001, SALES, 2, 2, 0, 100, 50.0, 0, 0, 100, 0, None),
    # Monday: B's outbound call to X3, months after X3's calls: no callback.
    ("2024-10-28", B, "", None, None, 0, 0, 0, 0, None, 1, 0, 60, WEEKDAY, 60 / WEEKDAY),
]  # fmt: skip


def test_agg_agent_daily(harness: ModelsHarness) -> None:
    rows = harness.table("agg_agent_daily", "call_date, user_id, queue_key")
    assert_rows(rows, _expected(AGENT_COLUMNS, AGENTS), "call_date", "user_id", "queue_key")
    # summed over queues, a user's day is agg_user_daily's
    users = {(r["call_date"], r["user_id"]): r for r in harness.table("agg_user_daily")}
    for (date, user), row in users.items():
        mine = [r for r in rows if (r["call_date"], r["user_id"]) == (date, user)]
        assert sum(r["talk_seconds"] for r in mine) == row["talk_seconds"]
        assert sum(r["rona_calls"] for r in mine) == row["rona_calls"]
        assert sum(r["callbacks_made"] for r in mine) == row["callbacks_made"]
