"""Helpers of the reporting-model tests: a real emulator on loopback, the real sync into a real
DuckDB file, configured through environment variables the way a user would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from handmade_cdrs import RECORDS, SECOND_ACCOUNT_RECORDS
from pipeline_harness import PipelineHarness  # tests/, on sys.path through its conftest

from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer

DATASET = "voipstudio"
# The models the default resources (cdrs, users, queues) do not build: those of the collections
# loaded on demand, and the marts reading only them (fct_calls reads recordings and voicemail
# as optional inputs: it is built, its flags NULL).
NOT_LOADED_BY_DEFAULT = frozenset(
    {
        *(
            f"stg_voipstudio__{name}"
            for name in (
                "monitors",
                "voicemessages",
                "sms",
                "chats",
                "contacts",
                "conversations",
                "faxes",
                "transactions",
                "queuegroups",
            )
        ),
        "agg_voicemail_daily",
        "agg_sms_daily",
        "agg_charges_monthly",
    }
)
REPO = Path(__file__).resolve().parents[2]
# Columns holding when a sync observed something (the queue memberships' history): two syncs of
# the same data, into two datasets, differ there and only there.
OBSERVED_COLUMNS = frozenset(
    {
        "valid_from_utc",
        "valid_to_utc",
        "valid_from_epoch",
        "valid_to_epoch",
        "observed_seconds",
        "history_since_utc",
        "last_member_change_utc",
    }
)


def empty_company(**overrides: Any) -> EmulatorConfig:
    """An emulator with users and a queue but no CDRs (the tests add their own)."""
    settings: dict[str, Any] = {
        "seed": 3,
        "users": 3,
        "queues": 1,
        "rows": 0,
        "start": "2024-03-01",
        "end": "2024-11-01",
        "now": "2024-11-01 00:00:00",
    }
    settings.update(overrides)
    return EmulatorConfig(**settings)


def small_company(**overrides: Any) -> EmulatorConfig:
    """A small synthetic company with a few hundred CDRs."""
    settings: dict[str, Any] = {
        "seed": 5,
        "users": 6,
        "queues": 2,
        "rows": 400,
        "start": "2026-02-23",
        "end": "2026-03-02",
        "now": "2026-03-02 00:00:00",
    }
    settings.update(overrides)
    return EmulatorConfig(**settings)


def add_cdrs(server: EmulatorServer, records: list[dict[str, Any]]) -> None:
    """Hand-made CDRs, through an emulator's admin API."""
    with httpx.Client(base_url=server.url + "/_emulator", timeout=30) as admin:
        response = admin.post("/cdrs", json={"records": records})
    assert response.status_code == 200, response.text
    assert response.json()["added"] == len(records)


@contextmanager
def two_accounts() -> Iterator[dict[str, EmulatorServer]]:
    """``north`` and ``south``: two emulated companies (same user ids, other names) serving the
    hand-made CDRs and the second account's, whose ids collide with them."""
    with (
        EmulatorServer(empty_company()) as north,
        EmulatorServer(empty_company(seed=4)) as south,
    ):
        add_cdrs(north, RECORDS)
        add_cdrs(south, SECOND_ACCOUNT_RECORDS)
        yield {"north": north, "south": south}


class ModelsHarness(PipelineHarness):
    """One emulator, one pipeline writing to its own DuckDB file, the models' settings of the
    hand-computed tests (Europe/Madrid, country code 34); every setting in ``env``."""

    def __init__(
        self,
        server: EmulatorServer,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        **extra_env: str,
    ) -> None:
        super().__init__(
            server,
            tmp_path,
            monkeypatch,
            {
                "SOURCES__VOIPSTUDIO__START_DATE": "2024-01-01",
                "SOURCES__VOIPSTUDIO__BACKOFF_BASE": "0.02",
                "MODELS__REPORTING_TIMEZONE": "Europe/Madrid",
                "MODELS__SERVICE_LEVEL_SECONDS": "20",
                "MODELS__SHORT_ABANDON_SECONDS": "5",
                "MODELS__BUSINESS_HOURS_START": "09:00",
                "MODELS__BUSINESS_HOURS_END": "18:00",
                "MODELS__BUSINESS_DAYS": "1-5",
                "MODELS__REPEAT_CALL_DAYS": "7",
                "MODELS__DEFAULT_COUNTRY_CODE": "34",
                "MODELS__TRUNK_PREFIX": "0",
                **extra_env,
            },
        )
        self.deleted = []

    # CDRs a scenario deleted from the API (to give them back later).
    deleted: list[dict[str, Any]]

    def add_cdrs(self, records: list[dict[str, Any]]) -> None:
        """Hand-made CDRs, through the emulator's admin API."""
        add_cdrs(self.server, records)

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of a query on the DuckDB file, as dicts."""
        with duckdb.connect(str(self.db_path), read_only=True) as db:
            cursor = db.execute(sql)
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def table(self, name: str, order_by: str = "1") -> list[dict[str, Any]]:
        """Every row of a table or view of the dataset."""
        return self.query(f"select * from {DATASET}.{name} order by {order_by}")

    def relations(self) -> dict[str, str]:
        """``{name: 'VIEW' | 'BASE TABLE'}`` of the dataset."""
        rows = self.query(
            "select table_name, table_type from information_schema.tables "
            f"where table_schema = '{DATASET}'"
        )
        return {row["table_name"]: row["table_type"] for row in rows}


def utc(text: str) -> datetime:
    """A naive UTC wall-clock timestamp, as the models store them."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


def epoch(text: str) -> int:
    """Unix seconds of a UTC ``YYYY-MM-DD HH:MM:SS``."""
    return int(utc(text).replace(tzinfo=UTC).timestamp())


def day(text: str) -> date:
    """A date from ``YYYY-MM-DD``."""
    return date.fromisoformat(text)
