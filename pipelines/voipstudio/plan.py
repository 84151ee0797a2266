"""What one run reads: the range, whether it resumes, and how far a stored cursor is trusted.

The sync builds a :class:`RunPlan` and hands it to ``voipstudio_source(plan=...)``; without one
the source reads incrementally up to now. Instants are converted once, here, into the seconds
of each collection's clock (see ``collection.Cursor``): :meth:`RunPlan.bounds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pipelines.voipstudio.accounts import Account, parse_start
from pipelines.voipstudio.collection import DatedCollection
from pipelines.voipstudio.errors import ConfigError
from pipelines.voipstudio.records import wall_seconds
from pipelines.voipstudio.settings import DEFAULT_START_DAYS_AGO
from pipelines.voipstudio.state import ResourceState

if TYPE_CHECKING:
    from pipelines.voipstudio.rereads import StoredRows

# (table, account): the newest cursor value the destination holds, as a UTC instant.
Ceilings = Mapping[tuple[str, str], datetime]
# (table, account): the rows of a dimension the destination holds.
Held = Mapping[tuple[str, str], int]


@dataclass(frozen=True)
class RunPlan:
    """What one run reads, the same for every account and collection.

    Attributes:
        run_at: when the run started: "now" for every account and collection, and for every
            part of a run committed in parts (which also share their failure budgets).
        start: read from this instant, included, instead of from the cursor less the lag (a
            backfill); a wall-clock reading in each account's ``timezone``.
        end: read up to this instant, excluded, instead of up to ``run_at``, included.
        resume: start exactly at each resource's stored cursor, without the lag: the next
            part of a run committed in parts, whose lag the first part read.
        max_rows: stop after the window that brings a resource to this many records (a long
            backfill is committed in parts this way); the resource then sets ``more``.
        ceilings: per ``(table, account)``, the newest cursor value the destination actually
            holds; a pair missing holds nothing. A stored cursor is never trusted beyond it:
            if a load failed after its state was saved locally, the next run reads that data
            again. None: trust the cursors.
        held: per ``(table, account)``, the rows of each dimension the destination holds (a
            pair missing holds none). A dimension read exactly as its last load is loaded again
            only when the destination does not hold as many rows of it as it has records. None:
            not known, every dimension is loaded.
        stored: per ``(table, account)`` of a dated collection, the destination's rows of the
            window the run reads again (``rereads``): a re-read row equal to its stored
            version is not loaded again. A pair missing (or None) loads every row read.
    """

    run_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    start: datetime | None = None
    end: datetime | None = None
    resume: bool = False
    max_rows: int | None = None
    ceilings: Ceilings | None = None
    held: Held | None = None
    stored: Mapping[tuple[str, str], StoredRows] | None = None

    def __post_init__(self) -> None:
        if self.run_at.tzinfo is None:
            raise ValueError("run_at must be an aware datetime")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ConfigError(f"the range's start {self.start} must be before its end {self.end}")

    @classmethod
    def backfill(cls, start: str | None, end: str | None, **plan: object) -> RunPlan:
        """A plan of the range ``[start, end)`` (texts as ``--start`` and ``--end`` take them).

        Raises:
            ConfigError: a text that is not a date, or a start not before the end.
        """
        first = parse_start(start, "--start") if start else None
        last = parse_start(end, "--end") if end else None
        if first is not None and last is not None and first >= last:
            raise ConfigError(f"--start {start} must be before --end {end}")
        return cls(start=first, end=last, **plan)  # type: ignore[arg-type]

    @property
    def update_cursor(self) -> bool:
        """Whether the run moves the cursors: not a backfill of an explicit range."""
        return self.start is None and self.end is None

    @property
    def key(self) -> str:
        """What identifies the run (its parts share it)."""
        return self.run_at.isoformat()

    def bounds(
        self, collection: DatedCollection, account: Account, state: ResourceState
    ) -> tuple[int, int]:
        """The range ``(start, end]`` the scanner reads, in seconds of the collection's clock.

        A user's start (``--start``, ``start_date``, the default 30 days back) is **included**,
        and an explicit ``--end`` is **excluded**: ``--start A --end B`` reads ``[A, B)``, so
        ``--start A --end B`` then ``--start B --end C`` leave neither a gap nor an overlap.
        Without ``--end`` the range ends at the run's start, included. An incremental run keeps
        its exclusive cursor: ``(cursor - lag, now]``.
        """
        clock = ZoneInfo(collection.cursor.clock(account.timezone))
        zone = ZoneInfo(account.timezone)

        def seconds(wall: datetime) -> int:
            # A reading in the account's zone, as seconds of the collection's clock.
            if clock == zone:
                return wall_seconds(wall)
            instant = wall.replace(tzinfo=zone, fold=0)
            return wall_seconds(instant.astimezone(clock))

        # Date values are whole seconds: an included start s is read as `gt s - 1`, an
        # excluded end e as `lte e - 1` (windows.half_open).
        if self.end is not None:
            end = seconds(self.end) - 1
        else:
            end = wall_seconds(self.run_at.astimezone(clock))
        if self.start is not None:
            return seconds(self.start) - 1, end
        cursor = None if state.cursor is None else _stored(state.cursor)
        if self.resume and cursor is not None:
            return cursor, end
        if self.ceilings is not None and cursor is not None:
            newest = self.ceilings.get((collection.name, account.name))
            # Nothing loaded: the cursor is not trusted at all.
            cursor = None if newest is None else min(cursor, _in_clock(newest, clock))
        if cursor is not None:
            return cursor - int(account.lag.total_seconds()), end
        if account.start_date is not None:
            return seconds(account.start_date) - 1, end
        # The day the range ends on, in the account's zone.
        last = datetime.fromtimestamp(end, tz=UTC).replace(tzinfo=clock)
        day = last.astimezone(zone).replace(hour=0, minute=0, second=0, tzinfo=None)
        return seconds(day - timedelta(days=DEFAULT_START_DAYS_AGO)) - 1, end


def _stored(cursor: str) -> int:
    return wall_seconds(parse_start(cursor, "the stored cursor"))


def _in_clock(instant: datetime, clock: ZoneInfo) -> int:
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return wall_seconds(instant.astimezone(clock))
