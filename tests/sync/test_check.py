"""``voipstudio check`` against the emulator (real HTTP): one line per check, the first
failure's exit code, every account of the configuration, and never a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sync_harness import Harness, small_config

from pipelines.cli import main
from pipelines.emulator.config import DEFAULT_API_KEY, DEFAULT_USER_API_KEY
from pipelines.emulator.server import EmulatorServer
from pipelines.voipstudio.check import CHECKS

REPO = Path(__file__).resolve().parents[2]
# Data that ends now (the time zone check compares the newest call with the real clock).
LIVE = {"start": None, "end": None, "now": None, "days": 3}


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, str], str]:
    """``voipstudio check``: its exit code, each check's line by name (``[account]|name`` with
    several accounts), and all it printed."""
    code = main(["check", *args])
    out, err = capsys.readouterr()
    lines = {}
    for line in out.splitlines():
        account, _, rest = line.rpartition("] ") if line.startswith("[") else ("", "", line)
        name = next((n for n in CHECKS if rest.startswith(n + " ")), None)
        if name is not None:
            lines[f"{account}]|{name}" if account else name] = line
    return code, lines, out + err


def status(line: str) -> str:
    """The status word of a check's line."""
    rest = line.rpartition("] ")[2] if line.startswith("[") else line
    name = next(n for n in CHECKS if rest.startswith(n + " "))
    return rest[len(name) :].split()[0]


def test_a_faithful_api_passes_every_check(
    make_harness: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    harness: Harness = make_harness(**LIVE)
    before = sum(harness.state()["requests"].values())
    code, lines, printed = run_check(capsys)
    assert code == 0, printed
    assert list(lines) == list(CHECKS)
    assert all(status(line) == "ok" for line in lines.values()), printed
    assert "user 100001" in lines["credentials"]
    assert "12 users" in lines["scope"]
    assert "page 30 holds 100, the next none" in lines["total"]
    assert DEFAULT_API_KEY not in printed
    # A few small requests: /ping, /me, /users and four pages of /cdrs.
    assert sum(harness.state()["requests"].values()) - before <= 8


def test_a_plain_users_key_is_said_loudly(
    duckdb_harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    duckdb_harness.setenv("SOURCES__VOIPSTUDIO__API_KEY", DEFAULT_USER_API_KEY)
    code, lines, printed = run_check(capsys)
    assert code == 0, printed
    assert status(lines["scope"]) == "WARN"
    assert "ONLY ONE USER'S CALLS" in lines["scope"] and "admin" in lines["scope"]
    assert DEFAULT_USER_API_KEY not in printed


@pytest.mark.parametrize(
    ("setting", "check", "word", "code"),
    [
        ({"page_cap": 40}, "page size", "WARN", 0),
        ({"ignore_sort": True}, "sort", "FAIL", 5),
        ({"total_cap": 250}, "total", "FAIL", 5),
    ],
    ids=["clamped-pages", "sort-ignored", "total-capped"],
)
def test_each_broken_assumption_is_named(
    duckdb_harness: Harness,
    capsys: pytest.CaptureFixture[str],
    setting: dict[str, Any],
    check: str,
    word: str,
    code: int,
) -> None:
    duckdb_harness.configure(**setting)
    exit_code, lines, printed = run_check(capsys)
    assert exit_code == code, printed
    assert status(lines[check]) == word, printed
    others = [name for name in CHECKS if name != check]
    assert all(status(lines[name]) == "ok" for name in others if name != "timezone"), printed


def test_a_calldate_in_another_format_fails(
    duckdb_harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    newest = duckdb_harness.emulator_cdrs()[-1]["id"]
    duckdb_harness.admin.post(
        "/cdrs/patch", json={"updates": [{"id": newest, "set": {"calldate": "02/03/2026 10:00"}}]}
    )
    code, lines, printed = run_check(capsys)
    assert code == 5, printed
    assert status(lines["calldate"]) == "FAIL" and "02/03/2026 10:00" in lines["calldate"]


def test_calldates_in_the_future_mean_the_wrong_time_zone(
    make_harness: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    harness: Harness = make_harness(**LIVE)
    # A call that starts now: the synthetic day's last call can be an hour old (at night), and
    # the offset the check suggests is counted from the newest call.
    harness.admin.post("/cdrs", json={"generate": {"count": 1, "late_fraction": 0.0}})
    # The emulator writes UTC; read in New York the newest call would start hours from now.
    harness.setenv("SOURCES__VOIPSTUDIO__TIMEZONE", "America/New_York")
    code, lines, printed = run_check(capsys)
    assert code == 2, printed
    assert status(lines["timezone"]) == "FAIL"
    assert "in the future" in lines["timezone"] and "UTC+00:00" in lines["timezone"]
    harness.setenv("SOURCES__VOIPSTUDIO__TIMEZONE", "UTC")
    code, lines, printed = run_check(capsys)
    assert code == 0 and "before now" in lines["timezone"], printed


def test_several_accounts_are_checked_each(
    duckdb_harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = duckdb_harness
    with EmulatorServer(small_config(ignore_sort=True)) as other:
        harness.use_accounts({"acme": harness.server, "beta": other})
        code, lines, printed = run_check(capsys)
        assert code == 5, printed
        assert status(lines["[acme]|sort"]) == "ok"
        assert status(lines["[beta]|sort"]) == "FAIL"
        assert len(lines) == 2 * len(CHECKS)
        code, lines, printed = run_check(capsys, "--account", "acme")
        assert code == 0, printed
        assert all(key.startswith("[acme]") for key in lines)
        assert main(["check", "--account", "gamma"]) == 2
        assert "unknown account(s) gamma" in capsys.readouterr().err


def test_refused_credentials_as_a_scheduler_sees_them(duckdb_harness: Harness) -> None:
    secret = "wrong-key-3f9a1c77"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "check"],
        cwd=REPO,
        env={**os.environ, **duckdb_harness.env, "SOURCES__VOIPSTUDIO__API_KEY": secret},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("credentials  FAIL") and "API key" in lines[0]
    assert all(" skip " in line for line in lines[1:]) and len(lines) == len(CHECKS)
    assert secret not in result.stdout + result.stderr
