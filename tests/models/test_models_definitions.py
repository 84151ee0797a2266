"""Each KPI against the standard definition its name promises (issue 17), on values computed by
hand from the CDRs of definitions_cdrs.py (through the real emulator, sync and runner; reporting
time zone Europe/Madrid; the sync's lag 6 h).

The data horizon is the newest call, 2024-10-29 11:00 UTC; minus the lag: 05:00 UTC (06:00
local) on the 29th. Days before the 29th are complete, except the first one loaded (the 18th).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from definitions_cdrs import RECORDS
from handmade_cdrs import A, B, C
from models_harness import DATASET, ModelsHarness, day, empty_company, utc
from test_models_kpis import assert_rows

from pipelines.emulator.server import EmulatorServer
from pipelines.models import build_models, run_data_tests


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelsHarness]:
    tmp_path: Path = tmp_path_factory.mktemp("definitions")
    with pytest.MonkeyPatch.context() as monkeypatch, EmulatorServer(empty_company()) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.add_cdrs(RECORDS)
        harness.sync()
        build_models(harness.pipeline())
        failures = {t.name: t.failures for t in run_data_tests(harness.pipeline())}
        assert failures == dict.fromkeys(failures, 0)
        yield harness


def daily(harness: ModelsHarness, date: str, direction: str) -> dict[str, Any]:
    rows = harness.query(
        f"select * from {DATASET}.agg_calls_daily "
        f"where call_date = date '{date}' and direction = '{direction}'"
    )
    assert len(rows) == 1, (date, direction)
    return rows[0]


def test_ner_counts_terminal_rejections_as_effective(harness: ModelsHarness) -> None:
    # Outbound on the 18th: 2001 answered, 2002 no answer, 2003 busy, 2004 rejected (cause 21),
    # 2005 failed (cause 34), 2035 answered. E.425: effective = answered + no answer + busy +
    # terminal rejection = 5 of 6; ASR = 2 / 6.
    row = daily(harness, "2024-10-18", "outbound")
    assert (row["attempts"], row["answered_calls"]) == (6, 2)
    assert (row["effective_calls"], row["rejected_calls"]) == (5, 1)
    assert row["ner"] == pytest.approx(5 / 6)
    assert row["asr"] == pytest.approx(2 / 6)
    calls = {
        r["call_key"]: r
        for r in harness.query(f"select * from {DATASET}.fct_calls where call_key in (2004, 2005)")
    }
    assert (calls[2004]["outcome"], calls[2004]["is_rejected"]) == ("failed", True)
    assert calls[2004]["is_network_effective"] is True
    assert (calls[2005]["is_rejected"], calls[2005]["is_network_effective"]) == (False, False)


def test_service_level_variants(harness: ModelsHarness) -> None:
    # Inbound on the 18th: 2010 (wait 10 s), 2020 (28 s), 2030 (15 s), 2034 (10 s) answered;
    # 2031 abandoned after 30 s, 2032 after 10 s, 2033 after 3 s (short). Threshold 20 s.
    row = daily(harness, "2024-10-18", "inbound")
    assert (row["attempts"], row["answered_calls"], row["offered_calls"]) == (7, 4, 7)
    assert (row["abandoned_calls"], row["short_abandoned_calls"]) == (3, 1)
    assert row["answered_within_sl_calls"] == 3
    assert (row["abandoned_within_sl_calls"], row["abandoned_after_sl_calls"]) == (2, 1)
    assert row["answered_or_abandoned_after_sl_calls"] == 5
    assert row["service_level"] == pytest.approx(3 / 6)  # / (offered - short abandons)
    assert row["service_level_incl_short"] == pytest.approx(3 / 7)  # / offered
    assert row["service_level_excl_early_abandons"] == pytest.approx(3 / 5)  # / (ans + ab. > T)
    # ACD: the forwarded call's conversation counts once (300 s, not 600): 300 + 100 + 60 + 30
    assert row["talk_seconds"] == 490
    assert row["acd_seconds"] == pytest.approx(490 / 4)
    # The forwarded leg's charge is outbound cost, not the inbound call's.
    assert (float(row["cost"]), float(row["forward_cost"])) == (0.0, 0.5)


def test_days_complete_against_the_loaded_horizon(harness: ModelsHarness) -> None:
    rows = harness.query(
        f"select call_date, bool_and(is_complete) as complete, bool_or(is_complete) as any_ "
        f"from {DATASET}.agg_calls_daily group by call_date order by call_date"
    )
    # The first day loaded is partial; the DST day (27th, 25 hours) is complete; the 29th
    # ends after the horizon minus the lag.
    assert {r["call_date"]: r["complete"] for r in rows} == {
        day("2024-10-18"): False,
        day("2024-10-21"): True,
        day("2024-10-22"): True,  # the call from 23:50 counts here, though it ends on the 23rd
        day("2024-10-23"): True,
        day("2024-10-27"): True,
        day("2024-10-29"): False,
    }
    assert all(r["complete"] == r["any_"] for r in rows)  # one verdict per day
    assert daily(harness, "2024-10-22", "outbound")["talk_seconds"] == 1790


def test_overlapping_legs_of_a_forwarded_call(harness: ModelsHarness) -> None:
    (call,) = harness.query(f"select * from {DATASET}.fct_calls where call_key = 2010")
    assert (call["direction"], call["leg_count"], call["forward_leg_count"]) == ("inbound", 2, 1)
    assert (call["talk_seconds"], call["leg_talk_seconds"]) == (300, 600)
    assert (call["own_talk_seconds"], call["forward_talk_seconds"]) == (300, 300)
    assert (float(call["cost"]), float(call["forward_cost"])) == (0.0, 0.5)
    assert (call["destination"], call["forward_destination"]) == (None, "Spain Mobile")
    assert call["is_forward_answered"] is True
    assert call["wait_seconds"] == 10
    # Cost by destination: the forwarded leg is an outbound attempt to Spain Mobile. Outbound
    # to Spain Mobile: 2001-2005, the forward of 2010 and 2045: 7 attempts, 3 answered,
    # 60 + 300 + 50 s, 0.1 + 0.5 + 0.03.
    rows = harness.table("agg_destination_monthly", "direction, destination")
    assert_rows(
        rows,
        [
            {
                "direction": "outbound",
                "destination": "Spain Mobile",
                "attempts": 7,
                "answered_calls": 3,
                "talk_seconds": 410,
                "cost": 0.63,
            },
            {
                "direction": "outbound",
                "destination": "France Landline",
                "attempts": 2,
                "answered_calls": 2,
                "talk_seconds": 1800,
                "cost": 0.21,
            },
            # inbound: 2010 (its own leg, no charge), 2030-2034, 2040, 2041, 2044 ('unknown');
            # 2020 names its queue
            {
                "direction": "inbound",
                "destination": "unknown",
                "attempts": 9,
                "answered_calls": 6,
                "cost": 0.0,
            },
            {"direction": "inbound", "destination": "Sales", "attempts": 1, "talk_seconds": 100},
        ],
        "direction",
        "destination",
        every=False,
    )


def test_erlangs_on_holding_time_with_channels(harness: ModelsHarness) -> None:
    by_hour = {r["hour_start_utc"]: r for r in harness.table("agg_traffic_hourly")}
    # 2010: two legs up 09:00:00-09:05:10 UTC: 620 s held, 600 s of talk, two channels, one call
    forwarded = by_hour[utc("2024-10-18 09:00:00")]
    assert (forwarded["holding_seconds"], forwarded["talk_seconds"]) == (620, 600)
    assert forwarded["carried_erlangs"] == pytest.approx(620 / 3600)
    assert forwarded["talk_erlangs"] == pytest.approx(600 / 3600)
    assert forwarded["external_holding_seconds"] == 620
    assert (forwarded["peak_concurrent_channels"], forwarded["peak_concurrent_calls"]) == (2, 1)
    # 2020: 20 + 20 + 8 + 8 + 108 s held; three phones ring at once in round 2
    queue = by_hour[utc("2024-10-18 10:00:00")]
    assert (queue["holding_seconds"], queue["talk_seconds"]) == (164, 100)
    assert (queue["peak_concurrent_channels"], queue["peak_concurrent_calls"]) == (3, 1)
    # The internal call holds channels, no trunk
    internal = by_hour[utc("2024-10-23 12:00:00")]
    assert (internal["holding_seconds"], internal["external_holding_seconds"]) == (1800, 0)
    # 2042 from 23:50 local: 600 s on the 22nd, 1200 s on the 23rd; the busy hour by holding
    assert by_hour[utc("2024-10-22 21:00:00")]["holding_seconds"] == 600
    assert by_hour[utc("2024-10-22 22:00:00")]["holding_seconds"] == 1200
    busy = [
        r for r in by_hour.values() if r["is_busy_hour"] and r["call_date"] == day("2024-10-22")
    ]
    assert [r["hour_start_utc"] for r in busy] == [utc("2024-10-22 08:00:00")]  # 10:00 local


def test_time_consistent_busy_hour_and_adph(harness: ModelsHarness) -> None:
    (row,) = harness.table("agg_busy_hour_monthly")
    # October's complete business days: 21-25 and 28 (the 18th is partial, the 29th inside the
    # lag): 6 days. 60-minute windows on quarter hours, holding seconds:
    #   21st 10:00-11:00: 3600; 22nd 10:30-11:00: 1800, 23:50-24:00: 600; 23rd 00:00-00:20: 1200,
    #   14:00-14:30: 1800; the others nothing.
    # TCBH: 10:00 (3600 + 1800 over 6 days); 10:15 has 2700 + 1800.
    assert row["month"] == day("2024-10-01")
    assert row["days_counted"] == 6
    assert (row["tcbh_start_local"], row["tcbh_start_minute"]) == ("10:00", 600)
    assert row["tcbh_holding_seconds"] == 5400
    assert row["tcbh_erlangs"] == pytest.approx(5400 / 3600 / 6)
    # BHCA: 2040 and 2041 start in the TCBH window
    assert row["tcbh_call_attempts"] == pytest.approx(2 / 6)
    # ADPH: each day's own peak: 3600, 1800, 1800, 0, 0, 0
    assert row["adph_erlangs"] == pytest.approx(7200 / 3600 / 6)


def test_callbacks_and_retries_with_closed_windows(harness: ModelsHarness) -> None:
    rows = harness.table("fct_missed_call_callbacks", "missed_call_key")
    assert_rows(
        rows,
        [
            {
                "missed_call_key": 2031,
                "callback_type": "retry",
                "callback_call_key": 2034,
                "time_to_callback_seconds": 2970,
                "called_back_within_1h": True,
                "callback_window_closed_1h": True,
                "callback_window_closed_24h": True,
            },
            {
                "missed_call_key": 2032,
                "callback_type": "callback",
                "callback_call_key": 2035,
                "callback_user_id": A,
                "time_to_callback_seconds": 5990,
                "called_back_within_1h": False,
                "called_back_within_4h": True,
            },
            {
                "missed_call_key": 2033,
                "callback_type": None,
                "called_back_within_24h": False,
                "callback_window_closed_24h": True,
                "is_too_recent": False,
            },
        ],
        "missed_call_key",
    )


def test_repeat_contacts_daily(harness: ModelsHarness) -> None:
    rows = {r["call_date"]: r for r in harness.table("agg_repeat_contacts_daily")}
    # 18th: contacts 2010 (X1), 2020 (X6), 2030 (X2), 2031 (X3), 2032 (X4), 2033 (X5), 2034 (X3).
    # X3 calls again 50 min later (2031 -> 2034); X1 again on the 21st (2010 -> 2040, 3 days),
    # X2 on the 22nd (2030 -> 2041, 3 d 21.5 h). Answered: 2010, 2020, 2030, 2034; of those
    # 2010 and 2030 repeated within 7 days (first-contact resolution 50%).
    assert_rows(
        list(rows.values()),
        [
            {
                "call_date": day("2024-10-18"),
                "inbound_contacts": 7,
                "repeated_within_24h": 1,
                "repeated_within_7d": 3,
                "answered_contacts": 4,
                "answered_repeated_within_24h": 0,
                "answered_repeated_within_7d": 2,
                "window_closed_7d": 7,
                "fcr_rate_7d": 0.5,
            },
            {
                "call_date": day("2024-10-21"),
                "inbound_contacts": 1,
                "repeated_within_7d": 0,
                "window_closed_7d": 1,
            },
            # the 7 days after the 27th have not passed by the horizon
            {
                "call_date": day("2024-10-27"),
                "inbound_contacts": 1,
                "window_closed_24h": 1,
                "window_closed_7d": 0,
            },
        ],
        "call_date",
        every=False,
    )
    assert set(rows) == {day(d) for d in ("2024-10-18", "2024-10-21", "2024-10-22", "2024-10-27")}


def test_user_misses_rona_and_answered_elsewhere(harness: ModelsHarness) -> None:
    rows = harness.query(
        f"select * from {DATASET}.agg_user_daily where call_date = date '2024-10-18'"
    )
    by_user = {r["user_id"]: r for r in rows}
    # A: 2020 (a round rang out: RONA, though the round-2 leg was cut), 2031, 2032, 2033
    assert [by_user[A][k] for k in ("missed_calls", "rona_calls", "answered_elsewhere_calls")] == [
        4,
        4,
        0,
    ]
    # C: rang only in round 2 of 2020, cut as B answered
    assert [by_user[C][k] for k in ("missed_calls", "rona_calls", "answered_elsewhere_calls")] == [
        1,
        0,
        1,
    ]
    # B answered 2020 (its round-1 RONA leg does not make it a miss) and 2034
    assert (by_user[B]["missed_calls"], by_user[B]["inbound_handled_calls"]) == (0, 2)


def test_daily_ratios_reaggregate_to_a_direct_monthly_computation(harness: ModelsHarness) -> None:
    """Summing the daily numerators and denominators gives the month's ratios as computed
    directly from the calls (averaging daily ratios would not)."""
    summed = harness.query(
        f"""
        select direction,
            sum(effective_calls) * 1.0 / sum(attempts) as ner,
            sum(answered_calls) * 1.0 / sum(attempts) as asr,
            sum(answered_within_sl_calls) * 1.0 / nullif(sum(offered_calls_excl_short), 0) as sl,
            sum(talk_seconds) * 1.0 / nullif(sum(answered_calls), 0) as acd,
            avg(ner) as averaged_ner
        from {DATASET}.agg_calls_daily group by direction order by direction
        """
    )
    direct = harness.query(
        f"""
        select direction,
            count(case when is_network_effective then 1 end) * 1.0 / count(*) as ner,
            count(case when is_answered then 1 end) * 1.0 / count(*) as asr,
            count(case when is_answered_within_sl then 1 end) * 1.0
                / nullif(count(case when is_offered and not is_short_abandon then 1 end), 0) as sl,
            sum(talk_seconds) * 1.0 / nullif(count(case when is_answered then 1 end), 0) as acd
        from {DATASET}.fct_calls group by direction order by direction
        """
    )
    assert [r["direction"] for r in summed] == [r["direction"] for r in direct]
    for got, want in zip(summed, direct, strict=True):
        for column in ("ner", "asr", "sl", "acd"):
            if want[column] is None:
                assert got[column] is None
            else:
                assert float(got[column]) == pytest.approx(float(want[column])), column
    outbound = next(r for r in summed if r["direction"] == "outbound")
    # outbound: 18th 5/6, 22nd 1/1, 29th 1/1: the month's NER is 7/8, the average of days' 17/18
    assert float(outbound["ner"]) == pytest.approx(7 / 8)
    assert float(outbound["averaged_ner"]) == pytest.approx((5 / 6 + 1 + 1) / 3)
    # Repeat contacts roll up the same way: per month from the daily counts
    (month,) = harness.query(
        f"select sum(repeated_within_7d) as repeated, sum(inbound_contacts) as contacts "
        f"from {DATASET}.agg_repeat_contacts_daily"
    )
    assert (month["repeated"], month["contacts"]) == (3, 10)
