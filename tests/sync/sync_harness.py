"""The end-to-end sync harness: a real emulator on loopback, a real DuckDB file, and the
pipeline configured the way a user would (environment variables)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pytest
from pipeline_harness import PipelineHarness  # tests/, on sys.path through its conftest

from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer

DATASET = "voipstudio"
# The emulator's clock starts here; the data ends a little before it.
NOW = "2026-03-02 12:00:00"


def small_config(**overrides: Any) -> EmulatorConfig:
    """A small company whose data ends shortly before the emulator's clock."""
    settings: dict[str, Any] = {
        "seed": 11,
        "users": 12,
        "queues": 3,
        "rows": 3000,
        "start": "2026-02-20",
        "end": "2026-03-02 11:00:00",
        "now": NOW,
    }
    settings.update(overrides)
    return EmulatorConfig(**settings)


class Harness(PipelineHarness):
    """One emulator plus one pipeline writing to its own DuckDB file, or to its own dataset of
    a PostgreSQL server when ``postgres_dsn`` is given."""

    def __init__(
        self,
        server: EmulatorServer,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        postgres_dsn: str | None = None,
    ):
        self.postgres_dsn = postgres_dsn
        self.dataset = DATASET if postgres_dsn is None else f"test_{uuid.uuid4().hex[:12]}"
        settings = {
            "SOURCES__VOIPSTUDIO__START_DATE": "2026-02-01",
            "SOURCES__VOIPSTUDIO__PAGE_SIZE": "100",
            "SOURCES__VOIPSTUDIO__MAX_CONCURRENCY": "4",
            "SOURCES__VOIPSTUDIO__MAX_ATTEMPTS": "12",
            "SOURCES__VOIPSTUDIO__BACKOFF_BASE": "0.02",
        }
        if postgres_dsn is not None:
            settings["PIPELINES__VOIPSTUDIO__DESTINATION_TYPE"] = "postgres"
            settings["DESTINATION__POSTGRES__CREDENTIALS"] = postgres_dsn
            settings["PIPELINES__VOIPSTUDIO__DATASET_NAME"] = self.dataset
        super().__init__(server, tmp_path, monkeypatch, settings)

    def configure(self, **changes: Any) -> dict[str, Any]:
        response = self.admin.patch("/config", json=changes)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``{dataset}`` filled in) on the harness's destination; its rows."""
        sql = sql.format(dataset=self.dataset)
        if self.postgres_dsn is not None:
            with psycopg2.connect(self.postgres_dsn) as connection, connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else []
        with duckdb.connect(str(self.db_path)) as db:
            return db.execute(sql).fetchall()

    def state(self) -> dict[str, Any]:
        return self.admin.get("/state").json()  # type: ignore[no-any-return]

    def emulator_cdrs(self) -> list[dict[str, Any]]:
        """Every CDR the emulator holds now, as served."""
        return self.admin.get("/cdrs").json()["data"]  # type: ignore[no-any-return]

    def loaded(self, table: str = "cdrs", *, load_ids: bool = False) -> list[dict[str, Any]]:
        """The rows of a destination table ordered by its key (account, id); [] if it is missing.

        Without ``_dlt_load_id`` unless ``load_ids``: the sync stamps it on every row it writes,
        so a row read again carries a new one with the same content.
        """
        if load_ids:
            return self._loaded(table)
        return [
            {k: v for k, v in row.items() if k != "_dlt_load_id"} for row in self._loaded(table)
        ]

    def _loaded(self, table: str) -> list[dict[str, Any]]:
        if self.postgres_dsn is not None:
            return self._loaded_postgres(table)
        if not self.db_path.exists():
            return []
        with duckdb.connect(str(self.db_path), read_only=True) as db:
            exists = db.execute(
                "select count(*) from information_schema.tables "
                f"where table_schema = '{self.dataset}' and table_name = '{table}'"
            ).fetchall()
            if not exists[0][0]:
                return []
            relation = db.sql(f"select * from {self.dataset}.{table} order by 1, 2")
            names = relation.columns
            return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]

    def _loaded_postgres(self, table: str) -> list[dict[str, Any]]:
        assert self.postgres_dsn is not None
        with psycopg2.connect(self.postgres_dsn) as connection, connection.cursor() as cursor:
            cursor.execute("select to_regclass(%s)", (f"{self.dataset}.{table}",))
            if cursor.fetchone()[0] is None:
                return []
            cursor.execute(f"select * from {self.dataset}.{table} order by 1, 2")
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def as_loaded(record: dict[str, Any]) -> dict[str, Any]:
    """How an API record looks once loaded: calldate as a UTC timestamp."""
    expected = dict(record)
    expected["calldate"] = datetime.strptime(record["calldate"], "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=UTC
    )
    return expected


def assert_cdrs_equal(
    harness: Harness, expected_records: list[dict[str, Any]], account: str | None = None
) -> None:
    """The cdrs table holds exactly these records, field for field, each id once (of
    ``account`` only, when given)."""
    loaded = harness.loaded()
    if account is not None:
        loaded = [row for row in loaded if row["account"] == account]
    ids = [row["id"] for row in loaded]
    assert len(ids) == len(set(ids)), "an id was loaded twice"
    by_id = {row["id"]: row for row in loaded}
    expected = {r["id"]: as_loaded(r) for r in expected_records}
    missing = sorted(set(expected) - set(by_id))
    extra = sorted(set(by_id) - set(expected))
    assert not missing, f"{len(missing)} CDRs never loaded, e.g. {missing[:5]}"
    assert not extra, f"{len(extra)} unexpected CDRs loaded, e.g. {extra[:5]}"
    for record_id, record in expected.items():
        row = by_id[record_id]
        for field, value in record.items():
            got = row[field]
            if field == "labels":
                got = json.loads(got) if isinstance(got, str) else got
            if isinstance(got, datetime) and got.tzinfo is not None:
                got = got.astimezone(UTC)
            assert got == value, f"CDR {record_id} field {field}: loaded {got!r}, API {value!r}"
