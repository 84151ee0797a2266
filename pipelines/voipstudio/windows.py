"""Reading every CDR of a time range exactly once, however the API behaves while we read.

A range ``(start, end]`` of ``calldate`` is cut into windows, sized by counting (each count is a
one-row request that returns ``total``), so that no window holds more than a few pages. Every
page request carries both bounds (``calldate gt start``, ``calldate lte end``) and an explicit
``sort=id&dir=ASC``: ids are unique and grow as CDRs are written, so rows that arrive while we
page land after the rows we are reading instead of shifting them.

Pages of several windows are fetched concurrently and handed on as they arrive. A window is
complete when every page reported the same ``total`` and the distinct ids received equal it;
a window that does not add up is fetched again. Completed windows are reported in time order, so
a cursor that follows them only ever covers data that was read in full.

Times here are the API's wall-clock seconds (see ``records.wall_seconds``).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from pipelines.voipstudio import settings
from pipelines.voipstudio.client import Filter, VoipstudioClient, page_params
from pipelines.voipstudio.errors import DataCheckError
from pipelines.voipstudio.records import ParsedPage, api_time, parse_cdr_page

log = logging.getLogger(__name__)

CDRS_PATH = "/cdrs"


@dataclass(frozen=True)
class Window:
    """CDRs with ``start < calldate <= end`` (wall-clock seconds), ``total`` as last counted."""

    start: int
    end: int
    total: int

    def filters(self) -> list[Filter]:
        """The API filter selecting this window."""
        return [
            {"property": "calldate", "operator": "gt", "value": api_time(self.start)},
            {"property": "calldate", "operator": "lte", "value": api_time(self.end)},
        ]

    def __str__(self) -> str:
        return f"({api_time(self.start)}, {api_time(self.end)}]"


@dataclass
class Page:
    """One page, parsed, handed on as soon as it arrives."""

    window: Window
    number: int
    parsed: ParsedPage


@dataclass
class WindowDone:
    """Every CDR of ``window`` has been handed on (windows complete in time order)."""

    window: Window
    rows: int


@dataclass
class _Fetch:
    """The state of reading one window."""

    index: int
    window: Window
    attempt: int = 1
    pages: int = 0
    received: dict[int, int] = field(default_factory=dict)  # page number -> reported total
    ids: set[Any] = field(default_factory=set)
    done: bool = False


Progress = Callable[[int, int], None]


class CdrScanner:
    """Plans and reads windows of ``/cdrs`` with a pool of worker threads."""

    def __init__(
        self,
        client: VoipstudioClient,
        *,
        page_size: int = settings.DEFAULT_PAGE_SIZE,
        max_concurrency: int = settings.DEFAULT_MAX_CONCURRENCY,
        window_pages: int = settings.WINDOW_PAGES,
        window_attempts: int = settings.WINDOW_ATTEMPTS,
        timezone: str = settings.DEFAULT_TIMEZONE,
        on_page: Progress | None = None,
    ) -> None:
        self.client = client
        self.timezone = timezone
        self.page_size = page_size
        self.max_concurrency = max(1, max_concurrency)
        self.window_rows = page_size * window_pages
        self.window_attempts = window_attempts
        self.on_page = on_page

    # -- planning ------------------------------------------------------------------------------

    def count(self, start: int, end: int) -> int:
        """How many CDRs have ``start < calldate <= end``."""
        _, total = self.client.get_page(
            CDRS_PATH, page=1, limit=1, filters=Window(start, end, 0).filters(), sort="id"
        )
        return total

    def plan(self, start: int, end: int, pool: ThreadPoolExecutor) -> list[Window]:
        """Cut ``(start, end]`` into windows of at most ``window_rows`` CDRs (a single second
        holding more stays one window), merging neighbours that fit together."""
        if end <= start:
            return []
        todo = [(start, end)]
        windows: list[Window] = []
        while todo:
            totals = list(pool.map(lambda bounds: self.count(*bounds), todo))
            next_todo: list[tuple[int, int]] = []
            for (low, high), total in zip(todo, totals, strict=True):
                if total <= self.window_rows or high - low <= 1:
                    windows.append(Window(low, high, total))
                    continue
                parts = min(settings.MAX_SPLIT, high - low, 2 * math.ceil(total / self.window_rows))
                edges = [low + (high - low) * i // parts for i in range(parts + 1)]
                next_todo.extend((a, b) for a, b in itertools.pairwise(edges) if b > a)
            todo = next_todo
        windows.sort(key=lambda w: w.start)
        merged: list[Window] = []
        for window in windows:
            last = merged[-1] if merged else None
            if last is not None and last.total + window.total <= self.window_rows:
                merged[-1] = Window(last.start, window.end, last.total + window.total)
            else:
                merged.append(window)
        return merged

    # -- reading -------------------------------------------------------------------------------

    def _fetch_page(
        self, fetch: _Fetch, number: int, attempt: int
    ) -> tuple[_Fetch, int, int, ParsedPage]:
        if attempt > 1 and number == 1:
            # Give the data a moment to settle before reading a window again.
            time.sleep(min(5.0, 0.2 * 2 ** (attempt - 2)))
        # Parsing happens here, on the worker thread: pyarrow's JSON reader releases the GIL,
        # so pages are decoded in parallel with the requests of the other workers.
        parsed = self.client.request(
            "GET",
            CDRS_PATH,
            params=page_params(number, self.page_size, fetch.window.filters(), "id"),
            decode=self._parse,
        )
        return fetch, number, attempt, parsed

    def _parse(self, body: bytes) -> ParsedPage:
        return parse_cdr_page(body, self.timezone)

    def scan(
        self,
        start: int,
        end: int,
        max_rows: int | None = None,
        can_stop: Callable[[int], bool] | None = None,
    ) -> Iterator[Page | WindowDone]:
        """Read ``(start, end]``, yielding pages as they arrive and windows as they complete.

        Args:
            start: exclusive lower bound (wall-clock seconds).
            end: inclusive upper bound.
            max_rows: stop after the window that brings the count to at least this many rows
                (so that a long backfill can be committed in parts).
            can_stop: with ``max_rows``, whether a part may end at this wall-clock second
                (not inside a repeated hour, whose two passes are read together).

        Raises:
            DataCheckError: a window never added up after ``window_attempts`` reads.
        """
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="voipstudio") as pool:
            windows = self.plan(start, end, pool)
            if max_rows is not None:
                kept: list[Window] = []
                rows = 0
                for window in windows:
                    if rows >= max_rows and (can_stop is None or can_stop(kept[-1].end)):
                        break
                    kept.append(window)
                    rows += window.total
                windows = kept
            log.info(
                "range (%s, %s]: %d CDRs in %d windows",
                api_time(start),
                api_time(end),
                sum(w.total for w in windows),
                len(windows),
            )
            yield from self._read(windows, pool)

    def _read(self, windows: list[Window], pool: ThreadPoolExecutor) -> Iterator[Page | WindowDone]:
        fetches = [_Fetch(index, window) for index, window in enumerate(windows)]
        tasks: deque[tuple[_Fetch, int, int]] = deque()
        upcoming = iter(fetches)
        in_flight: set[Future[tuple[_Fetch, int, int, ParsedPage]]] = set()
        next_to_report = 0
        # Pages are queued beyond the workers (which bound the requests in flight), so that
        # a worker that finishes starts the next request at once instead of waiting for the
        # consumer (dlt, writing what it was handed) to come back for more; at most `queued`
        # parsed pages wait for the consumer.
        queued = self.max_concurrency * 2
        lookahead = queued + self.max_concurrency

        def restart(fetch: _Fetch, expected: int) -> None:
            fetch.pages = max(1, math.ceil(expected / self.page_size))
            fetch.received.clear()
            fetch.ids.clear()
            # Front of the queue: this window holds up the cursor.
            tasks.extendleft((fetch, n, fetch.attempt) for n in range(fetch.pages, 0, -1))

        try:
            while True:
                while len(tasks) < lookahead:
                    fetch = next(upcoming, None)
                    if fetch is None:
                        break
                    if fetch.window.total == 0:
                        fetch.done = True
                    else:
                        fetch.pages = math.ceil(fetch.window.total / self.page_size)
                        tasks.extend((fetch, n, 1) for n in range(1, fetch.pages + 1))
                while next_to_report < len(fetches) and fetches[next_to_report].done:
                    done = fetches[next_to_report]
                    rows = len(done.ids)
                    # Its ids are not needed any more: keeping them would make the memory of
                    # a scan grow with the range (about 70 bytes a CDR).
                    done.ids = set()
                    yield WindowDone(done.window, rows)
                    next_to_report += 1
                if next_to_report == len(fetches):
                    return
                while tasks and len(in_flight) < queued:
                    in_flight.add(pool.submit(self._fetch_page, *tasks.popleft()))
                if not in_flight:
                    # Unreachable while every unfinished window has pages queued or in flight.
                    raise RuntimeError("CDR scanner stalled: a window has no pages to wait for")
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    fetch, number, attempt, parsed = future.result()
                    if parsed.keys:
                        yield Page(fetch.window, number, parsed)
                    if self.on_page is not None:
                        self.on_page(1, len(parsed.keys))
                    if attempt != fetch.attempt or fetch.done:
                        continue  # a page of an abandoned read: its rows are real, nothing more
                    fetch.received[number] = parsed.total
                    fetch.ids.update(
                        (number, key) if isinstance(key, tuple) else key for key in parsed.keys
                    )
                    if len(fetch.received) < fetch.pages:
                        continue
                    more, expected = self._settle(fetch)
                    if more:
                        first_new = fetch.pages + 1
                        fetch.pages = math.ceil(expected / self.page_size)
                        tasks.extendleft(
                            (fetch, n, fetch.attempt) for n in range(fetch.pages, first_new - 1, -1)
                        )
                    elif not fetch.done:
                        restart(fetch, expected)
        finally:
            for future in in_flight:
                future.cancel()

    def _settle(self, fetch: _Fetch) -> tuple[bool, int]:
        """Judge a window whose pages have all arrived.

        The strict test: every page reported the same ``total`` and the distinct ids received
        equal it. A window that grew while it was read (a busy account writes CDRs of calls
        that started before the range's end all the time) cannot pass that test, so growth is
        accepted too: pages sorted by id put rows written later after every row that existed
        when reading started, so once the pages cover the smallest total reported and as many
        distinct ids arrived, every row that existed then was received. The rows written since
        are loaded by the next run, which re-reads the lag.

        Returns:
            ``(True, total)`` when more pages must be read (the window grew past the pages
            planned); otherwise ``(False, total)``, with ``fetch.done`` set when the window
            adds up, or ``fetch.attempt`` increased when it must be read again from page 1.

        Raises:
            DataCheckError: the window did not add up after the last attempt.
        """
        totals = sorted(set(fetch.received.values()))
        smallest, largest = totals[0], totals[-1]
        if math.ceil(smallest / self.page_size) > fetch.pages:
            # Counted earlier, grown since: the pages that now exist are read too.
            return True, largest
        received = len(fetch.ids)
        if len(totals) == 1 and received == smallest:
            fetch.done = True
            return False, smallest
        if len(totals) > 1 and received >= smallest and smallest >= fetch.window.total:
            log.info(
                "window %s grew from %d to %d CDRs while it was read; the newest are loaded "
                "by the next run",
                fetch.window,
                smallest,
                largest,
            )
            fetch.done = True
            return False, largest
        if len(totals) == 1:
            reason = f"{received} distinct ids for a total of {smallest}"
        else:
            reason = f"pages reported totals {totals} but held {received} distinct ids"
        if fetch.attempt >= self.window_attempts:
            raise DataCheckError(
                f"CDRs in {fetch.window} did not add up after {fetch.attempt} reads ({reason}); "
                "nothing after the last complete window was committed: run the sync again later"
            )
        log.warning("window %s: %s; reading it again", fetch.window, reason)
        fetch.attempt += 1
        return False, largest
