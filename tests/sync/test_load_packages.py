"""Completed load packages: each sync keeps the newest few in the pipeline's working folder and
deletes the rest; a bad setting stops the sync before it touches anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from sync_harness import DATASET, Harness

from pipelines.pipeline_settings import PipelineSettings
from pipelines.voipstudio.errors import ConfigError


def loaded_folder(harness: Harness) -> list[str]:
    folder = Path(harness.pipeline().working_dir) / "load" / "loaded"
    return sorted((p.name for p in folder.iterdir()), key=float) if folder.is_dir() else []


def load_ids(harness: Harness) -> list[str]:
    with harness.pipeline().sql_client() as client:
        rows = client.execute_sql(
            f"select load_id from {DATASET}._dlt_loads where status = 0 order by inserted_at"
        )
    return [str(row[0]) for row in rows]


def test_only_the_newest_packages_are_kept(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.setenv("PIPELINES__VOIPSTUDIO__KEEP_LOAD_PACKAGES", "2")
    for _ in range(4):
        # A new CDR each time, so that each sync loads: one that finds nothing new nor changed
        # within the same second as the last (the same cursor) has nothing to load.
        harness.admin.post("/cdrs", json={"generate": {"count": 1, "late_fraction": 0.0}})
        harness.sync()
    loads = load_ids(harness)
    assert len(loads) == 4
    assert loaded_folder(harness) == loads[-2:]
    assert list(harness.pipeline().list_completed_load_packages()) == loads[-2:]
    harness.setenv("PIPELINES__VOIPSTUDIO__KEEP_LOAD_PACKAGES", "0")
    harness.admin.post("/cdrs", json={"generate": {"count": 1, "late_fraction": 0.0}})
    harness.sync()
    assert loaded_folder(harness) == []
    assert len(load_ids(harness)) == 5  # the load log in the destination is untouched


def test_by_default_a_few_are_kept(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    for _ in range(PipelineSettings.keep_load_packages + 2):
        harness.sync()
    assert loaded_folder(harness) == load_ids(harness)[-PipelineSettings.keep_load_packages :]


@pytest.mark.parametrize("value", ["-1", "three"])
def test_a_bad_setting_stops_the_sync_before_it_reads(duckdb_harness: Harness, value: str) -> None:
    harness = duckdb_harness
    harness.setenv("PIPELINES__VOIPSTUDIO__KEEP_LOAD_PACKAGES", value)
    with pytest.raises(ConfigError, match="PIPELINES__VOIPSTUDIO__KEEP_LOAD_PACKAGES"):
        harness.sync()
    assert harness.state()["requests"].get("/cdrs", 0) == 0
    assert harness.loaded() == []
