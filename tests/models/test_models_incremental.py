"""Incremental builds give exactly what a full rebuild gives, after every kind of change.

The scenario of ``incremental_scenario.py`` (new, late, corrected, re-read, deleted, vanished
CDRs, a renamed user, a day passing) runs against a real emulator with the real sync; after
each step the models are built incrementally, and every row of every model is compared with a
full rebuild of the same data: on DuckDB (the full rebuild on a copy of the file) and on
PostgreSQL (the full rebuild after the incremental one, in the same dataset).
"""

from __future__ import annotations

import datetime as dt
import decimal
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest
from incremental_scenario import COMPANY, run_steps
from models_harness import DATASET, ModelsHarness

from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer
from pipelines.models import BuildResult, build_models, load_project, run_data_tests
from pipelines.models.builder import Builder
from pipelines.sync import make_pipeline


@contextmanager
def caplog_statements() -> Iterator[list[str]]:
    """The SQL statements the model builder runs, while the block runs."""
    statements: list[str] = []
    original = Builder.execute

    def execute(self: Builder, statement: str, name: str) -> list[tuple[Any, ...]]:
        statements.append(statement)
        return original(self, statement, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Builder, "execute", execute)
        yield statements


Rows = dict[str, list[tuple[Any, ...]]]
TABLES = [m.name for m in load_project().models]
# The small tables without an `-- incremental:` line (dim_accounts, the queue dimensions): rebuilt
# in full, and compared with their rows, whenever an input changed.
UNPARTITIONED = {
    m.name for m in load_project().models if m.kind == "table" and m.header.incremental is None
}
# The scenarios load voicemail, recordings, SMS and transactions too (opt-in), so that their
# models and the marts built on them are compared.
WITH_VOICEMAIL = {
    "SOURCES__VOIPSTUDIO__RESOURCES": "cdrs,users,queues,voicemessages,monitors,sms,transactions"
}


def _normal(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return value.normalize()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _sorted(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted((tuple(_normal(v) for v in row) for row in rows), key=repr)


def duckdb_rows(path: Path) -> Rows:
    """Every row of every model that was built (the voicemail one only where it is loaded)."""
    with duckdb.connect(str(path), read_only=True) as db:
        built = {
            name
            for (name,) in db.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [DATASET],
            ).fetchall()
        }
        return {
            name: _sorted(db.execute(f"select * from {DATASET}.{name}").fetchall())
            for name in TABLES
            if name in built
        }


def full_rebuild_of(path: Path, work: Path) -> Rows:
    """Every model rebuilt in full on a copy of the DuckDB file."""
    copy = work / "full.duckdb"
    shutil.copy(path, copy)
    pipeline = make_pipeline(
        "full_rebuild",
        destination=dlt.destinations.duckdb(str(copy)),
        dataset_name=DATASET,
        pipelines_dir=str(work / "pipelines"),
    )
    result = build_models(pipeline, full=True)
    assert {m.mode for m in result.built} == {"full"}
    rows = duckdb_rows(copy)
    copy.unlink()
    return rows


def assert_same(label: str, incremental: Rows, full: Rows) -> None:
    assert set(incremental) == set(full), label
    for name in incremental:
        got, want = incremental[name], full[name]
        if got != want:
            extra = [r for r in got if r not in want][:3]
            lacking = [r for r in want if r not in got][:3]
            pytest.fail(
                f"after '{label}', {name} differs from a full rebuild: {len(got)} rows vs "
                f"{len(want)}; only in the incremental build {extra}; missing {lacking}"
            )


def check_modes(label: str, result: BuildResult) -> None:
    """What the build did fits the step: full only the first time, nothing when nothing
    changed, and otherwise only what changed."""
    modes = {m.name: m for m in result.built}
    if label == "first sync":
        assert {m.mode for m in modes.values()} == {"full"}
        return
    assert "full" not in {m.mode for m in modes.values() if m.name not in UNPARTITIONED}, (
        label,
        {m.name: m.mode for m in modes.values() if m.mode == "full"},
    )
    if label == "nothing new":
        # It re-read the lag window: the same rows, so nothing to do.
        assert {m.mode for m in modes.values()} == {"unchanged"}, result.built
        return
    if label == "user renamed":
        assert modes["stg_voipstudio__cdrs"].mode == "unchanged"  # no CDR changed
        assert modes["stg_voipstudio__users"].changed_rows == 2  # its old and new row
        # Every day the user has a row on (the name is on each), not only the days that changed.
        assert modes["agg_user_daily"].mode == "incremental"
        assert (modes["agg_user_daily"].partitions or 0) >= 5
        assert modes["agg_calls_daily"].mode == "unchanged"  # it carries no name
        return
    assert modes["stg_voipstudio__cdrs"].mode == "incremental", label
    calls = modes["fct_calls"]
    assert calls.mode == "incremental" and calls.changed_rows, label
    daily = modes["agg_calls_daily"]
    if label != "rows deleted by hand":
        # A handful of days at most, not the week (reconcile's changes are on five days).
        most = 6 if label.startswith("reconcile") else 4
        assert daily.partitions is not None and 0 < daily.partitions <= most, (label, daily)


def _after_each_duckdb(
    tmp_path: Path, results: list[BuildResult]
) -> Callable[[str, ModelsHarness], None]:
    def after(label: str, harness: ModelsHarness) -> None:
        result = build_models(harness.pipeline())
        results.append(result)
        check_modes(label, result)
        assert_same(label, duckdb_rows(harness.db_path), full_rebuild_of(harness.db_path, tmp_path))

    return after


def test_incremental_builds_equal_full_rebuilds_on_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Full builds (the first, and the rebuilds compared with) in pieces of 150 input rows, as a
    # long history is built on DuckDB.
    monkeypatch.setattr("pipelines.models.execution.CHUNK_ROWS", 150)
    results: list[BuildResult] = []
    with EmulatorServer(EmulatorConfig(**COMPANY)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch, **WITH_VOICEMAIL)
        labels = list(run_steps(harness, _after_each_duckdb(tmp_path, results)))
        assert len(labels) == 10
        tests = run_data_tests(harness.pipeline())
    voicemail = harness.query(f"select count(*) as n from {DATASET}.stg_voipstudio__voicemessages")
    assert voicemail[0]["n"] > 0
    assert all("stg_voipstudio__voicemessages" in {m.name for m in r.built} for r in results)
    # The history marts are compared at every step too, and fct_calls' flags are known.
    history = {"agg_voicemail_daily", "agg_sms_daily", "agg_charges_monthly"}
    assert all(history <= {m.name for m in r.built} for r in results)
    flags = harness.query(
        f"select count(case when was_recorded then 1 end) as recorded, "
        f"count(case when went_to_voicemail then 1 end) as voicemail, "
        f"count(case when was_recorded is null or went_to_voicemail is null then 1 end) as unknown "
        f"from {DATASET}.fct_calls"
    )[0]
    assert flags["recorded"] > 0 and flags["voicemail"] > 0 and flags["unknown"] == 0
    assert [t.describe() for t in tests if not t.passed] == []
    deleted = harness.query(
        f"select count(*) as n from {DATASET}.cdrs where deleted_at is not null"
    )[0]["n"]
    staged = harness.query(f"select count(*) as n from {DATASET}.stg_voipstudio__cdrs")[0]["n"]
    loaded = harness.query(f"select count(*) as n from {DATASET}.cdrs")[0]["n"]
    assert deleted > 0 and staged == loaded - deleted


def postgres_rows(dsn: str, dataset: str) -> Rows:
    psycopg2 = pytest.importorskip("psycopg2")
    with psycopg2.connect(dsn) as connection:
        cursor = connection.cursor()
        cursor.execute(
            "select table_name from information_schema.tables where table_schema = %s",
            [dataset],
        )
        built = {name for (name,) in cursor.fetchall()}
        rows: Rows = {}
        # As duckdb_rows: the models of collections not loaded (chats, sms, ...) are not built.
        for name in (n for n in TABLES if n in built):
            cursor.execute(f"select * from {dataset}.{name}")
            rows[name] = _sorted(cursor.fetchall())
        return rows


def test_incremental_builds_equal_full_rebuilds_on_postgres(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = f"incremental_{uuid.uuid4().hex[:10]}"

    def after(label: str, harness: ModelsHarness) -> None:
        pipeline = harness.pipeline()
        result = build_models(pipeline)
        assert result.dialect == "postgres"
        check_modes(label, result)
        incremental = postgres_rows(postgres_dsn, dataset)
        build_models(pipeline, full=True)
        assert_same(label, incremental, postgres_rows(postgres_dsn, dataset))

    with EmulatorServer(EmulatorConfig(**COMPANY)) as server:
        harness = ModelsHarness(
            server,
            tmp_path,
            monkeypatch,
            PIPELINES__VOIPSTUDIO__DESTINATION_TYPE="postgres",
            DESTINATION__POSTGRES__CREDENTIALS=postgres_dsn,
            PIPELINES__VOIPSTUDIO__DATASET_NAME=dataset,
            **WITH_VOICEMAIL,
        )
        assert len(list(run_steps(harness, after))) == 10


def test_a_full_build_in_pieces_equals_one_in_one_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorServer(EmulatorConfig(**COMPANY)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.sync()
    whole = build_models(harness.pipeline(), full=True)
    assert {m.mode for m in whole.built} == {"full"}
    at_once = duckdb_rows(harness.db_path)
    monkeypatch.setattr("pipelines.models.execution.CHUNK_ROWS", 97)
    with caplog_statements() as statements:
        build_models(harness.pipeline(), full=True)
    # Several pieces: more than one insert into the largest models.
    for name in ("fct_calls", "agg_traffic_hourly", "fct_missed_call_callbacks"):
        inserts = [s for s in statements if s.startswith(f"insert into {DATASET}.{name} ")]
        assert len(inserts) > 3, name
    assert duckdb_rows(harness.db_path) == at_once


def test_a_change_too_large_for_one_statement_is_rebuilt_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorServer(EmulatorConfig(**COMPANY)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.sync()
        build_models(harness.pipeline())
        newest = max(r["calldate"] for r in harness.admin.get("/cdrs").json()["data"])
        harness.admin.post("/cdrs", json={"generate": {"count": 60, "now": newest}})
        harness.sync()
    monkeypatch.setattr("pipelines.models.execution.LARGE_CHANGE_ROWS", 20)
    monkeypatch.setattr("pipelines.models.execution.CHUNK_ROWS", 20)
    result = build_models(harness.pipeline())
    modes = {m.name: m.mode for m in result.built}
    assert modes["stg_voipstudio__cdrs"] == "incremental"
    assert modes["fct_calls"] == modes["agg_calls_daily"] == "full"  # and in pieces of 20
    assert_same(
        "a large change", duckdb_rows(harness.db_path), full_rebuild_of(harness.db_path, tmp_path)
    )


def test_a_dataset_loaded_without_load_ids_is_migrated_by_the_next_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A dataset an earlier version loaded has no ``_dlt_load_id`` on ``cdrs``: builds compare
    every row (and say why) until the next sync adds the column; then they are incremental."""
    old_sync = {"NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "false"}  # as before issue 16
    with EmulatorServer(EmulatorConfig(**COMPANY)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch, **old_sync)
        harness.sync()
        # A merge: dlt's staging dataset holds a cdrs table too (a CDR more, since rows read
        # again unchanged are not loaded again).
        newest = max(r["calldate"] for r in harness.admin.get("/cdrs").json()["data"])
        harness.admin.post("/cdrs", json={"generate": {"count": 1, "now": newest}})
        harness.sync()
        # What that version left: no column at all (this one adds it, nullable, when it looks
        # at the tables; the sync after the upgrade does it before loading).
        with duckdb.connect(str(harness.db_path)) as db:
            db.execute(f"alter table {DATASET}.cdrs drop column _dlt_load_id")
            staged = db.execute(f"describe {DATASET}_staging.cdrs").fetchall()
            assert "_dlt_load_id" not in {row[0] for row in staged}

        def cdrs_columns() -> set[str]:
            rows = harness.query(f"describe {DATASET}.cdrs")
            return {row["column_name"] for row in rows}

        assert "_dlt_load_id" not in cdrs_columns()
        build_models(harness.pipeline())
        with caplog.at_level("INFO", logger="voipstudio.models"):
            again = build_models(harness.pipeline())
        assert {m.name: m.mode for m in again.built}["stg_voipstudio__cdrs"] == "unchanged"
        assert "cdrs has no _dlt_load_id column" in caplog.text
        assert "the next `voipstudio sync` adds it" in caplog.text

        monkeypatch.delenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID")
        newest = max(r["calldate"] for r in harness.admin.get("/cdrs").json()["data"])
        harness.admin.post("/cdrs", json={"generate": {"count": 30, "now": newest}})
        harness.sync()
        assert "_dlt_load_id" in cdrs_columns()
        stamped = harness.query(
            f"select count(_dlt_load_id) as n from {DATASET}.cdrs where _dlt_load_id is not null"
        )[0]["n"]
        assert stamped >= 30  # the new rows and the lag window's, not the older ones
        migrated = build_models(harness.pipeline())
        modes = {m.name: m.mode for m in migrated.built}
        assert modes["stg_voipstudio__cdrs"] == modes["fct_calls"] == "incremental"
        assert_same(
            "migrated", duckdb_rows(harness.db_path), full_rebuild_of(harness.db_path, tmp_path)
        )
        harness.sync()  # nothing new: nothing changes any more
        quiet = build_models(harness.pipeline())
        assert {m.mode for m in quiet.built} == {"unchanged"}


# A mart flagging missed calls that went to voicemail: a flag from another collection, as the
# queues and KPI issues will add. Its rule maps a message to the days of the calls it can
# belong to (a message starts when its call ends).
VOICEMAIL_MART = """-- grain: one row per account and missed call; key: (account, call_key)
-- incremental: partition (account, call_date)
--   stg_voipstudio__voicemessages: call_date covers days of [start_epoch - 86400, start_epoch + 1)
with missed as (
    select account, call_key, call_date, end_epoch from fct_calls where is_missed
),

messages as (
    select account, voicemail_id, start_epoch from stg_voipstudio__voicemessages
),

flagged as (
    select missed.account, missed.call_key, missed.call_date, count(messages.voicemail_id) as n
    from missed
    left join messages
        on messages.account = missed.account
        and messages.start_epoch between missed.end_epoch - 2 and missed.end_epoch + 2
    group by missed.account, missed.call_key, missed.call_date
)

select account, call_key, call_date, n > 0 as went_to_voicemail, n as voicemail_count
from flagged
"""


def test_a_flag_from_another_collection_rebuilds_the_days_of_its_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(load_project().models[0].path.parents[1], sql_dir)
    (sql_dir / "marts" / "fct_calls_voicemail.sql").write_text(VOICEMAIL_MART)
    mart = "fct_calls_voicemail"

    def rows(path: Path) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(path), read_only=True) as db:
            return _sorted(db.execute(f"select * from {DATASET}.{mart}").fetchall())

    def full_rows(path: Path) -> list[tuple[Any, ...]]:
        copy = tmp_path / "full.duckdb"
        shutil.copy(path, copy)
        pipeline = make_pipeline(
            "full_rebuild",
            destination=dlt.destinations.duckdb(str(copy)),
            dataset_name=DATASET,
            pipelines_dir=str(tmp_path / "pipelines"),
        )
        build_models(pipeline, sql_dir=sql_dir, full=True)
        return rows(copy)

    with EmulatorServer(EmulatorConfig(**COMPANY)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch, **WITH_VOICEMAIL)
        harness.sync()
        first = build_models(harness.pipeline(), sql_dir=sql_dir)
        assert {m.name: m.mode for m in first.built}[mart] == "full"
        flagged = [r for r in rows(harness.db_path) if r[3]]
        assert flagged  # the emulator leaves messages after some missed calls

        # A message arrives late for a recent missed call that had none: only its day changes.
        calls = harness.query(
            f"select account, call_key, call_date, end_epoch, external_number "
            f"from {DATASET}.fct_calls where is_missed and external_number is not null "
            f"order by end_epoch desc"
        )
        without = {r[1] for r in rows(harness.db_path) if not r[3]}
        call = next(c for c in calls if c["call_key"] in without)
        ended = dt.datetime.fromtimestamp(call["end_epoch"], dt.UTC)
        served = harness.admin.get("/collections/voicemessages").json()["data"]
        message = {
            "id": max(m["id"] for m in served) + 1,
            "origtime": ended.strftime("%Y-%m-%d %H:%M:%S"),
            "duration": 12,
            "caller": call["external_number"],
            "dialled": "100",
            "folder": "INBOX",
        }
        added = harness.admin.post("/collections/voicemessages", json={"records": [message]})
        assert added.status_code == 200, added.text
        harness.sync()
        result = build_models(harness.pipeline(), sql_dir=sql_dir)
        modes = {m.name: m for m in result.built}
        assert modes["stg_voipstudio__voicemessages"].changed_rows == 1
        assert modes["stg_voipstudio__cdrs"].mode == "unchanged"
        assert modes[mart].mode == "incremental"
        assert modes[mart].partitions is not None and 1 <= modes[mart].partitions <= 2
        now = {r[1]: r for r in rows(harness.db_path)}
        assert now[call["call_key"]][3] is True
        assert rows(harness.db_path) == full_rows(harness.db_path)
