"""How numbers, durations and changes are written on the dashboard."""

from __future__ import annotations

from datetime import date

from pipelines.report.data import Kpi

NOT_AVAILABLE = "\N{EN DASH}"


def count(value: float | None) -> str:
    """``12,345``."""
    return NOT_AVAILABLE if value is None else f"{round(value):,}"


def percent(value: float | None, digits: int = 1) -> str:
    """A ratio as ``64.7%``."""
    return NOT_AVAILABLE if value is None else f"{100 * value:.{digits}f}%"


def duration(seconds: float | None) -> str:
    """``45s``, ``4m 04s``, ``2h 05m``; from two days on ``3d 04h``."""
    if seconds is None:
        return NOT_AVAILABLE
    total = round(seconds)
    if total >= 2 * 86_400:
        days, rest = divmod(total, 86_400)
        return f"{days:,}d {rest // 3600:02d}h"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours:,}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def money(value: float | None) -> str:
    """Account currency, two decimals: ``1,234.56``."""
    return NOT_AVAILABLE if value is None else f"{value:,.2f}"


def day(value: date) -> str:
    """``Mon 3 Nov 2026``."""
    return f"{value:%a} {value.day} {value:%b %Y}"


def day_range(start: date, end: date) -> str:
    """``3 Nov 2026 - 2 Dec 2026`` with an en dash (one day: ``Mon 3 Nov 2026``)."""
    if start == end:
        return day(start)
    return f"{start.day} {start:%b %Y} \N{EN DASH} {end.day} {end:%b %Y}"


def kpi_value(kpi: Kpi, value: float | None = None, *, current: bool = True) -> str:
    """The tile's value (or ``value``) written for its kind."""
    number = (kpi.value if current else kpi.previous) if value is None else value
    if kpi.kind == "ratio":
        return percent(number)
    if kpi.kind == "seconds":
        return duration(number)
    if kpi.kind == "money":
        return money(number)
    return count(number)


def kpi_change(kpi: Kpi) -> tuple[str, str]:
    """The change against the previous period and its tone: ``good``, ``bad`` or ``flat``.

    Ratios change by percentage points, everything else by a relative percentage.
    """
    change = kpi.change
    if change is None:
        return "no change to show", "flat"
    text = f"{100 * change:+.1f} pp" if kpi.kind == "ratio" else f"{100 * change:+.1f}%"
    if abs(change) < 0.0005:  # shows as 0.0 either way
        return f"▬ {text.lstrip('+')}", "flat"
    arrow = "▲" if change > 0 else "▼"
    if kpi.better == "neither":
        tone = "flat"
    else:
        tone = "good" if (change > 0) == (kpi.better == "higher") else "bad"
    return f"{arrow} {text}", tone
