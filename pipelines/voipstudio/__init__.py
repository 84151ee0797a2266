"""A dlt source for VoIPstudio: call detail records (incremental), users and queues.

Example:
    >>> import dlt
    >>> from pipelines.voipstudio import voipstudio_source
    >>> pipeline = dlt.pipeline("voipstudio", destination="duckdb", dataset_name="voipstudio")
    >>> pipeline.run(voipstudio_source())

Configuration comes from ``.dlt/config.toml`` / ``.dlt/secrets.toml`` section
``[sources.voipstudio]`` or the matching ``SOURCES__VOIPSTUDIO__*`` environment variables.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import pyarrow as pa
from dlt.common.typing import TSecretStrValue
from dlt.extract.resource import DltResource

from pipelines.voipstudio import settings
from pipelines.voipstudio.accounts import (
    OVERRIDABLE,
    Account,
    build_accounts,
    parse_duration,
    parse_start,
    section_values,
)
from pipelines.voipstudio.client import SECTION, FailureBudget, VoipstudioClient
from pipelines.voipstudio.errors import ConfigError, VoipstudioError
from pipelines.voipstudio.memory import IdSet, release_free_memory
from pipelines.voipstudio.progress import (
    report_finished,
    report_page,
    report_planned,
    report_planning,
)
from pipelines.voipstudio.records import api_time, wall_seconds
from pipelines.voipstudio.redaction import redact
from pipelines.voipstudio.wallclock import FoldResolver, widen_start
from pipelines.voipstudio.windows import (
    CdrScanner,
    Page,
    describe_range,
    read_collection,
)

log = logging.getLogger(__name__)

__all__ = [
    "ACCOUNT_COLUMN",
    "DELETED_AT_COLUMN",
    "add_account_column",
    "cdrs_table_hints",
    "configured_accounts",
    "parse_duration",
    "parse_start",
    "rejects_hints",
    "resource_name",
    "voipstudio_source",
]

ACCOUNT_COLUMN = settings.ACCOUNT_COLUMN
DELETED_AT_COLUMN = settings.DELETED_AT_COLUMN


@dlt.source(name=settings.SOURCE_NAME)
def voipstudio_source(
    api_key: TSecretStrValue | None = None,
    email: str | None = None,
    password: TSecretStrValue | None = None,
    base_url: str = settings.DEFAULT_BASE_URL,
    start_date: str | None = None,
    lag: str = settings.DEFAULT_LAG,
    page_size: int = settings.DEFAULT_PAGE_SIZE,
    max_concurrency: int = settings.DEFAULT_MAX_CONCURRENCY,
    timezone: str = settings.DEFAULT_TIMEZONE,
    max_attempts: int = settings.MAX_ATTEMPTS,
    request_timeout: float = settings.TIMEOUT_SECONDS,
    backoff_base: float = settings.BACKOFF_BASE_SECONDS,
    request_budget: float = settings.REQUEST_BUDGET_SECONDS,
    failure_budget: float = settings.FAILURE_BUDGET_SECONDS,
    account: str = settings.DEFAULT_ACCOUNT,
    range_start: str | None = None,
    range_end: str | None = None,
    run_at: str | None = None,
    update_cursor: bool = True,
    resume: bool = False,
    max_rows: int | None = None,
    cursor_ceiling: dict[str, str] | None = None,
) -> Sequence[DltResource]:
    """The VoIPstudio source: one account, or every account of ``[sources.voipstudio.accounts]``.

    With one account the resources are ``cdrs``, ``users`` and ``queues``; with named accounts
    each account has its own ``cdrs_<name>``, ``users_<name>`` and ``queues_<name>`` (its own
    cursor and state), loading into the same tables. Every row carries its account's name in
    ``account``, and the keys are ``(account, id)``: ids are only unique within an account.

    Args:
        api_key: an API key (``X-Auth-Token``); preferred over email and password.
        email: login email, used when there is no API key.
        password: login password.
        base_url: the API's base URL.
        start_date: where the first sync starts (``YYYY-MM-DD``, in ``timezone``); default 30
            days before today.
        lag: how far before its cursor each sync reads again, for CDRs written late.
        page_size: records per request, 1 to 5000.
        max_concurrency: requests in flight at once (per account).
        timezone: the zone of the API's ``calldate`` texts.
        max_attempts: attempts per request before giving up.
        request_timeout: seconds one attempt of a request may take, to the answer's last byte.
        backoff_base: seconds before the first retry, doubled for each further one.
        request_budget: seconds one request may take, all its attempts and waits included.
        failure_budget: seconds of failed attempts and retry waits one account's sync
            tolerates, summed over its requests (throttling excluded); then it fails.
        account: the name the single account's rows carry (named accounts carry their own).
        range_start: read CDRs after this instant instead of ``cursor - lag`` (a backfill), in
            each account's time zone.
        range_end: read CDRs up to this instant instead of now.
        run_at: the instant the run started (ISO 8601 with an offset): "now" for every account
            and every part of a run committed in parts. Default: when the resource starts.
        update_cursor: advance the ``cdrs`` cursors (a backfill of an explicit range does not).
        resume: start exactly at each account's stored cursor, without the lag (the next part
            of a run committed in parts, whose lag was read by the first part).
        max_rows: stop after the window that reaches this many CDRs (the CLI commits a long
            backfill in parts this way); the resource then sets ``more`` in its state.
        cursor_ceiling: per account, the newest ``calldate`` the destination actually holds
            (ISO 8601 with an offset); an account missing from it holds none. A stored cursor
            is never trusted beyond it: if a load failed after its state was saved locally, the
            next run reads that data again. None: trust the cursors.

    Returns:
        The resources of every account.
    """
    defaults: dict[str, Any] = {
        "api_key": api_key,
        "email": email,
        "password": password,
        "base_url": base_url,
        "start_date": start_date,
        "lag": lag,
        "page_size": page_size,
        "max_concurrency": max_concurrency,
        "timezone": timezone,
        "max_attempts": max_attempts,
        "request_timeout": request_timeout,
        "backoff_base": backoff_base,
        "request_budget": request_budget,
        "failure_budget": failure_budget,
    }
    accounts, named = build_accounts(defaults, account)
    explicit_start = parse_start(range_start, "--start") if range_start else None
    explicit_end = parse_start(range_end, "--end") if range_end else None
    if explicit_start and explicit_end and explicit_start >= explicit_end:
        raise ConfigError(f"--start {range_start} must be before --end {range_end}")
    started = datetime.fromisoformat(run_at) if run_at else None
    plan = _ReadPlan(
        # The parts of one run committed in parts share their run_at, and their budgets.
        run=run_at or uuid.uuid4().hex,
        explicit_start=explicit_start,
        explicit_end=explicit_end,
        started=started,
        update_cursor=update_cursor,
        resume=resume,
        max_rows=max_rows,
        ceilings=cursor_ceiling,
    )
    resources: list[DltResource] = []
    for one in accounts:
        resources.extend(_account_resources(one, plan, named=named))
    return resources


def configured_accounts() -> list[Account]:
    """The accounts ``voipstudio_source`` reads, with their settings, for commands that talk to
    the API outside a dlt run (``voipstudio check``, ``voipstudio reconcile``).

    ``[sources.voipstudio]`` (files and environment variables) is read key by key, each key not
    set there defaulting as the source's own parameter does, then each named account's section.

    Raises:
        ConfigError: a missing or invalid setting, naming the key.
    """
    parameters = inspect.signature(voipstudio_source).parameters
    values = section_values(SECTION, {key: parameters[key].default for key in OVERRIDABLE})
    single: Any = dlt.config.get(f"{SECTION}.account")
    return build_accounts(values, str(single or parameters["account"].default))[0]


def add_account_column(table: pa.Table, account: str) -> pa.Table:
    """``table`` with the account's name as its first column, as every CDR row carries it."""
    field = pa.field(ACCOUNT_COLUMN, pa.string(), nullable=False)
    return table.add_column(0, field, pa.array([account] * table.num_rows, pa.string()))


def rejects_hints() -> Any:
    """How records that cannot be parsed are written: merged into ``cdrs_rejects`` on
    ``(account, record_hash)``, so a record read again is stored once."""
    return dlt.mark.make_hints(
        table_name=settings.REJECTS_TABLE,
        write_disposition="merge",
        primary_key=(ACCOUNT_COLUMN, "record_hash"),
    )


def cdrs_table_hints() -> dict[str, Any]:
    """How every resource that loads the ``cdrs`` table declares it (the sync's and reconcile's).

    Merged on ``(account, id)``, told the rows of a load are unique on that key: that spares the
    destination dlt's de-duplicating window query over the whole load, which in DuckDB doubles
    the memory and the time of a first sync. ``deleted_at`` is declared here so that the column
    exists from the first sync on (the models filter on it), null until ``voipstudio
    reconcile`` marks a CDR the API no longer returns; a row the API returns again is merged
    without it, which unmarks it.
    """
    return {
        "table_name": "cdrs",
        "write_disposition": {
            "disposition": "merge",
            "strategy": "delete-insert",
            "deduplicated": True,
        },
        "primary_key": (ACCOUNT_COLUMN, "id"),
        "columns": {
            ACCOUNT_COLUMN: {"data_type": "text", "nullable": False},
            DELETED_AT_COLUMN: {"data_type": "timestamp", "timezone": True, "nullable": True},
        },
    }


def resource_name(kind: str, account: str | None) -> str:
    """The resource of ``kind`` (``cdrs``, ``users``, ``queues``) of a named account, or of the
    single account (``account`` None)."""
    return kind if account is None else f"{kind}_{account}"


@dataclass(frozen=True)
class _ReadPlan:
    """What a run reads, the same for every account (see ``voipstudio_source``)."""

    run: str
    explicit_start: datetime | None
    explicit_end: datetime | None
    started: datetime | None
    update_cursor: bool
    resume: bool
    max_rows: int | None
    ceilings: dict[str, str] | None

    def ceiling(self, account: Account) -> str | None:
        """The account's cursor ceiling as its API wall time; "" = it has no CDR loaded."""
        if self.ceilings is None:
            return None
        newest = self.ceilings.get(account.name)
        if not newest:
            return ""
        instant = datetime.fromisoformat(newest)
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        return instant.astimezone(ZoneInfo(account.timezone)).strftime(settings.API_DATETIME_FORMAT)

    def bounds(self, account: Account, state: dict[str, Any]) -> tuple[int, int]:
        """The account's range ``(start, end]`` in API wall seconds, as the scanner reads it.

        A user's start (``--start``, ``start_date``, the default 30 days back) is **included**,
        and an explicit ``--end`` is **excluded**: ``--start A --end B`` reads ``[A, B)``, so
        ``--start A --end B`` then ``--start B --end C`` leave neither a gap nor an overlap.
        Without ``--end`` the range ends at the run's start, included. An incremental run keeps
        its exclusive cursor: ``(cursor - lag, now]``.
        """
        zone = ZoneInfo(account.timezone)
        # Calldates are whole seconds: an included start s is read as `gt s - 1`, an excluded
        # end e as `lte e - 1` (windows.half_open).
        if self.explicit_end is not None:
            end = wall_seconds(self.explicit_end) - 1
        else:
            now = self.started.astimezone(zone) if self.started else datetime.now(zone)
            end = wall_seconds(now)
        cursor_text: str | None = state.get("cursor")
        if self.explicit_start is not None:
            return wall_seconds(self.explicit_start) - 1, end
        if self.resume and cursor_text is not None:
            return wall_seconds(parse_start(cursor_text, "the stored cursor")), end
        ceiling = self.ceiling(account)
        if ceiling is not None and cursor_text is not None:
            cursor_text = min(cursor_text, ceiling) if ceiling else None
        if cursor_text is not None:
            start = wall_seconds(parse_start(cursor_text, "the stored cursor"))
            return start - int(account.lag.total_seconds()), end
        if account.start_date is not None:
            first = account.start_date
        else:
            today = datetime.fromtimestamp(end, tz=UTC).replace(hour=0, minute=0, second=0)
            first = today - timedelta(days=settings.DEFAULT_START_DAYS_AGO)
        return wall_seconds(first) - 1, end


def _account_resources(account: Account, plan: _ReadPlan, *, named: bool) -> list[DltResource]:
    """The ``cdrs``, ``users`` and ``queues`` resources of one account.

    Named accounts keep their failures to themselves: the error is logged and kept in the
    resource's state (``error``), the resource ends, and the other accounts load; the run is
    then failed by ``run_sync``, naming the account. The single account's errors end the run.
    """
    name = account.name
    suffix = name if named else None
    # An account's failure is logged once, by the first of its resources to fail: the others
    # usually fail the same way (one refused key fails all three), and the run's end names it.
    failure_logged = threading.Event()

    failures = _failure_budget(plan.run, name, account.failure_budget)

    def make_client() -> VoipstudioClient:
        return account.client(failures)

    def guarded(
        read: Callable[[dict[str, Any]], Iterator[Any]], state: dict[str, Any]
    ) -> Iterator[Any]:
        state.pop("error", None)
        if not named:
            yield from read(state)
            return
        try:
            yield from read(state)
        except VoipstudioError as error:
            if not failure_logged.is_set():
                failure_logged.set()
                log.error("account '%s' failed: %s", name, error)
            state["error"] = {"message": str(error), "exit_code": error.exit_code}
        except Exception as error:  # a bug or a dlt error: still only this account's
            if not failure_logged.is_set():
                failure_logged.set()
                log.exception("account '%s' failed", name)
            message = redact(f"{type(error).__name__}: {error}")
            state["error"] = {"message": message, "exit_code": 1}

    def with_account(table: pa.Table) -> pa.Table:
        return add_account_column(table, name)

    rejects = rejects_hints()

    cdrs_resource = resource_name("cdrs", suffix)

    def read_cdrs(state: dict[str, Any]) -> Iterator[Any]:
        start, end = plan.bounds(account, state)
        state.pop("more", None)
        report_planning(cdrs_resource)
        if start >= end:
            report_planned(cdrs_resource, 0)
            report_finished(cdrs_resource)
            log.info(
                "account '%s': nothing to read, the range %s is empty",
                name,
                describe_range(start, end),
            )
            if plan.update_cursor:
                state["synced_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            return
        widened = widen_start(start, account.timezone)
        if widened < start:
            log.info(
                "account '%s': the range starts inside a repeated hour of %s; reading from %s "
                "so that its two passes can be told apart",
                name,
                account.timezone,
                api_time(widened),
            )
            start = widened
        with make_client() as client:
            scanner = CdrScanner(
                client,
                page_size=account.page_size,
                max_concurrency=account.max_concurrency,
                timezone=account.timezone,
                on_page=lambda _, rows: report_page(cdrs_resource, rows),
                on_plan=lambda total: report_planned(cdrs_resource, total),
            )
            last_end: int | None = None
            loaded_ids = IdSet()
            batch = _Batch(settings.YIELD_ROWS)
            # CDRs of a repeated hour (a DST change) wait until the range has been read.
            folds = FoldResolver(account.timezone, name)

            def can_stop(wall: int) -> bool:
                # A part never ends inside a repeated hour: the next would start before it.
                return widen_start(wall, account.timezone) == wall

            for event in scanner.scan(start, end, max_rows=plan.max_rows, can_stop=can_stop):
                if isinstance(event, Page):
                    parsed = event.parsed
                    table = folds.take(parsed.table, parsed.fold_rows, parsed.ambiguous)
                    table = unique_rows(table, loaded_ids)
                    if table.num_rows:
                        yield from batch.add(with_account(table))
                    if parsed.rejects:
                        log.warning(
                            "account '%s': %d CDRs could not be parsed; see table %s",
                            name,
                            len(parsed.rejects),
                            settings.REJECTS_TABLE,
                        )
                        rows = [
                            {ACCOUNT_COLUMN: name, **r.as_row(datetime.now(UTC))}
                            for r in parsed.rejects
                        ]
                        yield dlt.mark.with_hints(rows, rejects, create_table_variant=True)
                else:
                    # Every row of the window is handed to dlt before the cursor passes it.
                    yield from batch.flush()
                    last_end = event.window.end
                    if plan.update_cursor:
                        _advance(state, api_time(event.window.end))
            # The held rows are handed on before the resource ends: dlt commits them in the
            # same load as the cursor that passed their windows.
            held = folds.release()
            if held is not None:
                table = unique_rows(held, loaded_ids)
                if table.num_rows:
                    yield from batch.add(with_account(table))
            yield from batch.flush()
        report_finished(cdrs_resource)
        # The scan's buffers are free now; give them back before dlt loads (see the function).
        release_free_memory()
        # Windows cover the range in order: the last one ends at `end` unless max_rows cut it.
        if last_end is None or last_end >= end:
            if plan.update_cursor:
                _advance(state, api_time(end))
                # When the account was last brought up to date (`voipstudio status`).
                state["synced_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        else:
            state["more"] = True

    # Rows of one load are made unique on `id` here (see `unique_rows`).
    @dlt.resource(name=cdrs_resource, parallelized=named, **cdrs_table_hints())
    def cdrs() -> Iterator[Any]:
        """Call detail records, read window by window and merged on ``(account, id)``."""
        yield from guarded(read_cdrs, dlt.current.resource_state())

    def read_all(path: str) -> Iterator[list[dict[str, Any]]]:
        resource = resource_name(path.strip("/"), suffix)
        report_planning(resource)
        # Pages are handed to dlt only once the whole collection added up.
        with make_client() as client:
            pages = read_collection(
                client, path, page_size=account.page_size, label=f"account '{name}': {path}"
            )
        report_planned(resource, sum(len(records) for records in pages))
        for records in pages:
            report_page(resource, len(records))
            yield [{ACCOUNT_COLUMN: name, **record} for record in records]
        report_finished(resource)

    # A dimension is replaced account by account: the merge key `account` deletes the
    # account's rows before its new ones go in, and leaves other accounts' rows alone (a
    # plain replace would empty the table of an account that failed this run).
    dimension: dict[str, Any] = {
        "write_disposition": {"disposition": "merge", "strategy": "delete-insert"},
        "primary_key": (ACCOUNT_COLUMN, "id"),
        "merge_key": ACCOUNT_COLUMN,
        "columns": {ACCOUNT_COLUMN: {"data_type": "text", "nullable": False}},
    }

    @dlt.resource(name=resource_name("users", suffix), table_name="users", **dimension)
    def users() -> Iterator[list[dict[str, Any]]]:
        """VoIPstudio users (extensions), refreshed in full every run."""
        yield from guarded(lambda _: read_all("/users"), dlt.current.resource_state())

    @dlt.resource(name=resource_name("queues", suffix), table_name="queues", **dimension)
    def queues() -> Iterator[list[dict[str, Any]]]:
        """Call queues and their member user ids, refreshed in full every run."""
        yield from guarded(lambda _: read_all("/queues"), dlt.current.resource_state())

    return [cdrs, users, queues]


@functools.lru_cache(maxsize=256)
def _failure_budget(run: str, account: str, seconds: float) -> FailureBudget:
    """The failure budget of one account in one run, shared by its resources and by the parts
    of a run committed in parts."""
    return FailureBudget(seconds)


class _Batch:
    """Pages gathered into fewer, larger tables before they are handed to dlt.

    dlt's extract step has a fixed cost per item (schema checks, configuration lookups, a
    buffer flush) that, per 5000-row page, is a large share of a full sync's main-thread time.
    Only tables of one schema are joined (a table of another schema starts a new batch), and
    joining is zero-copy, so dlt receives exactly the same rows and columns.
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.tables: list[pa.Table] = []
        self.rows = 0

    def add(self, table: pa.Table) -> Iterator[pa.Table]:
        """Gather ``table``; yields a batch when it is full or the schema changes."""
        if self.tables and not table.schema.equals(self.tables[0].schema):
            yield from self.flush()
        self.tables.append(table)
        self.rows += table.num_rows
        if self.rows >= self.max_rows:
            yield from self.flush()

    def flush(self) -> Iterator[pa.Table]:
        """Yield what was gathered, if anything."""
        if self.tables:
            tables, self.tables, self.rows = self.tables, [], 0
            yield tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def unique_rows(table: pa.Table, seen: IdSet) -> pa.Table:
    """Drop rows whose id was already handed on in this load (a window read again, a page of an
    abandoned read arriving late), and record the ids kept.

    A load must not hold one id twice: the merge is told the data is de-duplicated. Ids are
    never null (``CDR_SCHEMA``): a record without one is a reject.
    """
    keep_mask = seen.add_page(table.column("id").to_numpy())
    return table if keep_mask is None else table.filter(pa.array(keep_mask))


def _advance(state: dict[str, Any], value: str) -> None:
    """Move the stored cursor forward, never back (texts of one format compare as times)."""
    current = state.get("cursor")
    if current is None or value > current:
        state["cursor"] = value
