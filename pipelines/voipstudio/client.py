"""A small, thread-safe HTTP client for the VoIPstudio REST API.

It authenticates with an API key or with email and password, retries what a busy or flaky API
does (429, 5xx, a throttle answered with another status, bodies that are not JSON, timeouts,
dropped connections) with exponential backoff and jitter, follows redirects on the same host
only, and turns everything else into one clear error. No request can hang: each attempt has a
deadline for the whole answer, each request a budget for all its attempts, and each account's
sync a budget of failures (see :class:`RetryPolicy` and :class:`FailureBudget`). Credentials
never appear in its log lines or exceptions (see ``redaction``).
"""

from __future__ import annotations

import email.utils
import functools
import logging
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson

from pipelines.voipstudio import redaction, settings
from pipelines.voipstudio.deadline import deadline, enforce_deadlines
from pipelines.voipstudio.errors import (
    AccessDeniedError,
    ApiRequestError,
    ApiUnavailableError,
    AuthError,
    ConfigError,
    NotFoundError,
    TwoFactorRequiredError,
)
from pipelines.voipstudio.settings import AccountSettings

log = logging.getLogger(__name__)

SECTION = f"sources.{settings.SOURCE_NAME}"


def env_variable(section: str, key: str) -> str:
    """The environment variable of a configuration key (``a.b``, ``c`` -> ``A__B__C``)."""
    return f"{section}.{key}".replace(".", "__").upper()


def check_base_url(base_url: str, section: str = SECTION) -> str:
    """``base_url`` if it is an http(s) URL with a host (and a port that can be).

    Raises:
        ConfigError: it is not, naming the key, the value and the fix.
    """
    text = str(base_url).strip()
    problem = ""
    try:
        url: httpx.URL | None = httpx.URL(text)
    except httpx.InvalidURL as error:
        url, problem = None, f" ({error})"
    if (
        url is not None
        and url.scheme in ("http", "https")
        and url.host
        and (url.port is None or 0 < url.port < 65536)
        and " " not in text
    ):
        return text
    raise ConfigError(
        f"base_url {str(base_url)!r} is not an http(s) URL{problem}; set base_url in "
        f".dlt/config.toml [{section}] or {env_variable(section, 'base_url')} (the real API is "
        f"{AccountSettings.base_url})"
    )


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
        request_budget: seconds one request may take, all its attempts and the waits between
            them included; an attempt never runs past it, and a wait that would is not made.
    """

    max_attempts: int = AccountSettings.max_attempts
    backoff_base: float = AccountSettings.backoff_base
    backoff_max: float = settings.BACKOFF_MAX_SECONDS
    retry_after_max: float = 300.0
    request_budget: float = AccountSettings.request_budget

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


class FailureBudget:
    """Seconds of failed requests one account's sync tolerates, shared by its clients.

    A failed attempt costs the time it took plus the wait before the next one; throttling (the
    API saying "slow down") is not a failure and costs nothing here. Once the budget is spent,
    the next failure ends the sync (exit 4) instead of being retried: an API that keeps failing
    cannot hold a sync for ever, even when each request eventually gets an answer.
    """

    def __init__(self, seconds: float = AccountSettings.failure_budget) -> None:
        self.seconds = seconds
        self._spent = 0.0
        self._lock = threading.Lock()

    @property
    def spent(self) -> float:
        """Seconds lost to failures so far."""
        return self._spent

    def charge(self, seconds: float) -> bool:
        """Count ``seconds`` lost; False once the budget is spent."""
        with self._lock:
            self._spent += seconds
            return self._spent <= self.seconds


def parse_retry_after(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent or
    malformed. A header sent twice (``"120, 120"`` once joined) counts by its first value."""
    if value is None:
        return None
    text = value.strip()
    for candidate in (text, text.split(",")[0]):
        try:
            seconds = float(candidate)
        except ValueError:
            continue
        return max(0.0, seconds) if seconds == seconds else None  # NaN is malformed
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now() if now else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def redirect_allowed(source: httpx.URL, target: httpx.URL) -> bool:
    """A redirect the client follows with its credentials: to the same scheme, host and port,
    or from http to https on the same host. Anything else would hand the token (sent as the
    custom header ``X-Auth-Token``, which httpx keeps on every redirect) to another server, or
    send it in clear text."""
    if target.host != source.host:
        return False
    if target.scheme == source.scheme:
        return target.port == source.port
    return source.scheme == "http" and target.scheme == "https"


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
    """An attempt failed in a way worth retrying; ``throttle``: the API asked us to slow down
    (not a failure of the API)."""

    def __init__(
        self, reason: str, retry_after: float | None = None, *, throttle: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = _one_line(reason)
        self.retry_after = retry_after
        self.throttle = throttle


class VoipstudioClient:
    """The API client; one instance is shared by the worker threads of a sync."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        max_concurrency: int = AccountSettings.max_concurrency,
        timeout: float = AccountSettings.request_timeout,
        retry: RetryPolicy | None = None,
        failure_budget: FailureBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        section: str = SECTION,
    ) -> None:
        """A client of one account.

        Args:
            base_url: the API's base URL.
            credentials: an API key, or email and password.
            max_concurrency: requests the caller makes at once (connections kept).
            timeout: seconds one attempt may take, from connecting to the answer's last byte.
            retry: how failed requests are retried (and for how long).
            failure_budget: failures tolerated, shared by the clients of one account's sync;
                default a budget of this client's own.
            sleep: how to wait between attempts.
            section: where the account is configured (error messages say what to fix there).
        """
        self.section = section
        self.base_url = check_base_url(base_url, section).rstrip("/")
        self._credentials = credentials
        redaction.register(credentials.api_key, credentials.password)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.failure_budget = failure_budget or FailureBudget()
        self._sleep = sleep
        self._rng = random.Random()
        self._token_lock = threading.Lock()
        self._login_token: str | None = None
        self._login_generation = 0
        self._redirect_logged = False
        self._last_nonce: str | None = None
        self._max_concurrency = max_concurrency
        # A plain-http base URL needs TLS only if the API redirects it to https on the same
        # host (allowed, see `redirect_allowed`): its context, which loads the CA bundle
        # (40-100 ms a process), is built then (`_use_tls`), not for every sync.
        self._tls = not self.base_url.startswith("http://")
        self._tls_lock = threading.Lock()
        self._retired: list[httpx.Client] = []
        self._http = self._new_http()

    def _new_http(self) -> httpx.Client:
        """The connection pool; verified TLS unless the client has not needed TLS yet, and then
        a context that refuses every handshake (no certificate can be verified with it)."""
        timeout = self.timeout
        http = httpx.Client(
            base_url=self.base_url,
            verify=_ssl_context() if self._tls else _no_tls_context(),
            timeout=httpx.Timeout(timeout, connect=min(timeout, settings.CONNECT_TIMEOUT_SECONDS)),
            limits=httpx.Limits(
                max_connections=self._max_concurrency + 2,
                max_keepalive_connections=self._max_concurrency + 2,
            ),
            headers={"Accept": "application/json", "User-Agent": "voipstudio-pipeline"},
        )
        if not enforce_deadlines(http):
            log.warning(
                "this version of httpx (%s) does not let a request be bounded as a whole: each "
                "read is still bounded by request_timeout, but a server that trickles its "
                "answer can hold a request for longer",
                httpx.__version__,
            )
        return http

    def _use_tls(self) -> None:
        """From now on, requests go through a pool with verified TLS (a redirect to https).
        The old pool is closed with the client: other threads may be using it."""
        with self._tls_lock:
            if self._tls:
                return
            self._tls = True
            self._retired.append(self._http)
            self._http = self._new_http()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
        for http in self._retired:
            http.close()

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
        token, _ = answer = _login_answer(payload, "/login")
        redaction.register(token)
        return answer

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
        token, _ = answer = _login_answer(payload, "/login2fa")
        redaction.register(token)
        return answer

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
        redaction.register(token)
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
        answers come back undecoded (None) for the caller to handle.

        Each attempt must be answered in full within ``timeout`` seconds; the request gives up
        after ``max_attempts`` attempts or ``request_budget`` seconds, whichever comes first,
        and at once when the sync's failure budget is spent.
        """
        policy = self.retry
        started = time.monotonic()
        give_up_at = started + policy.request_budget
        why = f"failed {_times(policy.max_attempts)}"
        last_reason = ""
        for attempt in range(1, policy.max_attempts + 1):
            attempt_started = time.monotonic()
            allowed = min(self.timeout, give_up_at - attempt_started)
            if allowed <= 0:  # a wait that overran the budget by a hair
                why = self._over_budget(attempt - 1, attempt_started - started)
                break
            try:
                with deadline(attempt_started + allowed):
                    status, body = self._attempt(method, path, params, json_body, headers, allowed)
                if status == 202:
                    # A login that needs a second factor: its nonce completes it (/login2fa).
                    self._last_nonce = _nonce(body)
                if status in (202, 401):
                    return status, None
                try:
                    return status, decode(body)
                except ValueError as exc:
                    raise _RetryableError(f"HTTP {status} with an unreadable body: {exc}") from None
            except _RetryableError as retry:
                last_reason = retry.reason
                now = time.monotonic()
                if attempt == policy.max_attempts:
                    break
                delay = policy.delay(attempt, retry.retry_after, self._rng)
                if now + delay >= give_up_at:
                    why = self._over_budget(attempt, now - started)
                    if retry.retry_after is not None and retry.retry_after >= delay:
                        why += f", and the API asked to wait {retry.retry_after:g}s (Retry-After)"
                    break
                if not retry.throttle and not self.failure_budget.charge(
                    now - attempt_started + delay
                ):
                    why = (
                        f"failed; the sync has lost {self.failure_budget.spent:.0f}s to failed "
                        f"requests, more than it tolerates (failure_budget = "
                        f"{self.failure_budget.seconds:g}s)"
                    )
                    break
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
            f"{method} {self.base_url}{path} {why}, last with {last_reason}; check base_url "
            "and your network, or try again later"
        )

    def _over_budget(self, attempts: int, seconds: float) -> str:
        return (
            f"failed {_times(attempts)} in {seconds:.0f}s of the {self.retry.request_budget:g}s "
            f"one request may take (request_budget)"
        )

    def _attempt(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json_body: Any,
        headers: dict[str, str] | None,
        allowed: float,
    ) -> tuple[int, bytes]:
        """One attempt, redirects on the same host included, within ``allowed`` seconds."""
        started = time.monotonic()
        request = self._http.build_request(
            method, path, params=params, json=json_body, headers=headers
        )
        for _ in range(settings.MAX_REDIRECTS + 1):
            response = self._exchange(request, allowed)
            following = response.next_request
            if following is None:
                break
            self._check_redirect(method, path, request.url, following.url, response.status_code)
            request = following
        else:
            raise ApiRequestError(
                f"{method} {self.base_url}{path} was redirected more than "
                f"{settings.MAX_REDIRECTS} times (a redirect loop): check base_url"
            )
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("retry-after"))
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
            raise _RetryableError(f"HTTP {status}", retry_after, throttle=status == 429)
        if status < 400 or status == 401:
            return status, response.content
        try:
            payload: Any = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            payload = None
        message = _api_message(payload)
        if status in settings.THROTTLE_STATUSES and (
            _THROTTLE.search(message) or (status == 400 and retry_after is not None)
        ):
            raise _RetryableError(
                f"HTTP {status}, throttled: {message}", retry_after, throttle=True
            )
        # 403 and 404 are final, whatever their body: retrying cannot change them.
        if status == 403:
            raise AccessDeniedError(f"The API denied access to {path} (HTTP 403): {message}")
        if status == 404:
            raise NotFoundError(
                f"{method} {self.base_url}{path} does not exist (HTTP 404): check base_url "
                f"(the real API is {AccountSettings.base_url})"
            )
        if payload is None:
            # A proxy's error page rather than the API's answer: worth another try.
            raise _RetryableError(f"HTTP {status} with a body that is not JSON")
        raise ApiRequestError(f"{method} {path} was rejected (HTTP {status}): {message}")

    def _exchange(self, request: httpx.Request, allowed: float) -> httpx.Response:
        """Send one request and read its answer, network errors turned into retries."""
        try:
            return self._http.send(request)
        except httpx.ConnectTimeout:
            raise _RetryableError("timeout connecting") from None
        except httpx.TimeoutException:
            raise _RetryableError(f"no complete answer within {allowed:.3g}s") from None
        except httpx.LocalProtocolError as exc:
            # Our side cannot send the request (a header value it cannot carry): retrying
            # cannot help. The error's text may quote the header: it is redacted.
            raise ApiRequestError(
                f"{request.method} {self.base_url} could not be sent ({exc}): check the "
                "credentials' spelling"
            ) from None
        except httpx.TransportError as exc:
            # Connection refused, reset or closed mid-body, a malformed answer: worth another try.
            raise _RetryableError(f"connection error ({type(exc).__name__}: {exc})") from None
        except httpx.DecodingError as exc:
            # A body that does not match its Content-Encoding (a broken proxy).
            raise _RetryableError(f"an answer that could not be decoded ({exc})") from None

    def _check_redirect(
        self, method: str, path: str, source: httpx.URL, target: httpx.URL, status: int
    ) -> None:
        """Follow a redirect on the same host (once logged), refuse any other.

        Raises:
            ApiRequestError: a redirect to another host, port or to plain http.
        """
        if not redirect_allowed(source, target):
            raise ApiRequestError(
                f"{method} {self.base_url}{path} was redirected (HTTP {status}) to "
                f"{_origin(target)}, another server (or plain http): the credentials were not "
                "sent there. If that is the API's new address, set base_url to it"
            )
        if target.scheme == "https" and not self._tls:
            self._use_tls()
        if not self._redirect_logged:
            self._redirect_logged = True
            log.warning(
                "%s %s is redirected (HTTP %d) to %s; followed, but set base_url to the new "
                "address to save a request each time",
                method,
                path,
                status,
                _origin(target) + target.path,
            )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificates verified, ``SSL_CERT_FILE`` honoured), built
    once per process: building one loads the CA bundle, about 0.1 s, and a sync makes a
    client per resource."""
    return httpx.create_ssl_context()


@functools.cache
def _no_tls_context() -> ssl.SSLContext:
    """A TLS context that verifies certificates and trusts none: a client that does not expect
    TLS (a plain-http base URL) refuses any handshake with it rather than skip verification."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


_THROTTLE = re.compile(settings.THROTTLE_MESSAGE, re.IGNORECASE)


def _times(count: int) -> str:
    return f"{count} time" if count == 1 else f"{count} times"


def _origin(url: httpx.URL) -> str:
    """``scheme://host[:port]`` of a URL (never its query, which could carry anything)."""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


def _one_line(text: str, limit: int = 300) -> str:
    """A text for a log line or an error: redacted first (a cut must not leave half a
    secret), then its first line, at most ``limit`` characters."""
    lines = redaction.redact(text).strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _error_text(entry: Any) -> str:
    """One entry of an error envelope's ``errors``: a string, or an object whose ``message``
    (else its JSON) is the text."""
    if isinstance(entry, dict):
        message = entry.get("message")
        if isinstance(message, str) and message:
            return message
        return orjson.dumps(entry, default=str).decode()
    return str(entry)


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
    """The message of an error envelope ``{"message": ..., "errors": [...]}``, with its
    entries, which are strings or objects ``{"message": ...}`` (both shapes are seen)."""
    if not isinstance(payload, dict):
        return "no message"
    message = payload.get("message")
    text = message if isinstance(message, str) else "" if message is None else str(message)
    errors = payload.get("errors")
    entries = errors if isinstance(errors, list) else [] if errors is None else [errors]
    details = [d for d in dict.fromkeys(_error_text(e) for e in entries) if d and d != text]
    if details:
        text = f"{text} ({'; '.join(details)})" if text else "; ".join(details)
    return _one_line(text) or "no message"
