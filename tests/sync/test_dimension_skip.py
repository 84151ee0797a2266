"""A dimension read exactly as its last load is not loaded again; anything else still loads:
a changed record, a changed list of members (``queues__users``), and a destination that no
longer holds what the last load wrote. On DuckDB and PostgreSQL."""

from __future__ import annotations

import dlt
from sync_harness import Harness

from pipelines.voipstudio.catalog import QUEUES, USERS
from pipelines.voipstudio.reader import content_digest


def _load_ids(harness: Harness, table: str) -> set[str]:
    return {row["_dlt_load_id"] for row in harness.loaded(table, load_ids=True)}


def test_unchanged_dimensions_are_not_loaded_again(harness: Harness) -> None:
    first = harness.sync()
    assert first.rows_loaded["users"] == 12 and first.rows_loaded["queues"] == 3
    assert first.unchanged == ()
    tables = ("users", "queues", "queues__users")
    before = {table: harness.loaded(table, load_ids=True) for table in tables}
    assert all(before.values())

    second = harness.sync()

    assert second.unchanged == ("queues", "users")
    assert not {"users", "queues", "queues__users"} & set(second.rows_loaded)
    # The CDRs' lag is still read again (unchanged, so not loaded either): the sync ran.
    assert second.cdrs_read > 0
    # The rows are the very rows of the first load: not replaced, same load ids.
    assert {table: harness.loaded(table, load_ids=True) for table in tables} == before


def test_a_changed_record_loads_its_dimension_and_only_it(harness: Harness) -> None:
    harness.sync()
    user_id = min(row["id"] for row in harness.loaded("users"))
    response = harness.admin.post(
        "/users/patch", json={"updates": [{"id": user_id, "set": {"first_name": "Renamed"}}]}
    )
    assert response.json()["patched"] == 1
    queue_ids = _load_ids(harness, "queues")

    summary = harness.sync()

    assert summary.rows_loaded["users"] == 12
    assert summary.unchanged == ("queues",)
    users = {row["id"]: row for row in harness.loaded("users")}
    assert len(users) == 12
    assert users[user_id]["first_name"] == "Renamed"
    assert _load_ids(harness, "queues") == queue_ids
    # Loaded once, the change is the new "last load": the next sync skips it again.
    assert harness.sync().unchanged == ("queues", "users")


def test_a_changed_member_list_loads_the_queues(harness: Harness) -> None:
    harness.sync()
    queue = harness.loaded("queues")[0]
    members = {
        row["value"]
        for row in harness.loaded("queues__users")
        if row["_dlt_parent_id"] == queue["_dlt_id"]
    }
    newcomer = next(row["id"] for row in harness.loaded("users") if row["id"] not in members)
    response = harness.admin.post(
        "/queues/patch", json={"updates": [{"id": queue["id"], "set": {"users": [newcomer]}}]}
    )
    assert response.json()["patched"] == 1

    summary = harness.sync()

    assert summary.unchanged == ("users",)
    assert summary.rows_loaded["queues"] == 3
    assert "queues__users" in summary.rows_loaded
    reloaded = next(row for row in harness.loaded("queues") if row["id"] == queue["id"])
    assert [
        row["value"]
        for row in harness.loaded("queues__users")
        if row["_dlt_parent_id"] == reloaded["_dlt_id"]
    ] == [newcomer]


def test_a_dimension_the_destination_lost_is_loaded_again(harness: Harness) -> None:
    harness.sync()
    harness.execute("delete from {dataset}.users where id in (select min(id) from {dataset}.users)")
    assert len(harness.loaded("users")) == 11

    summary = harness.sync()

    assert summary.unchanged == ("queues",)
    assert summary.rows_loaded["users"] == 12
    assert len(harness.loaded("users")) == 12


def test_full_refresh_loads_every_dimension(harness: Harness) -> None:
    harness.sync()
    summary = harness.sync(full_refresh=True)
    assert summary.unchanged == ()
    assert summary.rows_loaded["users"] == 12 and summary.rows_loaded["queues"] == 3


def test_the_digest_covers_records_their_order_and_the_tables_hints() -> None:
    page = [{"account": "default", "id": 1, "first_name": "Ana"}, {"account": "default", "id": 2}]
    digest = content_digest(USERS, [page])
    assert content_digest(USERS, [[dict(page[0]), dict(page[1])]]) == digest
    # The order of a record's fields is not a change; a value, a record or the order is.
    reordered = {"id": 1, "first_name": "Ana", "account": "default"}
    assert content_digest(USERS, [[reordered, page[1]]]) == digest
    assert content_digest(USERS, [[{**page[0], "first_name": "Ann"}, page[1]]]) != digest
    assert content_digest(USERS, [page[:1]]) != digest
    assert content_digest(USERS, [page[::-1]]) != digest
    # Pages are how the server served them, not the data: the same records in other pages.
    assert content_digest(USERS, [page[:1], page[1:]]) == digest
    # Another collection's declaration (its table hints) is another digest.
    assert content_digest(QUEUES, [page]) != digest
    # Rows for another table, handed on with their hints, count with those hints.
    rows = [{"account": "default", "queue_id": 1, "user_id": 2}]
    history = dlt.mark.with_hints(rows, dlt.mark.make_hints(table_name="history"), True)
    with_rows = content_digest(USERS, [page, history])
    assert with_rows != digest
    other = dlt.mark.with_hints(rows, dlt.mark.make_hints(table_name="elsewhere"), True)
    assert content_digest(USERS, [page, other]) != with_rows
    assert content_digest(USERS, [page, history]) == with_rows
