"""The days reconcile checks, each one the API's wall-clock day in the account's time zone.

The API compares ``calldate`` as wall-clock text of its own zone, and the reader cuts ranges on
wall-clock seconds (``records.wall_seconds``): a day is the range ``(D 00:00:00 - 1 s,
D+1 00:00:00 - 1 s]`` of those seconds, every second of ``D`` and nothing else, whatever the
clocks did that day (a DST day has 23 or 25 real hours and still 86,400 wall seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pipelines.voipstudio.records import api_time, wall_seconds
from pipelines.voipstudio.windows import half_open

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Day:
    """One day to check: CDRs with ``start < calldate <= end`` (wall-clock seconds).

    ``end`` is the day's last second, or earlier for the day the range ends in.
    """

    date: date
    start: int
    end: int

    @property
    def partial(self) -> bool:
        """The range ends before the day does."""
        return self.end - self.start < DAY_SECONDS


def midnight(day: date) -> int:
    """The wall-clock second at which ``day`` starts."""
    return wall_seconds(datetime.combine(day, time()))


def date_of(wall: int) -> date:
    """The day a wall-clock second belongs to."""
    return datetime.fromtimestamp(wall, tz=UTC).date()


def days_between(first: date, end: int, start: int | None = None) -> list[Day]:
    """The days from ``first`` up to the wall-clock second ``end`` (included).

    Args:
        first: the first day.
        end: the last second of the range.
        start: an exclusive lower bound later than ``first``'s midnight (a configured
            ``start_date`` with a time): the first day then starts there.
    """
    days: list[Day] = []
    day = first
    while True:
        # The day [D 00:00:00, D+1 00:00:00) as the scanner's (low, high].
        low, high = half_open(midnight(day), midnight(day + timedelta(days=1)))
        if low >= end:
            return days
        if start is not None:
            low = max(low, start)
        high = min(high, end)
        if high > low:
            days.append(Day(day, low, high))
        day += timedelta(days=1)


def wall_of(instant: datetime, zone: ZoneInfo) -> int:
    """The wall-clock second in ``zone`` of a stored ``calldate`` (an instant)."""
    if instant.tzinfo is None:  # a destination that hands timestamps back without a zone: UTC
        instant = instant.replace(tzinfo=UTC)
    return wall_seconds(instant.astimezone(zone))


def utc_cover(start: int, end: int) -> tuple[datetime, datetime]:
    """UTC instants that surely cover the wall-clock range ``(start, end]`` of any zone (no
    zone is a day or more off UTC); rows are then kept by their own wall time."""
    margin = timedelta(days=1)
    return (
        datetime.fromtimestamp(start, tz=UTC) - margin,
        datetime.fromtimestamp(end, tz=UTC) + margin,
    )


def describe(start: int, end: int) -> tuple[str, str]:
    """The first and last second of ``(start, end]`` as the API's texts."""
    return api_time(start + 1), api_time(end)
