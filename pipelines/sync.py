"""Running a sync: the dlt pipeline, the single-run lock, and committing a long backfill in parts.

A sync fixes the end of its range when it starts. The ``cdrs`` resource reads windows up to it;
when a backfill is larger than ``commit_every_rows``, it is loaded in several ``pipeline.run``
calls, each of which commits its data together with the cursor, so a run killed half-way resumes
from the last committed part instead of from the start.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination import TDestinationReferenceArg
from dlt.common.destination.configuration import ParquetFormatConfiguration
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from pipelines.voipstudio import resource_name, settings, voipstudio_source
from pipelines.voipstudio.accounts import account_names
from pipelines.voipstudio.errors import AccountsFailedError, ConfigError, LockedError
from pipelines.voipstudio.memory import release_free_memory

PIPELINE_NAME = "voipstudio"
# Not data/voipstudio.duckdb: DuckDB names a file's catalog after it, and a catalog named like
# the dataset makes `voipstudio.cdrs` ambiguous to DuckDB's binder.
DEFAULT_DUCKDB_PATH = "data/calls.duckdb"
DEFAULT_COMMIT_EVERY_ROWS = 1_000_000
# DuckDB's memory while a sync loads, unless configured (see `_duckdb_settings`).
DUCKDB_MEMORY_LIMIT = "256MB"


def make_pipeline(
    pipeline_name: str = PIPELINE_NAME,
    *,
    destination: TDestinationReferenceArg | None = None,
    dataset_name: str | None = None,
    pipelines_dir: str | None = None,
) -> dlt.Pipeline:
    """The dlt pipeline, with this project's default destination.

    The destination comes from ``[pipelines.voipstudio] destination_type`` (DuckDB unless
    configured otherwise). DuckDB writes to ``data/calls.duckdb`` unless
    ``DESTINATION__DUCKDB__CREDENTIALS`` (or ``[destination.duckdb] credentials`` in
    secrets.toml) names another file.
    """
    if destination is None:
        configured: str | None = dlt.config.get(f"pipelines.{pipeline_name}.destination_type")
        credentials: object = dlt.secrets.get("destination.duckdb.credentials")
        if (configured or "duckdb") == "duckdb":
            if not credentials:
                Path(DEFAULT_DUCKDB_PATH).parent.mkdir(parents=True, exist_ok=True)
                destination = dlt.destinations.duckdb(
                    credentials=DEFAULT_DUCKDB_PATH, parquet_format=_duckdb_parquet_format()
                )
            else:
                # The file named by the configuration (DESTINATION__DUCKDB__CREDENTIALS or
                # secrets.toml), also when no destination_type is configured at all.
                destination = dlt.destinations.duckdb(parquet_format=_duckdb_parquet_format())
    configured_dataset: str | None = dlt.config.get(f"pipelines.{pipeline_name}.dataset_name")
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=destination,
        dataset_name=dataset_name or configured_dataset or settings.SOURCE_NAME,
        pipelines_dir=pipelines_dir,  # type: ignore[arg-type]  # None means dlt's default
    )


@contextmanager
def _duckdb_settings(pipeline: dlt.Pipeline) -> Iterator[None]:
    """DuckDB settings for the duration of a sync, unless ``global_config`` is configured.

    - ``memory_limit`` 256 MB. DuckDB keeps the blocks a load writes in its buffer pool up to
      its own limit, 80% of the machine's RAM, so without a cap a sync's peak memory grows
      with the size of the load (about 150 MB more for every 500,000 CDRs) on top of what the
      scan used. Capped, DuckDB writes those blocks out and evicts them; a merge that needs
      more spills to disk instead of failing.
    - ``threads`` half the CPUs. During the load dlt's own threads run too; on 2 CPUs a
      single DuckDB thread loads 1,000,000 CDRs 20% faster than two, with 50 MB less memory.

    Only the sync is concerned; the models built after it run under the same memory limit
    (:func:`models_duckdb_settings`). Set ``[destination.duckdb.credentials] global_config`` (or
    ``DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG``), e.g. ``{memory_limit = "2GB"}``,
    to choose for yourself.
    """
    if not _duckdb_configured(pipeline):
        yield
        return
    key = "destination.duckdb.credentials.global_config"
    settings = {"memory_limit": DUCKDB_MEMORY_LIMIT, "threads": max(1, (os.cpu_count() or 2) // 2)}
    # The in-memory layer of config.toml, restored on exit: environment variables and
    # secrets.toml would still win, and nothing is written to disk.
    with dlt.config.values({key: settings}):
        yield


def _duckdb_configured(pipeline: dlt.Pipeline) -> bool:
    """Whether the destination is DuckDB with no ``global_config`` of the user's: the sync (and
    the models after it) may then choose DuckDB's settings."""
    key = "destination.duckdb.credentials.global_config"
    destination = pipeline.destination
    return not (
        destination is None
        or not destination.destination_type.endswith(".duckdb")
        or dlt.config.get(key) is not None
        or dlt.secrets.get(key) is not None
    )


def _duckdb_parquet_format() -> ParquetFormatConfiguration:
    """How dlt writes the Parquet files DuckDB loads: LZ4 instead of dlt's default Snappy.

    DuckDB decodes LZ4 pages faster (a 500,000-CDR load spends about a third less time
    reading its files) and the files are as small. A ``[data_writer]`` compression set in the
    configuration still wins: dlt applies explicit settings over the destination's.
    """
    return ParquetFormatConfiguration(compression="lz4")


@contextmanager
def sync_lock(pipeline: dlt.Pipeline) -> Iterator[None]:
    """Hold the pipeline's lock file for the duration of a sync.

    Raises:
        LockedError: another process holds it; nothing was touched.
    """
    path = Path(pipeline.working_dir) / "sync.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LockedError(
                f"another sync of pipeline '{pipeline.pipeline_name}' is running ({holder}); "
                "this one exits without touching anything: schedule syncs further apart"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now().isoformat(timespec='seconds')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def resource_states(pipeline: dlt.Pipeline) -> dict[str, dict[str, Any]]:
    """The state of every resource of the source, by resource name."""
    state: Any = pipeline.state
    resources = state.get("sources", {}).get(settings.SOURCE_NAME, {}).get("resources", {})
    return {str(name): dict(value) for name, value in resources.items()}


def read_cursor(pipeline: dlt.Pipeline, account: str | None = None) -> str | None:
    """A ``cdrs`` cursor: every CDR with ``calldate`` up to it has been loaded (API wall time).

    Args:
        pipeline: the pipeline.
        account: a named account; None = the single account of ``[sources.voipstudio]``.
    """
    cursor = resource_states(pipeline).get(resource_name("cdrs", account), {}).get("cursor")
    return str(cursor) if cursor is not None else None


def oldest_cursor(cursors: list[str | None]) -> str | None:
    """The cursor every account has reached: None when one has none (or there are none)."""
    if not cursors or None in cursors:
        return None
    return min(cursor for cursor in cursors if cursor is not None)


@dataclass(frozen=True)
class Loaded:
    """What the destination holds of one account's CDRs."""

    rows: int
    newest: datetime | None  # the newest calldate, UTC


def loaded_by_account(pipeline: dlt.Pipeline) -> dict[str, Loaded]:
    """CDRs in the destination per account (accounts without any are absent).

    One connection: each connection to the destination costs time a sync that finds nothing
    new should not spend.

    Raises:
        ConfigError: a table was loaded by a version of this pipeline whose rows did not carry
            their account; merging on ``(account, id)`` into it would duplicate every row.
    """
    try:
        with pipeline.sql_client() as client:
            for table in (*settings.RESOURCES, settings.REJECTS_TABLE):
                name = client.make_qualified_table_name(table)
                try:
                    with client.execute_query(f"SELECT * FROM {name} WHERE 1 = 0") as cursor:  # noqa: S608
                        columns = [str(column[0]) for column in cursor.description or ()]
                except DatabaseUndefinedRelation:
                    continue
                if settings.ACCOUNT_COLUMN not in columns:
                    raise ConfigError(
                        f"table {table} of dataset {pipeline.dataset_name} was loaded before "
                        "rows carried their account; run `voipstudio sync --full-refresh` once "
                        "to load it again (it re-reads from start_date)"
                    )
            name = client.make_qualified_table_name("cdrs")
            sql = (
                f"SELECT {settings.ACCOUNT_COLUMN}, count(*), max(calldate) FROM {name} "  # noqa: S608
                f"GROUP BY {settings.ACCOUNT_COLUMN}"
            )
            rows = client.execute_sql(sql)
    except ConfigError:
        raise
    except Exception:  # no dataset or no table yet: nothing loaded
        return {}
    loaded = {}
    for account, count, newest in rows or ():
        if isinstance(newest, datetime) and newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        loaded[str(account)] = Loaded(
            int(count), newest.astimezone(UTC) if isinstance(newest, datetime) else None
        )
    return loaded


def cdrs_table_is_empty(pipeline: dlt.Pipeline) -> bool:
    """True only when the destination certainly holds no CDR: the dataset or the table does
    not exist, or the table has no row. Any other failure to tell answers False."""
    try:
        with pipeline.sql_client() as client:
            if not client.has_dataset():
                return True
            name = client.make_qualified_table_name("cdrs")
            rows = client.execute_sql(f"SELECT 1 FROM {name} LIMIT 1")  # noqa: S608
    except DatabaseUndefinedRelation:
        return True
    except Exception:  # unreachable, locked, unknown: merge as usual, which is always right
        return False
    return not rows


def count_rows(pipeline: dlt.Pipeline, table: str) -> int:
    """Rows in a destination table, 0 when it does not exist yet."""
    try:
        with pipeline.sql_client() as client:
            name = client.make_qualified_table_name(table)
            rows = client.execute_sql(f"SELECT count(*) FROM {name}")  # noqa: S608 - our name
    except Exception:  # no dataset or no table yet both mean zero rows
        return 0
    return int(rows[0][0]) if rows else 0


@dataclass
class SyncOptions:
    """What one ``voipstudio sync`` does.

    Attributes:
        start: re-read from this instant (``YYYY-MM-DD[ HH:MM:SS]``) instead of the cursor.
        end: read up to this instant instead of now.
        full_refresh: drop the source's tables and state first, then sync from ``start_date``.
        resources: which resources to load (default all).
        accounts: which of the configured accounts to sync (default all).
        commit_every_rows: commit a long backfill every so many CDRs.
    """

    start: str | None = None
    end: str | None = None
    full_refresh: bool = False
    resources: tuple[str, ...] = settings.RESOURCES
    accounts: tuple[str, ...] = ()
    commit_every_rows: int = DEFAULT_COMMIT_EVERY_ROWS


@dataclass
class AccountResult:
    """What a sync did for one account."""

    cdrs_before: int = 0
    cdrs_after: int = 0
    cursor: str | None = None
    error: str | None = None


@dataclass
class SyncSummary:
    """What a sync did."""

    rows_loaded: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, AccountResult] = field(default_factory=dict)
    loads: int = 0
    seconds: float = 0.0

    @property
    def cdrs_before(self) -> int:
        """CDRs of the synced accounts in the table before the sync."""
        return sum(result.cdrs_before for result in self.accounts.values())

    @property
    def cdrs_after(self) -> int:
        """CDRs of the synced accounts in the table after the sync."""
        return sum(result.cdrs_after for result in self.accounts.values())

    @property
    def cursor(self) -> str | None:
        """The oldest cursor of the synced accounts: all of them are loaded up to it."""
        return oldest_cursor([result.cursor for result in self.accounts.values()])

    @property
    def cdrs_new(self) -> int:
        """CDRs that were not in the table before."""
        return max(0, self.cdrs_after - self.cdrs_before)

    @property
    def cdrs_updated(self) -> int:
        """CDRs read again (the lag window, late rows) and merged over their stored version."""
        return max(0, self.rows_loaded.get("cdrs", 0) - self.cdrs_new)

    @property
    def rejects(self) -> int:
        """Records that could not be parsed and went to the rejects table."""
        return self.rows_loaded.get(settings.REJECTS_TABLE, 0)


def _selection(
    options: SyncOptions, configured: list[str], named: bool
) -> dict[str, tuple[str, str]]:
    """The resources a sync runs: resource name -> (kind, account).

    Raises:
        ConfigError: an unknown resource or account, or a full refresh of some accounts only.
    """
    unknown = set(options.resources) - set(settings.RESOURCES)
    if unknown or not options.resources:
        raise ConfigError(
            f"unknown resources {sorted(unknown)}; choose from {', '.join(settings.RESOURCES)}"
        )
    accounts = list(dict.fromkeys(options.accounts)) or configured
    missing = [name for name in accounts if name not in configured]
    if missing:
        raise ConfigError(
            f"unknown account(s) {', '.join(missing)}: the configured accounts are "
            f"{', '.join(configured)} (sections [sources.voipstudio.accounts.<name>])"
        )
    if options.full_refresh and set(accounts) != set(configured):
        raise ConfigError(
            "--full-refresh drops every account's tables and state, so it cannot be limited to "
            "some accounts; to load one account's range again use --account with --start"
        )
    return {
        resource_name(kind, account if named else None): (kind, account)
        for account in accounts
        for kind in options.resources
    }


def run_sync(pipeline: dlt.Pipeline, options: SyncOptions | None = None) -> SyncSummary:
    """Bring the destination up to date (or load the range the options name).

    Named accounts are read in parallel in one run; one that fails does not stop the others.

    Raises:
        LockedError: another sync of this pipeline is running.
        AccountsFailedError: some accounts failed (the others were loaded); it carries the
            summary.
        VoipstudioError: (inside dlt's PipelineStepFailed) what stopped the sync.
    """
    options = options or SyncOptions()
    configured, named = account_names()
    selection = _selection(options, configured, named)
    if options.commit_every_rows < 1:
        raise ConfigError("commit_every_rows must be at least 1")
    started = time.perf_counter()
    summary = SyncSummary()
    accounts = sorted({account for _, account in selection.values()})
    with sync_lock(pipeline), _duckdb_settings(pipeline), stamp_load_ids():
        explicit = options.start is not None or options.end is not None
        run_at = datetime.now(UTC).isoformat()
        before = {} if options.full_refresh else loaded_by_account(pipeline)
        for account in accounts:
            loaded = before.get(account)
            summary.accounts[account] = AccountResult(cdrs_before=loaded.rows if loaded else 0)
        ceilings = {a: v.newest.isoformat() for a, v in before.items() if v.newest is not None}
        # A first load into an empty table is appended instead of merged: the rows of one load
        # are unique on (account, id) (the source de-duplicates them), so with nothing to merge
        # with the result is the same, without the staging copy and the delete that double
        # the time of a first sync. Only when no earlier load is pending (dlt loads those
        # first, and their rows would then be in the table) and the table is certainly empty;
        # a later part of a long backfill merges as usual.
        append_first = (
            "cdrs" in options.resources
            and (options.full_refresh or not before)
            and not pipeline.has_pending_data
            and (options.full_refresh or cdrs_table_is_empty(pipeline))
        )
        part = list(selection)
        ran: set[str] = set()
        while True:
            source = voipstudio_source(
                range_start=options.start,
                range_end=options.end,
                run_at=run_at,
                update_cursor=not explicit,
                resume=summary.loads > 0,
                max_rows=None if explicit else options.commit_every_rows,
                # The next parts continue at their cursors: the previous part loaded them.
                cursor_ceiling=None if summary.loads else ceilings,
            ).with_resources(*part)
            if append_first and summary.loads == 0:
                for name in part:
                    if selection[name][0] == "cdrs":
                        source.resources[name].apply_hints(write_disposition="append")
            if options.full_refresh and summary.loads == 0:
                pipeline.run(source, refresh="drop_sources")
            else:
                pipeline.run(source)
            summary.loads += 1
            ran.update(part)
            trace = pipeline.last_trace
            counts = (
                trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
            )
            for table, rows in counts.items():
                if not table.startswith("_dlt"):
                    summary.rows_loaded[table] = summary.rows_loaded.get(table, 0) + rows
            states = resource_states(pipeline)
            part = [
                name
                for name in part
                if selection[name][0] == "cdrs"
                and states.get(name, {}).get("more")
                and not states.get(name, {}).get("error")
            ]
            if explicit or not part:
                break
        after = loaded_by_account(pipeline)
        failures: dict[str, tuple[int, str]] = {}
        for name in sorted(ran):
            kind, account = selection[name]
            result = summary.accounts[account]
            error = states.get(name, {}).get("error")
            if error and account not in failures:
                failures[account] = (int(error["exit_code"]), str(error["message"]))
                result.error = str(error["message"])
            if kind == "cdrs":
                cursor = states.get(name, {}).get("cursor")
                result.cursor = str(cursor) if cursor is not None else None
        for account, result in summary.accounts.items():
            loaded = after.get(account)
            result.cdrs_after = loaded.rows if loaded else 0
    summary.seconds = time.perf_counter() - started
    if failures:
        error = AccountsFailedError(failures, [a for a in accounts if a not in failures])
        error.summary = summary
        raise error
    return summary


# --- the reporting models after a sync (issue 16) -------------------------------------------
# The incremental models find what a sync changed by the load id dlt stamps on every row it
# writes (_dlt_load_id), and build after it under the same memory limit as the load.
LOAD_ID_SETTING = "normalize.parquet_normalizer.add_dlt_load_id"


@contextmanager
def stamp_load_ids() -> Iterator[None]:
    """Make dlt add ``_dlt_load_id`` to the Arrow tables the source yields (CDRs).

    dlt stamps rows normalized from JSON (users, queues) with their load's id anyway; Arrow
    tables get the column only with this setting, as a dictionary-encoded constant (no cost to
    speak of). A row's ``_dlt_load_id`` then says in which load it last changed: merged rows
    (re-read, corrected, marked deleted) get the new load's id.
    """
    with dlt.config.values({LOAD_ID_SETTING: True}):
        yield


@contextmanager
def models_duckdb_settings(pipeline: dlt.Pipeline) -> Iterator[None]:
    """DuckDB's memory limit while the models build (after a sync, or ``voipstudio models``):
    the load's (``DUCKDB_MEMORY_LIMIT``), so that a scheduled run's memory does not grow with
    the history; DuckDB spills to disk past it, and full builds run in pieces. Threads stay at
    DuckDB's default: nothing else runs meanwhile. A ``global_config`` of the user's wins, as
    for the sync. What the sync freed is handed back to the system first, so that its
    high-water mark and the models' do not add up in a scheduled run's peak memory."""
    release_free_memory()
    if not _duckdb_configured(pipeline):
        yield
        return
    key = "destination.duckdb.credentials.global_config"
    with dlt.config.values({key: {"memory_limit": DUCKDB_MEMORY_LIMIT}}):
        yield
