"""Headline KPIs read back from the built models (what ``voipstudio demo`` prints).

Every figure is a metric of the registry (``pipelines.models.metrics``): its numerator and
denominator summed over the rows, the way a BI tool should do it (summing daily ratios would be
wrong). The marts hold one row per account; the KPIs are over every account unless some are
chosen, summed the same way. The busy hour is agg_busy_hour_monthly's (the time-consistent busy
hour of each account's latest month with complete business days), never computed here. The
queries that are not metrics are in ``queries/headline_*.sql``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dlt
import sqlglot

from pipelines.models.declarations import SOURCE_DIALECT
from pipelines.models.metrics import MetricValue, read_metrics
from pipelines.models.runner import point_at_dataset, relation_exists

_QUERIES = Path(__file__).parent / "queries"


def _query(name: str) -> str:
    return (_QUERIES / f"headline_{name}.sql").read_text(encoding="utf-8")


def _account_condition(accounts: Sequence[str] | None) -> str:
    """SQL that keeps the rows of ``accounts``; every row when None."""
    if accounts is None:
        return "1 = 1"
    if not accounts:
        return "1 = 0"
    names = ", ".join(sqlglot.exp.Literal.string(name).sql() for name in accounts)
    return f"account in ({names})"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.1f}%"


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
            parsed = sqlglot.parse_one(sql, read=SOURCE_DIALECT)
            query = point_at_dataset(parsed, dataset)
            return list(client.execute_sql(query.sql(dialect=dialect)) or [])

        def fetch(sql: str) -> list[Any]:
            rows = fetch_all(sql)
            return list(rows[0]) if rows else []

        def source(mart: str) -> tuple[str, str] | None:
            # the marts of collections the configuration does not load are not built
            if not relation_exists(client, dialect, dataset, mart):
                return None
            return f"voipstudio.{mart}", condition

        values = read_metrics(fetch, source)
        extent = fetch(_query("extent").format(accounts=condition))
        busy = fetch_all(_query("busy_hour").format(accounts=condition))
        destination = fetch(_query("top_destination").format(accounts=condition))
        names = [row[0] for row in fetch_all(_query("accounts").format(accounts=condition))]
    if not extent or extent[0] is None:
        return []

    def value(name: str) -> float | None:
        return values.get(name, MetricValue(0, 0)).value

    def count(name: str, part: str = "numerator") -> float:
        return float(getattr(values.get(name, MetricValue(0, 0)), part) or 0)

    first, last, partial, first_partial, last_partial, sl_seconds = extent
    lines: list[str] = []
    if len(names) > 1:
        # One account needs no saying (the usual case); several are summed, and cost assumes
        # they are billed in one currency.
        lines.append(f"accounts {', '.join(names)}: figures summed across them")
    lines.append(
        f"inbound  {first} .. {last}: {count('inbound_calls'):,.0f} calls, "
        f"{_pct(value('answer_rate'))} answered, "
        f"ACD {_mmss(_ratio(count('inbound_talk_seconds'), count('answer_rate')))}, "
        f"ASA {_mmss(value('asa'))}, "
        f"service level {_pct(value('service_level'))} within {sl_seconds} s, "
        f"abandon rate {_pct(value('abandon_rate'))}"
    )
    if partial:
        days = {1: f"{first_partial}", 2: f"{first_partial} and {last_partial}"}.get(
            partial, f"{first_partial} .. {last_partial}"
        )
        lines.append(
            f"not complete yet: {partial:,} day(s) ({days}: the first day loaded, or inside the "
            "sync's lag window); the figures include them"
        )
    if count("outbound_calls"):
        lines.append(
            f"outbound: {count('outbound_calls'):,.0f} calls, ASR {_pct(value('asr'))}, "
            f"NER {_pct(value('ner'))} (ITU-T E.425; {count('rejected'):,.0f} rejected), "
            f"{count('outbound_minutes'):,.0f} minutes, cost {count('cost'):,.2f}"
        )
    if "callback_rate_1h" in values:
        lines.append(
            f"missed calls called back within 1 h: {_pct(value('callback_rate_1h'))} of "
            f"{count('callback_rate_1h', 'denominator'):,.0f} whose hour has passed; within "
            f"24 h: {_pct(value('callback_rate'))} ({_pct(value('company_callback_rate'))} by "
            f"us, the rest the customer getting through; {count('callbacks_open'):,.0f} still "
            "open)"
        )
    if "repeat_rate" in values and count("repeat_rate", "denominator"):
        lines.append(
            f"repeat contacts within 7 days: {_pct(value('repeat_rate'))} of "
            f"{count('repeat_rate', 'denominator'):,.0f} inbound contacts; first-contact "
            f"resolution {_pct(value('fcr_rate'))}"
        )
    for account, month, days, start, tcbh, adph, bhca in busy:
        hour, minute = (int(part) for part in str(start).split(":"))
        end = f"{(hour + 1) % 24:02d}:{minute:02d}"
        who = f"{account} " if len(names) > 1 else ""
        lines.append(
            f"{who}busy hour (time-consistent, {month:%Y-%m}, {days} complete business days): "
            f"{start}-{end}, {tcbh:.1f} Erlangs carried, {bhca:.0f} call attempts (BHCA); "
            f"average daily peak hour {adph:.1f} Erlangs"
        )
    if destination:
        name, cost, minutes, asr = destination
        lines.append(
            f"top destination by cost: {name}, {cost:,.2f} for {minutes:,.0f} minutes, "
            f"ASR {100.0 * (asr or 0):.1f}%"
        )
    return lines


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None
