"""The single-run lock: a live holder is respected (exit 75), the lock of a holder that is gone
(a SIGKILLed sync, a working folder restored from another machine) is taken over with a log
line."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_harness import REPO
from sync_harness import Harness, assert_cdrs_equal

HOLD_LOCK = """
import sys, time
from pipelines.sync import make_pipeline, sync_lock
with sync_lock(make_pipeline()):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_the_lock_of_a_killed_sync_is_taken_over_and_a_live_one_is_respected(
    duckdb_harness: Harness,
) -> None:
    harness = duckdb_harness
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK],
        cwd=REPO,
        env={**os.environ, **harness.env},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        live = harness.cli("sync")
        assert live.returncode == 75
        assert f"pid {holder.pid} on host" in live.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    taken = harness.cli("sync")
    assert taken.returncode == 0, taken.stderr
    assert "taking over the lock" in taken.stderr and f"pid {holder.pid}" in taken.stderr
    assert_cdrs_equal(harness, harness.emulator_cdrs())
    # Released normally, the lock leaves nothing to take over.
    again = harness.cli("sync", "--no-models")
    assert again.returncode == 0 and "taking over" not in again.stderr


def test_a_stale_lock_file_from_another_machine_is_taken_over(
    duckdb_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness = duckdb_harness
    lock = Path(harness.pipeline().working_dir) / "sync.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    # A working folder restored from a CI cache: a pid of another pid namespace, another host.
    lock.write_text(f"pid 1 on host ci-runner-7f3a since 2026-01-01T00:00:00+00:00 {time.time()}")
    caplog.set_level(logging.WARNING)
    harness.sync()
    assert "taking over the lock" in caplog.text and "ci-runner-7f3a" in caplog.text
    assert_cdrs_equal(harness, harness.emulator_cdrs())
