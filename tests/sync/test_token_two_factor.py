"""`voipstudio token create` for an account with two-factor authentication, on a real terminal
(a pseudo-terminal): it asks for the password and the code, completes /login2fa, and the key it
prints syncs. Off a terminal it says how instead."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sync_harness import Harness
from terminal import run_on_terminal

REPO = Path(__file__).resolve().parents[2]
VOIPSTUDIO = str(Path(sys.executable).parent / "voipstudio")
EMAIL = "2fa@example.com"  # the emulator's two-factor account (code 123456)


def env_for(harness: Harness, **extra: str) -> dict[str, str]:
    env = {**os.environ, **harness.env, "SOURCES__VOIPSTUDIO__EMAIL": EMAIL}
    env.pop("SOURCES__VOIPSTUDIO__API_KEY", None)
    env.pop("SOURCES__VOIPSTUDIO__PASSWORD", None)
    return {**env, **extra}


def test_on_a_terminal_it_asks_for_the_code(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    run = run_on_terminal(
        [VOIPSTUDIO, "token", "create", "--name", "warehouse"],
        env=env_for(harness),
        cwd=REPO,
        timeout=60,
        answers=[
            (f"VoIPstudio password for {EMAIL}: ", "demo-password"),
            (f"Two-factor code for {EMAIL}: ", "000000"),  # a wrong code first
            (f"Two-factor code for {EMAIL}: ", "123456"),
        ],
    )
    assert run.returncode == 0, run.output
    assert "the code was refused; try again" in run.output
    assert "demo-password" not in run.output  # the password is not echoed
    [token] = re.findall(r"^([0-9a-f]{32})$", run.output, flags=re.MULTILINE)
    synced = subprocess.run(
        [VOIPSTUDIO, "sync", "--resources", "users", "--no-models"],
        cwd=REPO,
        env={**env_for(harness), "SOURCES__VOIPSTUDIO__API_KEY": token},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert synced.returncode == 0, synced.stderr
    assert len(harness.loaded("users")) == 12


def test_three_wrong_codes_create_nothing(duckdb_harness: Harness) -> None:
    run = run_on_terminal(
        [VOIPSTUDIO, "token", "create", "--name", "warehouse"],
        env=env_for(duckdb_harness, SOURCES__VOIPSTUDIO__PASSWORD="demo-password"),
        cwd=REPO,
        answers=[(f"Two-factor code for {EMAIL}: ", "000000")] * 3,
        timeout=60,
    )
    assert run.returncode == 3, run.output
    assert "refused 3 times; nothing was created" in run.output
    assert not re.search(r"^[0-9a-f]{32}$", run.output, flags=re.MULTILINE)


def test_off_a_terminal_it_says_how(duckdb_harness: Harness) -> None:
    result = subprocess.run(
        [VOIPSTUDIO, "token", "create", "--name", "warehouse"],
        cwd=REPO,
        env=env_for(duckdb_harness, SOURCES__VOIPSTUDIO__PASSWORD="demo-password"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 3
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert "two-factor" in result.stderr and "on a terminal" in result.stderr
    assert "admin panel" in result.stderr
