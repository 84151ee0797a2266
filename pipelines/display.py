"""The progress display of a sync, in the style of uv and pip.

On a terminal, a rich live display with a row per resource through the phases of a sync:
**plan** (counting the range), **read** (pages arriving: a bar with the known total, percent,
count, rate and time left), then **load** (dlt's normalize and load steps) and **models**.
Elsewhere (cron, CI, a log file) the same progress as plain log lines: one every
``interval`` seconds while something runs, and one as each part ends.

The source reports through :mod:`pipelines.voipstudio.progress`; dlt's steps reach the display
through a dlt progress collector (``pipeline.collector``), dlt's own hook for this.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dlt
from dlt.common.runtime.collector_base import Collector
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from pipelines.voipstudio.catalog import split_resource
from pipelines.voipstudio.progress import listening

log = logging.getLogger("voipstudio.progress")

# Seconds between two progress lines when not on a terminal.
LOG_INTERVAL_SECONDS = 10.0


def _label(resource: str) -> tuple[str, str]:
    """How a resource's row is labelled (``cdrs (acme)``) and what it counts (``CDRs``)."""
    collection, account = split_resource(resource)
    if collection is None:  # not a collection's (reconcile's reading, ...)
        kind, _, account_name = resource.partition("_")
        return (f"{kind} ({account_name})" if account_name else kind), kind
    name = collection.name
    return (f"{name} ({account})" if account else name), collection.records


@dataclass
class _Row:
    """One line of the display: a resource, the load, or the models."""

    phase: str
    label: str
    unit: str
    total: int | None = None
    completed: int = 0
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    task: TaskID | None = None

    def rate(self, now: float) -> float:
        elapsed = (self.ended or now) - self.started
        return self.completed / elapsed if elapsed > 0 else 0.0

    def line(self, now: float) -> str:
        """The row as a log line: ``read cdrs 31,000/50,000 CDRs (62%), 9,000/s, 2 s left``."""
        text = f"{self.phase} {self.label}" if self.label else self.phase
        if self.total is None:
            return f"{text}: {self.completed:,} {self.unit}" if self.completed else f"{text} ..."
        text += f" {min(self.completed, self.total):,}/{self.total:,} {self.unit}"
        if self.total:
            text += f" ({min(self.completed, self.total) / self.total:.0%})"
        rate = self.rate(now)
        if self.unit not in ("jobs", "files") and rate:
            text += f", {rate:,.0f}/s"
            if self.ended is None and self.completed < self.total:
                text += f", {(self.total - self.completed) / rate:,.0f} s left"
        return text

    def done_line(self, now: float) -> str:
        """The row once ended: ``read cdrs: 50,000 CDRs in 5.2 s (9,600/s)``."""
        text = f"{self.phase} {self.label}" if self.label else self.phase
        seconds = (self.ended or now) - self.started
        line = f"{text}: {self.completed:,} {self.unit} in {seconds:.1f} s"
        if self.unit not in ("jobs", "files") and seconds >= 1 and self.completed >= 1000:
            line += f" ({self.rate(now):,.0f}/s)"
        return line


class _CountColumn(ProgressColumn):
    """``31,000/50,000 CDRs`` (``31,000 CDRs`` while the total is not known)."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "")
        if not unit:  # the models: nothing to count
            return Text("")
        done = int(task.completed)
        if task.total is None:
            return Text(f"{done:,} {unit}" if done else "", style="progress.download")
        total = int(task.total)
        return Text(f"{min(done, total):,}/{total:,} {unit}", style="progress.download")


class _RateColumn(ProgressColumn):
    """Records per second (none for the load's jobs)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed or task.fields.get("unit") in ("jobs", "files", ""):
            return Text("")
        return Text(f"{speed:,.0f}/s", style="progress.data.speed")


class _DltCollector(Collector):
    """dlt's progress hook: normalize and load steps become the display's **load** row."""

    def __init__(self, display: SyncDisplay) -> None:
        self.display = display

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        if name in ("Files", "Jobs") and not label:
            self.display.load_update(inc, total, inc_total)

    def _start(self, step: str) -> None:
        if step.startswith("Normalize"):
            self.display.load_started("normalize", "files")
        elif step.startswith("Load"):
            self.display.load_started("load", "jobs")

    def _stop(self) -> None:
        self.display.load_stopped()


class SyncDisplay:
    """Shows the progress of a sync and of the models after it.

    Args:
        console: the rich console on stderr; the live display is drawn when it is a terminal.
        enabled: False shows nothing (``-q``).
        interval: seconds between progress lines when not on a terminal.
    """

    def __init__(
        self,
        console: Console,
        *,
        enabled: bool = True,
        interval: float = LOG_INTERVAL_SECONDS,
    ) -> None:
        self.console = console
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self.interval = interval
        self._rows: dict[str, _Row] = {}
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._stop_ticking = threading.Event()
        self._ticker: threading.Thread | None = None
        self.collector = _DltCollector(self)
        self.destination = ""

    # -- sessions ------------------------------------------------------------------------------

    @contextmanager
    def sync(self, pipeline: dlt.Pipeline) -> Iterator[None]:
        """Show the sync running inside the block: the source's resources and dlt's steps."""
        if not self.enabled:
            yield
            return
        destination = pipeline.destination
        self.destination = destination.destination_name if destination is not None else ""
        previous = pipeline.collector
        pipeline.collector = self.collector
        try:
            with listening(self), self._session():
                yield
        finally:
            pipeline.collector = previous

    @contextmanager
    def models(self) -> Iterator[None]:
        """Show the models being built inside the block."""
        if not self.enabled:
            yield
            return
        with self._session():
            self._begin("models", "models", "", "")
            if not self.live:
                log.info("models: building the reporting models")
            yield
            self._end("models", quiet=True)

    @contextmanager
    def _session(self) -> Iterator[None]:
        self._rows = {}
        if self.live:
            self._progress = Progress(
                SpinnerColumn(finished_text="[green]✓[/]"),
                TextColumn("[bold]{task.fields[phase]:<6}[/] {task.description}"),
                BarColumn(bar_width=30),
                TaskProgressColumn(),
                _CountColumn(),
                _RateColumn(),
                TimeRemainingColumn(elapsed_when_finished=True),
                console=self.console,
                redirect_stdout=False,
                refresh_per_second=8,
            )
            self._progress.start()
        else:
            self._stop_ticking.clear()
            self._ticker = threading.Thread(
                target=self._tick, name="voipstudio-progress", daemon=True
            )
            self._ticker.start()
        try:
            yield
        finally:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
            if self._ticker is not None:
                self._stop_ticking.set()
                self._ticker.join()
                self._ticker = None

    def _tick(self) -> None:
        while not self._stop_ticking.wait(self.interval):
            self.log_progress()

    def log_progress(self) -> None:
        """Log one line with every part still running (the periodic line)."""
        now = time.monotonic()
        with self._lock:
            running = [row.line(now) for row in self._rows.values() if row.ended is None]
        if running:
            log.info("progress: %s", "; ".join(running))

    # -- rows ----------------------------------------------------------------------------------

    def _begin(self, key: str, phase: str, label: str, unit: str, total: int | None = None) -> None:
        with self._lock:
            row = _Row(phase, label, unit, total)
            old = self._rows.get(key)
            self._rows[key] = row
            if self._progress is None:
                return
            if old is not None and old.task is not None:
                row.task = old.task
                self._progress.reset(
                    old.task, total=total, phase=phase, description=label, unit=unit
                )
            else:
                row.task = self._progress.add_task(label, total=total, phase=phase, unit=unit)

    def _advance(self, key: str, rows: int = 0, total: int | None = None) -> None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                return
            row.completed += rows
            if total is not None:
                row.total = total
            if self._progress is not None and row.task is not None:
                self._progress.update(
                    row.task,
                    total=row.total,
                    completed=min(row.completed, row.total)
                    if row.total is not None
                    else row.completed,
                )

    def _end(self, key: str, *, quiet: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            row = self._rows.get(key)
            if row is None or row.ended is not None:
                return
            row.ended = now
            if row.total is None or row.completed > row.total:
                row.total = row.completed
            if self._progress is not None and row.task is not None:
                # A total of 0 draws an empty bar: a finished part shows full.
                self._progress.update(
                    row.task, total=max(row.total, 1), completed=max(row.total, 1)
                )
                self._progress.stop_task(row.task)
            line = row.done_line(now)
        if not self.live and not quiet:
            log.info("%s", line)

    # -- what the source reports (pipelines.voipstudio.progress.Listener) ----------------------

    def planning(self, resource: str) -> None:
        """A resource counts its range (**plan**)."""
        label, unit = _label(resource)
        self._begin(resource, "plan", label, unit)

    def planned(self, resource: str, total: int) -> None:
        """A resource knows how much it reads (**read**)."""
        label, unit = _label(resource)
        with self._lock:
            known = resource in self._rows and self._rows[resource].phase == "plan"
        if not known:  # users and queues: no planning, the first page tells the total
            self._begin(resource, "read", label, unit, total)
            return
        with self._lock:
            row = self._rows[resource]
            row.phase, row.total = "read", total
            if self._progress is not None and row.task is not None:
                # reset() replaces every field: give them all again.
                self._progress.reset(row.task, total=total, phase="read", unit=row.unit)

    def page(self, resource: str, rows: int) -> None:
        """A page arrived."""
        self._advance(resource, rows)

    def finished(self, resource: str) -> None:
        """A resource read everything."""
        self._end(resource)

    # -- what dlt reports (through _DltCollector) ----------------------------------------------

    def load_started(self, step: str, unit: str) -> None:
        """dlt's normalize or load step started (**load**)."""
        self._begin("load", "load", self.destination, unit)

    def load_update(self, inc: int, total: int | None, inc_total: int | None) -> None:
        """dlt counted files (normalize) or jobs (load)."""
        with self._lock:
            row = self._rows.get("load")
            new_total = row.total if row is not None else None
        if total is not None:
            new_total = total
        if inc_total:
            new_total = (new_total or 0) + inc_total
        self._advance("load", inc, new_total)

    def load_stopped(self) -> None:
        """dlt's step ended."""
        with self._lock:
            row = self._rows.get("load")
            loading = row is not None and row.unit == "jobs"
        if loading:
            self._end("load")
