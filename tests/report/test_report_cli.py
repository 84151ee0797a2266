"""``voipstudio report``, ``voipstudio publish``, publishing after ``voipstudio sync`` and the
demo's dashboard, as a user (or a scheduler) runs them: output, files, exit codes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import PERIOD, Company, error_lines
from models_harness import (
    NOT_LOADED_BY_DEFAULT,
    ModelsHarness,
    small_company,
)  # on sys.path through conftest
from pipeline_harness import edited_sql

from pipelines.cli import main
from pipelines.emulator.server import EmulatorServer
from pipelines.models import load_project
from pipelines.sync import make_pipeline, sync_lock


@pytest.fixture
def live_env(company_env: Company, live: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the company's database, the one the command line reads and writes."""
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(live))
    return live


def test_report_command(
    company_env: Company, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "out" / "dashboard.html"
    code = main(
        ["report", "--from", str(PERIOD.start), "--to", str(PERIOD.end), "--output", str(page)]
    )
    out = capsys.readouterr().out
    assert code == 0
    calls = company_env.scalar(
        "select count(*) from voipstudio.fct_calls where call_date between $start and $end",
        {"start": PERIOD.start, "end": PERIOD.end},
    )
    assert f"report written: {page} " in out
    assert f"2026-02-16 to 2026-03-01, Europe/Madrid; {calls:,} calls" in out
    assert f"open it: {page.resolve().as_uri()}" in out
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "data-timezone>Europe/Madrid<" in html
    assert not list(page.parent.glob(".*"))  # written atomically, no temporary left


def test_report_defaults_next_to_the_database_and_other_time_zones(
    live_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--to", "2026-03-01", "--timezone", "America/New_York"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "report.html").is_file()
    assert "2026-01-31 to 2026-03-01, America/New_York" in out  # 30 days by default
    assert "rebuilt them in memory for America/New_York" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timezone", "Nowhere/Land"], "--timezone 'Nowhere/Land' is not an IANA time zone"),
        (["--from", "2026-02-30"], "--from '2026-02-30' is not a date YYYY-MM-DD"),
        (["--from", "2026-03-02", "--to", "2026-03-01"], "--from 2026-03-02 is after --to"),
        (["--database", "/nonexistent/calls.duckdb"], "no database at /nonexistent/calls.duckdb"),
    ],
)
def test_report_command_errors_exit_2(
    company_env: Company,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code = main(["report", "--output", str(tmp_path / "r.html"), *args])
    assert code == 2
    [line] = error_lines(capsys.readouterr().err)
    assert message in line
    assert not (tmp_path / "r.html").exists()


def test_publish_command_and_the_sync_lock(
    live_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "bi"
    assert main(["publish", "--directory", str(target)]) == 0
    out = capsys.readouterr().out
    models = len(load_project().models) - len(NOT_LOADED_BY_DEFAULT)  # the history's: not loaded
    assert f"{target / 'calls.duckdb'} (" in out and f"{models} Parquet files" in out
    # the published copy feeds the dashboard too
    page = tmp_path / "from-copy.html"
    assert main(["report", "--database", str(target / "calls.duckdb"), "-o", str(page)]) == 0
    assert "source: calls.duckdb" in page.read_text().lower()
    capsys.readouterr()
    # a sync running: publish touches nothing and says so (exit 75, "skipped" for schedulers)
    with sync_lock(make_pipeline()):
        assert main(["publish", "--directory", str(tmp_path / "other")]) == 75
    [line] = error_lines(capsys.readouterr().err)
    assert "another sync of pipeline 'voipstudio' is running" in line
    assert not (tmp_path / "other" / "calls.duckdb").exists()


def test_sync_publishes_after_the_models_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "published"
    with EmulatorServer(small_company(rows=150)) as server:
        harness = ModelsHarness(
            server, tmp_path, monkeypatch, PUBLISH__DIRECTORY=str(target), PUBLISH__PARQUET="0"
        )
        # off by default
        assert main(["sync"]) == 0
        assert "published" not in capsys.readouterr().out
        assert not target.exists()

        harness.setenv("PUBLISH__AFTER_SYNC", "true")
        assert main(["sync"]) == 0
        out = capsys.readouterr().out
        assert out.index("models built") < out.index("published in")
        snapshot = target / "calls.duckdb"
        first = snapshot.stat().st_mtime_ns
        assert not (target / "parquet").exists()

        # A model that fails: exit 6, and the BI tools keep the last good copy.
        broken = edited_sql(
            tmp_path / "sql", {"marts/fct_calls.sql": ("min(call_id) as call_id", "min(nothing)")}
        )
        monkeypatch.setattr("pipelines.models.runner.SQL_DIR", broken)
        assert main(["sync"]) == 6
        assert "published" not in capsys.readouterr().out
        assert snapshot.stat().st_mtime_ns == first

        # A bad [publish] setting stops the sync before it starts.
        harness.setenv("PUBLISH__AFTER_SYNC", "maybe")
        assert main(["sync"]) == 2
        assert "sync done" not in capsys.readouterr().out


def test_the_demo_ends_with_the_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith(("SOURCES__", "DESTINATION__", "MODELS__", "PIPELINES__")):
            monkeypatch.delenv(key)
    before = dict(os.environ)
    assert main(["demo", "--days", "6", "--users", "5"]) == 0
    # The demo's emulator address and time zone do not outlive it in this process.
    assert dict(os.environ) == before
    lines = capsys.readouterr().out.splitlines()
    page = tmp_path / "data" / "demo-report.html"
    assert lines[-3].startswith("8. Dashboard of the last 2 full days against the 2 before them")
    assert lines[-2].strip().startswith("data/demo-report.html")
    assert lines[-1].strip() == page.resolve().as_uri()
    html = page.read_text(encoding="utf-8")
    assert "Europe/Madrid" in html and 'data-chart-box="daily"' in html
