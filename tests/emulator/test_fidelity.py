"""What real clients of the live API saw differ in the emulator (issue 11), item by item: each
test describes the behaviour a client relies on, over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pipelines.emulator.cdr_conventions import (
    CALL_TYPES,
    CAUSES,
    CONTEXTS,
    DESTINATIONS,
    DISPOSITIONS,
    TRANSFER_INFO,
)
from pipelines.emulator.config import DEFAULT_PASSWORD, DEFAULT_USER_API_KEY, EmulatorConfig
from pipelines.emulator.fields import COLLECTIONS, FieldType
from pipelines.emulator.server import EmulatorServer
from pipelines.voipstudio.client import Credentials, VoipstudioClient
from pipelines.voipstudio.errors import ApiRequestError

from ._support import HTTP, admin_url, all_cdrs, assert_error, configure, error_texts, filter_param

Record = dict[str, Any]
Start = Callable[..., EmulatorServer]
ClientFor = Callable[..., httpx.Client]


def data(response: httpx.Response) -> list[Record]:
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def cdrs(emulator: EmulatorServer) -> list[Record]:
    return all_cdrs(emulator)


@pytest.fixture
def server(emulator_factory: Start) -> EmulatorServer:
    """A private emulator (tests here create keys and change settings)."""
    return emulator_factory(rows=2000)


# -- 1. every collection: filter, sort and paging through one path ------------------------------


def test_apitokens_honour_a_name_filter(server: EmulatorServer, client_for: ClientFor) -> None:
    client = client_for(server)
    for name in ("cli-laptop", "cli-desktop", "warehouse"):
        assert client.post("/apitokens", json={"name": name, "expiry": 0}).status_code == 201
    listed = client.get("/apitokens", params={"filter": filter_param(("name", "eq", "warehouse"))})
    assert [key["name"] for key in data(listed)] == ["warehouse"]
    assert listed.json()["total"] == 1
    prefixed = data(
        client.get("/apitokens", params={"filter": filter_param(("name", "like", "cli-%"))})
    )
    assert sorted(key["name"] for key in prefixed) == ["cli-desktop", "cli-laptop"]


def test_a_cli_login_that_deletes_its_own_old_keys_keeps_every_other_key(
    server: EmulatorServer, client_for: ClientFor
) -> None:
    # A client that, on login, lists the keys named like its own and deletes what comes back.
    client = client_for(server)
    own = client.post("/apitokens", json={"name": "cli@host", "expiry": 0}).json()["data"]
    other = client.post("/apitokens", json={"name": "warehouse", "expiry": 0}).json()["data"]
    found = data(
        client.get("/apitokens", params={"filter": filter_param(("name", "eq", "cli@host"))})
    )
    assert [key["token"] for key in found] == [own["token"]]
    for key in found:
        assert client.delete(f"/apitokens/{key['token']}").status_code == 204
    default_key = server.emulator.config.api_key
    for token in (default_key, other["token"]):
        assert client_for(server, token).get("/me").status_code == 200
    assert client_for(server, own["token"]).get("/me").status_code == 401


def test_apitokens_page_and_sort(server: EmulatorServer, client_for: ClientFor) -> None:
    client = client_for(server)
    for name in ("b-key", "c-key", "a-key"):
        client.post("/apitokens", json={"name": name, "expiry": 0})
    # Without a sort, newest first (like every collection); with one, as asked.
    newest_first = [key["name"] for key in data(client.get("/apitokens", params={"limit": 50}))]
    assert newest_first == ["a-key", "c-key", "b-key", "emulator default key"]
    by_name = data(client.get("/apitokens", params={"sort": "name", "dir": "ASC", "limit": 2}))
    assert [key["name"] for key in by_name] == ["a-key", "b-key"]
    second = client.get("/apitokens", params={"sort": "name", "page": 2, "limit": 2})
    assert [key["name"] for key in data(second)] == ["c-key", "emulator default key"]
    assert second.json()["total"] == 4
    assert_error(client.get("/apitokens", params={"filter": filter_param(("id", "eq", 1))}), 400)
    assert_error(client.get("/apitokens", params={"sort": "nope"}), 400)


def _probe_value(
    records: list[Record], fields: dict[str, FieldType], unfilterable: frozenset[str]
) -> tuple[str, Any]:
    """A filterable field other than ``id`` and a value of it that some record has."""
    for name, ftype in fields.items():
        if ftype in ("int", "str") and name != "id" and name not in unfilterable:
            value = next((r[name] for r in records if r.get(name) is not None), None)
            if value is not None:
                return name, value
    raise AssertionError("no filterable field with a value")


@pytest.mark.parametrize("name", sorted(COLLECTIONS))
def test_every_collection_filters_sorts_and_pages_the_same_way(
    emulator: EmulatorServer, api: httpx.Client, name: str
) -> None:
    fields = COLLECTIONS[name].fields
    everything = api.get(f"/{name}", params={"limit": 5000})
    records = data(everything)
    assert records and everything.json()["total"] == len(records)
    field, value = _probe_value(records, fields, COLLECTIONS[name].unfilterable)
    filtered = api.get(f"/{name}", params={"filter": filter_param((field, "eq", value))})
    expected = [r for r in records if r[field] == value]
    assert data(filtered) == expected[:20]
    assert filtered.json()["total"] == len(expected)
    ascending = data(api.get(f"/{name}", params={"sort": field, "dir": "ASC", "limit": 5000}))
    values = [r[field] for r in ascending if r[field] is not None]
    assert values == sorted(values) and len(ascending) == len(records)
    page = data(api.get(f"/{name}", params={"page": 2, "limit": 1}))
    assert page == records[1:2]
    assert_error(api.get(f"/{name}", params={"filter": filter_param(("nope", "eq", 1))}), 400)


# -- 2. like without wildcards matches a substring ----------------------------------------------


def test_like_without_a_wildcard_matches_a_substring(api: httpx.Client, cdrs: list[Record]) -> None:
    number = next(r["src"] for r in cdrs if r["src"] and len(r["src"]) > 8)
    part = number[3:7]
    found = data(
        api.get("/cdrs", params={"limit": 5000, "filter": filter_param(("src", "like", part))})
    )
    expected = {r["id"] for r in cdrs if r["src"] is not None and part in r["src"]}
    assert {r["id"] for r in found} == expected
    assert len(expected) > 1  # more than the exact number
    # A number sent as a number, with no wildcard: its text, anywhere.
    found = data(
        api.get("/cdrs", params={"limit": 5000, "filter": filter_param(("src", "like", 55))})
    )
    assert {r["id"] for r in found} == {r["id"] for r in cdrs if r["src"] and "55" in r["src"]}
    excluded = data(
        api.get("/cdrs", params={"limit": 5000, "filter": filter_param(("src", "notlike", part))})
    )
    assert {r["id"] for r in excluded} == {
        r["id"] for r in cdrs if r["src"] is not None and part not in r["src"]
    }


def test_like_with_a_wildcard_is_a_pattern(api: httpx.Client, cdrs: list[Record]) -> None:
    found = data(
        api.get("/cdrs", params={"limit": 5000, "filter": filter_param(("src", "like", "+34%"))})
    )
    expected = {r["id"] for r in cdrs if r["src"] is not None and r["src"].startswith("+34")}
    assert {r["id"] for r in found} == expected
    # Anchored: "34%" does not match "+34..." (only numbers starting with 34 do).
    anchored = data(
        api.get("/cdrs", params={"limit": 5000, "filter": filter_param(("src", "like", "34%"))})
    )
    assert {r["id"] for r in anchored} == {
        r["id"] for r in cdrs if r["src"] is not None and r["src"].startswith("34")
    }
    assert expected - {r["id"] for r in anchored} == expected


# -- 3. limit above the page cap is clamped, not refused ---------------------------------------


def test_a_limit_above_5000_serves_5000(emulator_factory: Start, client_for: ClientFor) -> None:
    # A client asking 10,000 a page gets a page of 5000: shorter than asked, not refused.
    server = emulator_factory(rows=6000)
    ordered = [r["id"] for r in all_cdrs(server)]
    body = client_for(server).get("/cdrs", params={"limit": 10_000, "sort": "id"}).json()
    assert [r["id"] for r in body["data"]] == ordered[:5000]
    assert body["total"] == 6000


def test_the_page_cap_is_configurable(emulator_factory: Start, client_for: ClientFor) -> None:
    server = emulator_factory(rows=2000, page_cap=300)
    client = client_for(server)
    ordered = [r["id"] for r in all_cdrs(server)]
    first = client.get("/cdrs", params={"limit": 1000, "sort": "id", "dir": "ASC"}).json()
    assert [r["id"] for r in first["data"]] == ordered[:300]
    assert first["total"] == 2000
    # Pages are counted in the served size: page 2 starts after the 300 served.
    second = data(
        client.get("/cdrs", params={"limit": 1000, "page": 2, "sort": "id", "dir": "ASC"})
    )
    assert [r["id"] for r in second] == ordered[300:600]
    # The cap applies to every collection, and can change at run time.
    assert configure(server, page_cap=7)["page_cap"] == 7
    assert len(data(client.get("/users", params={"limit": 100}))) == 7
    assert len(data(client.get("/cdrs", params={"limit": 5}))) == 5
    for bad in (0, -1, "10", True):
        assert HTTP.patch(admin_url(server, "/config"), json={"page_cap": bad}).status_code == 400
    with pytest.raises(ValueError, match="page_cap"):
        EmulatorConfig(page_cap=0)


def test_our_client_still_reads_full_pages_at_the_default_cap(emulator: EmulatorServer) -> None:
    key = emulator.emulator.config.api_key
    with VoipstudioClient(emulator.base_url, Credentials(api_key=key)) as client:
        records, total = client.get_page("/cdrs", page=1, limit=5000, sort="id")
    assert len(records) == 5000 and total >= 5000


# -- 4. /ping, and 401 before 404 ----------------------------------------------------------------


def test_ping_answers_pong_with_a_valid_key(emulator: EmulatorServer, api: httpx.Client) -> None:
    response = api.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"data": {"response": "Pong"}}
    user_id = api.get("/me").json()["data"]["id"]
    key = emulator.emulator.config.api_key
    old_base = f"{emulator.url}/v1.1/voipstudio"
    by_basic = HTTP.get(f"{old_base}/ping", auth=(str(user_id), key))
    assert by_basic.json() == {"data": {"response": "Pong"}}
    assert_error(HTTP.get(f"{emulator.base_url}/ping", headers={"X-Auth-Token": "bad"}), 401)
    assert_error(api.post("/ping"), 405)


@pytest.mark.parametrize("path", ["/nothing", "/cdrs/1/extra", "/smses"])
def test_unknown_routes_are_401_with_bad_credentials_and_404_with_good(
    emulator: EmulatorServer, api: httpx.Client, path: str
) -> None:
    assert_error(HTTP.get(f"{emulator.base_url}{path}", headers={"X-Auth-Token": "bad"}), 401)
    assert_error(HTTP.get(f"{emulator.base_url}{path}"), 401)
    assert_error(api.get(path), 404)


# -- 5. error entries: objects by default, strings when configured ------------------------------


def test_error_entries_are_message_objects_by_default(api: httpx.Client) -> None:
    body = assert_error(api.get("/cdrs", params={"filter": filter_param(("nope", "eq", 1))}), 400)
    assert body["errors"] == [{"message": "Unknown property 'nope'"}]


def test_error_entries_can_be_strings(emulator_factory: Start, client_for: ClientFor) -> None:
    server = emulator_factory(rows=500, error_entries="string")
    client = client_for(server)
    bad_filter = {"filter": filter_param(("nope", "eq", 1))}
    body = assert_error(client.get("/cdrs", params=bad_filter), 400, entries="string")
    assert body["errors"] == ["Unknown property 'nope'"]
    assert_error(client.get("/nothing"), 404, entries="string")
    # ...and back to objects at run time, faults included.
    configure(server, error_entries="object", faults=[{"kind": "503", "nth": [2]}])
    assert_error(client.get("/cdrs", params=bad_filter), 400)
    assert_error(client.get("/cdrs"), 503)
    assert (
        HTTP.patch(admin_url(server, "/config"), json={"error_entries": "xml"}).status_code == 400
    )


@pytest.mark.parametrize("entries", ["object", "string"])
def test_our_client_shows_the_detail_of_either_shape(emulator_factory: Start, entries: str) -> None:
    server = emulator_factory(rows=500, error_entries=entries)
    key = server.emulator.config.api_key
    with (
        VoipstudioClient(server.base_url, Credentials(api_key=key)) as client,
        pytest.raises(ApiRequestError) as failure,
    ):
        client.get_page(
            "/cdrs", page=1, limit=10, filters=[{"property": "nope", "operator": "eq", "value": 1}]
        )
    message = str(failure.value)
    assert "HTTP 400" in message
    assert "Filtration error (Unknown property 'nope')" in message
    assert "{" not in message  # the detail, not the entry's JSON


# -- 6. a key sees its own user's data; an admin's key the company's -----------------------------


@pytest.fixture(scope="module")
def plain(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.base_url, headers={"X-Auth-Token": DEFAULT_USER_API_KEY}, timeout=30
    ) as client:
        yield client


def owned(record: Record, user_id: int) -> bool:
    return str(user_id) in (str(record["user_id"]), record["src_id"], record["dst_id"])


def test_a_plain_users_key_sees_only_their_cdrs(
    plain: httpx.Client, api: httpx.Client, cdrs: list[Record]
) -> None:
    me = plain.get("/me").json()["data"]
    admin = api.get("/me").json()["data"]
    assert me["id"] != admin["id"]
    seen = plain.get("/cdrs", params={"limit": 5000, "sort": "id", "dir": "ASC"}).json()
    expected = [r for r in cdrs if owned(r, me["id"])]
    assert seen["data"] == expected and seen["total"] == len(expected)
    # Their calls as the leg's user, and as the other party of a colleague's leg.
    assert any(r["user_id"] == me["id"] for r in expected)
    assert any(r["user_id"] != me["id"] for r in expected)
    assert 0 < len(expected) < len(cdrs)
    assert api.get("/cdrs", params={"limit": 1}).json()["total"] == len(cdrs)
    # Filters, sort and paging work inside the scope.
    missed = plain.get("/cdrs", params={"filter": filter_param(("type", "eq", "M")), "limit": 5000})
    assert data(missed) == [r for r in reversed(expected) if r["type"] == "M"]
    assert data(plain.get("/cdrs", params={"page": 2, "limit": 3, "sort": "id"})) == expected[3:6]


def test_a_plain_user_sees_themselves_and_their_queues(
    plain: httpx.Client, api: httpx.Client
) -> None:
    me = plain.get("/me").json()["data"]
    users = data(plain.get("/users", params={"limit": 100}))
    assert [u["id"] for u in users] == [me["id"]]
    assert users[0]["email"] == me["email"]
    all_queues = data(api.get("/queues", params={"limit": 100, "sort": "id", "dir": "ASC"}))
    mine = [q for q in all_queues if me["id"] in q["users"]]
    assert 0 < len(mine) < len(all_queues)
    assert (
        data(plain.get("/queues", params={"limit": 100, "sort": "id", "dir": "DESC"})) == mine[::-1]
    )


def test_a_record_outside_the_keys_scope_is_403(
    plain: httpx.Client, api: httpx.Client, cdrs: list[Record]
) -> None:
    me = plain.get("/me").json()["data"]["id"]
    other = next(r for r in cdrs if not owned(r, me))
    mine = next(r for r in cdrs if owned(r, me))
    body = assert_error(plain.get(f"/cdrs/{other['id']}"), 403)
    assert body["message"] == "Access denied"
    assert plain.get(f"/cdrs/{mine['id']}").json()["data"] == mine
    assert api.get(f"/cdrs/{other['id']}").json()["data"] == other
    assert_error(plain.get(f"/users/{api.get('/me').json()['data']['id']}"), 403)


def test_scope_follows_the_user_not_the_key(server: EmulatorServer, client_for: ClientFor) -> None:
    plain = client_for(server, DEFAULT_USER_API_KEY)
    me = plain.get("/me").json()["data"]
    # A key the plain user mints, and a login with their email, see what their key sees.
    minted = plain.post("/apitokens", json={"name": "mine", "expiry": 0}).json()["data"]["token"]
    login = HTTP.post(
        f"{server.base_url}/login", json={"email": me["email"], "password": DEFAULT_PASSWORD}
    ).json()["user_token"]
    totals = {
        client_for(server, token).get("/cdrs", params={"limit": 1}).json()["total"]
        for token in (DEFAULT_USER_API_KEY, minted, login)
    }
    assert len(totals) == 1 and totals.pop() < len(all_cdrs(server))
    # API keys: every user, admins too, lists only their own.
    admin_keys = {k["token"] for k in data(client_for(server).get("/apitokens"))}
    plain_keys = {k["token"] for k in data(plain.get("/apitokens"))}
    assert plain_keys == {DEFAULT_USER_API_KEY, minted}
    assert not admin_keys & plain_keys
    assert_error(client_for(server).delete(f"/apitokens/{minted}"), 404)


def test_which_user_holds_the_plain_key_is_configurable(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=1000, user_api_key="plain-key", user_api_key_user_id=100005)
    assert client_for(server, "plain-key").get("/me").json()["data"]["id"] == 100005
    assert client_for(server, DEFAULT_USER_API_KEY).get("/me").status_code == 401
    without = emulator_factory(rows=500, user_api_key="")
    assert client_for(without, DEFAULT_USER_API_KEY).get("/me").status_code == 401


@pytest.mark.parametrize("user_id", [100001, 99, 100026])
def test_the_plain_key_must_name_another_user_of_the_company(
    make_emulator_config: Callable[..., EmulatorConfig], user_id: int
) -> None:
    from pipelines.emulator.app import Emulator

    with pytest.raises(ValueError, match="user_api_key_user_id"):
        Emulator(make_emulator_config(rows=100, user_api_key_user_id=user_id))


# -- 7. /queues?include=users ---------------------------------------------------------------------


def test_queues_include_users_as_objects_with_a_status(
    emulator: EmulatorServer, api: httpx.Client
) -> None:
    plain_queues = data(api.get("/queues", params={"limit": 100}))
    users = {u["id"]: u for u in data(api.get("/users", params={"limit": 100}))}
    wanted = "id,first_name,last_name,status"
    included = data(
        api.get("/queues", params={"limit": 100, "include": "users", "fields[users]": wanted})
    )
    status = emulator.emulator.company.agent_status
    assert [q["id"] for q in included] == [q["id"] for q in plain_queues]
    for queue, listed in zip(included, plain_queues, strict=True):
        assert {k: v for k, v in queue.items() if k != "users"} == {
            k: v for k, v in listed.items() if k != "users"
        }
        assert [member["id"] for member in queue["users"]] == listed["users"]
        for member in queue["users"]:
            assert list(member) == ["id", "first_name", "last_name", "status"]
            user = users[member["id"]]
            assert (member["first_name"], member["last_name"]) == (
                user["first_name"],
                user["last_name"],
            )
            assert member["status"] is status[(queue["id"], member["id"])]
    statuses = [m["status"] for q in included for m in q["users"]]
    assert True in statuses and False in statuses


def test_include_without_fields_gives_whole_users(api: httpx.Client) -> None:
    queue = data(api.get("/queues", params={"limit": 1}))[0]
    single = api.get(f"/queues/{queue['id']}", params={"include": "users"}).json()["data"]
    member = single["users"][0]
    user = api.get(f"/users/{member['id']}").json()["data"]
    assert member == user | {"status": member["status"]}
    assert isinstance(member["status"], bool)


def test_unknown_includes_are_400(api: httpx.Client) -> None:
    assert_error(api.get("/queues", params={"include": "agents"}), 400)
    body = assert_error(api.get("/cdrs", params={"include": "users"}), 400)
    assert "include" in error_texts(body)[0]


# -- 8. status codes of /apitokens ----------------------------------------------------------------


def test_creating_a_key_is_201_and_deleting_it_204(
    server: EmulatorServer, client_for: ClientFor
) -> None:
    client = client_for(server)
    created = client.post("/apitokens", json={"name": "Example API App", "expiry": 604800})
    assert created.status_code == 201
    deleted = client.delete(f"/apitokens/{created.json()['data']['token']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert "content-type" not in deleted.headers


# -- 9. minted keys: opaque, of a configurable length and alphabet --------------------------------


def test_minted_keys_look_like_the_documented_examples(
    server: EmulatorServer, client_for: ClientFor
) -> None:
    key = client_for(server).post("/apitokens", json={"name": "k"}).json()["data"]["token"]
    login = HTTP.post(
        f"{server.base_url}/login",
        json={"email": server.emulator.config.email, "password": DEFAULT_PASSWORD},
    ).json()["user_token"]
    for token in (key, login):
        assert re.fullmatch(r"[0-9a-f]{32}", token), token


def test_key_length_and_alphabet_are_configurable(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    # A client that checks its credentials as "<user id>:<40 hex digits>" before using them.
    server = emulator_factory(rows=500, token_length=40)
    client = client_for(server)
    key = client.post("/apitokens", json={"name": "k"}).json()["data"]["token"]
    user_id = client.get("/me").json()["data"]["id"]
    credentials = f"{user_id}:{key}"
    assert re.fullmatch(r"[0-9]{6,7}:[a-f0-9]{40}", credentials)
    assert HTTP.get(f"{server.base_url}/ping", auth=(str(user_id), key)).status_code == 200

    odd = emulator_factory(rows=500, token_length=20, token_alphabet="XYZ-")
    token = client_for(odd).post("/apitokens", json={"name": "k"}).json()["data"]["token"]
    assert len(token) == 20 and set(token) <= set("XYZ-")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"token_length": 8}, "at least 16"),
        ({"token_alphabet": "a"}, "two different"),
        ({"token_alphabet": "ab c"}, "without spaces"),
        ({"token_alphabet": "aé"}, "printable ASCII"),
    ],
)
def test_bad_key_formats_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmulatorConfig(**settings)


# -- 10. the CDR conventions come from one module ------------------------------------------------


def test_served_cdrs_use_only_the_conventions_module(
    emulator: EmulatorServer, api: httpx.Client, cdrs: list[Record]
) -> None:
    assert {r["type"] for r in cdrs} == {
        CALL_TYPES.inbound,
        CALL_TYPES.outbound,
        CALL_TYPES.missed,
    }
    assert {r["disposition"] for r in cdrs} == {
        DISPOSITIONS.connected,
        DISPOSITIONS.no_answer,
        DISPOSITIONS.busy,
        DISPOSITIONS.failed,
    }
    causes = {
        CAUSES.normal_clearing,
        CAUSES.normal_unspecified,
        *CAUSES.no_answer,
        CAUSES.busy,
        CAUSES.answered_elsewhere,
        *CAUSES.failed,
    }
    assert {r["t_cause"] for r in cdrs} <= causes
    assert CAUSES.answered_elsewhere in {r["t_cause"] for r in cdrs}
    contexts = {r["context"] for r in cdrs}
    assert contexts == {
        CONTEXTS.from_outside,
        CONTEXTS.queue,
        CONTEXTS.internal,
        CONTEXTS.transfer,
        CONTEXTS.forward,
    }
    # A queue call names its queue in `destination`; an internal call says so there.
    queue_names = {q["name"] for q in data(api.get("/queues", params={"limit": 100}))}
    assert {r["destination"] for r in cdrs if r["context"] == CONTEXTS.queue} <= queue_names
    internal = [r for r in cdrs if r["src_id"] and r["dst_id"]]
    assert internal and all(r["destination"] == DESTINATIONS.internal for r in internal)
    transfers = [r for r in cdrs if r["context"] == CONTEXTS.transfer]
    prefix = TRANSFER_INFO.split("{")[0]
    assert transfers and all(r["info"].startswith(prefix) for r in transfers)
