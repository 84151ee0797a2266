"""The `voipstudio` command as a scheduler runs it: a separate process, exit codes, one-line
errors, no secrets in what it prints, the single-run lock, and a run killed half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
from sync_harness import DATASET, Harness, assert_cdrs_equal

from pipelines.sync import sync_lock

REPO = Path(__file__).resolve().parents[2]


def voipstudio(harness: Harness, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=REPO,
        env={**os.environ, **harness.env, "SOURCES__VOIPSTUDIO__BACKOFF_BASE": "0.01", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sync_and_status_from_the_command_line(harness: Harness) -> None:
    result = voipstudio(harness, "sync")
    assert result.returncode == 0, result.stderr
    assert "sync done" in result.stdout
    assert_cdrs_equal(harness, harness.emulator_cdrs())
    status = voipstudio(harness, "status", "--max-age", "1h")
    assert status.returncode == 0, status.stderr
    assert "rows cdrs:" in status.stdout and "3,000" in status.stdout


def test_status_max_age_flags_stale_or_missing_data(harness: Harness) -> None:
    never = voipstudio(harness, "status", "--max-age", "1h")
    assert never.returncode == 8
    assert "STALE" in never.stderr
    assert voipstudio(harness, "sync").returncode == 0
    time.sleep(1.2)
    stale = voipstudio(harness, "status", "--max-age", "1s", "--json")
    assert stale.returncode == 8
    assert '"stale": true' in stale.stdout


def test_wrong_api_key_fails_cleanly_without_showing_it(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    secret = "not-the-right-key-9f8e7d"
    result = voipstudio(harness, "sync", SOURCES__VOIPSTUDIO__API_KEY=secret)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "API key" in lines[0] and "SOURCES__VOIPSTUDIO__API_KEY" in lines[0]
    assert secret not in result.stderr + result.stdout


def test_wrong_password_is_not_shown(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    secret = "hunter2-wrong-password"
    env = {"SOURCES__VOIPSTUDIO__API_KEY": "", "SOURCES__VOIPSTUDIO__EMAIL": "demo@example.com"}
    result = voipstudio(harness, "-v", "sync", SOURCES__VOIPSTUDIO__PASSWORD=secret, **env)
    assert result.returncode == 3
    assert "Login failed for demo@example.com" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_bad_configuration_gets_one_clear_line(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    cases: dict[str, tuple[dict[str, str], str]] = {
        "date": ({"SOURCES__VOIPSTUDIO__START_DATE": "yesterday"}, "start_date"),
        "lag": ({"SOURCES__VOIPSTUDIO__LAG": "six hours"}, "lag"),
        # Shorter than the hour a DST zone repeats: that hour's CDRs would be missed.
        "dst lag": (
            {"SOURCES__VOIPSTUDIO__LAG": "30m", "SOURCES__VOIPSTUDIO__TIMEZONE": "Europe/Madrid"},
            "at least 60m",
        ),
        "zone": ({"SOURCES__VOIPSTUDIO__TIMEZONE": "Mars/Olympus"}, "timezone"),
        "page": ({"SOURCES__VOIPSTUDIO__PAGE_SIZE": "9000"}, "page_size"),
        "key": ({"SOURCES__VOIPSTUDIO__API_KEY": ""}, "credentials"),
    }
    for name, (env, word) in cases.items():
        result = voipstudio(harness, "sync", **env)
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr, name
        assert word in result.stderr, (name, result.stderr)
    assert harness.loaded() == []


def test_unreachable_host(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    result = voipstudio(
        harness,
        "sync",
        SOURCES__VOIPSTUDIO__BASE_URL="http://127.0.0.1:9/v1.2/voipstudio",
        SOURCES__VOIPSTUDIO__MAX_ATTEMPTS="2",
    )
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
    assert "127.0.0.1:9" in result.stderr and "base_url" in result.stderr


def test_second_concurrent_run_exits_and_touches_nothing(harness: Harness) -> None:
    assert voipstudio(harness, "sync").returncode == 0
    before = harness.loaded()
    requests_before = harness.state()["requests"].get("/cdrs", 0)
    with sync_lock(harness.pipeline()):
        result = voipstudio(harness, "sync")
    assert result.returncode == 75
    assert "another sync" in result.stderr
    assert harness.state()["requests"].get("/cdrs", 0) == requests_before
    assert harness.loaded() == before


def test_run_killed_mid_extract_resumes_where_it_stopped(make_harness: Any) -> None:
    harness: Harness = make_harness(rows=3000, latency_per_request_ms=30)
    expected = harness.emulator_cdrs()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sync", "--commit-every-rows", "600"],
        cwd=REPO,
        env={**os.environ, **harness.env, "SOURCES__VOIPSTUDIO__MAX_CONCURRENCY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill it in its third part (about 22 requests each): two parts are committed by then.
    deadline = time.monotonic() + 120
    while harness.state()["requests"].get("/cdrs", 0) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    with duckdb.connect(str(harness.db_path), read_only=True) as db:
        committed = db.execute(f"select count(*) from {DATASET}.cdrs").fetchall()[0][0]
    assert 0 < committed < len(expected)
    harness.configure(latency={})
    pages_before = harness.state()["requests"]["/cdrs"]
    result = voipstudio(harness, "sync")
    assert result.returncode == 0, result.stderr
    assert_cdrs_equal(harness, expected)
    # The rerun read what was missing, not everything again (30 pages of 100 CDRs plus counts).
    rerun_requests = harness.state()["requests"]["/cdrs"] - pages_before
    full_run_requests = pages_before
    assert rerun_requests < full_run_requests


def test_token_create_mints_a_key_that_syncs(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    login = {"SOURCES__VOIPSTUDIO__EMAIL": "demo@example.com"}
    result = voipstudio(
        harness,
        "token",
        "create",
        "--name",
        "warehouse",
        "--expiry",
        "7d",
        SOURCES__VOIPSTUDIO__PASSWORD="demo-password",
        **login,
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert len(token) >= 16 and token != harness.env["SOURCES__VOIPSTUDIO__API_KEY"]
    synced = voipstudio(harness, "sync", "--resources", "users", SOURCES__VOIPSTUDIO__API_KEY=token)
    assert synced.returncode == 0, synced.stderr
    assert len(harness.loaded("users")) == 12
    again = voipstudio(
        harness,
        "token",
        "create",
        "--name",
        "warehouse",
        SOURCES__VOIPSTUDIO__PASSWORD="demo-password",
        **login,
    )
    assert again.returncode == 4 and "already" in again.stderr


def test_two_factor_account_is_told_to_use_an_api_key(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    result = voipstudio(
        harness,
        "sync",
        SOURCES__VOIPSTUDIO__API_KEY="",
        SOURCES__VOIPSTUDIO__EMAIL="2fa@example.com",
        SOURCES__VOIPSTUDIO__PASSWORD="demo-password",
    )
    assert result.returncode == 3
    assert "two-factor" in result.stderr and "api_key" in result.stderr
