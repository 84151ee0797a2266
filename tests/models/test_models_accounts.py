"""The models with two VoIPstudio accounts in one dataset, whose ids collide.

Two emulators are two companies: "north" serves the hand-made CDRs of handmade_cdrs.py,
"south" SECOND_ACCOUNT_RECORDS, which reuse the same CDR ids, call_ids, user ids, numbers and
times for other calls. The real sync loads both accounts, configured through environment
variables, into one DuckDB file; it also loads each account alone into a file of its own. Each
account's rows of the two-account build must be exactly those of its build alone (no id,
callback, horizon or hour range leaks from one account into the other), and figures across
accounts are the sums of the per-account ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from handmade_cdrs import N1, N2, N3, N4, RECORDS, SECOND_ACCOUNT_RECORDS, A, B, C
from models_harness import (
    DATASET,
    NOT_LOADED_BY_DEFAULT,
    OBSERVED_COLUMNS,
    ModelsHarness,
    day,
    epoch,
    two_accounts,
)

from pipelines.models import (
    BuildResult,
    DataTestResult,
    build_models,
    load_project,
    run_data_tests,
)
from pipelines.models.kpis import headline_kpis

ACCOUNTS = ("north", "south")


@dataclass
class Build:
    harness: ModelsHarness
    result: BuildResult
    tests: list[DataTestResult]
    kpis: dict[str, list[str]]  # "all" and each account: headline_kpis' lines


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Build]]:
    """``both``: the two accounts synced together; ``north`` and ``south``: each alone."""
    with two_accounts() as servers:
        builds: dict[str, Build] = {}
        for label, names in {"both": ACCOUNTS, "north": ("north",), "south": ("south",)}.items():
            with pytest.MonkeyPatch.context() as monkeypatch:
                tmp_path: Path = tmp_path_factory.mktemp(label)
                harness = ModelsHarness(servers["north"], tmp_path, monkeypatch)
                harness.use_accounts({name: servers[name] for name in names})
                harness.sync()
                pipeline = harness.pipeline()
                result = build_models(pipeline)
                tests = run_data_tests(pipeline)
                kpis = {"all": headline_kpis(pipeline)}
                kpis.update({name: headline_kpis(pipeline, [name]) for name in names})
                builds[label] = Build(harness, result, tests, kpis)
        yield builds


def rows_of(build: Build, model: str, account: str | None = None) -> list[tuple[Any, ...]]:
    """A model's rows without the account column (of one account, or all), sorted."""
    columns = [
        row["column_name"]
        for row in build.harness.query(
            "select column_name from information_schema.columns "
            f"where table_schema = '{DATASET}' and table_name = '{model}' "
            "order by ordinal_position"
        )
        if row["column_name"] != "account" and row["column_name"] not in OBSERVED_COLUMNS
    ]
    where = f"where account = '{account}'" if account else ""
    sql = f"select {', '.join(columns)} from {DATASET}.{model} {where}"
    with_account = build.harness.query(sql)
    return sorted((tuple(row.values()) for row in with_account), key=repr)


def by_key(rows: list[dict[str, Any]], *key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    keyed = {tuple(row[k] for k in key): row for row in rows}
    assert len(keyed) == len(rows), f"{key} is not unique"
    return keyed


# The models with a row per queue call only (SECOND_ACCOUNT_RECORDS has no queue legs).
QUEUE_MODELS = {"fct_queue_calls", "agg_queue_interval", "agg_queue_daily"}


def test_both_accounts_build_and_pass_every_data_test(builds: dict[str, Build]) -> None:
    for label, build in builds.items():
        assert not build.result.skipped, label
        models = load_project().models
        assert len(build.result.built) + len(build.result.not_loaded) == len(models), label
        # Only the models of collections the configuration does not load are left out.
        assert set(build.result.not_loaded) == NOT_LOADED_BY_DEFAULT, label
        assert {t.name: t.failures for t in build.tests} == {t.name: 0 for t in build.tests}
    both = builds["both"]
    assert "accounts_reconcile" in {t.name for t in both.tests}
    loaded = both.harness.query(f"select account, count(*) as n from {DATASET}.cdrs group by 1")
    assert {row["account"]: row["n"] for row in loaded} == {
        "north": len(RECORDS),
        "south": len(SECOND_ACCOUNT_RECORDS),
    }
    for model in both.result.built:
        columns = both.harness.query(f"describe {DATASET}.{model.name}")
        assert columns[0]["column_name"] == "account", model.name
        accounts = both.harness.query(f"select distinct account from {DATASET}.{model.name}")
        # The second account's calls go through no queue: it has no rows in the queue models.
        expected = {"north"} if model.name in QUEUE_MODELS else set(ACCOUNTS)
        assert {row["account"] for row in accounts} == expected, model.name


def test_each_account_holds_exactly_the_rows_of_its_build_alone(
    builds: dict[str, Build],
) -> None:
    """No model lets one account's data change another's rows: ids, call keys, callbacks,
    repeat callers, data horizons, hour ranges and busy hours are all per account."""
    both = builds["both"]
    for model in both.result.built:
        for account in ACCOUNTS:
            alone = rows_of(builds[account], model.name)
            assert rows_of(both, model.name, account) == alone, (model.name, account)
            # The second account's calls go through no queue: its queue views are empty.
            assert alone or (account == "south" and model.name in QUEUE_MODELS), (
                model.name,
                account,
            )


def test_colliding_ids_stay_separate_calls_users_and_callbacks(builds: dict[str, Build]) -> None:
    harness = builds["both"].harness
    calls = by_key(harness.table("fct_calls"), "account", "call_key")
    assert len(calls) == 21 + 5
    # call_id 1001: north's queue call of two legs, south's direct call of one
    assert calls["north", 1001]["leg_count"] == 2 and calls["north", 1001]["talk_seconds"] == 300
    assert calls["south", 1001]["leg_count"] == 1 and calls["south", 1001]["talk_seconds"] == 120
    assert calls["south", 1001]["answering_user_id"] == B
    assert calls["south", 1001]["wait_seconds"] == 6
    # call_id 1003: north's callback of X2 by A, south's call of B to X4
    assert calls["north", 1003]["external_number"] == N2
    assert calls["north", 1003]["calling_user_id"] == A
    assert calls["south", 1003]["external_number"] == N4
    assert calls["south", 1003]["calling_user_id"] == B
    assert float(calls["south", 1003]["cost"]) == pytest.approx(0.015)
    # no call_id, CDR 10 in both: key -10 twice
    assert calls["north", -10]["outcome"] == "failed"
    assert calls["south", -10]["is_answered"] and calls["south", -10]["external_number"] == N3

    # The same miss (X2 at 09:02 on the 29th) in both accounts: north called X2 back at 10:30,
    # south never did; north's call is no callback of south's miss.
    callbacks = by_key(harness.table("fct_missed_call_callbacks"), "account", "missed_call_key")
    assert set(callbacks) == {
        ("north", 1002),
        ("north", 1004),
        ("north", 1016),
        ("north", 1018),
        ("south", 1002),
        ("south", 1004),
    }
    assert callbacks["north", 1002]["callback_call_key"] == 1003
    assert callbacks["north", 1002]["callback_user_id"] == A
    south_horizon = epoch("2024-03-30 20:00:00")  # south's newest call, not north's
    for key in (("south", 1002), ("south", 1004)):
        assert callbacks[key]["callback_call_key"] is None
    horizons = by_key(harness.table("dim_accounts"), "account")
    assert horizons["south",]["data_horizon_epoch"] == south_horizon
    assert horizons["north",]["data_horizon_epoch"] == epoch("2024-10-28 08:00:00")
    # south's 1002 ended 35 h before its horizon: judged, not called back
    assert callbacks["south", 1002]["called_back_within_24h"] is False
    # south's 1004 ended 10:00:20, under 10 h before south's horizon: its 24 h window is open
    # (with north's horizon it would wrongly be judged not called back)
    assert callbacks["south", 1004]["called_back_within_4h"] is False
    assert callbacks["south", 1004]["called_back_within_24h"] is None
    assert callbacks["south", 1004]["is_too_recent"] is True

    # Repeat callers per account: X2 called south twice within a day (both missed); X2's calls
    # to north are seven months apart, and X1's call to south repeats nothing of north's.
    repeats = by_key(harness.table("rpt_repeat_callers"), "account", "caller_number")
    repeaters = {key for key, row in repeats.items() if row["repeat_calls"]}
    assert repeaters == {("north", N1), ("north", N3), ("south", N2)}
    # every number that called in has a row, also those that never called again
    assert {("north", N2), ("north", N4), ("south", N1)} <= set(repeats)
    assert repeats["north", N1]["inbound_calls"] == 4
    assert repeats["south", N2]["inbound_calls"] == 2
    assert repeats["south", N2]["repeats_after_missed"] == 1
    assert repeats["south", N2]["shortest_gap_seconds"] == 89880  # 09:02 to 10:00 next day

    # Users 100001-100003 exist in both accounts with other names: each account's figures
    # and names are its own user's.
    names = {
        (row["account"], row["id"]): f"{row['first_name']} {row['last_name']}"
        for row in harness.table("users")
    }
    assert names["north", B] != names["south", B]
    users = by_key(harness.table("agg_user_daily"), "account", "call_date", "user_id")
    assert {key for key in users if key[0] == "south"} == {
        ("south", day("2024-03-29"), A),
        ("south", day("2024-03-29"), B),
        ("south", day("2024-03-30"), A),
        ("south", day("2024-03-30"), C),
    }
    south_b = users["south", day("2024-03-29"), B]
    assert south_b["user_name"] == names["south", B]
    # B answered 1001 (6 s ring, 120 s talk) and placed 1003 (45 s talk): both handled
    assert south_b["handled_calls"] == 2 and south_b["inbound_handled_calls"] == 1
    assert south_b["outbound_calls"] == 1 and south_b["talk_seconds"] == 165
    assert south_b["avg_ring_seconds"] == 6.0
    assert users["north", day("2024-03-29"), B]["user_name"] == names["north", B]
    assert users["south", day("2024-03-29"), A]["missed_calls"] == 1

    # Queue 7001 and its members exist in both accounts.
    members = harness.table("stg_voipstudio__queue_members")
    assert sorted((row["account"], row["queue_id"], row["user_id"]) for row in members) == [
        (account, 7001, user) for account in ACCOUNTS for user in (A, B, C)
    ]

    # Hours run from each account's first call to its last: south's 36 hours, from 10:00 local
    # on the 29th (09:00 UTC) to 21:00 local on the 30th (its last call ends 21:01:10).
    hours = harness.query(
        f"select count(*) as n, min(hour_start_epoch) as first, max(hour_start_epoch) as last "
        f"from {DATASET}.agg_traffic_hourly where account = 'south'"
    )[0]
    assert hours == {
        "n": 36,
        "first": epoch("2024-03-29 09:00:00"),
        "last": epoch("2024-03-30 20:00:00"),
    }


# Columns that add up across accounts (and across rows of one account).
ADDITIVE = {
    "agg_calls_daily": [
        "attempts",
        "answered_calls",
        "effective_calls",
        "talk_seconds",
        "answered_wait_seconds",
        "cost",
        "missed_calls",
        "offered_calls",
        "abandoned_calls",
        "short_abandoned_calls",
        "offered_calls_excl_short",
        "abandoned_calls_excl_short",
        "answered_within_sl_calls",
    ],
    "agg_traffic_hourly": ["call_attempts", "talk_seconds", "carried_erlangs"],
    "agg_destination_monthly": ["attempts", "answered_calls", "talk_seconds", "cost"],
    "agg_user_daily": [
        "handled_calls",
        "inbound_handled_calls",
        "outbound_calls",
        "missed_calls",
        "talk_seconds",
        "inbound_answered_legs",
        "callbacks_made",
    ],
}
GRAIN = {
    "agg_calls_daily": "call_date, direction",
    "agg_traffic_hourly": "hour_start_utc",
    "agg_destination_monthly": "month_start, direction, destination",
    "agg_user_daily": "call_date",
}


def test_across_accounts_totals_are_the_sums_of_the_accounts(builds: dict[str, Build]) -> None:
    """Summing the per-account rows over the grain without account gives the figures across
    accounts; they equal the sums of the builds of each account alone."""
    for model, columns in ADDITIVE.items():
        sums = ", ".join(f"sum({column}) as {column}" for column in columns)
        sql = (
            f"select {GRAIN[model]}, {sums} from {DATASET}.{model} "
            f"group by {GRAIN[model]} order by {GRAIN[model]}"
        )
        across = builds["both"].harness.query(sql)
        assert len(across) == len({repr(row) for row in across})
        expected: dict[str, dict[str, float]] = {}
        grain = [g.strip() for g in GRAIN[model].split(",")]
        for account in ACCOUNTS:
            for row in builds[account].harness.query(sql):
                key = repr([row[g] for g in grain])
                total = expected.setdefault(key, dict.fromkeys(columns, 0.0))
                for column in columns:
                    total[column] += float(row[column])
        got = {repr([row[g] for g in grain]): {c: float(row[c]) for c in columns} for row in across}
        assert got.keys() == expected.keys(), model
        for key, total in expected.items():
            assert got[key] == pytest.approx(total), (model, key)
    # 2024-03-29 09:00-10:00 UTC: north's queue call talked 300 s in it, south's call 120 s.
    hour = builds["both"].harness.query(
        f"select account, talk_seconds from {DATASET}.agg_traffic_hourly "
        f"where hour_start_epoch = {epoch('2024-03-29 09:00:00')} order by account"
    )
    assert [(row["account"], row["talk_seconds"]) for row in hour] == [
        ("north", 300),
        ("south", 120),
    ]


def test_ratios_across_accounts_come_from_summed_numerators_and_denominators(
    builds: dict[str, Build],
) -> None:
    harness = builds["both"].harness
    daily = harness.query(
        f"select sum(answered_within_sl_calls) as within_sl, "
        f"sum(offered_calls_excl_short) as offered, sum(answered_calls) as answered, "
        f"sum(attempts) as attempts from {DATASET}.agg_calls_daily where direction = 'inbound'"
    )[0]
    calls = harness.query(
        "select count(case when is_answered_within_sl then 1 end) as within_sl, "
        "count(case when is_offered and not is_short_abandon then 1 end) as offered, "
        "count(case when is_answered then 1 end) as answered, count(*) as attempts "
        f"from {DATASET}.fct_calls where direction = 'inbound'"
    )[0]
    assert daily == calls
    # north: 12 inbound calls, 7 answered, 5 of 10 within the SL; south: 3 calls (1001, the
    # misses 1002 and 1004, none short), 1 answered, 1 of 3 within the SL
    assert calls == {"within_sl": 6, "offered": 13, "answered": 8, "attempts": 15}


def test_headline_kpis_across_accounts_and_per_account(builds: dict[str, Build]) -> None:
    both = builds["both"].kpis
    # one account's figures are those of its sync alone
    assert both["north"] == builds["north"].kpis["all"]
    assert both["south"] == builds["south"].kpis["all"]
    # with one account there is nothing to say about accounts
    assert not builds["north"].kpis["all"][0].startswith("accounts")
    # across accounts: said, and summed (15 inbound calls: 12 + 3)
    assert both["all"][0] == "accounts north, south: figures summed across them"
    assert both["all"][1].startswith("inbound  2024-03-29 .. 2024-10-27: 15 calls, 53.3% answered")
    assert both["all"] != both["north"]
