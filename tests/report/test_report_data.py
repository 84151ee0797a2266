"""The dashboard's numbers against direct SQL over the marts of a real loaded company.

Every expected value here is computed by a query written for the test, over the marts (and,
for the KPI tiles, over ``fct_calls`` too, independently of ``agg_calls_daily``), never by the
report's own code.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from conftest import (
    DESTINATION_MEASURES,
    PERIOD,
    SETTINGS,
    Company,
    between,
    expected_tiles,
    holding,
    page_content,
    page_rows,
    page_sums,
    raw_only_database,
    report,
    tiles,
)

from pipelines.models import build_models, load_settings
from pipelines.report import Period, charts, fmt, resolve_period, with_timezone
from pipelines.report.data import OUTCOMES, Kpi
from pipelines.sync import make_pipeline
from pipelines.voipstudio.errors import ConfigError, LockedError

INCOMPLETE_NOTE = (
    "Not complete yet: 2026-03-01 (the first day loaded, or still inside the sync's lag window "
    "where late CDRs may arrive); those figures may still change."
)


def test_kpi_tiles_match_direct_sql_over_the_marts(company: Company) -> None:
    data = report(company)
    got = tiles(data)
    assert list(got) == [
        "calls",
        "asr",
        "ner",
        "acd",
        "service_level",
        "abandon_rate",
        "callback_rate",
        "cost",
    ]
    for period, attribute in ((PERIOD, "value"), (PERIOD.previous(), "previous")):
        expected = expected_tiles(company, period)
        for key, value in expected.items():
            assert value is not None and value > 0, (key, period)  # a dataset that tests them
            assert getattr(got[key], attribute) == pytest.approx(value, rel=1e-12), (key, period)
    assert data.previous == Period(date(2026, 2, 2), date(2026, 2, 15))
    # both periods covered by the data; the last day loaded is still inside the sync's lag
    assert data.notes == [INCOMPLETE_NOTE]


def test_kpi_tiles_also_agree_with_fct_calls(company: Company) -> None:
    """The same figures straight from the calls (not the daily mart), by their definitions."""
    row = company.query(
        """
        select
            count(*),
            count(*) filter (where direction = 'outbound' and is_answered)
                / count(*) filter (where direction = 'outbound'),
            count(*) filter (where direction = 'outbound' and is_network_effective)
                / count(*) filter (where direction = 'outbound'),
            sum(talk_seconds) / count(*) filter (where is_answered),
            count(*) filter (where is_answered_within_sl)
                / (count(*) filter (where is_offered) - count(*) filter (where is_short_abandon)),
            (count(*) filter (where is_abandoned) - count(*) filter (where is_short_abandon))
                / (count(*) filter (where is_offered) - count(*) filter (where is_short_abandon)),
            sum(cost + forward_cost)
        from voipstudio.fct_calls
        where call_date between $start and $end
        """,
        between(PERIOD),
    )[0]
    got = tiles(report(company))
    for key, value in zip(
        ("calls", "asr", "ner", "acd", "service_level", "abandon_rate", "cost"), row, strict=True
    ):
        assert got[key].value == pytest.approx(float(value), rel=1e-12), key


def test_ratios_are_summed_numerators_over_denominators_not_averaged(company: Company) -> None:
    averaged = company.scalar(
        "select avg(service_level) from voipstudio.agg_calls_daily "
        "where direction = 'inbound' and call_date between $start and $end",
        between(PERIOD),
    )
    service_level = tiles(report(company))["service_level"].value
    assert service_level is not None
    assert service_level != pytest.approx(float(averaged), abs=1e-9)


def test_the_pages_tables_reconcile_with_the_marts(company: Company) -> None:
    """What the page's charts and tables are drawn from (the cube), over the period with no
    filter, against queries written here over the marts."""
    data = report(company)
    # daily outcomes add up to each day's attempts
    per_day: Counter[date] = Counter()
    for row in page_rows(data, "calls"):
        per_day[row["day"]] += sum(row[f"outcome.{outcome}"] for outcome in OUTCOMES)
    expected_days = dict(
        company.query(
            "select call_date, sum(attempts) from voipstudio.agg_calls_daily "
            "where call_date between $start and $end group by 1",
            between(PERIOD),
        )
    )
    assert dict(per_day) == expected_days
    assert [c for c in data.cube["calls"]["columns"] if c.startswith("outcome.")] == [
        f"outcome.{outcome}" for outcome in ("answered", "no_answer", "busy", "failed", "other")
    ]
    # the heatmap's counts: every call started in the period, in the hour it started
    heat: Counter[tuple[date, int]] = Counter()
    for row in page_rows(data, "heat"):
        heat[row["day"], row["hour"]] += row["calls"]
    started = company.query(
        "select call_date, hour(started_at_local), count(*) from voipstudio.fct_calls "
        "where call_date between $start and $end group by 1, 2",
        between(PERIOD),
    )
    assert heat == Counter({(day, hour): calls for day, hour, calls in started})
    # every hour of the period's carried traffic, as the hourly mart has it
    traffic = page_rows(data, "traffic")
    hours, holding = company.query(
        "select count(*), sum(holding_seconds) from voipstudio.agg_traffic_hourly "
        "where call_date between $start and $end",
        between(PERIOD),
    )[0]
    assert (len(traffic), sum(row["holding"] for row in traffic)) == (hours, holding) != (0, 0)
    # the agents: the per-agent mart summed by agent
    agents = {
        user: sums
        for (_, user), sums in page_sums(
            data, "agents", "agent", ("offered", "answered", "rona", "talk")
        ).items()
    }
    expected_agents = company.query(
        "select user_id, sum(offered_calls), sum(answered_calls), sum(rona_calls), "
        "sum(talk_seconds) from voipstudio.agg_agent_daily "
        "where call_date between $start and $end group by 1",
        between(PERIOD),
    )
    assert agents == {int(row[0]): [int(v) for v in row[1:]] for row in expected_agents}
    assert len(agents) > 1
    # missed calls with no callback yet, each once, the most recent first
    numbers, calls = company.query(
        "select count(distinct external_number), count(*) "
        "from voipstudio.fct_missed_call_callbacks "
        "where callback_call_key is null and missed_date between $start and $end",
        between(PERIOD),
    )[0]
    missed = page_rows(data, "missed")
    assert len(missed) == calls > 0
    assert len({(row["account"], row["number"]) for row in missed}) == numbers
    at = [row["at"] for row in missed]
    assert at == sorted(at, reverse=True)


def test_destinations_of_whole_months_equal_the_monthly_mart(company: Company) -> None:
    february = Period(date(2026, 2, 1), date(2026, 2, 28))
    data = report(company, period=february)
    expected = company.query(
        "select destination, attempts, answered_calls, talk_seconds, cast(cost as double) "
        "from voipstudio.agg_destination_monthly "
        "where month_start = date '2026-02-01' and direction = 'outbound'"
    )
    got = page_sums(data, "destinations", "destination", DESTINATION_MEASURES)
    assert set(got) == {row[0] for row in expected} and len(got) > 1
    for name, attempts, answered, talk, cost in expected:
        assert got[name][:3] == [attempts, answered, talk], name
        assert got[name][3] == pytest.approx(cost, abs=1e-6), name


def test_a_period_without_calls_is_empty_not_an_error(company: Company) -> None:
    data = report(company, period=Period(date(2025, 6, 1), date(2025, 6, 30)))
    assert not data.has_calls
    assert all(not rows for rows in page_content(data).values())
    got = tiles(data)
    assert got["calls"].value == 0 and got["cost"].value == 0
    assert all(got[key].value is None for key in ("asr", "acd", "service_level"))
    # the data starts after the comparison period: no comparison at all
    assert data.previous_totals is None
    assert all(kpi.previous is None and kpi.change is None for kpi in data.kpis)


def test_a_comparison_period_only_partly_covered_is_not_compared(company: Company) -> None:
    data = report(company, period=Period(date(2026, 2, 1), date(2026, 2, 10)))
    assert data.previous == Period(date(2026, 1, 22), date(2026, 1, 31))
    assert data.first_day == date(2026, 1, 26)
    # not like with like: no comparison at all (it gave "calls +67,608%")
    assert data.previous_totals is None
    assert all(kpi.previous is None and kpi.change is None for kpi in data.kpis)
    [note] = data.notes
    assert "only partly covered" in note and "2026-01-26" in note and "not compared" in note


def test_another_time_zone_rebuilds_the_models_in_memory_like_the_runner(
    company: Company, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking for Tokyo on marts built for Madrid (8 hours apart: afternoon calls move to the
    next day) gives what a real build for Tokyo gives, and the file is not touched."""
    before = company.db_path.read_bytes()
    tokyo = with_timezone(SETTINGS, "Asia/Tokyo")
    data = report(company, settings=tokyo)
    assert company.db_path.read_bytes() == before
    assert data.timezone == "Asia/Tokyo" and any("rebuilt" in note for note in data.notes)

    # The reference: the real runner builds the models for Tokyo into a copy of the file.
    copy = tmp_path / "tokyo.duckdb"
    shutil.copy(company.db_path, copy)
    for key, value in company.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(copy))
    monkeypatch.setenv("MODELS__REPORTING_TIMEZONE", "Asia/Tokyo")
    build_models(make_pipeline(), load_settings())
    reference = report(Company(copy, {}), settings=tokyo)
    assert reference.notes[1:] == []  # built for Tokyo: read as they are
    assert reference.notes[0].startswith("Not complete yet: ")
    assert data.totals == reference.totals
    assert data.previous_totals == reference.previous_totals
    assert page_content(data) == page_content(reference)
    assert data.busy_hours == reference.busy_hours
    # and Tokyo's days are not Madrid's
    assert page_content(data)["calls"] != page_content(report(company))["calls"]


def test_models_not_built_leave_sections_missing_with_the_reason(tmp_path: Path) -> None:
    data = report(Company(raw_only_database(tmp_path / "raw-only.duckdb"), {}))
    assert not data.has_calls
    assert set(data.missing) == {
        "kpis",
        "daily",
        "heatmap",
        "traffic",
        "destinations",
        "users",
        "open_missed",
    }
    assert all("voipstudio models" in reason for reason in data.missing.values())


def test_no_database_file_and_a_database_being_written(tmp_path: Path, live: Path) -> None:
    with pytest.raises(ConfigError, match="no database at"):
        report(Company(tmp_path / "missing.duckdb", {}))
    # DuckDB's single-writer rule: while another process has the file open for writing, it
    # cannot even be read.
    with (
        holding(live, read_only=False),
        pytest.raises(LockedError, match="being written by another process"),
    ):
        report(Company(live, {}))


def test_periods() -> None:
    today = date(2026, 3, 10)
    assert resolve_period(None, None, today) == Period(date(2026, 2, 9), today)
    assert resolve_period(None, None, today).days == 30
    assert resolve_period("2026-03-01", None, today) == Period(date(2026, 3, 1), today)
    assert resolve_period(None, "2026-01-31", today) == Period(date(2026, 1, 2), date(2026, 1, 31))
    assert resolve_period("2026-03-04", "2026-03-04", today).days == 1
    assert Period(date(2026, 3, 1), date(2026, 3, 31)).previous() == Period(
        date(2026, 1, 29), date(2026, 2, 28)
    )
    with pytest.raises(ConfigError, match="--from 2026-03-05 is after --to 2026-03-04"):
        resolve_period("2026-03-05", "2026-03-04", today)
    with pytest.raises(ConfigError, match="--to '31/01/2026' is not a date"):
        resolve_period(None, "31/01/2026", today)
    with pytest.raises(ConfigError, match="--timezone 'Nowhere/Land'"):
        with_timezone(SETTINGS, "Nowhere/Land")


def test_changes_are_points_for_ratios_and_percent_for_the_rest() -> None:
    ratio = Kpi("sl", "Service level", "ratio", "higher", 0.80, 0.75, "")
    assert ratio.change == pytest.approx(0.05)
    assert fmt.kpi_change(ratio) == ("▲ +5.0 pp", "good")
    cost = Kpi("cost", "Cost", "money", "lower", 110.0, 100.0, "")
    assert cost.change == pytest.approx(0.10)
    assert fmt.kpi_change(cost) == ("▲ +10.0%", "bad")
    calls = Kpi("calls", "Calls", "count", "neither", 90, 100, "")
    assert fmt.kpi_change(calls) == ("▼ -10.0%", "flat")
    assert fmt.kpi_change(Kpi("calls", "Calls", "count", "neither", 5, 0, ""))[1] == "flat"
    assert Kpi("calls", "Calls", "count", "neither", 5, None, "").change is None
    assert fmt.duration(3725) == "1h 02m" and fmt.duration(64) == "1m 04s"
    assert fmt.duration(9.6) == "10s"


def test_the_busy_hour_is_the_marts_time_consistent_busy_hour(company: Company) -> None:
    """The dashboard does not compute a busy hour of its own: it shows agg_busy_hour_monthly's
    TCBH and ADPH of the months the period touches."""
    data = report(company)
    rows = company.query(
        "select month, tcbh_start_local, tcbh_erlangs, adph_erlangs from "
        "voipstudio.agg_busy_hour_monthly where days_counted > 0 and month between $first and $end "
        "order by month",
        {"first": date(PERIOD.start.year, PERIOD.start.month, 1), "end": PERIOD.end},
    )
    assert rows, "the company's data has complete business days"
    assert [(b.month, b.start_local, b.tcbh_erlangs, b.adph_erlangs) for b in data.busy_hours] == [
        (month, start, float(tcbh), float(adph)) for month, start, tcbh, adph in rows
    ]
    assert all(b.adph_erlangs >= b.tcbh_erlangs for b in data.busy_hours)
    summary = charts.busy_hour_summary(data)
    assert summary.startswith("Time-consistent busy hour: ")
    assert f"{data.busy_hours[0].start_local}\N{EN DASH}" in summary


def test_the_emulators_cases_reach_the_definitions(company: Company) -> None:
    """The emulator's forwarded calls, rejections and ring-all queues show in the marts with the
    issue 17 definitions: a forwarded call's conversation once, its outbound leg's charge apart;
    rejections effective for NER; colleagues' answers not a user's RONA."""
    forwarded, talk, leg_talk, charged = company.query(
        "select count(*), sum(talk_seconds), sum(leg_talk_seconds), "
        "count(case when forward_cost > 0 then 1 end) "
        "from voipstudio.fct_calls where forward_leg_count > 0"
    )[0]
    assert forwarded > 0 and charged > 0
    assert leg_talk > talk  # both legs carry the conversation; the call counts it once
    effective, rejected, attempts = company.query(
        "select sum(effective_calls), sum(rejected_calls), sum(attempts) "
        "from voipstudio.agg_calls_daily where direction = 'outbound'"
    )[0]
    assert rejected > 0 and effective <= attempts
    rona, elsewhere, missed = company.query(
        "select sum(rona_calls), sum(answered_elsewhere_calls), sum(missed_calls) "
        "from voipstudio.agg_user_daily"
    )[0]
    assert rona > 0 and elsewhere > 0 and rona + elsewhere == missed
    types = dict(
        company.query(
            "select callback_type, count(*) from voipstudio.fct_missed_call_callbacks "
            "where callback_type is not null group by 1"
        )
    )
    assert set(types) == {"callback", "retry"}


def test_the_pages_data_adds_up_to_the_marts(company: Company) -> None:
    """What the page's filters sum (the cube) is the marts: summed over every key, each
    registry metric's numerator and denominator is the report's own total over the period
    (agg_calls_daily, fct_missed_call_callbacks), and the queue rows are agg_queue_daily's."""
    data = report(company)
    cube = data.cube
    # the window: the period and the fortnight before it (for comparisons)
    assert cube["window_start"] == PERIOD.previous().start.isoformat()
    days = range(PERIOD.days, 2 * PERIOD.days)  # the period's offsets in the window

    def summed(name: str) -> dict[str, float]:
        table = cube[name]
        at = {column: i for i, column in enumerate(table["columns"])}
        return {
            column: sum(row[i] for row in table["rows"] if row[at["day"]] in days)
            for column, i in at.items()
            if "." in column and not column.startswith("outcome.")
        }

    checked = 0
    for name in ("calls", "callbacks", "queue"):
        for column, total in summed(name).items():
            metric, part = column.split(".")
            value = data.totals.values[metric]
            expected = value.numerator if part == "n" else value.denominator
            # minutes (seconds / 60) are rounded to six decimals per row in the page
            assert total == pytest.approx(expected, rel=1e-7, abs=1e-6), column
            checked += 1
    assert checked >= 20
    queue = summed("queue")
    assert queue["queue_offered_calls.n"] == company.scalar(
        "select sum(offered_calls) from voipstudio.agg_queue_daily "
        "where call_date between $start and $end",
        between(PERIOD),
    )
    # each call once in the heatmap's counts, and its outcomes add up to its calls
    heat = cube["heat"]
    assert sum(row[-1] for row in heat["rows"] if row[0] in days) == data.totals.calls
    calls = cube["calls"]
    outcomes = [i for i, column in enumerate(calls["columns"]) if column.startswith("outcome.")]
    calls_n = calls["columns"].index("calls.n")
    assert all(sum(row[i] for i in outcomes) == row[calls_n] for row in calls["rows"])
