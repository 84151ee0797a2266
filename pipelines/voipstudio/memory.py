"""Keeping a sync's memory flat: compact id bookkeeping, and freed memory handed back.

A sync must hold no more memory for a million CDRs than for a thousand: pages stream through,
and what a load has to remember about every row (its id, so that no id is handed on twice) is
kept in 8 bytes an id, not in a Python set (about 70 bytes an id).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable

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
