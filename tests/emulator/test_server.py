"""EmulatorServer: the background-thread server the tests, demo and benchmarks use."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest

from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, assert_error


def test_serves_on_loopback_and_stops(make_emulator_config: Callable[..., EmulatorConfig]) -> None:
    with EmulatorServer(make_emulator_config(rows=500)) as server:
        assert server.host == "127.0.0.1" and server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.base_url == f"{server.url}/v1.2/voipstudio"
        response = HTTP.get(f"{server.base_url}/cdrs", headers={"X-Auth-Token": "demo-api-key"})
        assert response.json()["total"] == 500
        assert response.headers["access-control-allow-origin"] == "*"
    with pytest.raises(httpx.ConnectError):
        HTTP.get(f"{server.base_url}/cdrs")


def test_connections_are_tcp_nodelay(emulator: EmulatorServer) -> None:
    # asyncio sets TCP_NODELAY only on connections of IPPROTO_TCP sockets; a socket made with
    # protocol 0 made every small answer wait ~40 ms for a delayed ACK.
    sock = emulator._socket
    assert sock.proto == socket.IPPROTO_TCP
    assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM


def test_same_seed_same_data_other_seed_other_data(
    emulator_factory: Callable[..., EmulatorServer], client_for: Callable[..., httpx.Client]
) -> None:
    pages = []
    for seed in (1, 1, 2):
        server = emulator_factory(rows=1000, seed=seed)
        pages.append(client_for(server).get("/cdrs", params={"limit": 200}).content)
    assert pages[0] == pages[1]
    assert pages[0] != pages[2]


def test_an_emulator_bug_is_a_json_500(
    emulator_factory: Callable[..., EmulatorServer],
    client_for: Callable[..., httpx.Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Break one collection of a private server: the answer must still be the API's JSON error
    # envelope (clients retry 5xx), and the server must keep serving.
    server = emulator_factory(rows=500)
    client = client_for(server)
    monkeypatch.setattr(server.emulator.collections["users"], "table", None)
    assert_error(client.get("/users"), 500)
    assert client.get("/cdrs", params={"limit": 1}).status_code == 200
