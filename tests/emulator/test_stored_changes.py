"""Stored-data changes through the admin API: CDRs corrected after the fact (``/cdrs/update``:
filters, sort and ``total`` see the new values) and CDRs deleted (``/cdrs/delete``: the API no
longer returns them, in lists or as single records)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, admin_url, all_cdrs, assert_error, filter_param, state

Start = Callable[..., EmulatorServer]
ClientFor = Callable[..., httpx.Client]


@pytest.fixture(scope="module")
def unchanged(make_emulator_config: Callable[..., EmulatorConfig]) -> Iterator[EmulatorServer]:
    """A server for requests that must be rejected: if they are, its state never changes."""
    with EmulatorServer(make_emulator_config(rows=2000)) as server:
        yield server


def update(server: EmulatorServer, *updates: dict[str, Any]) -> dict[str, Any]:
    response = HTTP.post(admin_url(server, "/cdrs/update"), json={"updates": list(updates)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def delete(server: EmulatorServer, ids: list[int]) -> dict[str, Any]:
    response = HTTP.post(admin_url(server, "/cdrs/delete"), json={"ids": ids})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def matching(client: httpx.Client, *conditions: tuple[str, str, Any]) -> dict[str, Any]:
    params = {"filter": filter_param(*conditions), "limit": 5000, "sort": "id"}
    return client.get("/cdrs", params=params).json()  # type: ignore[no-any-return]


def test_updated_values_are_served_and_filtered(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    records = all_cdrs(server)
    target, moved = records[100], records[200]
    assert target["charge"] != 123.45
    new_date = "2026-01-03 04:05:06"
    assert not matching(client, ("calldate", "eq", new_date))["data"]
    answer = update(
        server,
        {"id": target["id"], "set": {"charge": 123.45, "billsec": 7}},
        {"id": moved["id"], "set": {"calldate": new_date}},
        {"id": 1, "set": {"charge": 1}},
    )
    assert answer == {"updated": 2, "missing": [1]}

    # Filters see the stored values (unlike /cdrs/patch, which only changes what is served).
    found = matching(client, ("charge", "eq", 123.45))
    assert [r["id"] for r in found["data"]] == [target["id"]] and found["total"] == 1
    assert found["data"][0] == target | {"charge": 123.45, "billsec": 7}
    at_new_date = matching(client, ("calldate", "eq", new_date))
    assert [r["id"] for r in at_new_date["data"]] == [moved["id"]]
    old_second = matching(client, ("calldate", "eq", moved["calldate"]))
    assert moved["id"] not in [r["id"] for r in old_second["data"]]
    assert client.get(f"/cdrs/{target['id']}").json()["data"]["charge"] == 123.45
    # Nothing else moved: same records, in id order, one changed in place.
    after = all_cdrs(server)
    assert [r["id"] for r in after] == [r["id"] for r in records]
    assert after[150] == records[150]
    assert client.get("/cdrs", params={"limit": 1}).json()["total"] == len(records)


def test_deleted_cdrs_are_no_longer_returned(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    records = all_cdrs(server)
    gone = [records[0]["id"], records[500]["id"], records[-1]["id"]]
    assert delete(server, [*gone, gone[0], 1]) == {"deleted": 3, "missing": [1]}

    listed = client.get("/cdrs", params={"limit": 5000, "sort": "id"}).json()
    assert listed["total"] == len(records) - 3
    assert not set(gone) & {r["id"] for r in listed["data"]}
    in_day = matching(client, ("calldate", "eq", records[500]["calldate"]))
    assert records[500]["id"] not in [r["id"] for r in in_day["data"]]
    assert client.get(f"/cdrs/{gone[1]}").status_code == 404
    assert state(server)["counts"]["cdrs"] == len(records) - 3
    # A deleted CDR can be given back (the same record, by hand): it is served again.
    response = HTTP.post(admin_url(server, "/cdrs"), json={"records": [records[500]]})
    assert response.json()["added"] == 1
    assert client.get(f"/cdrs/{gone[1]}").json()["data"] == records[500]


@pytest.mark.parametrize(
    ("route", "payload"),
    [
        ("/cdrs/update", {"updates": "x"}),
        ("/cdrs/update", {"updates": [{"id": 1}]}),
        ("/cdrs/update", {"updates": [{"id": "7", "set": {}}]}),
        ("/cdrs/update", {"updates": [{"id": 100000001, "set": {"id": 5}}]}),
        ("/cdrs/delete", {"ids": "all"}),
        ("/cdrs/delete", {"ids": [1.5]}),
        ("/cdrs/delete", {}),
    ],
)
def test_bad_changes_are_400_and_change_nothing(
    unchanged: EmulatorServer, route: str, payload: dict[str, Any]
) -> None:
    before = state(unchanged)["counts"]["cdrs"]
    assert_error(HTTP.post(admin_url(unchanged, route), json=payload), 400)
    assert state(unchanged)["counts"]["cdrs"] == before
