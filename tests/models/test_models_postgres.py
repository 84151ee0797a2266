"""The same pipeline and models on another dlt destination: PostgreSQL.

Two accounts whose ids collide (the hand-made CDRs, and the second account's that reuse their
CDR, call and user ids) are synced by the real pipeline twice: into DuckDB, and into a
throwaway PostgreSQL server (the shared ``postgres_dsn`` fixture), where the models are built
through sqlglot's transpilation. Every model must hold exactly the rows it holds on DuckDB, and
every data test must pass there too.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest
from handmade_cdrs import RECORDS, SECOND_ACCOUNT_RECORDS
from models_harness import DATASET, OBSERVED_COLUMNS, ModelsHarness, two_accounts

from pipelines.models import ModelSettings, build_models, load_project, run_data_tests
from pipelines.voipstudio import catalog

psycopg2 = pytest.importorskip("psycopg2")

SETTINGS = ModelSettings(reporting_timezone="Europe/Madrid", default_country_code="34")


@pytest.fixture(scope="module")
def duckdb_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both accounts loaded by the real sync, models built on DuckDB."""
    tmp_path = tmp_path_factory.mktemp("duck")
    with pytest.MonkeyPatch.context() as monkeypatch, two_accounts() as servers:
        harness = ModelsHarness(servers["north"], tmp_path, monkeypatch)
        harness.use_accounts(servers)
        harness.sync()
        build_models(harness.pipeline(), SETTINGS)
    return harness.db_path


# The models with a row per queue call only: SECOND_ACCOUNT_RECORDS has no queue legs.
QUEUE_MODELS = {"fct_queue_calls", "agg_queue_interval", "agg_queue_daily"}


def _normal(value: Any) -> Any:
    if isinstance(value, (decimal.Decimal, float)):
        return round(float(value), 6)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, (list, dict)):
        return repr(value)
    return value


def _row(row: Any) -> tuple[Any, ...]:
    return tuple(_normal(value) for value in row)


def test_models_on_postgres_match_duckdb(
    postgres_dsn: str, duckdb_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = f"models_{uuid.uuid4().hex[:10]}"
    with two_accounts() as servers:
        harness = ModelsHarness(
            servers["north"],
            tmp_path,
            monkeypatch,
            PIPELINES__VOIPSTUDIO__DESTINATION_TYPE="postgres",
            DESTINATION__POSTGRES__CREDENTIALS=postgres_dsn,
            PIPELINES__VOIPSTUDIO__DATASET_NAME=dataset,
        )
        harness.use_accounts(servers)
        summary = harness.sync()
    assert summary.cdrs_new == len(RECORDS) + len(SECOND_ACCOUNT_RECORDS)
    pipeline = harness.pipeline()
    result = build_models(pipeline, SETTINGS)
    assert result.dialect == "postgres" and not result.skipped
    models = load_project(settings=SETTINGS).models
    assert len(result.built) + len(result.not_loaded) == len(models)
    # Only the models of collections the configuration does not load are left out.
    assert set(result.not_loaded) == {
        f"stg_voipstudio__{c.name}" for c in catalog.COLLECTIONS if c.optional
    } | {"agg_voicemail_daily", "agg_sms_daily", "agg_charges_monthly"}
    again = build_models(pipeline, SETTINGS)  # nothing changed: nothing to do
    assert {m.mode for m in again.built} == {"unchanged"}
    assert all(not m.changed_rows for m in again.built)
    full = build_models(pipeline, SETTINGS, full=True)  # idempotent (DROP ... CASCADE, CREATE)
    assert [m.rows for m in full.built] == [m.rows for m in result.built]
    tests = run_data_tests(pipeline, SETTINGS)
    assert [t.describe() for t in tests if not t.passed] == []

    with (
        duckdb.connect(str(duckdb_file), read_only=True) as db,
        psycopg2.connect(postgres_dsn) as pg,
    ):
        cursor = pg.cursor()
        cursor.execute(f"set search_path to {dataset}")
        for model in result.built:
            columns = [
                row[0]
                for row in db.execute(f"describe {DATASET}.{model.name}").fetchall()
                # labels: JSON, compared as text it differs in spacing only; the times two
                # syncs observed the queues' members differ
                if row[0] != "labels" and row[0] not in OBSERVED_COLUMNS
            ]
            sql = f"select {', '.join(columns)} from {{schema}}.{model.name}"
            on_duckdb = sorted(
                map(_row, db.execute(sql.format(schema=DATASET)).fetchall()), key=repr
            )
            cursor.execute(sql.format(schema=dataset))
            on_postgres = sorted(map(_row, cursor.fetchall()), key=repr)
            assert on_postgres == on_duckdb, model.name
            assert on_duckdb or model.name == "stg_voipstudio__queue_members", model.name
            if on_duckdb:
                assert columns[0] == "account", model.name
                cursor.execute(f"select distinct account from {dataset}.{model.name}")
                # The second account's calls go through no queue: no rows of it there.
                accounts = ["north"] if model.name in QUEUE_MODELS else ["north", "south"]
                got = sorted(row[0] for row in cursor.fetchall())
                assert got == accounts, model.name
