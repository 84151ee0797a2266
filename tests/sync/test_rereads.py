"""Rows an incremental sync reads again exactly as the destination holds them are not loaded
again (``pipelines/voipstudio/rereads.py``), and every other row still is: a row changed in the
API, a row the destination lost, a row reconcile marked deleted that the API returns again,
a full refresh, a backfill of an explicit range. On DuckDB and PostgreSQL; the table always
ends as if every row read had been merged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pytest
from sync_harness import Harness, assert_cdrs_equal, small_config

from pipelines.emulator.server import EmulatorServer
from pipelines.voipstudio import rereads
from pipelines.voipstudio.rereads import StoredRows, drop_unchanged


def _by_id(harness: Harness) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in harness.loaded(load_ids=True)}


def _newest(harness: Harness) -> dict[str, Any]:
    return max(harness.emulator_cdrs(), key=lambda r: (r["calldate"], r["id"]))


def test_a_sync_with_nothing_new_loads_no_cdr(harness: Harness) -> None:
    first = harness.sync()
    assert first.cdrs_unchanged == 0
    settled = harness.sync()  # the first re-read of the lag: nothing changed since
    before = _by_id(harness)

    summary = harness.sync()

    assert "cdrs" not in summary.rows_loaded
    assert summary.cdrs_unchanged > 0
    assert summary.cdrs_read == summary.cdrs_unchanged == settled.cdrs_unchanged
    assert summary.cdrs_new == summary.cdrs_updated == 0
    # The very rows, load ids included: nothing was rewritten.
    assert _by_id(harness) == before
    assert_cdrs_equal(harness, harness.emulator_cdrs())
    # The cursor still moved with the run (dlt's state was loaded).
    assert summary.cursor is not None and summary.cursor >= (first.cursor or "")


def test_a_row_changed_in_the_api_is_loaded_and_only_it(harness: Harness) -> None:
    harness.sync()
    newest = _newest(harness)
    changed = harness.admin.post(
        "/cdrs/update", json={"updates": [{"id": newest["id"], "set": {"billsec": 4321}}]}
    )
    assert changed.json()["missing"] == [], changed.text
    fresh = harness.admin.post("/cdrs", json={"generate": {"count": 5}}).json()["ids"]
    before = _by_id(harness)

    summary = harness.sync()

    assert summary.rows_loaded["cdrs"] == 6
    assert summary.cdrs_new == 5 and summary.cdrs_updated == 1
    assert summary.cdrs_unchanged > 0
    assert_cdrs_equal(harness, harness.emulator_cdrs())
    after = _by_id(harness)
    assert after[newest["id"]]["billsec"] == 4321
    assert after[newest["id"]]["_dlt_load_id"] != before[newest["id"]]["_dlt_load_id"]
    assert set(fresh) <= set(after)
    untouched = set(before) - {newest["id"]}
    assert all(after[i] == before[i] for i in untouched)


def test_a_row_deleted_by_hand_is_loaded_again(harness: Harness) -> None:
    harness.sync()
    newest = _newest(harness)
    harness.execute(f"delete from {{dataset}}.cdrs where id = {newest['id']}")
    assert newest["id"] not in _by_id(harness)

    summary = harness.sync()

    assert summary.rows_loaded["cdrs"] == 1
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_a_row_marked_deleted_that_the_api_returns_again_is_unmarked(harness: Harness) -> None:
    harness.sync()
    newest = _newest(harness)
    # As reconcile marks a CDR the API stopped returning (here: it returns it again).
    harness.execute(
        f"update {{dataset}}.cdrs set deleted_at = '2026-03-02 11:30:00+00' "
        f"where id = {newest['id']}",
    )
    assert _by_id(harness)[newest["id"]]["deleted_at"] is not None

    summary = harness.sync()

    assert summary.rows_loaded["cdrs"] == 1
    assert _by_id(harness)[newest["id"]]["deleted_at"] is None
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_a_value_changed_by_hand_in_the_destination_is_put_back(harness: Harness) -> None:
    harness.sync()
    newest = _newest(harness)
    harness.execute(f"update {{dataset}}.cdrs set charge = 99.5 where id = {newest['id']}")

    summary = harness.sync()

    assert summary.rows_loaded["cdrs"] == 1
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_full_refresh_and_backfills_load_every_row_read(harness: Harness) -> None:
    harness.sync()
    total = len(harness.emulator_cdrs())

    refreshed = harness.sync(full_refresh=True)
    assert refreshed.rows_loaded["cdrs"] == total and refreshed.cdrs_unchanged == 0

    backfill = harness.sync(start="2026-03-01")
    assert backfill.cdrs_unchanged == 0 and backfill.rows_loaded["cdrs"] > 0
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_every_dated_collection_leaves_its_unchanged_rows_out(duckdb_harness: Harness) -> None:
    """The cursor column of each collection bounds the rows compared (``timestamp`` for
    recordings is a keyword in SQL, so it is quoted)."""
    harness = duckdb_harness
    names = ("cdrs", "voicemessages", "monitors", "sms")
    harness.sync(resources=names)
    before = {name: harness.loaded(name, load_ids=True) for name in names}

    summary = harness.sync(resources=names)

    for name in names:
        assert summary.unchanged_rows.get(name, 0) > 0, name
        assert name not in summary.rows_loaded, name
        assert harness.loaded(name, load_ids=True) == before[name], name


def test_a_window_too_large_to_hold_is_merged_as_before(
    duckdb_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = duckdb_harness
    harness.sync()
    monkeypatch.setattr(rereads, "MAX_STORED_ROWS", 5)

    summary = harness.sync()

    assert summary.cdrs_unchanged == 0
    assert summary.rows_loaded["cdrs"] == summary.cdrs_read > 5
    assert_cdrs_equal(harness, harness.emulator_cdrs())


@pytest.fixture
def twin_server() -> Iterator[EmulatorServer]:
    """A second company with the very same records (ids and values) as the harness's."""
    with EmulatorServer(small_config()) as server:
        yield server


def test_each_account_is_compared_with_its_own_rows(
    harness: Harness, twin_server: EmulatorServer
) -> None:
    """Two accounts holding the same ids and values: a change in one account's API loads that
    account's row only, and its stored twin in the other account never stands in for it."""
    harness.add_account("alpha", harness.server)
    harness.add_account("beta", twin_server)
    harness.sync()
    harness.sync()
    twin = httpx.Client(base_url=twin_server.url + "/_emulator", timeout=30)
    twin_cdrs = twin.get("/cdrs").json()["data"]
    newest = max(twin_cdrs, key=lambda r: (r["calldate"], r["id"]))
    changed = twin.post(
        "/cdrs/update", json={"updates": [{"id": newest["id"], "set": {"billsec": 777}}]}
    )
    assert changed.json()["missing"] == [], changed.text

    summary = harness.sync()

    assert summary.rows_loaded["cdrs"] == 1
    assert summary.cdrs_unchanged > 0
    rows = {(row["account"], row["id"]): row for row in harness.loaded()}
    assert rows[("beta", newest["id"])]["billsec"] == 777
    assert rows[("alpha", newest["id"])]["billsec"] == newest["billsec"]
    assert_cdrs_equal(harness, harness.emulator_cdrs(), account="alpha")
    assert_cdrs_equal(harness, twin.get("/cdrs").json()["data"], account="beta")


# --- the comparison itself ------------------------------------------------------------------

_UTC = pa.timestamp("us", tz="UTC")


def _rows(**columns: list[Any]) -> pa.Table:
    types = {"id": pa.int64(), "calldate": _UTC, "billsec": pa.int64(), "src": pa.string()}
    return pa.table({name: pa.array(values, types.get(name)) for name, values in columns.items()})


def _stored(table: pa.Table) -> StoredRows:
    return StoredRows.of(table)


T1 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_only_rows_equal_in_every_column_are_dropped() -> None:
    stored = _stored(
        _rows(
            id=[3, 1, 2, 4],
            calldate=[T1] * 4,
            billsec=[30, 10, None, 40],
            src=["c", "a", "b", None],
        )
    )
    read = _rows(
        id=[1, 2, 3, 4, 5],
        calldate=[T1] * 5,
        billsec=[10, None, 31, 40, 50],
        src=["a", "b", "c", "d", "e"],
    )
    kept, dropped = drop_unchanged(read, stored)
    # 1 and 2 are the same (a null equals a null); 3 and 4 changed; 5 is new.
    assert dropped == 2
    assert kept.column("id").to_pylist() == [3, 4, 5]


def test_a_column_one_side_lacks_is_null_there() -> None:
    stored = _stored(_rows(id=[1, 2], billsec=[10, 20], src=["a", None]))
    # The stored table has `src`, the rows read do not: the load would write null into it.
    kept, dropped = drop_unchanged(_rows(id=[1, 2], billsec=[10, 20]), stored)
    assert kept.column("id").to_pylist() == [1] and dropped == 1
    # The rows read have a column the table does not have yet: only a null there is no change.
    kept, dropped = drop_unchanged(_rows(id=[1, 2], billsec=[10, 20], src=[None, "x"]), stored)
    assert kept.column("id").to_pylist() == [1, 2] and dropped == 0
    wider = _stored(_rows(id=[1, 2], billsec=[10, 20]))
    kept, dropped = drop_unchanged(_rows(id=[1, 2], billsec=[10, 20], src=[None, "x"]), wider)
    assert kept.column("id").to_pylist() == [2] and dropped == 1


def test_values_are_compared_in_the_type_of_the_rows_read() -> None:
    # DuckDB gives a UTC instant back as `Etc/UTC`, PostgreSQL as a fixed offset.
    back = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "calldate": pa.array([T1, T1], pa.timestamp("us", tz="Etc/UTC")),
        }
    )
    read = _rows(id=[1, 2], calldate=[T1, datetime(2026, 3, 2, 11, tzinfo=UTC)])
    kept, dropped = drop_unchanged(read, _stored(back))
    assert kept.column("id").to_pylist() == [2] and dropped == 1
    # Values that cannot be put in the rows' type: nothing is taken as unchanged.
    text = pa.table({"id": pa.array([1], pa.int64()), "billsec": pa.array(["ten"])})
    kept, dropped = drop_unchanged(_rows(id=[1], billsec=[10]), _stored(text))
    assert dropped == 0 and kept.num_rows == 1


def test_dlt_columns_and_deletion_marks_are_not_compared() -> None:
    stored = pa.table(
        {
            "id": pa.array([1], pa.int64()),
            "billsec": pa.array([10], pa.int64()),
            "_dlt_load_id": pa.array(["1700000000.1"]),
            "deleted_at": pa.array([None], _UTC),
        }
    )
    kept, dropped = drop_unchanged(_rows(id=[1], billsec=[10]), _stored(stored))
    assert dropped == 1 and kept.num_rows == 0


@pytest.mark.parametrize("ids", [[], [7]])
def test_rows_the_destination_does_not_hold_are_kept(ids: list[int]) -> None:
    stored = _stored(_rows(id=[1], billsec=[10]))
    read = _rows(id=ids, billsec=[10] * len(ids))
    kept, dropped = drop_unchanged(read, stored)
    assert dropped == 0 and kept.column("id").to_pylist() == ids
