"""A small, thread-safe HTTP client for the VoIPstudio REST API.

It authenticates with an API key or with email and password, retries what a busy or flaky API
does (429, 5xx, bodies that are not JSON, timeouts, dropped connections) with exponential
backoff and jitter, and turns everything else into one clear error. Credentials never appear in
its log lines or exceptions.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson

from pipelines.voipstudio import settings
from pipelines.voipstudio.errors import (
    ApiRequestError,
    ApiUnavailableError,
    AuthError,
    ConfigError,
    TwoFactorRequiredError,
)

log = logging.getLogger(__name__)

SECTION = f"sources.{settings.SOURCE_NAME}"


def env_variable(section: str, key: str) -> str:
    """The environment variable of a configuration key (``a.b``, ``c`` -> ``A__B__C``)."""
    return f"{section}.{key}".replace(".", "__").upper()


def fix_api_key(section: str = SECTION) -> str:
    """How to fix a refused API key, for the account configured in ``section``."""
    return (
        f"set a valid api_key in .dlt/secrets.toml [{section}] or "
        f"{env_variable(section, 'api_key')} (create one in the VoIPstudio admin panel, "
        "or with `voipstudio token create`)"
    )


Filter = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: an API key, or an email and password to log in with."""

    api_key: str | None = field(default=None, repr=False)
    email: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.api_key and not (self.email and self.password):
            raise ConfigError(
                "No VoIPstudio credentials: set api_key (recommended) or email and password in "
                ".dlt/secrets.toml [sources.voipstudio], or SOURCES__VOIPSTUDIO__API_KEY"
            )


@dataclass(frozen=True)
class RetryPolicy:
    """Retry settings.

    Attributes:
        max_attempts: attempts per request, the first one included.
        backoff_base: delay before the second attempt, doubled for each further one.
        backoff_max: the longest delay between attempts.
        retry_after_max: the longest ``Retry-After`` honoured; a longer one is cut to this.
    """

    max_attempts: int = settings.MAX_ATTEMPTS
    backoff_base: float = settings.BACKOFF_BASE_SECONDS
    backoff_max: float = settings.BACKOFF_MAX_SECONDS
    retry_after_max: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Equal jitter: half the exponential step plus a random part, so that concurrent workers
        spread out but never retry at once. A ``Retry-After`` is honoured, but never below that
        floor, so ``Retry-After: 0`` cannot turn into a hot loop.
        """
        step = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        jittered = step / 2 + rng.uniform(0, step / 2)
        if retry_after is None:
            return jittered
        return max(min(retry_after, self.retry_after_max), jittered)


def parse_retry_after(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent or
    malformed."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now() if now else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def json_object(body: bytes) -> dict[str, Any]:
    """Decode a body that must be a JSON object.

    Raises:
        ValueError: it is not JSON, or not an object.
    """
    payload = orjson.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("the JSON body is not an object")
    return payload


def page_params(
    page: int,
    limit: int,
    filters: Sequence[Filter] = (),
    sort: str | None = None,
    descending: bool = False,
) -> dict[str, Any]:
    """Query parameters of one collection page."""
    params: dict[str, Any] = {"page": page, "limit": limit}
    if filters:
        params["filter"] = orjson.dumps(list(filters)).decode()
    if sort:
        params["sort"] = sort
        params["dir"] = "DESC" if descending else "ASC"
    return params


class _RetryableError(Exception):
    """An attempt failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class VoipstudioClient:
    """The API client; one instance is shared by the worker threads of a sync."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        max_concurrency: int = settings.DEFAULT_MAX_CONCURRENCY,
        timeout: float = settings.TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        section: str = SECTION,
    ) -> None:
        # Where the account is configured: error messages say what to fix there.
        self.section = section
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url {base_url!r} is not an http(s) URL; set base_url in .dlt/config.toml "
                f"[{section}] or {env_variable(section, 'base_url')}"
            )
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random()
        self._token_lock = threading.Lock()
        self._login_token: str | None = None
        self._login_generation = 0
        self._last_nonce: str | None = None
        self._http = httpx.Client(
            base_url=self.base_url,
            verify=_ssl_context(),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            limits=httpx.Limits(
                max_connections=max_concurrency + 2, max_keepalive_connections=max_concurrency + 2
            ),
            headers={"Accept": "application/json", "User-Agent": "voipstudio-pipeline"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> VoipstudioClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- authentication ------------------------------------------------------------------------

    def _auth_headers(self) -> tuple[dict[str, str], int]:
        if self._credentials.api_key:
            return {"X-Auth-Token": self._credentials.api_key}, 0
        with self._token_lock:
            if self._login_token is None:
                self._login_token = self._login()
                self._login_generation += 1
            return {"X-Auth-Token": self._login_token}, self._login_generation

    def _relogin(self, generation: int) -> None:
        """Log in again after a 401, once per expired token however many threads saw it."""
        with self._token_lock:
            if generation == self._login_generation:
                self._login_token = self._login()
                self._login_generation += 1

    def _login(self) -> str:
        return self.login()[0]

    def login(self) -> tuple[str, int]:
        """Log in with email and password.

        Returns:
            The user token and the user id.

        Raises:
            AuthError: wrong credentials, or the account needs a second factor.
        """
        credentials = self._credentials
        status, payload = self._send(
            "POST",
            "/login",
            decode=json_object,
            json_body={"email": credentials.email, "password": credentials.password},
        )
        if status == 202:
            raise TwoFactorRequiredError(
                f"The account {credentials.email} uses two-factor authentication, which a "
                f"scheduled sync cannot answer: {fix_api_key(self.section)}",
                nonce=self._last_nonce,
            )
        if status == 401 or payload is None:
            raise AuthError(
                f"Login failed for {credentials.email} (HTTP 401): check email and password in "
                f".dlt/secrets.toml [{self.section}] or {env_variable(self.section, 'email')} / "
                "PASSWORD"
            )
        return _login_answer(payload, "/login")

    def login_two_factor(self, nonce: str, code: str) -> tuple[str, int]:
        """Complete a two-factor login: the code the user's authenticator shows, and the nonce
        ``POST /login`` answered with (:class:`TwoFactorRequiredError`).

        Returns:
            The user token and the user id.

        Raises:
            AuthError: the API refused the code.
        """
        status, payload = self._send(
            "POST", "/login2fa", decode=json_object, json_body={"code": code, "nonce": nonce}
        )
        if status != 200 or payload is None:
            raise AuthError(f"The API refused the two-factor code (HTTP {status})")
        return _login_answer(payload, "/login2fa")

    # -- requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        token: str | None = None,
        decode: Callable[[bytes], T] = json_object,  # type: ignore[assignment]
    ) -> T:
        """An authenticated request with retries (with ``token`` when given, else the configured
        credentials); a 401 with a login token logs in again once, then fails.

        Args:
            decode: turns the body of a 2xx answer into the result; a ``ValueError`` from it
                (a body that is not JSON, cut short...) is retried like a server error.
        """
        relogged = False
        while True:
            if token is not None:
                headers, generation = {"X-Auth-Token": token}, 0
            else:
                headers, generation = self._auth_headers()
            status, payload = self._send(
                method, path, decode=decode, params=params, json_body=json_body, headers=headers
            )
            if status != 401 and payload is not None:
                return payload
            if token is None and not self._credentials.api_key and not relogged:
                log.info("login token expired or was revoked; logging in again")
                self._relogin(generation)
                relogged = True
                continue
            if self._credentials.api_key and token is None:
                raise AuthError(
                    f"The API refused the API key (HTTP 401): {fix_api_key(self.section)}"
                )
            raise AuthError(
                "The API refused the login token (HTTP 401) even after logging in again: check "
                "email and password, or use an API key"
            )

    def get_page(
        self,
        path: str,
        *,
        page: int,
        limit: int,
        filters: Sequence[Filter] = (),
        sort: str | None = None,
        descending: bool = False,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of a collection.

        Returns:
            The records and the ``total`` the API reports for the whole filtered collection.
        """
        payload: dict[str, Any] = self.request(
            "GET", path, params=page_params(page, limit, filters, sort, descending)
        )
        data, total = payload.get("data"), payload.get("total")
        if not isinstance(data, list) or not isinstance(total, int):
            raise ApiRequestError(
                f"GET {path} answered without the collection envelope {{data: [...], total: N}}; "
                "the API may have changed"
            )
        return data, total

    def _send(
        self,
        method: str,
        path: str,
        *,
        decode: Callable[[bytes], T],
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, T | None]:
        """One request with retries. Returns the status and the decoded body; 202 and 401
        answers come back undecoded (None) for the caller to handle."""
        policy = self.retry
        last_reason = ""
        for attempt in range(1, policy.max_attempts + 1):
            try:
                status, body = self._attempt(method, path, params, json_body, headers)
                if status == 202:
                    # A login that needs a second factor: its nonce completes it (/login2fa).
                    self._last_nonce = _nonce(body)
                if status in (202, 401):
                    return status, None
                try:
                    return status, decode(body)
                except ValueError as exc:
                    reason = str(exc).splitlines()[0][:200]
                    raise _RetryableError(
                        f"HTTP {status} with an unreadable body: {reason}"
                    ) from None
            except _RetryableError as retry:
                last_reason = retry.reason
                if attempt == policy.max_attempts:
                    break
                delay = policy.delay(attempt, retry.retry_after, self._rng)
                log.warning(
                    "%s %s failed (%s); retry %d/%d in %.1fs",
                    method,
                    path,
                    retry.reason,
                    attempt,
                    policy.max_attempts - 1,
                    delay,
                )
                self._sleep(delay)
        raise ApiUnavailableError(
            f"{method} {self.base_url}{path} failed {policy.max_attempts} times, last with "
            f"{last_reason}; check base_url and your network, or try again later"
        )

    def _attempt(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json_body: Any,
        headers: dict[str, str] | None,
    ) -> tuple[int, bytes]:
        started = time.monotonic()
        try:
            response = self._http.request(
                method, path, params=params, json=json_body, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise _RetryableError(f"timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            # Connection refused, reset or closed mid-body: worth another try.
            raise _RetryableError(f"connection error ({type(exc).__name__}: {exc})") from None
        status = response.status_code
        if log.isEnabledFor(logging.DEBUG):
            # Method, path and query (page, limit, filter, sort): never the headers (the key or
            # token) nor the body (a login's password).
            query = " ".join(f"{key}={value}" for key, value in (params or {}).items())
            log.debug(
                "%s %s%s -> HTTP %d in %.2fs",
                method,
                path,
                f" {query}" if query else "",
                status,
                time.monotonic() - started,
            )
        if status in settings.RETRY_STATUSES:
            raise _RetryableError(
                f"HTTP {status}", parse_retry_after(response.headers.get("retry-after"))
            )
        if status < 400 or status == 401:
            return status, response.content
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise _RetryableError(f"HTTP {status} with a body that is not JSON") from None
        if status == 403:
            raise AuthError(f"The API denied access to {path} (HTTP 403): {_api_message(payload)}")
        if status == 404:
            raise ApiRequestError(
                f"{method} {self.base_url}{path} does not exist (HTTP 404): check base_url "
                "(the real API is https://l7api.com/v1.2/voipstudio)"
            )
        raise ApiRequestError(
            f"{method} {path} was rejected (HTTP {status}): {_api_message(payload)}"
        )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificates verified, ``SSL_CERT_FILE`` honoured), built
    once per process: building one loads the CA bundle, about 0.1 s, and a sync makes a
    client per resource."""
    return httpx.create_ssl_context()


def _login_answer(payload: dict[str, Any], path: str) -> tuple[str, int]:
    token, user_id = payload.get("user_token"), payload.get("user_id")
    if not isinstance(token, str) or not token or not isinstance(user_id, int):
        raise AuthError(f"POST {path} answered without user_token; the API may have changed")
    return token, user_id


def _nonce(body: bytes) -> str | None:
    try:
        nonce = json_object(body).get("nonce")
    except ValueError:
        return None
    return nonce if isinstance(nonce, str) else None


def _api_message(payload: Any) -> str:
    if isinstance(payload, dict):
        message = str(payload.get("message", ""))
        errors = payload.get("errors")
        if isinstance(errors, list) and errors:
            message += " (" + "; ".join(str(e) for e in errors) + ")"
        return message or "no message"
    return "no message"
