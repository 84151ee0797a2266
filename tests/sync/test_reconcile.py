"""``voipstudio reconcile`` end to end: real HTTP to the emulator, real DuckDB (and PostgreSQL for
the main scenario). The emulator's data ends an hour before the real clock, so that the default
``--days`` range (the days before the sync's cursor, which is "now") covers it, as it does for a
user's nightly run.

Every scenario starts from a complete sync, then changes the emulator's stored CDRs beyond the
sync's lag (``/_emulator/cdrs/update``, ``/cdrs/delete``, late CDRs), checks that a sync does not
see them, and that reconcile does: rows added, merged again or marked ``deleted_at`` (never
removed), the sync's cursor untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sync_harness import Harness, as_loaded, small_config

from pipelines.cli import main
from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer
from pipelines.emulator.store import Table
from pipelines.reconcile import ReconcileOptions, ReconcileSettings, ReconcileSummary, run_reconcile
from pipelines.status import read_status
from pipelines.sync import read_cursor, sync_lock
from pipelines.voipstudio.errors import ConfigError, LockedError
from pipelines.voipstudio.state import resource_states

REPO = Path(__file__).resolve().parents[2]
API_TIME = "%Y-%m-%d %H:%M:%S"
NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.date()
FIRST_DAY = TODAY - timedelta(days=12)
# dlt stamps `_dlt_load_id` on Arrow rows only when told; the incremental models need it, and
# reconcile stamps its own rows whenever the table has the column.
STAMP_LOAD_IDS = "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"


def recent_config(**overrides: Any) -> EmulatorConfig:
    """A small company whose calls end an hour before the real clock, twelve days long."""
    settings: dict[str, Any] = {
        "start": FIRST_DAY.isoformat(),
        "end": (NOW - timedelta(hours=1)).strftime(API_TIME),
        "now": NOW.strftime(API_TIME),
    }
    settings.update(overrides)
    return small_config(**settings)


def recent_harness(
    server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dsn: str | None = None
) -> Harness:
    harness = Harness(server, tmp_path, monkeypatch, postgres_dsn=dsn)
    harness.setenv("SOURCES__VOIPSTUDIO__START_DATE", FIRST_DAY.isoformat())
    return harness


@pytest.fixture(params=["duckdb", "postgres"])
def recent(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    """A synced pipeline on DuckDB, then on PostgreSQL, stamping load ids as the models need."""
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None
    with EmulatorServer(recent_config()) as server:
        harness = recent_harness(server, tmp_path, monkeypatch, dsn)
        harness.setenv(STAMP_LOAD_IDS, "true")
        harness.sync()
        yield harness


@pytest.fixture
def synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """A synced pipeline on DuckDB."""
    with EmulatorServer(recent_config()) as server:
        harness = recent_harness(server, tmp_path, monkeypatch)
        harness.sync()
        yield harness


# -- helpers -------------------------------------------------------------------------------------


def admin(server: EmulatorServer) -> httpx.Client:
    return httpx.Client(base_url=server.url + "/_emulator", timeout=30)


def update(server: EmulatorServer, changes: dict[int, dict[str, Any]]) -> None:
    updates = [{"id": record_id, "set": values} for record_id, values in changes.items()]
    response = admin(server).post("/cdrs/update", json={"updates": updates})
    assert response.json()["missing"] == [], response.text


def delete(server: EmulatorServer, ids: list[int]) -> None:
    response = admin(server).post("/cdrs/delete", json={"ids": ids})
    assert response.json()["missing"] == [], response.text


def add_late(server: EmulatorServer, count: int, days_ago: int) -> list[int]:
    """CDRs written ``days_ago`` days late: new ids, calldates far beyond any lag."""
    ended = (NOW - timedelta(days=days_ago)).strftime(API_TIME)
    spec = {"count": count, "late_fraction": 0.0, "now": ended}
    ids: list[int] = admin(server).post("/cdrs", json={"generate": spec}).json()["ids"]
    assert len(ids) == count
    return ids


def records(server: EmulatorServer) -> list[dict[str, Any]]:
    return admin(server).get("/cdrs").json()["data"]  # type: ignore[no-any-return]


def on_day(server: EmulatorServer, day: date) -> list[dict[str, Any]]:
    """The emulator's CDRs of a UTC day, in id order."""
    return [r for r in records(server) if r["calldate"].startswith(day.isoformat())]


def busy_days(server: EmulatorServer, first: int, last: int, least: int = 40) -> list[date]:
    """Days from ``first`` to ``last`` days ago with at least ``least`` CDRs (working days)."""
    days = [TODAY - timedelta(days=n) for n in range(last, first - 1, -1)]
    found = [day for day in days if len(on_day(server, day)) >= least]
    assert len(found) >= 2, "the emulator's data must hold busy days in the range"
    return found


def rows(harness: Harness, account: str = "default") -> dict[int, dict[str, Any]]:
    rows = harness.loaded(load_ids=True)
    return {row["id"]: row for row in rows if row["account"] == account}


def reconcile(harness: Harness, **options: Any) -> ReconcileSummary:
    return run_reconcile(harness.pipeline(), ReconcileOptions(**options))


def cdrs_state(harness: Harness) -> dict[str, Any]:
    """The sync's resource states (cursors, ceilings, when each account was synced)."""
    states = resource_states(harness.pipeline())
    return {name: state for name, state in states.items() if not name.startswith("reconcile")}


def cursor_day(harness: Harness, account: str | None = None) -> date:
    cursor = read_cursor(harness.pipeline(), account)
    assert cursor is not None
    return datetime.strptime(cursor, API_TIME).date()


def assert_matches_api(harness: Harness, account: str = "default") -> None:
    """Every CDR the API returns is stored as returned and not marked; every other stored row
    is marked deleted (and still there)."""
    stored = rows(harness, account)
    api = {r["id"]: as_loaded(r) for r in records(harness.server)}
    for record_id, record in api.items():
        row = stored.get(record_id)
        assert row is not None, f"CDR {record_id} is not stored"
        assert row["deleted_at"] is None, f"CDR {record_id} is returned but marked deleted"
        for name, value in record.items():
            got = row[name]
            if isinstance(got, datetime):
                got = got.astimezone(UTC)
            if name == "labels":
                got = json.loads(got)
            assert got == value, (record_id, name, got, value)
    for record_id in set(stored) - set(api):
        assert stored[record_id]["deleted_at"] is not None, f"CDR {record_id} is not marked"


def voipstudio(harness: Harness, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command as a scheduler runs it: its own process."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=REPO,
        env={**os.environ, **harness.env, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


# -- the main scenario ---------------------------------------------------------------------------


def test_late_corrected_moved_and_deleted_rows_are_applied(recent: Harness) -> None:
    harness, server = recent, recent.server
    days = busy_days(server, 2, 6)
    first, second = on_day(server, days[0]), on_day(server, days[-1])
    rerated, moved, moved_away, gone, also_gone = (
        first[3],
        first[10],
        first[20],
        first[30],
        second[5],
    )
    new_charge = round(rerated["charge"] + 1.25, 2)
    moved_to = f"{days[-1]} 23:30:00"
    away_to = f"{TODAY - timedelta(days=10)} 09:15:00"  # before the range: found by id
    update(
        server,
        {
            rerated["id"]: {"charge": new_charge},
            moved["id"]: {"calldate": moved_to},
            moved_away["id"]: {"calldate": away_to},
        },
    )
    delete(server, [gone["id"], also_gone["id"]])
    late = add_late(server, 6, days_ago=3)

    # A sync re-reads only its lag: none of this is seen.
    harness.sync()
    cursor = cdrs_state(harness)
    before = rows(harness)
    assert before[rerated["id"]]["charge"] == rerated["charge"]
    assert gone["id"] in before and not set(late) & set(before)

    summary = reconcile(harness)
    assert summary.exit_code == 0
    result = summary.accounts["default"]
    assert result.status == "ok" and result.applied
    assert result.first == f"{cursor_day(harness) - timedelta(days=7)} 00:00:00"
    assert result.last == read_cursor(harness.pipeline())
    assert result.totals() == {
        "added": 6,
        "changed": 3,
        "restored": 0,
        "deleted": 2,
        "unchanged": result.total("unchanged"),
        "rejected": 0,
    }
    assert result.total("unchanged") > 500
    by_day = {day.date: day for day in result.days}
    assert by_day[days[0]].deleted == 1 and by_day[days[-1]].deleted == 1
    assert by_day[days[-1]].changed >= 1  # the moved row counts where it now is
    assert all(day.status == "verified" for day in result.days)

    after = rows(harness)
    assert after[rerated["id"]]["charge"] == new_charge
    assert after[moved["id"]]["calldate"].astimezone(UTC).strftime(API_TIME) == moved_to
    assert after[moved_away["id"]]["calldate"].astimezone(UTC).strftime(API_TIME) == away_to
    for record_id in (gone["id"], also_gone["id"]):
        assert after[record_id]["deleted_at"] is not None, "a deleted CDR is marked, and kept"
        marked = dict(after[record_id], deleted_at=None, _dlt_load_id=None)
        assert marked == dict(before[record_id], _dlt_load_id=None)
    assert set(late) <= set(after)
    assert_matches_api(harness)
    # Every change went through one dlt load: its id marks exactly the changed rows.
    touched = {rerated["id"], moved["id"], moved_away["id"], gone["id"], also_gone["id"], *late}
    for record_id, row in after.items():
        if record_id in touched:
            assert row["_dlt_load_id"] == summary.load_id, record_id
        else:
            assert row["_dlt_load_id"] == before[record_id]["_dlt_load_id"], record_id
            assert row == before[record_id]
    assert cdrs_state(harness) == cursor, "reconcile must not move the sync's cursor"

    # Nothing left to find: a second run changes nothing and loads nothing.
    again = reconcile(harness)
    assert again.exit_code == 0 and again.load_id is None
    totals = again.accounts["default"].totals()
    # The late rows and the changed ones now agree; the row moved away is out of the range.
    assert totals["unchanged"] == result.total("unchanged") + 6 + 2
    assert totals["added"] == totals["changed"] == totals["deleted"] == totals["restored"] == 0
    assert rows(harness) == after
    # And a sync afterwards leaves the marks alone (the rows are beyond its lag).
    harness.sync()
    assert rows(harness)[gone["id"]]["deleted_at"] is not None


# -- marks undone ----------------------------------------------------------------------------------


def test_a_marked_row_the_api_returns_again_is_unmarked(synced: Harness) -> None:
    harness, server = synced, synced.server
    day = busy_days(server, 2, 6)[0]
    target = on_day(server, day)[7]
    delete(server, [target["id"]])
    marked = reconcile(harness)
    assert marked.accounts["default"].total("deleted") == 1
    assert rows(harness)[target["id"]]["deleted_at"] is not None

    # The CDR comes back (a deletion undone): reconcile restores it, as the API returns it.
    admin(server).post("/cdrs", json={"records": [target]})
    restored = reconcile(harness)
    assert restored.exit_code == 0
    day_result = next(d for d in restored.accounts["default"].days if d.date == day)
    assert (day_result.restored, day_result.deleted, day_result.changed) == (1, 0, 0)
    assert rows(harness)[target["id"]]["deleted_at"] is None
    assert_matches_api(harness)


def test_the_sync_unmarks_a_row_it_reads_again(synced: Harness) -> None:
    harness, server = synced, synced.server
    cursor = read_cursor(harness.pipeline())
    assert cursor is not None
    lag_start = (datetime.strptime(cursor, API_TIME) - timedelta(hours=5)).strftime(API_TIME)
    recent_rows = [r for r in records(server) if r["calldate"] > lag_start]
    assert recent_rows, "the data must reach into the sync's lag"
    target = recent_rows[0]
    delete(server, [target["id"]])
    assert reconcile(harness).accounts["default"].total("deleted") == 1
    admin(server).post("/cdrs", json={"records": [target]})
    # The sync re-reads its lag, returns the row, and its merge leaves deleted_at null.
    harness.sync()
    assert rows(harness)[target["id"]]["deleted_at"] is None
    assert_matches_api(harness)


# -- the mass-marking guard ------------------------------------------------------------------------


def test_a_plain_users_key_is_refused_and_changes_nothing(synced: Harness) -> None:
    harness, server = synced, synced.server
    day = busy_days(server, 2, 6)[0]
    target = on_day(server, day)[4]
    update(server, {target["id"]: {"charge": 77.7}})  # a real correction: not applied either
    before = rows(harness)
    cursor = cdrs_state(harness)

    result = voipstudio(
        harness, "reconcile", "--json", SOURCES__VOIPSTUDIO__API_KEY="demo-user-key"
    )
    assert result.returncode == 9, result.stderr
    report = json.loads(result.stdout)
    assert report["exit_code"] == 9 and report["load_id"] is None
    account = report["accounts"]["default"]
    assert account["status"] == "refused" and account["applied"] is False
    assert account["totals"]["deleted"] == 0
    refused_days = [d for d in account["days"] if d["status"] == "too many missing"]
    assert refused_days and all(d["missing"] > d["stored_rows"] / 2 for d in refused_days)
    for text in (account["error"], result.stderr):
        assert "refused to mark CDRs deleted" in text
        assert "admin scope" in text and "retention" in text
    assert "RECONCILE__MAX_DELETED_SHARE=1" in account["error"]
    assert "Traceback" not in result.stderr
    assert rows(harness) == before, "a refused account is left exactly as it was"
    assert cdrs_state(harness) == cursor


def test_a_day_losing_too_many_rows_is_refused_until_allowed(synced: Harness) -> None:
    harness, server = synced, synced.server
    days = busy_days(server, 2, 6)
    victims = on_day(server, days[0])
    gone = [r["id"] for r in victims[: len(victims) // 3]]
    delete(server, gone)
    rerated = on_day(server, days[-1])[2]
    update(server, {rerated["id"]: {"charge": 55.5}})
    before = rows(harness)

    refused = reconcile(harness)
    assert refused.exit_code == 9
    result = refused.accounts["default"]
    assert result.status == "refused" and not result.applied and refused.load_id is None
    day = next(d for d in result.days if d.date == days[0])
    assert day.status == "too many missing" and day.missing == len(gone)
    assert f"on {days[0]}, {len(gone)} of its {day.stored_rows} stored CDRs" in (result.error or "")
    assert rows(harness) == before

    # Real deletions, once checked: allowed for one run.
    harness.setenv("RECONCILE__MAX_DELETED_SHARE", "1")
    allowed = reconcile(harness)
    assert allowed.exit_code == 0
    assert allowed.accounts["default"].total("deleted") == len(gone)
    assert rows(harness)[rerated["id"]]["charge"] == 55.5
    assert_matches_api(harness)


def test_a_small_day_may_lose_a_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = TODAY - timedelta(days=14)  # before the generated calls: only these three
    with EmulatorServer(recent_config()) as server:
        harness = recent_harness(server, tmp_path, monkeypatch)
        harness.setenv("SOURCES__VOIPSTUDIO__START_DATE", (quiet - timedelta(days=1)).isoformat())
        hand_made = [
            {"id": n, "calldate": f"{quiet} 1{n}:00:00", "type": "O", "charge": 0.5}
            for n in (1, 2, 3)
        ]
        admin(server).post("/cdrs", json={"records": hand_made})
        harness.sync()
        delete(server, [2])
        summary = reconcile(harness, days=15)
        assert summary.exit_code == 0
        day = next(d for d in summary.accounts["default"].days if d.date == quiet)
        # A third of the day, but one CDR: within max_deleted_rows (2).
        assert (day.stored_rows, day.api_rows, day.deleted, day.status) == (3, 2, 1, "verified")
        assert rows(harness)[2]["deleted_at"] is not None


def test_the_guard_allows_a_share_or_a_few_rows_whichever_is_more() -> None:
    guard = ReconcileSettings()
    assert (guard.days, guard.max_deleted_share, guard.max_deleted_rows) == (7, 0.05, 2)
    assert guard.allowed(3) == 2  # a day of 3 CDRs may lose 1 or 2, never all 3
    assert guard.allowed(0) == 2
    assert guard.allowed(100) == 5
    assert guard.allowed(1000) == 50
    assert ReconcileSettings(max_deleted_share=0.0, max_deleted_rows=0).allowed(10_000) == 0
    assert ReconcileSettings(max_deleted_share=1.0).allowed(10) == 10


def test_a_row_the_api_returns_unreadable_is_rejected_never_marked(synced: Harness) -> None:
    harness, server = synced, synced.server
    day = busy_days(server, 2, 6)[0]
    target = on_day(server, day)[8]
    before = rows(harness)[target["id"]]
    patch = {"updates": [{"id": target["id"], "set": {"duration": "n/a"}}]}
    assert admin(server).post("/cdrs/patch", json=patch).json()["patched"] == 1
    summary = reconcile(harness)
    assert summary.exit_code == 0
    day_result = next(d for d in summary.accounts["default"].days if d.date == day)
    assert (day_result.rejected, day_result.deleted, day_result.changed) == (1, 0, 0)
    assert rows(harness)[target["id"]] == before, "its stored version stays, unmarked"
    rejects = harness.loaded("cdrs_rejects")
    assert [r["id"] for r in rejects] == [str(target["id"])]
    assert "duration" in rejects[0]["reason"]


# -- incomplete reads ------------------------------------------------------------------------------


def test_a_day_that_does_not_add_up_applies_and_marks_nothing(
    synced: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness, server = synced, synced.server
    days = busy_days(server, 2, 6)
    broken, fine = days[0], days[-1]
    on_broken, on_fine = on_day(server, broken), on_day(server, fine)
    delete(server, [on_broken[5]["id"]])
    update(server, {on_broken[6]["id"]: {"charge": 11.1}, on_fine[6]["id"]: {"charge": 22.2}})
    before = rows(harness)
    # An API whose pages of that day never hold the `total` they report (the emulator's page
    # evaluation is wrapped in this process): the day's windows never add up.
    low = datetime.combine(broken, datetime.min.time(), tzinfo=UTC).timestamp() - 1
    select = Table.select

    def overcounting(self: Table, query: Any) -> Any:
        positions, total = select(self, query)
        in_day = any(
            c.field == "calldate" and c.op == "gt" and low <= c.value < low + 86_400
            for c in query.conditions
        )
        return positions, total + 1 if in_day and query.limit > 1 else total

    monkeypatch.setattr(Table, "select", overcounting)
    summary = reconcile(harness)
    assert summary.exit_code == 5
    result = summary.accounts["default"]
    assert result.status == "incomplete" and result.applied
    by_day = {day.date: day for day in result.days}
    assert by_day[broken].status == "incomplete" and "did not add up" in (
        by_day[broken].error or ""
    )
    assert (by_day[broken].deleted, by_day[broken].changed) == (0, 0)
    assert f"({broken})" in (result.error or "")
    after = rows(harness)
    assert after[on_broken[5]["id"]] == before[on_broken[5]["id"]], "never marked"
    assert after[on_broken[6]["id"]]["charge"] == before[on_broken[6]["id"]]["charge"]
    assert after[on_fine[6]["id"]]["charge"] == 22.2, "the other days are applied"

    monkeypatch.setattr(Table, "select", select)
    assert reconcile(harness).exit_code == 0
    assert_matches_api(harness)


# -- several accounts ------------------------------------------------------------------------------


def test_several_accounts_each_with_its_days_and_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        EmulatorServer(recent_config()) as acme,
        EmulatorServer(recent_config(seed=12, rows=2000, users=7, queues=2)) as beta,
    ):
        harness = recent_harness(acme, tmp_path, monkeypatch)
        harness.add_account("acme", acme)
        harness.add_account("beta", beta, timezone="America/Mexico_City")
        harness.sync()
        acme_day, beta_day = busy_days(acme, 2, 6)[0], busy_days(beta, 2, 6)[0]
        acme_gone = on_day(acme, acme_day)[3]["id"]
        beta_rerated, beta_gone = on_day(beta, beta_day)[3], on_day(beta, beta_day)[9]
        delete(acme, [acme_gone])
        update(beta, {beta_rerated["id"]: {"charge": 3.3}})
        delete(beta, [beta_gone["id"]])
        cursor = cdrs_state(harness)

        assert main(["reconcile", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        acme_result, beta_result = report["accounts"]["acme"], report["accounts"]["beta"]
        assert acme_result["totals"]["deleted"] == 1 and acme_result["totals"]["changed"] == 0
        assert beta_result["totals"]["deleted"] == 1 and beta_result["totals"]["changed"] == 1
        assert beta_result["timezone"] == "America/Mexico_City"
        # Each account's days are its own zone's, up to its own cursor.
        assert beta_result["last"] == read_cursor(harness.pipeline(), "beta")
        beta_first = cursor_day(harness, "beta") - timedelta(days=7)
        assert beta_result["first"] == f"{beta_first} 00:00:00"
        acme_rows, beta_rows = rows(harness, "acme"), rows(harness, "beta")
        assert acme_rows[acme_gone]["deleted_at"] is not None
        assert beta_rows[beta_gone["id"]]["deleted_at"] is not None
        assert beta_rows[beta_rerated["id"]]["charge"] == 3.3
        # Ids repeat across accounts: only each account's own row was touched.
        if acme_gone in beta_rows:
            assert beta_rows[acme_gone]["deleted_at"] is None

        # One account refused: the other is still applied; the exit code is the refusal's.
        rerated = on_day(acme, acme_day)[11]
        update(acme, {rerated["id"]: {"charge": 4.4}})
        harness.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__API_KEY", "demo-user-key")
        before_beta = rows(harness, "beta")
        assert main(["reconcile", "--json"]) == 9
        captured = capsys.readouterr()
        report = json.loads(captured.out)
        assert report["accounts"]["beta"]["status"] == "refused"
        assert report["accounts"]["acme"]["status"] == "ok"
        assert report["accounts"]["acme"]["totals"]["changed"] == 1
        assert "account 'beta': refused to mark CDRs deleted" in captured.err
        assert rows(harness, "acme")[rerated["id"]]["charge"] == 4.4
        assert rows(harness, "beta") == before_beta
        assert cdrs_state(harness) == cursor


# -- the command: lock, counts, dry run, text, options ---------------------------------------------


def test_reconcile_holds_the_sync_lock(synced: Harness) -> None:
    harness, server = synced, synced.server
    target = on_day(server, busy_days(server, 2, 6)[0])[3]
    delete(server, [target["id"]])
    with sync_lock(harness.pipeline()):
        with pytest.raises(LockedError):
            reconcile(harness)
        running = voipstudio(harness, "reconcile")
    assert running.returncode == 75, running.stderr
    assert "another sync of pipeline 'voipstudio' is running" in running.stderr
    assert rows(harness)[target["id"]]["deleted_at"] is None


def test_counts_only_rereads_the_days_whose_counts_differ(synced: Harness) -> None:
    harness, server = synced, synced.server
    old = busy_days(server, 8, 11)
    counted, blind = old[0], old[-1]
    on_counted, on_blind = on_day(server, counted), on_day(server, blind)
    delete(server, [on_counted[4]["id"]])
    update(server, {on_counted[5]["id"]: {"charge": 6.6}, on_blind[5]["id"]: {"charge": 7.7}})

    summary = reconcile(harness, since=FIRST_DAY.isoformat(), counts_only=True)
    assert summary.exit_code == 0
    by_day = {day.date: day for day in summary.accounts["default"].days}
    assert by_day[counted].mode == "read" and by_day[counted].status == "verified"
    assert (by_day[counted].deleted, by_day[counted].changed) == (1, 1)
    # Counts cannot see a correction: the other day's counts agree, it is not re-read.
    assert by_day[blind].mode == "counts" and by_day[blind].status == "counts agree"
    assert by_day[blind].api_rows == by_day[blind].stored_rows == len(on_blind)
    read = [day for day in by_day.values() if day.mode == "read"]
    assert len(read) == 1
    after = rows(harness)
    assert after[on_counted[4]["id"]]["deleted_at"] is not None
    assert after[on_counted[5]["id"]]["charge"] == 6.6
    assert after[on_blind[5]["id"]]["charge"] != 7.7
    # A full re-read of the range finds the correction.
    assert reconcile(harness, since=FIRST_DAY.isoformat()).accounts["default"].total("changed") == 1
    assert_matches_api(harness)


def test_dry_run_reports_and_applies_nothing(synced: Harness) -> None:
    harness, server = synced, synced.server
    target = on_day(server, busy_days(server, 2, 6)[0])[3]
    delete(server, [target["id"]])
    add_late(server, 2, days_ago=2)
    before = rows(harness)
    result = voipstudio(harness, "reconcile", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run, nothing applied: 2 late CDRs added" in result.stdout
    assert "1 marked deleted" in result.stdout and "nothing loaded" in result.stdout
    assert rows(harness) == before
    applied = voipstudio(harness, "reconcile")
    assert applied.returncode == 0, applied.stderr
    assert "ok, applied: 2 late CDRs added" in applied.stdout
    assert rows(harness)[target["id"]]["deleted_at"] is not None


def test_bad_options_are_configuration_errors(synced: Harness) -> None:
    with pytest.raises(ConfigError, match="--days must be from 1"):
        reconcile(synced, days=0)
    with pytest.raises(ConfigError, match="not both"):
        reconcile(synced, days=3, since="2026-01-01")
    with pytest.raises(ConfigError, match="--since"):
        reconcile(synced, since="last week")
    with pytest.raises(ConfigError, match="unknown account"):
        reconcile(synced, accounts=("nope",))
    synced.setenv("RECONCILE__MAX_DELETED_SHARE", "lots")
    with pytest.raises(ConfigError, match="RECONCILE__MAX_DELETED_SHARE"):
        reconcile(synced)
    synced.setenv("RECONCILE__MAX_DELETED_SHARE", "5")
    with pytest.raises(ConfigError, match="from 0 to 1"):
        reconcile(synced)


def test_nothing_synced_yet_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with EmulatorServer(recent_config()) as server:
        harness = recent_harness(server, tmp_path, monkeypatch)
        summary = reconcile(harness)
    assert summary.exit_code == 0 and summary.load_id is None
    assert summary.accounts["default"].status == "skipped"


def test_status_shows_each_accounts_last_reconcile(recent: Harness) -> None:
    harness, server = recent, recent.server
    assert read_status(harness.pipeline()).accounts["default"].reconcile is None

    # A dry run is no reconcile: nothing recorded.
    reconcile(harness, dry_run=True)
    assert harness.loaded("reconcile_runs") == []

    # Nothing to change: recorded all the same, without touching a CDR.
    before = rows(harness)
    quiet = reconcile(harness)
    assert quiet.exit_code == 0 and quiet.load_id is None
    assert rows(harness) == before
    status = read_status(harness.pipeline()).accounts["default"]
    assert status.reconcile is not None and status.reconcile.status == "ok"
    assert status.reconcile.at is not None and status.reconciled_ok_at == status.reconcile.at

    # Refused by the guard: the refusal is the last reconcile; the last ok one is kept.
    days = busy_days(server, 2, 6)
    victims = on_day(server, days[0])
    delete(server, [r["id"] for r in victims[: len(victims) // 3]])
    refused = reconcile(harness)
    assert refused.exit_code == 9
    runs = harness.loaded("reconcile_runs")
    assert [run["status"] for run in sorted(runs, key=lambda r: r["reconciled_at"])] == [
        "ok",
        "refused",
    ]
    assert runs[-1]["days"] == len(refused.accounts["default"].days)
    later = read_status(harness.pipeline()).accounts["default"]
    assert later.reconcile is not None and later.reconcile.status == "refused"
    assert "refused to mark CDRs deleted" in (later.reconcile.error or "")
    assert later.reconciled_ok_at == status.reconciled_ok_at

    shown = voipstudio(harness, "status")
    assert shown.returncode == 0, shown.stderr
    assert "last reconcile:" in shown.stdout and "refused" in shown.stdout
    as_json = json.loads(voipstudio(harness, "status", "--json").stdout)
    assert as_json["accounts"]["default"]["reconcile"]["status"] == "refused"
