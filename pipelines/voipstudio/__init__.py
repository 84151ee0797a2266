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

import logging
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
    Account,
    account_values,
    build_account,
    check_name,
    configured_account_names,
    parse_duration,
    parse_start,
)
from pipelines.voipstudio.client import VoipstudioClient
from pipelines.voipstudio.errors import ConfigError, DataCheckError, VoipstudioError
from pipelines.voipstudio.memory import IdSet, release_free_memory
from pipelines.voipstudio.progress import report_page
from pipelines.voipstudio.records import api_time, wall_seconds
from pipelines.voipstudio.wallclock import FoldResolver, widen_start
from pipelines.voipstudio.windows import CdrScanner, Page

log = logging.getLogger(__name__)

__all__ = [
    "ACCOUNT_COLUMN",
    "parse_duration",
    "parse_start",
    "resource_name",
    "voipstudio_source",
]

ACCOUNT_COLUMN = settings.ACCOUNT_COLUMN


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
        request_timeout: seconds before a request times out.
        backoff_base: seconds before the first retry, doubled for each further one.
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
    }
    names = configured_account_names()
    if names:
        accounts = [
            build_account(name, account_values(name, defaults), named=True) for name in names
        ]
    else:
        accounts = [build_account(check_name(account, "account"), defaults, named=False)]
    explicit_start = parse_start(range_start, "--start") if range_start else None
    explicit_end = parse_start(range_end, "--end") if range_end else None
    if explicit_start and explicit_end and explicit_start >= explicit_end:
        raise ConfigError(f"--start {range_start} must be before --end {range_end}")
    started = datetime.fromisoformat(run_at) if run_at else None
    plan = _ReadPlan(
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
        resources.extend(_account_resources(one, plan, named=bool(names)))
    return resources


def resource_name(kind: str, account: str | None) -> str:
    """The resource of ``kind`` (``cdrs``, ``users``, ``queues``) of a named account, or of the
    single account (``account`` None)."""
    return kind if account is None else f"{kind}_{account}"


@dataclass(frozen=True)
class _ReadPlan:
    """What a run reads, the same for every account (see ``voipstudio_source``)."""

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
        """The account's range ``(start, end]`` in API wall seconds."""
        zone = ZoneInfo(account.timezone)
        if self.explicit_end is not None:
            end = wall_seconds(self.explicit_end)
        else:
            now = self.started.astimezone(zone) if self.started else datetime.now(zone)
            end = wall_seconds(now)
        cursor_text: str | None = state.get("cursor")
        if self.explicit_start is not None:
            return wall_seconds(self.explicit_start), end
        if self.resume and cursor_text is not None:
            return wall_seconds(parse_start(cursor_text, "the stored cursor")), end
        ceiling = self.ceiling(account)
        if ceiling is not None and cursor_text is not None:
            cursor_text = min(cursor_text, ceiling) if ceiling else None
        if cursor_text is not None:
            start = wall_seconds(parse_start(cursor_text, "the stored cursor"))
            return start - int(account.lag.total_seconds()), end
        if account.start_date is not None:
            return wall_seconds(account.start_date), end
        today = datetime.fromtimestamp(end, tz=UTC).replace(hour=0, minute=0, second=0)
        return wall_seconds(today - timedelta(days=settings.DEFAULT_START_DAYS_AGO)), end


def _account_resources(account: Account, plan: _ReadPlan, *, named: bool) -> list[DltResource]:
    """The ``cdrs``, ``users`` and ``queues`` resources of one account.

    Named accounts keep their failures to themselves: the error is logged and kept in the
    resource's state (``error``), the resource ends, and the other accounts load; the run is
    then failed by ``run_sync``, naming the account. The single account's errors end the run.
    """
    name = account.name
    suffix = name if named else None

    def make_client() -> VoipstudioClient:
        return VoipstudioClient(
            account.base_url,
            account.credentials,
            max_concurrency=account.max_concurrency,
            timeout=account.request_timeout,
            retry=account.retry,
            section=account.section,
        )

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
            log.error("account '%s' failed: %s", name, error)
            state["error"] = {"message": str(error), "exit_code": error.exit_code}
        except Exception as error:  # a bug or a dlt error: still only this account's
            log.exception("account '%s' failed", name)
            state["error"] = {"message": f"{type(error).__name__}: {error}", "exit_code": 1}

    account_field = pa.field(ACCOUNT_COLUMN, pa.string(), nullable=False)

    def with_account(table: pa.Table) -> pa.Table:
        return table.add_column(0, account_field, pa.array([name] * table.num_rows, pa.string()))

    rejects_hints = dlt.mark.make_hints(
        table_name=settings.REJECTS_TABLE,
        write_disposition="merge",
        primary_key=(ACCOUNT_COLUMN, "record_hash"),
    )

    def read_cdrs(state: dict[str, Any]) -> Iterator[Any]:
        start, end = plan.bounds(account, state)
        state.pop("more", None)
        if start >= end:
            log.info(
                "account '%s': nothing to read, the range (%s, %s] is empty",
                name,
                api_time(start),
                api_time(end),
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
                on_page=report_page,
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
                        yield dlt.mark.with_hints(rows, rejects_hints, create_table_variant=True)
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

    # Rows of one load are made unique on `id` here (see `unique_rows`), which spares the
    # destination dlt's de-duplicating window query over the whole load: in DuckDB that query
    # doubles the memory and the time of a first sync.
    @dlt.resource(
        name=resource_name("cdrs", suffix),
        table_name="cdrs",
        write_disposition={
            "disposition": "merge",
            "strategy": "delete-insert",
            "deduplicated": True,
        },
        primary_key=(ACCOUNT_COLUMN, "id"),
        columns={ACCOUNT_COLUMN: {"data_type": "text", "nullable": False}},
        parallelized=named,
    )
    def cdrs() -> Iterator[Any]:
        """Call detail records, read window by window and merged on ``(account, id)``."""
        yield from guarded(read_cdrs, dlt.current.resource_state())

    def read_all(path: str) -> Iterator[list[dict[str, Any]]]:
        with make_client() as client:
            for _ in range(settings.WINDOW_ATTEMPTS):
                pages: list[list[dict[str, Any]]] = []
                seen: set[Any] = set()
                number, total = 1, 0
                while True:
                    records, total = client.get_page(
                        path, page=number, limit=account.page_size, sort="id"
                    )
                    pages.append([{ACCOUNT_COLUMN: name, **record} for record in records])
                    seen.update(r.get("id") for r in records)
                    if not records or number * account.page_size >= total:
                        break
                    number += 1
                if len(seen) == total:
                    yield from pages
                    return
                log.warning(
                    "account '%s': %s: %d distinct ids for a total of %d; reading again",
                    name,
                    path,
                    len(seen),
                    total,
                )
            raise DataCheckError(
                f"account '{name}': {path} did not add up after {settings.WINDOW_ATTEMPTS} reads"
            )

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
