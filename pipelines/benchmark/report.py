"""The benchmark's report: the table, the targets of the issue, the machine, the Markdown file.

``docs/benchmarks.md`` keeps hand-written analysis around the generated part: only the text
between the two ``benchmark:results`` markers is replaced by a new run.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from pipelines.benchmark.results import Row

BEGIN = "<!-- benchmark:results:begin -->"
END = "<!-- benchmark:results:end -->"


@dataclass
class Target:
    """A target of the issue and how the run did against it (``met`` None: not measured)."""

    name: str
    goal: str
    measured: str
    met: bool | None


@dataclass
class Setup:
    """How the run was made, for the report."""

    command: str
    rows: int
    runs: int
    baseline_runs: int
    latency_runs: int
    concurrency: int
    page_size: int
    latency_ms: float
    latency_per_row_ms: float
    delta_fraction: float
    late_fraction: float
    scale_rows: tuple[int, int]
    started: datetime
    history_rows: tuple[int, int] = (0, 0)
    history_days: tuple[int, int] = (0, 0)
    history_runs: int = 0
    seconds: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0


# -- machine -----------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    """One line describing the machine and the software measured."""
    packages = ", ".join(
        f"{name} {_version(name)}" for name in ("dlt", "duckdb", "pyarrow", "httpx", "orjson")
    )
    return (
        f"{_cpu_model()}, {os.cpu_count()} logical CPUs, {_memory_gib():.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}; "
        f"{packages}"
    )


# -- numbers -----------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _ratio(project: Row, other: Row) -> str:
    if not (project.measured and other.measured) or other.seconds <= 0:
        return "—"
    ratio = project.seconds / other.seconds
    if ratio < 1:
        return f"{ratio:.3f} ({1 / ratio:.1f}x faster)"
    return f"{ratio:.2f}"


# Which rows the ratio columns compare a project row with.
_COMPARED = {
    "full.project": ("full.baseline", "full.floor"),
    "latency.project": (None, "latency.floor_sequential"),
}


def table(rows: dict[str, Row]) -> str:
    """The main table (Markdown)."""
    lines = [
        "| # | measurement | CDRs served | CDRs read | wall s (median) | rows/s | "
        "peak RSS MB (median) | ÷ rest_api | ÷ floor | runs |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows.values():
        if row.key.startswith(HISTORY):
            continue
        served = _count(row.data_rows) if row.data_rows else "—"
        if not row.measured:
            text: str = "FAILED" if row.status == "failed" else row.status
            if row.note:
                text += f": {row.note}"
            lines.append(
                f"| {row.item} | {row.label} | {served} | — | {text} | — | — | — | — | 0 |"
            )
            continue
        baseline_key, floor_key = _COMPARED.get(row.key, (None, None))
        versus_baseline = _ratio(row, rows[baseline_key]) if baseline_key else "—"
        versus_floor = _ratio(row, rows[floor_key]) if floor_key else "—"
        label = row.label + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {row.item} | {label} | {served} | {_count(row.median('rows'))} | "
            f"{_seconds(row.seconds)} | {_count(row.rows_per_second)} | "
            f"{row.peak_rss_mb:.0f} | {versus_baseline} | {versus_floor} | {len(row.runs)} |"
        )
    return "\n".join(lines)


def details(rows: dict[str, Row]) -> str:
    """Where the time went (Markdown): process wall time, CPU, the API server's CPU, dlt steps."""
    lines = [
        "| measurement | process wall s (with interpreter start and imports) | CPU s | "
        "API server CPU s | dlt extract / normalize / load s | rows in table |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for row in rows.values():
        if not row.measured or row.key.startswith(HISTORY):
            continue
        last_steps = row.runs[-1].detail.get("steps", {})
        steps = [last_steps.get(s) for s in ("extract", "normalize", "load")]
        step_text = " / ".join(f"{s:.2f}" for s in steps) if all(steps) else "—"
        if len(row.runs) > 1 and all(steps):
            step_text += " (last run)"
        table_rows = row.median_detail("table_rows")
        lines.append(
            f"| {row.label} | {_seconds(row.median('process_seconds'))} | "
            f"{row.median('cpu_seconds'):.2f} | {row.median('server_cpu_seconds'):.2f} | "
            f"{step_text} | {_count(table_rows) if table_rows is not None else '—'} |"
        )
    return "\n".join(lines)


HISTORY = "history."
HISTORY_SIZES = ("smaller", "larger")
HISTORY_KINDS = ("full", "full_raw", "none", "none_raw", "delta", "delta_raw")


def history_table(rows: dict[str, Row]) -> str:
    """Item 7 (Markdown): whole processes of ``voipstudio sync``, with and without models."""
    lines = [
        "| measurement | CDRs read | process wall s (median) | models s (median) | CPU s | "
        "peak RSS MB (median) | runs |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for size in HISTORY_SIZES:
        for kind in HISTORY_KINDS:
            row = rows[f"{HISTORY}{size}.{kind}"]
            if not row.measured:
                text: str = "FAILED" if row.status == "failed" else row.status
                if row.note:
                    text += f": {row.note}"
                lines.append(f"| {row.label} | — | {text} | — | — | — | 0 |")
                continue
            models = [r.detail.get("models_seconds") for r in row.runs]
            models_text = (
                f"{statistics.median(float(m) for m in models if m is not None):.2f}"
                if any(m is not None for m in models)
                else "—"
            )
            label = row.label + (f" ({row.note})" if row.note else "")
            lines.append(
                f"| {label} | {_count(row.median('rows'))} | "
                f"{_seconds(row.median('process_seconds'))} | {models_text} | "
                f"{row.median('cpu_seconds'):.2f} | {row.peak_rss_mb:.0f} | {len(row.runs)} |"
            )
    return "\n".join(lines)


def history_targets(rows: dict[str, Row], setup: Setup) -> list[Target]:
    """Item 7's targets: the models' share of a scheduled sync, and its memory."""
    result: list[Target] = []
    peaks: dict[str, float] = {}
    for size, count in zip(HISTORY_SIZES, setup.history_rows, strict=True):

        def row(kind: str, size: str = size) -> Row:
            return rows[f"{HISTORY}{size}.{kind}"]

        where = f"{_count(count)} CDRs"
        none, none_raw = row("none"), row("none_raw")
        if none.measured and none_raw.measured:
            ratio = none.median("process_seconds") / none_raw.median("process_seconds")
            result.append(
                Target(
                    f"sync with nothing new, with models, {where}",
                    "≤ 1.5x the same sync without models",
                    f"{ratio:.2f}x ({none.median('process_seconds'):.2f} s vs "
                    f"{none_raw.median('process_seconds'):.2f} s)",
                    ratio <= 1.5,
                )
            )
        delta, full = row("delta"), row("full")
        if delta.measured and full.measured:
            share = delta.median("process_seconds") / full.median("process_seconds")
            result.append(
                Target(
                    f"sync of 1% new CDRs, with models, {where}",
                    "< 0.1x a full sync with models",
                    f"{share:.3f}x ({delta.median('process_seconds'):.2f} s vs "
                    f"{full.median('process_seconds'):.2f} s)",
                    share < 0.1,
                )
            )
        measured = [row(kind) for kind in ("full", "none", "delta") if row(kind).measured]
        if measured:
            peaks[where] = max(r.peak_rss_mb for r in measured)
    if peaks:
        text = ", ".join(f"{where}: {peak:.0f} MB" for where, peak in peaks.items())
        result.append(
            Target(
                "peak RSS of `voipstudio sync` with models (full, nothing new, 1%)",
                "< 600 MB",
                text,
                max(peaks.values()) < 600,
            )
        )
    if len(peaks) == 2:
        small, large = peaks.values()
        growth = large / small - 1
        result.append(
            Target(
                "its memory flat as history grows",
                "within 20%",
                f"{growth:+.0%}",
                abs(growth) <= 0.20,
            )
        )
    return result


def targets(rows: dict[str, Row], setup: Setup) -> list[Target]:
    """The issue's targets, judged on this run."""
    full, baseline, floor = rows["full.project"], rows["full.baseline"], rows["full.floor"]
    small, large = rows["scale.small"], rows["scale.large"]
    first, none = rows["incremental.first"], rows["incremental.none"]
    delta = rows["incremental.delta"]
    latency, sequential = rows["latency.project"], rows["latency.floor_sequential"]
    concurrent, models = rows["latency.floor"], rows["models"]
    result: list[Target] = []

    if full.measured and baseline.measured:
        speedup = baseline.seconds / full.seconds
        result.append(
            Target("full sync vs rest_api", "≥ 20x faster", f"{speedup:.1f}x faster", speedup >= 20)
        )
    else:
        result.append(Target("full sync vs rest_api", "≥ 20x faster", "not measured", None))
    if full.measured and floor.measured:
        ratio = full.seconds / floor.seconds
        result.append(
            Target(
                "full sync vs floor", "≤ 1.2x the floor", f"{ratio:.2f}x the floor", ratio <= 1.2
            )
        )
    full_syncs = [r for r in (full, small, large) if r.measured]
    if full_syncs:
        worst = max(full_syncs, key=lambda r: r.peak_rss_mb)
        measured = ", ".join(f"{_count(r.data_rows)}: {r.peak_rss_mb:.0f} MB" for r in full_syncs)
        result.append(
            Target("peak memory of a full sync", "< 600 MB", measured, worst.peak_rss_mb < 600)
        )
    if small.measured and large.measured:
        growth = large.peak_rss_mb / small.peak_rss_mb - 1
        result.append(
            Target(
                f"memory flat as data grows ({_count(small.data_rows)} → "
                f"{_count(large.data_rows)})",
                "within 20%",
                f"{growth:+.0%}",
                abs(growth) <= 0.20,
            )
        )
    if none.measured:
        measured = (
            f"{none.seconds:.2f} s (process with start-up: {none.median('process_seconds'):.2f} s)"
        )
        if first.measured:
            measured += f"; the first after a full sync {first.seconds:.2f} s"
        result.append(Target("sync with nothing new", "< 0.5 s", measured, none.seconds < 0.5))
    if delta.measured and full.measured:
        share = delta.seconds / full.seconds
        result.append(
            Target(
                f"sync of {setup.delta_fraction:.0%} new rows",
                "< 1/10 of a full sync",
                f"{share:.2f} of a full sync ({delta.seconds:.2f} s)",
                share < 0.1,
            )
        )
    if latency.measured and sequential.measured and concurrent.measured:
        speedup = sequential.seconds / latency.seconds
        ratio = latency.seconds / concurrent.seconds
        text = f"{ratio:.2f}x the concurrent floor; {speedup:.1f}x faster than the sequential floor"
        result.append(
            Target(
                "with latency, concurrency shows",
                "≤ 1.1x the floor at the same concurrency",
                text,
                ratio <= 1.1,
            )
        )
    if models.measured:
        result.append(
            Target(
                f"models rebuilt in full on {_count(models.data_rows)} CDRs",
                "seconds, not minutes (< 60 s)",
                f"{models.seconds:.2f} s",
                models.seconds < 60,
            )
        )
    else:
        result.append(Target("SQL models", "seconds, not minutes", models.note or "—", None))
    result.extend(history_targets(rows, setup))
    return result


def targets_table(items: list[Target]) -> str:
    """The targets (Markdown)."""
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    for item in items:
        met = "—" if item.met is None else ("yes" if item.met else "**no**")
        lines.append(f"| {item.name} | {item.goal} | {item.measured} | {met} |")
    return "\n".join(lines)


def section(rows: dict[str, Row], setup: Setup) -> str:
    """The generated part of ``docs/benchmarks.md``."""
    when = setup.started.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    per_page = setup.latency_ms + setup.latency_per_row_ms * setup.page_size
    return f"""{BEGIN}
## Results

Generated by the benchmark; do not edit by hand (the next run replaces this part).

- **When**: {when}, {setup.seconds / 60:.1f} minutes; load average {setup.load_before:.2f} at
  the start, {setup.load_after:.2f} at the end.
- **Machine**: {machine()}.
- **Command**: `{setup.command}`.
- **Data**: the emulator's synthetic company, {_count(setup.rows)} CDRs over 30 days ending
  when it starts, served on loopback by a process of its own; {setup.page_size} CDRs a page,
  concurrency {setup.concurrency} for this project and for the concurrent floor.
- **Runs**: {setup.runs} a measurement, medians quoted; the `rest_api` baseline
  {setup.baseline_runs} (it takes minutes), latency {setup.latency_runs}. Each run is a fresh
  child process; "wall s" is the job alone, after the interpreter started and imported its
  modules (see the process times below); peak RSS is the child's `ru_maxrss`.
- **Incremental**: the first sync after a full sync starts from a copy of the full sync's
  database and state; the others from a copy of where such a first sync left them (a sync
  run every few minutes). The 1% delta adds {setup.delta_fraction:.0%} of the data as new
  CDRs before each run ({setup.late_fraction:.0%} of them late, i.e. started hours ago),
  runs chained. Every incremental sync also reads the last 6 hours again (the lag).
- **Latency**: {setup.latency_ms:g} ms a request plus {setup.latency_per_row_ms:g} ms a row
  ({per_page:g} ms a full page).
- **Memory scaling and models**: full syncs of {_count(setup.scale_rows[0])} and
  {_count(setup.scale_rows[1])} CDRs (emulators of their own); the models run on the larger.

{table(rows)}

### Targets

{targets_table(targets(rows, setup))}

### Where the time went

{details(rows)}

### A scheduled sync with its models (item 7)

What a schedule runs, as a whole process (interpreter start, imports, sync, models): on
{_count(setup.history_rows[0])} CDRs over {setup.history_days[0]} days and on
{_count(setup.history_rows[1])} over {setup.history_days[1]} days (the same calls a day, more
history), each against the same sync with `--no-models`; {setup.history_runs} runs each, medians.
The syncs with nothing new start from copies of a full sync with models (settled by one sync);
the 1% runs are two chains from such a copy, each run reading the same new CDRs.

{history_table(rows)}
{END}"""


def write(path: Path, generated: str) -> None:
    """Replace the generated part of ``path`` (or create the file around it)."""
    if path.exists():
        text = path.read_text()
        pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
        if pattern.search(text):
            path.write_text(pattern.sub(lambda _: generated, text, count=1))
            return
        path.write_text(text.rstrip() + "\n\n" + generated + "\n")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Benchmarks\n\n"
        "`make bench` (`python -m pipelines.benchmark`) measures the sync against dlt's "
        "`rest_api` source and against the plainest code that does the same job.\n\n"
        f"{generated}\n"
    )
