"""The emulator's transport faults: a trickled answer, no answer, a throttle answered 400,
redirects, an API that echoes secrets, odd headers and a body that lies about its encoding.

Checked with a plain httpx client over real HTTP: each fault does what it says (the client's
handling of them is tested in tests/sync/test_transport.py).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, admin_url, assert_error, configure, state


@pytest.fixture(scope="module")
def server(make_emulator_config: Callable[..., EmulatorConfig]) -> Iterator[EmulatorServer]:
    with EmulatorServer(make_emulator_config(rows=500)) as running:
        yield running


@pytest.fixture
def client(
    server: EmulatorServer, client_for: Callable[..., httpx.Client]
) -> Iterator[httpx.Client]:
    configure(server, faults=[])
    yield client_for(server)
    configure(server, faults=[])


def set_faults(server: EmulatorServer, *rules: dict[str, Any]) -> None:
    configure(server, faults=list(rules))


def test_trickle_sends_the_real_answer_one_byte_at_a_time(
    server: EmulatorServer, client: httpx.Client
) -> None:
    expected = client.get("/cdrs", params={"limit": 1}).content
    set_faults(server, {"kind": "trickle", "nth": [1], "seconds": 0.001})
    chunks: list[bytes] = []
    with client.stream("GET", "/cdrs", params={"limit": 1}) as response:
        assert response.status_code == 200
        chunks.extend(response.iter_raw())
    assert b"".join(chunks) == expected
    # One byte a send: the body arrives in many small reads, never in one.
    assert len(chunks) > 10
    assert state(server)["faults"][0]["fired"] == 1


def test_hang_answers_nothing_until_it_gives_up(server: EmulatorServer) -> None:
    set_faults(server, {"kind": "hang", "nth": [1, 2], "seconds": 0.5})
    key = {"X-Auth-Token": server.emulator.config.api_key}
    with pytest.raises(httpx.ReadTimeout):
        HTTP.get(server.base_url + "/cdrs", headers=key, timeout=0.2)
    # Waited for long enough, it gives up as a proxy would.
    response = HTTP.get(server.base_url + "/cdrs", headers=key, timeout=10)
    assert_error(response, 504)


def test_throttle_400_says_so_in_both_error_shapes(
    server: EmulatorServer, client: httpx.Client
) -> None:
    set_faults(server, {"kind": "throttle_400", "nth": [1], "retry_after": "3"})
    response = client.get("/cdrs", params={"limit": 1})
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Maximum per minute call rate exceeded"
    assert isinstance(body["errors"][0], dict) and "call rate" in body["errors"][0]["message"]
    assert response.headers["retry-after"] == "3"
    assert client.get("/cdrs", params={"limit": 1}).status_code == 200


def test_redirect_keeps_path_and_query(server: EmulatorServer, client: httpx.Client) -> None:
    set_faults(server, {"kind": "redirect", "nth": [1], "location": "/v1.1/voipstudio"})
    response = client.get("/cdrs", params={"limit": 2, "sort": "id"})
    assert response.status_code == 307
    assert response.headers["location"] == "/v1.1/voipstudio/cdrs?limit=2&sort=id"
    set_faults(
        server,
        {"kind": "redirect", "nth": [1], "location": "http://elsewhere.test/v9", "status": 301},
    )
    response = client.get("/me")
    assert response.status_code == 301
    assert response.headers["location"] == "http://elsewhere.test/v9/me"


def test_echo_leaks_the_credentials_it_was_sent(
    server: EmulatorServer, client: httpx.Client
) -> None:
    set_faults(server, {"kind": "echo", "every": 1, "status": 429})
    key = server.emulator.config.api_key
    response = client.get("/cdrs")
    assert response.status_code == 429
    assert key in response.json()["message"]
    assert response.headers["x-echo-token"] == key
    login = HTTP.post(server.base_url + "/login", json={"email": "a@b.c", "password": "pw-123"})
    assert "pw-123" in login.text


def test_odd_headers_come_with_the_real_answer(
    server: EmulatorServer, client: httpx.Client
) -> None:
    expected = client.get("/cdrs", params={"limit": 3}).json()
    set_faults(server, {"kind": "odd_headers", "nth": [1]})
    response = client.get("/cdrs", params={"limit": 3})
    assert response.status_code == 200
    assert response.headers.get_list("content-type")[0] == "text/html"
    assert response.headers["retry-after"] == "soon"
    assert response.headers.get_list("x-repeated") == ["1", "2"]
    assert response.json() == expected


def test_bad_encoding_claims_gzip_for_a_plain_body(
    server: EmulatorServer, client: httpx.Client
) -> None:
    set_faults(server, {"kind": "bad_encoding", "nth": [1]})
    with pytest.raises(httpx.DecodingError):
        client.get("/cdrs", params={"limit": 1})
    # The body is plain JSON: not what its header says.
    set_faults(server, {"kind": "bad_encoding", "nth": [1]})
    with client.stream("GET", "/cdrs", params={"limit": 1}) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert raw.startswith(b"{")
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(raw)


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "redirect", "nth": [1]},
        {"kind": "redirect", "nth": [1], "location": "elsewhere"},
        {"kind": "redirect", "nth": [1], "location": "/v1.1/voipstudio", "status": 200},
        {"kind": "echo", "nth": [1], "status": 302},
        {"kind": "trickle", "nth": [1], "status": 400},
        {"kind": "hang", "nth": [1], "location": "/x"},
    ],
)
def test_invalid_transport_fault_rules_are_rejected(
    server: EmulatorServer, client: httpx.Client, rule: dict[str, Any]
) -> None:
    response = HTTP.patch(admin_url(server, "/config"), json={"faults": [rule]})
    assert_error(response, 400)
    assert state(server)["faults"] == []


def test_a_hang_does_not_hold_the_server(server: EmulatorServer) -> None:
    """Clients that give up on a hanging request leave the server answering others."""
    set_faults(server, {"kind": "hang", "path": "/cdrs", "every": 1, "seconds": 30})
    key = {"X-Auth-Token": server.emulator.config.api_key}
    for _ in range(3):
        with pytest.raises(httpx.ReadTimeout):
            HTTP.get(server.base_url + "/cdrs", headers=key, timeout=0.1)
    assert HTTP.get(server.base_url + "/users", headers=key, timeout=10).status_code == 200
    set_faults(server)
