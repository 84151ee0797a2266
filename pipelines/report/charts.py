"""The dashboard's charts as Plotly figure specifications (plain JSON-able dicts).

Each chart is a :class:`Chart`: a title, a one-line subtitle, and either a figure or the message
shown instead when there is nothing to draw (no calls in the period, a model not built). Colours
are fixed per outcome and per measure so the same thing looks the same everywhere; the palette is
Okabe-Ito, which stays distinguishable with the common colour-vision deficiencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipelines.report.data import OUTCOMES, ReportData, TrafficHour

FONT = '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
TEXT = "#1f2933"
GRID = "#e6e9ee"
AXIS_LINE = "#c9ced6"
OUTCOME_COLORS = {
    "answered": "#009E73",
    "no_answer": "#E69F00",
    "busy": "#D55E00",
    "failed": "#CC79A7",
    "other": "#999999",
}
OUTCOME_LABELS = {
    "answered": "Answered",
    "no_answer": "No answer",
    "busy": "Busy",
    "failed": "Failed",
    "other": "Other",
}
TRAFFIC_COLOR = "#0072B2"
BUSY_HOUR_COLOR = "#D55E00"
COST_COLOR = "#0072B2"
COST_PER_MINUTE_COLOR = "#E69F00"
# Sequential, light (few calls) to dark (many); plotly's named "Blues" runs the other way.
HEAT_SCALE = [[0.0, "#f2f7fc"], [0.35, "#9ecae1"], [0.7, "#3182bd"], [1.0, "#08306b"]]
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
NO_CALLS = "No calls in this period."
BAR_WIDTH_MS = 0.75 * 86_400_000  # three quarters of a day

Figure = dict[str, Any]


@dataclass(frozen=True)
class Chart:
    """One chart of the dashboard.

    Attributes:
        key: stable identifier; the chart's element is ``chart-<key>``.
        title: the card's title.
        subtitle: one line under it: what is measured, how.
        figure: the Plotly figure (``data`` and ``layout``), or None when there is nothing to
            draw.
        empty: what is shown instead of an absent figure.
        wide: whether the card spans the whole width.
    """

    key: str
    title: str
    subtitle: str
    figure: Figure | None
    empty: str = NO_CALLS
    wide: bool = False


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "standoff": 8},
        "gridcolor": GRID,
        "linecolor": AXIS_LINE,
        "zeroline": False,
        "automargin": True,
        **extra,
    }


def _layout(height: int, **extra: Any) -> dict[str, Any]:
    return {
        "height": height,
        "font": {"family": FONT, "size": 12, "color": TEXT},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        # Room at the top for plotly's toolbar, so it never covers a bar or a label.
        "margin": {"l": 8, "r": 8, "t": 30, "b": 8},
        "hoverlabel": {"font": {"family": FONT}},
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.02,
            "yanchor": "bottom",
            "traceorder": "normal",
        },
        **extra,
    }


def _day_axis(data: ReportData, title: str) -> dict[str, Any]:
    """A date axis covering exactly the period, one tick a day for short periods (so a
    single day is one labelled bar, not an axis of hours)."""
    start = datetime.combine(data.period.start, datetime.min.time()) - timedelta(hours=12)
    end = datetime.combine(data.period.end, datetime.min.time()) + timedelta(hours=12)
    axis = _axis(title, type="date", range=[start.isoformat(), end.isoformat()])
    axis["tickformat"] = "%a %d %b" if data.period.days <= 14 else "%d %b"
    if data.period.days <= 14:
        axis["dtick"] = 86_400_000  # one day, in milliseconds
    return axis


def daily_outcomes(data: ReportData) -> Chart:
    """Stacked bars: calls started each day by outcome."""
    subtitle = (
        f"Calls started each day ({data.timezone}), any direction, by outcome. "
        "Answered: a leg connected and talked."
    )
    if "daily" in data.missing or not data.daily:
        return Chart(
            "daily",
            "Daily volume by outcome",
            subtitle,
            None,
            data.missing.get("daily", NO_CALLS),
            wide=True,
        )
    traces = []
    for outcome in OUTCOMES:
        rows = [row for row in data.daily if row.outcome == outcome]
        if not rows:
            continue
        traces.append(
            {
                "type": "bar",
                "name": OUTCOME_LABELS[outcome],
                "x": [row.call_date.isoformat() for row in rows],
                "y": [row.calls for row in rows],
                "marker": {"color": OUTCOME_COLORS[outcome]},
                # Explicit: plotly sizes bars by the gap between x values, and a single day has
                # none (its bar would be one millisecond wide).
                "width": BAR_WIDTH_MS,
                "hovertemplate": f"%{{x|%a %d %b %Y}}<br>%{{y:,}} {OUTCOME_LABELS[outcome]}"
                "<extra></extra>",
            }
        )
    layout = _layout(
        340,
        barmode="stack",
        xaxis=_day_axis(data, f"Day ({data.timezone})"),
        yaxis=_axis("Calls", rangemode="tozero"),
    )
    figure = {"data": traces, "layout": layout}
    return Chart("daily", "Daily volume by outcome", subtitle, figure, wide=True)


def hour_weekday_heatmap(data: ReportData) -> Chart:
    """Heatmap: average calls started per hour of the day, by weekday."""
    title = "Calls by hour and weekday"
    subtitle = (
        f"Average calls started in each hour ({data.timezone}) on a day of that weekday in "
        "the period."
    )
    if "heatmap" in data.missing or not any(cell.calls for cell in data.heatmap):
        return Chart("heatmap", title, subtitle, None, data.missing.get("heatmap", NO_CALLS))
    z: list[list[float | None]] = [[None] * 24 for _ in WEEKDAYS]
    custom: list[list[list[int]]] = [[[0, 0] for _ in range(24)] for _ in WEEKDAYS]
    for cell in data.heatmap:
        z[cell.weekday - 1][cell.hour] = round(cell.average, 2)
        custom[cell.weekday - 1][cell.hour] = [cell.calls, cell.hours]
    trace = {
        "type": "heatmap",
        "x": list(range(24)),
        "y": list(WEEKDAYS),
        "z": z,
        "customdata": custom,
        "colorscale": HEAT_SCALE,
        "zmin": 0,
        "xgap": 2,
        "ygap": 2,
        "hoverongaps": False,
        "colorbar": {"title": {"text": "calls / hour", "side": "right"}, "thickness": 12},
        "hovertemplate": "%{y} %{x}:00\N{EN DASH}%{x}:59<br>%{z:.1f} calls on average"
        "<br>%{customdata[0]:,} calls in %{customdata[1]} such hours<extra></extra>",
    }
    layout = _layout(
        320,
        xaxis=_axis(
            f"Hour of day ({data.timezone})",
            tickmode="array",
            tickvals=list(range(0, 24, 3)),
            ticktext=[f"{hour:02d}:00" for hour in range(0, 24, 3)],
            showgrid=False,
        ),
        yaxis=_axis("", autorange="reversed", showgrid=False),
    )
    return Chart("heatmap", title, subtitle, {"data": [trace], "layout": layout})


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


def _hour_points(hours: list[TrafficHour]) -> dict[str, Any]:
    """A trace's points, one per hour: its start, its Erlangs, and what the hover shows."""
    return {
        "x": [hour.hour_start_local.isoformat(sep=" ") for hour in hours],
        "y": [round(hour.erlangs, 4) for hour in hours],
        "customdata": [[hour.call_attempts, hour.peak_concurrent_calls] for hour in hours],
    }


def erlangs(data: ReportData) -> Chart:
    """Carried traffic per hour, each day's busy hour marked."""
    title = "Carried traffic per hour"
    subtitle = (
        "Erlangs = seconds the legs held a channel (ringing and talk) in the hour / 3600 "
        "(ITU-T E.600). Diamonds mark each day's peak hour."
    )
    if "traffic" in data.missing or not any(hour.erlangs for hour in data.traffic):
        return Chart(
            "traffic", title, subtitle, None, data.missing.get("traffic", NO_CALLS), wide=True
        )
    hover = (
        "%{x|%a %d %b %H:00}<br>%{y:.2f} Erlangs<br>%{customdata[0]:,} calls started · "
        "at most %{customdata[1]:,} at once"
    )
    hours = data.traffic
    busy = [hour for hour in hours if hour.is_busy_hour]
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Carried traffic (Erlangs)",
            **_hour_points(hours),
            "line": {"color": TRAFFIC_COLOR, "width": 1.5},
            "fill": "tozeroy",
            "fillcolor": "rgba(0, 114, 178, 0.12)",
            "hovertemplate": hover + "<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "Busy hour of the day",
            **_hour_points(busy),
            "marker": {
                "color": BUSY_HOUR_COLOR,
                "size": 8,
                "symbol": "diamond",
                "line": {"color": "#ffffff", "width": 1},
            },
            "hovertemplate": "Busy hour: " + hover + " (BHCA)<extra></extra>",
        },
    ]
    summary = busy_hour_summary(data)
    layout = _layout(
        340,
        xaxis=_axis(f"Hour ({data.timezone})", type="date"),
        yaxis=_axis("Erlangs", rangemode="tozero"),
    )
    return Chart(
        "traffic",
        title,
        f"{subtitle} {summary}".strip(),
        {"data": traces, "layout": layout},
        wide=True,
    )


def destinations(data: ReportData) -> Chart:
    """Top outbound destinations by cost, with their cost per minute."""
    title = "Top destinations by cost"
    subtitle = (
        f"Outbound calls started in the period, the {len(data.destinations) or 'top'} "
        "destinations that cost most; cost per minute = cost / minutes of talk."
    )
    rows = [row for row in data.destinations if row.cost > 0]
    if "destinations" in data.missing or not rows:
        return Chart(
            "destinations",
            title,
            subtitle,
            None,
            data.missing.get("destinations", "No outbound calls with a cost in this period."),
        )
    names = [row.name for row in rows]
    custom = [[row.attempts, row.answered_calls, round(row.talk_seconds / 60)] for row in rows]
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "Cost",
            "x": [round(row.cost, 4) for row in rows],
            "y": names,
            "customdata": custom,
            "marker": {"color": COST_COLOR},
            "texttemplate": "%{x:,.2f}",
            "textposition": "auto",
            "hovertemplate": "%{y}<br>cost %{x:,.2f}<br>%{customdata[0]:,} calls, "
            "%{customdata[1]:,} answered, %{customdata[2]:,} min<extra></extra>",
            "xaxis": "x",
            "yaxis": "y",
        },
        {
            "type": "bar",
            "orientation": "h",
            "name": "Cost per minute",
            "x": [
                None if row.cost_per_minute is None else round(row.cost_per_minute, 4)
                for row in rows
            ],
            "y": names,
            "marker": {"color": COST_PER_MINUTE_COLOR},
            "texttemplate": "%{x:.3f}",
            "textposition": "auto",
            "hovertemplate": "%{y}<br>%{x:.4f} per minute<extra></extra>",
            "xaxis": "x2",
            "yaxis": "y",
        },
    ]
    layout = _layout(
        max(220, 70 + 30 * len(rows)),
        showlegend=False,
        xaxis=_axis("Cost (account currency)", domain=[0, 0.6], rangemode="tozero"),
        xaxis2=_axis("Cost per minute", domain=[0.68, 1], rangemode="tozero"),
        yaxis=_axis("", autorange="reversed", showgrid=False, type="category"),
    )
    return Chart("destinations", title, subtitle, {"data": traces, "layout": layout})


def build_charts(data: ReportData) -> list[Chart]:
    """Every chart, in the order of the page."""
    return [daily_outcomes(data), hour_weekday_heatmap(data), destinations(data), erlangs(data)]
