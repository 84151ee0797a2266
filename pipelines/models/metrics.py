"""The metric registry: every KPI the project shows, defined once.

A metric is a ratio (or a plain sum) of two aggregates over the rows of one mart: its
numerator and its denominator are SQL aggregate expressions of the mart's columns, so that any
period or set of accounts is re-aggregated by summing them, never by averaging ratios. The
dashboard's tiles (``pipelines.report``), the demo's headline (``pipelines.models.kpis``) and the
README's metric table (``metric_table``; tests/models/test_metrics.py checks it) are produced
from this list. Adding a KPI is a mart column and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MetricKind = Literal["count", "ratio", "seconds", "money", "minutes"]

# The column of each mart that says which day (of the reporting time zone) a row is of: the
# period of a report filters on it.
MART_DATE_COLUMNS: dict[str, str] = {
    "agg_calls_daily": "call_date",
    "fct_missed_call_callbacks": "missed_date",
    "agg_repeat_contacts_daily": "call_date",
    "agg_voicemail_daily": "voicemail_date",
    "agg_sms_daily": "sms_date",
    "agg_queue_daily": "call_date",
}


@dataclass(frozen=True)
class Metric:
    """One KPI.

    Attributes:
        name: stable identifier (the dashboard tile's key).
        label: its title.
        mart: the mart whose rows it sums.
        numerator: SQL aggregate over the mart's rows.
        denominator: SQL aggregate over the same rows; None for a plain sum (a count, a cost).
        kind: how its value is written: a count, a ratio (0..1), seconds, money, minutes.
        higher_is_better: True, False, or None when neither way is good news.
        standard: the definition it follows.
        detail: the line under the tile: a ``str.format`` template over every metric's
            :class:`MetricValue` by name (``{asr.numerator:,.0f}``); settings as ``{sl}``.
        tile: whether the dashboard shows it as a tile.
    """

    name: str
    label: str
    mart: str
    numerator: str
    denominator: str | None
    kind: MetricKind
    higher_is_better: bool | None
    standard: str
    detail: str = ""
    tile: bool = False


@dataclass(frozen=True)
class MetricValue:
    """A metric's numerator and denominator over some rows."""

    numerator: float
    denominator: float | None

    @property
    def value(self) -> float | None:
        """numerator / denominator (None over 0, as the marts do); the numerator of a sum."""
        if self.denominator is None:
            return self.numerator
        return self.numerator / self.denominator if self.denominator else None


_INBOUND = "direction = 'inbound'"
_OUTBOUND = "direction = 'outbound'"
_CLOSED_7D = "window_closed_7d = inbound_contacts"


def _sum(column: str, where: str | None = None) -> str:
    return f"sum(case when {where} then {column} end)" if where else f"sum({column})"


METRICS: tuple[Metric, ...] = (
    Metric(
        "calls",
        "Calls",
        "agg_calls_daily",
        "sum(attempts)",
        None,
        "count",
        None,
        "every call (all legs sharing call_id), any direction",
        "{inbound_calls.numerator:,.0f} inbound · {outbound_calls.numerator:,.0f} outbound · "
        "{internal_calls.numerator:,.0f} internal",
        tile=True,
    ),
    Metric(
        "inbound_calls",
        "Inbound calls",
        "agg_calls_daily",
        _sum("attempts", _INBOUND),
        None,
        "count",
        None,
        "calls with an outside caller",
    ),
    Metric(
        "outbound_calls",
        "Outbound calls",
        "agg_calls_daily",
        _sum("attempts", _OUTBOUND),
        None,
        "count",
        None,
        "calls to an outside number",
    ),
    Metric(
        "internal_calls",
        "Internal calls",
        "agg_calls_daily",
        _sum("attempts", "direction = 'internal'"),
        None,
        "count",
        None,
        "calls between two users",
    ),
    Metric(
        "asr",
        "Answer rate, outbound (ASR)",
        "agg_calls_daily",
        _sum("answered_calls", _OUTBOUND),
        _sum("attempts", _OUTBOUND),
        "ratio",
        True,
        "ITU-T E.411 / E.425 answer-seizure ratio: answered / seizures (attempts)",
        "{asr.numerator:,.0f} of {asr.denominator:,.0f} outbound calls answered",
        tile=True,
    ),
    Metric(
        "ner",
        "Calls that reached the party, outbound (NER)",
        "agg_calls_daily",
        _sum("effective_calls", _OUTBOUND),
        _sum("attempts", _OUTBOUND),
        "ratio",
        True,
        "ITU-T E.425 network effectiveness ratio: answered, user busy, ring no answer or "
        "terminal rejection (Q.850 cause 21) / attempts",
        "{ner.numerator:,.0f} of {ner.denominator:,.0f} outbound calls reached the called "
        "party ({rejected.numerator:,.0f} rejected)",
        tile=True,
    ),
    Metric(
        "rejected",
        "Rejected (outbound)",
        "agg_calls_daily",
        _sum("rejected_calls", _OUTBOUND),
        None,
        "count",
        False,
        "terminal rejections: Q.850 cause 21, call rejected",
    ),
    Metric(
        "acd",
        "Average talk time (ACD)",
        "agg_calls_daily",
        "sum(talk_seconds)",
        "sum(answered_calls)",
        "seconds",
        None,
        "ITU-T E.411 average call duration: conversation time / answered calls; a call's "
        "conversation is the union of its legs' talk (a forwarded call counts it once)",
        "{acd_minutes.numerator:,.0f} min of talk over {acd.denominator:,.0f} answered calls",
        tile=True,
    ),
    Metric(
        "acd_minutes",
        "Talk minutes",
        "agg_calls_daily",
        "sum(talk_seconds) / 60.0",
        None,
        "minutes",
        None,
        "conversation time",
    ),
    Metric(
        "answer_rate",
        "Answer rate, inbound",
        "agg_calls_daily",
        _sum("answered_calls", _INBOUND),
        _sum("attempts", _INBOUND),
        "ratio",
        True,
        "answered inbound calls / inbound calls (any outcome)",
    ),
    Metric(
        "inbound_talk_seconds",
        "Inbound talk",
        "agg_calls_daily",
        _sum("talk_seconds", _INBOUND),
        None,
        "seconds",
        None,
        "conversation time of inbound calls",
    ),
    Metric(
        "asa",
        "Average wait to answer (ASA)",
        "agg_calls_daily",
        _sum("answered_wait_seconds", _INBOUND),
        _sum("answered_calls", _INBOUND),
        "seconds",
        False,
        "average speed of answer: wait of answered inbound calls (queue time included) / "
        "answered inbound calls",
    ),
    Metric(
        "service_level",
        "Answered in time (service level)",
        "agg_calls_daily",
        "sum(answered_within_sl_calls)",
        "sum(offered_calls_excl_short)",
        "ratio",
        True,
        "answered within T / (offered - short abandons), the usual workforce-management "
        "service level (T = service_level_seconds)",
        "{service_level.numerator:,.0f} of {service_level.denominator:,.0f} offered inbound "
        "calls answered within {sl}",
        tile=True,
    ),
    Metric(
        "service_level_excl_early_abandons",
        "Service level (abandons after T)",
        "agg_calls_daily",
        "sum(answered_within_sl_calls)",
        "sum(answered_or_abandoned_after_sl_calls)",
        "ratio",
        True,
        "answered within T / (answered + abandoned after T): callers who hung up within T "
        "are not held against it",
    ),
    Metric(
        "abandon_rate",
        "Callers who hung up (abandonment)",
        "agg_calls_daily",
        "sum(abandoned_calls_excl_short)",
        "sum(offered_calls_excl_short)",
        "ratio",
        False,
        "(abandoned - short abandons) / (offered - short abandons)",
        "{abandon_rate.numerator:,.0f} of {abandon_rate.denominator:,.0f} offered inbound "
        "calls (short abandons left out)",
        tile=True,
    ),
    Metric(
        "callback_rate",
        "Missed calls called back (callback rate)",
        "fct_missed_call_callbacks",
        "count(case when called_back_within_24h and callback_window_closed_24h then 1 end)",
        "count(case when callback_window_closed_24h then 1 end)",
        "ratio",
        True,
        "missed calls with a contact (our call, or theirs answered) within 24 h / missed calls "
        "whose 24 h window has closed by the data horizon",
        "{callback_rate.numerator:,.0f} of {callback_rate.denominator:,.0f} missed calls "
        "called back within 24 h ({callbacks_open.numerator:,.0f} still open)",
        tile=True,
    ),
    Metric(
        "callbacks_open",
        "Missed calls still in their window",
        "fct_missed_call_callbacks",
        "count(case when not callback_window_closed_24h then 1 end)",
        None,
        "count",
        None,
        "missed calls whose 24 h window is still open",
    ),
    Metric(
        "callback_rate_1h",
        "Called back within 1 h",
        "fct_missed_call_callbacks",
        "count(case when called_back_within_1h and callback_window_closed_1h then 1 end)",
        "count(case when callback_window_closed_1h then 1 end)",
        "ratio",
        True,
        "missed calls with a contact within 1 h / those whose 1 h window has closed",
    ),
    Metric(
        "company_callback_rate",
        "Called back by us within 24 h",
        "fct_missed_call_callbacks",
        "count(case when callback_type = 'callback' and callback_window_closed_24h then 1 end)",
        "count(case when callback_window_closed_24h then 1 end)",
        "ratio",
        True,
        "missed calls the company called back within 24 h (not the customer retrying) / "
        "those whose window has closed",
    ),
    Metric(
        "repeat_rate",
        "Repeat contacts (7 d)",
        "agg_repeat_contacts_daily",
        _sum("repeated_within_7d", _CLOSED_7D),
        _sum("inbound_contacts", _CLOSED_7D),
        "ratio",
        False,
        "inbound contacts followed by another call of the same number within 7 days / "
        "inbound contacts, over days whose 7-day windows have closed",
    ),
    Metric(
        "fcr_rate",
        "First-contact resolution (7 d)",
        "agg_repeat_contacts_daily",
        _sum("answered_contacts - answered_repeated_within_7d", _CLOSED_7D),
        _sum("answered_contacts", _CLOSED_7D),
        "ratio",
        True,
        "proxy: answered contacts not followed by a repeat within 7 days / answered contacts, "
        "over days whose 7-day windows have closed",
    ),
    Metric(
        "cost",
        "Cost",
        "agg_calls_daily",
        "sum(cost + forward_cost)",
        None,
        "money",
        False,
        "the CDRs' charge, forwarded legs included",
        "{outbound_minutes.numerator:,.0f} outbound minutes · {cost_per_minute} per minute",
        tile=True,
    ),
    Metric(
        "outbound_minutes",
        "Outbound minutes",
        "agg_calls_daily",
        _sum("talk_seconds", _OUTBOUND) + " / 60.0",
        None,
        "minutes",
        None,
        "conversation time of outbound calls",
    ),
    # The history collections' marts (built only when their collections are loaded).
    Metric(
        "voicemail_messages",
        "Voicemail messages",
        "agg_voicemail_daily",
        "sum(messages)",
        None,
        "count",
        None,
        "voicemail messages left, on the day they were left",
    ),
    Metric(
        "voicemail_avg_duration",
        "Average voicemail length",
        "agg_voicemail_daily",
        "sum(duration_seconds)",
        "sum(messages)",
        "seconds",
        None,
        "total length of the messages / messages",
    ),
    Metric(
        "voicemail_unheard_rate",
        "Voicemail not listened to",
        "agg_voicemail_daily",
        "sum(new_messages)",
        "sum(messages)",
        "ratio",
        False,
        "messages still new (not listened to) when last synced / messages",
    ),
    Metric(
        "sms_failure_rate",
        "SMS failed",
        "agg_sms_daily",
        _sum("failed_messages", _OUTBOUND),
        "sum(sent_messages)",
        "ratio",
        False,
        "sent SMS whose result is FAILED / sent SMS",
    ),
    Metric(
        "queue_offered_calls",
        "Calls offered to queues",
        "agg_queue_daily",
        "sum(offered_calls)",
        None,
        "count",
        None,
        "calls offered to a queue: a call counts once for every queue it entered",
    ),
    Metric(
        "queue_service_level",
        "Queue: answered in time (service level)",
        "agg_queue_daily",
        "sum(answered_within_sl_calls)",
        "sum(offered_calls_excl_short)",
        "ratio",
        True,
        "per queue: answered by the queue within T of entering it / (offered to it - short "
        "abandons in it), the conventions of service_level",
    ),
    Metric(
        "queue_abandon_rate",
        "Queue: callers who hung up (abandonment)",
        "agg_queue_daily",
        "sum(abandoned_calls_excl_short)",
        "sum(offered_calls_excl_short)",
        "ratio",
        False,
        "per queue: (abandoned in the queue - short abandons) / (offered - short abandons); a "
        "call that overflowed to another queue is abandoned only in the last one",
    ),
    Metric(
        "queue_asa",
        "Queue: average wait to answer (ASA)",
        "agg_queue_daily",
        "sum(answered_wait_seconds)",
        "sum(answered_calls)",
        "seconds",
        False,
        "per queue: wait from entering the queue to its answer / calls the queue answered",
    ),
)

BY_NAME: dict[str, Metric] = {metric.name: metric for metric in METRICS}


def tiles() -> list[Metric]:
    """The metrics the dashboard shows as tiles, in order."""
    return [metric for metric in METRICS if metric.tile]


def metric_sql(relation: str, metrics: Sequence[Metric], where: str) -> str:
    """One query over ``relation`` (a mart) returning each metric's numerator and denominator
    (null when it has none), in order, over the rows matching ``where``."""
    columns: list[str] = []
    for metric in metrics:
        columns.append(f"coalesce({metric.numerator}, 0)")
        denominator = metric.denominator
        columns.append(f"coalesce({denominator}, 0)" if denominator else "null")
    # The registry's own SQL and the caller's condition: nothing from outside.
    return f"select {', '.join(columns)} from {relation} where {where}"  # noqa: S608


def read_metrics(
    fetch: Callable[[str], Sequence[Any]],
    source: Callable[[str], tuple[str, str] | None],
    metrics: Iterable[Metric] = METRICS,
) -> dict[str, MetricValue]:
    """Every metric's value over some rows, one query per mart.

    Args:
        fetch: runs a query and returns its one row.
        source: for a mart, the relation to read it from and the condition on its rows (the
            period, the accounts); None when the mart is not there (its metrics are left out).
        metrics: the metrics to read.
    """
    by_mart: dict[str, list[Metric]] = {}
    for metric in metrics:
        by_mart.setdefault(metric.mart, []).append(metric)
    values: dict[str, MetricValue] = {}
    for mart, chosen in by_mart.items():
        found = source(mart)
        if found is None:
            continue
        relation, condition = found
        row = fetch(metric_sql(relation, chosen, condition))
        for index, metric in enumerate(chosen):
            numerator, denominator = row[2 * index], row[2 * index + 1]
            values[metric.name] = MetricValue(
                float(numerator or 0), None if denominator is None else float(denominator)
            )
    return values


def detail(metric: Metric, values: Mapping[str, MetricValue], **settings: Any) -> str:
    """The metric's detail line, or '' when a metric it names was not read."""
    try:
        return metric.detail.format(**values, **settings)
    except (KeyError, AttributeError):
        return ""


def metric_table() -> str:
    """The README's metric table (Markdown), one row per metric."""
    lines = [
        "| metric | label | mart | numerator | denominator | better | definition |",
        "|---|---|---|---|---|---|---|",
    ]
    for metric in METRICS:
        better = {True: "higher", False: "lower", None: "neither"}[metric.higher_is_better]
        denominator = f"`{metric.denominator}`" if metric.denominator else "(a sum)"
        lines.append(
            f"| `{metric.name}` | {metric.label} | `{metric.mart}` | `{metric.numerator}` | "
            f"{denominator} | {better} | {metric.standard} |"
        )
    return "\n".join(lines)
