"""Odd data end to end (issue 12, items 4-8): real HTTP to the emulator, real DuckDB (and
PostgreSQL where the destination matters).

- wall-clock ``calldate`` texts across a daylight-saving change, checked against the same
  company served in UTC;
- values no column holds (beyond 64 bits, beyond a double, NaN, bytes that are not UTF-8):
  the one record is rejected, the rest of its page loads, nothing is retried;
- undeclared fields whose names collide or whose types flip between syncs;
- loads the destination refuses, and load packages left pending: never a wedge.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest
from sync_harness import DATASET, Harness, assert_cdrs_equal, small_config

from pipelines.console import describe, root_cause
from pipelines.emulator.server import EmulatorServer
from pipelines.sync import read_cursor, stamp_load_ids
from pipelines.voipstudio import voipstudio_source
from pipelines.voipstudio.errors import LoadFailedError

MADRID = "Europe/Madrid"
# Europe/Madrid repeats 02:00-02:59 on this night; the company's calls go on all night.
NIGHT = {
    "seed": 7,
    "rows": 400,
    "start": "2026-10-20",
    "end": "2026-10-24 21:00:00",
    "now": "2026-10-26 12:00:00",
}
NIGHT_START = datetime(2026, 10, 24, 21, tzinfo=UTC)
FOLD_AT = datetime(2026, 10, 25, 1, tzinfo=UTC)


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _night_calls(server: EmulatorServer) -> None:
    """Calls ending every 3 minutes through the night (ids in the order they end)."""
    with httpx.Client(base_url=server.url + "/_emulator", timeout=30) as admin:
        for minute in range(0, 7 * 60, 3):
            now = (NIGHT_START + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:%S")
            spec = {"count": 2, "late_fraction": 0.3, "max_late_seconds": 5400, "now": now}
            assert admin.post("/cdrs", json={"generate": spec}).status_code == 200


@pytest.fixture
def night(make_harness: Any) -> Iterator[tuple[Harness, list[dict[str, Any]]]]:
    """A harness on the company served in Madrid's wall clock, and the same company's CDRs
    as served in UTC (the truth: same seed, same calls, same ids)."""
    harness: Harness = make_harness(**NIGHT, calldate_timezone=MADRID)
    _night_calls(harness.server)
    with EmulatorServer(small_config(**NIGHT)) as twin:
        _night_calls(twin)
        truth = httpx.get(twin.url + "/_emulator/cdrs", timeout=30).json()["data"]
    harness.setenv("SOURCES__VOIPSTUDIO__TIMEZONE", MADRID)
    harness.setenv("SOURCES__VOIPSTUDIO__START_DATE", "2026-10-20")
    # Five CDRs a page, windows of at most 50: both cut the repeated hour many times.
    harness.setenv("SOURCES__VOIPSTUDIO__PAGE_SIZE", "5")
    yield harness, truth


def _assert_night_loaded(harness: Harness, truth: list[dict[str, Any]]) -> None:
    assert_cdrs_equal(harness, truth)  # every field, calldate as the true UTC instant
    served = {r["id"]: r["calldate"] for r in harness.emulator_cdrs()}
    for row in harness.loaded():
        assert row["calldate_raw"] == served[row["id"]], row["id"]


def test_wall_clock_times_across_the_repeated_hour(
    night: tuple[Harness, list[dict[str, Any]]],
) -> None:
    harness, truth = night
    served = {r["id"]: r["calldate"] for r in harness.emulator_cdrs()}
    in_hour = [r for r in truth if served[r["id"]].startswith("2026-10-25 02:")]
    first = [r for r in in_hour if _utc(r["calldate"]) < FOLD_AT]
    # The data must fill both passes, more than a window holds, or this proves nothing.
    assert len(first) >= 15 and len(in_hour) - len(first) >= 15
    assert len(in_hour) > 50
    harness.sync()
    _assert_night_loaded(harness, truth)
    # Read again (the lag covers the night): nothing changes.
    before = harness.loaded()
    harness.sync(start="2026-10-24 23:30:00")
    assert harness.loaded() == before


def test_repeated_hour_committed_in_parts(night: tuple[Harness, list[dict[str, Any]]]) -> None:
    harness, truth = night
    # Parts of 40 CDRs end inside the repeated hour; the next part starts before it again.
    summary = harness.sync(commit_every_rows=40)
    assert summary.loads > 5
    _assert_night_loaded(harness, truth)


def test_skipped_hour_and_a_cdr_alone_in_the_repeated_hour(make_harness: Any) -> None:
    harness: Harness = make_harness(
        rows=50,
        start="2026-03-25",
        end="2026-03-28",
        now="2026-11-01 00:00:00",
        calldate_timezone=MADRID,
    )
    harness.setenv("SOURCES__VOIPSTUDIO__TIMEZONE", MADRID)
    harness.setenv("SOURCES__VOIPSTUDIO__START_DATE", "2026-03-25")
    top = harness.state()["max_cdr_id"]
    template = {k: v for k, v in harness.emulator_cdrs()[0].items() if k != "id"}
    records = [
        {**template, "id": top + 1, "calldate": "2026-03-29 02:30:00"},  # does not exist
        {**template, "id": top + 2, "calldate": "2026-10-25 02:30:00", "duration": 60},
    ]
    assert harness.admin.post("/cdrs", json={"records": records}).status_code == 200
    harness.sync()
    loaded = {row["id"]: row for row in harness.loaded()}
    # As if the clock had not moved yet: 02:30 at UTC+1.
    assert loaded[top + 1]["calldate"].astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert loaded[top + 1]["calldate_raw"] == "2026-03-29 02:30:00"
    # Nothing tells which pass: the first (documented), and the text is kept.
    assert loaded[top + 2]["calldate"].astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert loaded[top + 2]["calldate_raw"] == "2026-10-25 02:30:00"
    assert len(loaded) == 52


# -- values no column holds ------------------------------------------------------------------


def test_odd_values_reject_their_record_and_load_the_rest(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    # One attempt per request: a page taken for a network fault would fail the sync.
    harness.setenv("SOURCES__VOIPSTUDIO__MAX_ATTEMPTS", "1")
    records = harness.emulator_cdrs()
    ids = [r["id"] for r in records[100:112]]
    raw = {
        ids[0]: {"duration": "18446744073709551615"},
        ids[1]: {"billsec": "123456789012345678901234567890"},
        ids[2]: {"charge": "1e400"},
        ids[3]: {"rate": "NaN"},
        ids[4]: {"nb_notes": "-Infinity"},
        # Liberal: taken as they mean.
        ids[5]: {"duration": '"42"'},
        ids[6]: {"labels": "null"},
        ids[7]: {"labels": '"vip"'},
        ids[8]: {"src": "123456789012345678901234567890"},
        ids[9]: {"info": '"tab\\there \\u0000nul"'},
        ids[10]: {"score": "18446744073709551616"},
    }
    updates = [{"id": i, "raw": values} for i, values in raw.items()]
    updates.append(
        {"id": ids[11], "raw_base64": {"src_name": base64.b64encode(b'"Jos\xe9"').decode()}}
    )
    response = harness.admin.post("/cdrs/raw", json={"updates": updates})
    assert response.json() == {"patched": 12, "missing": []}
    summary = harness.sync()
    assert summary.rejects == 5
    rejects = {row["id"]: row for row in harness.loaded("cdrs_rejects")}
    assert set(rejects) == {str(i) for i in ids[:5]}
    assert "beyond the 64-bit integer range" in rejects[str(ids[0])]["reason"]
    assert "beyond the 64-bit integer range" in rejects[str(ids[1])]["reason"]
    assert rejects[str(ids[2])]["reason"] == "charge: 1e400 is beyond the range of a double"
    assert rejects[str(ids[3])]["reason"] == "rate: NaN is not a number"
    assert rejects[str(ids[4])]["reason"] == "nb_notes: -Infinity is not an integer"
    assert '"billsec":123456789012345678901234567890' in rejects[str(ids[1])]["raw"]
    expected = {r["id"]: dict(r) for r in records if r["id"] not in ids[:5]}
    expected[ids[5]]["duration"] = 42
    expected[ids[6]]["labels"] = None
    expected[ids[7]]["labels"] = ["vip"]
    expected[ids[8]]["src"] = "123456789012345678901234567890"
    expected[ids[9]]["info"] = "tab\there \ufffdnul"
    expected[ids[11]]["src_name"] = "Jos\ufffd"
    assert_cdrs_equal(harness, list(expected.values()))
    loaded = {row["id"]: row for row in harness.loaded()}
    assert loaded[ids[10]]["extra_fields"] == '{"score":18446744073709551616}'
    # Read again: the same rejects, not twice.
    harness.sync(start="2026-02-01")
    assert len(harness.loaded("cdrs_rejects")) == 5


# -- undeclared fields -----------------------------------------------------------------------


def test_undeclared_fields_collide_and_flip_without_failing(harness: Harness) -> None:
    harness.sync()
    columns = set(harness.loaded()[0])
    harness.configure(extra_fields={"Billsec": 7, "src-name": "x", "score": 3})
    harness.sync()
    rows = harness.loaded()
    assert set(rows[0]) == columns, "an undeclared field became a column"
    carrying = [row for row in rows if row["extra_fields"] is not None]
    assert carrying, "no row was read again in the lag window"
    assert all(
        json.loads(row["extra_fields"]) == {"Billsec": 7, "score": 3, "src-name": "x"}
        for row in carrying
    )
    harness.configure(extra_fields={"score": "n/a"})
    harness.sync()
    flipped = [row for row in harness.loaded() if row["extra_fields"] is not None]
    assert {row["extra_fields"] for row in flipped} >= {'{"score":"n/a"}'}
    harness.configure(extra_fields=None)
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_a_dataset_with_per_field_columns_keeps_loading(duckdb_harness: Harness) -> None:
    """Datasets loaded before extra_fields have a column per undeclared field (here
    ``recording_url``); new values go to extra_fields, and what was loaded stays."""
    harness = duckdb_harness
    harness.sync()
    pipeline = harness.pipeline()
    old = harness.loaded()[0]
    legacy = {
        k: v
        for k, v in old.items()
        if not k.startswith("_dlt") and k not in ("calldate_raw", "extra_fields")
    }
    # As an earlier version loaded it: an Arrow table with a column for the field (stamped
    # with its load id, as every load into the table must be now).
    with stamp_load_ids():
        pipeline.run(
            pa.Table.from_pylist([{**legacy, "recording_url": "old.wav"}]),
            table_name="cdrs",
            write_disposition={"disposition": "merge", "strategy": "delete-insert"},
            primary_key=("account", "id"),
        )
    assert harness.loaded()[0]["recording_url"] == "old.wav"
    harness.configure(extra_fields={"recording_url": "new.wav"})
    harness.sync()
    rows = {row["id"]: row for row in harness.loaded()}
    assert rows[old["id"]]["recording_url"] == "old.wav", "an old row was changed"
    reread = [row for row in rows.values() if row["extra_fields"] is not None]
    assert reread and all(row["recording_url"] is None for row in reread)
    assert all(json.loads(row["extra_fields"]) == {"recording_url": "new.wav"} for row in reread)


# -- loads that fail -------------------------------------------------------------------------


def _alter(harness: Harness, sql: str) -> None:
    with duckdb.connect(str(harness.db_path)) as db:
        db.execute(sql)


def test_a_load_the_destination_refuses_never_wedges(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.sync()
    before, cursor = harness.loaded(), read_cursor(harness.pipeline())
    # The destination's column no longer takes text (a type the API's data cannot fit).
    _alter(harness, f"alter table {DATASET}.cdrs alter extra_fields type bigint")
    harness.configure(extra_fields={"score": 3})
    for _ in range(2):
        with pytest.raises(Exception) as raised:
            harness.sync()
        message, code = describe(raised.value)
        assert isinstance(root_cause(raised.value), LoadFailedError) and code == 1
        assert "the destination refused the load of this sync" in message
        assert "Could not convert string" in message and "read" in message
        assert not harness.pipeline().has_pending_data, "the refused package stayed pending"
        assert read_cursor(harness.pipeline()) == cursor, "the cursor passed data not loaded"
        assert harness.loaded() == before
    # The API stops sending the value: the next sync loads (item 8 wedged here for good).
    harness.configure(extra_fields=None)
    harness.admin.post("/cdrs", json={"generate": {"count": 5, "late_fraction": 0.0}})
    harness.sync()
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_a_package_an_earlier_version_left_wedged_is_set_aside(duckdb_harness: Harness) -> None:
    """Before this version, a refused package stayed pending and failed every later sync."""
    harness = duckdb_harness
    harness.sync()
    _alter(harness, f"alter table {DATASET}.cdrs alter extra_fields type bigint")
    harness.configure(extra_fields={"score": 3})
    harness.setenv("LOAD__AUTO_ABORT_ON_TERMINAL_ERROR", "false")  # as earlier versions ran
    with pytest.raises(Exception, match="kept in a load package"):
        harness.sync()
    assert harness.pipeline().has_pending_data
    harness.delenv("LOAD__AUTO_ABORT_ON_TERMINAL_ERROR")
    # The API no longer serves the value: the stale package is aborted, the sync goes on.
    harness.configure(extra_fields=None)
    harness.sync()
    assert not harness.pipeline().has_pending_data
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def _leave_a_pending_package(harness: Harness) -> Any:
    """A sync that stopped after normalizing (killed, or its load failed transiently)."""
    pipeline = harness.pipeline()
    pipeline.extract(voipstudio_source())
    pipeline.normalize()
    assert pipeline.has_pending_data
    return pipeline


def test_a_package_left_pending_is_loaded_first(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    _leave_a_pending_package(harness)
    harness.admin.post("/cdrs", json={"generate": {"count": 5, "late_fraction": 0.0}})
    harness.sync()
    assert not harness.pipeline().has_pending_data
    # The new CDRs were read too: dlt's run() alone would have loaded the package only.
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_a_pending_package_that_keeps_failing_has_a_way_out(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    pipeline = _leave_a_pending_package(harness)
    jobs = list(Path(pipeline.working_dir).glob("load/normalized/*/new_jobs/cdrs.*"))
    assert jobs
    for job in jobs:  # a file the destination cannot read (a disk that filled up)
        job.write_bytes(b"PAR1 not really")
    for _ in range(2):
        with pytest.raises(Exception) as raised:
            harness.sync()
        message, code = describe(raised.value)
        assert code == 1 and "left by an earlier sync" in message
        assert "voipstudio sync --abort-pending" in message
        assert harness.pipeline().has_pending_data
    assert harness.loaded() == []
    summary = harness.sync(abort_pending=True)
    assert not harness.pipeline().has_pending_data
    assert summary.cdrs_new == len(harness.emulator_cdrs())
    assert_cdrs_equal(harness, harness.emulator_cdrs())
