"""Reading ahead across the parts of a run committed in parts (``voipstudio/readahead.py``):
with an API that answers slowly, a backfill ends parts early and reads the next part while dlt
loads the one before, and nothing a user relies on changes: every CDR once, each part holding
only the CDRs of the windows its cursor passed, no more requests in flight than the
concurrency, and a failure leaves the state of the last committed part. Real HTTP to the
emulator (with latency); the emulator counts the requests in flight itself. No timing
assertions: whether the reading waits on the API is forced either way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sync_harness import Harness, assert_cdrs_equal

import pipelines.sync as sync_module
from pipelines.emulator.app import Emulator
from pipelines.voipstudio import readahead, reader, windows
from pipelines.voipstudio.errors import DataCheckError
from pipelines.voipstudio.state import resource_states

CONCURRENCY = 4


class InFlight:
    """The ``/cdrs`` requests the emulator is answering at once, counted by the emulator."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 0
        self.most = 0
        self.served = 0
        self.lock = threading.Lock()
        answer = Emulator.__call__

        async def counted(app: Emulator, scope: Any, receive: Any, send: Any) -> None:
            cdrs = scope.get("type") == "http" and scope.get("path", "").endswith("/cdrs")
            if cdrs:
                with self.lock:
                    self.now += 1
                    self.most = max(self.most, self.now)
            try:
                await answer(app, scope, receive, send)
            finally:
                if cdrs:
                    with self.lock:
                        self.now -= 1
                        self.served += 1

        monkeypatch.setattr(Emulator, "__call__", counted)


class Parts:
    """Each part's load id and the cdrs cursor it committed, and what each part found read
    ahead when it took the read over."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.cursors: dict[str, str | None] = {}
        self.order: list[str] = []
        self.ahead: list[int] = []
        run = sync_module.run_pipeline

        def recorded(pipeline: Any, source: Any, **kwargs: Any) -> Any:
            result = run(pipeline, source, **kwargs)
            info = pipeline.last_trace.last_load_info
            for load_id in info.loads_ids:
                self.order.append(load_id)
                self.cursors[load_id] = resource_states(pipeline)["cdrs"].cursor
            return result

        monkeypatch.setattr(sync_module, "run_pipeline", recorded)
        take = readahead.take_over

        def taken(key: Any, start: int, end: int) -> Any:
            read = take(key, start, end)
            if read is not None:
                self.ahead.append(read.events.qsize() + len(read.held))
            return read

        monkeypatch.setattr(reader, "take_over", taken)


@pytest.fixture
def slow(make_harness: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """An emulator that answers every request after 30 ms, a sync with 4 request slots, and
    parts small enough for its 3000 CDRs (100 a page) to make several."""
    monkeypatch.setattr(readahead, "MIN_PART_ROWS", 300)
    monkeypatch.setattr(readahead, "FINAL_PART_ROWS", 300)
    harness = make_harness(latency_per_request_ms=30.0)
    yield harness


def waits_on_api(monkeypatch: pytest.MonkeyPatch, waits: bool) -> None:
    """Whether each part's reading counts as waiting on the API (it depends on the machine's
    load otherwise)."""
    monkeypatch.setattr(readahead, "CPU_BOUND_CORES", 1e9 if waits else 0.0)


def test_slow_api_reads_the_next_part_while_dlt_loads(
    slow: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits_on_api(monkeypatch, True)
    in_flight = InFlight(monkeypatch)
    parts = Parts(monkeypatch)
    expected = slow.emulator_cdrs()
    summary = slow.sync()
    assert summary.loads >= 3, "a slow API's backfill is loaded in parts"
    assert_cdrs_equal(slow, expected)
    # The request slots were all used, never more.
    assert in_flight.most == CONCURRENCY
    # Every later part continued the read of the part before, and found pages read ahead.
    assert len(parts.ahead) == summary.loads - 1
    assert all(ahead > 0 for ahead in parts.ahead), parts.ahead
    # Each part holds only CDRs of the windows its cursor passed, after the part before's.
    rows = slow.loaded(load_ids=True)
    previous = None
    for load_id in parts.order:
        cursor = parts.cursors[load_id]
        assert cursor is not None
        held = [row for row in rows if row["_dlt_load_id"] == load_id]
        assert held, f"part {load_id} loaded nothing"
        for row in held:
            calldate = api_time_of(row["calldate"])
            assert calldate <= cursor, f"CDR {row['id']} past its part's cursor {cursor}"
            assert previous is None or calldate > previous
        previous = cursor


def test_fast_api_keeps_one_part(slow: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    waits_on_api(monkeypatch, False)
    expected = slow.emulator_cdrs()
    summary = slow.sync()
    assert summary.loads == 1
    assert_cdrs_equal(slow, expected)


def test_parts_by_rows_still_read_ahead(slow: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    waits_on_api(monkeypatch, True)
    monkeypatch.setattr(readahead, "MIN_PART_ROWS", 10**9)  # no part ends early
    parts = Parts(monkeypatch)
    expected = slow.emulator_cdrs()
    summary = slow.sync(commit_every_rows=700)
    assert summary.loads >= 3
    assert len(parts.ahead) == summary.loads - 1
    assert_cdrs_equal(slow, expected)


def test_failure_while_reading_ahead_leaves_the_last_committed_part(
    slow: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits_on_api(monkeypatch, True)
    # A short read-ahead, so that the second part has windows left to read.
    monkeypatch.setattr(readahead, "QUEUED_PER_SLOT", 1)
    monkeypatch.setattr(readahead, "HELD_PER_SLOT", 1)
    parts = Parts(monkeypatch)
    expected = slow.emulator_cdrs()
    # Every window judged after the first part was committed fails its check: the read ahead
    # fails while (or before) the second part reads.
    settle = windows.WindowScanner._settle

    def failing(self: windows.WindowScanner, fetch: Any) -> tuple[str, int]:
        if parts.order:
            raise DataCheckError(f"window {fetch.window} did not add up (injected)")
        return settle(self, fetch)

    monkeypatch.setattr(windows.WindowScanner, "_settle", failing)
    with pytest.raises(Exception, match="injected"):
        slow.sync()
    assert len(parts.order) >= 1
    cursor = parts.cursors[parts.order[-1]]
    assert cursor is not None
    state = resource_states(slow.pipeline())["cdrs"]
    assert state.cursor == cursor, "the state is the last committed part's"
    loaded = slow.loaded()
    assert loaded, "the first part was committed"
    assert all(api_time_of(row["calldate"]) <= cursor for row in loaded)
    assert len(loaded) == sum(1 for r in expected if r["calldate"] <= cursor)
    # The next sync resumes there and loads every CDR once.
    monkeypatch.setattr(windows.WindowScanner, "_settle", settle)
    slow.sync()
    assert_cdrs_equal(slow, expected)
    assert not readahead._WAITING, "no read is left running"
    assert not readahead._RUN_IDS


def test_close_stops_a_read_blocked_on_a_full_queue(slow: Harness) -> None:
    """A read nobody takes over (the run failed in dlt) ends, and closes its client."""
    from pipelines.voipstudio.catalog import CDRS
    from pipelines.voipstudio.client import Credentials, VoipstudioClient
    from pipelines.voipstudio.records import wall_seconds

    client = VoipstudioClient(slow.server.base_url, Credentials(api_key=slow.env[KEY]))
    client.__enter__()
    read = readahead.ReadAhead(
        client,
        lambda planned: windows.WindowScanner(
            client, CDRS, page_size=100, max_concurrency=2, timezone="UTC", on_plan=planned
        ),
        wall_seconds(datetime(2026, 2, 19)),
        wall_seconds(datetime(2026, 3, 2, 12)),
        None,
        lambda _: True,
        1,
    )
    events = read.part(may_end_early=False)
    next(events)  # the reading has begun; the queue fills up behind it
    read.close()
    read.thread.join(timeout=30)
    assert not read.thread.is_alive()


KEY = "SOURCES__VOIPSTUDIO__API_KEY"


def api_time_of(value: Any) -> str:
    """A loaded ``calldate`` as the API's text, to compare with a stored cursor."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
