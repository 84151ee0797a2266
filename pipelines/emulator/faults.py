"""Fault injection and the latency model.

Faults are rules matched against API requests (never the ``/_emulator`` admin routes). A rule
fires on chosen request numbers (``nth``), every k-th request (``every``), or at random with a
probability (``rate``, from a seeded generator so runs repeat), at most ``times`` times.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import orjson

FaultKind = Literal[
    "429",
    "500",
    "502",
    "503",
    "non_json",
    "drop",
    "stall",
    # transport faults (the block at the end): how a client's transport copes with a slow,
    # silent, redirecting, throttling or leaking server
    "trickle",
    "hang",
    "throttle_400",
    "redirect",
    "echo",
    "odd_headers",
    "bad_encoding",
    # faults on a file's body (the block at the end)
    "short_body",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


@dataclass
class FaultRule:
    """One fault rule.

    Attributes:
        kind: ``429``, ``500``/``502``/``503`` (JSON error bodies), ``non_json`` (a 502 with an
            HTML body, as a proxy sends), ``drop`` (the connection closes mid-response),
            ``stall`` (the answer is held for ``seconds`` before it is sent normally), one of
            the transport faults (see ``answer_early`` and ``send_shaped``), or ``short_body``
            (a file served complete but short; see :data:`BODY_KINDS`).
        path: the rule applies to API paths starting with this (after the version prefix).
        rate: probability of firing on each matching request.
        nth: the matching requests (1-based, counted from when the rule was set) it fires on.
        every: fire on every k-th matching request.
        times: fire at most this many times (None = unbounded).
        retry_after: the ``Retry-After`` header of a 429 (sent verbatim, so it can be ``0`` or
            malformed); None sends no header.
        seconds: how long a ``stall`` holds the answer; a ``trickle``'s time between two
            bytes; how long a ``hang`` waits before it gives up (a 504).
        location: where a ``redirect`` sends the request: a path prefix replacing the version
            prefix (``/v1.1/voipstudio``) or an absolute URL prefix; the API path and the query
            are appended.
        status: the status of a ``redirect`` (301, 302, 303, 307, 308; default 307) or of an
            ``echo`` (any 4xx or 5xx; default 400).
    """

    kind: FaultKind
    path: str = "/"
    rate: float = 0.0
    nth: list[int] = field(default_factory=list)
    every: int = 0
    times: int | None = None
    retry_after: str | None = None
    seconds: float = 30.0
    location: str | None = None
    status: int | None = None
    seen: int = 0
    fired: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Validate and build a rule from its JSON form.

        Raises:
            ValueError: unknown keys or values out of range, with what is wrong.
        """
        allowed = {"kind", "path", "rate", "nth", "every", "times", "retry_after", "seconds"}
        allowed |= {"location", "status"}  # transport faults
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        kind = str(data.get("kind"))
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {list(FAULT_KINDS)}, got {kind!r}")
        rate = float(data.get("rate", 0.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        nth_values = data.get("nth", [])
        if not isinstance(nth_values, list):
            raise ValueError("nth must be a list of request numbers, e.g. [1, 3]")
        nth = [int(n) for n in nth_values]
        every = int(data.get("every", 0))
        # A rule that can never fire is a mistake in the test that set it: say so.
        if any(n < 1 for n in nth):
            raise ValueError("nth counts requests from 1")
        if every < 0:
            raise ValueError("every must be >= 0")
        if not (rate or nth or every):
            raise ValueError("a fault needs 'rate', 'nth' or 'every' to say when it fires")
        retry_after = data.get("retry_after")
        times = data.get("times")
        if times is not None and int(times) < 0:
            raise ValueError("times must be >= 0")
        seconds = float(data.get("seconds", 30.0))
        if not 0.0 <= seconds < float("inf"):
            raise ValueError("seconds must be a finite number >= 0")
        location, status = _transport_fields(kind, data)
        return cls(
            kind=kind,  # type: ignore[arg-type]
            path=str(data.get("path", "/")),
            rate=rate,
            nth=nth,
            every=every,
            times=None if times is None else int(times),
            retry_after=None if retry_after is None else str(retry_after),
            seconds=seconds,
            location=location,
            status=status,
        )

    def to_dict(self) -> dict[str, Any]:
        """The rule's JSON form, with its counters."""
        return {
            "kind": self.kind,
            "path": self.path,
            "rate": self.rate,
            "nth": self.nth,
            "every": self.every,
            "times": self.times,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "location": self.location,
            "status": self.status,
            "seen": self.seen,
            "fired": self.fired,
        }


@dataclass
class Latency:
    """Simulated server time: a fixed cost per request plus a cost per row returned."""

    per_request_ms: float = 0.0
    per_row_ms: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Latency:
        """Validate and build from the admin API's JSON form.

        Raises:
            ValueError: unknown keys, or values that are not finite numbers >= 0 (checked here
                because the delay is only computed while a request is answered).
        """
        if not isinstance(data, dict):
            raise ValueError("latency must be an object")
        allowed = {"per_request_ms", "per_row_ms"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown latency keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        values: dict[str, float] = {}
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"latency {key} must be a number, got {value!r}")
            if not 0.0 <= value < float("inf"):
                raise ValueError(f"latency {key} must be a finite number >= 0")
            values[key] = float(value)
        return cls(**values)

    def seconds(self, rows: int) -> float:
        """Delay for an answer with ``rows`` records."""
        return (self.per_request_ms + self.per_row_ms * rows) / 1000.0


class FaultInjector:
    """Holds the rules and decides, request by request, which one fires."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self.rules: list[FaultRule] = list(rules or [])
        self.seed = seed
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def set_rules(self, rules: list[FaultRule], seed: int | None = None) -> None:
        """Replace every rule. Counters and the random sequence start again (from ``seed``, else
        the start-up seed), so the same rules fire on the same requests whatever ran before."""
        with self._lock:
            self.rules = list(rules)
            if seed is not None:
                self.seed = seed
            self._random = random.Random(self.seed)

    def pick(self, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any (every matching rule counts it)."""
        chosen: FaultRule | None = None
        with self._lock:
            for rule in self.rules:
                if not path.startswith(rule.path):
                    continue
                rule.seen += 1
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                fires = (
                    rule.seen in rule.nth
                    or (rule.every > 0 and rule.seen % rule.every == 0)
                    or (rule.rate > 0 and self._random.random() < rule.rate)
                )
                if fires and chosen is None:
                    rule.fired += 1
                    chosen = rule
        return chosen


# -- transport faults ----------------------------------------------------------------------------
# Answers that test a client's transport. The app calls ``answer_early`` for the kinds of
# EARLY_KINDS (answered instead of the API, before authentication like every fault) and
# ``send_shaped`` for SHAPING_KINDS (the API's own answer, sent in an odd way).

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

EARLY_KINDS = frozenset({"hang", "throttle_400", "redirect", "echo"})
SHAPING_KINDS = frozenset({"trickle", "odd_headers", "bad_encoding"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
THROTTLE_MESSAGE = "Maximum per minute call rate exceeded"


@dataclass(frozen=True)
class FaultRequest:
    """What a transport fault may need of the request it answers.

    Attributes:
        api_path: the path after the version prefix (``/cdrs``).
        query: the raw query string.
        headers: request headers, names in lowercase.
        body: the request body.
    """

    api_path: str
    query: bytes
    headers: dict[str, str]
    body: bytes


def _transport_fields(kind: str, data: dict[str, Any]) -> tuple[str | None, int | None]:
    """``location`` and ``status`` of a rule, checked for its kind.

    Raises:
        ValueError: a value that does not fit the kind.
    """
    location = data.get("location")
    status = data.get("status")
    if kind == "redirect":
        if not isinstance(location, str) or not location.startswith(("/", "http://", "https://")):
            raise ValueError("a redirect needs a location: a path prefix or an http(s) URL prefix")
        if status is not None and status not in REDIRECT_STATUSES:
            raise ValueError(f"a redirect's status must be one of {sorted(REDIRECT_STATUSES)}")
    elif location is not None:
        raise ValueError("location is only for redirect faults")
    if kind == "echo":
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError("an echo's status must be a 4xx or 5xx status")
    elif kind != "redirect" and status is not None:
        raise ValueError("status is only for redirect and echo faults")
    return location, None if status is None else int(status)


async def _start(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _answer(
    send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps(payload)
    await _start(
        send,
        status,
        [
            (b"content-type", b"application/json; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            *(headers or []),
        ],
    )
    await send({"type": "http.response.body", "body": body})


def _entries(texts: list[str], entries: str) -> list[Any]:
    # The API's error entries in the configured shape (as app.error_response writes them).
    return [{"message": text} for text in texts] if entries == "object" else list(texts)


async def _until_disconnected(receive: Receive, disconnected: asyncio.Event) -> None:
    # The request body has been read: the next message is the client hanging up.
    while (await receive())["type"] != "http.disconnect":
        continue
    disconnected.set()


async def answer_early(
    rule: FaultRule, request: FaultRequest, send: Send, receive: Receive, entries: str = "object"
) -> None:
    """Answer a fault of :data:`EARLY_KINDS` instead of the API (``entries``: the configured
    shape of error entries, ``"object"`` or ``"string"``, for the 504 and the redirect).

    - ``hang``: no answer at all until the client hangs up; after ``seconds``, a 504 (as a
      proxy in front of a dead server would send).
    - ``throttle_400``: a throttle answered as a 400 validation error, "Maximum per minute call
      rate exceeded", its ``errors`` entries objects ``{"message"}`` (the official CLI's shape),
      with ``retry_after`` as its ``Retry-After`` if set.
    - ``redirect``: ``status`` (default 307) to ``location`` + the API path + the query.
    - ``echo``: an error (``status``, default 400) whose message and headers echo the
      request's credentials: its ``X-Auth-Token``, ``Authorization`` and body (a login's
      password), as a careless API might.
    """
    if rule.kind == "hang":
        disconnected = asyncio.Event()
        watcher = asyncio.ensure_future(_until_disconnected(receive, disconnected))
        try:
            await asyncio.wait_for(disconnected.wait(), timeout=rule.seconds)
        except TimeoutError:
            errors = _entries(["no answer"], entries)
            await _answer(send, 504, {"message": "Gateway Timeout", "errors": errors})
        finally:
            watcher.cancel()
    elif rule.kind == "throttle_400":
        headers = [] if rule.retry_after is None else [(b"retry-after", rule.retry_after.encode())]
        errors = [{"message": f"{THROTTLE_MESSAGE}, try again later", "code": "RATE"}]
        await _answer(send, 400, {"message": THROTTLE_MESSAGE, "errors": errors}, headers)
    elif rule.kind == "redirect":
        assert rule.location is not None
        target = rule.location.rstrip("/") + request.api_path
        if request.query:
            target += "?" + request.query.decode("latin-1")
        await _answer(
            send,
            rule.status or 307,
            {"message": "Moved", "errors": _entries([f"see {target}"], entries)},
            [(b"location", target.encode("latin-1"))],
        )
    else:  # echo
        token = request.headers.get("x-auth-token", "")
        authorization = request.headers.get("authorization", "")
        body = request.body.decode("utf-8", "replace")
        payload = {
            "message": f"Invalid request for token {token} on {request.api_path}",
            "errors": [f"Authorization: {authorization}", {"message": f"request body: {body}"}],
        }
        headers = [
            (b"x-echo-token", token.encode("latin-1", "replace")),
            (b"www-authenticate", f'Token realm="{token}"'.encode("latin-1", "replace")),
        ]
        await _answer(send, rule.status or 400, payload, headers)


async def send_shaped(
    rule: FaultRule,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    send: Send,
    receive: Receive,
) -> None:
    """Send the API's own answer the way a fault of :data:`SHAPING_KINDS` says.

    - ``trickle``: the answer, its body one byte every ``seconds`` (each read a client makes
      gets a byte in time, so only a deadline for the whole answer stops it); it stops when the
      client hangs up.
    - ``odd_headers``: the answer with odd but legal headers: a ``Content-Type`` that says
      HTML, sent twice, a ``Retry-After`` that is not a number, a value in Latin-1, a header
      repeated, a negative rate-limit counter.
    - ``bad_encoding``: the answer marked ``Content-Encoding: gzip``, which it is not.
    """
    if rule.kind == "trickle":
        await _start(send, status, headers)
        disconnected = asyncio.Event()
        watcher = asyncio.ensure_future(_until_disconnected(receive, disconnected))
        try:
            for index in range(len(body)):
                if disconnected.is_set():
                    return
                await send(
                    {
                        "type": "http.response.body",
                        "body": body[index : index + 1],
                        "more_body": index + 1 < len(body),
                    }
                )
                if index + 1 < len(body):
                    await asyncio.sleep(rule.seconds)
        finally:
            watcher.cancel()
        return
    if rule.kind == "odd_headers":
        odd = [(name, value) for name, value in headers if name.lower() != b"content-type"] + [
            (b"content-type", b"text/html"),
            (b"content-type", b"application/json; charset=utf-8"),
            (b"retry-after", b"soon"),
            (b"x-ratelimit-remaining", b"-1"),
            (b"x-server-name", "caf\u00e9".encode("latin-1")),
            (b"x-repeated", b"1"),
            (b"x-repeated", b"2"),
        ]
        await _start(send, status, odd)
    else:  # bad_encoding
        await _start(send, status, [*headers, (b"content-encoding", b"gzip")])
    await send({"type": "http.response.body", "body": body})


# -- faults on files -----------------------------------------------------------------------------
# On a file route (``/monitors/7.mp3``) the app makes the real answer and then cuts it
# (``app._send_cut``): ``drop`` sends the headers, with the whole file's length, and half the
# file before it closes the connection; ``short_body`` sends a complete, well-formed answer that
# holds half the file (as a server whose stored file was truncated), which only a check of the
# size against the record's ``size`` catches. Elsewhere ``drop`` is the dropped JSON answer and
# ``short_body`` does nothing.
BODY_KINDS = frozenset({"drop", "short_body"})
