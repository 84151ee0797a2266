"""What the dashboard's charts say in words, and the font they are drawn in.

The charts themselves are drawn in the page by Chart.js (``dashboard.js``) from the embedded
data (``cube.py``); the palette there is Okabe-Ito, which stays distinguishable with the common
colour-vision deficiencies.
"""

from __future__ import annotations

from pipelines.report.data import ReportData

FONT = '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'


def busy_hour_summary(data: ReportData) -> str:
    """One sentence on the busy hours of the months of the period ('' when there are none):
    agg_busy_hour_monthly's time-consistent busy hour (TCBH) and average daily peak hour
    (ADPH), over each month's complete business days."""
    parts = []
    for busy in data.busy_hours:
        hour, minute = (int(part) for part in busy.start_local.split(":"))
        who = f"{busy.account}, " if data.accounts.several else ""
        days = "day" if busy.days_counted == 1 else "days"
        parts.append(
            f"{who}{busy.month:%B %Y}: {busy.start_local}\N{EN DASH}"
            f"{(hour + 1) % 24:02d}:{minute:02d}, {busy.tcbh_erlangs:.1f} Erlangs carried and "
            f"{busy.tcbh_call_attempts:.0f} call attempts (BHCA); average daily peak hour "
            f"{busy.adph_erlangs:.1f} Erlangs ({busy.days_counted} complete business {days})"
        )
    if not parts:
        return ""
    return "Time-consistent busy hour: " + "; ".join(parts) + "."
