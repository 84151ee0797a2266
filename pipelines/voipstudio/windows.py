"""Reading every record of a collection exactly once, and knowing when we have, however the API
behaves while we read.

One reader serves every dated collection (``collection.DatedCollection``: ``/cdrs`` on
``calldate``, ``/voicemessages`` on ``origtime``, ...). A range ``(start, end]`` of the
collection's cursor is cut into windows so that no window holds more than a few pages. Each part
of the range is sized by asking its first page: the ``total`` it reports is the part's count, a
part that holds too many is cut into parts of equal time sized the same way, and a part small
enough is a window whose first page is already read. Sizing overlaps reading: the first windows'
pages are asked while later parts are still being sized. Every page request carries both bounds
(``calldate gt start``, ``calldate lte end``) and an explicit ``sort=id&dir=ASC``: ids are unique
and grow as records are written, so rows that arrive while we page land after the rows we are
reading instead of shifting them. Pages of several windows are fetched concurrently and handed
on as they arrive; completed windows are reported in time order, so a cursor that follows them
only ever covers data that was read in full.

**The completion rule** (the same for every paged read: dated windows and the dimensions). Nothing
the API says is taken on its word; each assumption is checked on what it sends:

1. *The served page size is learnt, not assumed.* A page may hold fewer records than ``limit``
   asked (a clamping server), so the run keeps the size the server actually serves: ``limit``
   until pages shorter than asked are followed by more records (or fall short of the total),
   then the longest page seen. Pages are numbered and planned in that size.
2. *A window is complete* when an empty page, or a page shorter than one the server has been
   seen to serve, has been seen **and** every page reported the same ``total`` **and** the
   distinct ids received equal it. A page shorter than ``limit`` alone ends nothing (it may be
   a clamped one), nor does a ``total`` alone (it may be capped): a window whose last page is
   full, or is the longest seen so far, is read one page further (asked at once with the
   others when the window is a single page or a full one).
3. *A total may be capped.* Pages beyond the total that still hold records (more distinct ids
   than the total) mean the total is capped: the run learns that cap, counts at or above it
   size nothing any more, and the window is cut into windows whose counts stay below it and
   read again, never "done". A count that is a round number (``looks_capped``: 10,000, 5,000,
   1,024...) is tried before it sizes a window, with one record asked for just past it. A
   single second cannot be cut: it is complete only when two reads to its end agree id for id.
4. *The order is checked.* Ids must ascend within each page and across the pages of a window.
   Only then is a window that **grew** while it was read (late records of a busy account) accepted
   without the exact count: pages sorted by id put rows written later after every row that
   existed when reading started, so once the pages cover the smallest total reported and as
   many distinct ids arrived, every row that existed then was received (the rows written since
   are loaded by the next run, which re-reads the lag). Once the API is seen to ignore the sort,
   every window must pass the strict rule; one that keeps changing while it is read is cut into
   windows of half a page (one response is one consistent snapshot) and read again.
5. Anything else that does not add up (fewer ids than the total) is read again. After
   ``window_attempts`` reads (or cuts) of a window, the scan fails with :class:`DataCheckError`
   (exit 5), naming the assumption that broke; nothing after the last complete window is
   committed.

The dimensions (:func:`read_collection`) follow rules 1 and 2 page by page, in one sequence. A
collection cannot be cut by time, so a total that under-reports is accepted there only when two
reads to the end agree id for id, and an order other than the one asked is named in the error.

Times here are whole seconds of the cursor's clock (see ``collection.Cursor``: the account's
wall clock for date texts, ``records.wall_seconds``; UTC for Unix seconds), whole seconds as the
API's date values are: ``calldate gt s`` is ``calldate gte s + 1``, which is how an inclusive
start is read (see :func:`half_open`).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from pipelines.voipstudio import settings
from pipelines.voipstudio.client import Filter, VoipstudioClient, page_params
from pipelines.voipstudio.collection import DatedCollection
from pipelines.voipstudio.errors import DataCheckError
from pipelines.voipstudio.records import ParsedPage, api_time, parse_page

log = logging.getLogger(__name__)
# What to do when a window does not add up, as the error message and the README say it.
RERUN_ADVICE = (
    "nothing after the last complete window was committed: run the sync again later "
    "(`voipstudio check` tests the API's page size, sort and totals)"
)


def half_open(start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` as the scanner's ``(start, end]``: dates are whole seconds, so
    ``calldate >= start`` is ``calldate > start - 1``, and ``calldate < end`` is
    ``calldate <= end - 1``. Adjacent ranges ``[a, b)``, ``[b, c)`` neither overlap nor leave
    a gap."""
    return start - 1, end - 1


def describe_range(start: int, end: int) -> str:
    """``(start, end]`` as the dates it holds, both included: ``[first second, last]``."""
    return f"[{api_time(start + 1)}, {api_time(end)}]"


def looks_capped(total: int) -> bool:
    """Whether a ``total`` is a round number an API may cap its counts at (10,000, 5,000, 1,024,
    ...) rather than a count: a multiple of ``ROUND_TOTAL`` or a power of two of at least it."""
    step = settings.ROUND_TOTAL
    return total >= step and (total % step == 0 or total & (total - 1) == 0)


class ServedPageSize:
    """The page size a server actually serves, as one run of one collection learns it (rule 1
    of the module docstring).

    Attributes:
        limit: the page size asked for (``limit``).
        size: the page size pages are numbered and planned in: ``limit`` until the server is
            seen to serve another.
        longest: the most records one page held in this run. A page shorter than that is
            shorter than what the server serves, so it ends its collection; until a longer page
            is seen, only an empty page does.
    """

    def __init__(self, limit: int, path: str) -> None:
        self.limit = limit
        self.size = limit
        self.longest = 0
        self.path = path

    def saw(self, rows: int) -> None:
        """A page of ``rows`` records arrived."""
        self.longest = max(self.longest, rows)
        if rows > self.size:
            # A server that serves more than asked: its pages are numbered in what it serves.
            self._set(rows)

    def clamped(self) -> None:
        """Pages held fewer records than asked while more followed: the server serves at most
        the longest page seen."""
        if 0 < self.longest < self.size:
            self._set(self.longest)

    def _set(self, size: int) -> None:
        log.info(
            "GET %s serves pages of %d records (%d asked): paging by %d",
            self.path,
            size,
            self.limit,
            size,
        )
        self.size = size

    def pages(self, total: int) -> int:
        """Pages that hold ``total`` records (at least one)."""
        return max(1, math.ceil(total / self.size))

    def ends(self, rows: int) -> bool:
        """Whether a page of ``rows`` records ends its collection: it is empty, or shorter than
        a page the server has been seen to serve."""
        return rows == 0 or rows < self.longest

    def needs_probe(self, total: int) -> bool:
        """Whether reading ``total`` records needs one page more to see the end: the last page
        would be full, or it would be the only page and no longer page has been seen yet (with
        more pages, the full ones show the served size)."""
        pages = self.pages(total)
        last = total - (pages - 1) * self.size
        return last >= self.size or (pages == 1 and last >= self.longest)


@dataclass(frozen=True)
class Window:
    """Records with ``start < cursor <= end`` (seconds of the cursor's clock), ``total`` as
    last counted."""

    start: int
    end: int
    total: int

    def __str__(self) -> str:
        return describe_range(self.start, self.end)


@dataclass
class Page:
    """One page, parsed, handed on as soon as it arrives."""

    window: Window
    number: int
    parsed: ParsedPage


@dataclass
class WindowDone:
    """Every record of ``window`` has been handed on (windows complete in time order)."""

    window: Window
    rows: int


@dataclass(frozen=True)
class _PageFacts:
    """What the completion rule needs of one page."""

    rows: int  # records the page held, rejects included
    total: int
    first: int | None  # the first and last loadable id, in the order served
    last: int | None
    ascending: bool  # ids ascend within the page


def _page_facts(parsed: ParsedPage, key: str) -> _PageFacts:
    ids = parsed.table.column(key).to_numpy()
    ascending = bool(len(ids) < 2 or (ids[1:] > ids[:-1]).all())
    first, last = (int(ids[0]), int(ids[-1])) if len(ids) else (None, None)
    return _PageFacts(len(parsed.keys), parsed.total, first, last, ascending)


def _in_order(facts: list[_PageFacts]) -> bool:
    """Ids ascend within every page and from each page to the next."""
    if not all(page.ascending for page in facts):
        return False
    ends = [(page.first, page.last) for page in facts if page.first is not None]
    return all(
        earlier[1] is not None and later[0] is not None and earlier[1] < later[0]
        for earlier, later in itertools.pairwise(ends)
    )


@dataclass(eq=False)
class _Fetch:
    """The state of reading one window."""

    window: Window
    attempt: int = 1
    rereads: int = 0  # reads of this same window after the first
    pages: int = 0
    received: dict[int, _PageFacts] = field(default_factory=dict)  # page number -> facts
    ids: set[Any] = field(default_factory=set)
    done: bool = False
    replaced: bool = False  # cut into smaller windows, read in its place
    previous: set[Any] | None = None  # the ids of the last read that reached the end
    replanned: bool = False  # a part of a window cut smaller while it was read
    queued: bool = False  # handed to the reading (in time order)
    first: tuple[ParsedPage, _PageFacts] | None = None  # page 1, read when it was sized


@dataclass(eq=False)
class _Segment:
    """A part of a range not sized yet. Its first page is asked with the full ``limit``: the
    ``total`` it reports is the part's count and, when the part is small enough to be a window,
    the page is that window's first page, so sizing a window costs no request of its own."""

    start: int
    end: int
    target: int  # records a window may hold
    attempt: int = 1  # the read its windows start at (a window cut smaller goes on counting)
    replanned: bool = False  # a part of a window cut smaller while it was read
    dropped: bool = False  # left out of the scan (max_rows): its answers are ignored
    first: tuple[ParsedPage, _PageFacts] | None = None


_PageResult = tuple[_Fetch, int, int, ParsedPage, _PageFacts]


# What `_settle` decides for a window whose pages have all arrived.
_DONE, _MORE, _AGAIN, _SPLIT = "done", "more", "again", "split"

Progress = Callable[[int, int], None]


class WindowScanner:
    """Plans and reads windows of a dated collection with a pool of worker threads (see the
    module docstring for the completion rule).

    Args:
        client: the account's API client.
        collection: what to read.
        page_size: records a page asks for (cut to the collection's ``page_cap``).
        max_concurrency: requests in flight at once.
        timezone: the account's zone (wall-clock date texts are read in it).
        window_pages: pages a window holds at most.
        window_attempts: reads of a window before the scan fails.
        on_page: told ``(pages, records)`` as each page arrives.
        on_plan: told the number of records to read once the range is planned.
    """

    def __init__(
        self,
        client: VoipstudioClient,
        collection: DatedCollection,
        *,
        page_size: int,
        max_concurrency: int,
        timezone: str,
        window_pages: int = settings.WINDOW_PAGES,
        window_attempts: int = settings.WINDOW_ATTEMPTS,
        on_page: Progress | None = None,
        on_plan: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.collection = collection
        self.path = collection.path
        self.timezone = timezone
        page_size = collection.page_size(page_size)
        self.page_size = page_size
        self.max_concurrency = max(1, max_concurrency)
        self.window_rows = page_size * window_pages
        self.window_attempts = window_attempts
        self.on_page = on_page
        # Told the number of records to read once the range is planned (the progress display).
        self.on_plan = on_plan
        # What this run has learnt about the API (rules 1, 3 and 4).
        self.served = ServedPageSize(page_size, self.path)
        self.total_cap: int | None = None
        self.unordered = False

    # -- planning ------------------------------------------------------------------------------

    def filters(self, start: int, end: int) -> list[Filter]:
        """The API filter selecting ``start < cursor <= end``."""
        cursor = self.collection.cursor
        return [
            {
                "property": cursor.path,
                "operator": "gt",
                "value": cursor.filter_value(api_time(start), start),
            },
            {
                "property": cursor.path,
                "operator": "lte",
                "value": cursor.filter_value(api_time(end), end),
            },
        ]

    def count(self, start: int, end: int) -> int:
        """How many records have ``start < cursor <= end``, as the API counts them."""
        records, total = self.client.get_page(
            self.path,
            page=1,
            limit=1,
            filters=self.filters(start, end),
            sort=self.collection.primary_key,
        )
        # A total of 0 beside a record is no count: the window is read, not skipped.
        return max(total, len(records))

    def below_cap(self, total: int) -> bool:
        """Whether a count is below the cap this run has found the API's totals to have."""
        return self.total_cap is None or total < self.total_cap

    def holds_more(self, start: int, end: int, total: int) -> bool:
        """Whether ``(start, end]`` holds a record after the ``total`` its count reported: one
        record at offset ``total``, asked for with ``limit=1``. A count that grew meanwhile
        (rows arriving) is no cap."""
        records, now = self.client.get_page(
            self.path,
            page=total + 1,
            limit=1,
            filters=self.filters(start, end),
            sort=self.collection.primary_key,
        )
        return bool(records) and now <= total

    def learn_cap(self, total: int, where: str) -> None:
        """The API's totals stop at ``total``: counts at or above it size nothing any more."""
        if self.below_cap(total):
            self.total_cap = total
            log.warning(
                "GET %s reports a total of %d for %s, which holds more: the API's total looks "
                "capped at %d; windows are cut below it",
                self.path,
                total,
                where,
                total,
            )

    # -- sizing --------------------------------------------------------------------------------

    def parts(self, start: int, end: int, total: int, target: int) -> list[tuple[int, int]]:
        """Cut ``(start, end]``, counted at ``total``, into parts of equal time expected to hold
        at most ``target`` records each: twice as many as an even spread needs, at least
        ``CAPPED_SPLIT`` when the count is at a cap (it says nothing of the size), never finer
        than a second, at most ``MAX_SPLIT``."""
        parts = 2 * math.ceil(total / target)
        if not self.below_cap(total):
            parts = max(parts, settings.CAPPED_SPLIT)
        parts = min(settings.MAX_SPLIT, end - start, parts)
        edges = [start + (end - start) * i // parts for i in range(parts + 1)]
        return [(a, b) for a, b in itertools.pairwise(edges) if b > a]

    # -- reading -------------------------------------------------------------------------------

    def _get(self, start: int, end: int, number: int) -> tuple[ParsedPage, _PageFacts]:
        # Parsing happens here, on the worker thread: pyarrow's JSON reader releases the GIL,
        # so pages are decoded in parallel with the requests of the other workers.
        parsed = self.client.request(
            "GET",
            self.path,
            params=page_params(
                number,
                self.page_size,
                self.filters(start, end),
                self.collection.primary_key,
            ),
            decode=self._parse,
        )
        return parsed, _page_facts(parsed, self.collection.primary_key)

    def _fetch_page(self, fetch: _Fetch, number: int, attempt: int) -> _PageResult:
        if fetch.rereads and number == 1:
            # Give the data a moment to settle before reading a window again.
            time.sleep(min(5.0, 0.2 * 2 ** (fetch.rereads - 1)))
        window = fetch.window
        return fetch, number, attempt, *self._get(window.start, window.end, number)

    def _fetch_first(self, segment: _Segment) -> tuple[_Segment, ParsedPage, _PageFacts]:
        return segment, *self._get(segment.start, segment.end, 1)

    def _probe(self, segment: _Segment, total: int) -> tuple[_Segment, int, bool]:
        return segment, total, self.holds_more(segment.start, segment.end, total)

    def _parse(self, body: bytes) -> ParsedPage:
        return parse_page(body, self.collection, self.timezone)

    def scan(
        self,
        start: int,
        end: int,
        max_rows: int | None = None,
        can_stop: Callable[[int], bool] | None = None,
    ) -> Iterator[Page | WindowDone]:
        """Read ``(start, end]``, yielding pages as they arrive and windows as they complete.

        Sizing the windows overlaps reading them: each part of the range is sized by asking its
        first page (the full ``limit``), whose ``total`` is the part's count; a part small
        enough becomes a window whose first page is already read, and its other pages are
        asked at once, while later parts are still being sized. Windows still complete (and are
        reported) in time order, by the completion rule of the module docstring.

        Args:
            start: exclusive lower bound (wall-clock seconds); see :func:`half_open` for an
                inclusive one.
            end: inclusive upper bound.
            max_rows: stop after the window that brings the count to at least this many rows
                (so that a long backfill can be committed in parts).
            can_stop: with ``max_rows``, whether a part may end at this wall-clock second
                (not inside a repeated hour, whose two passes are read together).

        Raises:
            DataCheckError: a window could not be verified after ``window_attempts`` reads.
        """
        if end <= start:
            if self.on_plan is not None:
                self.on_plan(0)
            return
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="voipstudio") as pool:
            yield from _Scan(self, pool, start, end, max_rows, can_stop).run()

    def _settle(self, fetch: _Fetch) -> tuple[str, int]:
        """Judge a window whose pages have all arrived, by the module's completion rule.

        Returns:
            ``(_DONE, 0)``: the window is complete. ``(_MORE, n)``: read its pages up to ``n``
            (the served size turned out smaller, the window grew, or its end is not seen yet).
            ``(_AGAIN, total)``: read it again from page 1, expecting ``total``.
            ``(_SPLIT, rows)``: cut it into windows of at most ``rows`` records and read those.

        Raises:
            DataCheckError: the window could not be verified after the last attempt.
        """
        window, served = fetch.window, self.served
        facts = [fetch.received[n] for n in range(1, fetch.pages + 1)]
        totals = sorted({page.total for page in facts})
        smallest, largest = totals[0], totals[-1]
        received = len(fetch.ids)
        short_then_more = any(
            0 < page.rows < served.size and after.rows > 0
            for page, after in itertools.pairwise(facts)
        )
        if short_then_more or received < smallest:
            served.clamped()
        needed = served.pages(smallest)
        if needed > fetch.pages:
            # Counted earlier, grown since, or served in smaller pages: read the pages that
            # hold the rows.
            return _MORE, needed
        ordered = _in_order(facts)
        if not ordered and not self.unordered:
            self.unordered = True
            log.warning(
                "GET %s does not return records in the order asked (sort=id&dir=ASC; window "
                "%s): every window must now add up exactly, and one that changes while it is "
                "read is cut into windows of half a page",
                self.path,
                window,
            )
        end_seen = served.ends(facts[-1].rows)
        if len(totals) == 1 and received == smallest:
            if end_seen:
                return _DONE, 0
            # The ids agree with the total, but the last page was full (or the longest seen):
            # a capped total would look just like this. The next page must end the window.
            return _MORE, fetch.pages + 1
        grew = len(totals) > 1 and received >= smallest >= window.total
        if grew and ordered and not self.unordered:
            log.info(
                "window %s grew from %d to %d %s while it was read; the newest are loaded by "
                "the next run",
                window,
                smallest,
                largest,
                self.collection.records,
            )
            return _DONE, 0
        splittable = window.end - window.start > 1
        action, value = _AGAIN, max(largest, received)
        if received > largest and largest >= settings.ROUND_TOTAL:
            # Pages beyond the total still hold records: the total is capped.
            noun = self.collection.records
            reason = (
                f"its pages held {received} distinct {noun}, more than the total of {largest} "
                "they report: the API's total looks capped"
            )
            advice = f"one second holds more {noun} than the API counts, and its reads disagree"
            self.learn_cap(largest, f"window {window}")
            if splittable:
                action, value = _SPLIT, self.window_rows
            elif end_seen and fetch.previous == fetch.ids:
                log.warning(
                    "window %s: the API's total says %d, two reads to its end agree on %d records",
                    window,
                    largest,
                    received,
                )
                return _DONE, 0
            elif end_seen:
                fetch.previous = fetch.ids  # a read again gets a new set
        elif self.unordered:
            reason = (
                f"pages reported totals {totals} and held {received} distinct ids, in an order "
                "other than the one asked"
            )
            advice = (
                "the API ignores sort=id&dir=ASC, so a window that changes while it is read "
                "cannot be verified"
            )
            if splittable:
                action, value = _SPLIT, max(1, served.size // 2)
        elif len(totals) == 1:
            reason = f"{received} distinct ids for a total of {smallest}"
            advice = "the API's pages and its total disagree"
        else:
            reason = f"pages reported totals {totals} but held {received} distinct ids"
            advice = "the API's pages and its total disagree"
        if fetch.attempt >= self.window_attempts:
            raise DataCheckError(
                f"{self.collection.records} in {window} did not add up after {fetch.attempt} "
                f"reads ({reason}; "
                f"{advice}); {RERUN_ADVICE}"
            )
        log.warning(
            "window %s: %s; %s",
            window,
            reason,
            "cutting it smaller and reading again" if action == _SPLIT else "reading it again",
        )
        return action, value


class _Scan:
    """One :meth:`WindowScanner.scan`: the range as a time-ordered sequence of windows being
    read and parts not sized yet, and the requests of both on one pool of workers.

    Sizing requests go first (each may free several windows' pages) and, while any is
    outstanding, no request waits in the pool's queue behind others, so that one starts as soon
    as a worker is free. Once every part is sized, page requests are queued beyond the workers
    (twice the concurrency), so that a worker that finishes starts the next request at once
    instead of waiting for the consumer (dlt, writing what it was handed) to come back.
    """

    def __init__(
        self,
        scanner: WindowScanner,
        pool: ThreadPoolExecutor,
        start: int,
        end: int,
        max_rows: int | None,
        can_stop: Callable[[int], bool] | None,
    ) -> None:
        self.scanner = scanner
        self.pool = pool
        self.range = (start, end)
        self.max_rows = max_rows
        self.can_stop = can_stop
        # The range in time order: windows (read, or waiting to be) and parts not sized yet. A
        # window cut smaller is replaced in place by its parts.
        self.whole = first = _Segment(start, end, scanner.window_rows)
        self.order: list[_Fetch | _Segment] = [first]
        self.reported = 0
        self.rows = 0  # records of the windows kept so far (max_rows)
        self.planned = False
        self.sizing: deque[tuple[_Segment, int | None]] = deque([(first, None)])
        self.waiting: deque[_Fetch] = deque()
        self.tasks: deque[tuple[_Fetch, int, int]] = deque()
        self.arrived: deque[_PageResult] = deque()
        self.pages_in_flight: set[Future[_PageResult]] = set()
        self.sizes_in_flight: set[Future[tuple[_Segment, ParsedPage, _PageFacts]]] = set()
        self.probes_in_flight: set[Future[tuple[_Segment, int, bool]]] = set()

    def run(self) -> Iterator[Page | WindowDone]:
        scanner, order = self.scanner, self.order
        concurrency = scanner.max_concurrency
        queued = concurrency * 2
        lookahead = queued + concurrency
        try:
            while True:
                self._queue_windows()
                while len(self.tasks) < lookahead and self.waiting:
                    self._begin(self.waiting.popleft())
                while self.arrived:
                    yield from self._receive(*self.arrived.popleft())
                while self.reported < len(order):
                    done = order[self.reported]
                    if not isinstance(done, _Fetch) or not done.done:
                        break
                    rows = len(done.ids)
                    # Its ids are not needed any more: keeping them would make the memory of
                    # a scan grow with the range (about 70 bytes a record).
                    done.ids = set()
                    yield WindowDone(done.window, rows)
                    self.reported += 1
                if self.reported == len(order):
                    return
                self._submit(concurrency, queued)
                every: set[Future[Any]] = (
                    self.pages_in_flight | self.sizes_in_flight | self.probes_in_flight
                )
                if not every:
                    if self.arrived or self.waiting:
                        continue
                    # Unreachable while every unfinished window has pages queued or in flight.
                    raise RuntimeError("window scanner stalled: a window has no pages to wait for")
                finished, _ = wait(every, return_when=FIRST_COMPLETED)
                for future in finished:
                    if future in self.pages_in_flight:
                        self.pages_in_flight.discard(future)
                        self.arrived.append(future.result())
                    elif future in self.sizes_in_flight:
                        self.sizes_in_flight.discard(future)
                        self._sized(*future.result())
                    else:
                        self.probes_in_flight.discard(future)
                        self._probed(*future.result())
        finally:
            for future in self.pages_in_flight | self.sizes_in_flight | self.probes_in_flight:
                future.cancel()

    def _submit(self, concurrency: int, queued: int) -> None:
        """Start what can start: sizing first, then pages (see the class docstring)."""
        scanner, pool = self.scanner, self.pool

        def busy() -> int:
            return (
                len(self.pages_in_flight) + len(self.sizes_in_flight) + len(self.probes_in_flight)
            )

        while self.sizing and busy() < concurrency:
            segment, total = self.sizing.popleft()
            if total is None:
                self.sizes_in_flight.add(pool.submit(scanner._fetch_first, segment))
            else:
                self.probes_in_flight.add(pool.submit(scanner._probe, segment, total))
        sizing = self.sizing or self.sizes_in_flight or self.probes_in_flight
        limit = concurrency if sizing else queued
        while self.tasks and busy() < limit:
            self.pages_in_flight.add(pool.submit(scanner._fetch_page, *self.tasks.popleft()))

    # -- sizing --------------------------------------------------------------------------------

    def _sized(self, segment: _Segment, parsed: ParsedPage, facts: _PageFacts) -> None:
        """A part's first page arrived: its ``total`` is the part's count."""
        scanner = self.scanner
        if segment.dropped:
            return
        scanner.served.saw(facts.rows)
        # A total of 0 beside a record is no count: the window is read, not skipped.
        total = max(facts.total, facts.rows)
        if segment is self.whole and scanner.on_plan is not None:
            # The whole range's count: what the progress display reads towards.
            scanner.on_plan(total if self.max_rows is None else min(total, self.max_rows))
        segment.first = (parsed, facts)
        if (
            segment.end - segment.start > 1
            and total <= segment.target
            and scanner.below_cap(total)
            and looks_capped(total)
        ):
            # A round count is tried before it sizes a window: one record just past it.
            self.sizing.appendleft((segment, total))
            return
        self._place(segment, total)

    def _probed(self, segment: _Segment, total: int, more: bool) -> None:
        if segment.dropped:
            return
        if more:
            self.scanner.learn_cap(total, describe_range(segment.start, segment.end))
        self._place(segment, total)

    def _place(self, segment: _Segment, total: int) -> None:
        """A sized part becomes a window (a single second stays one whatever it holds), or is
        cut into parts sized in its place."""
        scanner, order = self.scanner, self.order
        at = next(i for i, one in enumerate(order) if one is segment)
        if segment.end - segment.start <= 1 or (
            total <= segment.target and scanner.below_cap(total)
        ):
            order[at] = _Fetch(
                Window(segment.start, segment.end, total),
                attempt=segment.attempt,
                replanned=segment.replanned,
                first=segment.first,
            )
            return
        parts = [
            _Segment(a, b, segment.target, segment.attempt, segment.replanned)
            for a, b in scanner.parts(segment.start, segment.end, total, segment.target)
        ]
        order[at : at + 1] = parts
        # The earliest parts first: the windows at the front of the range hold up the rest.
        self.sizing.extendleft((part, None) for part in reversed(parts))

    def _queue_windows(self) -> None:
        """Hand the windows sized at the front of the range to the reading, in time order; with
        ``max_rows``, drop the range after the window that reaches it."""
        order, index = self.order, self.reported
        while index < len(order):
            one = order[index]
            if isinstance(one, _Segment):
                return
            if not one.queued:
                if not one.replanned:
                    before = order[index - 1] if index else None
                    if (
                        self.max_rows is not None
                        and self.rows >= self.max_rows
                        and isinstance(before, _Fetch)
                        and (self.can_stop is None or self.can_stop(before.window.end))
                    ):
                        self._cut(index)
                        return
                    self.rows += one.window.total
                one.queued = True
                if one.replanned:
                    self._begin(one, urgent=True)  # it holds up the cursor
                else:
                    self.waiting.append(one)
            index += 1
        self._log_plan()

    def _cut(self, index: int) -> None:
        for one in self.order[index:]:
            if isinstance(one, _Segment):
                one.dropped = True
        del self.order[index:]
        self.sizing = deque(ask for ask in self.sizing if not ask[0].dropped)
        self._log_plan()

    def _log_plan(self) -> None:
        if self.planned:
            return
        self.planned = True
        scanner = self.scanner
        windows = [one.window for one in self.order if isinstance(one, _Fetch)]
        log.info(
            "%s: range %s: %d %s in %d windows",
            scanner.path,
            describe_range(windows[0].start if windows else self.range[0], windows[-1].end)
            if windows
            else describe_range(*self.range),
            sum(w.total for w in windows),
            scanner.collection.records,
            len(windows),
        )

    # -- reading -------------------------------------------------------------------------------

    def _begin(self, fetch: _Fetch, total: int | None = None, *, urgent: bool = False) -> None:
        """Queue the pages of a first read (``total`` None: the window's count) or of a read
        again (expecting ``total``). A first read's first page came with the sizing."""
        served = self.scanner.served
        first, fetch.first = fetch.first, None
        if total is None and fetch.window.total == 0:
            # Sized by a page that was empty and said 0: the rule's evidence already.
            fetch.done = True
            return
        expected = max(1, fetch.window.total if total is None else total)
        fetch.pages = served.pages(expected)
        if served.needs_probe(expected):
            # Ask the page that shows the end now, with the others, not after them.
            fetch.pages += 1
        if total is not None:
            first = None  # a read again reads its first page again
        pages = [(fetch, n, fetch.attempt) for n in range(2 if first else 1, fetch.pages + 1)]
        if urgent:
            # Front of the queue: this window holds up the cursor.
            self.tasks.extendleft(reversed(pages))
        else:
            self.tasks.extend(pages)
        if first is not None:
            self.arrived.append((fetch, 1, fetch.attempt, *first))

    def _receive(
        self, fetch: _Fetch, number: int, attempt: int, parsed: ParsedPage, facts: _PageFacts
    ) -> Iterator[Page]:
        """One page of a window arrived: hand it on, and judge the window once all its pages
        are in."""
        scanner = self.scanner
        if parsed.keys:
            yield Page(fetch.window, number, parsed)
        if scanner.on_page is not None:
            scanner.on_page(1, len(parsed.keys))
        scanner.served.saw(facts.rows)
        if attempt != fetch.attempt or fetch.done or fetch.replaced:
            return  # a page of an abandoned read: its rows are real, nothing more
        fetch.received[number] = facts
        fetch.ids.update((number, key) if isinstance(key, tuple) else key for key in parsed.keys)
        if len(fetch.received) < fetch.pages:
            return
        action, value = scanner._settle(fetch)
        if action == _DONE:
            fetch.done = True
        elif action == _MORE:
            first_new, fetch.pages = fetch.pages + 1, value
            self.tasks.extendleft(
                (fetch, n, fetch.attempt) for n in range(value, first_new - 1, -1)
            )
        elif action == _AGAIN:
            fetch.attempt += 1
            fetch.rereads += 1
            fetch.received.clear()
            fetch.ids = set()
            self._begin(fetch, value, urgent=True)
        else:
            # Cut smaller: the window is sized again in place, its parts read before the rest.
            window = fetch.window
            segment = _Segment(
                window.start, window.end, value, attempt=fetch.attempt + 1, replanned=True
            )
            fetch.replaced = True
            fetch.ids = set()
            at = next(i for i, one in enumerate(self.order) if one is fetch)
            self.order[at] = segment
            self.sizing.appendleft((segment, None))


def _record_key(record: Any, page: int, index: int) -> Hashable:
    """What makes a record of a dimension distinct: its id, or its place when it has none."""
    key = record.get("id") if isinstance(record, dict) else None
    if key is None or isinstance(key, (dict, list)):
        return ("no usable id", page, index)
    return key  # type: ignore[no-any-return]


def read_collection(
    client: VoipstudioClient,
    path: str,
    *,
    page_size: int,
    label: str,
    attempts: int = settings.WINDOW_ATTEMPTS,
) -> list[list[dict[str, Any]]]:
    """Every record of a small collection (``/users``, ``/queues``), page by page in id order,
    by rules 1 to 3 of the module docstring: pages until an empty one or one shorter than the
    server has been seen to serve; then every page's ``total`` the same and the distinct ids
    equal to it. A total that under-reports (pages beyond it still hold records) is accepted
    only when two reads to the end agree id for id. Otherwise the collection is read again.

    Args:
        client: the API client.
        path: the collection.
        page_size: the ``limit`` asked.
        label: how error messages name what was read (``account 'x': /users``).
        attempts: reads before giving up.

    Returns:
        The pages' records.

    Raises:
        DataCheckError: the collection did not add up after ``attempts`` reads.
    """
    served = ServedPageSize(page_size, path)
    reason = ""
    previous: set[Hashable] | None = None

    def fetch(number: int) -> tuple[list[dict[str, Any]], int]:
        return client.get_page(path, page=number, limit=page_size, sort="id")

    with ThreadPoolExecutor(2, thread_name_prefix="voipstudio-pages") as pool:
        for _ in range(attempts):
            pages: list[list[dict[str, Any]]] = []
            seen: set[Hashable] = set()
            totals: set[int] = set()
            number, end_seen, last_rows, ordered, last_id = 1, False, 0, True, None
            # Pages 1 and 2 at once: most collections fit in page 1, and page 2 shows where it
            # ends without another round trip.
            ahead = {n: pool.submit(fetch, n) for n in (1, 2)}
            while True:
                future = ahead.pop(number, None) or pool.submit(fetch, number)
                records, total = future.result()
                before = len(seen)
                keys = [_record_key(r, number, i) for i, r in enumerate(records)]
                seen.update(keys)
                for key in keys:
                    if isinstance(key, int):
                        ordered = ordered and (last_id is None or last_id < key)
                        last_id = key
                pages.append(records)
                totals.add(total)
                served.saw(len(records))
                if records and 0 < last_rows < served.size:
                    served.clamped()  # a page shorter than asked, and more records after it
                last_rows = len(records)
                if served.ends(len(records)):
                    end_seen = True
                    break
                if len(seen) == before or number > served.pages(max(totals)) + 1:
                    # A page of records already seen (the API repeats a page), or pages beyond
                    # the total that go on holding records.
                    break
                number += 1
            if end_seen and len(totals) == 1:
                if len(seen) == total:
                    return pages
                if len(seen) > total and previous == seen:
                    log.warning(
                        "%s: the API's total says %d, two reads to its end agree on %d records",
                        label,
                        total,
                        len(seen),
                    )
                    return pages
                previous = seen if len(seen) > total else None
            if len(totals) > 1:
                reason = f"pages reported totals {sorted(totals)} but held {len(seen)} distinct ids"
            elif not end_seen:
                reason = f"{number} pages held {len(seen)} distinct ids and did not end"
            else:
                reason = f"{len(seen)} distinct ids for a total of {total}"
            if not ordered:
                reason += ", in an order other than the one asked"
            log.warning("%s: %s; reading it again", label, reason)
    advice = (
        "the API ignores sort=id&dir=ASC, so pages shift while they are read"
        if not ordered
        else "the API's pages and its total disagree"
    )
    raise DataCheckError(
        f"{label} did not add up after {attempts} reads ({reason}; {advice}); nothing of it "
        "was loaded: run the sync again later (`voipstudio check` tests the API's page size, "
        "sort and totals)"
    )
