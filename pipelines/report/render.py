"""The dashboard as one self-contained HTML file: Chart.js and the data inlined, no network, no
server.

The page is static HTML and CSS (header, notes, filters, the cards' frames) plus two scripts:
the embedded data (:mod:`pipelines.report.cube`) as a JSON document, and ``dashboard.js``, which
computes every tile, table and chart from it for the filters chosen in the page and draws the
charts with Chart.js (``vendor/chart.umd.min.js``, MIT, about 210 kB). Every value from the data
is JSON-encoded with ``</`` broken up, so a destination or user name cannot end a script, and the
script writes names as text, never as markup.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.models.metrics import METRICS, Metric, tiles
from pipelines.report import fmt
from pipelines.report.charts import FONT, busy_hour_summary
from pipelines.report.data import (
    CALLBACK_WINDOW_HOURS,
    OPEN_MISSED_ROWS,
    TOP_DESTINATIONS,
    ReportData,
)

TITLE = "VoIPstudio calls"
_HERE = Path(__file__).parent
CHART_JS = _HERE / "vendor" / "chart.umd.min.js"
DASHBOARD_JS = _HERE / "dashboard.js"
# Which embedded table each tile's metric is summed over (by the metric's mart).
_GROUPS = {"agg_calls_daily": "calls", "fct_missed_call_callbacks": "callbacks",
           "agg_queue_daily": "queue"}  # fmt: skip

_CSS = """
:root {
  --text: #1f2933; --muted: #5f6b7a; --line: #e3e7ec; --page: #f4f6f9; --card: #ffffff;
  --good: #1a7f37; --bad: #c0392b; --flat: #5f6b7a; --accent: #0072B2;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--text); font: 14px/1.45 FONT; }
main { max-width: 1440px; margin: 0 auto; padding: 24px 28px 40px; }
header { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: flex-end;
  gap: 8px 24px; margin-bottom: 18px; }
h1 { font-size: 24px; margin: 0; letter-spacing: -0.01em; }
h1 span { color: var(--muted); font-weight: 400; }
.meta { color: var(--muted); font-size: 13px; margin: 4px 0 0; }
.meta b { color: var(--text); font-weight: 600; }
.stamp { color: var(--muted); font-size: 12px; text-align: right; margin-left: auto; }
.notes { margin: 0 0 16px; padding: 10px 14px; border-left: 4px solid #E69F00;
  background: #fff8e6; border-radius: 4px; font-size: 13px; }
.notes p { margin: 2px 0; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px;
  margin-bottom: 16px; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; }
.tile-label { font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase;
  letter-spacing: 0.04em; }
.tile-value { font-size: 28px; font-weight: 650; margin: 2px 0;
  font-variant-numeric: tabular-nums; }
.tile-change { font-size: 13px; font-weight: 600; }
.tile-change.good { color: var(--good); } .tile-change.bad { color: var(--bad); }
.tile-change.flat { color: var(--flat); }
.tile-previous { font-size: 12px; color: var(--muted); }
.tile-detail { font-size: 12px; color: var(--muted); margin-top: 6px; padding-top: 6px;
  border-top: 1px solid var(--line); }
.cards { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 14px 16px 10px; min-width: 0; }
.card.wide { grid-column: 1 / -1; }
.card h2 { font-size: 16px; margin: 0; }
.card .sub { color: var(--muted); font-size: 12.5px; margin: 2px 0 8px; }
.empty { display: flex; align-items: center; justify-content: center; min-height: 160px;
  color: var(--muted); background: repeating-linear-gradient(45deg, #fafbfc, #fafbfc 10px,
  #f3f5f8 10px, #f3f5f8 20px); border-radius: 6px; font-size: 14px; }
.table-wrap { overflow: auto; max-height: 520px; }
table { border-collapse: collapse; width: 100%; font-size: 13px;
  font-variant-numeric: tabular-nums; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { text-align: right; font-size: 12px; color: var(--muted); font-weight: 600;
  background: #fafbfc; position: sticky; top: 0; }
td { text-align: right; }
th.text, td.text { text-align: left; }
tbody tr:hover { background: #f7f9fb; }
.more { color: var(--muted); font-size: 12px; margin: 6px 0 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 20px; line-height: 1.6; }
footer b { color: var(--text); }
.filters { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: flex-end;
  background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px;
  margin-bottom: 8px; }
.filters label { display: flex; flex-direction: column; font-size: 12px; font-weight: 600;
  color: var(--muted); gap: 3px; }
.filters select, .filters input, .filters button { font: 13px FONT; padding: 4px 6px;
  border: 1px solid #c9ced6; border-radius: 4px; background: #fff; color: var(--text); }
.filters select { max-width: 240px; }
.filters button { cursor: pointer; }
.summary { color: var(--muted); font-size: 13px; margin: 0 0 12px; }
h2.section { font-size: 13px; text-transform: uppercase; letter-spacing: 0.05em;
  color: var(--muted); margin: 14px 0 8px; }
.compare { color: var(--muted); font-size: 12.5px; margin: -8px 0 12px; }
.card .pick { font-size: 12.5px; color: var(--muted); margin: 0 0 6px; }
.card .pick select { font: 13px FONT; }
table.heat { border-collapse: separate; border-spacing: 2px; font-size: 11px;
  table-layout: fixed; }
table.heat td { text-align: center; padding: 4px 0; border: 0; border-radius: 2px;
  min-width: 22px; }
table.heat th { background: none; position: static; text-align: center; padding: 2px; border: 0;
  font-weight: 500; }
table.heat tbody th { text-align: right; padding-right: 6px; }
@media (max-width: 900px) { .cards { grid-template-columns: 1fr; } }
""".replace("FONT", FONT)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _json_for_script(value: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``</`` and ``<!--`` cannot appear in it."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _header(data: ReportData, generated_at: datetime) -> str:
    period = data.period
    newest = "no calls loaded"
    if data.newest_call is not None:
        newest = f"{data.newest_call:%Y-%m-%d %H:%M}"
    stamp = f"{generated_at:%Y-%m-%d %H:%M %Z}"
    accounts = data.accounts
    label = accounts.label
    return (
        "<header><div>"
        f"<h1>{_e(TITLE)} <span>dashboard</span></h1>"
        f'<p class="meta"><b data-accounts="{_e(",".join(accounts.shown))}">'
        f"{_e(label[:1].upper() + label[1:])}</b> · "
        f'Period <b data-period-start="{period.start}" '
        f'data-period-end="{period.end}">{_e(fmt.day_range(period.start, period.end))}</b> '
        f"({period.days} {'day' if period.days == 1 else 'days'}) · Time zone "
        f"<b data-timezone>{_e(data.timezone)}</b> · Data up to <b>{_e(newest)}</b></p>"
        "</div>"
        f'<div class="stamp">Generated <span data-generated-at>{_e(stamp)}</span><br>'
        f"Source: {_e(data.source)}, dataset {_e(data.dataset)}</div>"
        "</header>"
    )


def _tile_metric(metric: Metric, section: str, kpi_label: str | None = None) -> dict[str, Any]:
    return {
        "name": metric.name,
        "label": kpi_label or metric.label,
        "kind": "count" if metric.kind == "minutes" else metric.kind,
        "better": metric.higher_is_better,
        "detail": metric.detail,
        "denominator": metric.denominator is not None,
        "group": _GROUPS[metric.mart],
        "section": section,
    }


def page_tiles() -> list[dict[str, Any]]:
    """The page's tiles: the registry's tile metrics, then its queue metrics and the longest
    wait (a maximum, not a registry ratio)."""
    listed = [_tile_metric(metric, "calls") for metric in tiles()]
    listed += [
        _tile_metric(metric, "queue") for metric in METRICS if metric.mart == "agg_queue_daily"
    ]
    listed.append(
        {
            "name": "queue_longest_wait",
            "label": "Queue: longest wait",
            "kind": "seconds",
            "better": False,
            "detail": "the longest wait of a call offered to the queues, answered or not",
            "denominator": False,
            "group": "queue",
            "section": "queue",
        }
    )
    return listed


def page_data(data: ReportData) -> dict[str, Any]:
    """Everything ``dashboard.js`` reads: the period, the tiles' definitions and the cube."""
    cube = data.cube
    start = cube.get("window_start")
    last = None
    if data.newest_call is not None and start:
        last = (data.newest_call.date() - datetime.fromisoformat(start).date()).days
    missing = dict(data.missing)
    if "queues" not in missing and "queue" not in cube:
        missing["queues"] = (
            "model agg_queue_interval is not built: run `voipstudio models` (or sync first)"
        )
    return {
        "period": {"start": data.period.start.isoformat(), "end": data.period.end.isoformat()},
        "timezone": data.timezone,
        "font": FONT,
        "tiles": page_tiles(),
        "missing": missing,
        "busy_hour_summary": busy_hour_summary(data),
        "top_destinations": TOP_DESTINATIONS,
        "open_missed_rows": OPEN_MISSED_ROWS,
        "last_day_index": last,
        "cube": cube,
    }


def _card(key: str, title: str, subtitle: str, *, wide: bool = True, pick: str = "") -> str:
    """A card frame the script fills: its chart, table or empty-state message."""
    return (
        f'<section class="card{" wide" if wide else ""}" data-section="{_e(key)}">'
        f'<h2>{_e(title)}</h2><p class="sub" data-sub="{_e(key)}">{_e(subtitle)}</p>{pick}'
        f'<div data-chart-box="{_e(key)}"></div></section>'
    )


_FILTERS = """<form class="filters" aria-label="Filters" onsubmit="return false">
<label>From <input type="date" id="f-from"></label>
<label>To <input type="date" id="f-to"></label>
<label>Account <select id="f-account"></select></label>
<label>Queue <select id="f-queue"></select></label>
<label>Agent <select id="f-agent"></select></label>
<label>Direction <select id="f-direction"></select></label>
<button type="button" id="f-reset">Show everything</button>
</form>
<p class="summary" id="filter-summary"></p>"""


def render_html(data: ReportData, generated_at: datetime) -> str:
    """The dashboard page.

    Args:
        data: what to show (:func:`pipelines.report.data.load_report`).
        generated_at: when the report was made (time-zone aware), shown in the header.
    """
    period = data.period
    notes = list(data.notes)
    if not data.has_calls:
        empty = "No calls in this period: there is nothing to chart."
        # A period outside the loaded data is not a period without calls: say which it is.
        if data.first_day is not None and period.end < data.first_day:
            empty += (
                f" The data loaded starts on {data.first_day}: these days are not loaded (an "
                "earlier start_date and a backfill with voipstudio sync --start load them)."
            )
        elif data.newest_call is not None and period.start > data.newest_call.date():
            empty += (
                f" The newest call loaded started on {data.newest_call.date()}: these days "
                "are not loaded yet."
            )
        notes.insert(0, empty)
    notes_html = (
        '<div class="notes" role="note">' + "".join(f"<p>{_e(n)}</p>" for n in notes) + "</div>"
        if notes
        else ""
    )
    sl = "the threshold"
    if data.service_level_seconds is not None:
        sl = f"{data.service_level_seconds} s"
    title = f"{TITLE} · {fmt.day_range(period.start, period.end)}"
    if len(data.accounts.available) > 1:  # reports of different accounts told apart by tab
        title = f"{TITLE} · {data.accounts.label} · {fmt.day_range(period.start, period.end)}"
    across = ""
    if data.accounts.several:
        across = (
            f" <b>Several accounts</b> ({_e(', '.join(data.accounts.shown))}): counts, times and "
            "costs are summed over them (costs as charged: in one currency only if the accounts "
            "share it), ratios are their summed numerators over their summed "
            "denominators, destinations are summed by name; the busy hour and the peak of "
            "concurrent calls are those of the accounts together; users and numbers are shown "
            "with their account."
        )
    zone = _e(data.timezone)
    cards = "".join(
        [
            _card("daily", "Daily volume by outcome", ""),
            _card(
                "queues",
                "Per queue",
                "Calls offered to each queue (a call counts in every queue it entered, answered "
                "by the one that answered it; agg_queue_interval). Most offered first.",
            ),
            _card(
                "intervals",
                "One day, interval by interval",
                f"Calls offered to the chosen queues and answered by them in each interval "
                f"of the day ({zone}), with the interval's service level (answered within {sl}).",
                pick='<p class="pick"><label>Day <select id="interval-day"></select></label></p>',
            ),
            _card("trends", "Service level, abandonment and speed of answer", ""),
            _card(
                "heatmap",
                "Calls by hour and weekday",
                f"Average calls started in each hour ({zone}) on a day of that weekday in the "
                "period.",
                wide=False,
            ),
            _card(
                "destinations",
                "Top destinations by cost",
                f"Outbound calls started in the period, the {TOP_DESTINATIONS} destinations that "
                "cost most, with their cost per minute of talk.",
                wide=False,
            ),
            _card("traffic", "Carried traffic", ""),
            _card(
                "users",
                "Per agent",
                "Each agent's calls in the period (agg_agent_daily: the agent's legs, by queue); "
                "offered, answered and not answered are inbound calls that rang the agent. Most "
                "calls first. CDRs carry no login or pause data: there is no occupancy here.",
            ),
            _card("open_missed", "Missed calls not yet called back", ""),
        ]
    )
    chart_js = CHART_JS.read_text(encoding="utf-8")
    script = DASHBOARD_JS.read_text(encoding="utf-8")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="voipstudio report">
<title>{_e(title)}</title>
<link rel="icon" href="data:,">
<style>{_CSS}</style>
</head>
<body data-rendered="false">
<main>
{_header(data, generated_at)}
{notes_html}
{_FILTERS}
<h2 class="section">Calls</h2>
<section class="tiles" aria-label="Key figures" data-tiles="calls"></section>
<p class="compare" id="comparison-note"></p>
<h2 class="section">Queues</h2>
<section class="tiles" aria-label="Queue figures" data-tiles="queue"></section>
<div class="cards">{cards}</div>
<footer>
<b>How to read it.</b> A call is every leg sharing a call id; it counts on the day it started, in
{zone}, and hours are {zone}'s. Every figure follows the filters; ratios are summed numerators
over summed denominators for the chosen rows, never averages of daily ratios. Names say what a
figure is, with the trade term beside it. <b>Answer rate (ASR)</b>: answered / outbound calls.
<b>Average talk time (ACD)</b>: talk / answered calls, any direction. <b>Answered in time
(service level)</b>: inbound calls answered within {_e(sl)} / offered calls (answered or
abandoned), short abandons left out of both. <b>Callers who hung up (abandonment)</b>: abandoned /
offered, short abandons left out. <b>Missed calls called back</b>: missed calls with a number
contacted again within {CALLBACK_WINDOW_HOURS} h / those whose {CALLBACK_WINDOW_HOURS} h have
passed. <b>Cost</b>: the CDRs' charges, account currency. <b>Queues</b>: a call counts as offered
to every queue it entered; the queue filter keeps, for the call figures, the calls that entered
that queue first. <b>Agent</b>: the user who answered (inbound, internal) or placed (outbound) a
call. Figures that do not add up are computed for what is shown, never summed: the longest wait
is the longest of the chosen rows, the busy hour is ranked on the summed traffic, the peak of
concurrent calls is counted for the accounts shown. Changes compare with the days just before the
chosen ones, with the same filters, only when the data covers those days in full (otherwise the
change is left out, and the page says so); ratios in percentage points (pp), the rest in
percent.{across} Definitions: README, "Reporting models".
</footer>
</main>
<script>{chart_js}</script>
<script id="report-data" type="application/json">{_json_for_script(page_data(data))}</script>
<script>{script}</script>
</body>
</html>
"""
