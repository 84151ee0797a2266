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
from collections.abc import Sequence
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
    relations = marts.relations
    if "fct_calls" in relations and "daily" not in missing:
        measures, names = _measure_columns(_metrics("agg_calls_daily"))
        outcomes = [f"count(case when outcome = '{outcome}' then 1 end)" for outcome in OUTCOMES]
        params = {**between, "sl_seconds": sl_seconds or 0}
        rows = marts.rows(_grouped("cube_calls", CALL_KEYS, [*outcomes, *measures]), params)

        def keys(row: Sequence[Any]) -> list[int]:
            account, direction, queue, agent = row
            return [
                accounts(account),
                DIRECTIONS.index(direction) if direction in DIRECTIONS else 3,
                queues(queue),
                agents(None if agent is None else (account, int(agent))),
            ]

        cube["calls"] = {
            "columns": ["day", "account", "direction", "queue", "agent"]
            + [f"outcome.{outcome}" for outcome in OUTCOMES]
            + names,
            "rows": [
                [day(row[0]), *keys(row[1:5]), *(_number(value) for value in row[5:])]
                for row in sorted(rows, key=lambda row: row[0])
            ],
        }
        rows = marts.rows(_grouped("cube_calls", HEAT_KEYS, ["count(*)"]), params)
        cube["heat"] = {
            "columns": ["day", "hour", "account", "direction", "queue", "agent", "calls"],
            "rows": [
                [day(row[0]), int(row[1]), *keys(row[2:6]), int(row[6])]
                for row in sorted(rows, key=lambda row: (row[0], row[1]))
            ],
        }
    if "fct_missed_call_callbacks" in relations and "kpis" not in missing:
        measures, names = _measure_columns(_metrics("fct_missed_call_callbacks"))
        rows = marts.rows(
            _grouped("cube_callbacks", ("missed_date", "account", "queue_name"), measures),
            between,
        )
        cube["callbacks"] = {
            "columns": ["day", "account", "queue", *names],
            "rows": [
                [day(row[0]), accounts(row[1]), queues(row[2]), *map(_number, row[3:])]
                for row in rows
            ],
        }
    if "agg_queue_interval" in relations:
        measures, names = _measure_columns(_metrics("agg_queue_daily"))
        extra = ["max(longest_wait_seconds)", "sum(answered_calls)", "sum(abandoned_calls)"]
        rows = marts.rows(
            _grouped(
                "cube_queues",
                ("call_date", "interval_minute", "account", "queue_name"),
                [*extra, *measures],
            ),
            between,
        )
        cube["queue"] = {
            "columns": [
                "day",
                "minute",
                "account",
                "queue",
                "longest_wait",
                "answered",
                "abandoned",
                *names,
            ],
            "rows": [
                [day(row[0]), int(row[1]), accounts(row[2]), queues(row[3]), *map(_number, row[4:])]
                for row in sorted(rows, key=lambda row: (row[0], row[1]))
            ],
        }
        minutes = marts.rows(query_text("interval_minutes"))
        cube["interval_minutes"] = int(minutes[0][0] or 30)
    if "agg_agent_daily" in relations and "users" not in missing:
        rows = marts.rows(query_text("cube_agents"), between)
        cube["agents"] = {
            "columns": [
                "day",
                "account",
                "agent",
                "queue",
                "offered",
                "answered",
                "rona",
                "answered_talk",
                "outbound",
                "callbacks",
                "talk",
            ],
            "rows": [
                [
                    day(row[0]),
                    accounts(row[1]),
                    agents((row[1], int(row[2]))),
                    queues(row[3]),
                    *map(_number, row[4:]),
                ]
                for row in rows
            ],
        }
    if "fct_calls" in relations and "destinations" not in missing:
        names_index = _Index()
        rows = marts.rows(query_text("cube_destinations"), between)
        cube["destinations"] = {
            "columns": [
                "day",
                "account",
                "agent",
                "destination",
                "attempts",
                "answered",
                "talk",
                "cost",
            ],
            "rows": [
                [
                    day(row[0]),
                    accounts(row[1]),
                    agents(None if row[2] is None else (row[1], int(row[2]))),
                    names_index(str(row[3])),
                    *map(_number, row[4:]),
                ]
                for row in rows
            ],
        }
        cube["destination_names"] = names_index.values
    if "fct_missed_call_callbacks" in relations and "open_missed" not in missing:
        rows = marts.rows(query_text("cube_missed"), between)
        cube["missed"] = {
            "columns": [
                "day",
                "account",
                "number",
                "queue",
                "at",
                "ended",
                "business",
                "horizon",
            ],
            "rows": [
                [
                    day(row[0]),
                    accounts(row[1]),
                    str(row[2]),
                    queues(row[3]),
                    str(row[4]),
                    int(row[5]),
                    1 if row[6] else 0,
                    int(row[7] or 0),
                ]
                for row in rows
            ],
        }
    if "agg_traffic_hourly" in relations and "traffic" not in missing:
        rows = marts.rows(query_text("cube_traffic"), between)
        cube["traffic"] = {
            "columns": [
                "day",
                "account",
                "epoch",
                "hour",
                "local",
                "holding",
                "attempts",
                "peak",
            ],
            "rows": [
                [
                    day(row[0]),
                    accounts(row[1]),
                    int(row[2]),
                    int(row[3]),
                    str(row[4]),
                    *map(_number, row[5:]),
                ]
                for row in rows
            ],
        }
        if len(marts.accounts) > 1:
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
