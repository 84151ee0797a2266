"""``voipstudio models [--test]`` and the models run after ``voipstudio sync``, as a scheduler
runs them: exit codes, one-line errors, the raw data kept when a model fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from models_harness import DATASET, REPO, ModelsHarness, small_company
from pipeline_harness import edited_sql

from pipelines.cli import main
from pipelines.emulator.server import EmulatorServer
from pipelines.models import SQL_DIR, BuildResult


def voipstudio(harness: ModelsHarness, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=REPO,
        env={**os.environ, **harness.env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if "error:" in line]


def test_models_command_sync_hook_and_data_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorServer(small_company(rows=200)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)

        nothing = voipstudio(harness, "models")
        assert nothing.returncode == 6
        [line] = error_lines(nothing.stderr)
        assert "no model could be built" in line and "voipstudio sync" in line

        raw_only = voipstudio(harness, "sync", "--no-models")
        assert raw_only.returncode == 0, raw_only.stderr
        assert "models built" not in raw_only.stdout
        assert set(harness.relations()) >= {"cdrs", "users", "queues"}
        assert "fct_calls" not in harness.relations()

        tested = voipstudio(harness, "models", "--test")
        assert tested.returncode == 0, tested.stderr
        assert "models built" in tested.stdout and "1 view, 22 tables" in tested.stdout
        assert "data tests: 58 passed, 0 failed, 0 skipped" in tested.stdout
        assert harness.relations()["fct_calls"] == "BASE TABLE"
        assert harness.relations()["stg_voipstudio__cdrs"] == "BASE TABLE"

        # A CDR that talks longer than it lasts, inside the next sync's lag window.
        newest = max(harness.admin.get("/cdrs").json()["data"], key=lambda r: r["calldate"])
        patched = harness.admin.post(
            "/cdrs/patch",
            json={"updates": [{"id": newest["id"], "set": {"billsec": newest["duration"] + 5}}]},
        )
        assert patched.json()["patched"] == 1
        synced = voipstudio(harness, "sync")
        assert synced.returncode == 0, synced.stderr
        assert "sync done" in synced.stdout and "models built" in synced.stdout

        failed = voipstudio(harness, "models", "--test")
    assert failed.returncode == 7
    example = f"e.g. {{'account': 'default', 'cdr_id': {newest['id']}"
    assert f"FAIL billsec_within_duration: 1 rows, {example}" in failed.stderr
    [line] = error_lines(failed.stderr)
    assert "1 of 58 data tests failed: billsec_within_duration (1 rows)" in line
    assert "data tests: 57 passed, 1 failed, 0 skipped" in failed.stdout


def test_a_model_failing_after_a_sync_exits_6_and_the_raw_data_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = edited_sql(
        tmp_path / "sql",
        {"marts/fct_calls.sql": ("min(call_id) as call_id", "min(no_such_column)")},
    )
    monkeypatch.setattr("pipelines.models.runner.SQL_DIR", broken)
    with EmulatorServer(small_company(rows=120)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        code = main(["sync"])
        output = capsys.readouterr()
        assert code == 6
        [line] = error_lines(output.err)
        assert line.startswith("voipstudio: error: model fct_calls failed: ")
        assert "no_such_column" in line
        assert "sync done" in output.out
        loaded = harness.query(f"select count(*) as n from {DATASET}.cdrs")
        assert loaded == [{"n": 120}]
        assert "fct_calls" not in harness.relations()

        # Fixed, `voipstudio models` builds everything from the data that stayed loaded.
        monkeypatch.setattr("pipelines.models.runner.SQL_DIR", SQL_DIR)
        assert main(["models"]) == 0
        assert "models built" in capsys.readouterr().out
        legs = harness.query(f"select sum(leg_count) as n from {DATASET}.fct_calls")
        assert legs == [{"n": 120}]


def test_the_models_after_a_sync_run_under_the_loads_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``voipstudio sync`` builds the models under DuckDB's limit of the load (256 MB), and
    ``voipstudio models --full`` too; a ``global_config`` of the user's wins."""
    import pipelines.cli as cli

    seen: list[BuildResult] = []
    print_models = cli._print_models

    def keep(result: BuildResult) -> None:
        seen.append(result)
        print_models(result)

    monkeypatch.setattr(cli, "_print_models", keep)
    with EmulatorServer(small_company(rows=120)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        assert main(["sync"]) == 0
        assert main(["models", "--full"]) == 0
        assert harness.relations()["fct_calls"] == "BASE TABLE"
        assert [r.count("full") for r in seen] == [len(seen[0].built)] * 2
        # DuckDB shows its limit in binary units: 256 MB is 244.1 MiB.
        assert [r.memory_limit for r in seen] == ["244.1 MiB"] * 2
        monkeypatch.setenv(
            "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "1GB"}'
        )
        assert main(["models"]) == 0
    assert seen[-1].memory_limit == "953.6 MiB"
