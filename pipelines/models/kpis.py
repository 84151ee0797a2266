"""Headline KPIs read back from the built models (what ``voipstudio demo`` prints).

Every ratio is re-aggregated from its numerator and denominator columns, the way a BI tool
should do it: summing daily ratios would be wrong. The marts hold one row per account; the KPIs
are over every account unless some are chosen, summed the same way (counts, talk and cost add
up across accounts; the busy hour is the hour with the most talk of the accounts together).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dlt
import sqlglot

from pipelines.models.declarations import SOURCE_DIALECT
from pipelines.models.runner import point_at_dataset

_INBOUND = """
select
    min(call_date), max(call_date), sum(attempts), sum(answered_calls), sum(talk_seconds),
    sum(answered_wait_seconds), sum(answered_within_sl_calls), sum(offered_calls_excl_short),
    sum(abandoned_calls_excl_short), max(service_level_seconds)
from voipstudio.agg_calls_daily
where direction = 'inbound' and {accounts}
"""
_OUTBOUND = """
select sum(attempts), sum(answered_calls), sum(talk_seconds), sum(cost)
from voipstudio.agg_calls_daily
where direction = 'outbound' and {accounts}
"""
_CALLBACKS = """
select
    count(called_back_within_1h),
    count(case when called_back_within_1h then 1 end),
    count(case when is_too_recent then 1 end)
from voipstudio.fct_missed_call_callbacks
where {accounts}
"""
# The busy hour of the chosen accounts together: their hours summed, then each day's hour with
# the most talk (the earliest on a tie), as agg_traffic_hourly picks it for one account. The
# accounts' own is_busy_hour flags would count one busy hour per account and day.
_BUSY_HOUR = """
with hours as (
    select
        hour_start_epoch,
        call_date,
        hour_of_day,
        sum(talk_seconds) as talk_seconds,
        sum(call_attempts) as call_attempts
    from voipstudio.agg_traffic_hourly
    where {accounts}
    group by hour_start_epoch, call_date, hour_of_day
),

ranked as (
    select
        hours.*,
        row_number() over (
            partition by call_date order by talk_seconds desc, hour_start_epoch
        ) as traffic_rank
    from hours
),

busy as (
    select * from ranked where traffic_rank = 1 and talk_seconds > 0
)

select hour_of_day, days, busy_days, erlangs, bhca
from (
    select
        hour_of_day,
        count(*) as days,
        (select count(*) from busy) as busy_days,
        (select avg(cast(talk_seconds as double) / 3600) from busy) as erlangs,
        (select avg(call_attempts) from busy) as bhca
    from busy
    group by hour_of_day
) as by_hour
order by days desc, hour_of_day
limit 1
"""
_DESTINATION = """
select destination, cost, talk_minutes, asr
from (
    select destination, sum(cost) as cost, sum(talk_minutes) as talk_minutes,
        cast(sum(answered_calls) as double) / nullif(sum(attempts), 0) as asr
    from voipstudio.agg_destination_monthly
    where direction = 'outbound' and {accounts}
    group by destination
) as by_destination
order by cost desc, destination
limit 1
"""
_ACCOUNTS = """
select distinct account from voipstudio.agg_calls_daily where {accounts} order by account
"""


def _account_condition(accounts: Sequence[str] | None) -> str:
    """SQL that keeps the rows of ``accounts``; every row when None."""
    if accounts is None:
        return "1 = 1"
    if not accounts:
        return "1 = 0"
    names = ", ".join(sqlglot.exp.Literal.string(name).sql() for name in accounts)
    return f"account in ({names})"


def _pct(numerator: Any, denominator: Any) -> str:
    return f"{100.0 * numerator / denominator:.1f}%" if denominator else "n/a"


def _mmss(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def headline_kpis(pipeline: dlt.Pipeline, accounts: Sequence[str] | None = None) -> list[str]:
    """A few lines of headline KPIs over everything loaded; empty when there are no calls.

    Args:
        pipeline: the pipeline whose dataset holds the built models.
        accounts: the accounts to sum over; None (the default) for every account.
    """
    condition = _account_condition(accounts)
    with pipeline.sql_client() as client:
        dialect = str(client.capabilities.sqlglot_dialect or SOURCE_DIALECT)
        dataset = str(client.dataset_name)

        def fetch_all(sql: str) -> list[Any]:
            parsed = sqlglot.parse_one(sql.format(accounts=condition), read=SOURCE_DIALECT)
            query = point_at_dataset(parsed, dataset)
            return list(client.execute_sql(query.sql(dialect=dialect)) or [])

        def fetch(sql: str) -> list[Any]:
            rows = fetch_all(sql)
            return list(rows[0]) if rows else []

        inbound = fetch(_INBOUND)
        outbound = fetch(_OUTBOUND)
        callbacks = fetch(_CALLBACKS)
        busy = fetch(_BUSY_HOUR)
        destination = fetch(_DESTINATION)
        names = [row[0] for row in fetch_all(_ACCOUNTS)]
    if not inbound or inbound[0] is None:
        return []
    first, last, calls, answered, talk, wait, within_sl, offered, abandoned, sl_seconds = inbound
    lines: list[str] = []
    if len(names) > 1:
        # One account needs no saying (the usual case); several are summed, and cost assumes
        # they are billed in one currency.
        lines.append(f"accounts {', '.join(names)}: figures summed across them")
    lines.append(
        f"inbound  {first} .. {last}: {calls:,} calls, {_pct(answered, calls)} answered, "
        f"ACD {_mmss(talk / answered if answered else None)}, "
        f"ASA {_mmss(wait / answered if answered else None)}, "
        f"service level {_pct(within_sl, offered)} within {sl_seconds} s, "
        f"abandon rate {_pct(abandoned, offered)}"
    )
    if outbound and outbound[0]:
        out_calls, out_answered, out_talk, out_cost = outbound
        lines.append(
            f"outbound: {out_calls:,} calls, ASR {_pct(out_answered, out_calls)}, "
            f"{out_talk / 60:,.0f} minutes, cost {out_cost:,.2f}"
        )
    if callbacks:
        judged, within, recent = callbacks
        lines.append(
            f"missed calls called back within 1 h: {_pct(within, judged)} of {judged:,} "
            f"judged ({recent:,} too recent to judge)"
        )
    if busy:
        hour, days, busy_days, erlangs, bhca = busy
        lines.append(
            f"busy hour: most often {hour:02d}:00-{hour + 1:02d}:00 ({days} of {busy_days} days); "
            f"on average {erlangs:.1f} Erlangs carried and {bhca:.0f} call attempts (BHCA)"
        )
    if destination:
        name, cost, minutes, asr = destination
        lines.append(
            f"top destination by cost: {name}, {cost:,.2f} for {minutes:,.0f} minutes, "
            f"ASR {100.0 * (asr or 0):.1f}%"
        )
    return lines
