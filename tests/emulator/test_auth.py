"""Authentication of the emulated API: /login, two-factor login, tokens, API keys, /me."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import pytest

from pipelines.emulator.config import DEFAULT_EMAIL, DEFAULT_PASSWORD
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, admin_url, assert_error

TWO_FACTOR_EMAIL = "2fa@example.com"
TWO_FACTOR_CODE = "123456"
API_TOKEN_FIELDS = {
    "user_id",
    "token",
    "customer_id",
    "name",
    "host",
    "user_agent",
    "expiry",
    "last_request_at",
    "created_at",
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def login(base_url: str, email: str = DEFAULT_EMAIL, password: str = DEFAULT_PASSWORD) -> str:
    response = HTTP.post(f"{base_url}/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["user_token"])


def me_status(base_url: str, token: str) -> int:
    return HTTP.get(f"{base_url}/me", headers={"X-Auth-Token": token}).status_code


def test_login_returns_the_documented_envelope(emulator: EmulatorServer) -> None:
    response = HTTP.post(
        f"{emulator.base_url}/login", json={"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"message", "user_token", "user_id"}
    assert body["message"] == "Login success"
    assert isinstance(body["user_token"], str) and len(body["user_token"]) >= 16
    assert isinstance(body["user_id"], int)
    me = HTTP.get(f"{emulator.base_url}/me", headers={"X-Auth-Token": body["user_token"]})
    assert me.status_code == 200
    assert me.json()["data"]["id"] == body["user_id"]
    cdrs = HTTP.get(
        f"{emulator.base_url}/cdrs",
        params={"limit": 1},
        headers={"X-Auth-Token": body["user_token"]},
    )
    assert cdrs.status_code == 200
    assert len(cdrs.json()["data"]) == 1


def test_each_login_issues_a_new_token(emulator: EmulatorServer) -> None:
    assert login(emulator.base_url) != login(emulator.base_url)


@pytest.mark.parametrize(
    ("email", "password"),
    [(DEFAULT_EMAIL, "wrong-password"), ("nobody@example.com", DEFAULT_PASSWORD)],
)
def test_login_with_bad_credentials_is_401(
    emulator: EmulatorServer, email: str, password: str
) -> None:
    response = HTTP.post(f"{emulator.base_url}/login", json={"email": email, "password": password})
    body = assert_error(response, 401)
    assert "user_token" not in body


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1, 2]", b'{"email": "demo@example.com"}', b'{"email": 1, "password": 2}'],
)
def test_login_with_a_malformed_body_is_400(emulator: EmulatorServer, content: bytes) -> None:
    response = HTTP.post(
        f"{emulator.base_url}/login",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400)


def test_login_accepts_only_post(emulator: EmulatorServer) -> None:
    response = HTTP.get(f"{emulator.base_url}/login")
    assert_error(response, 405)
    assert response.headers["allow"] == "POST"


def test_two_factor_login(emulator: EmulatorServer) -> None:
    first = HTTP.post(
        f"{emulator.base_url}/login",
        json={"email": TWO_FACTOR_EMAIL, "password": DEFAULT_PASSWORD},
    )
    assert first.status_code == 202
    nonce = first.json()["nonce"]
    assert isinstance(nonce, str) and nonce
    assert "user_token" not in first.json()

    wrong = HTTP.post(f"{emulator.base_url}/login2fa", json={"code": "000000", "nonce": nonce})
    assert_error(wrong, 401)
    unknown_nonce = HTTP.post(
        f"{emulator.base_url}/login2fa", json={"code": TWO_FACTOR_CODE, "nonce": "no-such-nonce"}
    )
    assert_error(unknown_nonce, 401)

    # A wrong code does not burn the nonce; the right one completes the login.
    done = HTTP.post(
        f"{emulator.base_url}/login2fa", json={"code": TWO_FACTOR_CODE, "nonce": nonce}
    )
    assert done.status_code == 200
    body = done.json()
    assert set(body) == {"message", "user_token", "user_id"}
    me = HTTP.get(f"{emulator.base_url}/me", headers={"X-Auth-Token": body["user_token"]})
    assert me.status_code == 200
    assert me.json()["data"]["email"] == TWO_FACTOR_EMAIL
    assert me.json()["data"]["id"] == body["user_id"]

    # A nonce is single use.
    again = HTTP.post(
        f"{emulator.base_url}/login2fa", json={"code": TWO_FACTOR_CODE, "nonce": nonce}
    )
    assert_error(again, 401)


def test_two_factor_account_with_wrong_password_gets_no_nonce(emulator: EmulatorServer) -> None:
    response = HTTP.post(
        f"{emulator.base_url}/login", json={"email": TWO_FACTOR_EMAIL, "password": "nope"}
    )
    body = assert_error(response, 401)
    assert "nonce" not in body


def test_x_auth_token_and_http_basic_both_authenticate(emulator: EmulatorServer) -> None:
    key = emulator.emulator.config.api_key
    by_header = HTTP.get(f"{emulator.base_url}/me", headers={"X-Auth-Token": key})
    assert by_header.status_code == 200
    user_id = by_header.json()["data"]["id"]

    by_basic = HTTP.get(f"{emulator.base_url}/me", auth=(str(user_id), key))
    assert by_basic.status_code == 200
    assert by_basic.json()["data"]["id"] == user_id

    token = login(emulator.base_url)
    by_basic_login = HTTP.get(
        f"{emulator.base_url}/cdrs", params={"limit": 1}, auth=(str(user_id), token)
    )
    assert by_basic_login.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Auth-Token": ""},
        {"X-Auth-Token": "no-such-token"},
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Bearer demo-api-key"},
    ],
    ids=["missing", "empty", "unknown", "malformed-basic", "bearer"],
)
@pytest.mark.parametrize(
    "path",
    ["/cdrs", "/cdrs/100000001", "/users", "/queues", "/me", "/ping", "/apitokens", "/nothing"],
)
def test_requests_without_valid_credentials_are_401(
    emulator: EmulatorServer, headers: dict[str, str], path: str
) -> None:
    response = HTTP.get(f"{emulator.base_url}{path}", headers=headers)
    assert_error(response, 401)


def test_basic_auth_with_another_users_id_is_401(emulator: EmulatorServer) -> None:
    key = emulator.emulator.config.api_key
    user_id = HTTP.get(f"{emulator.base_url}/me", headers={"X-Auth-Token": key}).json()["data"][
        "id"
    ]
    assert_error(HTTP.get(f"{emulator.base_url}/me", auth=(str(user_id + 1), key)), 401)
    assert_error(HTTP.get(f"{emulator.base_url}/me", auth=("not-a-number", key)), 401)


def test_me_returns_the_current_user(emulator: EmulatorServer, api: httpx.Client) -> None:
    response = api.get("/me")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "links"}
    me = body["data"]
    assert set(me) == {"id", "email", "first_name", "last_name", "customer_id"}
    assert me["email"] == DEFAULT_EMAIL
    assert isinstance(me["id"], int)
    assert isinstance(me["customer_id"], int)
    assert isinstance(me["first_name"], str) and isinstance(me["last_name"], str)
    # The account is one of the company's users.
    users = api.get("/users", params={"limit": 5000}).json()["data"]
    assert me["id"] in {user["id"] for user in users}


def test_login_token_expires_after_idle_ttl(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(rows=2000, login_ttl=1)
    idle = login(server.base_url)
    kept_alive = login(server.base_url)
    short_key = HTTP.post(
        f"{server.base_url}/apitokens",
        json={"name": "short-lived", "expiry": 1},
        headers={"X-Auth-Token": kept_alive},
    ).json()["data"]["token"]

    # Requests before the ttl reset the idle clock: at 0.6 s and 1.2 s (1.2 s after login,
    # but only 0.6 s after the previous request) the token still works.
    time.sleep(0.6)
    assert me_status(server.base_url, kept_alive) == 200
    time.sleep(0.6)
    assert me_status(server.base_url, kept_alive) == 200

    time.sleep(0.9)  # now 1.5 s since `idle` and `short_key` were last used
    assert_error(HTTP.get(f"{server.base_url}/me", headers={"X-Auth-Token": idle}), 401)
    assert me_status(server.base_url, short_key) == 401
    # The configured key never expires.
    assert me_status(server.base_url, server.emulator.config.api_key) == 200
    # Expiry is for good: a fresh request does not revive the token.
    assert me_status(server.base_url, idle) == 401


def test_api_token_lifecycle(
    emulator_factory: Callable[..., EmulatorServer],
    client_for: Callable[..., httpx.Client],
) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    me = client.get("/me").json()["data"]

    created = client.post(
        "/apitokens",
        json={"name": "Example API App", "expiry": 604800},
        headers={"User-Agent": "emulator-tests/1.0"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"data", "links"}
    data = body["data"]
    assert set(data) == API_TOKEN_FIELDS
    assert data["name"] == "Example API App"
    assert data["expiry"] == 604800
    assert data["user_id"] == me["id"]
    assert data["customer_id"] == me["customer_id"]
    assert data["user_agent"] == "emulator-tests/1.0"
    assert data["host"] == "127.0.0.1"
    assert TIMESTAMP.match(data["created_at"])
    token = data["token"]
    assert isinstance(token, str) and token

    # The new key authenticates, and using it is recorded.
    with_key = client_for(server, token)
    assert with_key.get("/cdrs", params={"limit": 1}).status_code == 200
    listed = client.get("/apitokens")
    assert listed.status_code == 200
    keys = {key["token"]: key for key in listed.json()["data"]}
    assert listed.json()["total"] == len(keys)
    assert token in keys
    assert set(keys[token]) == API_TOKEN_FIELDS
    assert TIMESTAMP.match(keys[token]["last_request_at"])

    # (name, user_id) is unique.
    duplicate = client.post("/apitokens", json={"name": "Example API App", "expiry": 0})
    assert_error(duplicate, 400)

    deleted = client.delete(f"/apitokens/{token}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(with_key.get("/cdrs", params={"limit": 1}), 401)
    assert token not in {key["token"] for key in client.get("/apitokens").json()["data"]}
    assert_error(client.delete(f"/apitokens/{token}"), 404)


@pytest.mark.parametrize(
    "payload",
    [{}, {"name": ""}, {"name": "x", "expiry": -1}, {"name": "x", "expiry": "soon"}],
)
def test_api_token_validation(
    emulator: EmulatorServer, api: httpx.Client, payload: dict[str, object]
) -> None:
    assert_error(api.post("/apitokens", json=payload), 400)


def test_api_token_routes_need_credentials_and_methods(
    emulator: EmulatorServer, api: httpx.Client
) -> None:
    assert_error(HTTP.get(f"{emulator.base_url}/apitokens"), 401)
    assert_error(api.put("/apitokens"), 405)
    assert_error(api.get("/apitokens/some-token"), 405)


def test_admin_expire_and_revoke_take_effect(
    emulator_factory: Callable[..., EmulatorServer],
    client_for: Callable[..., httpx.Client],
) -> None:
    server = emulator_factory(rows=2000)
    default_key = server.emulator.config.api_key
    token = login(server.base_url)
    created = client_for(server).post("/apitokens", json={"name": "k", "expiry": 0})
    api_key = created.json()["data"]["token"]

    expired = HTTP.post(admin_url(server, "/tokens/expire"), json={"kind": "login"})
    assert expired.status_code == 200
    assert expired.json()["expired"] >= 1
    assert me_status(server.base_url, token) == 401
    assert me_status(server.base_url, api_key) == 200
    assert me_status(server.base_url, default_key) == 200
    # A new login still works after the old tokens expired.
    assert me_status(server.base_url, login(server.base_url)) == 200

    revoked = HTTP.post(admin_url(server, "/tokens/revoke"), json={"token": api_key})
    assert revoked.json() == {"revoked": True}
    assert me_status(server.base_url, api_key) == 401
    again = HTTP.post(admin_url(server, "/tokens/revoke"), json={"token": api_key})
    assert again.json() == {"revoked": False}

    HTTP.post(admin_url(server, "/tokens/expire"), json={"kind": "api"})
    assert me_status(server.base_url, default_key) == 401
