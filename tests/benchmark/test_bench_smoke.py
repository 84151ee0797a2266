"""A small run of the benchmark (``python -m pipelines.benchmark``), so that it cannot rot.

It checks that every line of the table is produced with sane numbers, never how fast anything
is: speed targets are benchmark figures (docs/benchmarks.md), not test assertions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipelines.benchmark.report import BEGIN, END
from pipelines.benchmark.results import ROW_KEYS

ROOT = Path(__file__).resolve().parents[2]
ROWS = 3000
SMALL, LARGE = 1500, 6000
FULL_SYNCS = {
    "full.project": ROWS,
    "full.baseline": ROWS,
    "full.floor": ROWS,
    "latency.project": ROWS,
    "latency.floor_sequential": ROWS,
    "latency.floor": ROWS,
    "scale.small": SMALL,
    "scale.large": LARGE,
}


def test_small_benchmark_produces_every_row(tmp_path: Path) -> None:
    output, results = tmp_path / "benchmarks.md", tmp_path / "results.json"
    command = [
        sys.executable,
        "-m",
        "pipelines.benchmark",
        "--rows", str(ROWS),
        "--runs", "1",
        "--baseline-runs", "1",
        "--page-size", "500",
        "--scale-rows", f"{SMALL},{LARGE}",
        "--latency-ms", "10",
        "--job-timeout", "240",
        "--baseline-timeout", "240",
        "--output", str(output),
        "--json", str(results),
        "--workdir", str(tmp_path / "work"),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads(results.read_text())
    rows = report["rows"]
    assert list(rows) == ROW_KEYS
    for key, row in rows.items():
        assert row["status"] == "ok", (key, row["note"])
        assert len(row["runs"]) == 1, key
        median = row["median"]
        assert median["seconds"] > 0, key
        assert median["process_seconds"] >= median["seconds"], key
        assert median["rows"] > 0 and median["rows_per_second"] > 0, key
        assert 20 < median["peak_rss_mb"] < 16_000, key
        assert median["cpu_seconds"] > 0, key
    for key, served in FULL_SYNCS.items():
        row = rows[key]
        assert row["data_rows"] == served, key
        assert row["median"]["rows"] == served, key
        assert row["runs"][0]["detail"]["table_rows"] == served, key
    # Nothing new: only the lag window is read again, nothing is added.
    assert rows["incremental.none"]["runs"][0]["detail"]["new_rows"] == 0
    assert rows["incremental.delta"]["runs"][0]["detail"]["new_rows"] == ROWS // 100
    assert {target["name"] for target in report["targets"]} >= {
        "full sync vs rest_api",
        "full sync vs floor",
        "peak memory of a full sync",
        "sync with nothing new",
    }

    text = output.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    for key in ROW_KEYS:
        assert rows[key]["label"] in text, key
    assert "### Targets" in text and "python -m pipelines.benchmark" in text
    # The same table goes to standard output.
    assert "| full sync, this project |" in done.stdout
