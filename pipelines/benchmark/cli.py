"""The benchmark's command line and plan.

One run measures, on the same data (see the issue "Benchmark: measure the sync against the
obvious alternative and the floor"):

1. this project's full sync into a fresh DuckDB;
2. dlt's ``rest_api`` source configured as its documentation suggests (the baseline);
3. the floor: plain httpx at the same concurrency, JSON decoded, bulk-inserted into DuckDB;
4. an incremental sync with nothing new, and one with 1% new rows (some late);
5. the SQL models rebuilt in full on the loaded data;
6. the full sync with the emulator's latency on, against the floor without concurrency;
7. what a schedule runs: ``voipstudio sync`` (models included) as a whole process, for a full
   sync, a sync with nothing new and one with 1% new CDRs, on two sizes of history (1M and 5M
   CDRs at the same calls a day), each against the same sync with ``--no-models``;

plus full syncs of a smaller and a larger dataset, to show that memory stays flat.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from pipelines.benchmark import report
from pipelines.benchmark.emulator import EmulatorError, EmulatorProcess
from pipelines.benchmark.measure import (
    PROJECT_ROOT,
    JobError,
    Run,
    child_environment,
    kill_running,
    run_job,
)
from pipelines.benchmark.results import Row, Status, new_rows

DEFAULT_OUTPUT = "docs/benchmarks.md"


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.benchmark",
        description="Benchmark the sync against dlt's rest_api source and a plain-httpx floor "
        "on emulated data; print the table and write it to docs/benchmarks.md.",
    )
    parser.add_argument("--rows", type=int, help="CDRs (default 500,000; --quick 20,000)")
    parser.add_argument("--runs", type=int, help="runs a measurement (default 3; --quick 1)")
    parser.add_argument(
        "--baseline-runs", type=int, default=1, help="runs of the slow rest_api baseline (1)"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="do not run rest_api")
    parser.add_argument(
        "--latency-runs", type=int, default=None, help="runs with latency (default --runs)"
    )
    parser.add_argument(
        "--scale-rows",
        default=None,
        help="smaller,larger data for the memory check (default rows/2,rows*2)",
    )
    parser.add_argument("--latency-ms", type=float, default=200.0, help="ms a request (200)")
    parser.add_argument(
        "--latency-per-row-ms", type=float, default=0.02, help="ms a row returned (0.02)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="requests at once (4)")
    parser.add_argument("--page-size", type=int, default=5000, help="CDRs a page (5000)")
    parser.add_argument(
        "--quick", action="store_true", help="a small, fast run: 20,000 CDRs, one run each"
    )
    parser.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        help=f"Markdown report, generated part replaced (default {DEFAULT_OUTPUT}); '' for none",
    )
    parser.add_argument("--json", dest="json_path", help="also write every run as JSON here")
    parser.add_argument("--workdir", help="folder for data and logs (default: a temporary one)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep data and logs")
    parser.add_argument(
        "--history-rows",
        default=None,
        help="CDRs of history of item 7, smaller,larger (default 1000000,5000000; --quick "
        "20000,60000)",
    )
    parser.add_argument(
        "--history-days",
        default=None,
        help="days those CDRs span (default 180,900: the same calls a day; --quick 30,90)",
    )
    parser.add_argument(
        "--history-runs", type=int, default=None, help="runs of item 7 (default --runs)"
    )
    parser.add_argument("--skip-history", action="store_true", help="leave item 7 out")
    parser.add_argument(
        "--history-only",
        choices=("smaller", "larger", "both"),
        help="run item 7 alone, on one size of history (or both); items 1-6 are skipped",
    )
    parser.add_argument(
        "--job-timeout", type=float, default=900.0, help="seconds before a run is killed (900)"
    )
    parser.add_argument(
        "--baseline-timeout",
        type=float,
        default=2400.0,
        help="seconds before a rest_api run is killed (2400)",
    )
    return parser


@dataclass
class Options:
    """The parsed command line, with defaults resolved."""

    rows: int
    runs: int
    baseline_runs: int
    latency_runs: int
    scale_rows: tuple[int, int]
    latency_ms: float
    latency_per_row_ms: float
    concurrency: int
    page_size: int
    output: Path | None
    json_path: Path | None
    workdir: Path | None
    keep_workdir: bool
    job_timeout: float
    baseline_timeout: float
    history_rows: tuple[int, int] = (1_000_000, 5_000_000)
    history_days: tuple[int, int] = (180, 900)
    history_runs: int = 3
    history_only: str | None = None
    delta_fraction: float = 0.01
    late_fraction: float = 0.2


def parse_options(argv: list[str]) -> Options:
    """Parse and check the command line (exits with usage on a bad value)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = 20_000 if args.quick else 500_000
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.rows < 1 or args.runs < 1 or args.baseline_runs < 0:
        parser.error("--rows and --runs must be at least 1, --baseline-runs at least 0")
    if not 1 <= args.concurrency <= 64 or not 1 <= args.page_size <= 5000:
        parser.error("--concurrency must be 1-64 and --page-size 1-5000")
    if args.scale_rows:
        try:
            small, large = (int(x) for x in args.scale_rows.split(","))
        except ValueError:
            parser.error("--scale-rows must be two numbers like 250000,1000000")
    else:
        small, large = max(1, args.rows // 2), args.rows * 2
    history_rows = _pair(parser, "--history-rows", args.history_rows) or (
        (20_000, 60_000) if args.quick else (1_000_000, 5_000_000)
    )
    history_days = _pair(parser, "--history-days", args.history_days) or (
        (30, 90) if args.quick else (180, 900)
    )
    history_runs = 0 if args.skip_history else (args.history_runs or args.runs)
    return Options(
        rows=args.rows,
        runs=args.runs,
        baseline_runs=0 if args.skip_baseline else args.baseline_runs,
        latency_runs=args.latency_runs if args.latency_runs is not None else args.runs,
        scale_rows=(small, large),
        latency_ms=args.latency_ms,
        latency_per_row_ms=args.latency_per_row_ms,
        concurrency=args.concurrency,
        page_size=args.page_size,
        output=Path(args.output) if args.output else None,
        json_path=Path(args.json_path) if args.json_path else None,
        workdir=Path(args.workdir) if args.workdir else None,
        keep_workdir=args.keep_workdir,
        job_timeout=args.job_timeout,
        baseline_timeout=args.baseline_timeout,
        history_rows=history_rows,
        history_days=history_days,
        history_runs=history_runs,
        history_only=args.history_only,
    )


def _pair(parser: argparse.ArgumentParser, flag: str, text: str | None) -> tuple[int, int] | None:
    """Two positive numbers like ``1000000,5000000`` (exits with usage otherwise)."""
    if text is None:
        return None
    try:
        first, second = (int(part) for part in text.split(","))
    except ValueError:
        parser.error(f"{flag} must be two numbers like 1000000,5000000")
    if first < 1 or second < 1:
        parser.error(f"{flag} must be positive")
    return first, second


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    """Runs the plan and fills the table."""

    def __init__(self, options: Options, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.rows = new_rows()
        self.env = child_environment(workdir, {})
        self.failures = 0
        self._counter = 0

    # -- running jobs --------------------------------------------------------------------------

    def _run_dir(self, key: str) -> Path:
        self._counter += 1
        return self.workdir / "runs" / f"{self._counter:03d}-{key}"

    def measure(
        self,
        key: str,
        target: str,
        args: dict[str, Any],
        *,
        server: EmulatorProcess | None,
        settings: dict[str, str] | None = None,
        timeout: float | None = None,
        run_dir: Path | None = None,
    ) -> Run | None:
        """One run of one job into row ``key`` (``server``: the emulator it reads, if any); a
        failure is recorded, not raised."""
        row = self.rows[key]
        if server is not None:
            row.data_rows = row.data_rows or server.rows
        if row.status == "failed":
            return None
        run_dir = run_dir or self._run_dir(key)
        env = dict(self.env, **(settings or {}))
        try:
            run = run_job(
                target,
                args,
                run_dir=run_dir,
                env=env,
                timeout=timeout or self.options.job_timeout,
                server_pid=server.pid if server is not None else None,
            )
        except JobError as exc:
            self.failures += 1
            row.status, row.note = "failed", str(exc).splitlines()[0]
            _log(f"  {row.label}: FAILED\n{exc}")
            return None
        row.runs.append(run)
        _log(
            f"  {row.label}: {run.seconds:.2f} s, {run.rows:,} CDRs, "
            f"{run.peak_rss_mb:.0f} MB peak (run {len(row.runs)})"
        )
        return run

    def sync_settings(self, server: EmulatorProcess, data_dir: Path) -> dict[str, str]:
        """Environment of this project's sync writing to ``data_dir``, as a user sets it."""
        start = date.fromisoformat(server.data_start()) - timedelta(days=1)
        return {
            "SOURCES__VOIPSTUDIO__BASE_URL": server.base_url,
            "SOURCES__VOIPSTUDIO__API_KEY": server.api_key,
            "SOURCES__VOIPSTUDIO__START_DATE": start.isoformat(),
            "SOURCES__VOIPSTUDIO__MAX_CONCURRENCY": str(self.options.concurrency),
            "SOURCES__VOIPSTUDIO__PAGE_SIZE": str(self.options.page_size),
            "SOURCES__VOIPSTUDIO__TIMEZONE": "UTC",
            "DESTINATION__DUCKDB__CREDENTIALS": str(data_dir / "calls.duckdb"),
            "DLT_DATA_DIR": str(data_dir / "dlt"),
        }

    def project_sync(self, key: str, server: EmulatorProcess, data_dir: Path) -> Run | None:
        """This project's sync into ``data_dir`` (fresh, or a copy of an earlier state)."""
        return self.measure(
            key,
            "jobs_dlt:project_sync",
            {},
            server=server,
            settings=self.sync_settings(server, data_dir),
        )

    def floor(self, key: str, server: EmulatorProcess, concurrency: int) -> Run | None:
        """The floor into a fresh DuckDB file."""
        run_dir = self._run_dir(key)
        run_dir.mkdir(parents=True)
        run = self.measure(
            key,
            "jobs_floor:floor",
            {
                "base_url": server.base_url,
                "api_key": server.api_key,
                "database": str(run_dir / "floor.duckdb"),
                "concurrency": concurrency,
                "page_size": self.options.page_size,
            },
            server=server,
            run_dir=run_dir,
        )
        _remove(run_dir / "floor.duckdb")
        return run

    def baseline(self, server: EmulatorProcess) -> Run | None:
        """dlt's rest_api source into a fresh DuckDB file."""
        run_dir = self._run_dir("full.baseline")
        run_dir.mkdir(parents=True)
        run = self.measure(
            "full.baseline",
            "jobs_dlt:rest_api_baseline",
            {
                "base_url": server.base_url,
                "api_key": server.api_key,
                "database": str(run_dir / "rest_api.duckdb"),
                "pipelines_dir": str(run_dir / "dlt"),
                "page_size": self.options.page_size,
            },
            server=server,
            run_dir=run_dir,
            timeout=self.options.baseline_timeout,
        )
        _remove(run_dir / "rest_api.duckdb", run_dir / "dlt")
        return run

    # -- the plan ------------------------------------------------------------------------------

    def run(self) -> None:
        """Everything, in an order that keeps the data the same where it must be."""
        options = self.options
        if options.history_only is not None:
            for key in self.rows:
                if not key.startswith("history."):
                    self._missing(key, "skipped", "--history-only")
            self._warm_up()
            self._history()
            return
        _log(f"emulator: generating {options.rows:,} CDRs")
        with EmulatorProcess(options.rows, self.workdir, self.env) as server:
            self._warm_up()
            base = self._full_syncs(server)
            self._latency(server)
            if base is not None:
                self._incremental(server, base)
            else:
                for key in ("incremental.first", "incremental.none", "incremental.delta"):
                    self._missing(key, "failed", "no full sync to start from", server.rows)
        models_data = self._scaling()
        self._models(models_data)
        self._history()

    def _warm_up(self) -> None:
        """Compile and cache every module once, so that no measured run pays for it."""
        run_dir = self._run_dir("warm-up")
        try:
            for target in ("jobs_dlt:warm_up", "jobs_floor:warm_up"):
                run_job(target, {}, run_dir=run_dir, env=self.env, timeout=300)
        except JobError as exc:
            _log(f"warm-up failed (measurements go on):\n{exc}")

    def _full_syncs(self, server: EmulatorProcess) -> Path | None:
        """Items 1-3, interleaved run by run so that they share the machine's conditions.
        Returns the data folder of the last successful project sync."""
        options = self.options
        served = server.cdr_count()
        base: Path | None = None
        for number in range(options.runs):
            _log(f"full syncs, run {number + 1}/{options.runs}")
            data_dir = self.workdir / "data" / f"full-{number}"
            run = self.project_sync("full.project", server, data_dir)
            base = _keep_latest(run, data_dir, base)
            self.floor("full.floor", server, options.concurrency)
            if number < options.baseline_runs:
                self.baseline(server)
        if options.baseline_runs == 0:
            self._missing("full.baseline", "skipped", "--skip-baseline", server.rows)
        for key in ("full.project", "full.floor", "full.baseline"):
            self._check_rows(key, served)
        return base

    def _latency(self, server: EmulatorProcess) -> None:
        """Item 6: latency on, the project against the floor with and without concurrency."""
        options = self.options
        if options.latency_runs < 1:
            for key in ("latency.project", "latency.floor_sequential", "latency.floor"):
                self._missing(key, "skipped", "--latency-runs 0", server.rows)
            return
        server.set_latency(options.latency_ms, options.latency_per_row_ms)
        try:
            for number in range(options.latency_runs):
                _log(f"latency, run {number + 1}/{options.latency_runs}")
                data_dir = self.workdir / "data" / f"latency-{number}"
                self.project_sync("latency.project", server, data_dir)
                _remove(data_dir)
                self.floor("latency.floor_sequential", server, 1)
                self.floor("latency.floor", server, options.concurrency)
        finally:
            server.set_latency(0.0, 0.0)
        note = f"{options.latency_ms:g} ms + {options.latency_per_row_ms:g} ms a row"
        self.rows["latency.project"].note = note

    def _incremental(self, server: EmulatorProcess, full: Path) -> None:
        """Item 4, from copies of a full sync's database and state.

        The first incremental sync after a full sync is measured on its own: its merge is the
        first to delete rows from the table, and DuckDB then rewrites the row groups it touched
        once (about 0.7 s at 500,000 CDRs). Syncs that follow, every few minutes, start from
        where such a sync left the table.
        """
        options = self.options
        base: Path | None = None
        for number in range(options.runs):
            _log(f"incremental, first after the full sync, run {number + 1}/{options.runs}")
            data_dir = self.workdir / "data" / f"first-{number}"
            shutil.copytree(full, data_dir)
            run = self.project_sync("incremental.first", server, data_dir)
            base = _keep_latest(run, data_dir, base)
        self.rows["incremental.first"].note = "DuckDB rewrites what the first merge touched"
        if base is None:
            for key in ("incremental.none", "incremental.delta"):
                self._missing(key, "failed", "the first incremental sync failed", server.rows)
            _remove(full)
            return
        for number in range(options.runs):
            _log(f"incremental, nothing new, run {number + 1}/{options.runs}")
            data_dir = self.workdir / "data" / f"none-{number}"
            shutil.copytree(base, data_dir)
            self.project_sync("incremental.none", server, data_dir)
            _remove(data_dir)
        # Chained: each run starts where the previous one ended, with 1% new rows since.
        data_dir = self.workdir / "data" / "delta"
        shutil.copytree(base, data_dir)
        new = max(1, round(options.rows * options.delta_fraction))
        for number in range(options.runs):
            _log(f"incremental, {new:,} new CDRs, run {number + 1}/{options.runs}")
            server.add_cdrs(new, options.late_fraction)
            self.project_sync("incremental.delta", server, data_dir)
        self.rows[
            "incremental.delta"
        ].note = f"{new:,} new, {options.late_fraction:.0%} of them late, plus the lag re-read"
        self.rows["incremental.none"].note = "re-reads the lag window"
        _remove(data_dir, base, full)

    def _scaling(self) -> Path | None:
        """Full syncs of smaller and larger data; returns the larger's data folder."""
        kept: Path | None = None
        for key, rows in zip(("scale.small", "scale.large"), self.options.scale_rows, strict=True):
            self.rows[key].label = f"full sync, {rows:,} CDRs"
            _log(f"emulator: generating {rows:,} CDRs")
            try:
                with EmulatorProcess(rows, self.workdir, self.env) as server:
                    for number in range(self.options.runs):
                        data_dir = self.workdir / "data" / f"{key}-{number}"
                        run = self.project_sync(key, server, data_dir)
                        if key == "scale.large":  # the models run on it
                            kept = _keep_latest(run, data_dir, kept)
                        else:
                            _remove(data_dir)
                    self._check_rows(key, server.cdr_count())
            except EmulatorError as exc:
                self.failures += 1
                self._missing(key, "failed", str(exc).splitlines()[0], rows)
        return kept

    def _models(self, data_dir: Path | None) -> None:
        """Item 5: the models on the larger dataset (no emulator needed, only DuckDB)."""
        row = self.rows["models"]
        if data_dir is None:
            self._missing("models", "failed", "no loaded data to build them on")
            return
        rows = self.options.scale_rows[1]
        row.label = f"SQL models rebuilt in full (`models --full`) on {rows:,} CDRs"
        settings = {
            "DESTINATION__DUCKDB__CREDENTIALS": str(data_dir / "calls.duckdb"),
            "DLT_DATA_DIR": str(data_dir / "dlt"),
        }
        _log(f"models on {rows:,} CDRs")
        for _ in range(self.options.runs):
            run = self.measure(
                "models", "jobs_dlt:build_models", {}, server=None, settings=settings
            )
            if run is None:
                break
            row.data_rows = run.rows
        _remove(data_dir)

    def cli_sync(
        self, key: str, server: EmulatorProcess, data_dir: Path, *, models: bool
    ) -> Run | None:
        """``voipstudio sync`` (or with ``--no-models``) into ``data_dir``, a whole process."""
        return self.measure(
            key,
            "jobs_dlt:cli_sync",
            {"models": models},
            server=server,
            settings=self.sync_settings(server, data_dir),
        )

    def _history(self) -> None:
        """Item 7: the scheduled sync with its models, on two sizes of history.

        For each size, on an emulator of its own: full syncs with and without the models
        (alternating, each into a fresh folder); then, from copies of a full sync with models
        that one sync with nothing new has settled (the first merge into a fresh table rewrites
        what it touched, once), syncs with nothing new with and without models, alternating;
        then two chains from that copy, each run adding 1% new CDRs (some late) that both
        chains read: one with models, one without.
        """
        options = self.options
        sizes = zip(("smaller", "larger"), options.history_rows, options.history_days, strict=True)
        for size, rows, days in sizes:
            keys = [key for key in self.rows if key.startswith(f"history.{size}.")]
            for key in keys:
                self.rows[key].label = self.rows[key].label.replace(
                    f"{size} history", f"{rows:,} CDRs over {days} days"
                )
            if options.history_runs < 1:
                for key in keys:
                    self._missing(key, "skipped", "--skip-history", rows)
                continue
            if options.history_only not in (None, "both", size):
                for key in keys:
                    self._missing(key, "skipped", f"--history-only {options.history_only}", rows)
                continue
            _log(f"emulator: generating {rows:,} CDRs over {days} days")
            try:
                with EmulatorProcess(rows, self.workdir, self.env, days=days) as server:
                    self._history_runs(size, server)
            except EmulatorError as exc:
                self.failures += 1
                for key in keys:
                    self._missing(key, "failed", str(exc).splitlines()[0], rows)

    def _history_runs(self, size: str, server: EmulatorProcess) -> None:
        options = self.options
        runs = options.history_runs
        key = f"history.{size}"
        served = server.cdr_count()
        base: Path | None = None
        for number in range(runs):
            _log(f"{key}: full syncs, run {number + 1}/{runs}")
            data_dir = self.workdir / "data" / f"{key}-full-{number}"
            run = self.cli_sync(f"{key}.full", server, data_dir, models=True)
            base = _keep_latest(run, data_dir, base)
            raw_dir = self.workdir / "data" / f"{key}-raw-{number}"
            self.cli_sync(f"{key}.full_raw", server, raw_dir, models=False)
            _remove(raw_dir)
        for kind in ("full", "full_raw"):
            self._check_rows(f"{key}.{kind}", served)
        rest = [f"{key}.{kind}" for kind in ("none", "none_raw", "delta", "delta_raw")]
        if base is None:
            for name in rest:
                self._missing(name, "failed", "no full sync to start from", server.rows)
            return
        # Settle the copy: the first sync after a full one rewrites what its merge touched.
        try:
            run_job(
                "jobs_dlt:cli_sync",
                {"models": True},
                run_dir=self._run_dir(f"{key}.settle"),
                env=dict(self.env, **self.sync_settings(server, base)),
                timeout=options.job_timeout,
            )
        except JobError as exc:
            _log(f"  settling sync failed (measurements go on):\n{exc}")
        for number in range(runs):
            _log(f"{key}: nothing new, run {number + 1}/{runs}")
            for kind, models in (("none", True), ("none_raw", False)):
                data_dir = self.workdir / "data" / f"{key}-{kind}"
                shutil.copytree(base, data_dir)
                self.cli_sync(f"{key}.{kind}", server, data_dir, models=models)
                _remove(data_dir)
        chains = {kind: self.workdir / "data" / f"{key}-{kind}" for kind in ("delta", "delta_raw")}
        for data_dir in chains.values():
            shutil.copytree(base, data_dir)
        _remove(base)
        new = max(1, round(server.rows * options.delta_fraction))
        for number in range(runs):
            _log(f"{key}: {new:,} new CDRs, run {number + 1}/{runs}")
            server.add_cdrs(new, options.late_fraction)
            for kind, data_dir in chains.items():
                self.cli_sync(f"{key}.{kind}", server, data_dir, models=kind == "delta")
        for data_dir in chains.values():
            _remove(data_dir)
        for kind in ("delta", "delta_raw"):
            self.rows[
                f"{key}.{kind}"
            ].note = f"{new:,} new, {options.late_fraction:.0%} of them late, plus the lag re-read"

    def _missing(self, key: str, status: Status, note: str, data_rows: int = 0) -> None:
        row = self.rows[key]
        if not row.runs:
            row.status, row.note, row.data_rows = status, note, data_rows or row.data_rows

    def _check_rows(self, key: str, served: int) -> None:
        """A full sync must have loaded every CDR the emulator served, each once."""
        row = self.rows[key]
        wrong = [
            r.detail.get("table_rows") for r in row.runs if r.detail.get("table_rows") != served
        ]
        if wrong:
            self.failures += 1
            row.note = f"rows in table {wrong} != {served:,} served"
            _log(f"  {row.label}: {row.note}")


def _keep_latest(run: Run | None, data_dir: Path, kept: Path | None) -> Path | None:
    """The data folder to keep after a run into ``data_dir``: ``data_dir`` when the run
    succeeded (the one kept before is removed), else ``kept`` (``data_dir`` is removed)."""
    if run is None:
        _remove(data_dir)
        return kept
    if kept is not None:
        _remove(kept)
    return data_dir


def _remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Unwind through every `finally`, which stops the emulators and kills running children.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every measurement succeeded, 1 otherwise."""
    arguments = sys.argv[1:] if argv is None else argv
    options = parse_options(arguments)
    command = shlex.join(["python", "-m", "pipelines.benchmark", *arguments])
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="voipstudio-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    previous: dict[signal.Signals, Callable[..., Any] | int | None] = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        previous[signum] = signal.signal(signum, _on_signal)
    started, clock = datetime.now(UTC), time.perf_counter()
    load_before = os.getloadavg()[0]
    bench = Bench(options, workdir)
    try:
        bench.run()
    finally:
        kill_running()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if not options.keep_workdir and options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    setup = report.Setup(
        command=command,
        rows=options.rows,
        runs=options.runs,
        baseline_runs=options.baseline_runs,
        latency_runs=options.latency_runs,
        concurrency=options.concurrency,
        page_size=options.page_size,
        latency_ms=options.latency_ms,
        latency_per_row_ms=options.latency_per_row_ms,
        delta_fraction=options.delta_fraction,
        late_fraction=options.late_fraction,
        scale_rows=options.scale_rows,
        started=started,
        history_rows=options.history_rows,
        history_days=options.history_days,
        history_runs=options.history_runs,
        seconds=time.perf_counter() - clock,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )
    generated = report.section(bench.rows, setup)
    print(generated.split("\n", 1)[1].rsplit("\n", 1)[0])
    if options.output is not None:
        output = options.output if options.output.is_absolute() else PROJECT_ROOT / options.output
        report.write(output, generated)
        _log(f"report written to {output}")
    if options.json_path is not None:
        payload = {
            "setup": {k: str(v) for k, v in vars(setup).items()},
            "rows": {key: row.as_dict() for key, row in bench.rows.items()},
            "targets": [vars(t) for t in report.targets(bench.rows, setup)],
        }
        options.json_path.write_text(json.dumps(payload, indent=2, default=str))
    return 1 if bench.failures else 0


__all__ = ["Options", "Row", "main", "parse_options"]
