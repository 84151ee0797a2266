"""The emulator's ASGI application: the VoIPstudio REST API plus a local admin API.

API routes live under ``/v1.2/voipstudio`` (and ``/v1.1/voipstudio``), like the real base URL.
The admin API under ``/_emulator`` changes faults, latency, live arrivals and data at run time;
it needs no credentials, which is why the server binds to loopback by default.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import orjson

from pipelines.emulator.auth import Account, AuthError, TokenStore
from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.faults import FaultInjector, FaultRule, Latency
from pipelines.emulator.fields import CDR_FIELDS, QUEUE_FIELDS, USER_FIELDS
from pipelines.emulator.generator import Company, generate_company, generate_new_cdrs
from pipelines.emulator.query import QueryError, parse_datetime, parse_query
from pipelines.emulator.store import Collection, Table

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_PREFIXES = ("/v1.2/voipstudio", "/v1.1/voipstudio")
ADMIN_PREFIX = "/_emulator"
CORS_PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type, X-Auth-Token, Authorization"),
    (b"access-control-max-age", b"600"),
]
DROP_LOGGER = "uvicorn.error"

log = logging.getLogger(__name__)


class _DroppedConnectionError(Exception):
    """Raised inside the app to make uvicorn close a half-sent response."""


class _HideDroppedConnections(logging.Filter):
    """Keep intentional connection drops out of the server's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _DroppedConnectionError)


logging.getLogger(DROP_LOGGER).addFilter(_HideDroppedConnections())


@dataclass
class Arrivals:
    """New CDRs appearing while clients page: ``count`` calls every ``every`` CDR list requests."""

    every: int = 0
    count: int = 0
    late_fraction: float = 0.2
    max_late_seconds: int = 4 * 3600


@dataclass
class Response:
    """An HTTP answer."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] | None = None
    rows: int = 0  # records in the body, for the latency model


def json_response(
    status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    """A JSON answer."""
    return Response(status, orjson.dumps(payload), headers)


def error_response(status: int, message: str, errors: list[str] | None = None) -> Response:
    """An answer in the API's error envelope ``{message, errors}``."""
    return json_response(status, {"message": message, "errors": errors or [message]})


class Emulator:
    """State of one emulated VoIPstudio account and the ASGI callable serving it."""

    def __init__(self, config: EmulatorConfig, company: Company | None = None) -> None:
        self.config = config
        started = time.perf_counter()
        self.company = company or generate_company(config.company_spec())
        self.cdrs = Collection(
            "cdrs", CDR_FIELDS, Table.from_columns(CDR_FIELDS, self.company.cdrs)
        )
        # The generator's columns are not needed once encoded; free them for big datasets.
        self.company.cdrs = {}
        self.collections: dict[str, Collection] = {
            "cdrs": self.cdrs,
            "users": Collection(
                "users", USER_FIELDS, Table.from_records(USER_FIELDS, self.company.users)
            ),
            "queues": Collection(
                "queues", QUEUE_FIELDS, Table.from_records(QUEUE_FIELDS, self.company.queues)
            ),
        }
        log.info(
            "emulator data ready: %d CDRs in %.1fs",
            len(self.cdrs.table),
            time.perf_counter() - started,
        )
        accounts = [
            Account(
                user_id=self.company.users[0]["id"],
                email=config.email,
                password=config.password,
                customer_id=self.company.spec.customer_id,
            )
        ]
        if config.two_factor_email:
            accounts.append(
                Account(
                    user_id=self.company.users[1]["id"],
                    email=config.two_factor_email,
                    password=config.password,
                    first_name="Second",
                    customer_id=self.company.spec.customer_id,
                    two_factor_code=config.two_factor_code,
                )
            )
        self.tokens = TokenStore(accounts, login_ttl=config.login_ttl)
        if config.api_key:
            self.tokens.add_api_key(accounts[0].user_id, config.api_key, "emulator default key", 0)
        self.faults = FaultInjector(
            [FaultRule.from_dict(f) for f in config.faults], seed=config.seed
        )
        self.latency = Latency(config.latency_per_request_ms, config.latency_per_row_ms)
        self.arrivals = Arrivals()
        self._cdr_list_requests = 0
        self._clock_base: tuple[datetime, float] | None = None
        if config.now:
            self.set_now(config.now)
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- clock and live changes -------------------------------------------------------------

    def set_now(self, text: str | None) -> None:
        """Fix the emulator's clock (it then runs on from there), or go back to the wall clock."""
        if text is None:
            self._clock_base = None
            return
        base = datetime.fromtimestamp(parse_datetime(text), tz=UTC)
        self._clock_base = (base, time.monotonic())

    def now(self) -> datetime:
        """The emulator's current time (UTC)."""
        if self._clock_base is None:
            return datetime.now(UTC).replace(microsecond=0)
        base, since = self._clock_base
        return (base + timedelta(seconds=time.monotonic() - since)).replace(microsecond=0)

    def add_generated_cdrs(
        self,
        count: int,
        late_fraction: float = 0.2,
        max_late_seconds: int = 4 * 3600,
        now: datetime | None = None,
    ) -> list[int]:
        """Let ``count`` new CDRs arrive (calls that just ended); returns their ids."""
        if count <= 0:
            return []
        with self._lock:
            columns = generate_new_cdrs(
                self.company,
                count,
                now=now or self.now(),
                late_fraction=late_fraction,
                max_late_seconds=max_late_seconds,
            )
            # The generator numbers on from its own history; records added through the admin
            # API may already hold those ids. Shift the batch above the largest stored id so
            # new CDRs keep arriving with new, larger ids (as the live API's auto-increment).
            table = self.cdrs.table
            top = int(table.ids[-1]) if len(table) else 0
            if columns["id"] and columns["id"][0] <= top:
                shift = top + 1 - columns["id"][0]
                columns["id"] = [record_id + shift for record_id in columns["id"]]
            self.cdrs.append(Table.from_columns(CDR_FIELDS, columns))
        return [int(i) for i in columns["id"]]

    def _maybe_arrive(self) -> None:
        arrivals = self.arrivals
        if arrivals.every <= 0 or arrivals.count <= 0:
            return
        with self._lock:
            self._cdr_list_requests += 1
            due = self._cdr_list_requests % arrivals.every == 0
        if due:
            self.add_generated_cdrs(
                arrivals.count, arrivals.late_fraction, arrivals.max_late_seconds
            )

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        body = await _read_body(receive)

        if path.startswith(ADMIN_PREFIX) and self.config.admin:
            try:
                response = self.admin(method, path[len(ADMIN_PREFIX) :], body)
            except Exception:
                response = _internal_error(method, path)
            await _send(send, response)
            return

        api_path = next((path[len(p) :] for p in API_PREFIXES if path.startswith(p + "/")), None)
        if api_path is None:
            await _send(send, error_response(404, "Not Found", [f"No route for {path}"]))
            return
        if method == "OPTIONS":
            # A browser's CORS preflight: the API supports cross-origin requests.
            await _send(send, Response(204, b"", CORS_PREFLIGHT_HEADERS))
            return
        with self._lock:
            self.requests[api_path] = self.requests.get(api_path, 0) + 1
        fault = self.faults.pick(api_path)
        if fault is not None and fault.kind != "stall":
            await _send_fault(send, fault)
            return
        try:
            response = self.route(method, api_path, headers, params, body, scope)
        except QueryError as exc:
            response = error_response(400, exc.message, exc.errors)
        except AuthError as exc:
            response = error_response(401, "Unauthorized", [str(exc)])
        except Exception:
            response = _internal_error(method, path)
        delay = self.latency.seconds(response.rows) + (fault.seconds if fault else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        await _send(send, response)

    # -- API routes ------------------------------------------------------------------------------

    def route(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        params: dict[str, str],
        body: bytes,
        scope: Scope,
    ) -> Response:
        """Answer one API request (faults and latency are applied by the caller)."""
        if path == "/login":
            return self._login(method, body)
        if path == "/login2fa":
            return self._login2fa(method, body)
        match = re.fullmatch(r"/(cdrs|users|queues)(?:/([^/]+))?", path)
        is_tokens = re.fullmatch(r"/apitokens(?:/([^/]+))?", path)
        if not (match or is_tokens or path == "/me"):
            return error_response(404, "Not Found", [f"No route for {path}"])
        if path == "/me":
            if method != "GET":
                return _not_allowed("GET")
            account = self.tokens.authenticate(headers)
            return json_response(200, {"data": account.me(), "links": {}})
        if is_tokens:
            return self._apitokens(method, is_tokens.group(1), headers, body, scope)
        assert match is not None
        if method != "GET":
            return _not_allowed("GET")
        self.tokens.authenticate(headers)
        collection = self.collections[match.group(1)]
        if match.group(2) is not None:
            return self._single(collection, match.group(2))
        if collection is self.cdrs:
            self._maybe_arrive()
        query = parse_query(params, collection.fields)
        table = collection.table
        positions, total = table.select(query)
        data = table.encode_page(positions, collection.extra_json)
        return Response(
            200, b'{"data":' + data + b',"total":' + str(total).encode() + b"}", rows=len(positions)
        )

    def _single(self, collection: Collection, raw_id: str) -> Response:
        table = collection.table
        position = table.position_of(int(raw_id)) if raw_id.isdigit() else None
        if position is None:
            return error_response(
                404, "Not Found", [f"No {collection.name} record with id {raw_id}"]
            )
        row = table.encode_page(_positions([position]), collection.extra_json)[1:-1]
        return Response(200, b'{"data":' + row + b',"links":{}}', rows=1)

    def _login(self, method: str, body: bytes) -> Response:
        if method != "POST":
            return _not_allowed("POST")
        payload = _json_object(body)
        email, password = payload.get("email"), payload.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            raise QueryError("Invalid request", ["email and password are required"])
        try:
            token, account = self.tokens.login(email, password)
        except AuthError:
            return error_response(401, "Invalid credentials", ["Bad email or password"])
        if token is None:
            nonce = self.tokens.start_two_factor(account)
            return json_response(
                202, {"message": "Two-factor authentication required", "nonce": nonce}
            )
        return json_response(
            200, {"message": "Login success", "user_token": token, "user_id": account.user_id}
        )

    def _login2fa(self, method: str, body: bytes) -> Response:
        if method != "POST":
            return _not_allowed("POST")
        payload = _json_object(body)
        try:
            token, account = self.tokens.finish_two_factor(
                str(payload.get("nonce", "")), str(payload.get("code", ""))
            )
        except AuthError as exc:
            return error_response(401, "Invalid credentials", [str(exc)])
        return json_response(
            200, {"message": "Login success", "user_token": token, "user_id": account.user_id}
        )

    def _apitokens(
        self, method: str, token: str | None, headers: dict[str, str], body: bytes, scope: Scope
    ) -> Response:
        allowed = "DELETE" if token is not None else "GET, POST"
        if method not in allowed.split(", "):
            return _not_allowed(allowed)
        account = self.tokens.authenticate(headers)
        customer_id = account.customer_id
        if token is not None:
            if not self.tokens.revoke(token, account.user_id):
                return error_response(404, "Not Found", ["No such API token"])
            return json_response(200, {"message": "API token deleted"})
        if method == "GET":
            keys = [t.public(customer_id) for t in self.tokens.api_tokens(account.user_id)]
            return json_response(200, {"data": keys, "total": len(keys)})
        payload = _json_object(body)
        name, expiry = payload.get("name"), payload.get("expiry", 0)
        if not isinstance(name, str) or not name.strip():
            raise QueryError("Validation failed", ["name: This value should not be blank."])
        if not isinstance(expiry, int) or isinstance(expiry, bool) or expiry < 0:
            raise QueryError("Validation failed", ["expiry: seconds as a non-negative integer"])
        client = scope.get("client")
        try:
            created = self.tokens.create_api_token(
                account, name, expiry, client[0] if client else None, headers.get("user-agent")
            )
        except ValueError as exc:
            raise QueryError("Validation failed", [f"name: {exc}"]) from None
        return json_response(200, {"data": created.public(customer_id), "links": {}})

    # -- admin routes ----------------------------------------------------------------------------

    def admin(self, method: str, path: str, body: bytes) -> Response:
        """The ``/_emulator`` API (see README: "Emulator admin API")."""
        try:
            return self._admin(method, path, body)
        except (QueryError, ValueError, TypeError, KeyError) as exc:
            message = exc.message if isinstance(exc, QueryError) else str(exc)
            return error_response(400, "Bad admin request", [message])

    def _admin(self, method: str, path: str, body: bytes) -> Response:
        if path == "/state" and method == "GET":
            return json_response(200, self.state())
        if path == "/config" and method in ("PATCH", "POST"):
            self.configure(_json_object(body))
            return json_response(200, self.state())
        if path == "/cdrs" and method == "POST":
            return self._admin_add_cdrs(_json_object(body))
        if path == "/cdrs" and method == "GET":
            table = self.cdrs.table
            data = table.encode_page(_positions(range(len(table))), self.cdrs.extra_json)
            return Response(
                200, b'{"data":' + data + b',"total":' + str(len(table)).encode() + b"}"
            )
        if path == "/cdrs/patch" and method == "POST":
            payload = _json_object(body)
            entries = payload.get("updates", [])
            if not isinstance(entries, list) or not all(
                isinstance(u, dict) and isinstance(u.get("set"), dict) for u in entries
            ):
                raise ValueError('updates must be a list of {"id": ID, "set": {field: value}}')
            updates = {int(u["id"]): dict(u["set"]) for u in entries}
            keys = self._own_keys([u["set"] for u in entries])
            missing = self.cdrs.replace_records(updates)
            self.cdrs.record_keys |= keys
            return json_response(200, {"patched": len(updates) - len(missing), "missing": missing})
        # --- dimension corrections (issue 16: a renamed user, for the incremental models) ---
        if path in ("/users/patch", "/queues/patch") and method == "POST":
            return self._admin_patch_dimension(path.split("/")[1], _json_object(body))
        # --- end dimension corrections ---
        if path == "/tokens/expire" and method == "POST":
            kind = _json_object(body).get("kind")
            return json_response(200, {"expired": self.tokens.expire(kind)})
        if path == "/tokens/revoke" and method == "POST":
            token = str(_json_object(body).get("token"))
            return json_response(200, {"revoked": self.tokens.revoke(token)})
        return error_response(404, "Not Found", [f"No admin route {method} {path}"])

    def _admin_patch_dimension(self, name: str, payload: dict[str, Any]) -> Response:
        """``POST /_emulator/users/patch`` (or ``queues``): serve those records with changed
        fields from now on (``{"updates": [{"id": ID, "set": {field: value}}]}``)."""
        entries = payload.get("updates", [])
        if not isinstance(entries, list) or not all(
            isinstance(u, dict) and isinstance(u.get("set"), dict) for u in entries
        ):
            raise ValueError('updates must be a list of {"id": ID, "set": {field: value}}')
        updates = {int(u["id"]): dict(u["set"]) for u in entries}
        missing = self.collections[name].replace_records(updates)
        return json_response(200, {"patched": len(updates) - len(missing), "missing": missing})

    def configure(self, changes: dict[str, Any]) -> None:
        """Apply run-time settings: ``faults``, ``fault_seed``, ``latency``, ``arrivals``,
        ``login_ttl``, ``now`` and ``extra_fields`` (each optional).

        Raises:
            ValueError: an unknown key or a bad value.
        """
        allowed = {
            "faults",
            "fault_seed",
            "latency",
            "arrivals",
            "login_ttl",
            "now",
            "extra_fields",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        # Validate everything before changing anything, so a rejected request changes nothing
        # (and a bad value cannot make later API requests fail).
        rules: list[FaultRule] | None = None
        if "faults" in changes:
            raw_rules = changes["faults"] or []
            if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
                raise ValueError("faults must be a list of fault objects")
            rules = [FaultRule.from_dict(rule) for rule in raw_rules]
        seed = changes.get("fault_seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError("fault_seed must be an integer")
        latency = Latency.from_dict(changes["latency"] or {}) if "latency" in changes else None
        arrivals = _arrivals(changes["arrivals"] or {}) if "arrivals" in changes else None
        login_ttl: float | None = None
        if "login_ttl" in changes:
            login_ttl = float(changes["login_ttl"])
            if not 0.0 <= login_ttl < float("inf"):
                raise ValueError("login_ttl must be a finite number of seconds >= 0")
        now = changes.get("now")
        if now is not None:
            if not isinstance(now, str):
                raise ValueError("now must be 'YYYY-MM-DD HH:MM:SS' or null")
            parse_datetime(now)
        extra: dict[str, Any] | None = None
        if "extra_fields" in changes:
            extra = changes["extra_fields"] or {}
            if not isinstance(extra, dict):
                raise ValueError("extra_fields must be an object of field name to value")
            clash = set(extra) & (set(CDR_FIELDS) | self.cdrs.record_keys)
            if clash:
                raise ValueError(f"extra_fields may not redefine existing fields {sorted(clash)}")

        if rules is not None:
            self.faults.set_rules(rules, seed)
        elif seed is not None:
            self.faults.set_rules(self.faults.rules, seed)
        if latency is not None:
            self.latency = latency
        if arrivals is not None:
            with self._lock:
                self.arrivals = arrivals
                self._cdr_list_requests = 0
        if login_ttl is not None:
            self.tokens.login_ttl = login_ttl
        if "now" in changes:
            self.set_now(now)
        if extra is not None:
            self.cdrs.extra_fields = dict(extra)

    def _own_keys(self, records: list[Any]) -> set[str]:
        """The keys of records added or patched by hand that are not CDR fields.

        Raises:
            ValueError: one of them is a run-time extra field (the record would repeat it).
        """
        keys = {key for record in records if isinstance(record, dict) for key in record}
        keys -= set(CDR_FIELDS)
        clash = keys & set(self.cdrs.extra_fields)
        if clash:
            raise ValueError(f"{sorted(clash)} are extra_fields already served with every CDR")
        return keys

    def _admin_add_cdrs(self, payload: dict[str, Any]) -> Response:
        if "records" in payload:
            records = payload["records"]
            if not isinstance(records, list):
                raise ValueError("records must be a list of CDR objects")
            keys = self._own_keys(records)
            table = Table.from_records(CDR_FIELDS, records, by_hand=True)
            with self._lock:
                self.cdrs.append(table)
            self.cdrs.record_keys |= keys
            return json_response(200, {"added": len(table), "ids": table.ids.tolist()})
        spec = payload.get("generate") or {}
        if not isinstance(spec, dict):
            raise ValueError('generate must be an object like {"count": 10}')
        now = spec.get("now")
        count = int(spec.get("count", 0))
        late_fraction = float(spec.get("late_fraction", 0.2))
        max_late_seconds = int(spec.get("max_late_seconds", 4 * 3600))
        if count < 0 or max_late_seconds < 0 or not 0.0 <= late_fraction <= 1.0:
            raise ValueError("count and max_late_seconds must be >= 0, late_fraction in [0, 1]")
        ids = self.add_generated_cdrs(
            count,
            late_fraction,
            max_late_seconds,
            datetime.fromtimestamp(parse_datetime(str(now)), tz=UTC) if now else None,
        )
        return json_response(200, {"added": len(ids), "ids": ids})

    def state(self) -> dict[str, Any]:
        """Counts, settings and request counters, for tests and the CLI."""
        table = self.cdrs.table
        return {
            "now": self.now().strftime("%Y-%m-%d %H:%M:%S"),
            "counts": {name: len(c.table) for name, c in self.collections.items()},
            "max_cdr_id": int(table.ids[-1]) if len(table) else None,
            "requests": dict(self.requests),
            "faults": [rule.to_dict() for rule in self.faults.rules],
            "latency": asdict(self.latency),
            "arrivals": asdict(self.arrivals),
            "login_ttl": self.tokens.login_ttl,
            "extra_fields": self.cdrs.extra_fields,
            "spec": {k: str(v) for k, v in asdict(self.company.spec).items()},
        }


def _arrivals(data: Any) -> Arrivals:
    """Validate the admin API's ``arrivals`` object (it is only used while answering /cdrs)."""
    if not isinstance(data, dict):
        raise ValueError("arrivals must be an object")
    allowed = {"every", "count", "late_fraction", "max_late_seconds"}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unknown arrivals keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    for key in ("every", "count", "max_late_seconds"):
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"arrivals {key} must be an integer >= 0")
    fraction = data.get("late_fraction", 0.2)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise ValueError("arrivals late_fraction must be a number")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("arrivals late_fraction must be in [0, 1]")
    return Arrivals(**data)


def _positions(values: Any) -> Any:
    import numpy as np

    return np.fromiter(values, dtype=np.int64)


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise QueryError("Invalid JSON body", [str(exc)]) from None
    if not isinstance(payload, dict):
        raise QueryError("Invalid JSON body", ["the body must be a JSON object"])
    return payload


def _internal_error(method: str, path: str) -> Response:
    """A bug of the emulator, while an exception is handled: log it, and still answer in the
    API's JSON error envelope (a client under test must see a 500 it can retry, not a dropped
    connection)."""
    log.exception("emulator bug answering %s %s", method, path)
    return error_response(500, "Internal Server Error", ["unexpected error in the emulator"])


def _not_allowed(allowed: str) -> Response:
    response = error_response(405, "Method Not Allowed", [f"Allowed: {allowed}"])
    response.headers = [(b"allow", allowed.encode())]
    return response


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Send, response: Response) -> None:
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(response.body)).encode()),
        (b"access-control-allow-origin", b"*"),
        *(response.headers or []),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _send_fault(send: Send, rule: FaultRule) -> None:
    if rule.kind == "429":
        headers = (
            [(b"retry-after", rule.retry_after.encode())] if rule.retry_after is not None else []
        )
        await _send(
            send,
            Response(
                429,
                orjson.dumps({"message": "Too Many Requests", "errors": ["Rate limit exceeded"]}),
                headers,
            ),
        )
    elif rule.kind == "non_json":
        html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
        await send(
            {
                "type": "http.response.start",
                "status": 502,
                "headers": [
                    (b"content-type", b"text/html"),
                    (b"content-length", str(len(html)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": html})
    elif rule.kind == "drop":
        promised = b'{"data":[' + b" " * 4096
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(promised) * 4).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": promised, "more_body": True})
        raise _DroppedConnectionError("connection dropped on purpose")
    else:
        status = int(rule.kind)
        await _send(
            send,
            error_response(status, "Server Error", [f"HTTP {status} injected by the emulator"]),
        )
