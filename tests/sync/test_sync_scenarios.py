"""End-to-end sync scenarios: real HTTP to the emulator, real DuckDB. After each one the cdrs
table must equal the emulator's CDRs, field for field, each id once."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

import pytest
from sync_harness import Harness, assert_cdrs_equal

from pipelines.console import describe, root_cause
from pipelines.emulator.store import Table
from pipelines.sync import read_cursor
from pipelines.voipstudio.errors import ConfigError, DataCheckError


def test_first_sync_loads_every_cdr_and_dimensions(harness: Harness) -> None:
    expected = harness.emulator_cdrs()
    summary = harness.sync()
    assert_cdrs_equal(harness, expected)
    assert summary.cdrs_new == len(expected)
    assert summary.rows_loaded["users"] == 12
    assert len(harness.loaded("users")) == 12
    assert len(harness.loaded("queues")) == 3
    assert summary.cursor is not None


def test_same_second_bursts_cross_page_boundaries(harness: Harness) -> None:
    expected = harness.emulator_cdrs()
    per_second = Counter(r["calldate"] for r in expected)
    # The data must really hold bursts larger than a page, or this test proves nothing.
    assert max(per_second.values()) >= 15
    harness.setenv("SOURCES__VOIPSTUDIO__PAGE_SIZE", "7")
    harness.sync()
    assert_cdrs_equal(harness, expected)


def test_second_sync_with_nothing_new_changes_nothing(harness: Harness) -> None:
    harness.sync()

    def content() -> list[dict[str, object]]:
        # Rows read again carry the new load's id (the models compare their content)
        return [{k: v for k, v in row.items() if k != "_dlt_load_id"} for row in harness.loaded()]

    before = content()
    summary = harness.sync()
    assert summary.cdrs_new == 0
    assert content() == before


def test_late_rows_inside_the_lag_are_loaded(harness: Harness) -> None:
    harness.sync()
    response = harness.admin.post(
        "/cdrs", json={"generate": {"count": 40, "late_fraction": 1.0, "max_late_seconds": 7200}}
    )
    added = response.json()["ids"]
    assert len(added) == 40
    summary = harness.sync()
    assert summary.cdrs_new == 40
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_rows_arriving_while_pages_are_fetched(harness: Harness) -> None:
    existing = harness.emulator_cdrs()
    harness.configure(
        arrivals={"every": 3, "count": 5, "late_fraction": 0.5, "max_late_seconds": 3 * 3600}
    )
    harness.sync()
    loaded_ids = {row["id"] for row in harness.loaded()}
    assert {r["id"] for r in existing} <= loaded_ids, "a CDR that existed at the start was lost"
    assert len(harness.emulator_cdrs()) > len(existing), "no CDR arrived during the sync"
    harness.configure(arrivals=None)
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())


@pytest.mark.parametrize(("retry_after", "rate"), [(None, 0.3), ("0", 0.3), ("1", 0.05)])
def test_429_storm(harness: Harness, retry_after: str | None, rate: float) -> None:
    expected = harness.emulator_cdrs()
    harness.configure(
        faults=[{"kind": "429", "rate": rate, "retry_after": retry_after}], fault_seed=3
    )
    harness.sync()
    assert_cdrs_equal(harness, expected)
    fired = harness.state()["faults"][0]["fired"]
    assert fired > 0


def test_server_errors_and_dropped_connections(harness: Harness) -> None:
    expected = harness.emulator_cdrs()
    harness.configure(
        faults=[
            {"kind": "500", "rate": 0.1},
            {"kind": "503", "rate": 0.1},
            {"kind": "non_json", "rate": 0.1},
            {"kind": "drop", "rate": 0.1},
        ],
        fault_seed=5,
    )
    harness.sync()
    assert_cdrs_equal(harness, expected)
    assert sum(rule["fired"] for rule in harness.state()["faults"]) > 0


def test_timeouts_are_retried(harness: Harness) -> None:
    expected = harness.emulator_cdrs()
    harness.setenv("SOURCES__VOIPSTUDIO__REQUEST_TIMEOUT", "0.5")
    harness.configure(faults=[{"kind": "stall", "nth": [3, 7], "seconds": 3}])
    harness.sync()
    assert_cdrs_equal(harness, expected)
    assert harness.state()["faults"][0]["fired"] == 2


def test_retries_run_out_with_a_clear_error(harness: Harness) -> None:
    harness.setenv("SOURCES__VOIPSTUDIO__MAX_ATTEMPTS", "2")
    harness.configure(faults=[{"kind": "503", "rate": 1.0, "path": "/cdrs"}])
    with pytest.raises(Exception) as raised:
        harness.sync()
    message, code = describe(raised.value)
    assert code == 4
    assert "failed 2 times" in message and "HTTP 503" in message


def test_login_token_expiring_mid_run(make_harness: Any) -> None:
    harness: Harness = make_harness(rows=1000, latency_per_request_ms=20)
    harness.delenv("SOURCES__VOIPSTUDIO__API_KEY")
    harness.setenv("SOURCES__VOIPSTUDIO__EMAIL", "demo@example.com")
    harness.setenv("SOURCES__VOIPSTUDIO__PASSWORD", "demo-password")
    harness.setenv("SOURCES__VOIPSTUDIO__PAGE_SIZE", "20")
    harness.setenv("SOURCES__VOIPSTUDIO__MAX_CONCURRENCY", "2")
    expected = harness.emulator_cdrs()

    def expire_when_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if harness.state()["requests"].get("/cdrs", 0) >= 10:
                harness.admin.post("/tokens/expire", json={"kind": "login"})
                return
            time.sleep(0.01)

    expirer = threading.Thread(target=expire_when_running)
    expirer.start()
    harness.sync()
    expirer.join()
    assert_cdrs_equal(harness, expected)
    assert harness.state()["requests"]["/login"] >= 2, "the client never logged in again"


def test_new_field_appearing_is_kept(harness: Harness) -> None:
    harness.sync()
    harness.configure(extra_fields={"recording_url": "https://rec.example/1.wav"})
    harness.sync()
    rows = harness.loaded()
    assert "recording_url" not in rows[0], "an undeclared field became a column"
    # Rows read again in the lag window carry the new field in extra_fields; older rows NULL.
    carrying = [row for row in rows if row["extra_fields"] is not None]
    assert carrying and len(carrying) < len(rows)
    assert {row["extra_fields"] for row in carrying} == {
        '{"recording_url":"https://rec.example/1.wav"}'
    }


def test_malformed_records_land_in_rejects(harness: Harness) -> None:
    records = harness.emulator_cdrs()
    bad_date, bad_number = records[5]["id"], records[9]["id"]
    response = harness.admin.post(
        "/cdrs/patch",
        json={
            "updates": [
                {"id": bad_date, "set": {"calldate": "0000-00-00 00:00:00"}},
                {"id": bad_number, "set": {"billsec": "twelve"}},
            ]
        },
    )
    assert response.json()["patched"] == 2
    summary = harness.sync()
    assert summary.rejects == 2
    rejects = {row["id"]: row for row in harness.loaded("cdrs_rejects")}
    assert set(rejects) == {str(bad_date), str(bad_number)}
    assert "calldate" in rejects[str(bad_date)]["reason"]
    assert "billsec" in rejects[str(bad_number)]["reason"]
    assert "twelve" in rejects[str(bad_number)]["raw"]
    good = [r for r in harness.emulator_cdrs() if r["id"] not in (bad_date, bad_number)]
    assert_cdrs_equal(harness, good)
    # Re-reading the same bad records (lag window) does not duplicate the rejects.
    harness.sync()
    assert len(harness.loaded("cdrs_rejects")) == 2


def test_window_that_never_adds_up_fails_without_moving_the_cursor(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.sync()
    before = harness.loaded()
    cursor_before = read_cursor(harness.pipeline())
    harness.admin.post("/cdrs", json={"generate": {"count": 5, "late_fraction": 0.0}})
    # An API whose pages never hold as many records as the `total` they report (the emulator
    # has no such fault, so its page evaluation is wrapped in this process).
    select = Table.select

    def overcounting(self: Table, query: Any) -> Any:
        positions, total = select(self, query)
        return positions, total + 1 if query.limit > 1 else total

    monkeypatch.setattr(Table, "select", overcounting)
    with pytest.raises(Exception) as raised:
        harness.sync()
    assert isinstance(root_cause(raised.value), DataCheckError)
    assert "did not add up" in str(root_cause(raised.value))
    assert read_cursor(harness.pipeline()) == cursor_before
    assert harness.loaded() == before


def test_window_read_again_loads_each_row_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    expected = harness.emulator_cdrs()
    # The first read of every page reports a total its window never reaches: every window is
    # read again, and the rows of both reads reach dlt.
    select = Table.select
    seen: set[Any] = set()

    def overcounting_at_first(self: Table, query: Any) -> Any:
        positions, total = select(self, query)
        key = (query.conditions, query.page)
        if query.limit > 1 and key not in seen:
            seen.add(key)
            return positions, total + 1
        return positions, total

    monkeypatch.setattr(Table, "select", overcounting_at_first)
    caplog.set_level(logging.WARNING, logger="pipelines.voipstudio.windows")
    summary = harness.sync()
    assert "reading it again" in caplog.text
    assert_cdrs_equal(harness, expected)
    assert summary.cdrs_new == len(expected)


def test_window_growing_while_read_is_accepted(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pipelines.voipstudio.windows")
    existing = harness.emulator_cdrs()
    # Late rows land in the newest window on every request: it never holds still.
    harness.configure(
        arrivals={"every": 1, "count": 2, "late_fraction": 1.0, "max_late_seconds": 3600}
    )
    summary = harness.sync()
    loaded_ids = {row["id"] for row in harness.loaded()}
    assert {r["id"] for r in existing} <= loaded_ids
    harness.configure(arrivals=None)
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())
    assert summary.cursor is not None
    assert "while it was read" in caplog.text, "the growth path was not exercised"


def test_backfill_of_an_explicit_range_leaves_the_cursor(harness: Harness) -> None:
    harness.sync()
    cursor = harness.sync().cursor
    summary = harness.sync(start="2026-02-25", end="2026-02-26")
    assert summary.cursor == cursor
    # [start, end): from 2026-02-25 00:00:00 included to 2026-02-26 00:00:00 excluded.
    expected = [
        r
        for r in harness.emulator_cdrs()
        if "2026-02-25 00:00:00" <= r["calldate"] < "2026-02-26 00:00:00"
    ]
    assert summary.rows_loaded["cdrs"] == len(expected)


def test_full_refresh_rebuilds_the_tables(harness: Harness) -> None:
    harness.sync()
    harness.admin.post("/cdrs", json={"generate": {"count": 5, "late_fraction": 0.0}})
    summary = harness.sync(full_refresh=True)
    assert summary.cdrs_new == len(harness.emulator_cdrs())
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_backfill_commits_in_parts(harness: Harness) -> None:
    expected = harness.emulator_cdrs()
    summary = harness.sync(commit_every_rows=500)
    assert summary.loads >= 3
    assert_cdrs_equal(harness, expected)


def test_an_incremental_run_in_parts_resumes_where_each_part_stopped(harness: Harness) -> None:
    """An incremental run starts below its cursor (the lag; here the newest CDR loaded, weeks
    before the last run's end): a part cut there must resume where it stopped, not at the last
    run's cursor, or what lies between (new and late CDRs) is never read."""
    harness.sync()
    cursor = read_cursor(harness.pipeline())
    harness.admin.post("/cdrs", json={"generate": {"count": 1_500, "late_fraction": 0.2}})
    summary = harness.sync(commit_every_rows=500)
    assert summary.loads >= 2
    assert_cdrs_equal(harness, harness.emulator_cdrs())
    # The run went to its end: the cursor is that end again, not left where a part stopped.
    after = read_cursor(harness.pipeline())
    assert cursor is not None and after is not None and after >= cursor


def test_selected_resources_only(harness: Harness) -> None:
    summary = harness.sync(resources=("users",))
    assert summary.rows_loaded == {"users": 12}
    with pytest.raises(ConfigError, match="unknown resources"):
        harness.sync(resources=("calls",))
