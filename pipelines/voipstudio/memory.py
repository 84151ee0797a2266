"""Keeping a sync's memory flat: compact id bookkeeping, freed memory handed back, and
allocators that do not keep what a sync freed.

A sync must hold no more memory for a million CDRs than for a thousand: pages stream through,
and what a load has to remember about every row (its id, so that no id is handed on twice) is
kept in 8 bytes an id, not in a Python set (about 70 bytes an id). What the scan, dlt and DuckDB
free must go back to the system too, or a long backfill's memory creeps up part after part
(:func:`sync_memory`).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
import pyarrow as pa

Ids = npt.NDArray[np.int64]


class IdSet:
    """A growing set of int64 ids, as a few sorted NumPy arrays.

    Ids are added a page at a time. Each batch becomes a sorted run; a run is merged into the
    one before it whenever that one is not more than twice as large, so there are at most about
    ``log2(n / page)`` runs and every id is re-sorted a logarithmic number of times. A lookup
    is one binary search per run.
    """

    def __init__(self) -> None:
        self._runs: list[Ids] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        return bool(self._found(_as_ids([value]))[0])

    def update(self, values: Iterable[int]) -> None:
        """Add ids (repeats and ids already present are fine)."""
        ids = np.unique(_as_ids(values))
        self._push(ids[~self._found(ids)])

    def add_page(self, ids: Ids) -> npt.NDArray[np.bool_] | None:
        """Add a page's ids and tell which of its rows hold an id for the first time.

        Returns:
            None when every row does (the usual case: a page sorted by id, none seen
            before, checked without sorting); otherwise a mask of the rows to keep, the first
            row of each id not seen before.
        """
        found = self._found(ids)
        if not found.any() and (ids.size < 2 or bool(np.all(ids[1:] > ids[:-1]))):
            # A copy: `ids` may be a view of the page's Arrow buffer, which must not be kept.
            self._push(ids.astype(np.int64, copy=True))
            return None
        _, first = np.unique(ids, return_index=True)
        keep = np.zeros(ids.size, dtype=np.bool_)
        keep[first] = True
        keep &= ~found
        self.update(ids)
        return keep

    def _push(self, run: Ids) -> None:
        """Add a sorted run of ids none of which is in the set."""
        if not run.size:
            return
        self._runs.append(run)
        self._size += int(run.size)
        while len(self._runs) > 1 and self._runs[-2].size <= 2 * self._runs[-1].size:
            newer, older = self._runs.pop(), self._runs.pop()
            merged = np.concatenate((older, newer))
            merged.sort(kind="stable")
            self._runs.append(merged)

    def _found(self, ids: Ids) -> npt.NDArray[np.bool_]:
        """Which of ``ids`` are in the set."""
        found = np.zeros(ids.size, dtype=np.bool_)
        for run in self._runs:
            positions = np.searchsorted(run, ids)
            np.minimum(positions, run.size - 1, out=positions)
            found |= run[positions] == ids
        return found


def _as_ids(values: Iterable[int]) -> Ids:
    if isinstance(values, np.ndarray):
        return values.astype(np.int64, copy=False)
    return np.fromiter(values, dtype=np.int64)


# glibc's mallopt parameters (malloc.h) and the values the sync sets (see `bound_heap_retention`).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20
TRIM_THRESHOLD = 4 << 20
_bounded = False
_MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def bound_heap_retention() -> None:
    """Stop glibc's allocator from keeping ever more freed memory as a long sync goes on.

    glibc serves a large block (a 5 MB page body, a DuckDB buffer) from ``mmap`` and gives it
    back when it is freed, but only below a threshold that it raises each time such a block is
    freed, up to 32 MB, and then keeps up to twice that free at the top of each of its per-thread
    arenas (one per thread that allocated, up to 8 per CPU). A sync's workers, dlt's loader and
    DuckDB each allocate in threads of their own, so a backfill committed in parts kept about
    60 MB more after each part (5,000,000 CDRs: 270 MB free but resident at the end).
    ``malloc_trim`` does not give back the top of those arenas. Fixing both thresholds (1 MB for
    ``mmap``, 4 MB kept at an arena's top) turns the adjustment off: what is freed goes back.

    Process-wide and for the rest of the process (glibc has no way to read the old values, so
    they are not put back); once per process. A no-op where ``mallopt`` does not exist, and
    when ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_TOP_PAD_`` is set.
    """
    global _bounded
    if _bounded:
        return
    _bounded = True
    if any(name in os.environ for name in _MALLOC_VARIABLES):
        return  # the user's own tuning (read by glibc when the process started)
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


@contextmanager
def sync_memory() -> Iterator[None]:
    """The allocators a sync (and the models after it) runs with, memory-wise.

    - glibc's thresholds fixed (:func:`bound_heap_retention`).
    - pyarrow allocates from the system allocator instead of its default (mimalloc in the
      wheels), which keeps the segments a scan's pages were decoded in for reuse: 80-140 MB
      resident with nothing allocated, which ``release_unused`` did not give back, and the
      load's DuckDB memory came on top of it. A full sync of 1,000,000 CDRs peaked at about
      375 MB instead of 480, with the same CPU time. pyarrow chooses its allocator once, from
      ``ARROW_DEFAULT_MEMORY_POOL`` when it is first imported (``pipelines`` sets it to
      ``system`` unless it is set); when pyarrow was imported before, its default pool is
      switched for the duration of the context (dlt's Parquet writer keeps the old one then).
      Another ``ARROW_DEFAULT_MEMORY_POOL`` of the user's wins.
    """
    bound_heap_retention()
    previous = pa.default_memory_pool()
    if os.environ.get(ARROW_POOL_VARIABLE, "system") != "system" or (
        previous.backend_name == "system"
    ):
        yield
        return
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def release_free_memory() -> None:
    """Hand memory that the process freed but its allocators kept back to the operating system.

    A scan's worker threads each decode megabytes of JSON per page; glibc keeps what they free
    in per-thread arenas (where it fragments, so a long scan's memory creeps up) and pyarrow's
    allocator keeps its own pool. Neither is reused by the load step (DuckDB has its own
    allocator), so without this the scan's high-water mark and the load's would add up in the
    sync's peak memory. Called after the scan, before dlt loads; a few milliseconds. A
    no-op where ``malloc_trim`` does not exist (macOS, musl).
    """
    pa.default_memory_pool().release_unused()
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
