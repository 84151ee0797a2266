"""``sync --full-refresh`` drops and reloads every table but the queues' member history
(``queue_memberships``), which the API cannot give back: that history is kept, and the
refresh's own read of the members is merged into it as any sync's would be. On DuckDB and
PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sync_harness import Harness, small_config

from pipelines.emulator.server import EmulatorServer
from pipelines.kept_history import kept_marker, kept_table

HISTORY = "queue_memberships"
Membership = tuple[int | None, int | None, datetime, datetime | None]


def _history(harness: Harness) -> set[Membership]:
    """(queue, user, valid from, valid to) of every row of the history."""
    return {
        (row["queue_id"], row["user_id"], row["_dlt_valid_from"], row["_dlt_valid_to"])
        for row in harness.loaded(HISTORY, load_ids=True)
    }


def _current(history: set[Membership]) -> set[tuple[int | None, int | None]]:
    return {(queue, user) for queue, user, _, valid_to in history if valid_to is None}


def _tables(harness: Harness) -> set[str]:
    rows = harness.execute(
        "select table_name from information_schema.tables where table_schema = '{dataset}'",
    )
    return {str(name) for (name,) in rows}


def _set_members(harness: Harness, queue: int, users: list[int]) -> None:
    response = harness.admin.post(
        "/queues/patch", json={"updates": [{"id": queue, "set": {"users": users}}]}
    )
    assert response.json()["patched"] == 1


def _members(harness: Harness) -> tuple[int, list[int], list[int]]:
    """A queue, its members now, and users who are not in it."""
    history = _history(harness)
    queue = min(q for q, _ in _current(history) if q is not None)
    members = sorted(u for q, u in _current(history) if q == queue and u is not None)
    users = sorted(row["id"] for row in harness.loaded("users"))
    return queue, members, [u for u in users if u not in members]


def test_a_full_refresh_keeps_the_member_history_and_merges_its_own_read(
    harness: Harness,
) -> None:
    harness.sync()
    queue, members, others = _members(harness)
    assert members and others
    # A first change: the history holds a retired membership and a newer one.
    _set_members(harness, queue, [*members[1:], others[0]])
    harness.sync()
    before = _history(harness)
    retired = {row for row in before if row[3] is not None}
    assert retired and len(before) > len(_current(before))
    # A second change, seen first by the refresh: a member leaves, another joins.
    _set_members(harness, queue, [*members[2:], others[0], others[1]])

    summary = harness.sync(full_refresh=True)

    assert summary.rows_loaded["cdrs"] > 0 and summary.rows_loaded["queues"] > 0
    after = _history(harness)
    (refreshed_at,) = {row[2] for row in after - before if row[3] is None}
    # Every row of before is there; the memberships the refresh saw again kept theirs.
    unchanged = {row for row in before if row[3] is None and row[:2] != (queue, members[1])}
    assert retired <= after and unchanged <= after
    # The member who left ends when the refresh saw the account; the newcomer starts then.
    (left,) = {row for row in before if row[3] is None and row[:2] == (queue, members[1])}
    assert (left[0], left[1], left[2], refreshed_at) in after
    assert (queue, others[1], refreshed_at, None) in after
    assert len(after) == len(before) + 1
    assert _current(after) == _current(before) - {(queue, members[1])} | {(queue, others[1])}
    assert kept_table(HISTORY) not in _tables(harness)
    assert not kept_marker(harness.pipeline()).exists()

    # The next change merges as usual: one retired, one new, the rest untouched (the kept
    # rows carry the row hashes dlt's scd2 merge compares).
    _set_members(harness, queue, [*members[2:], others[1]])
    harness.sync()
    later = _history(harness)
    assert len(later) == len(after)
    assert {row for row in after if row[:2] != (queue, others[0])} <= later
    assert (queue, others[0]) not in _current(later)


def test_a_full_refresh_without_the_queues_puts_the_history_back(harness: Harness) -> None:
    harness.sync()
    before = _history(harness)
    queue, members, others = _members(harness)

    harness.sync(full_refresh=True, resources=["cdrs"])

    assert _history(harness) == before
    assert kept_table(HISTORY) not in _tables(harness)
    # The next sync reads the queues and merges into the history put back.
    _set_members(harness, queue, [*members, others[0]])
    harness.sync()
    after = _history(harness)
    assert before < after and len(after) == len(before) + 1


def test_a_copy_left_by_a_stopped_refresh_is_merged_back_once(harness: Harness) -> None:
    """A refresh that stopped between keeping the history and merging it back left the copy
    and the marker: the next sync merges it; a copy of the very table (stopped before the
    drop) changes nothing. Without the marker (another machine) the syncs leave the copy alone
    and the next full refresh merges it before copying the table again."""
    harness.sync()
    queue, members, others = _members(harness)
    _set_members(harness, queue, [*members[1:], others[0]])
    harness.sync()
    before = _history(harness)
    kept = kept_table(HISTORY)
    copy = f"create table {{dataset}}.{kept} as select * from {{dataset}}.{HISTORY}"
    harness.execute(copy)
    marker = kept_marker(harness.pipeline())
    marker.write_text("", encoding="utf-8")

    harness.sync()

    assert _history(harness) == before
    assert kept not in _tables(harness) and not marker.exists()

    # The copy without its marker: the syncs do not look for it.
    harness.execute(copy)
    harness.execute(f"delete from {{dataset}}.{HISTORY} where _dlt_valid_to is not null")
    harness.sync()
    assert kept in _tables(harness)
    assert _history(harness) == {row for row in before if row[3] is None}
    # The next full refresh merges it first: the retired rows are back, nothing twice.
    harness.sync(full_refresh=True)
    assert _history(harness) == before
    assert kept not in _tables(harness) and not marker.exists()


def test_each_accounts_history_is_merged_on_its_own(duckdb_harness: Harness) -> None:
    """Two accounts whose queue and user ids coincide: the refresh's change of one account's
    members ends and starts that account's memberships only."""
    harness = duckdb_harness
    with EmulatorServer(small_config(seed=12, rows=500, users=7, queues=2)) as beta:
        harness.add_account("acme", harness.server)
        harness.add_account("beta", beta)
        harness.sync()
        rows = harness.loaded(HISTORY, load_ids=True)
        by_account = {
            account: {
                (r["queue_id"], r["user_id"], r["_dlt_valid_from"], r["_dlt_valid_to"])
                for r in rows
                if r["account"] == account
            }
            for account in ("acme", "beta")
        }
        queue = min(q for q, _, _, _ in by_account["acme"] if q is not None)
        assert queue in {q for q, _, _, _ in by_account["beta"]}  # the same ids in both
        members = sorted(u for q, u, _, _ in by_account["acme"] if q == queue and u is not None)
        _set_members(harness, queue, members[1:])

        harness.sync(full_refresh=True)

        after = harness.loaded(HISTORY, load_ids=True)
        beta_after = {
            (r["queue_id"], r["user_id"], r["_dlt_valid_from"], r["_dlt_valid_to"])
            for r in after
            if r["account"] == "beta"
        }
        assert beta_after == by_account["beta"]
        ended = [r for r in after if r["_dlt_valid_to"] is not None]
        assert [(r["account"], r["queue_id"], r["user_id"]) for r in ended] == [
            ("acme", queue, members[0])
        ]
        assert len(after) == len(rows)
