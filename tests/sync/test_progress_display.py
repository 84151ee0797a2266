"""The progress display's log mode (no terminal): a line every `interval` seconds with what is
running, and a line as each part ends; fed through the source's real progress events."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import dlt
import pytest
from rich.console import Console

from pipelines.display import SyncDisplay
from pipelines.voipstudio.progress import (
    report_finished,
    report_page,
    report_planned,
    report_planning,
)


def test_periodic_lines_while_a_resource_reads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voipstudio.progress")
    console = Console(file=io.StringIO())  # a log file, not a terminal
    display = SyncDisplay(console, interval=0.05)
    assert not display.live
    pipeline = dlt.pipeline("progress_test", pipelines_dir=str(tmp_path))
    with display.sync(pipeline):
        assert pipeline.collector is display.collector
        report_planning("cdrs_acme")
        report_planned("cdrs_acme", 4000)
        report_page("cdrs_acme", 1000)
        deadline = time.monotonic() + 30
        while "progress:" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        report_page("cdrs_acme", 3000)
        report_finished("cdrs_acme")
    assert pipeline.collector is not display.collector  # given back
    periodic = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert periodic, caplog.text
    assert periodic[0].startswith("progress: read cdrs (acme) 1,000/4,000 CDRs (25%), ")
    assert periodic[0].endswith(" s left")
    assert any(
        r.getMessage().startswith("read cdrs (acme): 4,000 CDRs in ") for r in caplog.records
    )
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]  # nothing drawn


def test_quiet_shows_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    display = SyncDisplay(Console(file=io.StringIO()), enabled=False, interval=0.01)
    pipeline = dlt.pipeline("progress_quiet", pipelines_dir=str(tmp_path))
    with display.sync(pipeline):
        report_planned("cdrs", 10)
        report_page("cdrs", 10)
        time.sleep(0.05)
        report_finished("cdrs")
    assert not [r for r in caplog.records if r.name == "voipstudio.progress"]
