"""A long backfill never needs more DuckDB memory than an insert (branch duckdb-oom).

A 5,000,000-CDR first sync once failed with DuckDB's `Out of Memory Error` in the merge of a
later part: dlt's ``upsert`` is one ``MERGE``, which holds a row group of the rows it inserts in
memory DuckDB cannot evict and, when the part's ids are not all above the table's, joins it with
the whole table; at 1,000,000 rows into 4,000,000 it needed about 248 MB of the 256 MB limit
(docs/benchmarks.md, "DuckDB memory during a long backfill"). Here the same shape at a small
scale: 60,000 CDRs committed in parts of about 20,000 (a part ends with the window that reaches
it) under a 40 MB limit, which a ``MERGE`` of such a part exceeds and an insert does not. The
limit is set the way a user sets theirs (``global_config``), which also shows that a user's own
DuckDB settings are the ones used.
"""

from __future__ import annotations

import json

import pytest
from sync_harness import Harness, assert_cdrs_equal

from pipelines.sync import merge_strategy

ROWS = 60_000
PART = 20_000
SMALL_LIMIT = {"memory_limit": "40MB", "threads": 1}


@pytest.fixture
def backfill(make_harness: object) -> Harness:
    harness: Harness = make_harness(rows=ROWS)  # type: ignore[operator]
    harness.setenv("SOURCES__VOIPSTUDIO__PAGE_SIZE", "1000")
    harness.setenv("SOURCES__VOIPSTUDIO__START_DATE", "2026-02-20")  # where the data starts
    harness.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", json.dumps(SMALL_LIMIT))
    return harness


def test_a_backfill_in_parts_loads_under_a_small_memory_limit(backfill: Harness) -> None:
    summary = backfill.sync(commit_every_rows=PART)
    assert summary.loads >= 3, "the backfill was meant to be committed in several parts"
    assert_cdrs_equal(backfill, backfill.emulator_cdrs())
    assert summary.cdrs_after == ROWS
    # The next incremental sync merges its lag window in place again (upsert), row for row.
    changed = max(backfill.emulator_cdrs(), key=lambda r: r["calldate"])
    backfill.admin.post(
        "/cdrs/update", json={"updates": [{"id": changed["id"], "set": {"duration": 4321}}]}
    )
    backfill.admin.post("/cdrs", json={"generate": {"count": 25, "late_fraction": 0.5}})
    after = backfill.sync(commit_every_rows=PART)
    assert after.loads == 1
    pipeline = backfill.pipeline()
    assert pipeline.default_schema.get_table("cdrs").get("x-merge-strategy") == "upsert"
    assert_cdrs_equal(backfill, backfill.emulator_cdrs())
    rows = {row["id"]: row for row in backfill.loaded()}
    assert rows[changed["id"]]["duration"] == 4321


def test_an_explicit_range_read_again_loads_under_a_small_memory_limit(
    backfill: Harness,
) -> None:
    backfill.delenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG")
    backfill.sync()
    backfill.admin.post("/cdrs", json={"generate": {"count": 25, "late_fraction": 0.5}})
    backfill.sync()  # an incremental sync: the table's strategy is upsert now
    pipeline = backfill.pipeline()
    assert pipeline.default_schema.get_table("cdrs").get("x-merge-strategy") == "upsert"
    rows = len(backfill.emulator_cdrs())
    backfill.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", json.dumps(SMALL_LIMIT))
    # Every stored CDR read again in one load (an explicit range is not committed in parts).
    summary = backfill.sync(start="2026-02-20")
    assert summary.loads == 1
    assert summary.rows_loaded["cdrs"] == rows
    assert_cdrs_equal(backfill, backfill.emulator_cdrs())


def test_which_loads_merge_in_place(backfill: Harness) -> None:
    pipeline = backfill.pipeline()
    assert merge_strategy(pipeline, later_part=False, explicit=False) == "upsert"
    assert merge_strategy(pipeline, later_part=True, explicit=False) == "delete-insert"
    assert merge_strategy(pipeline, later_part=False, explicit=True) == "delete-insert"


def test_a_sync_in_parts_loads_every_new_record(backfill: Harness) -> None:
    """25,000 new CDRs within 9 minutes, far below the last run's cursor (the newest CDR loaded
    is where the run starts), synced in parts of 5,000: every one loaded (the parts once resumed
    at the last run's cursor and lost most of them)."""
    backfill.delenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG")
    backfill.setenv("SOURCES__VOIPSTUDIO__START_DATE", "2026-03-01")
    first = backfill.sync()
    assert 0 < first.cdrs_after < ROWS
    backfill.admin.post("/cdrs", json={"generate": {"count": 25_000, "late_fraction": 0.0}})
    summary = backfill.sync(commit_every_rows=5_000)
    assert summary.loads >= 2
    in_range = [r for r in backfill.emulator_cdrs() if r["calldate"] >= "2026-03-01"]
    assert_cdrs_equal(backfill, in_range)
