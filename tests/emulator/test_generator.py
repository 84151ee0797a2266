"""Tests of the synthetic company generator (pipelines.emulator.generator)."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from pipelines.emulator.fields import CDR_FIELDS, QUEUE_FIELDS, USER_FIELDS
from pipelines.emulator.generator import (
    Company,
    CompanySpec,
    generate_company,
    generate_new_cdrs,
)

CALLDATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
PY_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "str": (str,),
    "number": (float,),
    "datetime": (str,),
    "bool": (bool,),
    "array": (list,),
}
# Columns that must never be null in generated data.
NOT_NULL = {
    "id", "call_id", "live_id", "user_id", "sip_endpoint_id", "server_id", "type", "calldate",
    "clid", "src", "src_name", "src_codec", "dst", "dst_name", "dst_codec", "duration",
    "billsec", "disposition", "context", "rate", "charge", "t_cause", "labels", "nb_notes",
}  # fmt: skip
SPEC = CompanySpec(rows=5000)


def epoch(calldate: str) -> int:
    return int(datetime.strptime(calldate, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp())


def rows_of(cols: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def calls_of(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    calls: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        calls[r["call_id"]].append(r)
    return calls


def call_type(legs: list[dict[str, Any]]) -> str:
    types = {leg["type"] for leg in legs}
    if "O" in types:
        return "O"
    return "I" if "I" in types else "M"


def assert_valid_columns(cols: dict[str, list[Any]], user_ids: set[int]) -> None:
    assert list(cols) == list(CDR_FIELDS)
    n = len(cols["id"])
    assert all(len(v) == n for v in cols.values())
    for name, kind in CDR_FIELDS.items():
        allowed = PY_TYPES[kind]
        for value in cols[name]:
            if value is None:
                assert name not in NOT_NULL, name
                continue
            assert isinstance(value, allowed), (name, value)
            if kind == "int":
                assert not isinstance(value, bool), name
            if kind == "array":
                assert all(isinstance(x, str) for x in value)
    assert all(CALLDATE_RE.match(d) for d in cols["calldate"])
    assert set(cols["user_id"]) <= user_ids
    assert set(cols["type"]) <= {"I", "O", "M"}
    assert set(cols["disposition"]) <= {"CONNECTED", "NO ANSWER", "BUSY", "FAILED"}
    for r in rows_of(cols):
        assert 0 <= r["billsec"] <= r["duration"]
        assert (r["billsec"] > 0) == (r["disposition"] == "CONNECTED")
        assert r["charge"] == round(r["rate"] * r["billsec"] / 60, 4)
        for side in ("src", "dst"):
            if r[f"{side}_id"] is not None:
                assert int(r[f"{side}_id"]) in user_ids
    # JSON-native: serialisable without a default hook.
    orjson.dumps(cols)


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(SPEC)


@pytest.fixture(scope="module")
def rows(company: Company) -> list[dict[str, Any]]:
    return rows_of(company.cdrs)


@pytest.fixture(scope="module")
def calls(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    return calls_of(rows)


@pytest.fixture(scope="module")
def big() -> Company:
    return generate_company(CompanySpec(seed=7, users=60, queues=6, rows=200_000))


# ----------------------------------------------------------------------------------------------
# Spec and determinism
# ----------------------------------------------------------------------------------------------


def test_spec_defaults() -> None:
    spec = CompanySpec()
    assert spec.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert spec.end == spec.start + timedelta(days=30)
    shifted = CompanySpec(start=datetime(2026, 3, 1, tzinfo=UTC))
    assert shifted.end == datetime(2026, 3, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"users": 1},
        {"queues": -1},
        {"rows": -5},
        {"start": datetime(2026, 1, 1)},
        {"end": datetime(2025, 12, 1, tzinfo=UTC)},
    ],
)
def test_spec_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CompanySpec(**kwargs)


def test_deterministic(company: Company) -> None:
    again = generate_company(SPEC)
    assert again == company
    assert orjson.dumps(again.cdrs) == orjson.dumps(company.cdrs)
    assert orjson.dumps(again.users) == orjson.dumps(company.users)
    assert orjson.dumps(again.queues) == orjson.dumps(company.queues)


def test_different_seed_differs(company: Company) -> None:
    other = generate_company(CompanySpec(seed=43, rows=5000))
    assert other.cdrs["calldate"] != company.cdrs["calldate"]
    assert other.cdrs["src"] != company.cdrs["src"]


# ----------------------------------------------------------------------------------------------
# Shape and types
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 17, 999])
def test_exact_row_count_small(n: int) -> None:
    cols = generate_company(CompanySpec(seed=3, rows=n)).cdrs
    assert all(len(v) == n for v in cols.values())


def test_exact_row_count(company: Company) -> None:
    assert len(company.cdrs["id"]) == 5000


def test_default_rows_about_40_per_user_weekday() -> None:
    spec = CompanySpec(users=10, queues=2)
    n = len(generate_company(spec).cdrs["id"])
    # January 2026 from the 1st: 22 weekdays minus the holidays (1 and 6 January) = 20.
    assert 0.8 * 40 * 10 * 20 <= n <= 1.25 * 40 * 10 * 22


def test_cdr_columns_types(company: Company) -> None:
    assert_valid_columns(company.cdrs, {u["id"] for u in company.users})


def test_users_and_queues(company: Company) -> None:
    assert len(company.users) == SPEC.users
    assert len(company.queues) == SPEC.queues
    for u in company.users:
        assert list(u) == list(USER_FIELDS)
        assert isinstance(u["id"], int) and isinstance(u["ext"], str) and u["ext"].isdigit()
        assert isinstance(u["active"], bool) and isinstance(u["dnd"], bool)
        assert CALLDATE_RE.match(u["created_at"])
        assert u["created_at"] < "2026-01-01"
        assert u["customer_id"] == SPEC.customer_id and "@" in u["email"]
    assert len({u["id"] for u in company.users}) == SPEC.users
    assert len({u["ext"] for u in company.users}) == SPEC.users
    assert len({u["email"] for u in company.users}) == SPEC.users
    user_ids = {u["id"] for u in company.users}
    exts = {u["ext"] for u in company.users}
    for q in company.queues:
        assert list(q) == list(QUEUE_FIELDS)
        assert len(q["users"]) >= 2 and set(q["users"]) <= user_ids
        assert q["number"] not in exts
        assert isinstance(q["ring_time"], int) and isinstance(q["skip_busy"], bool)
    orjson.dumps(company.users)
    orjson.dumps(company.queues)


def test_no_queues_and_two_users() -> None:
    c = generate_company(CompanySpec(seed=5, users=2, queues=0, rows=800))
    assert c.queues == []
    assert len(c.cdrs["id"]) == 800
    assert "from-queue" not in c.cdrs["context"]
    assert_valid_columns(c.cdrs, {u["id"] for u in c.users})


def test_other_country() -> None:
    c = generate_company(
        CompanySpec(seed=9, rows=1500, country_code="44", timezone="Europe/London")
    )
    assert_valid_columns(c.cdrs, {u["id"] for u in c.users})
    assert any(d == "United Kingdom Mobile (Local)" for d in c.cdrs["destination"])
    assert c.users[0]["language"] in {"en", "es", "fr"}


# ----------------------------------------------------------------------------------------------
# Ids and time
# ----------------------------------------------------------------------------------------------


def test_ids_unique_ascending(company: Company) -> None:
    ids = company.cdrs["id"]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert len(set(company.cdrs["live_id"])) == len(ids)


def test_ids_follow_end_time(rows: list[dict[str, Any]]) -> None:
    ends = [epoch(r["calldate"]) + r["duration"] for r in rows]
    assert ends == sorted(ends)
    # ... which is not start order: long calls are written after later, shorter ones.
    starts = [epoch(r["calldate"]) for r in rows]
    assert starts != sorted(starts)


def test_calldate_in_range(rows: list[dict[str, Any]]) -> None:
    lo, hi = int(SPEC.start.timestamp()), int(SPEC.end.timestamp())
    for r in rows:
        t = epoch(r["calldate"])
        assert lo <= t < hi
        assert t + r["duration"] < hi  # calls still in progress at `end` have no CDR yet


def test_business_hours_and_weekdays(rows: list[dict[str, Any]]) -> None:
    tz = ZoneInfo(SPEC.timezone)
    local = [datetime.fromtimestamp(epoch(r["calldate"]), tz) for r in rows]
    n = len(local)
    weekday = [t for t in local if t.weekday() < 5]
    business = [t for t in weekday if 9 <= t.hour < 14 or 15 <= t.hour < 19]
    night = [t for t in local if t.hour < 7 or t.hour >= 21]
    assert len(weekday) / n > 0.9
    assert len(business) / n > 0.7
    assert 0 < len(night) / n < 0.05
    assert len(weekday) < n  # a little weekend traffic
    hours = Counter(t.hour for t in weekday)
    assert hours[14] < 0.6 * hours[11]  # lunch dip


def test_durations(rows: list[dict[str, Any]], big: Company) -> None:
    for r in rows:
        assert 2 <= r["duration"] - r["billsec"] <= 40
    talked = sorted(b for b in big.cdrs["billsec"] if b > 0)
    median = talked[len(talked) // 2]
    assert 30 <= median <= 300
    long_calls = [b for b in talked if b >= 3600]
    assert 0 < len(long_calls) < 0.01 * len(talked)


# ----------------------------------------------------------------------------------------------
# Call mix
# ----------------------------------------------------------------------------------------------


def test_type_shares(calls: dict[int, list[dict[str, Any]]]) -> None:
    shares = Counter(call_type(legs) for legs in calls.values())
    total = sum(shares.values())
    assert abs(shares["I"] / total - 0.45) < 0.06
    assert abs(shares["O"] / total - 0.35) < 0.06
    assert abs(shares["M"] / total - 0.20) < 0.06


def test_dispositions_and_causes(rows: list[dict[str, Any]]) -> None:
    disp = Counter(r["disposition"] for r in rows)
    assert set(disp) == {"CONNECTED", "NO ANSWER", "BUSY", "FAILED"}
    for r in rows:
        if r["disposition"] == "CONNECTED":
            assert r["t_cause"] in {"16", "31"}
        elif r["disposition"] == "BUSY":
            assert r["t_cause"] == "17"
    unanswered_out = [r for r in rows if r["type"] == "O" and r["billsec"] == 0]
    assert unanswered_out


def test_multi_leg_calls(calls: dict[int, list[dict[str, Any]]]) -> None:
    multi = [legs for legs in calls.values() if len(legs) > 1]
    assert 0.05 < len(multi) / len(calls) < 0.4
    contexts = Counter()
    for legs in multi:
        parents = [leg for leg in legs if leg["parent_live_id"] is None]
        assert len(parents) == 1
        root = parents[0]["live_id"]
        assert all(leg["parent_live_id"] == root for leg in legs if leg is not parents[0])
        contexts.update({leg["context"] for leg in legs})
        if any(leg["context"] == "from-internal-fwd" for leg in legs):
            # A forwarded call: the user's inbound leg and their outbound leg to the mobile.
            assert len(legs) == 2 and len({leg["user_id"] for leg in legs}) == 1
            continue
        assert all(leg["src"] == legs[0]["src"] for leg in legs)
        # One leg per agent rung at a time (a queue rings its agents again in later rounds).
        rung_together: dict[str, list[int]] = defaultdict(list)
        for leg in legs:
            rung_together[leg["calldate"]].append(leg["user_id"])
        assert all(len(set(users)) == len(users) for users in rung_together.values())
        if all(leg["context"] == "from-queue" for leg in legs):
            answered = [leg for leg in legs if leg["disposition"] == "CONNECTED"]
            assert len(answered) <= 1
            assert all(leg["type"] == "I" for leg in answered)
            for leg in legs:
                if leg not in answered:
                    assert leg["type"] == "M" and leg["billsec"] == 0
                    assert leg["disposition"] == "NO ANSWER"
    assert contexts["from-queue"] > 0
    assert contexts["from-internal-xfer"] > 0  # transfers
    # Single-leg calls have no parent.
    assert all(legs[0]["parent_live_id"] is None for legs in calls.values() if len(legs) == 1)


def test_ring_all_legs_share_calldate(calls: dict[int, list[dict[str, Any]]]) -> None:
    same = [
        legs
        for legs in calls.values()
        if len(legs) > 1 and len({leg["calldate"] for leg in legs}) == 1
    ]
    assert same


def test_internal_calls(company: Company, calls: dict[int, list[dict[str, Any]]]) -> None:
    by_id = {str(u["id"]): u for u in company.users}
    internal = [legs[0] for legs in calls.values() if legs[0]["src_id"] and legs[0]["dst_id"]]
    share = len(internal) / len(calls)
    assert 0.04 < share < 0.12
    for r in internal:
        assert r["type"] == "O" and r["context"] == "from-internal"
        assert r["src"] == by_id[r["src_id"]]["ext"] and r["dst"] == by_id[r["dst_id"]]["ext"]
        assert r["src_id"] != r["dst_id"]
        assert r["rate"] == 0.0 and r["charge"] == 0.0
        assert r["user_id"] == int(r["src_id"])


def test_user_sides(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["type"] in {"I", "M"}:
            assert r["src_id"] is None and r["dst_id"] == str(r["user_id"])
            assert r["rate"] == 0.0
        else:
            assert r["src_id"] == str(r["user_id"])


def test_external_numbers(rows: list[dict[str, Any]]) -> None:
    external = [r["src"] for r in rows if r["src_id"] is None]
    external += [r["dst"] for r in rows if r["dst_id"] is None]
    plus = [x for x in external if x.startswith("+")]
    bare = [x for x in external if not x.startswith("+")]
    assert len(plus) > 0.6 * len(external)
    assert bare and all(x.isdigit() and len(x) == 9 for x in bare)
    for r in rows:
        if r["src_id"] is None:
            assert r["clid"].endswith(f"<{r['src']}>") and r["clid"].startswith('"')


def test_repeat_callers(rows: list[dict[str, Any]]) -> None:
    callers = Counter(r["src"] for r in rows if r["src_id"] is None and r["parent_live_id"] is None)
    counts = sorted(callers.values(), reverse=True)
    assert counts[0] >= 10
    assert sum(1 for c in counts if c >= 2) >= 50
    assert sum(1 for c in counts if c == 1) >= 100  # and a long tail of one-off callers


def test_outbound_destinations_and_charges(rows: list[dict[str, Any]]) -> None:
    outbound = [r for r in rows if r["type"] == "O" and r["dst_id"] is None]
    assert outbound
    for r in outbound:
        assert 0.005 <= r["rate"] <= 0.4
        assert r["destination"] == r["dst_name"]
    dest = Counter(r["destination"] for r in outbound)
    local = sum(v for k, v in dest.items() if k.endswith("(Local)"))
    assert local > 0.6 * len(outbound)
    assert local < len(outbound)  # some international
    assert any(r["charge"] > 0 for r in outbound)


def test_callbacks_of_missed_calls(calls: dict[int, list[dict[str, Any]]]) -> None:
    outbound_at: dict[str, list[int]] = defaultdict(list)
    for legs in calls.values():
        first = legs[0]
        if first["type"] == "O" and first["dst_id"] is None:
            outbound_at[first["dst"]].append(epoch(first["calldate"]))
    missed = [legs for legs in calls.values() if call_type(legs) == "M"]
    called_back = 0
    for legs in missed:
        end = max(epoch(leg["calldate"]) + leg["duration"] for leg in legs)
        if any(end < t <= end + 8 * 3600 for t in outbound_at.get(legs[0]["src"], [])):
            called_back += 1
    assert called_back / len(missed) > 0.25


def test_same_second_bursts(company: Company, big: Company) -> None:
    assert max(Counter(company.cdrs["calldate"]).values()) >= 8
    per_second = Counter(big.cdrs["calldate"])
    assert sum(1 for v in per_second.values() if v >= 20) >= 2


def test_big_company(big: Company) -> None:
    cols = big.cdrs
    assert all(len(v) == 200_000 for v in cols.values())
    ids = cols["id"]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert len(set(cols["live_id"])) == 200_000
    assert set(cols["user_id"]) <= {u["id"] for u in big.users}


def test_misc_columns(rows: list[dict[str, Any]]) -> None:
    assert sum(1 for r in rows if r["labels"]) < 0.2 * len(rows)
    assert any(r["labels"] for r in rows)
    assert sum(1 for r in rows if r["info"] is None) > 0.9 * len(rows)
    assert sum(1 for r in rows if r["metadata"] is None) > 0.9 * len(rows)
    assert Counter(r["nb_notes"] for r in rows).most_common(1)[0][0] == 0
    assert len({r["server_id"] for r in rows}) <= 6
    assert {r["src_codec"] for r in rows} <= {"PCMA", "PCMU", "G722", "opus"}
    # Rows own their label lists.
    labelled = [r["labels"] for r in rows if not r["labels"]]
    assert labelled[0] is not labelled[1]


# ----------------------------------------------------------------------------------------------
# generate_new_cdrs
# ----------------------------------------------------------------------------------------------


def test_new_cdrs_continue_ids_and_respect_count() -> None:
    c = generate_company(CompanySpec(seed=11, rows=3000))
    before = {k: list(v) for k, v in c.cdrs.items()}
    last_id, last_call = max(c.cdrs["id"]), max(c.cdrs["call_id"])
    live_ids = set(c.cdrs["live_id"])
    now = c.spec.end + timedelta(minutes=2)
    seen: set[int] = set()
    for count in (1, 10, 333, 0, 57):
        batch = generate_new_cdrs(c, count, now=now)
        assert all(len(v) == count for v in batch.values())
        assert_valid_columns(batch, {u["id"] for u in c.users})
        if count:
            assert batch["id"][0] == last_id + 1
            assert batch["id"] == list(range(last_id + 1, last_id + 1 + count))
            assert min(batch["call_id"]) > last_call
            assert not live_ids & set(batch["live_id"])
            last_id = batch["id"][-1]
            last_call = max(batch["call_id"])
            live_ids |= set(batch["live_id"])
        assert not seen & set(batch["id"])
        seen |= set(batch["id"])
        now += timedelta(minutes=1)
    assert c.cdrs == before  # the caller appends, not the generator


def test_new_cdrs_late_and_fresh() -> None:
    c = generate_company(CompanySpec(seed=12, rows=2000))
    now = datetime(2026, 2, 3, 10, 30, tzinfo=UTC)
    now_s = int(now.timestamp())
    batch = generate_new_cdrs(c, 200, now=now, late_fraction=0.2, max_late_seconds=4 * 3600)
    rows = rows_of(batch)
    ends = [epoch(r["calldate"]) + r["duration"] for r in rows]
    assert ends == sorted(ends)  # ids follow end time
    assert all(now_s - 15 * 60 <= e <= now_s for e in ends)  # calls that end around now
    ages = [now_s - epoch(r["calldate"]) for r in rows]
    late = [a for a in ages if a > 15 * 60]
    assert len(late) == 40
    assert all(a <= 4 * 3600 + 60 for a in ages)
    assert max(ages) > 3600
    assert sum(1 for a in ages if a <= 11 * 60) == 160  # the rest started minutes ago
    late_rows = [r for r, a in zip(rows, ages, strict=True) if a > 15 * 60]
    assert all(r["disposition"] == "CONNECTED" for r in late_rows)


def test_new_cdrs_no_late() -> None:
    c = generate_company(CompanySpec(seed=13, rows=1000))
    now = c.spec.end + timedelta(hours=1)
    batch = generate_new_cdrs(c, 120, now=now, late_fraction=0.0)
    assert all(epoch(d) >= now.timestamp() - 15 * 60 for d in batch["calldate"])
    all_late = generate_new_cdrs(c, 30, now=now, late_fraction=1.0, max_late_seconds=7200)
    ages = [now.timestamp() - epoch(d) for d in all_late["calldate"]]
    assert all(1100 <= a <= 7200 for a in ages)


def test_new_cdrs_deterministic() -> None:
    spec = CompanySpec(seed=14, rows=1000)
    now = spec.end + timedelta(minutes=3)
    a, b = generate_company(spec), generate_company(spec)
    assert generate_new_cdrs(a, 80, now=now) == generate_new_cdrs(b, 80, now=now)
    assert generate_new_cdrs(a, 80, now=now) == generate_new_cdrs(b, 80, now=now)


def test_new_cdrs_rejects_bad_arguments() -> None:
    c = generate_company(CompanySpec(seed=15, rows=100))
    with pytest.raises(ValueError):
        generate_new_cdrs(c, -1, now=c.spec.end)
    with pytest.raises(ValueError):
        generate_new_cdrs(c, 5, now=datetime(2026, 2, 1))
    with pytest.raises(ValueError):
        generate_new_cdrs(c, 5, now=c.spec.end, late_fraction=1.5)
    bare = Company(spec=c.spec, users=c.users, queues=c.queues, cdrs=c.cdrs)
    with pytest.raises(ValueError):
        generate_new_cdrs(bare, 5, now=c.spec.end)
