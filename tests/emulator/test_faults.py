"""Fault injection (PATCH /_emulator/config {"faults": [...]}) and the latency setting.

One emulator serves the module; every test starts from no faults and default latency.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, admin_url, assert_error, configure, state


@pytest.fixture(scope="module")
def server(make_emulator_config: Callable[..., EmulatorConfig]) -> Iterator[EmulatorServer]:
    with EmulatorServer(make_emulator_config(rows=2000)) as running:
        yield running


@pytest.fixture
def client(
    server: EmulatorServer, client_for: Callable[..., httpx.Client]
) -> Iterator[httpx.Client]:
    configure(server, faults=[], latency={})
    yield client_for(server)
    configure(server, faults=[], latency={})


def set_faults(server: EmulatorServer, *rules: dict[str, Any], seed: int | None = None) -> None:
    changes: dict[str, Any] = {"faults": list(rules)}
    if seed is not None:
        changes["fault_seed"] = seed
    configure(server, **changes)


def statuses(client: httpx.Client, count: int, path: str = "/cdrs") -> list[int]:
    return [client.get(path, params={"limit": 1}).status_code for _ in range(count)]


@pytest.mark.parametrize("retry_after", ["0", "2", None])
def test_429_with_and_without_retry_after(
    server: EmulatorServer, client: httpx.Client, retry_after: str | None
) -> None:
    set_faults(server, {"kind": "429", "nth": [1], "retry_after": retry_after})
    response = client.get("/cdrs", params={"limit": 1})
    assert_error(response, 429)
    assert response.headers.get("retry-after") == retry_after
    assert client.get("/cdrs", params={"limit": 1}).status_code == 200


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_have_json_bodies(
    server: EmulatorServer, client: httpx.Client, status: int
) -> None:
    set_faults(server, {"kind": str(status), "nth": [1]})
    assert_error(client.get("/cdrs", params={"limit": 1}), status)
    assert client.get("/cdrs", params={"limit": 1}).status_code == 200


def test_non_json_fault_is_an_html_502(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "non_json", "nth": [1]})
    response = client.get("/cdrs", params={"limit": 1})
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_drop_closes_the_connection_mid_response(
    server: EmulatorServer, client: httpx.Client
) -> None:
    set_faults(server, {"kind": "drop", "nth": [1]})
    with pytest.raises(httpx.TransportError):
        client.get("/cdrs", params={"limit": 1})
    # The server is fine, and the client's next request goes through.
    assert client.get("/cdrs", params={"limit": 1}).status_code == 200
    assert state(server)["faults"][0]["fired"] == 1


def test_stall_delays_but_answers(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "stall", "nth": [1], "seconds": 0.2})
    response = client.get("/cdrs", params={"limit": 3})
    assert response.status_code == 200
    assert len(response.json()["data"]) == 3
    assert state(server)["faults"][0]["fired"] == 1


def test_nth_requests(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "503", "nth": [2, 4]})
    assert statuses(client, 6) == [200, 503, 200, 503, 200, 200]


def test_every_kth_request(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "500", "every": 3})
    assert statuses(client, 7) == [200, 200, 500, 200, 200, 500, 200]


def test_times_limits_how_often_a_rule_fires(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "503", "every": 1, "times": 2})
    assert statuses(client, 5) == [503, 503, 200, 200, 200]
    rule = state(server)["faults"][0]
    assert rule["fired"] == 2 and rule["seen"] == 5


def test_rate_is_deterministic_for_a_seed(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "503", "rate": 0.5}, seed=7)
    first = statuses(client, 30)
    set_faults(server, {"kind": "503", "rate": 0.5}, seed=7)
    again = statuses(client, 30)
    set_faults(server, {"kind": "503", "rate": 0.5}, seed=8)
    other = statuses(client, 30)
    assert first == again
    assert first != other
    assert 0 < first.count(503) < 30
    # Setting the rules again without a seed restarts the same sequence too (from the last
    # seed), whatever ran in between.
    set_faults(server, {"kind": "503", "rate": 0.5})
    assert statuses(client, 30) == other


def test_rate_one_always_fires(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "502", "rate": 1.0})
    assert statuses(client, 5) == [502] * 5


def test_rules_apply_by_path(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "503", "every": 1, "path": "/users"})
    assert statuses(client, 2, "/cdrs") == [200, 200]
    assert statuses(client, 2, "/users") == [503, 503]
    assert state(server)["faults"][0]["seen"] == 2


def test_first_firing_rule_wins(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "500", "nth": [1]}, {"kind": "429", "every": 1})
    assert statuses(client, 3) == [500, 429, 429]


def test_faults_apply_to_login_too(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "503", "nth": [1], "path": "/login"})
    credentials = {"email": "demo@example.com", "password": "demo-password"}
    assert HTTP.post(f"{server.base_url}/login", json=credentials).status_code == 503
    assert HTTP.post(f"{server.base_url}/login", json=credentials).status_code == 200


def test_faults_never_apply_to_admin_routes(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(
        server, {"kind": "drop", "every": 1}, {"kind": "503", "every": 1, "path": "/_emulator"}
    )
    for _ in range(3):
        assert HTTP.get(admin_url(server, "/state")).status_code == 200
        assert HTTP.get(admin_url(server, "/cdrs")).status_code == 200
    assert [rule["seen"] for rule in state(server)["faults"]] == [0, 0]
    with pytest.raises(httpx.TransportError):
        client.get("/cdrs", params={"limit": 1})


def test_faults_configured_at_start_up(
    emulator_factory: Callable[..., EmulatorServer],
    client_for: Callable[..., httpx.Client],
) -> None:
    started = emulator_factory(rows=2000, faults=[{"kind": "429", "nth": [1], "retry_after": "1"}])
    response = client_for(started).get("/cdrs", params={"limit": 1})
    assert response.status_code == 429 and response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "418", "nth": [1]},
        {"kind": "503"},
        {"kind": "503", "nth": [1], "colour": "red"},
        {"kind": "503", "rate": 1.5},
        {"kind": "503", "nth": [0]},
        {"kind": "503", "nth": 2},
        {"kind": "503", "every": -1},
        {"kind": "503", "every": 1, "times": -1},
        {"kind": "stall", "every": 1, "seconds": -1},
        {"kind": "stall", "every": 1, "seconds": "long"},
    ],
)
def test_invalid_fault_rules_are_rejected(
    server: EmulatorServer, client: httpx.Client, rule: dict[str, Any]
) -> None:
    response = HTTP.patch(admin_url(server, "/config"), json={"faults": [rule]})
    assert_error(response, 400)
    assert state(server)["faults"] == []
    assert client.get("/cdrs", params={"limit": 1}).status_code == 200


def test_latency_is_configurable_and_reported(server: EmulatorServer, client: httpx.Client) -> None:
    latency = {"per_request_ms": 2.0, "per_row_ms": 0.01}
    assert configure(server, latency=latency)["latency"] == latency
    assert state(server)["latency"] == latency
    assert client.get("/cdrs", params={"limit": 10}).status_code == 200


@pytest.mark.parametrize(
    "latency",
    [{"per_request_ms": "x"}, {"per_request_ms": -1}, {"per_hour_ms": 1}, [1, 2]],
)
def test_invalid_latency_is_rejected_and_changes_nothing(
    server: EmulatorServer, client: httpx.Client, latency: Any
) -> None:
    before = state(server)["latency"]
    response = HTTP.patch(admin_url(server, "/config"), json={"latency": latency})
    assert_error(response, 400)
    assert state(server)["latency"] == before
    assert client.get("/cdrs", params={"limit": 1}).status_code == 200


def test_latency_from_the_start_up_config_is_reported(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    started = emulator_factory(rows=2000, latency_per_request_ms=1.5, latency_per_row_ms=0.002)
    assert state(started)["latency"] == {"per_request_ms": 1.5, "per_row_ms": 0.002}


def test_a_rejected_config_change_changes_nothing(
    server: EmulatorServer, client: httpx.Client
) -> None:
    response = HTTP.patch(
        admin_url(server, "/config"),
        json={"faults": [{"kind": "503", "every": 1}], "arrivals": {"every": "often"}},
    )
    assert_error(response, 400)
    assert state(server)["faults"] == []
    assert statuses(client, 2) == [200, 200]
