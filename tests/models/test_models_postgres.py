"""The same models on another dlt destination: PostgreSQL, through sqlglot's transpilation.

The hand-made CDRs are synced into DuckDB by the real pipeline, their raw tables copied into a
throwaway PostgreSQL server, and the models built there through dlt's postgres destination.
Every model must hold exactly the rows it holds on DuckDB, and every data test must pass.
Skipped when psycopg2 or the PostgreSQL server binaries are not installed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest
from handmade_cdrs import RECORDS
from models_harness import DATASET, ModelsHarness, empty_company

from pipelines.emulator.server import EmulatorServer
from pipelines.models import ModelSettings, build_models, load_project, run_data_tests
from pipelines.sync import make_pipeline

psycopg2 = pytest.importorskip("psycopg2")
psycopg2_extras = pytest.importorskip("psycopg2.extras")

SETTINGS = ModelSettings(reporting_timezone="Europe/Madrid", default_country_code="34")
PG_TYPES = {
    "BIGINT": "bigint",
    "VARCHAR": "text",
    "DOUBLE": "double precision",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "JSON": "jsonb",
    "BOOLEAN": "boolean",
}


def _binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A private PostgreSQL cluster on a free loopback port; yields its DSN."""
    binaries = _binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl)")
    # Not under pytest's temporary folder: the postgres user cannot enter root's.
    folder = Path(tempfile.mkdtemp(prefix="voipstudio-models-pg-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # initdb refuses to run as root: run the server as the package's postgres user.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if prefix:
        shutil.chown(folder, "postgres", "postgres")

    def run(*args: str) -> None:
        # Output to a file, never a pipe: the server would inherit it and keep it open.
        with (folder / "pg.log").open("ab") as log:
            subprocess.run([*prefix, *args], check=True, stdout=log, stderr=log, timeout=120)

    data = folder / "data"
    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60", "start")
    try:
        yield f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def duckdb_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made CDRs loaded by the real sync, models built on DuckDB."""
    tmp_path = tmp_path_factory.mktemp("duck")
    with pytest.MonkeyPatch.context() as monkeypatch, EmulatorServer(empty_company()) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.add_cdrs(RECORDS)
        harness.sync()
        build_models(harness.pipeline(), SETTINGS)
    return harness.db_path


def _copy_raw_tables(source: Path, dsn: str) -> None:
    with duckdb.connect(str(source), read_only=True) as db, psycopg2.connect(dsn) as pg:
        cursor = pg.cursor()
        cursor.execute(f"create schema {DATASET}")
        for table in ("cdrs", "users", "queues", "queues__users"):
            columns = db.execute(f"describe {DATASET}.{table}").fetchall()
            names = ", ".join(f'"{c[0]}"' for c in columns)
            types = ", ".join(f'"{c[0]}" {PG_TYPES[c[1]]}' for c in columns)
            cursor.execute(f"create table {DATASET}.{table} ({types})")
            rows = db.execute(f"select * from {DATASET}.{table}").fetchall()
            psycopg2_extras.execute_values(
                cursor, f"insert into {DATASET}.{table} ({names}) values %s", rows
            )


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


def test_models_on_postgres_match_duckdb(postgres: str, duckdb_file: Path, tmp_path: Path) -> None:
    _copy_raw_tables(duckdb_file, postgres)
    pipeline = make_pipeline(
        "models_postgres",
        destination=dlt.destinations.postgres(postgres),
        dataset_name=DATASET,
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    result = build_models(pipeline, SETTINGS)
    assert result.dialect == "postgres" and not result.skipped
    assert len(result.built) == len(load_project(settings=SETTINGS).models)
    again = build_models(pipeline, SETTINGS)  # idempotent there too (DROP ... CASCADE, CREATE)
    assert [m.rows for m in again.built] == [m.rows for m in result.built]
    tests = run_data_tests(pipeline, SETTINGS)
    assert [t.describe() for t in tests if not t.passed] == []

    with duckdb.connect(str(duckdb_file), read_only=True) as db, psycopg2.connect(postgres) as pg:
        cursor = pg.cursor()
        for model in result.built:
            columns = [
                row[0]
                for row in db.execute(f"describe {DATASET}.{model.name}").fetchall()
                if row[0] != "labels"  # JSON: compared as text it differs in spacing only
            ]
            sql = f"select {', '.join(columns)} from {DATASET}.{model.name}"
            on_duckdb = sorted(map(_row, db.execute(sql).fetchall()), key=repr)
            cursor.execute(sql)
            on_postgres = sorted(map(_row, cursor.fetchall()), key=repr)
            assert on_postgres == on_duckdb, model.name
            assert on_duckdb or model.name == "stg_voipstudio__queue_members", model.name
