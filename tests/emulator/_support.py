"""Helpers shared by the emulator tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

from pipelines.emulator.server import EmulatorServer

# One client for the tests' one-off requests: creating an httpx.Client loads the CA store
# (~20 ms each time). No keep-alive, so no pooled connection outlives the server it went to.
HTTP = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def filter_param(*conditions: tuple[str, str, Any]) -> str:
    """The ``filter`` query parameter for ``(property, operator, value)`` triples."""
    return json.dumps(
        [{"property": prop, "operator": op, "value": value} for prop, op, value in conditions]
    )


def assert_error(response: httpx.Response, status: int, entries: str = "object") -> dict[str, Any]:
    """The response has ``status`` and the API's error envelope ``{message, errors}``, its
    entries ``{"message": text}`` objects (the default) or plain strings (``entries="string"``).
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message", "errors"}, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list) and body["errors"]
    if entries == "string":
        assert all(isinstance(error, str) and error for error in body["errors"]), body
    else:
        assert all(
            isinstance(error, dict) and set(error) == {"message"} and error["message"]
            for error in body["errors"]
        ), body
    return body  # type: ignore[no-any-return]


def error_texts(body: dict[str, Any]) -> list[str]:
    """The texts of an error body's entries, whatever their shape."""
    return [e["message"] if isinstance(e, dict) else e for e in body["errors"]]


def admin_url(server: EmulatorServer, path: str) -> str:
    """A URL of the admin API (``path`` starts with ``/``)."""
    return f"{server.url}/_emulator{path}"


def all_cdrs(server: EmulatorServer) -> list[dict[str, Any]]:
    """Every stored CDR, in id order, from the admin dump."""
    response = HTTP.get(admin_url(server, "/cdrs"), timeout=60)
    response.raise_for_status()
    body = response.json()
    assert body["total"] == len(body["data"])
    return body["data"]  # type: ignore[no-any-return]


def state(server: EmulatorServer) -> dict[str, Any]:
    """``GET /_emulator/state``."""
    response = HTTP.get(admin_url(server, "/state"), timeout=30)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def configure(server: EmulatorServer, **changes: Any) -> dict[str, Any]:
    """``PATCH /_emulator/config`` (must succeed); returns the new state."""
    response = HTTP.patch(admin_url(server, "/config"), json=changes, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
