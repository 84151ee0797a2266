"""The marts of the rest of the call history (issue 15): fct_calls.was_recorded and
went_to_voicemail, agg_voicemail_daily, agg_sms_daily and agg_charges_monthly, on hand-made
records computed by hand (real emulator, sync and models; reporting time zone Europe/Madrid).

The records are around 2024-10-27, the day Madrid's clocks go back (CEST, UTC+2, until 01:00
UTC; then CET, UTC+1): 2024-10-26 22:30 UTC is 00:30 on the 27th, 2024-10-27 22:30 UTC is 23:30
on the 27th, 2024-10-27 23:10 UTC is 00:10 on the 28th. The emulator's own history (generated
for May 2024) is left out of every assertion.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from handmade_cdrs import EXT, X1, X2, X3, X4, A, B, C, _leg
from models_harness import DATASET, ModelsHarness, empty_company
from test_models_incremental import assert_same, duckdb_rows, full_rebuild_of
from test_models_postgres import _row

from pipelines.emulator.server import EmulatorServer
from pipelines.models import build_models, run_data_tests

# The generated history stays in May; the hand-made records are in September-October.
# The API's clock stands 4 h after the last call: records up to the sync's lag (6 h) before it
# are read again by every sync, so a late record for the last calls is seen.
COMPANY = {"start": "2024-05-01", "end": "2024-06-01", "now": "2024-10-28 16:00:00"}
LOADED = {
    "SOURCES__VOIPSTUDIO__RESOURCES": ("cdrs,users,queues,monitors,voicemessages,sms,transactions")
}

CDRS = [
    # call 901: inbound, answered by A, recorded (a recording of its leg)
    _leg(9001, 901, "I", "2024-10-27 10:00:00", A, duration=70, billsec=60,
         disposition="CONNECTED", caller=X1),
    # call 902: outbound from B, not recorded (a recording 5 s off its start does not count)
    _leg(9002, 902, "O", "2024-10-27 11:00:00", B, duration=130, billsec=120,
         disposition="CONNECTED", called=X2, rate=0.12, charge=0.24),
    # call 903: missed at 23:00 local on the 27th (CET), ends 22:00:25 UTC: a message then
    _leg(9003, 903, "M", "2024-10-27 22:00:00", C, duration=25, billsec=0,
         disposition="NO ANSWER", caller=X3),
    # call 904: missed at 00:30 local on the 27th (CEST); its caller's message came 105 s after
    # its end: not its voicemail (more than 60 s)
    _leg(9004, 904, "M", "2024-10-26 22:30:00", A, duration=15, billsec=0,
         disposition="NO ANSWER", caller=X4),
    # call 905: outbound at 00:30 local on 2024-10-01, still September in UTC (billing month)
    _leg(9005, 905, "O", "2024-09-30 22:30:00", A, duration=40, billsec=30,
         disposition="CONNECTED", called=X2, rate=0.2, charge=0.10),
    # call 906: the last call (sets the horizon)
    _leg(9006, 906, "O", "2024-10-28 12:00:00", C, duration=20, billsec=10,
         disposition="CONNECTED", called=X1, charge=0.0),
]  # fmt: skip

MONITORS = [
    {"timestamp": "2024-10-27 10:00:00", "caller": X1, "called": EXT[A], "duration": 60,
     "type": "I", "size": 4800},
    {"timestamp": "2024-10-27 11:00:05", "caller": EXT[B], "called": X2, "duration": 115,
     "type": "O", "size": 9200},
]  # fmt: skip


def voicemail(queue_number: str) -> list[dict[str, Any]]:
    return [
        # call 903's: at its end, new, 20 s, counted on the 27th (23:00 local)
        {"origtime": "2024-10-27 22:00:25", "caller": X3, "dialled": EXT[C], "duration": 20,
         "folder": "INBOX", "is_new": True},
        # 105 s after call 904 ended: 00:32 local on the 27th, listened to, 30 s
        {"origtime": "2024-10-26 22:32:00", "caller": X4, "dialled": EXT[A], "duration": 30,
         "folder": "Old", "is_new": False},
        # the queue's mailbox, 11:00 local on the 28th
        {"origtime": "2024-10-28 10:00:00", "caller": X1, "dialled": queue_number,
         "duration": 10, "folder": "INBOX", "is_new": True},
    ]  # fmt: skip


SMS = [
    {"created_at": "2024-10-27 09:00:00", "from": "34910000101", "to": "34600111222",
     "message": "Hello there", "result": "DELIVERED", "type": "O", "user_id": A},
    {"created_at": "2024-10-27 22:30:00", "from": "34910000101", "to": "34600111222",
     "message": "Call me", "result": "FAILED", "type": "O", "user_id": A},
    {"created_at": "2024-10-26 22:15:00", "from": "34600111222", "to": "34910000101",
     "message": "Yes", "result": "RECEIVED", "type": "I", "user_id": A},
    {"created_at": "2024-10-27 23:10:00", "from": "34612345678", "to": "34910000102",
     "message": "Later", "result": "RECEIVED", "type": "I", "user_id": B},
]  # fmt: skip

TRANSACTIONS = [
    # September's call charges, invoiced 2 h into October: 0.10 charged, 0.10 invoiced
    {"created_at": "2024-10-01 02:00:00", "amount": 0.10, "currency_iso": "EUR",
     "type": "calls", "result": "completed"},
    # October's running charge, pending: 0.20 against 0.24 in the CDRs
    {"created_at": "2024-10-01 01:00:01", "amount": 0.20, "currency_iso": "EUR",
     "type": "calls", "result": "pending"},
    # not call charges
    {"created_at": "2024-10-01 01:00:00", "amount": 44.85, "currency_iso": "EUR",
     "type": "subscription", "result": "completed"},
    {"created_at": "2024-10-15 08:00:00", "amount": 50.0, "currency_iso": "EUR",
     "type": "payment", "result": "completed"},
]  # fmt: skip


_IDS = itertools.count(1)


def add(harness: ModelsHarness, name: str, records: list[dict[str, Any]]) -> None:
    """Records of a collection, through the emulator's admin API (ids from 1, never twice)."""
    records = [{"id": next(_IDS), **record} for record in records]
    response = harness.admin.post(f"/collections/{name}", json={"records": records})
    assert response.status_code == 200, response.text


def queue_number(harness: ModelsHarness) -> str:
    queues = harness.admin.get("/collections/queues").json()["data"]
    return str(queues[0]["number"])


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelsHarness]:
    tmp_path: Path = tmp_path_factory.mktemp("history")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        EmulatorServer(empty_company(**COMPANY)) as server,
    ):
        harness = ModelsHarness(server, tmp_path, monkeypatch, **LOADED)
        harness.add_cdrs(CDRS)
        add(harness, "monitors", MONITORS)
        add(harness, "voicemessages", voicemail(queue_number(harness)))
        add(harness, "sms", SMS)
        add(harness, "transactions", TRANSACTIONS)
        harness.sync()
        result = build_models(harness.pipeline())
        assert not result.skipped
        assert not set(result.not_loaded) & set(HISTORY_MODELS)
        failures = {t.name: t.failures for t in run_data_tests(harness.pipeline())}
        assert failures == dict.fromkeys(failures, 0)
        yield harness


def flags(harness: ModelsHarness) -> dict[int, tuple[Any, Any]]:
    rows = harness.query(
        f"select call_key, was_recorded, went_to_voicemail from {DATASET}.fct_calls "
        "where call_key between 901 and 907"
    )
    return {r["call_key"]: (r["was_recorded"], r["went_to_voicemail"]) for r in rows}


def test_calls_are_flagged_recorded_and_voicemail(loaded: ModelsHarness) -> None:
    assert flags(loaded) == {
        901: (True, False),  # its leg's recording: same start, caller and called
        902: (False, False),  # a recording 5 s off its start is not its recording
        903: (False, True),  # missed, a message from its caller at its end
        904: (False, False),  # the caller's message 105 s after its end is not its voicemail
        905: (False, False),
        906: (False, False),
    }


def test_voicemail_per_day_and_mailbox(loaded: ModelsHarness) -> None:
    rows = loaded.query(
        f"select * from {DATASET}.agg_voicemail_daily "
        "where voicemail_date >= date '2024-10-01' order by voicemail_date, mailbox"
    )
    queue = loaded.query(f"select queue_id, queue_number from {DATASET}.stg_voipstudio__queues")
    got = [
        (
            str(r["voicemail_date"]),
            r["mailbox"],
            r["mailbox_kind"],
            r["user_id"],
            r["queue_id"],
            r["messages"],
            r["duration_seconds"],
            r["new_messages"],
            r["listened_messages"],
        )
        for r in rows
    ]
    # 2024-10-26 22:32 UTC is 00:32 on the 27th (CEST); 22:00:25 UTC on the 27th is 23:00 (CET)
    assert got == sorted(
        [
            ("2024-10-27", EXT[A], "user", A, None, 1, 30, 0, 1),
            ("2024-10-27", EXT[C], "user", C, None, 1, 20, 1, 0),
            ("2024-10-28", str(queue[0]["queue_number"]), "queue", None, queue[0]["queue_id"],
             1, 10, 1, 0),
        ]
    )  # fmt: skip
    assert [r["avg_duration_seconds"] for r in rows] == [30.0, 20.0, 10.0]


def test_sms_per_day_user_and_direction(loaded: ModelsHarness) -> None:
    rows = loaded.query(
        f"select * from {DATASET}.agg_sms_daily where sms_date >= date '2024-10-01' "
        "order by sms_date, user_id, direction"
    )
    got = [
        (
            str(r["sms_date"]),
            r["user_id"],
            r["direction"],
            r["messages"],
            r["sent_messages"],
            r["received_messages"],
            r["failed_messages"],
            r["delivered_messages"],
            r["characters"],
            r["failure_rate"],
        )
        for r in rows
    ]
    assert got == [
        # 22:15 UTC on the 26th is 00:15 on the 27th; 22:30 UTC on the 27th is 23:30 there
        ("2024-10-27", A, "inbound", 1, 0, 1, 0, 0, 3, None),
        ("2024-10-27", A, "outbound", 2, 2, 0, 1, 1, len("Hello there") + len("Call me"), 0.5),
        # 23:10 UTC on the 27th is 00:10 on the 28th (CET)
        ("2024-10-28", B, "inbound", 1, 0, 1, 0, 0, 5, None),
    ]


def test_call_charges_against_transactions_per_month(loaded: ModelsHarness) -> None:
    rows = loaded.query(
        f"select * from {DATASET}.agg_charges_monthly where charge_month >= date '2024-09-01' "
        "order by charge_month"
    )
    got = [
        (
            str(r["charge_month"]),
            r["cdr_charges"],
            r["charged_legs"],
            r["currency"],
            r["transaction_charges"],
            r["call_charge_transactions"],
            r["pending_transactions"],
            r["difference"],
            r["is_invoiced"],
        )
        for r in rows
    ]
    assert got == [
        # call 905 (00:30 local on 1 October) is billed in September (UTC), as invoiced
        ("2024-09-01", Decimal("0.1"), 1, "EUR", Decimal("0.1"), 1, 0, Decimal("0"), True),
        # October: 0.24 in the CDRs, 0.20 pending so far
        ("2024-10-01", Decimal("0.24"), 1, "EUR", Decimal("0.2"), 1, 1, Decimal("-0.04"), False),
    ]


def test_flags_are_null_when_the_collections_are_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorServer(empty_company(**COMPANY)) as server:
        # the default resources (the module's fixture, still open, names them all)
        monkeypatch.delenv("SOURCES__VOIPSTUDIO__RESOURCES", raising=False)
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.add_cdrs(CDRS)
        add(harness, "monitors", MONITORS)
        add(harness, "voicemessages", voicemail(queue_number(harness)))
        harness.sync()
        result = build_models(harness.pipeline())
        assert not result.skipped
        built = {m.name for m in result.built}
        assert "fct_calls" in built and "agg_calls_daily" in built
        assert {
            "stg_voipstudio__monitors",
            "stg_voipstudio__voicemessages",
            "agg_voicemail_daily",
            "agg_sms_daily",
            "agg_charges_monthly",
        } <= set(result.not_loaded)
        assert set(flags(harness).values()) == {(None, None)}
        failures = {t.name: t.failures for t in run_data_tests(harness.pipeline())}
        assert failures == dict.fromkeys(failures, 0)

        # Loading recordings from now on: fct_calls is rebuilt in full, its flags known.
        monkeypatch.setenv("SOURCES__VOIPSTUDIO__RESOURCES", "cdrs,users,queues,monitors")
        harness.sync()
        result = build_models(harness.pipeline())
        modes = {m.name: m.mode for m in result.built}
        assert modes["fct_calls"] == "full"
        assert flags(harness)[901] == (True, None)
        assert flags(harness)[903] == (False, None)
        assert_same("monitors loaded", duckdb_rows(harness.db_path),
                    full_rebuild_of(harness.db_path, tmp_path))  # fmt: skip


def test_a_late_recording_or_voicemail_rebuilds_only_its_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorServer(empty_company(**COMPANY)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch, **LOADED)
        # call 907: missed at 12:30 local on the 28th
        harness.add_cdrs([*CDRS, _leg(9007, 907, "M", "2024-10-28 11:30:00", C, duration=20,
                                      billsec=0, disposition="NO ANSWER", caller=X4)])  # fmt: skip
        # (a collection whose table was never loaded reads as not loaded: null flags, and
        # fct_calls rebuilt in full when it comes; so the first sync brings one of each)
        add(harness, "monitors", MONITORS[:1])
        add(harness, "voicemessages", voicemail(queue_number(harness))[:1])
        harness.sync()
        build_models(harness.pipeline())
        assert flags(harness)[901] == (True, False)
        assert flags(harness)[903] == (False, True)
        assert flags(harness)[906] == (False, False)
        assert flags(harness)[907] == (False, False)

        # A recording of call 906's leg and a voicemail after call 907 arrive late (inside
        # the sync's lag: the next sync reads them).
        add(harness, "monitors", [
            {"timestamp": "2024-10-28 12:00:00", "caller": EXT[C], "called": X1,
             "duration": 10, "type": "O", "size": 800},
        ])  # fmt: skip
        add(harness, "voicemessages", [
            {"origtime": "2024-10-28 11:30:20", "caller": X4, "dialled": EXT[C],
             "duration": 9, "folder": "INBOX", "is_new": True},
        ])  # fmt: skip
        harness.sync()
        result = build_models(harness.pipeline())
        modes = {m.name: m for m in result.built}
        assert modes["stg_voipstudio__cdrs"].mode == "unchanged"
        assert modes["stg_voipstudio__monitors"].changed_rows == 1
        assert modes["stg_voipstudio__voicemessages"].changed_rows == 1
        assert modes["fct_calls"].mode == "incremental"
        assert modes["fct_calls"].partitions == 2  # calls 906 and 907, nothing else
        assert flags(harness)[906] == (True, False)
        assert flags(harness)[907] == (False, True)
        assert modes["agg_voicemail_daily"].mode == "incremental"
        assert modes["agg_voicemail_daily"].partitions == 1  # the 28th
        assert_same("late recording and voicemail", duckdb_rows(harness.db_path),
                    full_rebuild_of(harness.db_path, tmp_path))  # fmt: skip


HISTORY_MODELS = ("fct_calls", "agg_voicemail_daily", "agg_sms_daily", "agg_charges_monthly")


def test_the_same_rows_on_postgres(
    postgres_dsn: str, loaded: ModelsHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    dataset = f"history_{uuid.uuid4().hex[:10]}"
    with EmulatorServer(empty_company(**COMPANY)) as server:
        harness = ModelsHarness(
            server,
            tmp_path,
            monkeypatch,
            PIPELINES__VOIPSTUDIO__DESTINATION_TYPE="postgres",
            DESTINATION__POSTGRES__CREDENTIALS=postgres_dsn,
            PIPELINES__VOIPSTUDIO__DATASET_NAME=dataset,
            **LOADED,
        )
        harness.add_cdrs(CDRS)
        add(harness, "monitors", MONITORS)
        add(harness, "voicemessages", voicemail(queue_number(harness)))
        add(harness, "sms", SMS)
        add(harness, "transactions", TRANSACTIONS)
        harness.sync()
    result = build_models(harness.pipeline())
    assert result.dialect == "postgres" and not result.skipped
    assert set(HISTORY_MODELS) <= {m.name for m in result.built}
    tests = run_data_tests(harness.pipeline())
    assert [t.describe() for t in tests if not t.passed] == []
    with psycopg2.connect(postgres_dsn) as pg:
        cursor = pg.cursor()
        for name in HISTORY_MODELS:
            columns = [r["column_name"] for r in loaded.query(
                f"select column_name from information_schema.columns where table_schema = "
                f"'{DATASET}' and table_name = '{name}' order by ordinal_position"
            )]  # fmt: skip
            # the emulator's generated history differs between the two servers' ids: compare
            # the hand-made records' rows
            where = {
                "fct_calls": "call_key between 901 and 907",
                "agg_voicemail_daily": "voicemail_date >= date '2024-10-01'",
                "agg_sms_daily": "sms_date >= date '2024-10-01'",
                "agg_charges_monthly": "charge_month >= date '2024-09-01'",
            }[name]
            sql = f"select {', '.join(columns)} from {{schema}}.{name} where {where}"
            on_duckdb = sorted(
                (_row(tuple(r.values())) for r in loaded.query(sql.format(schema=DATASET))),
                key=repr,
            )
            cursor.execute(sql.format(schema=dataset))
            on_postgres = sorted(map(_row, cursor.fetchall()), key=repr)
            assert on_duckdb and on_postgres == on_duckdb, name
