"""Sizing a range overlaps reading it (issue 14): each part of the range is sized by its first
page, and the first windows are read while later parts are still being sized, without giving
up any guarantee of the completion rule: windows are reported in time order, contiguous over
the range, each only once every one of its pages was handed on, and a cursor that follows them
never passes a record that was not handed on. Real HTTP to the emulator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest
from sync_harness import Harness

from pipelines.emulator.config import DEFAULT_API_KEY
from pipelines.voipstudio.catalog import CDRS
from pipelines.voipstudio.client import Credentials, VoipstudioClient
from pipelines.voipstudio.records import api_time, wall_seconds
from pipelines.voipstudio.windows import Page, WindowDone, WindowScanner

START = wall_seconds(datetime(2026, 2, 19))
END = wall_seconds(datetime(2026, 3, 2, 12))


class Recorded:
    """The page requests a scanner made, in order: ``(page, limit, gt, lte)``."""

    def __init__(self, client: VoipstudioClient) -> None:
        self.requests: list[tuple[int, int, str, str]] = []
        request = client.request

        def recording(method: str, path: str, **kwargs: Any) -> Any:
            params = kwargs.get("params") or {}
            if path == "/cdrs":
                bounds = {f["operator"]: f["value"] for f in orjson.loads(params["filter"])}
                self.requests.append(
                    (int(params["page"]), int(params["limit"]), bounds["gt"], bounds["lte"])
                )
            return request(method, path, **kwargs)

        client.request = recording  # type: ignore[method-assign]


def scanner(harness: Harness, concurrency: int) -> tuple[WindowScanner, Recorded]:
    client = VoipstudioClient(harness.server.base_url, Credentials(api_key=DEFAULT_API_KEY))
    recorded = Recorded(client)
    scan = WindowScanner(
        client,
        CDRS,
        page_size=100,
        max_concurrency=concurrency,
        timezone="UTC",
        window_pages=5,
    )
    return scan, recorded


def check_events(
    harness: Harness, events: list[Page | WindowDone], start: int
) -> tuple[list[WindowDone], list[int]]:
    """The guarantees every scan keeps, whatever the order requests were answered in."""
    stored = {r["id"]: r["calldate"] for r in harness.emulator_cdrs()}
    handed: list[int] = []
    done: list[WindowDone] = []
    for event in events:
        if isinstance(event, Page):
            assert all(event.window != d.window for d in done), "a page after its window ended"
            handed.extend(event.parsed.table.column("id").to_pylist())
            continue
        # Windows in time order, each starting where the last ended.
        assert event.window.start == (done[-1].window.end if done else start)
        done.append(event)
        # A cursor at this window's end passes only records that were handed on.
        upto = api_time(event.window.end)
        behind = {i for i, calldate in stored.items() if api_time(start) < calldate <= upto}
        assert behind <= set(handed), "the cursor would pass records not handed on"
    return done, handed


def test_the_first_windows_are_read_while_later_parts_are_still_sized(
    duckdb_harness: Harness,
) -> None:
    harness = duckdb_harness
    # One request at a time makes the order of requests the order of decisions.
    scan, recorded = scanner(harness, concurrency=1)
    events: list[Page | WindowDone] = []
    requests_at_first_page = None
    for event in scan.scan(START, END):
        if isinstance(event, Page) and requests_at_first_page is None:
            requests_at_first_page = len(recorded.requests)
        events.append(event)
    done, handed = check_events(harness, events, START)
    assert done[-1].window.end == END
    # Every CDR once, none twice (nothing changed while it was read).
    assert sorted(handed) == sorted(r["id"] for r in harness.emulator_cdrs())
    assert len(handed) == len(set(handed))
    assert len(done) > 3
    # The first page was handed on when only the range and its first parts had been asked
    # (the first part, before the data starts, is empty); later parts were sized after it.
    sizing = [r for r in recorded.requests if r[0] == 1]
    assert requests_at_first_page is not None and requests_at_first_page < len(sizing) / 2
    first_end = api_time(next(d for d in done if d.rows).window.end)
    later_sizing = [
        r for r in recorded.requests[requests_at_first_page:] if r[0] == 1 and r[2] >= first_end
    ]
    assert later_sizing, "every part was sized before the first window was read"
    # No request of its own to count a window: its first page is read once, when it is sized.
    windows = {(api_time(d.window.start), api_time(d.window.end)) for d in done}
    firsts = [(r[2], r[3]) for r in recorded.requests if r[0] == 1 and (r[2], r[3]) in windows]
    assert sorted(firsts) == sorted(windows)
    assert all(limit == 100 for _, limit, _, _ in recorded.requests)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_part_of_a_backfill_hands_on_nothing_past_its_last_window(
    duckdb_harness: Harness, concurrency: int
) -> None:
    harness = duckdb_harness
    scan, _ = scanner(harness, concurrency)
    events = list(scan.scan(START, END, max_rows=700))
    done, handed = check_events(harness, events, START)
    kept = {d.window for d in done}
    assert sum(d.rows for d in done) >= 700
    assert sum(d.rows for d in done[:-1]) < 700, "the part went on after reaching max_rows"
    assert done[-1].window.end < END
    # Pages of parts sized beyond the cut were not handed on.
    assert all(e.window in kept for e in events if isinstance(e, Page))
    last = api_time(done[-1].window.end)
    expected = {r["id"] for r in harness.emulator_cdrs() if r["calldate"] <= last}
    assert set(handed) == expected and len(handed) == len(expected)


def test_a_range_that_fits_one_window_costs_its_pages_only(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    scan, recorded = scanner(harness, concurrency=4)
    # The last hours of data: an incremental sync's lag window.
    start = wall_seconds(datetime(2026, 3, 2, 6))
    events = list(scan.scan(start, END))
    done, handed = check_events(harness, events, start)
    assert [d.window.end for d in done] == [END]
    rows = done[0].rows
    assert 0 < rows <= 500
    assert len(handed) == rows
    # Its pages and the one that shows the end, no count request before them.
    assert len(recorded.requests) <= rows // 100 + 2
    assert recorded.requests[0][0] == 1
