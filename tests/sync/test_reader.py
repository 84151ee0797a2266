"""The reader concludes no more than the API's answers show (issue 12, items 1-3): the bounds of
a range, a server that clamps its pages, one that caps its totals, both at once, and one that
ignores the sort while rows arrive. Real HTTP to the emulator, real DuckDB: after each sync the
table holds every CDR exactly once, or the sync failed clearly and committed nothing unverified.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sync_harness import Harness, assert_cdrs_equal

from pipelines.console import describe
from pipelines.emulator.store import Table
from pipelines.sync import read_cursor
from pipelines.voipstudio.windows import half_open, looks_capped

WINDOWS_LOG = "pipelines.voipstudio.windows"
REPO = Path(__file__).resolve().parents[2]


def add_cdrs(harness: Harness, calldates: list[str]) -> list[int]:
    """CDRs at exactly these calldates (copies of a stored one, with new ids)."""
    template = harness.emulator_cdrs()[0]
    top = harness.state()["max_cdr_id"]
    records = [
        {**template, "id": top + 1 + i, "call_id": top + 1 + i, "calldate": calldate}
        for i, calldate in enumerate(calldates)
    ]
    response = harness.admin.post("/cdrs", json={"records": records})
    assert response.status_code == 200, response.text
    return response.json()["ids"]  # type: ignore[no-any-return]


def serve_reordered(monkeypatch: pytest.MonkeyPatch, reorder: Callable[[Any, Any], Any]) -> None:
    """Make the emulator (it runs in this process) page through ``reorder(positions, query)``
    of the records that match, instead of the order asked."""
    select = Table.select

    def reordered(self: Table, query: Any) -> Any:
        every, total = select(self, replace(query, page=1, limit=10**9))
        ordered = reorder(np.array(every), query)
        begin = (query.page - 1) * query.limit
        return ordered[begin : begin + query.limit], total

    monkeypatch.setattr(Table, "select", reordered)


def between(harness: Harness, first: str, before: str) -> list[dict[str, Any]]:
    """The emulator's CDRs with ``first <= calldate < before``."""
    return [r for r in harness.emulator_cdrs() if first <= r["calldate"] < before]


# -- item 1: a user's start is included; --start/--end read [start, end) -----------------------


def test_whole_seconds_make_adjacent_ranges_meet() -> None:
    assert half_open(100, 200) == (99, 199)
    first, second = half_open(100, 200), half_open(200, 300)
    assert first[1] == second[0]  # (99, 199] then (199, 299]: no gap, no overlap


def test_a_cdr_at_exactly_start_date_is_loaded_on_the_first_sync(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    at_start, just_before = add_cdrs(harness, ["2026-02-25 00:00:00", "2026-02-24 23:59:59"])
    harness.setenv("SOURCES__VOIPSTUDIO__START_DATE", "2026-02-25")
    harness.sync()
    loaded = {row["id"] for row in harness.loaded()}
    assert at_start in loaded, "the CDR at exactly start_date was skipped"
    assert just_before not in loaded
    assert_cdrs_equal(harness, between(harness, "2026-02-25 00:00:00", "9999"))


def test_adjacent_backfills_leave_neither_gap_nor_overlap(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    a, b, c = "2026-02-22 00:00:00", "2026-02-24 00:00:00", "2026-02-26 00:00:00"
    edges = ["2026-02-21 23:59:59", a, "2026-02-23 23:59:59", b, "2026-02-25 23:59:59", c]
    add_cdrs(harness, edges)
    first_half, second_half = between(harness, a, b), between(harness, b, c)
    first = harness.sync(start="2026-02-22", end="2026-02-24")
    assert_cdrs_equal(harness, first_half)
    second = harness.sync(start="2026-02-24 00:00:00", end="2026-02-26")
    # Each backfill read exactly its own half: the CDR at b once, in the second.
    assert first.rows_loaded["cdrs"] == len(first_half)
    assert second.rows_loaded["cdrs"] == len(second_half)
    assert_cdrs_equal(harness, first_half + second_half)
    assert read_cursor(harness.pipeline()) is None, "a backfill moved the cursor"


# -- item 2: clamped pages, capped totals, both ---------------------------------------------------


def test_a_clamping_server_is_read_in_the_page_size_it_serves(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The sync asks 100 a page; the server serves 40.
    harness: Harness = make_harness(page_cap=40)
    caplog.set_level(logging.INFO, logger=WINDOWS_LOG)
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())
    assert "serves pages of 40 records (100 asked)" in caplog.text
    harness.admin.post("/cdrs", json={"generate": {"count": 30, "late_fraction": 0.5}})
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())


@pytest.mark.parametrize("cap", [250, 1000])
def test_a_capping_server_loses_no_row(
    make_harness: Any, caplog: pytest.LogCaptureFixture, cap: int
) -> None:
    # 3,000 CDRs, whose count the server never reports above `cap`: a window trusted to
    # `total` would end after `cap` rows. 1000 is a round count, tried before it sizes a
    # window; 250 is found when the pages go on past it.
    harness: Harness = make_harness(total_cap=cap)
    caplog.set_level(logging.INFO, logger=WINDOWS_LOG)
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())
    assert f"total looks capped at {cap}" in caplog.text
    harness.admin.post("/cdrs", json={"generate": {"count": 40, "late_fraction": 1.0}})
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())


@pytest.mark.parametrize(
    ("page_cap", "total_cap", "page_size"),
    [(40, 250, "100"), (150, 150, "500")],
    ids=["clamp-40-cap-250", "clamp-and-cap-equal"],
)
def test_clamping_and_capping_at_once(
    make_harness: Any, page_cap: int, total_cap: int, page_size: str
) -> None:
    harness: Harness = make_harness(page_cap=page_cap, total_cap=total_cap)
    harness.setenv("SOURCES__VOIPSTUDIO__PAGE_SIZE", page_size)
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())
    existing = {r["id"] for r in harness.emulator_cdrs()}
    harness.configure(
        arrivals={"every": 4, "count": 3, "late_fraction": 0.5, "max_late_seconds": 3 * 3600}
    )
    harness.sync()
    assert existing <= {row["id"] for row in harness.loaded()}
    harness.configure(arrivals=None)
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_dimensions_follow_the_same_rule(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Users and queues page too: 12 users served 5 a page, then counted at most 5.
    harness: Harness = make_harness(page_cap=5)
    summary = harness.sync(resources=("users", "queues"))
    assert summary.rows_loaded["users"] == 12 and summary.rows_loaded["queues"] == 3
    harness.configure(page_cap=5000, total_cap=5)
    summary = harness.sync(resources=("users",))
    # Read whole again (two reads to the end agree): exactly the 12 users loaded before, so
    # not loaded again (a read that stopped at the capped total would differ and load).
    assert summary.unchanged == ("users",)
    assert len(harness.loaded("users")) == 12
    # A dimension served in another order on every request cannot be paged: a clear failure.
    harness.configure(total_cap=None, page_cap=5)
    serve_reordered(monkeypatch, lambda every, query: every[:: 1 if query.page % 2 else -1])
    with pytest.raises(Exception) as raised:
        harness.sync(resources=("users",))
    message, code = describe(raised.value)
    assert code == 5 and "/users did not add up" in message and "sort=id" in message
    assert len(harness.loaded("users")) == 12


def test_a_window_whose_total_always_under_reports_fails_clearly(
    duckdb_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = duckdb_harness
    harness.sync()
    before, cursor = harness.loaded(), read_cursor(harness.pipeline())
    harness.admin.post("/cdrs", json={"generate": {"count": 5, "late_fraction": 0.0}})
    # Every page request reports a total one below what its window holds: no cut can help.
    select = Table.select

    def under_reporting(self: Table, query: Any) -> Any:
        positions, total = select(self, query)
        return positions, max(0, total - 1) if query.limit > 1 else total

    monkeypatch.setattr(Table, "select", under_reporting)
    with pytest.raises(Exception) as raised:
        harness.sync()
    message, code = describe(raised.value)
    assert code == 5
    assert "did not add up" in message and "voipstudio check" in message
    assert read_cursor(harness.pipeline()) == cursor
    assert harness.loaded() == before


def test_round_totals_look_capped() -> None:
    assert all(looks_capped(n) for n in (100, 1000, 5000, 10_000, 128, 1024, 65_536))
    assert not any(looks_capped(n) for n in (0, 1, 99, 250, 999, 10_001, 4873))


# -- item 3: the order the API returns is checked --------------------------------------------------


def test_an_ignored_sort_with_rows_arriving_loses_no_row(
    duckdb_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness = duckdb_harness
    existing = harness.emulator_cdrs()
    # The server answers newest first whatever sort/dir ask, while calls keep ending: old rows
    # shift across page boundaries, and new ones make up the count.
    harness.configure(
        ignore_sort=True,
        arrivals={"every": 3, "count": 5, "late_fraction": 0.5, "max_late_seconds": 3 * 3600},
    )
    caplog.set_level(logging.INFO, logger=WINDOWS_LOG)
    harness.sync()
    assert "does not return records in the order asked" in caplog.text
    loaded = {row["id"] for row in harness.loaded()}
    lost = {r["id"] for r in existing} - loaded
    assert not lost, f"{len(lost)} CDRs that existed when the sync started were lost"
    assert len(harness.emulator_cdrs()) > len(existing), "no CDR arrived during the sync"
    harness.configure(arrivals=None)
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_an_order_that_changes_on_every_request_fails_clearly(
    duckdb_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = duckdb_harness
    harness.setenv("SOURCES__VOIPSTUDIO__PAGE_SIZE", "7")
    harness.setenv("SOURCES__VOIPSTUDIO__START_DATE", "2026-03-01")
    add_cdrs(harness, ["2026-03-01 10:00:00"] * 20)
    # A server without ORDER BY: every answer in another order. Windows of half a page are
    # single answers and verify; a second holding more than a page cannot.
    shuffle = random.Random(7)

    def shuffled(every: Any, query: Any) -> Any:
        shuffle.shuffle(every)
        return every

    serve_reordered(monkeypatch, shuffled)
    with pytest.raises(Exception) as raised:
        harness.sync(resources=("cdrs",))
    message, code = describe(raised.value)
    assert code == 5
    assert "sort=id&dir=ASC" in message and "did not add up" in message
    assert harness.loaded("cdrs") == []
    assert read_cursor(harness.pipeline()) is None


def test_an_unverifiable_api_exits_5_as_a_scheduler_sees_it(make_harness: Any) -> None:
    # A total capped at 10, below any page: no cut of a window can be verified against it.
    harness: Harness = make_harness(total_cap=10)
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "sync", "--resources", "cdrs"],
        cwd=REPO,
        env={**os.environ, **harness.env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 5, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "did not add up" in errors[0], result.stderr
    assert "voipstudio check" in errors[0] and "Traceback" not in result.stderr
    assert harness.loaded() == []
