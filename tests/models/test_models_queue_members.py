"""The queues' members as each sync saw them: dlt's scd2 history of ``/queues`` ``users``
(raw ``queue_memberships``), ``stg_voipstudio__queue_memberships``, ``dim_queue_members`` and
``dim_queues``, on DuckDB and PostgreSQL.

Four syncs against a real emulator: the first keeps the members; the second sees the same ones
and adds nothing; before the third, Sales loses a member and gains another; before the fourth,
Support loses all of its members. After each, the history must hold every state with the
observation time of the sync that saw it, and the incremental build must equal a full one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from handmade_cdrs import A, B, C, _leg
from models_harness import DATASET, ModelsHarness, empty_company
from test_models_incremental import assert_same, duckdb_rows, full_rebuild_of

from pipelines import voipstudio
from pipelines.emulator.server import EmulatorServer
from pipelines.models import build_models, run_data_tests
from pipelines.voipstudio import memberships
from pipelines.voipstudio.catalog import QUEUES
from pipelines.voipstudio.errors import DataCheckError

SALES, SUPPORT = 7001, 7002
CALL = _leg(1, 1, "I", "2024-03-29 09:00:00", A, caller="+34600111222", duration=30, billsec=20,
            disposition="CONNECTED", destination="Sales", context="from-queue")  # fmt: skip
MEMBER_MODELS = ("stg_voipstudio__queue_memberships", "dim_queue_members", "dim_queues")


class Reader:
    """Rows of the dataset on either destination, as dicts."""

    def __init__(self, harness: ModelsHarness, dsn: str | None, dataset: str) -> None:
        self.harness, self.dsn, self.dataset = harness, dsn, dataset

    def rows(self, sql: str) -> list[dict[str, Any]]:
        sql = sql.format(dataset=self.dataset)
        if self.dsn is None:
            return self.harness.query(sql)
        import psycopg2

        with psycopg2.connect(self.dsn) as pg, pg.cursor() as cursor:
            cursor.execute(sql)
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def members(self) -> set[tuple[int, int, dt.datetime, dt.datetime | None]]:
        """(queue, user, valid from, valid to) of dim_queue_members, naive UTC."""
        rows = self.rows(
            "select queue_id, user_id, valid_from_utc, valid_to_utc "
            "from {dataset}.dim_queue_members"
        )
        return {(r["queue_id"], r["user_id"], r["valid_from_utc"], r["valid_to_utc"]) for r in rows}

    def models(self) -> dict[str, list[tuple[Any, ...]]]:
        out = {}
        for name in MEMBER_MODELS:
            rows = self.rows(f"select * from {{dataset}}.{name}")
            out[name] = sorted((tuple(r.values()) for r in rows), key=repr)
        return out


def _observed(harness: ModelsHarness) -> tuple[dt.datetime, dt.datetime]:
    """A sync, and the UTC wall clock just before and after it (naive)."""
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    harness.sync()
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return before, after


def _set_members(harness: ModelsHarness, queue: int, users: list[int]) -> None:
    response = harness.admin.post(
        "/queues/patch", json={"updates": [{"id": queue, "set": {"users": users}}]}
    )
    assert response.json()["patched"] == 1


@pytest.mark.parametrize("destination", ["duckdb", "postgres"])
def test_members_as_each_sync_saw_them(
    destination: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    dsn = request.getfixturevalue("postgres_dsn") if destination == "postgres" else None
    dataset = DATASET if dsn is None else f"members_{uuid.uuid4().hex[:10]}"
    env = (
        {}
        if dsn is None
        else {
            "PIPELINES__VOIPSTUDIO__DESTINATION_TYPE": "postgres",
            "DESTINATION__POSTGRES__CREDENTIALS": dsn,
            "PIPELINES__VOIPSTUDIO__DATASET_NAME": dataset,
        }
    )

    def same_as_full(label: str) -> None:
        if dsn is None:
            assert_same(
                label, duckdb_rows(harness.db_path), full_rebuild_of(harness.db_path, tmp_path)
            )
        else:
            incremental = reader.models()
            build_models(harness.pipeline(), full=True)
            assert reader.models() == incremental, label

    with EmulatorServer(empty_company(queues=2)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch, **env)
        reader = Reader(harness, dsn, dataset)
        harness.add_cdrs([CALL])
        _set_members(harness, SALES, [A, B])
        first = _observed(harness)
        build_models(harness.pipeline())
        loaded = {
            (r["queue_id"], r["user_id"])
            for r in reader.rows("select * from {dataset}.stg_voipstudio__queue_members")
        }
        members = reader.members()
        assert {(q, u) for q, u, _, _ in members} == loaded
        assert loaded and {q for q, _ in loaded} == {SALES, SUPPORT}
        (since,) = {f for _, _, f, _ in members}
        assert first[0] <= since <= first[1]
        assert {t for _, _, _, t in members} == {None}
        same_as_full("first sync")

        # The same members: no new version, nothing retired.
        harness.sync()
        result = build_models(harness.pipeline())
        assert reader.members() == members
        assert {m.name: m.mode for m in result.built}["dim_queue_members"] == "unchanged"

        # Sales: the first of its members leaves, a user who was not in it joins.
        sales = sorted(u for q, u in loaded if q == SALES)
        joining = C
        assert sales == [A, B]
        _set_members(harness, SALES, [B, C])
        third = _observed(harness)
        build_models(harness.pipeline())
        after = reader.members()
        left = {m for m in after if m[:2] == (SALES, sales[0])}
        assert len(left) == 1
        (_, _, left_from, left_to) = left.pop()
        assert left_from == since and left_to is not None and third[0] <= left_to <= third[1]
        (joined,) = [m for m in after if m[:2] == (SALES, joining)]
        assert joined[2] == left_to and joined[3] is None  # seen by the same sync
        # everyone else unchanged
        assert {m for m in after if m[:2] not in {(SALES, sales[0]), (SALES, joining)}} == {
            m for m in members if m[:2] != (SALES, sales[0])
        }
        same_as_full("a member left, another joined")

        # Support loses every member: a queue observed empty closes them all.
        _set_members(harness, SUPPORT, [])
        fourth = _observed(harness)
        build_models(harness.pipeline())
        support = [m for m in reader.members() if m[0] == SUPPORT]
        assert support and all(m[3] is not None and fourth[0] <= m[3] <= fourth[1] for m in support)
        queues = {r["queue_id"]: r for r in reader.rows("select * from {dataset}.dim_queues")}
        assert queues[SUPPORT]["member_count"] == 0
        assert queues[SUPPORT]["past_member_count"] == len(support)
        assert queues[SALES]["member_count"] == len(sales)
        assert queues[SALES]["past_member_count"] == 1
        assert queues[SALES]["history_since_utc"] == since
        assert queues[SALES]["last_member_change_utc"] == left_to
        assert queues[SUPPORT]["last_member_change_utc"] == support[0][3]
        same_as_full("a queue emptied")
        assert [t.describe() for t in run_data_tests(harness.pipeline()) if not t.passed] == []


def test_a_dataset_loaded_before_the_history_keeps_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dataset synced by the previous version has queues and queues__users but no
    queue_memberships: its models build (the history ones wait for the next sync, dim_queues
    without member counts), and the next sync starts the history."""
    with EmulatorServer(empty_company(queues=2)) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.add_cdrs([CALL])
        # the previous version: the dimension's pages and nothing else
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(voipstudio, "with_history", lambda pages, history, account: pages)
            harness.sync()
        assert "queue_memberships" not in harness.relations()
        result = build_models(harness.pipeline())
        assert "dim_queue_members" in result.skipped
        assert "dim_queues" in {m.name for m in result.built}
        assert {r["member_count"] for r in harness.table("dim_queues")} == {None}
        harness.sync()
        result = build_models(harness.pipeline())
        assert not result.skipped, result.skipped
        # the queues' current members, as before (queues__users unchanged)
        assert harness.table("stg_voipstudio__queue_members")
        assert {r["member_count"] for r in harness.table("dim_queues")} != {None}
        assert harness.table("dim_queue_members")


def test_membership_rows() -> None:
    history = QUEUES.history
    assert history is not None
    records = [
        {"id": 1, "users": [10, "11", {"id": 12, "status": True}, 10]},
        {"id": 2, "users": []},
        {"id": 3},
    ]
    assert memberships.membership_rows("x", records, history) == [
        {"account": "x", "queue_id": 1, "user_id": 10},
        {"account": "x", "queue_id": 1, "user_id": 11},
        {"account": "x", "queue_id": 1, "user_id": 12},
        {"account": "x", "queue_id": 2, "user_id": None},
        {"account": "x", "queue_id": 3, "user_id": None},
    ]
    assert memberships.membership_rows("x", [], history) == [
        {"account": "x", "queue_id": None, "user_id": None}
    ]
    with pytest.raises(DataCheckError, match="users of queue_id 1 holds 'ten'"):
        memberships.membership_rows("x", [{"id": 1, "users": ["ten"]}], history)
    with pytest.raises(DataCheckError, match="not a list"):
        memberships.membership_rows("x", [{"id": 1, "users": "10"}], history)
