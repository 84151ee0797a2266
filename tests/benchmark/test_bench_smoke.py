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
HISTORY = (3000, 6000)
FULL_SYNCS = {
    "full.project": ROWS,
    "full.baseline": ROWS,
    "full.floor": ROWS,
    "latency.project": ROWS,
    "latency.floor_sequential": ROWS,
    "latency.floor": ROWS,
    "scale.small": SMALL,
    "scale.large": LARGE,
    "history.smaller.full": HISTORY[0],
    "history.smaller.full_raw": HISTORY[0],
    "history.larger.full": HISTORY[1],
    "history.larger.full_raw": HISTORY[1],
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
        "--history-rows", f"{HISTORY[0]},{HISTORY[1]}",
        "--history-days", "10,20",
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
    # The scheduled sync with its models: the models built (in full the first time, then
    # only what changed), or not at all with --no-models.
    for size, served in zip(("smaller", "larger"), HISTORY, strict=True):
        detail = {
            kind: rows[f"history.{size}.{kind}"]["runs"][0]["detail"]
            for kind in ("full", "full_raw", "none", "none_raw", "delta", "delta_raw")
        }
        assert detail["full"]["models_full"] >= 12 and detail["full"]["models_incremental"] == 0
        assert detail["none"]["new_rows"] == 0 and detail["none"]["models_full"] == 0
        assert detail["delta"]["new_rows"] == detail["delta_raw"]["new_rows"] == served // 100
        assert detail["delta"]["models_incremental"] > 0 and detail["delta"]["models_full"] <= 1
        assert detail["delta"]["memory_limit"]
        assert "models_seconds" not in detail["none_raw"]
        for kind in ("full", "none", "delta"):
            assert detail[kind]["models_seconds"] > 0, (size, kind)
    assert {target["name"] for target in report["targets"]} >= {
        "full sync vs rest_api",
        "full sync vs floor",
        "peak memory of a full sync",
        "sync with nothing new",
        f"sync with nothing new, with models, {HISTORY[1]:,} CDRs",
        f"sync of 1% new CDRs, with models, {HISTORY[1]:,} CDRs",
        "peak RSS of `voipstudio sync` with models (full, nothing new, 1%)",
    }

    text = output.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    for key in ROW_KEYS:
        assert rows[key]["label"] in text, key
    assert "### Targets" in text and "python -m pipelines.benchmark" in text
    # The same table goes to standard output.
    assert "| full sync, this project |" in done.stdout
