"""Settings that make the emulator break an assumption a client could make about the API
(issue 12): a capped ``total`` and an ignored ``sort``, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, admin_url, all_cdrs, configure, state

Start = Callable[..., EmulatorServer]
ClientFor = Callable[..., httpx.Client]


def page(client: httpx.Client, path: str = "/cdrs", **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_total_cap_caps_the_count_but_not_the_pages(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=2000, total_cap=500)
    client = client_for(server)
    ordered = [r["id"] for r in all_cdrs(server)]
    first = page(client, limit=400, sort="id", dir="ASC")
    assert first["total"] == 500
    assert [r["id"] for r in first["data"]] == ordered[:400]
    # Pages past what the total admits still hold records, as a capped search index serves.
    beyond = page(client, limit=400, page=3, sort="id", dir="ASC")
    assert [r["id"] for r in beyond["data"]] == ordered[800:1200]
    assert beyond["total"] == 500
    # A count below the cap is exact; the cap applies to every collection.
    assert page(client, "/users", limit=1)["total"] == 25
    assert configure(server, total_cap=10)["total_cap"] == 10
    assert page(client, "/users", limit=1)["total"] == 10
    assert configure(server, total_cap=None)["total_cap"] is None
    assert page(client, limit=1)["total"] == 2000
    for bad in (0, -3, "10", True):
        assert HTTP.patch(admin_url(server, "/config"), json={"total_cap": bad}).status_code == 400
    with pytest.raises(ValueError, match="total_cap"):
        EmulatorConfig(total_cap=0)


def test_ignore_sort_serves_the_default_order(
    emulator_factory: Start, client_for: ClientFor
) -> None:
    server = emulator_factory(rows=500)
    client = client_for(server)
    ascending = [r["id"] for r in page(client, limit=50, sort="id", dir="ASC")["data"]]
    assert ascending == sorted(ascending)
    assert configure(server, ignore_sort=True)["ignore_sort"] is True
    newest_first = sorted((r["id"] for r in all_cdrs(server)), reverse=True)
    for params in ({"sort": "id", "dir": "ASC"}, {"sort": "calldate"}, {}):
        served = page(client, limit=50, page=2, **params)
        assert [r["id"] for r in served["data"]] == newest_first[50:100], params
        assert served["total"] == 500
    assert state(server)["ignore_sort"] is True
    assert configure(server, ignore_sort=False)["ignore_sort"] is False
    assert [r["id"] for r in page(client, limit=50, sort="id", dir="ASC")["data"]] == ascending
    assert HTTP.patch(admin_url(server, "/config"), json={"ignore_sort": "yes"}).status_code == 400
    with pytest.raises(ValueError, match="ignore_sort"):
        EmulatorConfig(ignore_sort=1)  # type: ignore[arg-type]
