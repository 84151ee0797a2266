"""Fixtures of the dashboard and publish tests.

``company``: one synthetic company for the session, served by the real emulator over HTTP,
loaded by the real sync into a real DuckDB file, with the reporting models built (reporting time
zone Europe/Madrid). Five weeks of calls: the reported fortnight and the fortnight before it are
both fully covered. Tests must not write to it (copy the file first). The emulator is stopped
once the data is loaded.

``two_accounts``: two VoIPstudio accounts, ``acme`` and ``beta``, each its own emulator, loaded
by one real sync into one DuckDB file (configured through the variables
``SOURCES__VOIPSTUDIO__ACCOUNTS__<NAME>__*``, as a user would), models built. ``acme`` is the
very company of ``company`` (same emulator settings, so the same data); ``beta`` is a smaller
company of the same seed: the same users, ids and names (every user id and name exists in both
accounts), different calls over the last three weeks only.

``browser``: a headless Chromium (Debian's ``chromium`` + ``chromium-driver``). Without them the
browser tests are skipped, except in CI, where that is a failure (``.ci/run`` installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

# The reporting-model tests' harness: emulator + real sync + models, configured like a user.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))

from models_harness import DATASET, ModelsHarness, small_company
from report_browser import Browser, chromium, find_browser

from pipelines.emulator.server import EmulatorServer
from pipelines.models import ModelSettings, build_models, load_settings
from pipelines.report import Period
from pipelines.report.data import Kpi, ReportData, load_report, open_marts

REPO = Path(__file__).resolve().parents[2]
# Git-ignored (/test-output/): screenshots of the browser tests, kept for people to look at.
OUTPUT = REPO / "test-output"
TIMEZONE = "Europe/Madrid"
PERIOD = Period(date(2026, 2, 16), date(2026, 3, 1))  # previous: 2026-02-02 .. 2026-02-15
# What the company's models are built with (models_harness's environment).
SETTINGS = ModelSettings(reporting_timezone=TIMEZONE, default_country_code="34")
# The company of ``company`` (and account acme of ``two_accounts``).
COMPANY = {"rows": 4000, "start": "2026-01-26", "end": "2026-03-02", "now": "2026-03-02 00:00:00"}
# Account beta of ``two_accounts``: same seed and users as COMPANY, other calls.
BETA = {"rows": 1500, "start": "2026-02-09", "end": "2026-03-02", "now": "2026-03-02 00:00:00"}
ACCOUNTS = ("acme", "beta")
# When the tests' reports are made.
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo(TIMEZONE))


@dataclass
class Company:
    """The session's loaded company: its DuckDB file and the settings it was built with."""

    db_path: Path
    env: dict[str, str]

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on the file (read-only)."""
        with duckdb.connect(str(self.db_path), read_only=True) as db:
            return db.execute(sql, params or {}).fetchall()

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The single value of ``sql``."""
        [(value,)] = self.query(sql, params)
        return value


def between(period: Period) -> dict[str, Any]:
    """The ``$start`` / ``$end`` parameters of a period."""
    return {"start": period.start, "end": period.end}


def report(
    company: Company,
    accounts: list[str] | None = None,
    period: Period = PERIOD,
    settings: ModelSettings = SETTINGS,
) -> ReportData:
    """What the dashboard of ``company`` shows (of some accounts, or of every account)."""
    with open_marts(company.db_path, DATASET, settings) as marts:
        return load_report(
            marts, period, settings.reporting_timezone, company.db_path.name, accounts=accounts
        )


# The measures of the page's destinations table.
DESTINATION_MEASURES = ("attempts", "answered", "talk", "cost")
# The page's tables (``ReportData.cube``) that are rows of keys and measures.
PAGE_TABLES = ("calls", "heat", "callbacks", "queue", "agents", "destinations", "missed", "traffic")


def page_rows(
    data: ReportData, table: str, period: Period | None = None, *, accounts: bool = True
) -> list[dict[str, Any]]:
    """The rows of one of the page's tables (``data.cube[table]``) in the days of ``period``
    (the report's by default), their keys decoded: ``day`` a date, ``account`` the account's
    name (``""`` with ``accounts=False``, to compare accounts), ``queue`` the queue's name (None:
    no queue), ``agent`` (account, user id) or None, ``destination`` the destination's name."""
    cube = data.cube
    if table not in cube:
        return []
    period = period or data.period
    first = date.fromisoformat(cube["window_start"])
    names = list(cube["accounts"]) if accounts else [""] * len(cube["accounts"])
    agents = [(names[account], user_id) for account, user_id, *_ in cube.get("agents_list", [])]
    decode = {
        "day": lambda value: first + timedelta(days=value),
        "account": lambda value: names[value],
        "queue": lambda value: None if value < 0 else cube["queues"][value],
        "agent": lambda value: None if value < 0 else agents[value],
        "destination": lambda value: cube["destination_names"][value],
    }
    rows = []
    for values in cube[table]["rows"]:
        row = {
            column: decode[column](value) if column in decode else value
            for column, value in zip(cube[table]["columns"], values, strict=True)
        }
        if period.start <= row["day"] <= period.end:
            rows.append(row)
    return rows


def page_sums(
    data: ReportData, table: str, by: str, columns: tuple[str, ...], period: Period | None = None
) -> dict[Any, list[float]]:
    """The ``columns`` of a page table summed by its decoded column ``by`` (see
    :func:`page_rows`), over ``period``."""
    sums: dict[Any, list[float]] = {}
    for row in page_rows(data, table, period):
        totals = sums.setdefault(row[by], [0] * len(columns))
        for i, column in enumerate(columns):
            totals[i] += row[column]
    return sums


def page_content(
    data: ReportData, period: Period | None = None, *, accounts: bool = True
) -> dict[str, Counter[tuple[tuple[str, Any], ...]]]:
    """Every row of every page table over ``period``, decoded (see :func:`page_rows`), as a
    multiset: two reports show the same when their contents are equal, whatever the order of
    their rows and of the lists their keys index."""
    return {
        table: Counter(
            tuple(sorted(row.items())) for row in page_rows(data, table, period, accounts=accounts)
        )
        for table in PAGE_TABLES
    }


def tiles(data: ReportData) -> dict[str, Kpi]:
    """The KPI tiles by key."""
    return {kpi.key: kpi for kpi in data.kpis}


def error_lines(stderr: str) -> list[str]:
    """The command line's error lines (and no traceback)."""
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if "error:" in line]


def raw_only_database(path: Path) -> Path:
    """A DuckDB file with a raw table and no reporting model."""
    with duckdb.connect(str(path)) as db:
        db.execute("create schema voipstudio; create table voipstudio.cdrs (id bigint)")
    return path


@contextmanager
def holding(path: Path, *, read_only: bool) -> Iterator[subprocess.Popen[str]]:
    """Another process (a BI tool, a sync) holding the file open until the block ends. It
    answers each line on stdin with ``select count(*) from voipstudio.fct_calls``."""
    script = (
        "import duckdb, sys\n"
        "db = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro')\n"
        "print('open', flush=True)\n"
        "for line in sys.stdin:\n"
        "    n = db.execute('select count(*) from voipstudio.fct_calls').fetchone()[0]\n"
        "    print(n, flush=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(path), "ro" if read_only else "rw"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "open"
    try:
        yield process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


def expected_tiles(
    company: Company, period: Period, account: str | None = None
) -> dict[str, float | None]:
    """Every tile's value, re-aggregated from the marts' numerators and denominators (of one
    account, or of every account)."""
    only = "" if account is None else f" and account = '{account}'"
    daily = company.query(
        """
        select
            sum(attempts),
            sum(answered_calls) filter (where direction = 'outbound')
                / nullif(sum(attempts) filter (where direction = 'outbound'), 0),
            sum(effective_calls) filter (where direction = 'outbound')
                / nullif(sum(attempts) filter (where direction = 'outbound'), 0),
            sum(talk_seconds) / nullif(sum(answered_calls), 0),
            sum(answered_within_sl_calls) / nullif(sum(offered_calls_excl_short), 0),
            sum(abandoned_calls_excl_short) / nullif(sum(offered_calls_excl_short), 0),
            sum(cost + forward_cost)
        from voipstudio.agg_calls_daily
        where call_date between $start and $end
        """
        + only,
        between(period),
    )[0]
    callback = company.scalar(
        """
        select count(*) filter (where called_back_within_24h and callback_window_closed_24h)
            / nullif(count(*) filter (where callback_window_closed_24h), 0)
        from voipstudio.fct_missed_call_callbacks
        where missed_date between $start and $end
        """
        + only,
        between(period),
    )
    keys = ("calls", "asr", "ner", "acd", "service_level", "abandon_rate", "cost")
    values: dict[str, float | None] = {
        key: None if value is None else float(value) for key, value in zip(keys, daily, strict=True)
    }
    values["callback_rate"] = None if callback is None else float(callback)
    return values


@pytest.fixture(scope="session")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Company]:
    tmp_path = tmp_path_factory.mktemp("report-company")
    config = small_company(**COMPANY)
    # The settings live in the environment only while loading: nothing leaks into other tests.
    with pytest.MonkeyPatch.context() as monkeypatch, EmulatorServer(config) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.sync()
        build_models(harness.pipeline(), load_settings())
        loaded = Company(harness.db_path, dict(harness.env))
    yield loaded


@pytest.fixture(scope="session")
def two_accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Company]:
    tmp_path = tmp_path_factory.mktemp("report-two-accounts")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        EmulatorServer(small_company(**COMPANY)) as acme,
        EmulatorServer(small_company(**BETA)) as beta,
    ):
        # The harness's settings (dates, models, destination), with the two accounts instead of
        # the single account it configures.
        harness = ModelsHarness(acme, tmp_path, monkeypatch)
        harness.use_accounts({"acme": acme, "beta": beta})
        harness.sync()
        build_models(harness.pipeline(), load_settings())
        loaded = Company(harness.db_path, dict(harness.env))
    yield loaded


@pytest.fixture
def two_accounts_env(two_accounts: Company, monkeypatch: pytest.MonkeyPatch) -> Company:
    """``two_accounts`` with its settings in the environment (as the command line reads them)."""
    for key in ("SOURCES__VOIPSTUDIO__API_KEY", "SOURCES__VOIPSTUDIO__BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in two_accounts.env.items():
        monkeypatch.setenv(key, value)
    return two_accounts


@pytest.fixture
def company_env(company: Company, monkeypatch: pytest.MonkeyPatch) -> Company:
    """``company`` with its settings in the environment (as the command line reads them)."""
    for key, value in company.env.items():
        monkeypatch.setenv(key, value)
    return company


@pytest.fixture
def live(company: Company, tmp_path: Path) -> Path:
    """A private copy of the company's database, free to be written."""
    path = tmp_path / "calls.duckdb"
    shutil.copy(company.db_path, path)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    found = find_browser()
    if found is None:
        message = "chromium and chromedriver are not installed (apt-get install chromium "
        message += "chromium-driver; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with chromium(*found) as session:
        yield session


@pytest.fixture(scope="session")
def dataset() -> str:
    return DATASET
