"""Live changes through the admin API: new CDRs (generated, given, or arriving while a client
pages), records served with bad values, fields added at run time, the clock."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, admin_url, all_cdrs, assert_error, configure, filter_param, state

Start = Callable[..., EmulatorServer]
ClientFor = Callable[..., httpx.Client]


@pytest.fixture(scope="module")
def unchanged(make_emulator_config: Callable[..., EmulatorConfig]) -> Iterator[EmulatorServer]:
    """A server for requests that must be rejected: if they are, its state never changes."""
    with EmulatorServer(make_emulator_config(rows=2000)) as server:
        yield server


def parse(calldate: str) -> datetime:
    return datetime.strptime(calldate, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def add_cdrs(server: EmulatorServer, payload: dict[str, Any]) -> httpx.Response:
    return HTTP.post(admin_url(server, "/cdrs"), json=payload, timeout=30)


def test_generated_cdrs_arrive_with_new_ids_some_late(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    before = state(server)
    old_max = before["max_cdr_id"]

    response = add_cdrs(server, {"generate": {"count": 40, "late_fraction": 0.5}})
    assert response.status_code == 200, response.text
    added = response.json()
    assert added["added"] == 40 and len(added["ids"]) == 40
    assert min(added["ids"]) > old_max
    assert len(set(added["ids"])) == 40

    after = state(server)
    assert after["counts"]["cdrs"] == before["counts"]["cdrs"] + 40
    assert after["max_cdr_id"] == max(added["ids"])

    now = parse(after["now"])
    body = client.get(
        "/cdrs", params={"filter": filter_param(("id", "gt", old_max)), "limit": 100}
    ).json()
    assert body["total"] == 40
    assert sorted(r["id"] for r in body["data"]) == sorted(added["ids"])
    calldates = [parse(r["calldate"]) for r in body["data"]]
    # Every call has ended by now; about half started long before (rows arrive late).
    assert all(c <= now for c in calldates)
    assert any(c <= now - timedelta(hours=1) for c in calldates)
    assert all(c >= now - timedelta(hours=4, minutes=5) for c in calldates)
    assert any(c >= now - timedelta(minutes=30) for c in calldates)


def test_generated_cdrs_at_a_given_now(emulator_factory: Start) -> None:
    server = emulator_factory(rows=2000)
    response = add_cdrs(
        server, {"generate": {"count": 10, "late_fraction": 0.0, "now": "2026-03-01 12:00:00"}}
    )
    ids = set(response.json()["ids"])
    records = [r for r in all_cdrs(server) if r["id"] in ids]
    assert len(records) == 10
    moment = parse("2026-03-01 12:00:00")
    assert all(moment - timedelta(hours=1) <= parse(r["calldate"]) <= moment for r in records)


def test_given_records_are_added_as_sent(emulator_factory: Start, client_for: ClientFor) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    old_max = state(server)["max_cdr_id"]
    record = {
        "id": old_max + 10,
        "calldate": "2026-01-14 23:59:59",
        "type": "O",
        "src": 4321,  # the live API may send odd types; the emulator serves what it is given
        "duration": 61,
        "recording_url": "https://example.com/r.mp3",
        # Text and nested values that look like the boundary between two encoded records.
        "info": '"},{"id":5,',
        "legs": [{"id": 1}, {"id": 2}],
    }
    response = add_cdrs(server, {"records": [record, {"id": old_max + 11}]})
    assert response.json() == {"added": 2, "ids": [old_max + 10, old_max + 11]}
    assert client.get(f"/cdrs/{old_max + 11}").json()["data"]["info"] is None

    served = client.get(f"/cdrs/{old_max + 10}").json()["data"]
    assert {k: served[k] for k in record} == record
    assert served["billsec"] is None  # fields not given are null

    def found(*conditions: tuple[str, str, Any]) -> bool:
        body = client.get("/cdrs", params={"filter": filter_param(*conditions)}).json()
        return old_max + 10 in {r["id"] for r in body["data"]}

    # Indexed as the field's type: a number in a text field compares as its text.
    assert found(("src", "eq", "4321"))
    assert found(("src", "eq", 4321))
    assert found(("src", "lt", "5"))
    assert found(("calldate", "gte", "2026-01-14 23:59:59"), ("duration", "eq", 61))

    # Generated CDRs still get new, larger ids after records with ids the generator would use.
    generated = add_cdrs(server, {"generate": {"count": 5}}).json()["ids"]
    assert min(generated) > old_max + 10


def test_records_with_a_lower_id_are_served_in_order(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    first = all_cdrs(server)[0]["id"]
    assert add_cdrs(server, {"records": [{"id": first - 1, "type": "I"}]}).status_code == 200
    asc = client.get("/cdrs", params={"sort": "id", "dir": "ASC", "limit": 2}).json()["data"]
    assert [r["id"] for r in asc] == [first - 1, first]


@pytest.mark.parametrize(
    "payload",
    [
        {"records": [{"id": "existing"}]},
        {"records": [{"type": "I"}]},
        {"records": [{"id": 1.5}]},
        {"records": [{"id": 5}, {"id": 5}]},
        {"records": [7]},
        {"records": {"id": 5}},
        {"generate": {"count": -1}},
        {"generate": {"count": 1, "late_fraction": 2}},
        {"generate": {"count": 1, "now": "soon"}},
        {"generate": [1]},
    ],
)
def test_bad_additions_are_400_and_add_nothing(unchanged: EmulatorServer, payload: Any) -> None:
    server = unchanged
    count = state(server)["counts"]["cdrs"]
    assert_error(add_cdrs(server, payload), 400)
    assert state(server)["counts"]["cdrs"] == count


def test_duplicate_id_is_rejected(unchanged: EmulatorServer) -> None:
    existing = all_cdrs(unchanged)[5]["id"]
    assert_error(add_cdrs(unchanged, {"records": [{"id": existing}]}), 400)
    assert state(unchanged)["counts"]["cdrs"] == 2000


def test_arrivals_while_paging(emulator_factory: Start, client_for: ClientFor) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    configure(server, arrivals={"every": 2, "count": 5})
    totals = [client.get("/cdrs", params={"limit": 1}).json()["total"] for _ in range(5)]
    # Every 2nd list request, 5 CDRs arrive before it is answered.
    assert totals == [2000, 2005, 2005, 2010, 2010]
    # Single-record requests do not count.
    record_id = client.get("/cdrs", params={"limit": 1}).json()["data"][0]["id"]
    for _ in range(3):
        client.get(f"/cdrs/{record_id}")
    assert client.get("/cdrs", params={"limit": 1}).json()["total"] == 2015

    configure(server, arrivals={"every": 0, "count": 0})
    assert {client.get("/cdrs").json()["total"] for _ in range(3)} == {2015}


def test_arrivals_shift_offset_pages(emulator_factory: Start, client_for: ClientFor) -> None:
    # Offset paging over a table that grows at the top (id DESC) sees rows again: the reason
    # clients must not trust plain offset paging.
    server = emulator_factory(rows=2000)
    client = client_for(server)
    configure(server, arrivals={"every": 1, "count": 3, "late_fraction": 0.0})
    first = client.get("/cdrs", params={"page": 1, "limit": 10}).json()["data"]
    second = client.get("/cdrs", params={"page": 2, "limit": 10}).json()["data"]
    assert {r["id"] for r in first} & {r["id"] for r in second}


@pytest.mark.parametrize(
    "arrivals",
    [{"every": "often"}, {"every": -1}, {"count": 1.5}, {"late_fraction": 3}, {"rate": 1}],
)
def test_bad_arrivals_are_rejected(unchanged: EmulatorServer, arrivals: dict[str, Any]) -> None:
    server = unchanged
    response = HTTP.patch(admin_url(server, "/config"), json={"arrivals": arrivals})
    assert_error(response, 400)
    assert state(server)["arrivals"]["every"] == 0


def test_patched_record_serves_the_bad_value_but_is_indexed_by_the_old_one(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    target = all_cdrs(server)[100]
    response = HTTP.post(
        admin_url(server, "/cdrs/patch"),
        json={
            "updates": [
                {"id": target["id"], "set": {"calldate": "not a date"}},
                {"id": 1, "set": {}},
            ]
        },
    )
    assert response.json() == {"patched": 1, "missing": [1]}

    assert client.get(f"/cdrs/{target['id']}").json()["data"]["calldate"] == "not a date"
    body = client.get(
        "/cdrs", params={"filter": filter_param(("calldate", "eq", target["calldate"]))}
    ).json()
    found = [r for r in body["data"] if r["id"] == target["id"]]
    assert found and found[0]["calldate"] == "not a date"
    # Everything else about the record is unchanged.
    assert {k: v for k, v in found[0].items() if k != "calldate"} == {
        k: v for k, v in target.items() if k != "calldate"
    }


@pytest.mark.parametrize(
    "payload",
    [{"updates": "x"}, {"updates": [{"id": 1}]}, {"updates": [{"set": {}}]}, {"updates": [5]}],
)
def test_bad_patches_are_400(unchanged: EmulatorServer, payload: dict[str, Any]) -> None:
    server = unchanged
    assert_error(HTTP.post(admin_url(server, "/cdrs/patch"), json=payload), 400)


def test_extra_fields_appear_in_every_served_record(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    configure(server, extra_fields={"queue_id": 7001, "tags": ["a", "b"]})
    add_cdrs(server, {"generate": {"count": 3}})
    pages = [
        client.get("/cdrs", params={"limit": 5000}).json()["data"],
        client.get("/cdrs", params={"limit": 50, "sort": "calldate", "page": 3}).json()["data"],
        all_cdrs(server),
    ]
    single = client.get(f"/cdrs/{pages[0][0]['id']}").json()["data"]
    for record in [single, *(r for page in pages for r in page)]:
        assert record["queue_id"] == 7001 and record["tags"] == ["a", "b"]
    assert len(pages[0]) == 2003
    # Extra fields are served, not filterable (they are unknown to the index).
    response = client.get("/cdrs", params={"filter": filter_param(("queue_id", "eq", 7001))})
    assert_error(response, 400)

    configure(server, extra_fields={})
    assert "queue_id" not in client.get("/cdrs", params={"limit": 1}).json()["data"][0]


def test_users_and_queues_carry_no_cdr_extra_fields(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=2000)
    configure(server, extra_fields={"queue_id": 1})
    users = client_for(server).get("/users").json()["data"]
    assert users and all("queue_id" not in user for user in users)


def test_the_clock_can_be_set(emulator_factory: Start) -> None:
    server = emulator_factory(rows=2000)
    assert state(server)["now"].startswith("2026-01-15 00:00")
    assert configure(server, now="2027-06-01 08:00:00")["now"].startswith("2027-06-01 08:00")
    assert_error(HTTP.patch(admin_url(server, "/config"), json={"now": 5}), 400)
    assert_error(HTTP.patch(admin_url(server, "/config"), json={"now": "tomorrow"}), 400)
    assert state(server)["now"].startswith("2027-06-01 08:00")


def test_unknown_admin_requests(unchanged: EmulatorServer) -> None:
    server = unchanged
    assert_error(HTTP.get(admin_url(server, "/nothing")), 404)
    assert_error(HTTP.delete(admin_url(server, "/cdrs")), 404)
    assert_error(HTTP.patch(admin_url(server, "/config"), json={"colour": "red"}), 400)
    assert_error(HTTP.patch(admin_url(server, "/config"), content=b"{not json"), 400)


def test_admin_api_can_be_switched_off(emulator_factory: Start) -> None:
    server = emulator_factory(rows=2000, admin=False)
    assert_error(HTTP.get(admin_url(server, "/state")), 404)


def no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)


def test_extra_fields_never_repeat_a_key_of_a_record(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    top = state(server)["max_cdr_id"]
    add_cdrs(server, {"records": [{"id": top + 1, "recording_url": "r.mp3"}]})
    rejected = HTTP.patch(admin_url(server, "/config"), json={"extra_fields": {"recording_url": 1}})
    assert_error(rejected, 400)

    configure(server, extra_fields={"queue_id": 7})
    assert_error(add_cdrs(server, {"records": [{"id": top + 2, "queue_id": 8}]}), 400)
    patch = {"updates": [{"id": top + 1, "set": {"queue_id": 8}}]}
    assert_error(HTTP.post(admin_url(server, "/cdrs/patch"), json=patch), 400)

    raw = client.get("/cdrs", params={"limit": 10}).content
    records = json.loads(raw, object_pairs_hook=no_repeated_keys)["data"]
    newest = records[0]
    assert (newest["id"], newest["recording_url"], newest["queue_id"]) == (top + 1, "r.mp3", 7)
