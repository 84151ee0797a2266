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
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
import pyarrow as pa
from dlt.common.typing import TSecretStrValue
from dlt.extract.resource import DltResource

from pipelines.voipstudio import settings
from pipelines.voipstudio.client import Credentials, RetryPolicy, VoipstudioClient
from pipelines.voipstudio.errors import ConfigError, DataCheckError
from pipelines.voipstudio.memory import IdSet, release_free_memory
from pipelines.voipstudio.progress import report_page
from pipelines.voipstudio.records import api_time, wall_seconds
from pipelines.voipstudio.windows import CdrScanner, Page

log = logging.getLogger(__name__)

__all__ = ["parse_duration", "parse_start", "voipstudio_source"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float, key: str = "lag") -> timedelta:
    """``"6h"``, ``"90m"``, ``"2d"``, ``"45s"`` or a number of seconds.

    Raises:
        ConfigError: anything else, naming the key.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise ConfigError(
                f"{key} = {text!r} is not a duration: write it like '6h', '90m', '2d' or seconds"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ConfigError(f"{key} must not be negative, got {text!r}")
    return timedelta(seconds=seconds)


def parse_start(text: str, key: str = "start_date") -> datetime:
    """A wall-clock instant from ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS`` (``T`` allowed).

    Raises:
        ConfigError: anything else, naming the key.
    """
    value = str(text).strip().replace("T", " ")
    for fmt in ("%Y-%m-%d", settings.API_DATETIME_FORMAT, "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ConfigError(
        f"{key} = {text!r} is not a date: write it as YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS'"
    )


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"timezone = {name!r} is not an IANA time zone (e.g. 'UTC', 'Europe/Madrid')"
        ) from None
    return name


def _check_range(value: int, key: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{key} must be an integer from {low} to {high}, got {value!r}")
    return value


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
    range_start: str | None = None,
    range_end: str | None = None,
    update_cursor: bool = True,
    max_rows: int | None = None,
    cursor_ceiling: str | None = None,
) -> Sequence[DltResource]:
    """The VoIPstudio source.

    Args:
        api_key: an API key (``X-Auth-Token``); preferred over email and password.
        email: login email, used when there is no API key.
        password: login password.
        base_url: the API's base URL.
        start_date: where the first sync starts (``YYYY-MM-DD``, in ``timezone``); default 30
            days before today.
        lag: how far before its cursor each sync reads again, for CDRs written late.
        page_size: records per request, 1 to 5000.
        max_concurrency: requests in flight at once.
        timezone: the zone of the API's ``calldate`` texts.
        max_attempts: attempts per request before giving up.
        request_timeout: seconds before a request times out.
        backoff_base: seconds before the first retry, doubled for each further one.
        range_start: read CDRs after this instant instead of ``cursor - lag`` (a backfill).
        range_end: read CDRs up to this instant instead of now.
        update_cursor: advance the ``cdrs`` cursor (a backfill of an explicit range does not).
        max_rows: stop after the window that reaches this many CDRs (the CLI commits a long
            backfill in parts this way).
        cursor_ceiling: the newest ``calldate`` the destination actually holds (API wall time),
            or ``""`` when it holds none. The stored cursor is never trusted beyond it: if a
            load failed after its state was saved locally, the next run reads that data again.

    Returns:
        The resources ``cdrs``, ``users`` and ``queues``.
    """
    credentials = Credentials(api_key=api_key, email=email, password=password)
    zone = _zone(timezone)
    lag_delta = parse_duration(lag)
    _check_range(page_size, "page_size", 1, settings.MAX_PAGE_SIZE)
    _check_range(max_concurrency, "max_concurrency", 1, 64)
    _check_range(max_attempts, "max_attempts", 1, 100)
    first_start = parse_start(start_date) if start_date else None
    explicit_start = parse_start(range_start, "--start") if range_start else None
    explicit_end = parse_start(range_end, "--end") if range_end else None
    if explicit_start and explicit_end and explicit_start >= explicit_end:
        raise ConfigError(f"--start {range_start} must be before --end {range_end}")
    if not backoff_base >= 0:
        raise ConfigError(f"backoff_base must be 0 or more seconds, got {backoff_base!r}")
    retry = RetryPolicy(max_attempts=max_attempts, backoff_base=float(backoff_base))

    def make_client() -> VoipstudioClient:
        return VoipstudioClient(
            base_url,
            credentials,
            max_concurrency=max_concurrency,
            timeout=request_timeout,
            retry=retry,
        )

    # Rows of one load are made unique on `id` here (see `unique_rows`), which spares the
    # destination dlt's de-duplicating window query over the whole load: in DuckDB that query
    # doubles the memory and the time of a first sync.
    @dlt.resource(
        name="cdrs",
        write_disposition={
            "disposition": "merge",
            "strategy": "delete-insert",
            "deduplicated": True,
        },
        primary_key="id",
    )
    def cdrs() -> Iterator[Any]:
        """Call detail records, read window by window and merged on ``id``."""
        state = dlt.current.resource_state()
        now_wall = wall_seconds(datetime.now(ZoneInfo(zone)))
        end = wall_seconds(explicit_end) if explicit_end else now_wall
        cursor_text: str | None = state.get("cursor")
        if cursor_ceiling is not None and cursor_text is not None:
            cursor_text = min(cursor_text, cursor_ceiling) if cursor_ceiling else None
        if explicit_start is not None:
            start = wall_seconds(explicit_start)
        elif cursor_text is not None:
            start = wall_seconds(parse_start(cursor_text, "the stored cursor")) - int(
                lag_delta.total_seconds()
            )
        elif first_start is not None:
            start = wall_seconds(first_start)
        else:
            today = datetime.fromtimestamp(now_wall, tz=UTC).replace(hour=0, minute=0, second=0)
            start = wall_seconds(today - timedelta(days=settings.DEFAULT_START_DAYS_AGO))
        if start >= end:
            log.info("nothing to read: the range (%s, %s] is empty", api_time(start), api_time(end))
            return
        rejects_hints = dlt.mark.make_hints(
            table_name=settings.REJECTS_TABLE,
            write_disposition="merge",
            primary_key="record_hash",
        )
        with make_client() as client:
            scanner = CdrScanner(
                client,
                page_size=page_size,
                max_concurrency=max_concurrency,
                timezone=zone,
                on_page=report_page,
            )
            last_end: int | None = None
            loaded_ids = IdSet()
            batch = _Batch(settings.YIELD_ROWS)
            for event in scanner.scan(start, end, max_rows=max_rows):
                if isinstance(event, Page):
                    parsed = event.parsed
                    table = unique_rows(parsed.table, loaded_ids)
                    if table.num_rows:
                        yield from batch.add(table)
                    if parsed.rejects:
                        log.warning(
                            "%d CDRs could not be parsed; see table %s",
                            len(parsed.rejects),
                            settings.REJECTS_TABLE,
                        )
                        rows = [r.as_row(datetime.now(UTC)) for r in parsed.rejects]
                        yield dlt.mark.with_hints(rows, rejects_hints, create_table_variant=True)
                else:
                    # Every row of the window is handed to dlt before the cursor passes it.
                    yield from batch.flush()
                    last_end = event.window.end
                    if update_cursor:
                        _advance(state, api_time(event.window.end))
            yield from batch.flush()
        # The scan's buffers are free now; give them back before dlt loads (see the function).
        release_free_memory()
        # Windows cover the range in order: the last one ends at `end` unless max_rows cut it.
        if update_cursor and (last_end is None or last_end >= end):
            _advance(state, api_time(end))

    def read_all(path: str) -> Iterator[list[dict[str, Any]]]:
        with make_client() as client:
            for _ in range(settings.WINDOW_ATTEMPTS):
                pages: list[list[dict[str, Any]]] = []
                seen: set[Any] = set()
                number, total = 1, 0
                while True:
                    records, total = client.get_page(path, page=number, limit=page_size, sort="id")
                    pages.append(records)
                    seen.update(r.get("id") for r in records)
                    if not records or number * page_size >= total:
                        break
                    number += 1
                if len(seen) == total:
                    yield from pages
                    return
                log.warning(
                    "%s: %d distinct ids for a total of %d; reading again", path, len(seen), total
                )
            raise DataCheckError(f"{path} did not add up after {settings.WINDOW_ATTEMPTS} reads")

    @dlt.resource(name="users", write_disposition="replace", primary_key="id")
    def users() -> Iterator[list[dict[str, Any]]]:
        """VoIPstudio users (extensions), refreshed in full every run."""
        yield from read_all("/users")

    @dlt.resource(name="queues", write_disposition="replace", primary_key="id")
    def queues() -> Iterator[list[dict[str, Any]]]:
        """Call queues and their member user ids, refreshed in full every run."""
        yield from read_all("/queues")

    return [cdrs, users, queues]


class _Batch:
    """Pages gathered into fewer, larger tables before they are handed to dlt.

    dlt's extract step has a fixed cost per item (schema checks, configuration lookups, a
    buffer flush) that, per 5000-row page, is a large share of a full sync's main-thread time.
    Only tables of one schema are joined (a page with a field the API added starts a new
    batch), and joining is zero-copy, so dlt receives exactly the same rows and columns.
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


def unique_rows(table: pa.Table, seen: set[int] | IdSet) -> pa.Table:
    """Drop rows whose id was already handed on in this load (a window read again, a page of an
    abandoned read arriving late), and record the ids kept.

    A load must not hold one id twice: the merge is told the data is de-duplicated.
    """
    column = table.column("id")
    if isinstance(seen, IdSet) and column.null_count == 0:
        keep_mask = seen.add_page(column.to_numpy())
        return table if keep_mask is None else table.filter(pa.array(keep_mask))
    ids = column.to_pylist()
    if seen.isdisjoint(ids) and len(set(ids)) == len(ids):
        seen.update(ids)
        return table
    keep = []
    in_page: set[int] = set()
    for record_id in ids:
        keep.append(record_id not in seen and record_id not in in_page)
        in_page.add(record_id)
    seen.update(in_page)
    return table.filter(pa.array(keep, type=pa.bool_()))


def _advance(state: dict[str, Any], value: str) -> None:
    """Move the stored cursor forward, never back (texts of one format compare as times)."""
    current = state.get("cursor")
    if current is None or value > current:
        state["cursor"] = value
