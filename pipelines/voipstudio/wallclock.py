"""The API's wall-clock date texts (``calldate``, ``origtime``, ...) as UTC instants, across
daylight-saving changes.

Written for CDRs, and the same for every dated collection whose declaration says when a record
is written (``written_after``: a CDR's ``duration``, a voicemail's). With ``timezone`` set to a
zone that changes its clocks, two readings of a wall-clock text need care:

- **A repeated hour** (autumn: in Europe/Madrid 02:00-02:59 happens twice, first at UTC+2,
  then at UTC+1). The text alone cannot say which pass a CDR belongs to, but its id can: ids
  grow in the order CDRs are written, and a CDR is written when its call ends. So in id order
  the end of each call (start + ``duration``) never goes back in time by more than a little
  (:data:`END_ORDER_TOLERANCE`). :class:`FoldResolver` reads the CDRs of the hour in id order
  and places each in **the first pass, unless a CDR written before it ended later than the
  first pass allows**: then it is in the second pass. The CDRs of the repeated hour are held
  back until the whole range has been read, so the evidence does not depend on how pages or
  windows are cut, and a range that starts inside the hour is read from before it (see
  :func:`widen_start`). A CDR without such evidence (alone in the hour, nothing written in
  the hour before it) is placed in the first pass: the choice is deterministic, and
  ``calldate_raw`` keeps the API's text, so nothing is lost.
- **A skipped hour** (spring: 02:00-02:59 does not exist). A text inside it is read with the
  offset in force before the change, as if the clock had not been moved yet: 02:30 in
  Europe/Madrid on the spring day is 01:30 UTC (= 03:30 summer time), which is what Python's
  ``zoneinfo``, PostgreSQL and java.time answer too.

Times are microseconds (Arrow's ``timestamp("us")``) in the arrays, seconds elsewhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MICROS = 1_000_000
# How far, in id order, the end of a call may lie before the end of one written earlier:
# CDRs of calls that hang up in the same moment are written in any order, and a record may
# be written a little after its call ended. A CDR is placed in the second pass only when a
# CDR written before it ended more than this after its first-pass end.
END_ORDER_TOLERANCE = 600
# The CDRs that can tell the passes apart are those written during and shortly after the
# repeated hour: calls started up to this long before it, and ended up to this long after.
EVIDENCE_BEFORE = 2 * 3600
EVIDENCE_AFTER = 12 * 3600
UTC_TYPE = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Shift:
    """One change of a zone's UTC offset, in seconds.

    Attributes:
        at: the UTC instant of the change.
        before: the offset until then.
        after: the offset from then on.
    """

    at: int
    before: int
    after: int

    @property
    def is_fold(self) -> bool:
        """The clocks go back: the wall-clock interval repeats."""
        return self.after < self.before

    @property
    def wall_start(self) -> int:
        """First wall-clock second that repeats (fold) or does not exist (gap)."""
        return self.at + min(self.before, self.after)

    @property
    def wall_end(self) -> int:
        """The wall-clock second after the repeated or missing interval."""
        return self.at + max(self.before, self.after)

    def describe(self, zone: str) -> str:
        """E.g. ``2026-10-25 02:00:00-02:59:59 (Europe/Madrid, UTC+02:00 then UTC+01:00)``."""
        start = datetime.fromtimestamp(self.wall_start, UTC).strftime("%Y-%m-%d %H:%M:%S")
        last = datetime.fromtimestamp(self.wall_end - 1, UTC).strftime("%H:%M:%S")
        return f"{start}-{last} ({zone}, UTC{_offset(self.before)} then UTC{_offset(self.after)})"


def _offset(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@lru_cache(maxsize=256)
def _year_shifts(zone: str, year: int) -> tuple[Shift, ...]:
    """The offset changes of ``zone`` during one UTC year (found by sampling every 6 hours,
    then bisecting to the second: zones change their offset at most a few times a year)."""
    tz = ZoneInfo(zone)

    def offset(instant: int) -> int:
        value = datetime.fromtimestamp(instant, tz).utcoffset() or timedelta(0)
        return int(value.total_seconds())

    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    shifts: list[Shift] = []
    step = 6 * 3600
    low, low_offset = start, offset(start)
    while low < end:
        high = min(low + step, end)
        high_offset = offset(high)
        if high_offset != low_offset:
            a, b = low, high  # offset(a) == low_offset, offset(b) != low_offset
            while b - a > 1:
                middle = (a + b) // 2
                if offset(middle) == low_offset:
                    a = middle
                else:
                    b = middle
            shifts.append(Shift(b, low_offset, offset(b)))
        low, low_offset = high, high_offset
    return tuple(shifts)


def zone_shifts(zone: str, first: int, last: int) -> tuple[Shift, ...]:
    """The offset changes of ``zone`` whose affected wall-clock interval, widened by the
    evidence margins, overlaps ``[first, last]`` (wall-clock seconds)."""
    if zone == "UTC":
        return ()
    lo_year = datetime.fromtimestamp(first - 2 * 86400, UTC).year
    hi_year = datetime.fromtimestamp(last + 2 * 86400, UTC).year
    return tuple(
        shift
        for year in range(lo_year, hi_year + 1)
        for shift in _year_shifts(zone, year)
        if shift.wall_start - EVIDENCE_AFTER - 86400 <= last
        and shift.wall_end + EVIDENCE_AFTER >= first
    )


def longest_fold(zone: str, around: int | None = None) -> int:
    """Seconds of the longest repeated interval of ``zone`` in the years around ``around``
    (UTC seconds; default now): 3600 for zones with daylight saving time, 0 for others."""
    if zone == "UTC":
        return 0
    year = datetime.fromtimestamp(around, UTC).year if around else datetime.now(UTC).year
    shifts = [s for y in (year - 1, year, year + 1) for s in _year_shifts(zone, y) if s.is_fold]
    return max((s.before - s.after for s in shifts), default=0)


def widen_start(start: int, zone: str) -> int:
    """Where to start reading a range that starts at wall-clock second ``start``: before the
    repeated hour (and its evidence margin) when ``start`` falls inside them, so that both
    passes of the hour and the CDRs that tell them apart are read together."""
    for shift in zone_shifts(zone, start, start):
        if shift.is_fold and shift.wall_start - EVIDENCE_BEFORE < start < shift.wall_end:
            return shift.wall_start - EVIDENCE_BEFORE
    return start


@dataclass
class Localized:
    """A page's ``calldate`` as UTC, and what is needed to settle its repeated-hour CDRs.

    Attributes:
        utc: the instants, repeated-hour CDRs provisionally in the first pass.
        ambiguous: which rows are in a repeated hour (None: no row is).
        second_pass: per row, microseconds to add if it is in the second pass (0 elsewhere).
        shifts: the zone's offset changes near the page.
    """

    utc: pa.Array
    ambiguous: BoolArray | None = None
    second_pass: IntArray | None = None
    shifts: tuple[Shift, ...] = ()


def localize(wall: pa.Array, zone: str) -> Localized:
    """UTC instants of wall-clock readings (``timestamp("us")`` without a zone; nulls stay).

    A reading in a skipped hour takes the offset in force before the change; one in a
    repeated hour takes the first pass, and is flagged so that :class:`FoldResolver` can
    place it.
    """
    if zone == "UTC":
        return Localized(wall.cast(UTC_TYPE))
    utc = pc.assume_timezone(wall, timezone=zone, ambiguous="earliest", nonexistent="earliest")
    bounds = pc.min_max(wall)
    low, high = bounds["min"].value, bounds["max"].value
    if low is None or high is None:
        return Localized(utc.cast(UTC_TYPE))
    shifts = zone_shifts(zone, low // MICROS, high // MICROS)
    affecting = [s for s in shifts if s.wall_start * MICROS <= high and s.wall_end * MICROS > low]
    if not affecting:
        return Localized(utc.cast(UTC_TYPE), shifts=shifts)
    micros = _int64(wall)
    present = np.asarray(wall.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
    result = _int64(utc).copy()
    ambiguous = np.zeros(len(wall), dtype=np.bool_)
    second = np.zeros(len(wall), dtype=np.int64)
    for shift in affecting:
        inside = (
            present & (micros >= shift.wall_start * MICROS) & (micros < shift.wall_end * MICROS)
        )
        if not inside.any():
            continue
        # Both readings, first pass / before the change: wall - offset before.
        result[inside] = micros[inside] - shift.before * MICROS
        if shift.is_fold:
            ambiguous |= inside
            second[inside] = (shift.before - shift.after) * MICROS
    utc_array = pa.array(result, type=pa.int64(), mask=~present).cast(UTC_TYPE)
    if not ambiguous.any():
        return Localized(utc_array, shifts=shifts)
    return Localized(utc_array, ambiguous, second, shifts)


@dataclass
class FoldRows:
    """The rows of one page near a repeated hour, in seconds.

    Attributes:
        ids: CDR ids.
        ends: when each call ended (start + duration), first-pass reading for repeated-hour rows.
        second_pass: seconds a repeated-hour row moves if it is in the second pass (0 for others).
    """

    ids: IntArray
    ends: IntArray
    second_pass: IntArray
    folds: tuple[Shift, ...] = ()

    @classmethod
    def of_page(
        cls, ids: pa.Array, localized: Localized, durations: pa.Array | None
    ) -> FoldRows | None:
        """The evidence a page holds for the repeated hours near it, if any.

        Args:
            ids: the records' ids.
            localized: their instants.
            durations: seconds after its instant each record was written (a CDR's
                ``duration``: it is written when the call ends); None: at its instant.
        """
        folds = [s for s in localized.shifts if s.is_fold]
        if not folds:
            return None
        starts = _seconds(localized.utc)
        if durations is None:
            ends = starts
        else:
            lasting = durations.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            ends = starts + np.clip(lasting, 0, None)
        keep = np.zeros(len(starts), dtype=np.bool_)
        for fold in folds:
            first_pass_start = fold.at - (fold.before - fold.after)
            keep |= (ends >= first_pass_start) & (starts <= fold.at + EVIDENCE_AFTER)
        if localized.ambiguous is not None:
            keep |= localized.ambiguous
        if not keep.any():
            return None
        second = (
            np.zeros(len(starts), dtype=np.int64)
            if localized.second_pass is None
            else localized.second_pass // MICROS
        )
        return cls(
            ids.to_numpy(zero_copy_only=False).astype(np.int64)[keep],
            ends[keep],
            second[keep],
            tuple(folds),
        )


def _int64(instants: pa.Array) -> IntArray:
    """Microseconds of timestamps as int64 (nulls as 0)."""
    values = instants.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.int64)


def _seconds(instants: pa.Array) -> IntArray:
    return _int64(instants) // MICROS


@dataclass
class Placement:
    """How the CDRs of repeated hours were placed (for the log and for tests)."""

    second_pass: int = 0  # a CDR written before it ended after its first-pass reading
    first_pass: int = 0  # a CDR written after it ended before its second-pass reading
    no_evidence: int = 0  # nothing tells: first pass by rule
    conflicting: int = 0  # evidence against both (written late?): first pass by rule


@dataclass
class FoldResolver:
    """Holds back the CDRs of repeated hours until a range is read, then places them.

    Feed every page of the range to :meth:`take` (it returns the rows to hand on now), and
    call :meth:`release` once the range has been read: it returns the held rows with their
    ``calldate`` settled (see the module docstring for the rule).
    """

    zone: str
    account: str = ""
    records: str = "CDRs"  # how the log counts them
    key: str = "id"
    cursor: str = "calldate"
    evidence: list[FoldRows] = field(default_factory=list)
    held: list[pa.Table] = field(default_factory=list)
    folds: set[Shift] = field(default_factory=set)
    placement: Placement = field(default_factory=Placement)

    def take(self, table: pa.Table, rows: FoldRows | None, ambiguous: BoolArray | None) -> pa.Table:
        """The rows of a page that can be handed on now; the repeated-hour ones are kept."""
        if rows is not None:
            self.evidence.append(rows)
            self.folds.update(rows.folds)
        if ambiguous is None or not ambiguous.any():
            return table
        self.held.append(table.filter(pa.array(ambiguous)))
        return table.filter(pa.array(~ambiguous))

    def release(self) -> pa.Table | None:
        """The held rows, each id once, with ``calldate`` placed; None if none were held."""
        if not self.held:
            return None
        held = pa.concat_tables(self.held).combine_chunks()
        self.held = []
        ids = np.concatenate([rows.ids for rows in self.evidence])
        ends = np.concatenate([rows.ends for rows in self.evidence])
        shift = np.concatenate([rows.second_pass for rows in self.evidence])
        # One entry per id (pages read twice hold the same rows), in the order CDRs were written.
        order = np.lexsort((np.arange(len(ids)), ids))
        ids, ends, shift = ids[order], ends[order], shift[order]
        last = np.append(ids[1:] != ids[:-1], True)
        ids, ends, shift = ids[last], ends[last], shift[last]
        moved = self._place(ends, shift)
        second = dict(zip(ids[moved].tolist(), shift[moved].tolist(), strict=True))
        held_ids = held.column(self.key).to_pylist()
        offsets = pa.array([second.get(i, 0) * MICROS for i in held_ids], type=pa.int64())
        stamps = pc.add(held.column(self.cursor).cast(pa.int64()), offsets).cast(UTC_TYPE)
        index = held.schema.get_field_index(self.cursor)
        held = held.set_column(index, held.schema.field(index), stamps)
        hours = ", ".join(f.describe(self.zone) for f in sorted(self.folds, key=lambda f: f.at))
        log.info(
            "account '%s': %d %s of a repeated hour (%s): %d placed in the second pass and "
            "%d in the first by the order of their ids; %d without evidence and %d with "
            "conflicting evidence placed in the first pass",
            self.account,
            len(set(held_ids)),
            self.records,
            hours,
            self.placement.second_pass,
            self.placement.first_pass,
            self.placement.no_evidence,
            self.placement.conflicting,
        )
        return held

    def _place(self, ends: IntArray, shift: IntArray) -> BoolArray:
        """Which repeated-hour rows (``shift > 0``, in id order) are in the second pass."""
        count = len(ends)
        moved = np.zeros(count, dtype=np.bool_)
        # The earliest end of the CDRs written after each row: evidence against the second pass.
        later_min = np.empty(count, dtype=np.int64)
        running = np.iinfo(np.int64).max
        for index in range(count - 1, -1, -1):
            later_min[index] = running
            if shift[index] == 0:
                running = min(running, int(ends[index]))
        latest = np.iinfo(np.int64).min
        for index in range(count):
            end = int(ends[index])
            if shift[index] == 0:
                latest = max(latest, end)
                continue
            first_fits = end >= latest - END_ORDER_TOLERANCE
            second_end = end + int(shift[index])
            second_fits = second_end <= int(later_min[index]) + END_ORDER_TOLERANCE
            if not first_fits and second_end >= latest - END_ORDER_TOLERANCE:
                moved[index] = True
                self.placement.second_pass += 1
                end = second_end
            elif first_fits and not second_fits:
                self.placement.first_pass += 1
            elif first_fits:
                self.placement.no_evidence += 1
            else:
                self.placement.conflicting += 1
            latest = max(latest, end)
        return moved
