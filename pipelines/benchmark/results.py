"""What a benchmark run measured: one :class:`Row` per line of the table, each with its runs."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pipelines.benchmark.measure import Run

Status = Literal["ok", "failed", "skipped"]

# The lines of the table, in order: key, the item number, label. Item 7 (the scheduled
# sync with its models, as whole processes, for two sizes of history) has a table of its own.
ROWS: list[tuple[str, str, str]] = [
    ("full.project", "1", "full sync, this project"),
    ("full.baseline", "2", "full sync, dlt rest_api source (baseline)"),
    ("full.floor", "3", "full sync, floor: httpx + DuckDB, no dlt"),
    ("incremental.first", "4", "incremental sync, first after the full sync"),
    ("incremental.none", "4", "incremental sync, nothing new"),
    ("incremental.delta", "4", "incremental sync, 1% new rows"),
    ("models", "5", "SQL models"),
    ("latency.project", "6", "full sync with latency, this project"),
    ("latency.floor_sequential", "6", "floor with latency, no concurrency"),
    ("latency.floor", "6", "floor with latency, same concurrency"),
    ("scale.small", "1", "full sync, smaller data"),
    ("scale.large", "1", "full sync, larger data"),
    *(
        (f"history.{size}.{kind}", "7", f"{label}, {size} history")
        for size in ("smaller", "larger")
        for kind, label in (
            ("full", "`voipstudio sync` with models, full sync"),
            ("full_raw", "`voipstudio sync --no-models`, full sync"),
            ("none", "`voipstudio sync` with models, nothing new"),
            ("none_raw", "`voipstudio sync --no-models`, nothing new"),
            ("delta", "`voipstudio sync` with models, 1% new"),
            ("delta_raw", "`voipstudio sync --no-models`, 1% new"),
        )
    ),
]
ROW_KEYS = [key for key, _, _ in ROWS]


@dataclass
class Row:
    """One measurement of the table.

    Attributes:
        key: stable name (see ``ROWS``).
        item: the item of the issue it answers.
        label: what is measured, as printed.
        data_rows: CDRs the emulator served for it.
        runs: the runs that succeeded.
        status: ``ok``, or why there is no figure.
        note: the reason of a non-ok status, or a remark.
    """

    key: str
    item: str
    label: str
    data_rows: int = 0
    runs: list[Run] = field(default_factory=list)
    status: Status = "ok"
    note: str = ""

    @property
    def measured(self) -> bool:
        """It has at least one successful run."""
        return self.status == "ok" and bool(self.runs)

    def median(self, name: str) -> float:
        """The median of a :class:`Run` attribute over the runs."""
        return float(statistics.median(float(getattr(run, name)) for run in self.runs))

    def median_detail(self, name: str) -> float | None:
        """The median of a numeric detail over the runs that report it."""
        values = [run.detail[name] for run in self.runs if isinstance(run.detail.get(name), int)]
        return float(statistics.median(values)) if values else None

    @property
    def seconds(self) -> float:
        """Median wall time of the job."""
        return self.median("seconds")

    @property
    def rows_per_second(self) -> float:
        """Median CDRs read divided by the median wall time."""
        seconds = self.seconds
        return self.median("rows") / seconds if seconds > 0 else 0.0

    @property
    def peak_rss_mb(self) -> float:
        """Median peak resident memory of the process."""
        return self.median("peak_rss_mb")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the medians."""
        data = asdict(self)
        if self.measured:
            data["median"] = {
                "seconds": self.seconds,
                "rows": self.median("rows"),
                "rows_per_second": self.rows_per_second,
                "peak_rss_mb": self.peak_rss_mb,
                "cpu_seconds": self.median("cpu_seconds"),
                "process_seconds": self.median("process_seconds"),
                "server_cpu_seconds": self.median("server_cpu_seconds"),
            }
        return data


def new_rows() -> dict[str, Row]:
    """An empty table, every line present (a line that is never measured says why)."""
    return {key: Row(key, item, label) for key, item, label in ROWS}
