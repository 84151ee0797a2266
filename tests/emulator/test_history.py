"""The rest of the call history over real HTTP: /sms, /chats, /voicemessages, /monitors,
/faxes, /transactions, /conversations, /contacts and /queuegroups.

Each collection's records against a JSON schema written by hand from the table "Other
collections worth syncing" of shared/voipstudio-api.md (types the doc does not give are the
emulator's [guess], docs/emulator.md); the records consistent with the CDRs they come from;
who sees what with a plain user's key; the "cannot be filtered" fields of /faxes; date ranges
on each cursor field; and a date field declared as epoch seconds (the live /calls resource's
form), served and filtered like any other.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jsonschema
import pytest

from pipelines.emulator.config import DEFAULT_USER_API_KEY
from pipelines.emulator.fields import COLLECTIONS, CollectionSpec
from pipelines.emulator.generator import CompanySpec, generate_company
from pipelines.emulator.history import History
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, admin_url, all_cdrs, assert_error, error_texts, filter_param

Record = dict[str, Any]
DATE = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
HISTORY = (
    "sms",
    "chats",
    "voicemessages",
    "monitors",
    "faxes",
    "transactions",
    "conversations",
    "contacts",
    "queuegroups",
)


def nullable(json_type: str, **extra: Any) -> dict[str, Any]:
    return {"type": [json_type, "null"], **extra}


INT, STR, NUMBER, BOOL = (
    nullable("integer"),
    nullable("string"),
    nullable("number"),
    nullable("boolean"),
)
TEXT_DATE = nullable("string", pattern=DATE)
DIGITS = nullable("string", pattern=r"^\d+$")  # "digits, no '+'" [doc] (SMS; faxes [guess])
# The doc's table, row by row.
PROPERTIES: dict[str, dict[str, dict[str, Any]]] = {
    "sms": {
        "id": INT, "created_at": TEXT_DATE, "from": DIGITS, "to": DIGITS, "message": STR,
        "result": STR, "type": STR, "user_id": INT,
    },
    "chats": {
        "id": INT, "created_at": TEXT_DATE, "customer_id": INT, "duration": INT,
        "operator_id": INT, "operator_ua": STR,
        "state": nullable("integer", minimum=0, maximum=4), "visitor_city": STR,
        "visitor_country": STR, "visitor_email": STR, "visitor_geo": STR, "visitor_id": STR,
        "visitor_ip": STR, "visitor_name": STR, "visitor_referer": STR, "visitor_ua": STR,
        "website_id": INT,
    },
    "contacts": {
        "id": INT, "created_at": TEXT_DATE, "first_name": STR, "last_name": STR, "global": BOOL,
        "group_name": STR, "internal": BOOL, "rel_user_id": INT, "user_id": INT,
    },
    "queuegroups": {"id": INT, "name": STR},
    "monitors": {
        "id": INT, "timestamp": TEXT_DATE, "caller": STR, "called": STR, "duration": INT,
        "type": STR, "size": INT,
    },
    "voicemessages": {
        "id": INT, "origtime": TEXT_DATE, "caller": STR, "dialled": STR, "duration": INT,
        "folder": STR, "is_new": BOOL,
    },
    "faxes": {
        "id": INT, "created_at": TEXT_DATE, "from": DIGITS, "to": DIGITS, "pages": INT,
        "status": STR, "type": STR, "filename": STR,
    },
    "transactions": {
        "id": INT, "created_at": TEXT_DATE, "amount": NUMBER,
        "currency_iso": nullable("string", pattern=r"^[A-Z]{3}$"), "type": STR, "result": STR,
    },
    "conversations": {
        "id": INT, "created_at": TEXT_DATE, "channel": STR, "src": STR, "dst": STR,
        "duration": INT, "type": STR,
    },
}  # fmt: skip
CURSORS = {
    "sms": "created_at",
    "chats": "created_at",
    "voicemessages": "origtime",
    "monitors": "timestamp",
    "faxes": "created_at",
    "transactions": "created_at",
    "conversations": "created_at",
    "contacts": "created_at",
}


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = {
        "type": "object",
        "properties": PROPERTIES[name],
        "required": sorted(PROPERTIES[name]),
        "additionalProperties": False,
    }
    return jsonschema.Draft202012Validator(schema)


def dump(server: EmulatorServer, name: str) -> list[Record]:
    """Every record of a collection as served, from the admin dump (in id order)."""
    response = HTTP.get(admin_url(server, f"/collections/{name}"), timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["data"])
    return body["data"]  # type: ignore[no-any-return]


def epoch(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def history(emulator: EmulatorServer) -> dict[str, list[Record]]:
    return {name: dump(emulator, name) for name in HISTORY}


@pytest.fixture(scope="module")
def cdrs(emulator: EmulatorServer) -> list[Record]:
    return all_cdrs(emulator)


@pytest.fixture
def user_api(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """The shared emulator with a plain user's key."""
    with httpx.Client(
        base_url=emulator.base_url, headers={"X-Auth-Token": DEFAULT_USER_API_KEY}, timeout=30
    ) as client:
        yield client


# -- declarations and schemas ---------------------------------------------------------------------


def test_every_collection_is_declared_with_the_docs_fields_and_cursor() -> None:
    for name in HISTORY:
        spec = COLLECTIONS[name]
        assert list(spec.fields) == list(PROPERTIES[name])
        assert spec.cursor == CURSORS.get(name)
        jsonschema.Draft202012Validator.check_schema(validator(name).schema)


@pytest.mark.parametrize("name", HISTORY)
def test_records_match_the_schema_stored_listed_and_single(
    api: httpx.Client, history: dict[str, list[Record]], name: str
) -> None:
    check = validator(name)
    records = history[name]
    assert records, name
    assert {r["id"]: list(check.iter_errors(r)) for r in records if not check.is_valid(r)} == {}
    page = api.get(f"/{name}", params={"limit": 50, "sort": "id", "dir": "ASC"}).json()
    assert page["data"] == records[:50] and page["total"] == len(records)
    for record in records[:5]:
        single = api.get(f"/{name}/{record['id']}").json()
        assert single == {"data": record, "links": {}}


def test_the_schemas_reject_what_the_doc_forbids() -> None:
    sms = validator("sms")
    good = {key: None for key in PROPERTIES["sms"]} | {"id": 1, "to": "34600000000"}
    assert sms.is_valid(good)
    assert not sms.is_valid(good | {"to": "+34600000000"})  # digits, no "+"
    assert not sms.is_valid(good | {"created_at": "2026-01-05T10:00:00Z"})
    assert not sms.is_valid(good | {"call_id": 5})  # no invented fields
    assert not validator("monitors").is_valid(
        {key: None for key in PROPERTIES["monitors"]} | {"size": "12"}
    )


# -- consistent with the calls --------------------------------------------------------------------


def test_a_recording_per_recorded_leg_joinable_on_caller_called_timestamp(
    history: dict[str, list[Record]], cdrs: list[Record]
) -> None:
    legs = defaultdict(list)
    for cdr in cdrs:
        legs[(cdr["calldate"], cdr["src"], cdr["dst"])].append(cdr)
    for monitor in history["monitors"]:
        matches = legs[(monitor["timestamp"], monitor["caller"], monitor["called"])]
        assert len(matches) == 1, monitor
        leg = matches[0]
        assert leg["billsec"] == monitor["duration"] > 0 and leg["type"] == monitor["type"]
        assert not (leg["src_id"] and leg["dst_id"])  # an outside party
    outside = [c for c in cdrs if c["billsec"] > 0 and not (c["src_id"] and c["dst_id"])]
    assert 0.2 <= len(history["monitors"]) / len(outside) <= 0.7  # [guess] a share is recorded


def test_voicemail_follows_a_missed_call(
    emulator: EmulatorServer, history: dict[str, list[Record]], cdrs: list[Record]
) -> None:
    calls: dict[int, list[Record]] = defaultdict(list)
    for cdr in cdrs:
        calls[cdr["call_id"]].append(cdr)
    missed: dict[tuple[str, int], list[Record]] = {}
    for legs in calls.values():
        if all(leg["billsec"] == 0 for leg in legs) and legs[0]["type"] == "M":
            end = max(epoch(leg["calldate"]) + leg["duration"] for leg in legs)
            missed[(legs[0]["src"], end)] = legs
    exts = {u["ext"] for u in emulator.emulator.company.users}
    queues = {q["number"]: q["name"] for q in emulator.emulator.company.queues}
    to_queue = 0
    for message in history["voicemessages"]:
        legs = missed.get((message["caller"], epoch(message["origtime"])))
        assert legs is not None, message
        if message["dialled"] in queues:
            to_queue += 1
            assert legs[0]["destination"] == queues[message["dialled"]]
        else:
            assert message["dialled"] in exts and legs[0]["dst"] == message["dialled"]
        assert message["folder"] == ("INBOX" if message["is_new"] else "Old")
    assert to_queue > 0
    assert 0.1 <= len(history["voicemessages"]) / len(missed) <= 0.5


def test_sms_between_users_and_customers(
    emulator: EmulatorServer, history: dict[str, list[Record]], cdrs: list[Record]
) -> None:
    company = emulator.emulator.company
    did_of = {
        u["id"]: did.lstrip("+") for u, did in zip(company.users, company.user_dids, strict=True)
    }
    for sms in history["sms"]:
        own, other = (sms["from"], sms["to"]) if sms["type"] == "O" else (sms["to"], sms["from"])
        assert own == did_of[sms["user_id"]] and other not in did_of.values()
        assert sms["result"] in (("DELIVERED", "SENT", "FAILED") if sms["type"] == "O"
                                 else ("RECEIVED",))  # fmt: skip
    # Some follow a missed call: the user texts the caller within half an hour.
    missed_at = defaultdict(list)
    for cdr in cdrs:
        if cdr["type"] == "M" and cdr["src"].startswith("+"):
            missed_at[cdr["src"][1:]].append(epoch(cdr["calldate"]) + cdr["duration"])
    after_missed = [
        sms
        for sms in history["sms"]
        if sms["type"] == "O"
        and any(0 < epoch(sms["created_at"]) - t <= 1800 for t in missed_at.get(sms["to"], []))
    ]
    assert after_missed
    assert {sms["type"] for sms in history["sms"]} == {"O", "I"}


def test_conversations_are_sms_threads_and_chats(history: dict[str, list[Record]]) -> None:
    conversations = history["conversations"]
    channels = defaultdict(list)
    for conversation in conversations:
        channels[conversation["channel"]].append(conversation)
    assert set(channels) == {"sms", "chat"}
    assert len(channels["chat"]) == len(history["chats"])
    assert len(channels["sms"]) <= len(history["sms"])
    sms_times = {(s["from"], s["to"], s["created_at"]) for s in history["sms"]}
    assert all((c["src"], c["dst"], c["created_at"]) in sms_times for c in channels["sms"])
    created = [c["created_at"] for c in conversations]
    assert created == sorted(created)  # ids in order of creation


def test_chats_states_and_operators(history: dict[str, list[Record]]) -> None:
    chats = history["chats"]
    assert {c["state"] for c in chats} <= {0, 1, 2, 3, 4}
    for chat in chats:
        assert (chat["operator_id"] is not None) == (chat["state"] == 2)
        assert chat["duration"] >= 0 and chat["website_id"] is not None


def test_monthly_transactions_match_the_calls_charges(
    history: dict[str, list[Record]], cdrs: list[Record]
) -> None:
    charges: dict[str, float] = defaultdict(float)
    for cdr in cdrs:
        charges[cdr["calldate"][:7]] += cdr["charge"]
    calls = [t for t in history["transactions"] if t["type"] == "calls"]
    assert calls and {t["currency_iso"] for t in history["transactions"]} == {"EUR"}
    for transaction in calls:
        month = transaction["created_at"][:7]
        if transaction["result"] == "completed":  # issued early the next month
            year, number = int(month[:4]), int(month[5:])
            month = f"{year - (number == 1)}-{(number - 2) % 12 + 1:02d}"
        assert transaction["amount"] == round(charges[month], 2)
    # The open month's invoice is not finished yet.
    assert calls[-1]["result"] == "pending"
    assert {t["type"] for t in history["transactions"]} >= {"subscription", "calls", "payment"}


def test_contacts_and_queue_groups(
    emulator: EmulatorServer, history: dict[str, list[Record]]
) -> None:
    users = emulator.emulator.company.users
    internal = [c for c in history["contacts"] if c["internal"]]
    assert sorted(c["rel_user_id"] for c in internal) == [u["id"] for u in users]
    assert all(c["global"] for c in internal)
    personal = [c for c in history["contacts"] if not c["global"]]
    assert personal and all(c["user_id"] in {u["id"] for u in users} for c in personal)
    assert [g["name"] for g in history["queuegroups"]] == ["Front office", "Back office"]


def test_the_same_seed_gives_the_same_history() -> None:
    spec = CompanySpec(seed=3, rows=3000)
    first, second = History(generate_company(spec)), History(generate_company(spec))
    assert first.records == second.records
    other = History(generate_company(CompanySpec(seed=4, rows=3000)))
    assert other.records["sms"] != first.records["sms"]
    # ... and the CDRs are the ones the generator makes without a history.
    company = generate_company(spec)
    cdrs = {name: list(values) for name, values in company.cdrs.items()}
    History(company)
    assert company.cdrs == cdrs


# -- the shared path: dates, cannot-be-filtered, scope --------------------------------------------


@pytest.mark.parametrize("name", sorted(CURSORS))
def test_a_date_range_on_the_cursor_with_both_bounds(
    api: httpx.Client, history: dict[str, list[Record]], name: str
) -> None:
    cursor = CURSORS[name]
    dates = sorted(r[cursor] for r in history[name])
    low, high = dates[len(dates) // 4], dates[3 * len(dates) // 4]
    expected = sorted(
        (r for r in history[name] if low < r[cursor] <= high), key=lambda r: (r[cursor], r["id"])
    )
    params = {
        "filter": filter_param((cursor, "gt", low), (cursor, "lte", high)),
        "sort": cursor,
        "dir": "ASC",
        "limit": 5000,
    }
    body = api.get(f"/{name}", params=params).json()
    assert body["data"] == expected and body["total"] == len(expected)


@pytest.mark.parametrize("operator", ["eq", "like", "gt", "in"])
@pytest.mark.parametrize("field", ["from", "to"])
def test_fax_numbers_cannot_be_filtered(
    api: httpx.Client, history: dict[str, list[Record]], field: str, operator: str
) -> None:
    value: Any = history["faxes"][0][field]
    value = [value] if operator == "in" else value
    response = api.get("/faxes", params={"filter": filter_param((field, operator, value))})
    body = assert_error(response, 400)
    assert body["message"] == "Filtration error"
    assert any(field in text for text in error_texts(body))
    # Other fields of /faxes filter as usual, and the numbers can still be sorted on.
    assert api.get("/faxes", params={"filter": filter_param(("type", "eq", "I"))}).is_success
    assert api.get("/faxes", params={"sort": field}).is_success


def test_a_plain_users_key_sees_its_own_records(
    emulator: EmulatorServer, user_api: httpx.Client, history: dict[str, list[Record]]
) -> None:
    company = emulator.emulator.company
    index = next(i for i, u in enumerate(company.users) if u["id"] == 100003)
    user = company.users[index]
    numbers = {user["ext"], company.user_dids[index], company.user_dids[index].lstrip("+")}
    sees: dict[str, Callable[[Record], bool]] = {
        "sms": lambda r: r["user_id"] == user["id"],
        "chats": lambda r: r["operator_id"] == user["id"],
        "monitors": lambda r: r["caller"] in numbers or r["called"] in numbers,
        "voicemessages": lambda r: r["dialled"] in numbers,
        "conversations": lambda r: r["src"] in numbers or r["dst"] in numbers,
        "contacts": lambda r: r["user_id"] == user["id"] or r["global"],
        "queuegroups": lambda r: True,
        "faxes": lambda r: False,
        "transactions": lambda r: False,
    }
    for name, visible in sees.items():
        expected = [r for r in history[name] if visible(r)]
        body = user_api.get(f"/{name}", params={"limit": 5000, "sort": "id", "dir": "ASC"}).json()
        assert body["data"] == expected and body["total"] == len(expected), name
        hidden = next((r for r in history[name] if not visible(r)), None)
        if hidden is not None:
            assert_error(user_api.get(f"/{name}/{hidden['id']}"), 403)
        if name in ("sms", "monitors", "conversations", "contacts"):
            assert 0 < len(expected) < len(history[name]), name


def test_an_epoch_date_field_is_served_filtered_and_sorted_as_numbers(
    monkeypatch: pytest.MonkeyPatch,
    emulator_factory: Callable[..., EmulatorServer],
    client_for: Callable[..., httpx.Client],
) -> None:
    # The live /calls resource sends Unix epoch integers (start_time) [doc]: one declaration.
    spec = CollectionSpec(
        {"id": "int", "start_time": "epoch", "duration": "int"}, cursor="start_time"
    )
    monkeypatch.setitem(COLLECTIONS, "calls", spec)
    server = emulator_factory(rows=200)
    client = client_for(server)
    base = epoch("2026-01-05 10:00:00")
    records = [{"id": i, "start_time": base + 3600 * i, "duration": 60} for i in range(1, 11)]
    added = HTTP.post(admin_url(server, "/collections/calls"), json={"records": records})
    assert added.status_code == 200, added.text
    body = client.get("/calls", params={"limit": 100, "sort": "start_time", "dir": "ASC"}).json()
    assert body["data"] == records
    check = jsonschema.Draft202012Validator(
        {"type": "object", "properties": {"start_time": {"type": "integer"}}}
    )
    assert all(check.is_valid(r) for r in body["data"])
    by_number = client.get(
        "/calls", params={"filter": filter_param(("start_time", "gt", base + 3600 * 7))}
    ).json()
    assert sorted(r["id"] for r in by_number["data"]) == [8, 9, 10]
    # A date in the API's text form is read as its instant (as a bare date is elsewhere).
    by_text = client.get(
        "/calls", params={"filter": filter_param(("start_time", "lte", "2026-01-05 12:00:00"))}
    ).json()
    assert sorted(r["id"] for r in by_text["data"]) == [1, 2]
    assert_error(
        client.get("/calls", params={"filter": filter_param(("start_time", "gt", "soon"))}), 400
    )
    assert re.fullmatch(r"\d+", str(body["data"][0]["start_time"]))


def test_each_finished_month_has_its_call_charges_issued_the_next_month() -> None:
    spec = CompanySpec(
        seed=5,
        rows=4000,
        start=datetime(2026, 1, 10, tzinfo=UTC),
        end=datetime(2026, 3, 5, 12, tzinfo=UTC),
    )
    company = generate_company(spec)
    charges: dict[str, float] = defaultdict(float)
    for calldate, charge in zip(company.cdrs["calldate"], company.cdrs["charge"], strict=True):
        charges[calldate[:7]] += charge
    records = History(company).records["transactions"]
    rows = [
        dict(zip(records, values, strict=True)) for values in zip(*records.values(), strict=True)
    ]
    calls = [(r["created_at"], r["amount"], r["result"]) for r in rows if r["type"] == "calls"]
    assert calls == [
        ("2026-02-01 02:00:00", round(charges["2026-01"], 2), "completed"),
        # the open month's invoice: pending, as of the data's end
        ("2026-03-01 01:00:01", round(charges["2026-03"], 2), "pending"),
        ("2026-03-01 02:00:00", round(charges["2026-02"], 2), "completed"),
    ]
    fees = [r for r in rows if r["type"] == "subscription"]
    assert [r["created_at"] for r in fees] == [
        "2026-01-01 01:00:00",
        "2026-02-01 01:00:00",
        "2026-03-01 01:00:00",
    ]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)


def test_an_api_answering_in_local_time_dates_the_history_like_the_calls(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(rows=1500, calldate_timezone="Europe/Madrid")
    legs = {(c["calldate"], c["src"], c["dst"]) for c in all_cdrs(server)}
    monitors = dump(server, "monitors")
    assert monitors
    assert all((m["timestamp"], m["caller"], m["called"]) in legs for m in monitors)
    utc = emulator_factory(rows=1500)
    assert [m["timestamp"] for m in dump(utc, "monitors")] != [m["timestamp"] for m in monitors]
