"""The HTTP client's retry policy, error reading, redirect rule and redaction, and settings
parsing (no network needed for these)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from pipelines.voipstudio import parse_duration, parse_start, redaction
from pipelines.voipstudio.accounts import build_account
from pipelines.voipstudio.client import (
    _THROTTLE,
    Credentials,
    RetryPolicy,
    VoipstudioClient,
    _api_message,
    parse_retry_after,
    redirect_allowed,
)
from pipelines.voipstudio.deadline import _Backend
from pipelines.voipstudio.errors import ConfigError
from pipelines.voipstudio.settings import AccountSettings


def test_retry_after_zero_never_becomes_a_hot_loop() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=30)
    rng = random.Random(1)
    delays = [policy.delay(attempt, 0.0, rng) for attempt in range(1, 6)]
    # Never below half the exponential step: 0.25, 0.5, 1, 2, 4.
    for attempt, delay in enumerate(delays, start=1):
        assert delay >= 0.5 * 2 ** (attempt - 1) / 2


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(backoff_base=0.1, retry_after_max=60)
    rng = random.Random(1)
    assert policy.delay(1, 7.0, rng) == 7.0
    assert policy.delay(1, 3600.0, rng) == 60.0


def test_backoff_grows_and_is_bounded() -> None:
    policy = RetryPolicy(backoff_base=1, backoff_max=8)
    rng = random.Random(2)
    delays = [policy.delay(attempt, None, rng) for attempt in range(1, 10)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert delays[-1] >= 4


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    http_date = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, now=lambda: now) == pytest.approx(30)


def test_credentials_need_a_key_or_a_login() -> None:
    with pytest.raises(ConfigError, match="api_key"):
        Credentials()
    with pytest.raises(ConfigError):
        Credentials(email="a@b.c")
    assert "secret" not in repr(Credentials(api_key="secret"))
    assert "pw" not in repr(Credentials(email="a@b.c", password="pw"))


def test_durations_and_dates() -> None:
    assert parse_duration("6h") == timedelta(hours=6)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration(45) == timedelta(seconds=45)
    assert parse_duration("2d") == timedelta(days=2)
    with pytest.raises(ConfigError, match="lag"):
        parse_duration("six hours")
    assert parse_start("2026-01-02") == datetime(2026, 1, 2)
    assert parse_start("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5)
    with pytest.raises(ConfigError, match="start_date"):
        parse_start("02/01/2026")


def test_retry_after_odd_values() -> None:
    assert parse_retry_after("120, 120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_retry_after("") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past


def test_error_entries_are_read_as_strings_and_as_objects() -> None:
    assert _api_message({"message": "Validation error", "errors": ["SF0010 bad"]}) == (
        "Validation error (SF0010 bad)"
    )
    assert (
        _api_message(
            {"message": "Validation error", "errors": [{"message": "limit too big"}, {"code": 7}]}
        )
        == 'Validation error (limit too big; {"code":7})'
    )
    # An entry repeating the message is not said twice; a message-less envelope still speaks.
    assert _api_message({"message": "Filtration error", "errors": ["Filtration error"]}) == (
        "Filtration error"
    )
    assert _api_message({"errors": [{"message": "only this"}]}) == "only this"
    assert _api_message({"message": None, "errors": "one string"}) == "one string"
    assert _api_message(["not", "an", "envelope"]) == "no message"
    assert _api_message({}) == "no message"


def test_throttle_messages_are_recognised() -> None:
    for message in (
        "Maximum per minute call rate exceeded",
        "Rate limit exceeded",
        "Too many requests, slow down",
        "API quota exhausted",
        "Request throttled",
    ):
        assert _THROTTLE.search(message), message
    for message in ("Validation error (limit must be at most 5000)", "Filtration error"):
        assert not _THROTTLE.search(message), message


def test_redirects_are_followed_on_the_same_server_only() -> None:
    url = httpx.URL
    base = url("https://l7api.com/v1.2/voipstudio/cdrs")
    assert redirect_allowed(base, url("https://l7api.com/v1.1/voipstudio/cdrs"))
    assert redirect_allowed(url("http://l7api.com/a"), url("https://l7api.com/a"))
    assert not redirect_allowed(base, url("http://l7api.com/v1.2/voipstudio/cdrs"))  # downgrade
    assert not redirect_allowed(base, url("https://evil.example/v1.2/voipstudio/cdrs"))
    assert not redirect_allowed(base, url("https://l7api.com:8443/v1.2/voipstudio/cdrs"))
    assert not redirect_allowed(base, url("https://api.l7api.com/v1.2/voipstudio/cdrs"))


def test_every_spelling_of_a_secret_is_redacted() -> None:
    secret = 'k3y/with "quotes"+\u00e9'
    redaction.register(secret)
    for spelling in (
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        quote(secret, safe=""),
        repr(secret.encode())[2:-1],
    ):
        assert redaction.redact(f"before {spelling} after") == "before *** after", spelling
    redaction.register("abc")  # too short to be redacted without mangling every message
    assert redaction.redact("abc") == "abc"


def test_the_deadline_reaches_every_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-request deadline hooks into httpx's internals: this fails if an upgrade moved
    them (the client would then only log a warning)."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    with VoipstudioClient("https://l7api.com/v1.2/voipstudio", Credentials(api_key="k")) as c:
        http = c._http
        transports = [http._transport, *(t for t in http._mounts.values() if t is not None)]
        assert len(transports) >= 2  # the proxy's transport too
        assert all(isinstance(t._pool._network_backend, _Backend) for t in transports)


def test_keys_are_stripped_and_checked_at_configuration_time() -> None:
    values = AccountSettings(page_size=100)

    def build(api_key: str, **changes: Any) -> Any:
        settings = AccountSettings(**{**dict(values), **changes})
        return build_account("default", settings, {"api_key": api_key}, named=False)

    account = build(" abc-123\r\n")
    assert account.credentials.api_key == "abc-123"
    with pytest.raises(ConfigError, match=r"api_key \(SOURCES__VOIPSTUDIO__API_KEY\)") as bad:
        build("abc 123")
    assert "abc" not in str(bad.value) and "123" not in str(bad.value)
    with pytest.raises(ConfigError, match="request_budget"):
        build("k" * 8, request_budget=0)
    with pytest.raises(ConfigError, match="request_timeout"):
        build("k" * 8, request_timeout=-1)


def test_a_plain_http_client_builds_no_tls_context_until_redirected_to_https() -> None:
    """Loading the CA bundle costs every sync 40-100 ms; a client of an http:// API needs it
    only when the API redirects it to https on the same host (which is followed). Until then
    its pool refuses any TLS handshake instead of skipping verification."""
    import http.server
    import ssl
    import threading

    from pipelines.voipstudio import client as client_module
    from pipelines.voipstudio.errors import VoipstudioError

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            port = self.server.server_address[1]
            self.send_response(307)
            self.send_header("Location", f"https://127.0.0.1:{port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    client_module._ssl_context.cache_clear()
    refusing = client_module._no_tls_context()
    assert refusing.verify_mode == ssl.CERT_REQUIRED and refusing.check_hostname
    assert refusing.get_ca_certs() == []
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/v1.2/voipstudio"
        retry = RetryPolicy(max_attempts=1, request_budget=5.0)
        with VoipstudioClient(base, Credentials(api_key="k" * 8), retry=retry) as plain:
            assert client_module._ssl_context.cache_info().currsize == 0
            first = plain._http
            # The https side is this same plain-http server: the handshake fails, but the
            # redirect was followed with verified TLS.
            with pytest.raises(VoipstudioError):
                plain.get_page("/users", page=1, limit=1)
            assert client_module._ssl_context.cache_info().currsize == 1
            assert plain._http is not first
        server.shutdown()
    client_module._ssl_context.cache_clear()
    with VoipstudioClient("https://l7api.com/v1.2/voipstudio", Credentials(api_key="k")):
        assert client_module._ssl_context.cache_info().currsize == 1
