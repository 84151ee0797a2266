"""The dashboard as one self-contained HTML file: plotly.js inlined, no network, no server.

The page is static HTML and CSS (header, KPI tiles, tables) plus the Plotly figures as a JSON
document that a few lines of script hand to ``Plotly.newPlot``. Every value from the data is
escaped (HTML) or JSON-encoded with ``</`` broken up, so a destination or user name cannot end a
tag or a script.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
import plotly.offline

from pipelines.report import fmt
from pipelines.report.charts import FONT, Chart, build_charts
from pipelines.report.data import CALLBACK_WINDOW_HOURS, Kpi, ReportData

TITLE = "VoIPstudio calls"

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
@media (max-width: 900px) { .cards { grid-template-columns: 1fr; } }
""".replace("FONT", FONT)

# Hands every figure to plotly.js, then marks the page rendered (what the browser test waits
# for); a figure that fails is reported on the console and marked, not silently blank.
_SCRIPT = """
(function () {
  var figures = JSON.parse(document.getElementById("report-figures").textContent);
  var config = {displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"]};
  var drawn = Object.keys(figures).map(function (id) {
    return Plotly.newPlot(id, figures[id].data, figures[id].layout, config);
  });
  Promise.all(drawn).then(function () {
    document.body.setAttribute("data-rendered", "true");
  }, function (error) {
    document.body.setAttribute("data-rendered", "failed");
    console.error("a chart failed to render", error);
  });
})();
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _json_for_script(value: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``</`` and ``<!--`` cannot appear in it."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _tile(kpi: Kpi, data: ReportData) -> str:
    if data.previous_totals is None:
        change, tone = "no earlier data to compare", "flat"
        previous = f"the data starts on {data.first_day}" if data.first_day else "no data yet"
    else:
        change, tone = fmt.kpi_change(kpi)
        previous = f"previous period {fmt.kpi_value(kpi, current=False)}"
    value = "" if kpi.value is None else repr(float(kpi.value))
    before = "" if kpi.previous is None else repr(float(kpi.previous))
    return (
        f'<div class="tile" data-kpi="{_e(kpi.key)}" data-value="{value}" '
        f'data-previous="{before}">'
        f'<div class="tile-label">{_e(kpi.label)}</div>'
        f'<div class="tile-value">{_e(fmt.kpi_value(kpi))}</div>'
        f'<div class="tile-change {tone}">{_e(change)}</div>'
        f'<div class="tile-previous">{_e(previous)}</div>'
        f'<div class="tile-detail">{_e(kpi.detail)}</div>'
        "</div>"
    )


def _card(chart: Chart) -> str:
    wide = " wide" if chart.wide else ""
    if chart.figure is not None:
        body = f'<div class="chart" id="chart-{_e(chart.key)}" data-chart="{_e(chart.key)}"></div>'
    else:
        body = f'<div class="empty" data-empty="{_e(chart.key)}">{_e(chart.empty)}</div>'
    return (
        f'<section class="card{wide}" data-section="{_e(chart.key)}">'
        f'<h2>{_e(chart.title)}</h2><p class="sub">{_e(chart.subtitle)}</p>{body}</section>'
    )


def _table(
    key: str,
    title: str,
    subtitle: str,
    headers: list[tuple[str, str, bool]],
    rows: list[list[str]],
    empty: str,
    more: str = "",
) -> str:
    """A card with a table; ``headers`` are (label, tooltip, is_text) per column."""
    if not rows:
        body = f'<div class="empty" data-empty="{_e(key)}">{_e(empty)}</div>'
    else:
        head = "".join(
            f'<th class="{"text" if text else "num"}" title="{_e(tip)}">{_e(label)}</th>'
            for label, tip, text in headers
        )
        lines = "".join(
            "<tr>"
            + "".join(
                f'<td class="{"text" if headers[i][2] else "num"}">{_e(cell)}</td>'
                for i, cell in enumerate(row)
            )
            + "</tr>"
            for row in rows
        )
        body = (
            f'<div class="table-wrap"><table data-table="{_e(key)}"><thead><tr>{head}</tr>'
            f"</thead><tbody>{lines}</tbody></table></div>"
        )
        if more:
            body += f'<p class="more">{_e(more)}</p>'
    return (
        f'<section class="card wide" data-section="{_e(key)}"><h2>{_e(title)}</h2>'
        f'<p class="sub">{_e(subtitle)}</p>{body}</section>'
    )


def _users_table(data: ReportData) -> str:
    # User ids (and names) repeat across accounts: with several, each user shows theirs.
    several = data.accounts.several
    account_header = [("Account", "the VoIPstudio account of the user", True)] if several else []
    headers = [
        *account_header,
        ("User", "", True),
        ("Ext.", "extension", True),
        ("Handled", "calls with an answered leg of the user, any direction", False),
        ("Inbound handled", "inbound calls the user answered", False),
        ("Outbound", "outbound calls the user placed", False),
        ("Outbound answered", "of those, answered", False),
        ("Internal", "internal calls with a leg of the user's", False),
        ("Missed", "inbound calls that rang the user and they did not answer", False),
        ("Missed by all", "of those, answered by nobody", False),
        ("Talk", "time in conversation", False),
        ("Avg ring", "average ring time before the user answered an inbound call", False),
        ("Callbacks", "outbound calls that called back a missed call", False),
    ]
    rows = [
        [
            *([user.account] if several else []),
            user.name,
            user.extension,
            fmt.count(user.handled_calls),
            fmt.count(user.inbound_handled_calls),
            fmt.count(user.outbound_calls),
            fmt.count(user.outbound_answered_calls),
            fmt.count(user.internal_calls),
            fmt.count(user.missed_calls),
            fmt.count(user.missed_unanswered_calls),
            fmt.duration(user.talk_seconds),
            fmt.duration(user.avg_ring_seconds),
            fmt.count(user.callbacks_made),
        ]
        for user in data.users
    ]
    empty = data.missing.get("users", "No user took part in a call in this period.")
    return _table(
        "users",
        "Per user",
        "Each user's calls in the period (agg_user_daily); a call counts once per user, however "
        "many legs of theirs it had. Most handled calls first."
        + (
            " A user belongs to one account: the same name in two accounts is two users."
            if several
            else ""
        ),
        headers,
        rows,
        empty,
    )


def _missed_table(data: ReportData) -> str:
    several = data.accounts.several
    account_header = [("Account", "the VoIPstudio account that missed the calls", True)]
    headers = [
        *(account_header if several else []),
        ("Number", "the caller's number, normalized", True),
        ("Missed calls", "missed calls from the number in the period with no callback yet", False),
        ("First missed", "", False),
        ("Last missed", "", False),
        ("Waiting", "since the last missed call ended, up to the newest call loaded", False),
        ("Business hours", "whether a missed call came in business hours", False),
    ]
    rows = [
        [
            *([missed.account] if several else []),
            missed.number,
            fmt.count(missed.missed_calls),
            f"{missed.first_missed_at:%a %d %b %H:%M}",
            f"{missed.last_missed_at:%a %d %b %H:%M}",
            fmt.duration(missed.waiting_seconds),
            "yes" if missed.in_business_hours else "no",
        ]
        for missed in data.open_missed
    ]
    more = ""
    if data.open_missed_numbers > len(rows):
        more = (
            f"Showing the {len(rows)} most recent of {data.open_missed_numbers:,} numbers "
            f"({data.open_missed_calls:,} missed calls)."
        )
    per_account = " (a number once per account it called)" if several else ""
    count = (
        f"{data.open_missed_numbers:,} numbers{per_account}, {data.open_missed_calls:,} missed "
        "calls. "
        if rows
        else ""
    )
    empty = data.missing.get(
        "open_missed", "Every missed call with a number in this period has been called back."
    )
    return _table(
        "open_missed",
        "Missed calls not yet called back",
        f"{count}Inbound calls nobody answered, from a number with no contact since (no "
        "outbound call to it, no answered call from it"
        + (", within the same account" if several else "")
        + f"). Most recent first; times in {data.timezone}.",
        headers,
        rows,
        empty,
        more,
    )


def _validated(chart: Chart) -> dict[str, Any]:
    """The figure, checked against plotly's schema (a typo in a property name fails here, in
    Python, not as a blank chart in someone's browser)."""
    assert chart.figure is not None
    go.Figure(chart.figure)
    return chart.figure


def _header(data: ReportData, generated_at: datetime) -> str:
    period, previous = data.period, data.previous
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
        f"({period.days} {'day' if period.days == 1 else 'days'}), compared with "
        f"{_e(fmt.day_range(previous.start, previous.end))} · Time zone "
        f"<b data-timezone>{_e(data.timezone)}</b> · Data up to <b>{_e(newest)}</b></p>"
        "</div>"
        f'<div class="stamp">Generated <span data-generated-at>{_e(stamp)}</span><br>'
        f"Source: {_e(data.source)}, dataset {_e(data.dataset)}</div>"
        "</header>"
    )


def render_html(data: ReportData, generated_at: datetime) -> str:
    """The dashboard page.

    Args:
        data: what to show (:func:`pipelines.report.data.load_report`).
        generated_at: when the report was made (time-zone aware), shown in the footer.
    """
    period = data.period
    charts = build_charts(data)
    figures = {f"chart-{chart.key}": _validated(chart) for chart in charts if chart.figure}
    by_key = {chart.key: chart for chart in charts}
    notes = list(data.notes)
    if not data.has_calls:
        notes.insert(0, "No calls in this period: there is nothing to chart.")
    notes_html = (
        '<div class="notes" role="note">' + "".join(f"<p>{_e(n)}</p>" for n in notes) + "</div>"
        if notes
        else ""
    )
    tiles = "".join(_tile(kpi, data) for kpi in data.kpis)
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
<section class="tiles" aria-label="Key figures">{tiles}</section>
<div class="cards">
{_card(by_key["daily"])}
{_card(by_key["heatmap"])}
{_card(by_key["destinations"])}
{_card(by_key["traffic"])}
{_users_table(data)}
{_missed_table(data)}
</div>
<footer>
<b>How to read it.</b> A call is every leg sharing a call id; it counts on the day it started, in
{_e(data.timezone)}. Ratios are summed numerators over summed denominators for the whole period,
never averages of daily ratios. <b>ASR</b>: answered / outbound calls. <b>ACD</b>: talk / answered
calls, any direction. <b>Service level</b>: inbound calls answered within {_e(sl)} / offered calls
(answered or abandoned), short abandons left out of both. <b>Abandonment</b>: abandoned / offered,
short abandons left out. <b>Callback rate</b>: missed calls with a number contacted again within
{CALLBACK_WINDOW_HOURS} h / those whose {CALLBACK_WINDOW_HOURS} h have passed. <b>Cost</b>: the
CDRs' charges, account currency. Changes compare with the previous period of the same length:
ratios in percentage points (pp), the rest in percent.{across} Definitions: README, "Reporting
models".
</footer>
</main>
<script>{plotly.offline.get_plotlyjs()}</script>
<script id="report-figures" type="application/json">{_json_for_script(figures)}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""
