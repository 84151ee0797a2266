"""Incremental syncs merge the re-read lag window and the new rows exactly once (issue 14): on
DuckDB with dlt's ``upsert`` strategy (rows updated in place), on PostgreSQL with
``delete-insert``. Late rows inside the lag, rows changed inside it and rows reconcile marked
deleted all end as the API has them, each id once.
"""

from __future__ import annotations

from typing import Any

from sync_harness import Harness, assert_cdrs_equal

from pipelines.reconcile import ReconcileOptions, run_reconcile
from pipelines.sync import merges_by_upsert


def test_a_delta_merges_late_and_changed_rows_once(harness: Harness) -> None:
    first = harness.sync()
    assert first.cdrs_new == len(harness.emulator_cdrs())
    pipeline = harness.pipeline()
    upsert = harness.postgres_dsn is None
    assert merges_by_upsert(pipeline) is upsert
    # Inside the lag: a stored row changed, late rows (started up to two hours ago), new rows.
    newest = max(harness.emulator_cdrs(), key=lambda r: r["calldate"])
    changed = harness.admin.post(
        "/cdrs/update", json={"updates": [{"id": newest["id"], "set": {"duration": 4321}}]}
    )
    assert changed.json()["missing"] == [], changed.text
    late = harness.admin.post(
        "/cdrs", json={"generate": {"count": 30, "late_fraction": 1.0, "max_late_seconds": 7200}}
    ).json()["ids"]
    fresh = harness.admin.post("/cdrs", json={"generate": {"count": 20}}).json()["ids"]
    for _ in range(2):  # the second re-reads the same lag: nothing doubles
        summary = harness.sync()
        assert_cdrs_equal(harness, harness.emulator_cdrs())
    assert summary.cdrs_new == 0
    strategy = pipeline.default_schema.get_table("cdrs").get("x-merge-strategy")
    assert strategy == ("upsert" if upsert else "delete-insert")
    rows = {row["id"]: row for row in harness.loaded()}
    assert rows[newest["id"]]["duration"] == 4321
    assert set(late + fresh) <= set(rows)


def test_reconcile_marks_survive_upserted_syncs(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.sync()
    stored = sorted(harness.emulator_cdrs(), key=lambda r: r["calldate"])
    gone = stored[len(stored) // 2]["id"]  # days before the lag
    assert harness.admin.post("/cdrs/delete", json={"ids": [gone]}).json()["missing"] == []
    run_reconcile(harness.pipeline(), ReconcileOptions(since="2026-02-20"))
    marked: dict[int, Any] = {row["id"]: row["deleted_at"] for row in harness.loaded()}
    assert marked[gone] is not None
    harness.admin.post("/cdrs", json={"generate": {"count": 10, "late_fraction": 0.5}})
    harness.sync()
    rows = {row["id"]: row for row in harness.loaded()}
    assert rows[gone]["deleted_at"] is not None, "a sync unmarked a row it did not read"
    assert sum(row["deleted_at"] is not None for row in rows.values()) == 1
    assert len(rows) == len(harness.emulator_cdrs()) + 1
