"""Live changes of the history collections: records arriving while a client pages (per
collection, some late), records generated or given through the admin API, and DELETE where the
API documents it (``DELETE /sms``, ``DELETE /chatmsgs/{ids}`` [doc])."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipelines.emulator.config import DEFAULT_USER_API_KEY
from pipelines.emulator.fields import COLLECTIONS
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, admin_url, assert_error, configure, filter_param, state

Start = Callable[..., EmulatorServer]
ClientFor = Callable[..., httpx.Client]
INDEPENDENT = ("sms", "chats", "faxes", "transactions", "conversations", "contacts")


def parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def generate(server: EmulatorServer, name: str, **spec: Any) -> dict[str, Any]:
    response = HTTP.post(admin_url(server, f"/collections/{name}"), json={"generate": spec})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def ids_of(client: httpx.Client, name: str) -> list[int]:
    body = client.get(f"/{name}", params={"limit": 5000, "sort": "id", "dir": "ASC"}).json()
    assert body["total"] == len(body["data"])
    return [r["id"] for r in body["data"]]


@pytest.mark.parametrize("name", INDEPENDENT)
def test_generated_records_arrive_with_new_ids_some_late(
    emulator_factory: Start, client_for: ClientFor, name: str
) -> None:
    server = emulator_factory(rows=1000)
    client = client_for(server)
    before = ids_of(client, name)
    added = generate(server, name, count=20, late_fraction=0.5, max_late_seconds=3 * 3600)
    assert added["added"] == 20 and added["collections"] == {name: added["ids"]}
    assert min(added["ids"]) > max(before)
    assert ids_of(client, name) == before + added["ids"]
    cursor = COLLECTIONS[name].cursor
    assert cursor is not None
    now = parse(state(server)["now"])
    new = client.get(
        f"/{name}", params={"filter": filter_param(("id", "gt", max(before))), "limit": 100}
    ).json()["data"]
    dates = [parse(r[cursor]) for r in new]
    assert all(now - timedelta(hours=3, minutes=1) <= d <= now for d in dates)
    assert sum(d < now - timedelta(minutes=15) for d in dates) == 10  # late: written after
    assert state(server)["max_ids"][name] == max(added["ids"])


@pytest.mark.parametrize("name", ["monitors", "voicemessages"])
def test_recordings_and_voicemail_arrive_with_their_calls(
    emulator_factory: Start, client_for: ClientFor, name: str
) -> None:
    server = emulator_factory(rows=1000)
    client = client_for(server)
    cdrs_before = state(server)["counts"]["cdrs"]
    added = generate(server, name, count=3, late_fraction=0.0)
    assert added["added"] >= 3
    # Their calls' CDRs arrived too, and each recording matches one of them.
    new_cdrs = added["collections"]["cdrs"]
    assert state(server)["counts"]["cdrs"] == cdrs_before + len(new_cdrs) > 0
    cdrs = client.get(
        "/cdrs", params={"filter": filter_param(("id", "in", new_cdrs)), "limit": 5000}
    ).json()["data"]
    records = client.get(
        f"/{name}", params={"filter": filter_param(("id", "in", added["ids"])), "limit": 5000}
    ).json()["data"]
    if name == "monitors":
        legs = {(c["calldate"], c["src"], c["dst"]) for c in cdrs if c["billsec"] > 0}
        assert all((r["timestamp"], r["caller"], r["called"]) in legs for r in records)
    else:
        callers = {c["src"] for c in cdrs if c["billsec"] == 0}
        assert all(r["caller"] in callers and r["is_new"] for r in records)


def test_new_cdrs_bring_their_recordings(emulator_factory: Start) -> None:
    server = emulator_factory(rows=1000)
    before = state(server)["counts"]["monitors"]
    response = HTTP.post(admin_url(server, "/cdrs"), json={"generate": {"count": 200}})
    added = response.json()
    assert added["added"] == 200 and len(added["collections"]["cdrs"]) == 200
    assert state(server)["counts"]["monitors"] == before + len(added["collections"]["monitors"])
    assert added["collections"]["monitors"]


@pytest.mark.parametrize("name", ["sms", "monitors"])
def test_arrivals_while_paging_a_collection(
    emulator_factory: Start, client_for: ClientFor, name: str
) -> None:
    server = emulator_factory(rows=1000)
    client = client_for(server)
    configure(server, arrivals=[{"collection": name, "every": 2, "count": 3}])
    assert state(server)["collection_arrivals"][name]["every"] == 2
    assert state(server)["arrivals"]["every"] == 0  # the CDRs' own rule is unchanged
    totals = [client.get(f"/{name}", params={"limit": 1}).json()["total"] for _ in range(6)]
    assert totals == sorted(totals) and totals[-1] >= totals[0] + 6
    configure(server, arrivals=None)
    assert state(server)["collection_arrivals"] == {}
    steady = client.get(f"/{name}", params={"limit": 1}).json()["total"]
    assert client.get(f"/{name}", params={"limit": 1}).json()["total"] == steady


@pytest.mark.parametrize(
    "arrivals",
    [
        {"collection": "users", "every": 1, "count": 1},
        {"collection": "nope", "every": 1, "count": 1},
        [{"collection": "sms", "every": 1}, {"collection": "sms", "every": 2}],
    ],
)
def test_bad_arrivals_are_rejected(emulator_factory: Start, arrivals: Any) -> None:
    server = emulator_factory(rows=500)
    response = HTTP.patch(admin_url(server, "/config"), json={"arrivals": arrivals})
    assert response.status_code == 400, response.text
    assert state(server)["collection_arrivals"] == {}


def test_records_given_by_hand_and_the_dump(emulator_factory: Start, client_for: ClientFor) -> None:
    server = emulator_factory(rows=500)
    client = client_for(server)
    record = {
        "id": 1, "created_at": "2026-01-10 10:00:00", "from": "34600000001",
        "to": "34910555001", "message": 42, "result": None, "type": "I", "user_id": 100001,
        "note": "a field the API added",
    }  # fmt: skip
    response = HTTP.post(admin_url(server, "/collections/sms"), json={"records": [record]})
    assert response.json() == {"added": 1, "ids": [1]}
    assert client.get("/sms/1").json()["data"] == record
    dumped = HTTP.get(admin_url(server, "/collections/sms")).json()["data"]
    assert dumped[0] == record
    again = HTTP.post(admin_url(server, "/collections/sms"), json={"records": [record]})
    assert again.status_code == 400  # the id exists
    # Generated records are numbered after every stored id, hand-made ones included.
    high = record | {"id": 99_000_000}
    HTTP.post(admin_url(server, "/collections/sms"), json={"records": [high]})
    assert min(generate(server, "sms", count=2)["ids"]) > 99_000_000
    assert HTTP.get(admin_url(server, "/collections/nothing")).status_code == 404
    assert (
        HTTP.post(
            admin_url(server, "/collections/queuegroups"), json={"generate": {"count": 1}}
        ).status_code
        == 400
    )  # no date: nothing arrives


# -- DELETE ---------------------------------------------------------------------------------------


def test_delete_sms_by_ids(emulator_factory: Start, client_for: ClientFor) -> None:
    server = emulator_factory(rows=500)
    client = client_for(server)
    ids = ids_of(client, "sms")
    response = client.delete(f"/sms/{ids[0]}")
    assert response.status_code == 204 and response.content == b""
    assert_error(client.get(f"/sms/{ids[0]}"), 404)
    assert client.delete(f"/sms/{ids[1]},{ids[2]}").status_code == 204
    assert ids_of(client, "sms") == ids[3:]
    # One unknown id: nothing is deleted.
    assert_error(client.delete(f"/sms/{ids[3]},1"), 404)
    assert ids_of(client, "sms") == ids[3:]
    assert state(server)["counts"]["sms"] == len(ids) - 3


def test_a_plain_user_deletes_only_its_own(emulator_factory: Start, client_for: ClientFor) -> None:
    server = emulator_factory(rows=500)
    admin, user = client_for(server), client_for(server, DEFAULT_USER_API_KEY)
    everything = admin.get("/sms", params={"limit": 5000}).json()["data"]
    other = next(r for r in everything if r["user_id"] != 100003)
    assert_error(user.delete(f"/sms/{other['id']}"), 403)
    # A bulk delete: every match the key may see, answered 202.
    response = user.delete("/sms")
    assert response.status_code == 202
    own = [r for r in everything if r["user_id"] == 100003]
    assert response.json()["total"] == len(own) > 0
    left = admin.get("/sms", params={"limit": 5000}).json()["data"]
    assert len(left) == len(everything) - len(own) and other in left


def test_bulk_delete_with_a_filter(emulator_factory: Start, client_for: ClientFor) -> None:
    server = emulator_factory(rows=500)
    client = client_for(server)
    chats = client.get("/chats", params={"limit": 5000}).json()["data"]
    missed = [c["id"] for c in chats if c["state"] == 3]
    response = client.delete("/chats", params={"filter": json.dumps(
        [{"property": "state", "operator": "eq", "value": 3}]
    )})  # fmt: skip
    assert response.status_code == 202 and response.json()["total"] == len(missed) > 0
    assert set(ids_of(client, "chats")) == {c["id"] for c in chats} - set(missed)


@pytest.mark.parametrize("path", ["/monitors", "/faxes/1", "/cdrs/1", "/transactions"])
def test_delete_where_the_api_has_none_is_405(
    emulator: EmulatorServer, api: httpx.Client, path: str
) -> None:
    response = api.delete(path)
    assert_error(response, 405)
    assert response.headers["allow"] == "GET"
