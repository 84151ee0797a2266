"""The data the page filters: the marts pre-aggregated at (day or interval, account, queue, agent,
direction), embedded in the page as JSON so that every filter works offline, from disk.

Each table is columnar (``{"columns": [...], "rows": [[...], ...]}``) and its keys are small
integers: the day is its offset from the window's first day, an account, queue, agent or
direction is its index in the lists the JSON carries (``-1``: no queue, no agent). Measures are
the metric registry's numerators and denominators (``<metric>.n``, ``<metric>.d``) computed per
key by the registry's own SQL aggregates, so the page sums them over the chosen rows and divides
(ratios are never averaged). The figures that do not add up are carried so that the page can
compute them exactly: the longest wait as a maximum (the maximum of maxima is exact), the busy
hour from summed holding seconds, the peak of concurrent calls per account as the mart counts it
and, for the accounts together, counted again (``peaks.sql``).

The window is the report's period and the period of the same length before it (at least a
week): the page compares a chosen range with the range before it (under seven days: the same
weekdays a week before) when that range is in the window and covered by the data in full.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pipelines.models.metrics import METRICS, Metric, tiles
from pipelines.report.data import (
    OUTCOMES,
    Marts,
    Period,
    combined_peaks,
    query_text,
)

# The keys the calls are pre-aggregated by (cube_calls.sql's columns); the hour of the day is
# a key of the heatmap's counts only (as a key of every measure it would triple the page).
CALL_KEYS = ("call_date", "account", "direction", "queue_name", "agent_id")
HEAT_KEYS = ("call_date", "hour_of_day", "account", "direction", "queue_name", "agent_id")
DIRECTIONS = ("inbound", "outbound", "internal", "unknown")
# The page's queue tiles are every metric of the queue marts.
QUEUE_MART = "agg_queue_daily"


def shown_metrics() -> set[str]:
    """The metrics the page shows or names: the tiles, the metrics their detail lines quote
    (and the cost per minute's two), and the queue metrics."""
    names = {"cost", "outbound_minutes"}
    for metric in tiles():
        names.add(metric.name)
        names.update(re.findall(r"\{(\w+)\.", metric.detail))
    names.update(metric.name for metric in METRICS if metric.mart == QUEUE_MART)
    return names


def _metrics(mart: str) -> list[Metric]:
    shown = shown_metrics()
    return [metric for metric in METRICS if metric.mart == mart and metric.name in shown]


def _measure_columns(metrics: Sequence[Metric]) -> tuple[list[str], list[str]]:
    """The SQL aggregates of ``metrics`` and their names in the JSON."""
    sql: list[str] = []
    names: list[str] = []
    for metric in metrics:
        sql.append(f"coalesce({metric.numerator}, 0)")
        names.append(f"{metric.name}.n")
        if metric.denominator:
            sql.append(f"coalesce({metric.denominator}, 0)")
            names.append(f"{metric.name}.d")
    return sql, names


def _grouped(name: str, keys: Sequence[str], measures: Sequence[str]) -> str:
    """The report query ``name`` grouped by ``keys``, with ``measures`` (SQL aggregates)."""
    listed = ", ".join(keys)
    # The registry's aggregates and the report's own query and key names: nothing from outside.
    return (
        f"select {listed}, {', '.join(measures)} "  # noqa: S608
        f"from ({query_text(name)}) as report_rows group by {listed}"
    )


def _number(value: Any) -> int | float:
    """A JSON number: integers stay integers (smaller), the rest rounded to what is shown."""
    if value is None:
        return 0
    number = float(value)
    # Six decimals: costs are DECIMAL(18, 6) (exact); minutes of talk to a few microseconds.
    return int(number) if number.is_integer() else round(number, 6)


class _Index:
    """Values to their position in a list the JSON carries."""

    def __init__(self, values: Sequence[Any] = ()) -> None:
        self.values: list[Any] = list(values)
        self._at = {value: i for i, value in enumerate(self.values)}

    def __call__(self, value: Any) -> int:
        if value is None or value == "":
            return -1
        found = self._at.get(value)
        if found is None:
            found = self._at[value] = len(self.values)
            self.values.append(value)
        return found


@dataclass(frozen=True)
class _Table:
    """One table of the page: the query its rows come from and what each column of a row is.

    Attributes:
        name: its name in the JSON.
        mart: the relation it needs; ``section``: the report section whose absence (a model
            not built) leaves it out.
        query: the SQL (``{ds}``, ``{accounts}``, ``$start`` / ``$end`` and, with ``sl``,
            ``$sl_seconds``).
        columns: (name in the JSON, kind) of each column of the query, in order; the kinds
            are ``build_cube``'s writers (keys become indexes, measures numbers).
        order: the query's columns its rows are sorted by (the page expects days in order).
    """

    name: str
    mart: str
    section: str | None
    query: str
    columns: tuple[tuple[str, str], ...]
    order: tuple[int, ...] = ()
    sl: bool = False


def _numbers(*names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Measure columns: written as JSON numbers."""
    return tuple((name, "number") for group in names for name in group)


def build_cube(
    marts: Marts,
    period: Period,
    *,
    sl_seconds: int | None,
    missing: dict[str, str],
    first_days: dict[str, date],
) -> dict[str, Any]:
    """Everything the page filters, over ``period`` and the period before it.

    Args:
        marts: open marts restricted to the report's accounts.
        period: the report's period.
        sl_seconds: the service-level threshold of the marts.
        missing: sections whose mart is not built (left empty in the JSON).
        first_days: the first day with calls of each account.
    """
    # The days a range of the period is compared with: as many days before it, or for fewer
    # than seven days the same weekdays a week before.
    window = Period(min(period.previous().start, period.start - timedelta(days=7)), period.end)
    between = {"start": window.start, "end": window.end}
    accounts = _Index(marts.accounts)
    queues = _Index()
    agents = _Index()
    destinations = _Index()

    def day(value: date) -> int:
        return (value - window.start).days

    cube: dict[str, Any] = {
        "window_start": window.start.isoformat(),
        "accounts": list(marts.accounts),
        "first_days": {name: first.isoformat() for name, first in first_days.items()},
        "directions": list(DIRECTIONS),
        "outcomes": list(OUTCOMES),
        "sl_seconds": sl_seconds,
    }

    def agent(value: Any, row: Sequence[Any], account: int) -> int:
        return agents(None if value is None else (row[account], int(value)))

    # How each kind of column is written (``row``: the query's row, ``account``: where its
    # account is in it, for the agents, whose ids repeat across accounts).
    write: dict[str, Callable[[Any, Sequence[Any], int], Any]] = {
        "day": lambda value, row, account: day(value),
        "account": lambda value, row, account: accounts(value),
        "direction": lambda value, row, account: (
            DIRECTIONS.index(value) if value in DIRECTIONS else 3
        ),
        "queue": lambda value, row, account: queues(value),
        "agent": agent,
        "destination": lambda value, row, account: destinations(str(value)),
        "text": lambda value, row, account: str(value),
        "flag": lambda value, row, account: 1 if value else 0,
        "number": lambda value, row, account: _number(value),
    }
    calls, calls_names = _measure_columns(_metrics("agg_calls_daily"))
    outcomes = [f"count(case when outcome = '{outcome}' then 1 end)" for outcome in OUTCOMES]
    callbacks, callbacks_names = _measure_columns(_metrics("fct_missed_call_callbacks"))
    queue, queue_names = _measure_columns(_metrics("agg_queue_daily"))
    queue_extra = ["max(longest_wait_seconds)", "sum(answered_calls)", "sum(abandoned_calls)"]
    call_keys = (("day", "day"), ("account", "account"), ("direction", "direction"),
                 ("queue", "queue"), ("agent", "agent"))  # fmt: skip
    tables = (
        _Table(
            "calls", "fct_calls", "daily",
            _grouped("cube_calls", CALL_KEYS, [*outcomes, *calls]),
            (*call_keys, *_numbers([f"outcome.{o}" for o in OUTCOMES], calls_names)),
            order=(0,), sl=True,
        ),
        _Table(
            "heat", "fct_calls", "daily",
            _grouped("cube_calls", HEAT_KEYS, ["count(*)"]),
            (call_keys[0], ("hour", "number"), *call_keys[1:], ("calls", "number")),
            order=(0, 1), sl=True,
        ),
        _Table(
            "callbacks", "fct_missed_call_callbacks", "kpis",
            _grouped("cube_callbacks", ("missed_date", "account", "queue_name"), callbacks),
            (("day", "day"), ("account", "account"), ("queue", "queue"),
             *_numbers(callbacks_names)),
        ),
        _Table(
            "queue", "agg_queue_interval", None,
            _grouped(
                "cube_queues",
                ("call_date", "interval_minute", "account", "queue_name"),
                [*queue_extra, *queue],
            ),
            (("day", "day"), ("minute", "number"), ("account", "account"), ("queue", "queue"),
             *_numbers(["longest_wait", "answered", "abandoned"], queue_names)),
            order=(0, 1),
        ),
        _Table(
            "agents", "agg_agent_daily", "users", query_text("cube_agents"),
            (("day", "day"), ("account", "account"), ("agent", "agent"), ("queue", "queue"),
             *_numbers(["offered", "answered", "rona", "answered_talk", "outbound",
                        "callbacks", "talk"])),
        ),
        _Table(
            "destinations", "fct_calls", "destinations", query_text("cube_destinations"),
            (("day", "day"), ("account", "account"), ("agent", "agent"),
             ("destination", "destination"), *_numbers(["attempts", "answered", "talk", "cost"])),
        ),
        _Table(
            "missed", "fct_missed_call_callbacks", "open_missed", query_text("cube_missed"),
            (("day", "day"), ("account", "account"), ("number", "text"), ("queue", "queue"),
             ("at", "text"), ("ended", "number"), ("business", "flag"), ("horizon", "number")),
        ),
        _Table(
            "traffic", "agg_traffic_hourly", "traffic", query_text("cube_traffic"),
            (("day", "day"), ("account", "account"), ("epoch", "number"), ("hour", "number"),
             ("local", "text"), *_numbers(["holding", "attempts", "peak"])),
        ),
    )  # fmt: skip
    for table in tables:
        if table.mart not in marts.relations or table.section in missing:
            continue
        params = {**between, "sl_seconds": sl_seconds or 0} if table.sl else between
        rows = marts.rows(table.query, params)
        if table.order:
            rows.sort(key=lambda row: tuple(row[i] for i in table.order))
        kinds = [kind for _, kind in table.columns]
        account = kinds.index("account")
        cube[table.name] = {
            "columns": [column for column, _ in table.columns],
            "rows": [
                [write[kind](value, row, account) for kind, value in zip(kinds, row, strict=True)]
                for row in rows
            ],
        }
    if "queue" in cube:
        minutes = marts.rows(query_text("interval_minutes"))
        cube["interval_minutes"] = int(minutes[0][0] or 30)
    if "destinations" in cube:
        cube["destination_names"] = destinations.values
    if "traffic" in cube and len(marts.accounts) > 1:
        # The accounts together: their peak is not the sum (nor the max) of theirs.
        peaks = combined_peaks(marts, window)
        cube["peaks_all"] = {str(epoch): peak for epoch, peak in peaks.items()}
    cube["queues"] = queues.values
    known = _agent_names(marts) if agents.values else {}
    cube["agents_list"] = [
        [accounts(account), user_id, *known.get((account, user_id), (f"user {user_id}", ""))]
        for account, user_id in agents.values
    ]
    return cube


def _agent_names(marts: Marts) -> dict[tuple[str, int], tuple[str, str]]:
    if "agg_user_daily" not in marts.relations:
        return {}
    return {
        (str(account), int(user_id)): (str(name) if name else f"user {user_id}", str(ext or ""))
        for account, user_id, name, ext in marts.rows(query_text("cube_agent_names"))
    }
