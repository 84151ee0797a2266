"""``voipstudio demo`` (what ``make demo`` runs): the whole product on this machine, no account.

Starts the emulator with a synthetic company, syncs it into a fresh ``data/demo.duckdb``, lets
new and late calls arrive, syncs again to show the increment, says where the data is, then
builds the reporting models, runs their data tests, prints a few headline KPIs and ends by
writing the dashboard (``data/demo-report.html``) and printing its path.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dlt
import duckdb

from pipelines.console import say
from pipelines.display import SyncDisplay
from pipelines.emulator.config import DEFAULT_API_KEY, EmulatorConfig
from pipelines.emulator.server import EmulatorServer
from pipelines.models import build_models, check_data_tests, load_settings, run_data_tests
from pipelines.models.kpis import headline_kpis
from pipelines.report import Period, write_report
from pipelines.sync import SyncSummary, make_pipeline, models_duckdb_settings, run_sync

DEMO_DIR = Path("data")
DEMO_DB = DEMO_DIR / "demo.duckdb"
DEMO_PIPELINES_DIR = DEMO_DIR / "demo-pipelines"
DEMO_REPORT = DEMO_DIR / "demo-report.html"
DEMO_PIPELINE = "voipstudio_demo"
DATASET = "voipstudio"
# `python` is the one voipstudio runs in: .venv/bin/python in a checkout (README).
QUERY_HINT = (
    'Query it:  python -c "import duckdb; '
    "print(duckdb.connect('data/demo.duckdb').sql('select * from voipstudio.cdrs limit 5'))\""
)
BY_TYPE_SQL = """
select type, count(*), round(sum(billsec) / 60.0), round(sum(charge), 2)
from voipstudio.cdrs group by type order by type
"""


def _say(text: str) -> None:
    say(text)


def _show(summary: SyncSummary) -> None:
    unchanged = summary.cdrs_unchanged
    _say(
        f"   {summary.cdrs_read:,} CDRs read in {summary.seconds:.1f}s: "
        f"{summary.cdrs_new:,} new, {summary.cdrs_updated:,} read again (lag window) and merged"
        + (f", {unchanged:,} read again unchanged (not loaded again)" if unchanged else "")
        + f"; {summary.cdrs_after:,} in the table; cursor {summary.cursor}"
    )


def _sync(pipeline: dlt.Pipeline, display: SyncDisplay | None) -> SyncSummary:
    if display is None:
        return run_sync(pipeline)
    with display.sync(pipeline):
        return run_sync(pipeline)


def run_demo(days: int = 30, users: int = 25, display: SyncDisplay | None = None) -> int:
    """Run the demo; returns the exit code.

    The demo points the source at its emulator (and the models at the synthetic company's time
    zone) through environment variables, which outrank every settings file; they are put back
    as they were when it ends, so a caller in the same process (a test, a library user's
    script) never syncs against a stopped emulator afterwards.

    Args:
        days: days of synthetic calls.
        users: users of the synthetic company.
        display: where the syncs and the models show their progress (none by default).
    """
    saved = dict(os.environ)
    try:
        return _run_demo(days, users, display)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run_demo(days: int, users: int, display: SyncDisplay | None) -> int:
    for path in (DEMO_DB, DEMO_DB.with_suffix(".duckdb.wal"), DEMO_PIPELINES_DIR):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    DEMO_DIR.mkdir(exist_ok=True)
    _say(f"1. Starting the VoIPstudio emulator: {users} users, {days} days of calls ...")
    config = EmulatorConfig(seed=7, users=users, days=days)
    with EmulatorServer(config) as server:
        counts = server.emulator.state()["counts"]
        _say(
            f"   {server.base_url} serves {counts['cdrs']:,} CDRs, {counts['users']} users, "
            f"{counts['queues']} queues"
        )
        start = (datetime.now(UTC) - timedelta(days=days + 1)).strftime("%Y-%m-%d")
        os.environ.update(
            {
                "SOURCES__VOIPSTUDIO__BASE_URL": server.base_url,
                "SOURCES__VOIPSTUDIO__API_KEY": DEFAULT_API_KEY,
                "SOURCES__VOIPSTUDIO__START_DATE": start,
                "SOURCES__VOIPSTUDIO__TIMEZONE": "UTC",
            }
        )
        pipeline = make_pipeline(
            DEMO_PIPELINE,
            destination=dlt.destinations.duckdb(str(DEMO_DB)),
            dataset_name=DATASET,
            pipelines_dir=str(DEMO_PIPELINES_DIR),
        )
        _say(f"2. First sync (everything since {start}) into {DEMO_DB} ...")
        _show(_sync(pipeline, display))
        ids = server.emulator.add_generated_cdrs(250, late_fraction=0.3)
        _say(f"3. {len(ids)} calls end: new ones, and long calls whose calldate is hours ago ...")
        _say("4. Second sync (incremental: the cursor minus the lag) ...")
        _show(_sync(pipeline, display))
    with duckdb.connect(str(DEMO_DB), read_only=True) as db:
        rows = db.execute(BY_TYPE_SQL).fetchall()
    _say("5. Calls by type (I inbound, O outbound, M missed): CDRs, minutes, charge")
    for kind, count, minutes, charge in rows:
        _say(f"   {kind}: {count:>8,} CDRs {minutes:>10,.0f} min {charge:>10,.2f}")
    _say(f"   The data is in {DEMO_DB}, dataset '{DATASET}': tables cdrs, users, queues.")
    _say(f"   {QUERY_HINT}")
    _say(
        "   Sync a real account: put your API key in .dlt/secrets.toml and run `voipstudio "
        "sync` (.venv/bin/voipstudio in a checkout; see README)."
    )
    # Reporting models: in the company's own time zone unless configured otherwise; its
    # national numbers (no +) are Spanish.
    os.environ.setdefault("MODELS__REPORTING_TIMEZONE", config.timezone)
    os.environ.setdefault("MODELS__DEFAULT_COUNTRY_CODE", "34")
    settings = load_settings()
    _say(f"6. Building the reporting models (sql/; days in {settings.reporting_timezone}) ...")
    # Under the DuckDB settings `voipstudio sync` builds its models with (its memory limit).
    with models_duckdb_settings(pipeline):
        if display is None:
            built = build_models(pipeline, settings)
        else:
            with display.models():
                built = build_models(pipeline, settings)
    _say(f"   {built.summary()}")
    tests = run_data_tests(pipeline, settings)
    _say(f"   data tests (sql/tests): {sum(t.passed for t in tests)} of {len(tests)} passed")
    for test in tests:
        if not test.passed:
            _say(f"   {test.describe()}")
    check_data_tests(tests)
    _say(
        "7. Headline KPIs (tables fct_calls, agg_calls_daily, agg_traffic_hourly, ... in "
        f"dataset '{DATASET}'; see README, Reporting models):"
    )
    for line in headline_kpis(pipeline):
        _say(f"   {line}")
    # The dashboard: the last full days (today is still going) against as many days before
    # them, both inside the demo's data.
    today = datetime.now(ZoneInfo(settings.reporting_timezone)).date()
    span = max(1, (days - 2) // 2)
    period = Period(today - timedelta(days=span), today - timedelta(days=1))
    report = write_report(DEMO_DB, DEMO_REPORT, dataset=DATASET, settings=settings, period=period)
    _say(
        f"8. Dashboard of the last {span} full days against the {span} before them "
        f"(`voipstudio report`; README, Dashboard and BI tools):"
    )
    _say(f"   {report.path}  ({report.size / 1e6:.1f} MB, self-contained: open it in a browser)")
    _say(f"   {report.path.resolve().as_uri()}")
    return 0
