"""Reading a dated collection's range ahead of dlt, across the parts of a run committed in parts.

A run committed in parts (``commit_every_rows``, ``RunPlan.max_rows``) loads each part with its
own ``pipeline.run``: dlt extracts the part, then normalizes and loads it, and only then does
the next part start reading. With an API that answers slowly, those seconds of normalize and
load after each part are seconds in which no request is in flight. :class:`ReadAhead` runs the
range's scans (``windows.WindowScanner.scan``, one per part as before, each starting where the
last one ended) on a thread of its own into a bounded queue, so pages keep arriving while dlt
normalizes and loads the part before; the next part's resource takes the same read over
(:func:`take_over`) when it starts exactly where the last part ended.

**What a part holds** is unchanged by reading ahead: a part hands dlt only rows of windows it
reports complete (and the cursor follows those windows), so a run killed half-way resumes from
the last committed part and reads nothing twice into one load. Pages of a later window that
arrive before the window in front of them is complete are held back (a few, bounded) until it
is; a part ends after a window only when nothing past that window was handed on.

**When a part ends.** Where it ended before: after the window that brings the scan to
``max_rows`` records (the scan itself stops there). And, when the reading waits on the API
rather than on the CPU (the part kept less than ``CPU_BOUND_CORES`` of CPU busy), earlier, so
that what dlt does after the last page (normalize and load) is overlapped with reading for all
parts but a short last one: a part ends once it holds ``MIN_PART_ROWS`` records and at least
``PART_FRACTION`` of the records still ahead (from the scan's count of its range), or once
what is ahead is a short last part (``FINAL_PART_ROWS``). A fast API keeps the CPU busy, so
its parts are cut by ``max_rows`` alone, and between them the next part is not read ahead (the
machine's CPUs are the load's then). A machine whose CPUs other work keeps busy looks the same
as a slow API to this rule (the process gets less than a core either way).

**Every part appends** when the run began on an empty table (``sync.run_sync``), not only the
first: a merge of a later part into the rows of the earlier ones costs several times an append.
The ids of such a run are kept across its parts (:func:`run_ids`, 8 bytes a record), so a
record is handed on once in the whole run (a page of an abandoned read arriving late, a record
whose cursor moved on between two parts).

**Memory.** While dlt normalizes and loads a part, the read holds what the queue holds
(``QUEUED_PER_SLOT`` events a request slot, each at most a parsed page) and the pages held back
(``HELD_PER_SLOT`` a slot at most): bounded, whatever the size of the range.

Nothing here trusts the API more than the scan does: every window is still judged by the
scan's completion rule, and an error of the scan reaches the part that reads at the time, after
every event that came before it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from pipelines.voipstudio.memory import IdSet
from pipelines.voipstudio.windows import Page, WindowDone, WindowScanner

log = logging.getLogger(__name__)

# A part ends early only when its reading kept less than this much CPU busy (in cores): the
# requests wait on the API, and the machine has time for dlt's normalize and load meanwhile.
CPU_BOUND_CORES = 1.0
# An early part holds at least this many records (each part costs dlt a run's fixed work)...
MIN_PART_ROWS = 50_000
# ...and at least this share of the records still ahead in the range (as many: halves), so parts
# shrink towards its end and the last one, whose normalize and load nothing overlaps, is short;
# few parts, since each costs dlt's fixed work of a run in CPU...
PART_FRACTION = 1.0
# ...and a part ends when no more than this many records are ahead: they are the last part.
FINAL_PART_ROWS = 50_000
# Events (mostly parsed pages of up to ``page_size`` records) read ahead, per request slot.
QUEUED_PER_SLOT = 6
# Pages of later windows held back until the window in front of them is complete, per slot;
# beyond it they are handed on, and the part may end only past them.
HELD_PER_SLOT = 8


@dataclass(frozen=True)
class Planned:
    """A scan counted its range: ``total`` records to read (the progress display's goal)."""

    total: int


@dataclass(frozen=True)
class _ScanEnded:
    """A scan stopped after ``max_rows`` at ``end``, before the range's end."""

    end: int


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_FINISHED = object()

ReadEvent = Page | WindowDone | Planned


class ReadAhead:
    """The scans of one resource's range ``(start, end]``, read on a thread of their own.

    Args:
        client: the account's client, entered; closed when the read ends.
        make_scanner: the scanner of the collection for ``client``, given the callback told
            each scan's count.
        start: exclusive lower bound (seconds of the cursor's clock).
        end: inclusive upper bound.
        max_rows: each scan stops after the window that brings it to this many records.
        can_stop: whether a part may end at a second (not inside a repeated hour).
        concurrency: the scanner's request slots (the queue and the held pages scale with it).
    """

    def __init__(
        self,
        client: AbstractContextManager[Any],
        make_scanner: Callable[[Callable[[int], None]], WindowScanner],
        start: int,
        end: int,
        max_rows: int | None,
        can_stop: Callable[[int], bool],
        concurrency: int,
    ) -> None:
        self.client = client
        self.make_scanner = make_scanner
        self.start = start  # where the part being read (or the next one) starts
        self.end = end
        self.max_rows = max_rows
        self.can_stop = can_stop
        self.events: queue.Queue[Any] = queue.Queue(maxsize=QUEUED_PER_SLOT * concurrency)
        self.hold_limit = HELD_PER_SLOT * concurrency
        self.held: deque[Page] = deque()  # pages of windows after ``start``'s, in arrival order
        self.closed = threading.Event()
        # One permit a scan after the first: the next scan starts when the part before lets it
        # (the reading waits on the API) or when the next part starts (``owed``).
        self.next_scan = threading.Semaphore(0)
        self.owed = False
        self.finished = False
        self.rows = 0  # records of the windows reported, all parts
        self.planned = 0  # the current scan's count, and what of it was reported
        self.planned_rows = 0
        self.thread = threading.Thread(
            target=self._produce, name="voipstudio-read-ahead", daemon=True
        )
        self.thread.start()

    # -- the reading thread ------------------------------------------------------------------------

    def _produce(self) -> None:
        try:
            start = self.start
            while True:
                scanner = self.make_scanner(self._planned)
                last: int | None = None
                scan = scanner.scan(start, self.end, max_rows=self.max_rows, can_stop=self.can_stop)
                try:
                    for event in scan:
                        if not self._put(event):
                            return
                        if isinstance(event, WindowDone):
                            last = event.window.end
                finally:
                    scan.close()
                if last is None or last >= self.end:
                    break
                if not self._put(_ScanEnded(last)):
                    return
                # The next scan starts now when the reading waits on the API, else when the
                # next part asks for it (see the module docstring).
                while not self.next_scan.acquire(timeout=0.1):
                    if self.closed.is_set():
                        return
                start = last
            self._put(_FINISHED)
        except BaseException as error:  # handed to the part reading, in order
            self._put(_Failed(error))
        finally:
            self.client.__exit__(None, None, None)

    def _planned(self, total: int) -> None:
        self._put(Planned(total))

    def _put(self, item: Any) -> bool:
        while not self.closed.is_set():
            try:
                self.events.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    # -- a part ------------------------------------------------------------------------------------

    def part(self, *, may_end_early: bool) -> Iterator[ReadEvent]:
        """The events of one part: the pages handed on, the windows reported complete in time
        order, and the scans' counts. Ends where the part ends (see the module docstring);
        :attr:`finished` tells whether the range was read to its end.

        Args:
            may_end_early: the run goes on with another part after this one (a run committed
                in parts), so the part may end before ``max_rows``.

        Raises:
            Exception: what stopped the scan (a ``DataCheckError``, an API error), after every
                event that came before it.
        """
        if self.owed:
            self.owed = False
            self.next_scan.release()
        began, cpu = time.monotonic(), time.process_time()
        handed_past = self.start  # the latest window end a handed page belongs to
        reported = part_rows = 0  # windows reported complete in this part, and their records
        if self.planned:
            yield Planned(max(0, self.planned - self.planned_rows))
        # Pages held back by the part before, in the order they arrived.
        held, self.held = self.held, deque()
        for page in held:
            if page.window.start <= self.start:
                handed_past = max(handed_past, page.window.end)
                yield page
            else:
                self.held.append(page)
        while True:
            item = self.events.get()
            if item is _FINISHED:
                self.finished = True
                self.start = self.end
                yield from self._release_held()
                return
            if isinstance(item, _Failed):
                raise item.error
            if isinstance(item, _ScanEnded):
                if not reported:
                    # The part before ended after the scan's last window: this part is the
                    # next scan's, which starts now.
                    self.next_scan.release()
                    continue
                self._read_on(began, cpu)
                return
            if isinstance(item, Planned):
                self.planned, self.planned_rows = item.total, 0
                yield item
            elif isinstance(item, Page):
                if item.window.start > self.start and len(self.held) < self.hold_limit:
                    self.held.append(item)
                    continue
                handed_past = max(handed_past, item.window.end)
                yield item
            else:
                self.start = item.window.end
                reported += 1
                part_rows += item.rows
                self.rows += item.rows
                self.planned_rows += item.rows
                yield item
                if (
                    may_end_early
                    and handed_past <= self.start
                    and self.can_stop(self.start)
                    and self._ends_here(began, cpu, part_rows)
                ):
                    log.info(
                        "part ended early at %d records: the reading waits on the API, so the "
                        "next part is read while dlt loads this one",
                        self.rows,
                    )
                    return  # the held pages go to the next part
                # The held pages of the window now in front.
                for page in self._release(item.window.end):
                    handed_past = max(handed_past, page.window.end)
                    yield page

    def _release(self, start: int) -> Iterator[Page]:
        keep: deque[Page] = deque()
        for page in self.held:
            if page.window.start <= start:
                yield page
            else:
                keep.append(page)
        self.held = keep

    def _release_held(self) -> Iterator[Page]:
        held, self.held = self.held, deque()
        yield from held

    def _waits_on_api(self, began: float, cpu: float) -> bool:
        wall = time.monotonic() - began
        return wall > 0 and (time.process_time() - cpu) < CPU_BOUND_CORES * wall

    def _read_on(self, began: float, cpu: float) -> None:
        """The scan stopped at ``max_rows``: read the next part ahead while dlt loads this one,
        when the reading waits on the API."""
        if self._waits_on_api(began, cpu):
            self.next_scan.release()
        else:
            self.owed = True

    def _ends_here(self, began: float, cpu: float, rows: int) -> bool:
        """Whether the part, of ``rows`` records so far, should end after the window just
        reported (see the module docstring): the reading waits on the API, and the part is
        long enough for what is ahead."""
        ahead = self.planned - self.planned_rows
        if rows < MIN_PART_ROWS or ahead <= 0 or not self._waits_on_api(began, cpu):
            return False
        return rows >= PART_FRACTION * ahead or ahead <= FINAL_PART_ROWS

    # -- ending ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading: the thread ends once the requests in flight end (it closes the
        client)."""
        self.closed.set()
        while True:
            try:
                self.events.get_nowait()
            except queue.Empty:
                break
        self.held.clear()


# The reads handed from one part to the next: (run, account, resource) -> read.
_WAITING: dict[tuple[str, str, str], ReadAhead] = {}
_LOCK = threading.Lock()


def hand_over(key: tuple[str, str, str], read: ReadAhead) -> None:
    """Keep ``read`` for the next part of run ``key`` (:func:`take_over`)."""
    with _LOCK:
        stale = _WAITING.pop(key, None)
        _WAITING[key] = read
    if stale is not None:
        stale.close()


def take_over(key: tuple[str, str, str], start: int, end: int) -> ReadAhead | None:
    """The read a part before left for ``key``, if it continues exactly at ``(start, end]``;
    one that does not (the state was changed in between) is closed."""
    with _LOCK:
        read = _WAITING.pop(key, None)
    if read is None:
        return None
    if read.start == start and read.end == end and not read.finished:
        return read
    read.close()
    return None


# The ids a run handed on, for resources whose every part appends: (run, account, resource).
_RUN_IDS: dict[tuple[str, str, str], IdSet] = {}


def run_ids(key: tuple[str, str, str]) -> IdSet:
    """The ids handed on by every part of run ``key`` so far (``RunPlan.appending``): a part
    that appends must not hand on a record an earlier part loaded (a page of an abandoned read
    arriving late, a record whose cursor moved on between two parts)."""
    with _LOCK:
        return _RUN_IDS.setdefault(key, IdSet())


def close_reads(run: str) -> None:
    """Close every read kept for run ``run`` (``RunPlan.key``) and forget its ids: the run
    ended, or failed."""
    with _LOCK:
        keys = [key for key in _WAITING if key[0] == run]
        reads = [_WAITING.pop(key) for key in keys]
        for key in [key for key in _RUN_IDS if key[0] == run]:
            del _RUN_IDS[key]
    for read in reads:
        read.close()
