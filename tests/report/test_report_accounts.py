"""The dashboard of several VoIPstudio accounts synced into one dataset (``two_accounts``):
one account's report is that account's data and nothing else, the report of every account is
the accounts summed (ratios from summed numerators and denominators, peaks counted again), users
with the same id and name in two accounts stay two users, and an unknown account is a clear
error. Expected values come from queries written for the test, or from the single-account
``company`` (the same data as account acme), never from the report's own code.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
from conftest import (
    ACCOUNTS,
    DESTINATION_MEASURES,
    NOW,
    PAGE_TABLES,
    PERIOD,
    SETTINGS,
    TIMEZONE,
    Company,
    between,
    error_lines,
    expected_tiles,
    page_content,
    page_rows,
    page_sums,
    raw_only_database,
    report,
    tiles,
)

from pipelines.cli import main
from pipelines.report import Period, with_timezone
from pipelines.report.data import OUTCOMES, Accounts, ReportData, combined_peaks, open_marts
from pipelines.report.publish import PublishSettings, publish
from pipelines.report.render import render_html
from pipelines.voipstudio.errors import ConfigError


def without_accounts(data: ReportData) -> dict[str, Any]:
    """What a report shows, the accounts left out (to compare one account of two with the same
    company synced alone, whose rows carry the account ``default``)."""
    return {
        "totals": data.totals,
        "previous_totals": data.previous_totals,
        "kpis": data.kpis,
        "first_day": data.first_day,
        "newest_call": data.newest_call,
        "page": page_content(data, accounts=False),
        "previous_page": page_content(data, data.previous, accounts=False),
        "busy_hours": [dataclasses.replace(busy, account="") for busy in data.busy_hours],
        "service_level_seconds": data.service_level_seconds,
        "notes": data.notes,
    }


def test_the_accounts_of_the_data_and_the_header(two_accounts: Company, company: Company) -> None:
    assert two_accounts.query(
        "select account, count(*) > 0 from voipstudio.fct_calls group by 1 order by 1"
    ) == [("acme", True), ("beta", True)]
    everything = report(two_accounts)
    assert everything.accounts == Accounts(ACCOUNTS, ACCOUNTS)
    assert everything.accounts.label == "all accounts (acme, beta)"
    # naming every account is every account; names are matched without regard to case
    named = report(two_accounts, ["Beta ", "acme", "beta"])
    assert named.accounts == everything.accounts
    assert without_accounts(named) == without_accounts(everything)
    beta = report(two_accounts, ["beta"])
    assert beta.accounts == Accounts(("beta",), ACCOUNTS)
    assert beta.accounts.label == "account beta" and not beta.accounts.several
    # one account configured the simple way: its rows carry "default"
    single = report(company)
    assert single.accounts == Accounts(("default",), ("default",))
    page = render_html(beta, NOW)
    assert '<b data-accounts="beta">Account beta</b>' in page
    assert "<title>VoIPstudio calls · account beta · " in page
    page = render_html(everything, NOW)
    assert '<b data-accounts="acme,beta">All accounts (acme, beta)</b>' in page
    assert "<b>Several accounts</b> (acme, beta)" in page
    page = render_html(single, NOW)
    assert '<b data-accounts="default">Account default</b>' in page
    assert "Several accounts" not in page and "<title>VoIPstudio calls · 16 Feb" in page


def test_one_account_of_two_is_that_account_alone(two_accounts: Company, company: Company) -> None:
    """Account acme is the company of ``company``, loaded next to beta: its report is exactly
    the report of that company synced alone, beta's calls nowhere in it."""
    acme = report(two_accounts, ["acme"])
    assert acme.totals.calls > 0 and acme.previous_totals is not None
    assert without_accounts(acme) == without_accounts(report(company))
    for table in PAGE_TABLES:
        assert {row["account"] for row in page_rows(acme, table)} == {"acme"}, table
    # beta, against SQL over the marts restricted to beta
    beta = tiles(report(two_accounts, ["beta"]))
    for key, value in expected_tiles(two_accounts, PERIOD, "beta").items():
        got = beta[key].value
        assert (got is None) == (value is None), key
        if value is not None:
            assert got == pytest.approx(value, rel=1e-12), key
    # beta's data starts on 2026-02-09, inside the previous fortnight: not compared
    assert expected_tiles(two_accounts, PERIOD.previous(), "beta")["calls"]
    assert all(kpi.previous is None and kpi.change is None for kpi in beta.values())


def test_every_account_is_the_accounts_summed(two_accounts: Company) -> None:
    everything = report(two_accounts)
    acme, beta = report(two_accounts, ["acme"]), report(two_accounts, ["beta"])
    assert acme.totals.calls > 0 and beta.totals.calls > 0
    # every numerator and denominator adds up; the tiles are the sums' ratios
    assert set(everything.totals.values) == set(acme.totals.values) == set(beta.totals.values)
    for name, summed in everything.totals.values.items():
        one, other = acme.totals.values[name], beta.totals.values[name]
        assert summed.numerator == pytest.approx(one.numerator + other.numerator, rel=1e-12)
        if summed.denominator is not None:
            assert one.denominator is not None and other.denominator is not None
            expected = one.denominator + other.denominator
            assert summed.denominator == pytest.approx(expected, rel=1e-12), name
    got = tiles(everything)
    for key, value in expected_tiles(two_accounts, PERIOD).items():  # every row of the marts
        assert value is not None
        assert got[key].value == pytest.approx(value, rel=1e-12), key
    # never an average of the accounts' ratios
    sl_acme, sl_beta = acme.totals.value("service_level"), beta.totals.value("service_level")
    assert sl_acme is not None and sl_beta is not None and sl_acme != sl_beta
    assert got["service_level"].value != pytest.approx((sl_acme + sl_beta) / 2, abs=1e-9)
    assert everything.first_day == min(acme.first_day, beta.first_day)  # type: ignore[type-var]
    assert everything.newest_call == max(acme.newest_call, beta.newest_call)  # type: ignore[type-var]

    # what the page's charts and tables are drawn from adds up, key by key
    measures = {
        "calls": [f"outcome.{outcome}" for outcome in OUTCOMES],
        "heat": ["calls"],
        "traffic": ["holding", "attempts"],
        "agents": ["offered", "answered", "rona", "answered_talk", "outbound", "callbacks"],
        "missed": [],
    }
    for table, columns in measures.items():

        def summed(data: ReportData, table: str = table, columns: list[str] = columns) -> Counter:
            sums: Counter[tuple[Any, ...]] = Counter()
            for row in page_rows(data, table):
                key = tuple(v for k, v in sorted(row.items()) if k not in columns)
                sums[key] += 1
                for column in columns:
                    sums[(*key, column)] += row[column]
            return sums

        assert summed(everything) == summed(acme) + summed(beta) != Counter(), table
    heat = sum(row["calls"] for row in page_rows(everything, "heat"))
    assert heat == everything.totals.calls
    # the busy hour of a day is ranked on the accounts' holding time summed (the page's rule):
    # the page has every account's holding time in every hour
    talk = two_accounts.query(
        "select hour_start_epoch, sum(holding_seconds) from voipstudio.agg_traffic_hourly "
        "where call_date between $start and $end group by 1",
        between(PERIOD),
    )
    holding: Counter[int] = Counter()
    for row in page_rows(everything, "traffic"):
        holding[row["epoch"]] += row["holding"]
    assert holding == Counter({int(epoch): seconds for epoch, seconds in talk})
    # the peak of the accounts together: at least each one's, at most their sum
    peaks_all = {int(epoch): peak for epoch, peak in everything.cube["peaks_all"].items()}
    each: dict[int, list[int]] = defaultdict(list)
    for row in page_rows(everything, "traffic"):
        each[row["epoch"]].append(row["peak"])
    assert set(each) <= set(peaks_all)
    for epoch, peaks in each.items():
        assert max(peaks) <= peaks_all[epoch] <= sum(peaks), epoch
    # destinations summed by name (a whole month: the monthly mart, summed over the accounts)
    february = report(two_accounts, period=Period(date(2026, 2, 1), date(2026, 2, 28)))
    expected = two_accounts.query(
        "select destination, sum(attempts), sum(answered_calls), sum(talk_seconds), "
        "cast(sum(cost) as double) from voipstudio.agg_destination_monthly "
        "where month_start = date '2026-02-01' and direction = 'outbound' group by destination"
    )
    got = page_sums(february, "destinations", "destination", DESTINATION_MEASURES)
    assert set(got) == {row[0] for row in expected}
    for name, attempts, answered, talk_seconds, cost in expected:
        assert got[name][:3] == [attempts, answered, talk_seconds], name
        assert got[name][3] == pytest.approx(cost, rel=1e-12), name
    # open missed numbers: each account's, side by side
    numbers = {(row["account"], row["number"]) for row in page_rows(everything, "missed")}
    assert {account for account, _ in numbers} == {"acme", "beta"}


def test_the_peak_of_several_accounts_is_counted_from_their_calls(two_accounts: Company) -> None:
    """Concurrent calls do not add up hour by hour (the accounts' peaks need not coincide):
    the report counts them again from the calls; checked here by a plain sweep in Python."""
    everything = report(two_accounts)
    calls = two_accounts.query(
        "select start_epoch, end_epoch from voipstudio.fct_calls where end_epoch > start_epoch"
    )
    zone = ZoneInfo(TIMEZONE)
    local = {row["epoch"]: row["local"] for row in page_rows(everything, "traffic")}
    # the page's hours are the mart's: each starts at its local hour
    for epoch, text in local.items():
        assert datetime.fromisoformat(text).replace(tzinfo=zone).timestamp() == epoch
    starts = set(local)
    origin = min(starts)
    peaks = dict.fromkeys(starts, 0)
    in_progress = 0
    for epoch, delta in sorted([(s, 1) for s, _ in calls] + [(e, -1) for _, e in calls]):
        in_progress += delta
        hour = origin + 3600 * ((epoch - origin) // 3600)
        if delta == 1 and hour in peaks:
            peaks[hour] = max(peaks[hour], in_progress)
    for hour in peaks:
        carried = sum(1 for s, e in calls if s < hour < e)
        peaks[hour] = max(peaks[hour], carried)
    peaks_all = {int(epoch): peak for epoch, peak in everything.cube["peaks_all"].items()}
    assert {epoch: peaks_all.get(epoch, 0) for epoch in starts} == peaks
    assert max(peaks.values()) > 1
    # and for one account, the recount is the mart's own figure
    with open_marts(two_accounts.db_path, "voipstudio", SETTINGS) as marts:
        for account in ACCOUNTS:
            mart = dict(
                two_accounts.query(
                    "select hour_start_epoch, peak_concurrent_calls "
                    "from voipstudio.agg_traffic_hourly "
                    "where account = $account and call_date between $start and $end",
                    {"account": account, **between(PERIOD)},
                )
            )
            one = dataclasses.replace(marts, accounts=(account,))
            assert combined_peaks(one, PERIOD) == mart, account


def test_users_with_the_same_id_and_name_in_two_accounts_stay_two_users(
    two_accounts: Company,
) -> None:
    def agents(data: ReportData) -> dict[tuple[str, int], tuple[str, list[float]]]:
        """The page's agents by (account, user id): name, offered, answered, talk."""
        cube = data.cube
        names = {(cube["accounts"][a], user): name for a, user, name, _ in cube["agents_list"]}
        sums = page_sums(data, "agents", "agent", ("offered", "answered", "talk"))
        return {agent: (names[agent], totals) for agent, totals in sums.items()}

    everything = report(two_accounts)
    acme, beta = agents(report(two_accounts, ["acme"])), agents(report(two_accounts, ["beta"]))
    both = agents(everything)
    shared = {(user, name) for (_, user), (name, _) in acme.items()} & {
        (user, name) for (_, user), (name, _) in beta.items()
    }
    assert shared, "the accounts should share user ids and names"
    for user, _ in shared:
        # two agents, one per account, each with that account's own figures
        assert both["acme", user] == acme["acme", user]
        assert both["beta", user] == beta["beta", user]
        assert acme["acme", user] != beta["beta", user]
    assert both == {**acme, **beta}
    # the page lists both, each with its account (the browser tests show the account column)
    cube = everything.cube
    listed = {(cube["accounts"][account], user_id) for account, user_id, *_ in cube["agents_list"]}
    for user_id, _ in shared:
        assert {("acme", user_id), ("beta", user_id)} <= listed


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        (["gamma"], r"no account 'gamma' in calls\.duckdb: it holds acme, beta"),
        (["acme", "zeta", "gamma"], r"no accounts 'gamma', 'zeta' in calls\.duckdb: it holds acme"),
    ],
)
def test_an_unknown_account_is_an_error_naming_those_there_are(
    two_accounts: Company, accounts: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        report(two_accounts, accounts)


def test_an_unknown_account_of_one_account_and_of_no_data(company: Company, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no account 'acme' in calls\.duckdb: it holds default"):
        report(company, ["acme"])
    empty = raw_only_database(tmp_path / "raw-only.duckdb")
    assert report(Company(empty, {})).accounts == Accounts()
    with pytest.raises(ConfigError, match="it holds no account yet"):
        report(Company(empty, {}), ["acme"])


def test_marts_built_before_accounts_say_to_rebuild(live: Path) -> None:
    with duckdb.connect(str(live)) as db:
        db.execute("alter table voipstudio.fct_calls drop column account")
    with pytest.raises(ConfigError, match="built before they carried their account"):
        report(Company(live, {}))


def test_another_time_zone_rebuilds_every_account_in_memory(two_accounts: Company) -> None:
    tokyo = with_timezone(SETTINGS, "Asia/Tokyo")
    everything = report(two_accounts, settings=tokyo)
    assert any("rebuilt" in note for note in everything.notes)
    acme = report(two_accounts, ["acme"], settings=tokyo)
    beta = report(two_accounts, ["beta"], settings=tokyo)
    assert everything.totals.calls == acme.totals.calls + beta.totals.calls
    # Tokyo's days, counted from the instants the calls started
    for data, account in ((acme, "acme"), (beta, "beta")):
        expected = two_accounts.scalar(
            "select count(*) from voipstudio.fct_calls where account = $account and "
            "cast(to_timestamp(start_epoch) at time zone 'Asia/Tokyo' as date) "
            "between $start and $end",
            {"account": account, **between(PERIOD)},
        )
        assert data.totals.calls == expected > 0
    # Tokyo's days are not Madrid's
    assert page_content(report(two_accounts, ["acme"]))["calls"] != page_content(acme)["calls"]


def test_report_command_with_accounts(
    two_accounts_env: Company, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    period = ["--from", str(PERIOD.start), "--to", str(PERIOD.end)]
    page = tmp_path / "beta.html"
    assert main(["report", *period, "--account", "beta", "-o", str(page)]) == 0
    beta_calls = two_accounts_env.scalar(
        "select count(*) from voipstudio.fct_calls "
        "where account = 'beta' and call_date between $start and $end",
        between(PERIOD),
    )
    assert f"Europe/Madrid; {beta_calls:,} calls; account beta)" in capsys.readouterr().out
    assert 'data-accounts="beta"' in page.read_text(encoding="utf-8")
    page = tmp_path / "all.html"
    assert main(["report", *period, "--account", "acme", "--account", "beta", "-o", str(page)]) == 0
    all_calls = two_accounts_env.scalar(
        "select count(*) from voipstudio.fct_calls where call_date between $start and $end",
        between(PERIOD),
    )
    assert f"; {all_calls:,} calls; all accounts (acme, beta))" in capsys.readouterr().out
    assert main(["report", *period, "-o", str(page)]) == 0
    assert "all accounts (acme, beta))" in capsys.readouterr().out
    # an unknown account: exit 2, the accounts there are named, nothing written
    assert main(["report", "--account", "gamma", "-o", str(tmp_path / "none.html")]) == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "no account 'gamma' in calls.duckdb: it holds acme, beta" in line
    assert not (tmp_path / "none.html").exists()


def test_publish_copies_every_account_and_lists_them(two_accounts: Company, tmp_path: Path) -> None:
    live = tmp_path / "calls.duckdb"
    shutil.copy(two_accounts.db_path, live)
    target = tmp_path / "published"
    result = publish(live, "voipstudio", PublishSettings(directory=target))
    assert "accounts acme, beta)" in result.summary()
    manifest = json.loads((target / "manifest.json").read_text())
    assert list(manifest["accounts"]) == list(ACCOUNTS)
    for table in ("cdrs", "users", "fct_calls", "agg_calls_daily", "agg_user_daily"):
        per_account = dict(
            two_accounts.query(f"select account, count(*) from voipstudio.{table} group by 1")
        )
        assert {a: manifest["accounts"][a][table] for a in ACCOUNTS} == per_account, table
        assert sum(per_account.values()) == manifest["rows"][table]
    assert "queues__users" not in manifest["accounts"]["acme"]  # a child table: no account
    # the copy holds both accounts, and the dashboard reads it like the original
    copy = target / "calls.duckdb"
    from_copy = report(Company(copy, {}))
    assert from_copy.accounts == Accounts(ACCOUNTS, ACCOUNTS)
    assert from_copy.totals == report(two_accounts).totals
