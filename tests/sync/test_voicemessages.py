"""The worked example of docs/collections.md: ``/voicemessages``, one declaration of the shared
reader (``catalog.VOICEMESSAGES``), synced with the guarantees of ``cdrs``: every record once
under faults and arrivals, its own cursor and state per account, the cursor ceiling, commits in
parts, rejects into ``voicemessages_rejects``, its staging view; and loaded only when chosen."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest
from sync_harness import DATASET, Harness, small_config

from pipelines.emulator.server import EmulatorServer
from pipelines.sync import read_cursor
from pipelines.voipstudio.catalog import VOICEMESSAGES
from pipelines.voipstudio.state import resource_states

WITH_VOICEMAIL = "cdrs,users,queues,voicemessages"


def served(harness: Harness, server: EmulatorServer | None = None) -> list[dict[str, Any]]:
    """Every voicemail the emulator holds now, as served."""
    admin = harness.admin if server is None else _admin(server)
    data: list[dict[str, Any]] = admin.get("/collections/voicemessages").json()["data"]
    return data


def _admin(server: EmulatorServer) -> Any:
    import httpx

    return httpx.Client(base_url=server.url + "/_emulator", timeout=30)


def assert_voicemails_equal(
    harness: Harness, expected: list[dict[str, Any]], account: str = "default"
) -> None:
    """The voicemessages table holds exactly these records of ``account``, field for field,
    each id once: ``origtime`` as the UTC instant, ``origtime_raw`` as sent."""
    loaded = [row for row in harness.loaded("voicemessages") if row["account"] == account]
    ids = [row["id"] for row in loaded]
    assert len(ids) == len(set(ids)), "a voicemail was loaded twice"
    by_id = {row["id"]: row for row in loaded}
    assert set(by_id) == {r["id"] for r in expected}, "voicemails lost or extra"
    for record in expected:
        row = by_id[record["id"]]
        for field, value in record.items():
            got = row[field]
            if field == "origtime":
                value = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                got = got.astimezone(UTC)
            assert got == value, f"voicemail {record['id']} {field}: {got!r} != {value!r}"
        assert row["origtime_raw"] == record["origtime"]
        assert row["extra_fields"] is None and row["deleted_at"] is None


def test_voicemails_load_exactly_once_under_faults_and_arrivals(harness: Harness) -> None:
    harness.setenv("SOURCES__VOIPSTUDIO__RESOURCES", WITH_VOICEMAIL)
    harness.setenv("SOURCES__VOIPSTUDIO__PAGE_SIZE", "7")  # many windows and pages
    expected = served(harness)
    assert len(expected) > 30, "the emulator's company left too few voicemails to prove much"
    harness.configure(
        faults=[
            {"kind": "500", "path": "/voicemessages", "rate": 0.15},
            {"kind": "drop", "path": "/voicemessages", "rate": 0.1},
            {"kind": "429", "path": "/voicemessages", "rate": 0.1, "retry_after": "0"},
        ],
        fault_seed=7,
    )
    summary = harness.sync()
    assert sum(rule["fired"] for rule in harness.state()["faults"]) > 0
    assert summary.rows_loaded["voicemessages"] == len(expected)
    assert_voicemails_equal(harness, expected)
    cursor = read_cursor(harness.pipeline(), collection=VOICEMESSAGES)
    assert cursor is not None and cursor == read_cursor(harness.pipeline())
    # New messages, some of them written late (inside the lag), while the faults go on.
    added = harness.admin.post(
        "/collections/voicemessages",
        json={"generate": {"count": 6, "late_fraction": 0.5, "max_late_seconds": 3600}},
    ).json()
    assert len(added["ids"]) >= 6
    harness.sync()
    assert_voicemails_equal(harness, served(harness))
    assert len(harness.loaded("voicemessages")) == len(served(harness)) > len(expected)


def test_voicemails_are_loaded_only_when_chosen(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    summary = harness.sync()
    assert "voicemessages" not in summary.rows_loaded
    assert harness.state()["requests"].get("/voicemessages", 0) == 0
    assert harness.loaded("voicemessages") == []
    # One run only: --resources.
    summary = harness.sync(resources=("voicemessages",))
    assert set(summary.rows_loaded) <= {"voicemessages", "voicemessages_rejects"}
    assert_voicemails_equal(harness, served(harness))


def test_a_long_backfill_of_voicemails_commits_in_parts(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.setenv("SOURCES__VOIPSTUDIO__PAGE_SIZE", "5")
    summary = harness.sync(resources=("voicemessages",), commit_every_rows=20)
    assert summary.loads > 2
    assert_voicemails_equal(harness, served(harness))
    state = resource_states(harness.pipeline())["voicemessages"]
    assert not state.more and state.synced_at is not None


def test_the_cursor_is_not_trusted_beyond_what_the_table_holds(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.sync(resources=("voicemessages",))
    expected = served(harness)
    # Rows lost after the state was saved (a load that failed, a table restored from an older
    # backup): the next sync reads them again from the newest origtime the table still holds.
    with duckdb.connect(str(harness.db_path)) as db:
        db.execute(
            f"delete from {DATASET}.voicemessages where origtime > "
            f"(select min(origtime) + interval 3 day from {DATASET}.voicemessages)"
        )
        left = db.execute(f"select count(*) from {DATASET}.voicemessages").fetchone()
    assert left is not None and 0 < left[0] < len(expected)
    harness.sync(resources=("voicemessages",))
    assert_voicemails_equal(harness, expected)


def test_a_voicemail_that_cannot_be_typed_goes_to_its_rejects_table(
    duckdb_harness: Harness,
) -> None:
    harness = duckdb_harness
    odd = {
        "id": 99_000_001,
        "origtime": "2026-03-01 10:00:00",
        "caller": "+34910000000",
        "dialled": "101",
        "duration": "long",
        "folder": "INBOX",
        "is_new": True,
    }
    assert harness.admin.post("/collections/voicemessages", json={"records": [odd]}).is_success
    summary = harness.sync(resources=("voicemessages",))
    assert summary.rejected == {"voicemessages_rejects": 1}
    rejects = harness.loaded("voicemessages_rejects")
    assert [r["id"] for r in rejects] == [str(odd["id"])]
    assert "duration" in rejects[0]["reason"] and "long" in rejects[0]["raw"]
    good = [r for r in served(harness) if r["id"] != odd["id"]]
    assert_voicemails_equal(harness, good)
    assert harness.loaded("cdrs_rejects") == []


@pytest.fixture
def beta_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(small_config(seed=12, rows=2000, users=7, queues=2)) as server:
        yield server


def test_each_named_account_has_its_own_voicemail_cursor(
    duckdb_harness: Harness, beta_server: EmulatorServer
) -> None:
    harness = duckdb_harness
    harness.add_account("acme", harness.server)
    harness.add_account("beta", beta_server, start_date="2026-02-27")
    harness.setenv("SOURCES__VOIPSTUDIO__RESOURCES", WITH_VOICEMAIL)
    harness.sync()
    states = resource_states(harness.pipeline())
    assert states["voicemessages_acme"].cursor is not None
    assert states["voicemessages_beta"].cursor is not None
    assert_voicemails_equal(harness, served(harness), account="acme")
    beta = [r for r in served(harness, beta_server) if r["origtime"] >= "2026-02-27 00:00:00"]
    assert_voicemails_equal(harness, beta, account="beta")


def test_the_staging_view_and_status_cover_voicemail(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    env = {"SOURCES__VOIPSTUDIO__RESOURCES": WITH_VOICEMAIL}
    done = harness.cli("sync", **env)
    assert done.returncode == 0, done.stderr
    assert "voicemails" in done.stdout and "skipped" not in done.stdout
    with duckdb.connect(str(harness.db_path), read_only=True) as db:
        rows = db.execute(
            f"select count(*), count(distinct voicemail_id), min(duration_seconds), "
            f"bool_and(end_epoch >= start_epoch), bool_or(is_new) "
            f"from {DATASET}.stg_voipstudio__voicemessages"
        ).fetchone()
    assert rows is not None
    assert rows[0] == rows[1] == len(served(harness)) and rows[2] >= 0 and rows[3] and rows[4]
    status = harness.cli("status", "--json", **env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["rows"]["voicemessages"] == len(served(harness))
    assert report["rows"]["voicemessages_rejects"] == 0
    assert report["accounts"]["default"]["cursors"]["voicemessages"] is not None


def test_without_voicemail_the_models_say_nothing_of_it(duckdb_harness: Harness) -> None:
    done = duckdb_harness.cli("sync")
    assert done.returncode == 0, done.stderr
    assert "skipped" not in done.stdout, done.stdout
    assert " voicemails" not in done.stdout, done.stdout
    status = duckdb_harness.cli("status", "--json")
    assert "voicemessages" not in json.loads(status.stdout)["rows"]
