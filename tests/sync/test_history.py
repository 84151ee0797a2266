"""The rest of the call history (issue 15): every collection of ``catalog`` beyond ``cdrs``,
``users`` and ``queues``, each one declaration of the shared reader, synced with the guarantees
of ``cdrs`` (the scenarios of ``test_sync_scenarios.py`` and ``test_voicemessages.py``,
parametrized by collection, on DuckDB and PostgreSQL), the dimensions ``contacts`` and
``queuegroups``, ``resources = "all"``, and a collection the account's plan or the key does not
allow (403, 404): skipped with one warning, its state untouched, the sync not failed."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest
from pipeline_harness import REPO
from sync_harness import DATASET, Harness

from pipelines.voipstudio import catalog
from pipelines.voipstudio.collection import DatedCollection, Dimension
from pipelines.voipstudio.state import resource_states

# The dated collections added after /voicemessages (test_voicemessages.py covers that one).
DATED = [c for c in catalog.DATED if c.name not in ("cdrs", catalog.VOICEMESSAGES.name)]
DIMENSIONS = [catalog.CONTACTS, catalog.QUEUEGROUPS]
HISTORY = [c for c in catalog.COLLECTIONS if c.optional]


def served(harness: Harness, name: str) -> list[dict[str, Any]]:
    """Every record of collection ``name`` the emulator holds now, as served."""
    data: list[dict[str, Any]] = harness.admin.get(f"/collections/{name}").json()["data"]
    return data


def _same(got: Any, value: Any) -> bool:
    if isinstance(value, float) and isinstance(got, (int, float)):
        return math.isclose(got, value, rel_tol=0, abs_tol=1e-9)
    return bool(got == value)


def assert_loaded_equal(
    harness: Harness,
    collection: DatedCollection,
    expected: list[dict[str, Any]],
    account: str = "default",
) -> None:
    """The collection's table holds exactly these records of ``account``, field for field,
    each id once: the cursor as its UTC instant, ``<cursor>_raw`` as sent."""
    loaded = [row for row in harness.loaded(collection.name) if row["account"] == account]
    ids = [row["id"] for row in loaded]
    assert len(ids) == len(set(ids)), f"a record of {collection.name} was loaded twice"
    by_id = {row["id"]: row for row in loaded}
    missing = sorted({r["id"] for r in expected} - set(by_id))
    extra = sorted(set(by_id) - {r["id"] for r in expected})
    assert not missing and not extra, f"{collection.name}: lost {missing[:5]}, extra {extra[:5]}"
    cursor = collection.cursor.path
    for record in expected:
        row = by_id[record["id"]]
        for name, value in record.items():
            got = row[name]
            if name == cursor:
                value = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                got = got.astimezone(UTC)
            assert _same(got, value), (
                f"{collection.name} {record['id']} {name}: {got!r} != {value!r}"
            )
        assert row[f"{cursor}_raw"] == record[cursor]
        assert row["extra_fields"] is None and row["deleted_at"] is None


@pytest.mark.parametrize("collection", DATED, ids=lambda c: c.name)
def test_each_collection_loads_exactly_once_under_faults_and_arrivals(
    harness: Harness, collection: DatedCollection
) -> None:
    harness.setenv("SOURCES__VOIPSTUDIO__RESOURCES", f"cdrs,{collection.name}")
    expected = served(harness, collection.name)
    assert len(expected) >= 5, f"too few {collection.name} in the emulator to prove much"
    # Several windows and pages of each collection, whatever its size.
    harness.setenv("SOURCES__VOIPSTUDIO__PAGE_SIZE", str(max(1, len(expected) // 12)))
    path = collection.path
    harness.configure(
        faults=[
            {"kind": "500", "path": path, "rate": 0.15},
            {"kind": "drop", "path": path, "rate": 0.1},
            {"kind": "429", "path": path, "rate": 0.1, "retry_after": "0"},
        ],
        fault_seed=5,
    )
    summary = harness.sync()
    fired = sum(rule["fired"] for rule in harness.state()["faults"])
    assert fired > 0, "no fault fired: the test proves nothing"
    assert summary.rows_loaded[collection.name] == len(expected)
    assert_loaded_equal(harness, collection, expected)
    state = resource_states(harness.pipeline())[collection.name]
    assert state.cursor is not None and state.synced_at is not None and state.error is None
    # Nothing new: the lag is read again and merged, nothing changes.
    harness.sync()
    assert_loaded_equal(harness, collection, expected)
    # New records, some written late (inside the lag), while the faults go on.
    added = harness.admin.post(
        f"/collections/{collection.name}",
        json={"generate": {"count": 5, "late_fraction": 0.4, "max_late_seconds": 3600}},
    ).json()
    assert len(added["ids"]) >= 5
    harness.sync()
    now = served(harness, collection.name)
    assert len(now) > len(expected)
    assert_loaded_equal(harness, collection, now)


@pytest.mark.parametrize("collection", DATED, ids=lambda c: c.name)
def test_a_long_backfill_commits_in_parts_and_the_ceiling_holds(
    duckdb_harness: Harness, collection: DatedCollection
) -> None:
    harness = duckdb_harness
    small = len(served(harness, collection.name))
    if small < 40:  # enough records for several windows of 10 pages
        harness.admin.post(
            f"/collections/{collection.name}", json={"generate": {"count": 40 - small}}
        )
    expected = served(harness, collection.name)
    harness.setenv("SOURCES__VOIPSTUDIO__PAGE_SIZE", str(max(1, len(expected) // 40)))
    summary = harness.sync(
        resources=(collection.name,), commit_every_rows=max(1, len(expected) // 3)
    )
    assert summary.loads > 1
    assert_loaded_equal(harness, collection, expected)
    state = resource_states(harness.pipeline())[collection.name]
    assert not state.more and state.synced_at is not None
    # Rows lost after the state was saved: read again from the newest the table still holds.
    cursor = collection.cursor.path
    with duckdb.connect(str(harness.db_path)) as db:
        db.execute(
            f'delete from {DATASET}.{collection.name} where "{cursor}" > '
            f'(select min("{cursor}") + interval 3 day from {DATASET}.{collection.name})'
        )
    harness.sync(resources=(collection.name,))
    assert_loaded_equal(harness, collection, expected)


# A field of each collection that must be a number, and a value that is none.
ODD = {
    "monitors": ("size", "big"),
    "sms": ("user_id", "someone"),
    "chats": ("duration", "long"),
    "conversations": ("duration", "long"),
    "faxes": ("pages", "many"),
    "transactions": ("amount", "lots"),
}


@pytest.mark.parametrize("collection", DATED, ids=lambda c: c.name)
def test_a_record_that_cannot_be_typed_goes_to_its_rejects_table(
    duckdb_harness: Harness, collection: DatedCollection
) -> None:
    harness = duckdb_harness
    good = served(harness, collection.name)
    odd = dict(good[-1])
    odd["id"] = 99_000_001
    field, value = ODD[collection.name]
    odd[field] = value
    added = harness.admin.post(f"/collections/{collection.name}", json={"records": [odd]})
    assert added.is_success, added.text
    summary = harness.sync(resources=(collection.name,))
    assert summary.rejected == {collection.rejects_table: 1}
    [reject] = harness.loaded(collection.rejects_table)
    assert reject["id"] == str(odd["id"])
    assert field in reject["reason"] and value in reject["raw"]
    assert_loaded_equal(harness, collection, good)


@pytest.mark.parametrize("collection", DIMENSIONS, ids=lambda c: c.name)
def test_dimensions_are_read_whole_and_replaced(harness: Harness, collection: Dimension) -> None:
    harness.setenv("SOURCES__VOIPSTUDIO__RESOURCES", f"users,{collection.name}")
    expected = served(harness, collection.name)
    assert expected
    harness.sync()
    loaded = harness.loaded(collection.name)
    assert sorted(r["id"] for r in loaded) == sorted(r["id"] for r in expected)
    by_id = {r["id"]: r for r in loaded}
    for record in expected:
        assert by_id[record["id"]]["name" if "name" in record else "first_name"] == record.get(
            "name", record.get("first_name")
        )
    # Read again: replaced, not appended.
    harness.sync()
    assert len(harness.loaded(collection.name)) == len(expected)


def test_resources_all_loads_every_collection(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.setenv("SOURCES__VOIPSTUDIO__RESOURCES", "all")
    summary = harness.sync()
    for collection in catalog.COLLECTIONS:
        assert summary.rows_loaded.get(collection.name, 0) > 0, collection.name
    for collection in DATED:
        assert len(harness.loaded(collection.name)) == len(served(harness, collection.name))


def test_history_collections_are_not_read_by_default(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.sync()
    requests = harness.state()["requests"]
    for collection in HISTORY:
        assert requests.get(collection.path, 0) == 0, collection.path
        assert harness.loaded(collection.name) == []


@pytest.mark.parametrize("status", [403, 404])
def test_a_collection_the_plan_does_not_allow_is_skipped_with_one_warning(
    duckdb_harness: Harness, status: int
) -> None:
    harness = duckdb_harness
    env = {"SOURCES__VOIPSTUDIO__RESOURCES": "cdrs,users,faxes,sms,contacts"}
    first = harness.cli("sync", **env)
    assert first.returncode == 0, first.stderr
    before = resource_states(harness.pipeline())
    faxes_rows = len(harness.loaded("faxes"))
    assert faxes_rows > 0 and before["faxes"].cursor is not None
    # The plan loses faxes and contacts; a new SMS arrives meanwhile.
    harness.configure(
        faults=[
            {"kind": "refuse", "path": "/faxes", "every": 1, "status": status},
            {"kind": "refuse", "path": "/contacts", "every": 1, "status": status},
        ]
    )
    harness.admin.post("/collections/sms", json={"generate": {"count": 3}})
    done = harness.cli("sync", **env)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "skipped" in line]
    assert len([w for w in warnings if "/faxes" in w]) == 1, done.stderr
    assert len([w for w in warnings if "/contacts" in w]) == 1, done.stderr
    assert f"HTTP {status}" in done.stdout and "faxes" in done.stdout, done.stdout
    after = resource_states(harness.pipeline())
    assert dict(after["faxes"]) == dict(before["faxes"]), "a skipped collection's state changed"
    assert dict(after["contacts"]) == dict(before["contacts"])
    # What was loaded before stays; the others went on.
    assert len(harness.loaded("faxes")) == faxes_rows
    assert len(harness.loaded("contacts")) == len(served(harness, "contacts"))
    assert len(harness.loaded("sms")) == len(served(harness, "sms"))
    # Allowed again: read on from the cursor it had.
    harness.configure(faults=[])
    again = harness.cli("sync", **env)
    assert again.returncode == 0 and "skipped" not in again.stdout, again.stdout
    assert len(harness.loaded("faxes")) == len(served(harness, "faxes"))


def test_a_refused_core_collection_still_fails_the_sync(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.configure(faults=[{"kind": "refuse", "path": "/cdrs", "every": 1, "status": 403}])
    done = harness.cli("sync")
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "403" in done.stderr and "skipped" not in done.stdout


def test_a_named_account_without_a_collection_skips_it_alone(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.add_account("acme", harness.server)
    harness.add_account("beta", harness.server)
    harness.setenv("SOURCES__VOIPSTUDIO__RESOURCES", "cdrs,transactions")
    # The first /transactions request is refused: the account that made it skips the
    # collection, the other loads it.
    harness.configure(faults=[{"kind": "refuse", "path": "/transactions", "nth": [1]}])
    summary = harness.sync()
    assert len(summary.skipped) == 1
    [skipped] = summary.skipped
    assert skipped in ("transactions_acme", "transactions_beta")
    kept = "acme" if skipped.endswith("beta") else "beta"
    rows = [r for r in harness.loaded("transactions")]
    assert {r["account"] for r in rows} == {kept}
    assert resource_states(harness.pipeline())[skipped].cursor is None


def test_the_staging_models_cover_every_collection_and_follow_each_sync(harness: Harness) -> None:
    env = {"SOURCES__VOIPSTUDIO__RESOURCES": "all"}
    done = harness.cli("sync", **env)
    assert done.returncode == 0, done.stderr
    assert "skipped" not in done.stdout, done.stdout
    for collection in HISTORY:
        view = f"stg_voipstudio__{collection.name}"
        rows = harness.loaded(view)
        assert len(rows) == len(served(harness, collection.name)), view
        keys = [(row["account"], row[f"{_key_column(collection.name)}"]) for row in rows]
        assert len(keys) == len(set(keys)), f"{view}: its key is not unique"
    status = harness.cli("status", "--json", **env)
    report = json.loads(status.stdout)
    for collection in DATED:
        assert report["accounts"]["default"]["cursors"][collection.name] is not None
    # New and late records: the staging models are key models, kept up to date row by row
    # after each sync, and then hold what a full rebuild holds.
    for collection in DATED:
        harness.admin.post(
            f"/collections/{collection.name}",
            json={"generate": {"count": 3, "late_fraction": 0.5, "max_late_seconds": 1800}},
        )
    again = harness.cli("sync", **env)
    assert again.returncode == 0, again.stderr
    incremental = {}
    for collection in HISTORY:
        view = f"stg_voipstudio__{collection.name}"
        incremental[view] = sorted(map(repr, harness.loaded(view)))
        assert len(incremental[view]) == len(served(harness, collection.name)), view
    full = harness.cli("models", "--full", **env)
    assert full.returncode == 0, full.stderr
    for view, rows in incremental.items():
        assert sorted(map(repr, harness.loaded(view))) == rows, f"{view}: incremental != full"


def _key_column(name: str) -> str:
    """The key column of a staging view, from its ``-- key: (account, X)`` header."""
    header = (REPO / "sql" / "staging" / f"stg_voipstudio__{name}.sql").read_text().splitlines()[0]
    return header.split("key: (account, ")[1].rstrip(")")
