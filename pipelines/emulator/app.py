"""The emulator's ASGI application: the VoIPstudio REST API plus a local admin API.

API routes live under ``/v1.2/voipstudio`` (and ``/v1.1/voipstudio``), like the real base URL.
The admin API under ``/_emulator`` changes faults, latency, live arrivals and data at run time;
it needs no credentials, which is why the server binds to loopback by default.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import orjson

from pipelines.emulator.auth import Account, AuthError, TokenStore
from pipelines.emulator.config import (
    EmulatorConfig,
    check_error_entries,
    check_flag,
    check_page_cap,
    check_total_cap,
)
from pipelines.emulator.faults import (
    BODY_KINDS,
    EARLY_KINDS,
    SHAPING_KINDS,
    FaultInjector,
    FaultRequest,
    FaultRule,
    Latency,
    answer_early,
    send_shaped,
)
from pipelines.emulator.fields import (
    APITOKEN_FIELDS,
    CDR_FIELDS,
    COLLECTIONS,
    QUEUE_FIELDS,
    USER_FIELDS,
    FileRoute,
)
from pipelines.emulator.files import (
    MEDIA_TYPES,
    RangeNotSatisfiableError,
    byte_range,
    file_bytes,
)
from pipelines.emulator.generator import Company, generate_company, generate_new_calls
from pipelines.emulator.history import CALL_DERIVED, HISTORY_COLLECTIONS, History
from pipelines.emulator.localtime import to_wall_clock
from pipelines.emulator.query import (
    KeyScope,
    QueryError,
    parse_datetime,
    parse_includes,
    parse_query,
)
from pipelines.emulator.store import Collection, IntArray, Table

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_PREFIXES = ("/v1.2/voipstudio", "/v1.1/voipstudio")
ADMIN_PREFIX = "/_emulator"
# Routes answered without credentials; every other API path, known or not, needs them.
PUBLIC_ROUTES = ("/login", "/login2fa")
COLLECTION_ROUTE = re.compile(r"/([a-z0-9_]+)(?:/([^/]+))?")
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
    """New records appearing while clients page: ``count`` records of ``collection`` arrive on
    every ``every``-th list request of that collection."""

    every: int = 0
    count: int = 0
    late_fraction: float = 0.2
    max_late_seconds: int = 4 * 3600
    collection: str = "cdrs"


JSON_TYPE = b"application/json; charset=utf-8"


@dataclass
class Response:
    """An HTTP answer."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] | None = None
    rows: int = 0  # records in the body, for the latency model
    content_type: bytes = JSON_TYPE
    file: bool = False  # the body is a record's file (faults on files cut it)


def json_response(
    status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    """A JSON answer."""
    return Response(status, orjson.dumps(payload), headers)


def error_response(
    status: int, message: str, errors: list[str] | None = None, entries: str = "object"
) -> Response:
    """An answer in the API's error envelope ``{message, errors}``.

    Args:
        entries: ``"object"``: each entry of ``errors`` is ``{"message": text}``;
            ``"string"``: each entry is the text itself.
    """
    texts = errors or [message]
    listed: list[Any] = [{"message": text} for text in texts] if entries == "object" else texts
    return json_response(status, {"message": message, "errors": listed})


class Emulator:
    """State of one emulated VoIPstudio account and the ASGI callable serving it."""

    def __init__(self, config: EmulatorConfig, company: Company | None = None) -> None:
        self.config = config
        started = time.perf_counter()
        self.company = company or generate_company(config.company_spec())
        if config.calldate_timezone != "UTC":
            # An API answering in local time (see localtime.py).
            self.company.cdrs["calldate"] = to_wall_clock(
                self.company.cdrs["calldate"], config.calldate_timezone
            )
        # The rest of the call history (SMS, recordings, voicemail, ...), from the calls.
        self.history = History(self.company)
        for name, columns in self.history.records.items():
            self._wall_clock(name, columns)
        # The records of each collection declared in fields.COLLECTIONS (a collection without
        # records here starts empty); API keys are read from the token store on every request.
        tables = {
            "cdrs": Table.from_columns(CDR_FIELDS, self.company.cdrs),
            "users": Table.from_records(USER_FIELDS, self.company.users),
            "queues": Table.from_records(QUEUE_FIELDS, self.company.queues),
        }
        for name, columns in self.history.records.items():
            tables[name] = Table.from_columns(COLLECTIONS[name].fields, columns)
        self.history.records = {}
        self._live_tables: dict[str, Callable[[], Table]] = {"apitokens": self._apitoken_table}
        # The generator's columns are not needed once encoded; free them for big datasets.
        self.company.cdrs = {}
        self.collections: dict[str, Collection] = {}
        for name, spec in COLLECTIONS.items():
            table = tables[name] if name in tables else Table.empty(spec.fields)
            self.collections[name] = Collection(name, spec, table)
        self.cdrs = self.collections["cdrs"]
        self.collections["queues"].link_attributes = {
            link: {"status": status} for link, status in self.company.agent_status.items()
        }
        log.info(
            "emulator data ready: %d CDRs in %.1fs",
            len(self.cdrs.table),
            time.perf_counter() - started,
        )
        self.tokens = TokenStore(
            self._accounts(), login_ttl=config.login_ttl, token_format=config.token_format()
        )
        main_user = self.company.users[0]["id"]
        if config.api_key:
            self.tokens.add_api_key(main_user, config.api_key, "emulator default key", 0)
        if config.user_api_key:
            plain = next(a for a in self.tokens.accounts.values() if not a.admin)
            self.tokens.add_api_key(plain.user_id, config.user_api_key, "emulator user key", 0)
        self.page_cap = config.page_cap
        self.total_cap = config.total_cap
        self.ignore_sort = config.ignore_sort
        self.error_entries = config.error_entries
        self.faults = FaultInjector(
            [FaultRule.from_dict(f) for f in config.faults], seed=config.seed
        )
        self.latency = Latency(config.latency_per_request_ms, config.latency_per_row_ms)
        # Live arrivals per collection, and the list requests counted for each.
        self.arrivals: dict[str, Arrivals] = {}
        self._list_requests: dict[str, int] = {}
        self.file_ranges = config.file_ranges
        # Each user's numbers, for the collections a plain user's key sees by number.
        self._numbers = {
            user["id"]: (user["ext"], did, did.lstrip("+"))
            for user, did in zip(self.company.users, self.company.user_dids, strict=True)
        }
        self._clock_base: tuple[datetime, float] | None = None
        if config.now:
            self.set_now(config.now)
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()

    def _accounts(self) -> list[Account]:
        """The users who can log in or hold the configured keys.

        The main account and the two-factor account are admins; the user of ``user_api_key``
        is not.

        Raises:
            ValueError: ``user_api_key_user_id`` is not a user of the company, or is the main
                account's user.
        """
        config, users = self.config, self.company.users
        customer_id = self.company.spec.customer_id
        accounts = [
            Account(
                user_id=users[0]["id"],
                email=config.email,
                password=config.password,
                customer_id=customer_id,
            )
        ]
        if config.two_factor_email:
            accounts.append(
                Account(
                    user_id=users[1]["id"],
                    email=config.two_factor_email,
                    password=config.password,
                    first_name="Second",
                    customer_id=customer_id,
                    two_factor_code=config.two_factor_code,
                )
            )
        if not config.user_api_key:
            return accounts
        plain_id = config.user_api_key_user_id
        if plain_id is None:
            plain_id = users[min(2, len(users) - 1)]["id"]
        if plain_id == users[0]["id"]:
            raise ValueError("user_api_key_user_id must not be the main (admin) account's user")
        existing = next((a for a in accounts if a.user_id == plain_id), None)
        if existing is not None:
            existing.admin = False
            return accounts
        user = next((u for u in users if u["id"] == plain_id), None)
        if user is None:
            ids = f"{users[0]['id']}..{users[-1]['id']}"
            raise ValueError(f"user_api_key_user_id {plain_id} is not a user id ({ids})")
        accounts.append(
            Account(
                user_id=plain_id,
                email=user["email"],
                password=config.password,
                first_name=user["first_name"],
                last_name=user["last_name"],
                customer_id=customer_id,
                admin=False,
            )
        )
        return accounts

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
        """Let ``count`` new CDRs arrive (calls that just ended, with their recordings and
        voicemail); returns the CDR ids."""
        added = self.add_generated("cdrs", count, late_fraction, max_late_seconds, now)
        return added.get("cdrs", [])

    def add_generated(
        self,
        name: str,
        count: int,
        late_fraction: float = 0.2,
        max_late_seconds: int = 4 * 3600,
        now: datetime | None = None,
    ) -> dict[str, list[int]]:
        """Let ``count`` new records of the collection ``name`` arrive.

        CDRs: exactly ``count`` rows, of calls that just ended, with those calls' recordings
        and voicemail. Recordings or voicemail: at least ``count``, of new calls (whose CDRs
        arrive with them). Any other collection with a date field: exactly ``count`` records.
        A share ``late_fraction`` of the records is dated up to ``max_late_seconds`` ago.

        Returns:
            The ids added, per collection.
        """
        if count <= 0:
            return {}
        moment = now or self.now()
        with self._lock:
            # Records added by hand may hold the ids the history would use next.
            for other in HISTORY_COLLECTIONS:
                table = self.collections[other].table
                self.history.shift_ids(other, int(table.ids[-1]) if len(table) else 0)
            batches: list[dict[str, dict[str, list[Any]]]] = []
            if name == "cdrs":
                batches.append(self._new_calls(count, moment, late_fraction, max_late_seconds))
            elif name in CALL_DERIVED:
                # Calls until enough of them were recorded (or left a voicemail).
                got = 0
                for _ in range(100):
                    batch = self._new_calls(max(20, 8 * count), moment, late_fraction, 0)
                    batches.append(batch)
                    got += len(batch[name]["id"])
                    if got >= count:
                        break
            else:
                epoch = int(moment.timestamp())
                columns = self.history.arrivals(name, count, epoch, late_fraction, max_late_seconds)
                batches.append({name: columns})
            added: dict[str, list[int]] = {}
            for batch in batches:
                for target, columns in batch.items():
                    added.setdefault(target, []).extend(self._append_generated(target, columns))
        return added

    def _new_calls(
        self, rows: int, moment: datetime, late_fraction: float, max_late_seconds: int
    ) -> dict[str, dict[str, list[Any]]]:
        """CDRs of calls that end around ``moment``, and their recordings and voicemail."""
        cdrs, legs = generate_new_calls(
            self.company,
            rows,
            now=moment,
            late_fraction=late_fraction,
            max_late_seconds=max_late_seconds,
        )
        batch = {"cdrs": cdrs, **self.history.from_calls(legs, int(moment.timestamp()))}
        for name, columns in batch.items():
            self._wall_clock(name, columns)
        return batch

    def _wall_clock(self, name: str, columns: dict[str, list[Any]]) -> None:
        """Serve the collection's date (its cursor: ``calldate``, ``timestamp``, ...) as the
        wall clock of ``calldate_timezone`` when the API is told to answer in local time."""
        cursor = COLLECTIONS[name].cursor
        if self.config.calldate_timezone != "UTC" and cursor is not None:
            columns[cursor] = to_wall_clock(columns[cursor], self.config.calldate_timezone)

    def _append_generated(self, name: str, columns: dict[str, list[Any]]) -> list[int]:
        """Store generated records of ``name``; returns their ids."""
        if not columns["id"]:
            return []
        collection = self.collections[name]
        # The generator numbers on from its own history; records added through the admin API
        # may already hold those ids. Shift the batch above the largest stored id so new
        # records keep arriving with new, larger ids (as the live API's auto-increment).
        table = collection.table
        top = int(table.ids[-1]) if len(table) else 0
        if columns["id"][0] <= top:
            shift = top + 1 - columns["id"][0]
            columns["id"] = [record_id + shift for record_id in columns["id"]]
        collection.append(Table.from_columns(collection.fields, columns))
        return [int(i) for i in columns["id"]]

    def _maybe_arrive(self, name: str) -> None:
        rule = self.arrivals.get(name)
        if rule is None or rule.every <= 0 or rule.count <= 0:
            return
        with self._lock:
            seen = self._list_requests.get(name, 0) + 1
            self._list_requests[name] = seen
        if seen % rule.every == 0:
            self.add_generated(name, rule.count, rule.late_fraction, rule.max_late_seconds)

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
                response = self._internal_error(method, path)
            await _send(send, response)
            return

        api_path = next((path[len(p) :] for p in API_PREFIXES if path.startswith(p + "/")), None)
        if api_path is None:
            await _send(send, self.error(404, "Not Found", [f"No route for {path}"]))
            return
        if method == "OPTIONS":
            # A browser's CORS preflight: the API supports cross-origin requests.
            await _send(send, Response(204, b"", CORS_PREFLIGHT_HEADERS))
            return
        with self._lock:
            self.requests[api_path] = self.requests.get(api_path, 0) + 1
        fault = self.faults.pick(api_path)
        # Transport faults (faults.py): answered instead of the API, or the API's answer shaped.
        if fault is not None and fault.kind in EARLY_KINDS:
            request = FaultRequest(api_path, scope["query_string"], headers, body)
            await answer_early(fault, request, send, receive, self.error_entries)
            return
        # Faults on a file's body (a drop mid-file, a short file) cut the real file: the answer
        # is made first. A drop elsewhere is the usual dropped answer; a short body, nothing.
        on_file = fault is not None and fault.kind in BODY_KINDS and self._is_file(api_path)
        if fault is not None and fault.kind in BODY_KINDS and not on_file and fault.kind != "drop":
            fault = None
        if fault is not None and fault.kind not in ("stall", *SHAPING_KINDS) and not on_file:
            await _send_fault(send, fault, self.error_entries)
            return
        try:
            response = self.route(method, api_path, headers, params, body, scope)
        except QueryError as exc:
            response = self.error(400, exc.message, exc.errors)
        except AuthError as exc:
            response = self.error(401, "Unauthorized", [str(exc)])
        except Exception:
            response = self._internal_error(method, path)
        stall = fault.seconds if fault is not None and fault.kind == "stall" else 0.0
        delay = self.latency.seconds(response.rows) + stall
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is not None and fault.kind in SHAPING_KINDS:
            await send_shaped(
                fault, response.status, _headers(response), response.body, send, receive
            )
            return
        if on_file and fault is not None:
            if response.file:
                await _send_cut(send, response, fault.kind)
                return
            if fault.kind == "drop":
                await _send_fault(send, fault, self.error_entries)
                return
        await _send(send, response)

    def _is_file(self, api_path: str) -> bool:
        """Whether ``api_path`` is a file route (``/monitors/7.mp3``)."""
        match = COLLECTION_ROUTE.fullmatch(api_path)
        if match is None or match.group(1) not in self.collections:
            return False
        route = self.collections[match.group(1)].spec.file
        return _file_id(route, match.group(2)) is not None

    # -- API routes ------------------------------------------------------------------------------

    def error(self, status: int, message: str, errors: list[str] | None = None) -> Response:
        """An answer in the API's error envelope, its entries shaped as configured."""
        return error_response(status, message, errors, self.error_entries)

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
        # An authenticated API checks credentials before it says whether a route exists.
        account = self.tokens.authenticate(headers)
        if path in ("/ping", "/me"):
            if method != "GET":
                return self._not_allowed("GET")
            if path == "/ping":
                return json_response(200, {"data": {"response": "Pong"}})
            return json_response(200, {"data": account.me(), "links": {}})
        match = COLLECTION_ROUTE.fullmatch(path)
        collection = self.collections.get(match.group(1)) if match else None
        if match is None or collection is None:
            return self.error(404, "Not Found", [f"No route for {path}"])
        item = match.group(2)
        if collection.name == "apitokens":
            return self._apitokens(method, item, account, headers, params, body, scope)
        spec = collection.spec
        file_id = _file_id(spec.file, item)
        if file_id is not None:
            if method not in ("GET", "HEAD"):
                return self._not_allowed("GET, HEAD")
            return self._file(collection, file_id, account, headers)
        if spec.deletable and method == "DELETE":
            return self._delete(collection, item, account, params)
        if method != "GET":
            return self._not_allowed("GET, DELETE" if spec.deletable else "GET")
        if item is not None:
            return self._single(collection, item, account, params)
        self._maybe_arrive(collection.name)
        return self._list(collection, params, account)

    def _table(self, collection: Collection) -> Table:
        """The collection's current snapshot (API keys: built from the token store)."""
        live = self._live_tables.get(collection.name)
        return live() if live is not None else collection.table

    def _scope(self, collection: Collection, account: Account) -> KeyScope | None:
        """What the account's keys may see of the collection; None for all of it."""
        spec = collection.spec
        if not spec.scoped or (account.admin and not spec.own_only):
            return None
        numbers = self._numbers.get(account.user_id, ()) if spec.owner_numbers else ()
        return KeyScope(
            spec.owners,
            account.user_id,
            number_fields=spec.owner_numbers,
            numbers=numbers,
            shared=spec.shared,
            nobody=spec.admin_only,
        )

    def _list(self, collection: Collection, params: dict[str, str], account: Account) -> Response:
        """``GET /NAME``: filter, sort, group, page, scope and include, for every collection."""
        query = parse_query(params, collection.spec, self.page_cap)
        query = replace(query, scope=self._scope(collection, account))
        if self.ignore_sort:
            # An API that ignores the sort it was asked for serves its default order.
            query = replace(query, sort=None, descending=True)
        table = self._table(collection)
        positions, total = table.select(query)
        if self.total_cap is not None:
            # A search-backed API's capped count: the pages still hold every record.
            total = min(total, self.total_cap)
        data = self._encode(collection, table, positions, query.include, query.sparse)
        return Response(
            200, b'{"data":' + data + b',"total":' + str(total).encode() + b"}", rows=len(positions)
        )

    def _single(
        self, collection: Collection, raw_id: str, account: Account, params: dict[str, str]
    ) -> Response:
        """``GET /NAME/{id}``; a record the key may not see is 403, as the API documents."""
        include, sparse = parse_includes(params, collection.spec)
        table = self._table(collection)
        position = table.position_of(int(raw_id)) if raw_id.isdigit() else None
        if position is None:
            return self.error(404, "Not Found", [f"No {collection.name} record with id {raw_id}"])
        visible = table.visible(self._scope(collection, account))
        if visible is not None and not visible[position]:
            return self.error(
                403, "Access denied", [f"This key cannot see {collection.name} {raw_id}"]
            )
        row = self._encode(collection, table, _positions([position]), include, sparse)[1:-1]
        return Response(200, b'{"data":' + row + b',"links":{}}', rows=1)

    # -- files and deletions of the history collections ---------------------------------------

    def _file(
        self, collection: Collection, raw_id: str, account: Account, headers: dict[str, str]
    ) -> Response:
        """``GET /NAME/{id}.EXT``: the record's file (see ``files.py``), whole or a byte range."""
        route = collection.spec.file
        assert route is not None
        table = collection.table
        position = table.position_of(int(raw_id)) if raw_id.isdigit() else None
        if position is None:
            return self.error(404, "Not Found", [f"No {collection.name} record with id {raw_id}"])
        visible = table.visible(self._scope(collection, account))
        if visible is not None and not visible[position]:
            return self.error(
                403, "Access denied", [f"This key cannot see {collection.name} {raw_id}"]
            )
        record = table.record(position)
        if route.pending is not None and record.get(route.pending[0]) == route.pending[1]:
            # [code: the official CLI skips invoices whose error says "not completed yet"]
            return self.error(
                400,
                "Transaction not completed yet",
                [f"{collection.name} {raw_id} is not completed yet: it has no file"],
            )
        body = file_bytes(collection.name, route, record)
        status, extra = 200, []
        if self.file_ranges:
            extra.append((b"accept-ranges", b"bytes"))
            try:
                wanted = byte_range(headers.get("range"), len(body))
            except RangeNotSatisfiableError:
                response = self.error(
                    416, "Range Not Satisfiable", [f"the file has {len(body)} bytes"]
                )
                response.headers = [(b"content-range", f"bytes */{len(body)}".encode())]
                return response
            if wanted is not None:
                first, last = wanted
                extra.append((b"content-range", f"bytes {first}-{last}/{len(body)}".encode()))
                status, body = 206, body[first : last + 1]
        media_type = MEDIA_TYPES[route.extension].encode()
        return Response(status, body, extra, rows=1, content_type=media_type, file=True)

    def _delete(
        self,
        collection: Collection,
        item: str | None,
        account: Account,
        params: dict[str, str],
    ) -> Response:
        """``DELETE /NAME/{id,id,...}`` (204; nothing is deleted if one is unknown, 404, or not
        the key's, 403) and ``DELETE /NAME?filter=...`` (202: every match the key may see)."""
        table = collection.table
        scope = self._scope(collection, account)
        visible = table.visible(scope)
        if item is None:
            query = parse_query(params, collection.spec, self.page_cap)
            query = replace(query, scope=scope, page=1, limit=max(len(table), 1), group_by=None)
            positions, total = table.select(query)
            collection.delete_records(table.ids[positions].tolist())
            return json_response(202, {"message": "Accepted", "total": total})
        parts = item.split(",")
        if not all(part.strip().isdigit() for part in parts):
            return self.error(404, "Not Found", [f"No {collection.name} record with id {item}"])
        wanted = [int(part) for part in parts]
        for record_id in wanted:
            position = table.position_of(record_id)
            if position is None:
                return self.error(
                    404, "Not Found", [f"No {collection.name} record with id {record_id}"]
                )
            if visible is not None and not visible[position]:
                return self.error(
                    403, "Access denied", [f"This key cannot see {collection.name} {record_id}"]
                )
        collection.delete_records(wanted)
        return Response(204, b"")

    def _encode(
        self,
        collection: Collection,
        table: Table,
        positions: IntArray,
        include: tuple[str, ...],
        sparse: dict[str, tuple[str, ...]],
    ) -> bytes:
        """The JSON array of the records at ``positions``, with ``include``d records in place of
        their ids (``sparse``: the keys kept of each, as ``fields[NAME]=a,b`` asked)."""
        if not include:
            return table.encode_page(positions, collection.extra_json)
        records = [table.record(p) | collection.extra_fields for p in positions.tolist()]
        for name in include:
            spec = collection.spec.includes[name]
            target = self.collections[spec.collection].table
            keep = sparse.get(name)
            for record in records:
                linked = record.get(spec.field)
                if not isinstance(linked, list):
                    continue
                included = []
                for linked_id in linked:
                    position = target.position_of(linked_id) if isinstance(linked_id, int) else None
                    item = target.record(position) if position is not None else {"id": linked_id}
                    item |= collection.link_attributes.get((record["id"], linked_id), {})
                    if keep:
                        item = {key: item[key] for key in keep if key in item}
                    included.append(item)
                record[spec.field] = included
        return orjson.dumps(records)

    def _login(self, method: str, body: bytes) -> Response:
        if method != "POST":
            return self._not_allowed("POST")
        payload = _json_object(body)
        email, password = payload.get("email"), payload.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            raise QueryError("Invalid request", ["email and password are required"])
        try:
            token, account = self.tokens.login(email, password)
        except AuthError:
            return self.error(401, "Invalid credentials", ["Bad email or password"])
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
            return self._not_allowed("POST")
        payload = _json_object(body)
        try:
            token, account = self.tokens.finish_two_factor(
                str(payload.get("nonce", "")), str(payload.get("code", ""))
            )
        except AuthError as exc:
            return self.error(401, "Invalid credentials", [str(exc)])
        return json_response(
            200, {"message": "Login success", "user_token": token, "user_id": account.user_id}
        )

    def _apitoken_table(self) -> Table:
        """Every live API key as the API shows it, oldest first (filtered to the caller's own by
        the collection's scope)."""
        keys = self.tokens.api_tokens()
        customer_id = self.company.spec.customer_id
        return Table.from_records(
            APITOKEN_FIELDS,
            [key.public(customer_id) for key in keys],
            by_hand=True,
            keys=[key.sequence for key in keys],
        )

    def _apitokens(
        self,
        method: str,
        token: str | None,
        account: Account,
        headers: dict[str, str],
        params: dict[str, str],
        body: bytes,
        scope: Scope,
    ) -> Response:
        allowed = "DELETE" if token is not None else "GET, POST"
        if method not in allowed.split(", "):
            return self._not_allowed(allowed)
        if token is not None:
            if not self.tokens.revoke(token, account.user_id):
                return self.error(404, "Not Found", ["No such API token"])
            return Response(204, b"")
        if method == "GET":
            return self._list(self.collections["apitokens"], params, account)
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
        return json_response(201, {"data": created.public(account.customer_id), "links": {}})

    def _internal_error(self, method: str, path: str) -> Response:
        """A bug of the emulator, while an exception is handled: log it, and still answer in
        the API's JSON error envelope (a client under test must see a 500 it can retry, not a
        dropped connection)."""
        log.exception("emulator bug answering %s %s", method, path)
        return self.error(500, "Internal Server Error", ["unexpected error in the emulator"])

    def _not_allowed(self, allowed: str) -> Response:
        response = self.error(405, "Method Not Allowed", [f"Allowed: {allowed}"])
        response.headers = [(b"allow", allowed.encode())]
        return response

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
        if path in ("/cdrs/update", "/cdrs/delete") and method == "POST":
            return self._admin_change_stored_cdrs(path, _json_object(body))
        if path == "/cdrs/raw" and method == "POST":
            return self._admin_raw_values(_json_object(body))
        if path == "/tokens/expire" and method == "POST":
            kind = _json_object(body).get("kind")
            return json_response(200, {"expired": self.tokens.expire(kind)})
        if path == "/tokens/revoke" and method == "POST":
            token = str(_json_object(body).get("token"))
            return json_response(200, {"revoked": self.tokens.revoke(token)})
        if path.startswith("/collections/"):
            return self._admin_collection(method, path[len("/collections/") :], body)
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

    # -- admin: any collection's records ---------------------------------------------------------

    def _admin_collection(self, method: str, name: str, body: bytes) -> Response:
        """``GET /_emulator/collections/NAME``: every record as served now; ``POST``:
        ``{"records": [...]}`` (given verbatim, new integer ids) or ``{"generate": {"count",
        "late_fraction", "max_late_seconds", "now"}}`` (records that just arrived; see
        :meth:`add_generated`)."""
        collection = self.collections.get(name)
        if collection is None or name in self._live_tables:
            return error_response(404, "Not Found", [f"No collection {name!r}"])
        if method == "GET":
            table = collection.table
            data = table.encode_page(_positions(range(len(table))), collection.extra_json)
            total = str(len(table)).encode()
            return Response(200, b'{"data":' + data + b',"total":' + total + b"}")
        if method != "POST":
            return error_response(405, "Method Not Allowed", ["Allowed: GET, POST"])
        payload = _json_object(body)
        if name == "cdrs" and "records" in payload:
            return self._admin_add_cdrs(payload)
        if "records" in payload:
            records = payload["records"]
            if not isinstance(records, list):
                raise ValueError(f"records must be a list of {name} objects")
            table = Table.from_records(collection.fields, records, by_hand=True)
            with self._lock:
                collection.append(table)
            collection.record_keys |= {
                key for record in records for key in record if key not in collection.fields
            }
            return json_response(200, {"added": len(table), "ids": table.ids.tolist()})
        spec = payload.get("generate") or {}
        if not isinstance(spec, dict):
            raise ValueError('generate must be an object like {"count": 10}')
        count, late_fraction, max_late_seconds, now = _generate_spec(spec)
        added = self.add_generated(name, count, late_fraction, max_late_seconds, now)
        ids = added.get(name, [])
        return json_response(200, {"added": len(ids), "ids": ids, "collections": added})

    # -- stored-data changes: corrected and deleted CDRs (voipstudio reconcile) -------------

    def _admin_change_stored_cdrs(self, path: str, payload: dict[str, Any]) -> Response:
        """``POST /cdrs/update`` ``{"updates": [{"id", "set": {...}}]}`` changes stored values
        (filters, sort and ``total`` see them, unlike ``/cdrs/patch``); ``POST /cdrs/delete``
        ``{"ids": [...]}`` removes CDRs, so that the API no longer returns them."""
        if path == "/cdrs/delete":
            ids = payload.get("ids")
            if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids
            ):
                raise ValueError('ids must be a list of integer CDR ids, e.g. {"ids": [1, 2]}')
            missing = self.cdrs.delete_records(ids)
            return json_response(200, {"deleted": len(set(ids)) - len(missing), "missing": missing})
        entries = payload.get("updates")
        if not isinstance(entries, list) or not all(
            isinstance(u, dict)
            and isinstance(u.get("id"), int)
            and not isinstance(u.get("id"), bool)
            and isinstance(u.get("set"), dict)
            for u in entries
        ):
            raise ValueError('updates must be a list of {"id": ID, "set": {field: value}}')
        updates = {int(u["id"]): dict(u["set"]) for u in entries}
        keys = self._own_keys(list(updates.values()))
        missing = self.cdrs.update_records(updates)
        self.cdrs.record_keys |= keys
        return json_response(200, {"updated": len(updates) - len(missing), "missing": missing})

    # -- end of stored-data changes -------------------------------------------------------------

    def configure(self, changes: dict[str, Any]) -> None:
        """Apply run-time settings: ``faults``, ``fault_seed``, ``latency``, ``arrivals``,
        ``login_ttl``, ``now``, ``extra_fields``, ``page_cap``, ``total_cap``, ``ignore_sort``,
        ``error_entries`` and ``file_ranges`` (each optional).

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
            "page_cap",
            "total_cap",
            "ignore_sort",
            "error_entries",
            "file_ranges",
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
        arrivals = _arrivals_rules(changes["arrivals"]) if "arrivals" in changes else None
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
        page_cap = check_page_cap(changes["page_cap"]) if "page_cap" in changes else None
        total_cap = check_total_cap(changes.get("total_cap"))
        ignore_sort = (
            check_flag(changes["ignore_sort"], "ignore_sort") if "ignore_sort" in changes else None
        )
        entries = (
            check_error_entries(changes["error_entries"]) if "error_entries" in changes else None
        )
        file_ranges = (
            check_flag(changes["file_ranges"], "file_ranges") if "file_ranges" in changes else None
        )

        if rules is not None:
            self.faults.set_rules(rules, seed)
        elif seed is not None:
            self.faults.set_rules(self.faults.rules, seed)
        if latency is not None:
            self.latency = latency
        if arrivals is not None:
            with self._lock:
                self.arrivals = arrivals
                self._list_requests = {}
        if login_ttl is not None:
            self.tokens.login_ttl = login_ttl
        if "now" in changes:
            self.set_now(now)
        if extra is not None:
            self.cdrs.extra_fields = dict(extra)
        if page_cap is not None:
            self.page_cap = page_cap
        if "total_cap" in changes:
            self.total_cap = total_cap
        if ignore_sort is not None:
            self.ignore_sort = ignore_sort
        if entries is not None:
            self.error_entries = entries
        if file_ranges is not None:
            self.file_ranges = file_ranges

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

    def _admin_raw_values(self, payload: dict[str, Any]) -> Response:
        """Serve fields of stored records as verbatim JSON text: values no JSON encoder writes
        (``1e400``, ``18446744073709551616``, ``NaN``) or bytes that are not UTF-8
        (``raw_base64``). Filters still see the stored values."""
        entries = payload.get("updates", [])
        if not isinstance(entries, list) or not all(isinstance(u, dict) for u in entries):
            raise ValueError('updates must be a list of {"id": ID, "raw": {field: "JSON text"}}')
        updates: dict[int, dict[str, Any]] = {}
        for entry in entries:
            raw = entry.get("raw") or {}
            encoded = entry.get("raw_base64") or {}
            if not isinstance(raw, dict) or not isinstance(encoded, dict) or not raw | encoded:
                raise ValueError('each update needs "raw" and/or "raw_base64": {field: text}')
            values = {k: str(v).encode() for k, v in raw.items()}
            values |= {k: base64.b64decode(str(v), validate=True) for k, v in encoded.items()}
            updates[int(entry["id"])] = {k: orjson.Fragment(v) for k, v in values.items()}
        keys = self._own_keys(list(updates.values()))
        missing = self.cdrs.replace_records(updates)
        self.cdrs.record_keys |= keys
        return json_response(200, {"patched": len(updates) - len(missing), "missing": missing})

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
        count, late_fraction, max_late_seconds, now = _generate_spec(spec)
        added = self.add_generated("cdrs", count, late_fraction, max_late_seconds, now)
        ids = added.get("cdrs", [])
        return json_response(200, {"added": len(ids), "ids": ids, "collections": added})

    def state(self) -> dict[str, Any]:
        """Counts, settings and request counters, for tests and the CLI."""
        table = self.cdrs.table
        return {
            "now": self.now().strftime("%Y-%m-%d %H:%M:%S"),
            "counts": {
                name: len(c.table)
                for name, c in self.collections.items()
                if name not in self._live_tables
            },
            "max_cdr_id": int(table.ids[-1]) if len(table) else None,
            "requests": dict(self.requests),
            "faults": [rule.to_dict() for rule in self.faults.rules],
            "latency": asdict(self.latency),
            "arrivals": asdict(self.arrivals.get("cdrs") or Arrivals()),
            "collection_arrivals": {name: asdict(rule) for name, rule in self.arrivals.items()},
            "max_ids": {
                name: int(c.table.ids[-1]) if len(c.table) else None
                for name, c in self.collections.items()
                if name not in self._live_tables
            },
            "file_ranges": self.file_ranges,
            "login_ttl": self.tokens.login_ttl,
            "extra_fields": self.cdrs.extra_fields,
            "page_cap": self.page_cap,
            "total_cap": self.total_cap,
            "ignore_sort": self.ignore_sort,
            "error_entries": self.error_entries,
            "spec": {k: str(v) for k, v in asdict(self.company.spec).items()},
        }


def _generate_spec(spec: dict[str, Any]) -> tuple[int, float, int, datetime | None]:
    """``count``, ``late_fraction``, ``max_late_seconds`` and ``now`` of an admin ``generate``.

    Raises:
        ValueError: a value out of range.
    """
    now = spec.get("now")
    count = int(spec.get("count", 0))
    late_fraction = float(spec.get("late_fraction", 0.2))
    max_late_seconds = int(spec.get("max_late_seconds", 4 * 3600))
    if count < 0 or max_late_seconds < 0 or not 0.0 <= late_fraction <= 1.0:
        raise ValueError("count and max_late_seconds must be >= 0, late_fraction in [0, 1]")
    moment = datetime.fromtimestamp(parse_datetime(str(now)), tz=UTC) if now else None
    return count, late_fraction, max_late_seconds, moment


def _arrivals_rules(data: Any) -> dict[str, Arrivals]:
    """The admin API's ``arrivals``: one rule (an object) or a list of them, one per
    collection (``collection``, default ``cdrs``); null, ``{}`` or ``[]`` for none. Rules that
    add nothing (``every`` or ``count`` 0) are left out."""
    rules = [_arrivals(rule) for rule in (data if isinstance(data, list) else [data or {}])]
    by_collection = {rule.collection: rule for rule in rules}
    if len(by_collection) != len(rules):
        raise ValueError("arrivals: one rule per collection")
    return {name: rule for name, rule in by_collection.items() if rule.every and rule.count}


def _arrivals(data: Any) -> Arrivals:
    """Validate one rule of the admin API's ``arrivals`` (it is only used while answering
    the collection's list requests)."""
    if not isinstance(data, dict):
        raise ValueError("arrivals must be an object (or a list of them)")
    allowed = {"every", "count", "late_fraction", "max_late_seconds", "collection"}
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
    name = data.get("collection", "cdrs")
    spec = COLLECTIONS.get(name) if isinstance(name, str) else None
    if spec is None or spec.cursor is None:
        dated = sorted(n for n, c in COLLECTIONS.items() if c.cursor is not None)
        raise ValueError(f"arrivals collection must be one of {dated}, got {name!r}")
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


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _file_id(route: FileRoute | None, item: str | None) -> str | None:
    """The record id in a file route's last segment (``7`` of ``7.mp3``), if it is one."""
    if route is None or item is None or not item.endswith("." + route.extension):
        return None
    return item[: -len(route.extension) - 1]


def _headers(response: Response) -> list[tuple[bytes, bytes]]:
    # A body-less answer (204) has no content type; a file has its own.
    content_type = [(b"content-type", response.content_type)] if response.body else []
    return [
        *content_type,
        (b"content-length", str(len(response.body)).encode()),
        (b"access-control-allow-origin", b"*"),
        *(response.headers or []),
    ]


async def _send(send: Send, response: Response) -> None:
    headers = _headers(response)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _send_cut(send: Send, response: Response, kind: str) -> None:
    """Send a file cut by a fault of ``faults.BODY_KINDS``: ``drop``, the headers (with the
    whole file's length) and half the file, then the connection closes; ``short_body``, a
    complete, well-formed answer holding the first half of the file only."""
    half = response.body[: len(response.body) // 2]
    if kind == "short_body":
        await _send(send, replace(response, body=half))
        return
    headers = _headers(response)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": half, "more_body": True})
    raise _DroppedConnectionError("connection dropped on purpose")


async def _send_fault(send: Send, rule: FaultRule, entries: str) -> None:
    """Answer with the fault ``rule`` (``entries``: the shape of error entries, as configured)."""
    if rule.kind == "429":
        response = error_response(429, "Too Many Requests", ["Rate limit exceeded"], entries)
        if rule.retry_after is not None:
            response.headers = [(b"retry-after", rule.retry_after.encode())]
        await _send(send, response)
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
            error_response(
                status, "Server Error", [f"HTTP {status} injected by the emulator"], entries
            ),
        )
