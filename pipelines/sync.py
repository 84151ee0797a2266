"""Running a sync: the dlt pipeline, the single-run lock, and committing a long backfill in parts.

A sync fixes the end of its range when it starts (its :class:`RunPlan`). Each dated collection's
resource (``cdrs``, ...) reads windows up to it; when a backfill is larger than
``commit_every_rows``, it is loaded in several ``pipeline.run`` calls, each of which commits its
data together with the cursor, so a run killed half-way resumes from the last committed part
instead of from the start.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination import TDestinationReferenceArg
from dlt.common.destination.configuration import ParquetFormatConfiguration
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from pipelines.kept_history import keep_histories, restore_histories
from pipelines.load_packages import prune_load_packages
from pipelines.pending import abort_pending, load_pending, refused_loads_aborted, run_pipeline
from pipelines.pipeline_settings import PIPELINE_NAME, load_pipeline_settings
from pipelines.voipstudio import catalog, settings, voipstudio_source
from pipelines.voipstudio.accounts import Account, load_source_configuration
from pipelines.voipstudio.catalog import CDRS
from pipelines.voipstudio.collection import Collection, DatedCollection, Dimension
from pipelines.voipstudio.errors import AccountsFailedError, ConfigError, LockedError
from pipelines.voipstudio.memory import release_free_memory, sync_memory
from pipelines.voipstudio.plan import Ceilings, RunPlan
from pipelines.voipstudio.reader import skipped, unchanged
from pipelines.voipstudio.rereads import StoredRows, fetch_stored, reread_since, unchanged_rows
from pipelines.voipstudio.state import ResourceState, resource_states

log = logging.getLogger(__name__)

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
    secrets.toml) names another file. A relative path is relative to the current directory.

    DuckDB and PostgreSQL are told they run data statements in transactions, which dlt's own
    capabilities leave unset: otherwise the merge of ``cdrs`` (a DELETE of the rows read again,
    then an INSERT) runs in autocommit, and a load the destination refuses half-way leaves
    those rows deleted until a later sync loads them again.

    Raises:
        ConfigError: a bad ``[pipelines.<name>]`` setting, or a DuckDB file that cannot be
            written where it is configured.
    """
    configured = load_pipeline_settings(pipeline_name)
    duckdb_file: str | None = None
    if destination is None:
        credentials: object = dlt.secrets.get("destination.duckdb.credentials")
        # dlt resolves a relative DuckDB path against the folder the pipeline first ran in
        # (kept in its working folder, shared by every project folder on the machine), so a
        # sync from another folder would write into the first one's file: resolve it here.
        here = str(Path.cwd())
        if configured.destination_type == "duckdb":
            if not credentials:
                checked_duckdb_path(DEFAULT_DUCKDB_PATH, default=True)
                destination = dlt.destinations.duckdb(
                    credentials=DEFAULT_DUCKDB_PATH,
                    parquet_format=_duckdb_parquet_format(),
                    local_dir=here,
                    supports_transactions=True,
                )
            else:
                # The file named by the configuration (DESTINATION__DUCKDB__CREDENTIALS or
                # secrets.toml), also when no destination_type is configured at all.
                duckdb_file = credentials if isinstance(credentials, str) else None
                destination = dlt.destinations.duckdb(
                    parquet_format=_duckdb_parquet_format(),
                    local_dir=here,
                    supports_transactions=True,
                )
        elif configured.destination_type == "postgres":
            destination = dlt.destinations.postgres(supports_transactions=True)
    pipeline = dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=destination,
        dataset_name=dataset_name or configured.dataset_name,
        pipelines_dir=pipelines_dir,  # type: ignore[arg-type]  # None means dlt's default
    )
    if duckdb_file is not None:
        # Checked once dlt has made its own folders: a DuckDB file next to them has its folder.
        checked_duckdb_path(duckdb_file)
    return pipeline


DUCKDB_KEY = "DESTINATION__DUCKDB__CREDENTIALS"


def checked_duckdb_path(path: str, *, default: bool = False) -> Path:
    """The DuckDB file ``path``, checked to be creatable or writable where it is.

    A file DuckDB cannot open fails deep in dlt with "IO Error" and an unexpected-error exit;
    this says which setting names it and what is wrong. A folder that does not exist is
    created only for the default path (``data/``): a configured path with a missing folder is
    more likely a typo than a wish.

    Args:
        path: the configured path (``:memory:``, ``md:...`` and URLs are left to DuckDB).
        default: it is the default ``data/calls.duckdb``.

    Raises:
        ConfigError: the path is a folder, or its folder is missing, a file, or not writable.
    """
    file = Path(path).expanduser()
    if path.startswith((":", "md:", "motherduck:")) or "://" in path:
        return file
    where = f"the DuckDB file {str(file)!r}" + (
        "" if default else f" ({DUCKDB_KEY} or [destination.duckdb] credentials)"
    )
    folder = file.parent
    if default and not folder.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"{where}: its folder {str(folder)!r} cannot be created ({error.strerror}); "
                f"set {DUCKDB_KEY} to a file in a folder you can write"
            ) from None
    if file.is_dir():
        raise ConfigError(f"{where} is a folder: name a file in it, e.g. {file / 'calls.duckdb'}")
    if not folder.exists() or not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ConfigError(
            f"{where}: its folder {str(folder)!r} {what}; create the folder or set {DUCKDB_KEY} "
            "to a file in an existing folder"
        )
    if file.exists():
        if not os.access(file, os.R_OK | os.W_OK):
            raise ConfigError(f"{where} cannot be read and written by this user")
        return file
    # Not there yet: DuckDB creates it. Try in the same folder (a pseudo file system such as
    # /proc, a read-only mount or a folder of another user refuse), under a name of our own.
    probe = folder / f".{file.name}.{os.getpid()}.probe"
    try:
        probe.touch(exist_ok=False)
    except FileExistsError:
        return file
    except OSError as error:
        raise ConfigError(
            f"{where} cannot be created in {str(folder)!r} ({error.strerror}); set "
            f"{DUCKDB_KEY} to a file in a folder you can write"
        ) from None
    probe.unlink(missing_ok=True)
    return file


@contextmanager
def _sync_settings(pipeline: dlt.Pipeline) -> Iterator[None]:
    """dlt's settings for the duration of a sync: DuckDB's (:func:`_duckdb_settings`), refused
    loads aborted (``pending.refused_loads_aborted``), load ids stamped (:func:`stamp_load_ids`).

    One layer of the in-memory configuration for all of them: each layer copies and parses
    config.toml twice (30-90 ms here), which a sync that finds nothing new should not pay
    three times. Restored on exit: environment variables and secrets.toml would still win, and
    nothing is written to disk.
    """
    with dlt.config.values(
        {**_duckdb_settings(pipeline), **refused_loads_aborted(), LOAD_ID_SETTING: True}
    ):
        yield


def _duckdb_settings(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """DuckDB settings for the duration of a sync, unless ``global_config`` is configured
    (then none).

    - ``memory_limit`` 256 MB. DuckDB keeps the blocks a load writes in its buffer pool up to
      its own limit, 80% of the machine's RAM, so without a cap a sync's peak memory grows
      with the size of the load (about 150 MB more for every 500,000 CDRs) on top of what the
      scan used. Capped, DuckDB writes those blocks out and evicts them, and spills what it
      can; a ``MERGE``'s insert buffer cannot be spilled, which is why the later parts of a
      backfill load by ``delete-insert`` (:func:`merge_strategy`).
    - ``threads`` half the CPUs. During the load dlt's own threads run too; on 2 CPUs a
      single DuckDB thread loads 1,000,000 CDRs 20% faster than two, with 50 MB less memory.

    Only the sync is concerned; the models built after it run under the same memory limit
    (:func:`models_duckdb_settings`). Set ``[destination.duckdb.credentials] global_config`` (or
    ``DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG``), e.g. ``{memory_limit = "2GB"}``,
    to choose for yourself.
    """
    if not _duckdb_configured(pipeline):
        return {}
    key = "destination.duckdb.credentials.global_config"
    return {
        key: {"memory_limit": DUCKDB_MEMORY_LIMIT, "threads": max(1, (os.cpu_count() or 2) // 2)}
    }


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

    The lock is the kernel's (``flock``) on ``sync.lock`` in the pipeline's working folder: it
    is held exactly as long as its holder lives, and released by the kernel when the holder
    dies, however (SIGKILL, a crash, a lost container). The file's text only says who holds it
    (pid, host, since when): a holder that ends normally empties it, so text found in a file
    that is not locked is what a holder that is gone left behind (a killed sync, a folder
    restored from another machine's cache). That lock is taken over, with a log line naming the
    previous holder.

    Raises:
        LockedError: a live process holds it; nothing was touched.
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
                "this one exits without touching anything: schedule syncs further apart, or "
                "stop that process if it is stuck"
            ) from None
        handle.seek(0)
        left_behind = handle.read().strip()
        if left_behind:
            log.warning(
                "taking over the lock of pipeline '%s' (%s): its holder (%s) ended without "
                "releasing it (killed, or the folder comes from another machine); what it had "
                "committed is kept",
                pipeline.pipeline_name,
                path,
                left_behind,
            )
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"pid {os.getpid()} on host {socket.gethostname()} since "
            f"{datetime.now().astimezone().isoformat(timespec='seconds')}"
        )
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_cursor(
    pipeline: dlt.Pipeline, account: str | None = None, collection: DatedCollection = CDRS
) -> str | None:
    """A dated collection's cursor (``cdrs`` unless told): every record with a cursor value up
    to it has been loaded (the text of the cursor's clock, see ``collection.Cursor``).

    Args:
        pipeline: the pipeline.
        account: a named account; None = the single account of ``[sources.voipstudio]``.
        collection: the collection.
    """
    state = resource_states(pipeline).get(collection.resource_name(account))
    return None if state is None else state.cursor


def oldest_cursor(cursors: list[str | None]) -> str | None:
    """The cursor every account has reached: None when one has none (or there are none)."""
    if not cursors or None in cursors:
        return None
    return min(cursor for cursor in cursors if cursor is not None)


@dataclass(frozen=True)
class Loaded:
    """What the destination holds of one account's records of a dated collection."""

    rows: int
    newest: datetime | None  # the newest cursor value, UTC


def loaded_by_account(
    pipeline: dlt.Pipeline,
    collections: Sequence[Collection] = (CDRS,),
    then: Callable[[Any, dict[str, dict[str, Loaded]]], None] | None = None,
) -> dict[str, dict[str, Loaded]]:
    """Per collection of ``collections``, its records in the destination per account (tables
    and accounts without any are absent), e.g. ``{"cdrs": {"default": Loaded(...)}}``; the
    newest cursor value of dated collections only.

    One connection: each connection to the destination costs time a sync that finds nothing
    new should not spend; ``then(client, loaded)``, if given, runs in it too, once the counts
    are known (it must not raise).

    Raises:
        ConfigError: a table was loaded by a version of this pipeline whose rows did not carry
            their account; merging on ``(account, id)`` into it would duplicate every row.
    """
    # Every table of the source is checked, whichever are read now.
    tables = [c.name for c in catalog.COLLECTIONS]
    tables += [c.rejects_table for c in catalog.DATED]
    loaded: dict[str, dict[str, Loaded]] = {}
    try:
        with pipeline.sql_client() as client:
            stored = table_columns(client, tables)
            present = [table for table in tables if table in stored]
            for table in present:
                if settings.ACCOUNT_COLUMN not in stored[table]:
                    raise ConfigError(
                        f"table {table} of dataset {pipeline.dataset_name} was loaded before "
                        "rows carried their account; run `voipstudio sync --full-refresh` once "
                        "to load it again (it re-reads from start_date)"
                    )
                if LOAD_ID_COLUMN not in stored[table]:
                    add_load_id_column(client, table)
            for collection in collections:
                if collection.name not in present:
                    continue
                name = client.make_qualified_table_name(collection.name)
                newest = (
                    f"max({collection.cursor.path})"
                    if isinstance(collection, DatedCollection)
                    else "NULL"
                )
                sql = (
                    f"SELECT {settings.ACCOUNT_COLUMN}, count(*), {newest} "  # noqa: S608
                    f"FROM {name} GROUP BY {settings.ACCOUNT_COLUMN}"
                )
                loaded[collection.name] = _loaded(client.execute_sql(sql))
            if then is not None:
                then(client, loaded)
    except ConfigError:
        raise
    except Exception:  # no dataset or no table yet: nothing loaded
        return {}
    return loaded


def stored_rereads(
    client: Any,
    plan: RunPlan,
    wanted: Sequence[tuple[DatedCollection, Account, str]],
    states: dict[str, ResourceState],
) -> dict[tuple[str, str], StoredRows]:
    """The destination's rows of the window each ``(collection, account, resource)`` of an
    incremental run reads again, per ``(table, account)`` (``rereads``), through an open
    connection: a re-read row equal to its stored version is then not loaded again. Nothing on
    a backfill of an explicit range, for resources that never loaded, or when the destination
    cannot say (every row is then loaded, as always)."""
    stored: dict[tuple[str, str], StoredRows] = {}
    for collection, account, resource in wanted:
        try:
            since = reread_since(plan, collection, account, states.get(resource, ResourceState()))
            if since is None:
                continue
            path = collection.cursor.path
            rows = fetch_stored(client, collection.name, path, account.name, since)
        except Exception as error:  # any doubt: compare nothing, load every row read
            log.debug(
                "%s of account '%s': every row read again is loaded, the stored ones could not "
                "be read (%s)",
                collection.name,
                account.name,
                error,
            )
            continue
        if rows is not None:
            stored[(collection.name, account.name)] = rows
    return stored


def _ceilings(loaded: dict[str, dict[str, Loaded]], dated: Sequence[DatedCollection]) -> Ceilings:
    """The newest cursor value the destination holds per dated ``(table, account)``."""
    names = {c.name for c in dated}
    return {
        (table, account): value.newest
        for table, by_account in loaded.items()
        if table in names
        for account, value in by_account.items()
        if value.newest is not None
    }


def table_columns(client: Any, tables: Sequence[str]) -> dict[str, list[str]]:
    """The columns of each of ``tables`` in the destination (a table it does not hold is
    absent), from one query of its information schema: a query per table costs a round trip
    and, for a table that is not there, an error, about 2-10 ms each on DuckDB."""
    catalog_name, schema_name, folded = client._get_information_schema_components(*tables)
    conditions, parameters = ["table_schema = %s"], [schema_name]
    if catalog_name:
        conditions.insert(0, "table_catalog = %s")
        parameters.insert(0, catalog_name)
    rows = client.execute_sql(
        "SELECT table_name, column_name FROM information_schema.columns WHERE "  # noqa: S608
        f"{' AND '.join(conditions)} ORDER BY table_name, ordinal_position",
        *parameters,
    )
    names = dict(zip(folded, tables, strict=True))
    columns: dict[str, list[str]] = {}
    for table_name, column in rows or ():
        table = names.get(str(table_name))
        if table is not None:
            columns.setdefault(table, []).append(str(column))
    return columns


def _loaded(rows: Any) -> dict[str, Loaded]:
    loaded = {}
    for account, count, newest in rows or ():
        if isinstance(newest, datetime) and newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        loaded[str(account)] = Loaded(
            int(count), newest.astimezone(UTC) if isinstance(newest, datetime) else None
        )
    return loaded


def table_is_empty(pipeline: dlt.Pipeline, table: str) -> bool:
    """True only when the destination certainly holds no row of ``table``: the dataset or the
    table does not exist, or the table has no row. Any other failure to tell answers False."""
    try:
        with pipeline.sql_client() as client:
            if not client.has_dataset():
                return True
            name = client.make_qualified_table_name(table)
            rows = client.execute_sql(f"SELECT 1 FROM {name} LIMIT 1")  # noqa: S608
    except DatabaseUndefinedRelation:
        return True
    except Exception:  # unreachable, locked, unknown: merge as usual, which is always right
        return False
    return not rows


def merges_by_upsert(pipeline: dlt.Pipeline) -> bool:
    """Whether the sync merges dated collections with dlt's ``upsert`` strategy (one ``MERGE``
    on the primary key) instead of ``delete-insert``: on DuckDB only.

    DuckDB updates matched rows in place, where ``delete-insert`` deletes them and appends
    them again, so that at the checkpoint ending the load DuckDB rewrites every row group the
    deletes touched: about 2 s more per incremental sync at 500,000 CDRs once a chain of syncs
    has begun (docs/benchmarks.md). Both merge on ``(account, id)``, and the rows of one load
    are unique on it (the source de-duplicates them), which ``upsert`` requires. PostgreSQL
    keeps ``delete-insert``: dlt's ``upsert`` is a ``MERGE`` statement, which PostgreSQL only
    has from version 15 on. Reconcile's loads keep ``delete-insert`` too: they are rare, and
    the two strategies leave the same rows.
    """
    destination = pipeline.destination
    return destination is not None and destination.destination_type.endswith(".duckdb")


def merge_strategy(pipeline: dlt.Pipeline, *, later_part: bool, explicit: bool) -> str:
    """dlt's merge strategy for a dated collection's load: ``upsert`` only for the first part
    of an incremental sync on DuckDB (:func:`merges_by_upsert`), otherwise ``delete-insert``
    (the collection's own hints, which say its rows are de-duplicated).

    DuckDB's ``MERGE`` (dlt's ``upsert``) needs memory that grows with the rows it merges: it
    holds a row group of the rows it inserts (about 90 MB of CDRs) in memory DuckDB cannot
    evict, and when the rows' ids are not all above the table's, it joins them with the whole
    table: a part of 1,000,000 CDRs merged into 4,000,000 needed about 248 MB of the load's
    256 MB, and failed with ``Out of Memory Error`` once in a 5,000,000-CDR first sync.
    ``delete-insert`` deletes the rows read again and inserts the part as an ``INSERT``
    does, which DuckDB writes out as it goes: about 23 MB for the same part, at any table size
    (docs/benchmarks.md, "DuckDB memory during a long backfill"). Both leave the same rows.

    - A later part of a backfill committed in parts reads a range no earlier part read, so
      its delete finds (almost) nothing: none of the row groups rewritten that make
      ``delete-insert`` slower for an incremental sync's re-read lag window.
    - An explicit range (``--start``/``--end``) is loaded in one load of any size, often of
      rows already stored.
    """
    if later_part or explicit or not merges_by_upsert(pipeline):
        return "delete-insert"
    return "upsert"


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
        resources: which collections to load (default: the ``resources`` setting).
        accounts: which of the configured accounts to sync (default all).
        commit_every_rows: commit a long backfill every so many records (per resource).
        abort_pending: first set aside the load packages an earlier sync left pending
            (``pipelines.pending``), instead of loading them.
    """

    start: str | None = None
    end: str | None = None
    full_refresh: bool = False
    resources: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    commit_every_rows: int = DEFAULT_COMMIT_EVERY_ROWS
    abort_pending: bool = False


@dataclass
class AccountResult:
    """What a sync did for one account."""

    cdrs_before: int = 0
    cdrs_after: int = 0
    cursor: str | None = None
    error: str | None = None


@dataclass
class SyncSummary:
    """What a sync did.

    Attributes:
        rows_loaded: rows loaded per table.
        accounts: per account, its CDRs and cursor.
        loads: ``pipeline.run`` calls (a long backfill is committed in parts).
        seconds: how long it took.
        resources: the collections it read.
        skipped: the resources skipped because the API refused them (403 or 404: the
            account's plan or the key does not include the collection), with the status.
        unchanged: the dimension resources read exactly as their last load and so not loaded
            again (their tables already hold them).
        unchanged_rows: per dated collection's table, the rows read again (the lag window)
            exactly as the destination holds them, and so not loaded again (``rereads``).
    """

    rows_loaded: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, AccountResult] = field(default_factory=dict)
    loads: int = 0
    seconds: float = 0.0
    resources: tuple[str, ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)
    unchanged: tuple[str, ...] = ()
    unchanged_rows: dict[str, int] = field(default_factory=dict)

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
        """The oldest ``cdrs`` cursor of the synced accounts: all of them are loaded up to it."""
        return oldest_cursor([result.cursor for result in self.accounts.values()])

    @property
    def cdrs_new(self) -> int:
        """CDRs that were not in the table before."""
        return max(0, self.cdrs_after - self.cdrs_before)

    @property
    def cdrs_updated(self) -> int:
        """CDRs read again (the lag window, late rows) that changed, merged over their stored
        version."""
        return max(0, self.rows_loaded.get(CDRS.name, 0) - self.cdrs_new)

    @property
    def cdrs_unchanged(self) -> int:
        """CDRs read again exactly as the table holds them, and so not loaded again."""
        return self.unchanged_rows.get(CDRS.name, 0)

    @property
    def cdrs_read(self) -> int:
        """CDRs read: those loaded and those read again unchanged."""
        return self.rows_loaded.get(CDRS.name, 0) + self.cdrs_unchanged

    @property
    def rejected(self) -> dict[str, int]:
        """Records that could not be parsed, per rejects table that received some."""
        tables = {c.rejects_table for c in catalog.DATED}
        return {t: n for t, n in self.rows_loaded.items() if t in tables and n}

    @property
    def rejects(self) -> int:
        """Records that could not be parsed and went to a rejects table."""
        return sum(self.rejected.values())


def _selection(
    options: SyncOptions, chosen: Sequence[Collection], configured: list[str], named: bool
) -> dict[str, tuple[Collection, str]]:
    """The resources a sync runs: resource name -> (collection, account).

    Raises:
        ConfigError: an unknown account, or a full refresh of some accounts only.
    """
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
        collection.resource_name(account if named else None): (collection, account)
        for account in accounts
        for collection in chosen
    }


def run_sync(pipeline: dlt.Pipeline, options: SyncOptions | None = None) -> SyncSummary:
    """Bring the destination up to date (or load the range the options name).

    Named accounts are read in parallel in one run; one that fails does not stop the others.

    Raises:
        ConfigError: a bad option or setting (before anything is read).
        LockedError: another sync of this pipeline is running.
        LoadFailedError: the destination did not take a load (see ``pipelines.pending``).
        AccountsFailedError: some accounts failed (the others were loaded); it carries the
            summary.
        VoipstudioError: (inside dlt's PipelineStepFailed) what stopped the sync.
    """
    options = options or SyncOptions()
    # Every setting is checked before the lock is taken and anything is read.
    configuration = load_source_configuration()
    chosen = (
        catalog.choose(options.resources, "--resources")
        if options.resources
        else configuration.resources
    )
    configured = [account.name for account in configuration.accounts]
    selection = _selection(options, chosen, configured, configuration.named)
    if options.commit_every_rows < 1:
        raise ConfigError("commit_every_rows must be at least 1")
    keep_packages = load_pipeline_settings(pipeline.pipeline_name).keep_load_packages
    explicit = options.start is not None or options.end is not None
    plan = RunPlan.backfill(
        options.start,
        options.end,
        max_rows=None if explicit else options.commit_every_rows,
    )
    dated = [c for c in chosen if isinstance(c, DatedCollection)]
    started = time.perf_counter()
    summary = SyncSummary(resources=tuple(c.name for c in chosen))
    accounts = sorted({account for _, account in selection.values()})
    accounts_by_name = {account.name: account for account in configuration.accounts}
    with (
        sync_lock(pipeline),
        sync_memory(),
        _sync_settings(pipeline),
    ):
        # What an earlier sync left pending goes first: dlt's run() would load it and read
        # nothing new (see pipelines.pending).
        if options.abort_pending:
            abort_pending(pipeline)
        load_pending(pipeline)
        plan = dataclasses.replace(plan, run_at=datetime.now(UTC))
        # The CDRs of every account are counted for the summary, whichever collections run;
        # the dimensions' rows tell whether one read unchanged may skip its load.
        dimensions = [c for c in chosen if isinstance(c, Dimension)]
        counted = [CDRS, *(c for c in dated if c is not CDRS), *dimensions]
        wanted = [
            (collection, accounts_by_name[account], name)
            for name, (collection, account) in selection.items()
            if isinstance(collection, DatedCollection)
        ]
        stored: dict[tuple[str, str], StoredRows] = {}

        def fetch_rereads(client: Any, loaded: dict[str, dict[str, Loaded]]) -> None:
            # Through the connection that counted: the rows the run will read again.
            counted_plan = dataclasses.replace(plan, ceilings=_ceilings(loaded, dated))
            stored.update(stored_rereads(client, counted_plan, wanted, resource_states(pipeline)))

        before = (
            {} if options.full_refresh else loaded_by_account(pipeline, counted, then=fetch_rereads)
        )
        for account in accounts:
            loaded = before.get(CDRS.name, {}).get(account)
            summary.accounts[account] = AccountResult(cdrs_before=loaded.rows if loaded else 0)
        held = {
            (collection.name, account): value.rows
            for collection in dimensions
            for account, value in before.get(collection.name, {}).items()
        }
        plan = dataclasses.replace(
            plan,
            ceilings=_ceilings(before, dated),
            held=None if options.full_refresh else held,
            stored=stored,
        )
        # A first load into an empty table is appended instead of merged: the rows of one load
        # are unique on (account, id) (the source de-duplicates them), so with nothing to merge
        # with the result is the same, without the staging copy and the delete that double
        # the time of a first sync. Only when no earlier load is pending (dlt loads those
        # first, and their rows would then be in the table) and the table is certainly empty;
        # a later part of a long backfill merges as usual.
        append_first = {
            collection.name
            for collection in dated
            if (options.full_refresh or not before.get(collection.name))
            and not pipeline.has_pending_data
            and (options.full_refresh or table_is_empty(pipeline, collection.name))
        }
        part = list(selection)
        ran: set[str] = set()
        states: dict[str, ResourceState] = {}
        while True:
            source = voipstudio_source(plan=plan).with_resources(*part)
            for name in part:
                collection = selection[name][0]
                if summary.loads == 0 and collection.name in append_first:
                    source.resources[name].apply_hints(write_disposition="append")
                elif isinstance(collection, DatedCollection) and (
                    merge_strategy(pipeline, later_part=summary.loads > 0, explicit=explicit)
                    == "upsert"
                ):
                    source.resources[name].apply_hints(
                        write_disposition={"disposition": "merge", "strategy": "upsert"}
                    )
            if options.full_refresh and summary.loads == 0:
                keep_histories(pipeline)
                run_pipeline(pipeline, source, refresh="drop_sources")
            else:
                run_pipeline(pipeline, source)
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
                if isinstance(selection[name][0], DatedCollection)
                and (state := states.get(name, ResourceState())).more
                and state.error is None
            ]
            if explicit or not part:
                break
            # The next parts continue at their cursors: the previous part loaded them.
            plan = dataclasses.replace(plan, resume=True, ceilings=None)
        restore_histories(pipeline)
        summary.skipped = skipped(plan.key)
        summary.unchanged = unchanged(plan.key)
        summary.unchanged_rows = unchanged_rows(plan.key)
        # A run that loaded no CDR (nothing new or changed) left their counts as they were:
        # no second connection for them.
        unloaded = not options.full_refresh and (
            CDRS.name in before and CDRS.name not in summary.rows_loaded
        )
        after = {CDRS.name: before[CDRS.name]} if unloaded else loaded_by_account(pipeline, [CDRS])
        failures: dict[str, tuple[int, str]] = {}
        for name in sorted(ran):
            collection, account = selection[name]
            result = summary.accounts[account]
            state = states.get(name, ResourceState())
            failed = state.error
            if failed is not None and account not in failures:
                failures[account] = (failed.exit_code, failed.message)
                result.error = failed.message
            if collection is CDRS:
                result.cursor = state.cursor
        for account, result in summary.accounts.items():
            loaded = after.get(CDRS.name, {}).get(account)
            result.cdrs_after = loaded.rows if loaded else 0
        prune_load_packages(pipeline, keep_packages)
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
LOAD_ID_COLUMN = "_dlt_load_id"


def add_load_id_column(client: Any, table: str) -> None:
    """Give a table loaded before the sync stamped load ids (its Arrow rows had none) a
    nullable ``_dlt_load_id`` column, and its copy in dlt's staging dataset (merges) too.

    dlt would otherwise add the column ``NOT NULL`` to a table that has rows, and the load
    would fail. Its older rows keep NULL there (the models built them already); every row
    loaded or merged from now on gets its load's id, so the builds after this sync are
    incremental again.
    """
    log.info(
        "table %s was loaded by an earlier version: adding its %s column (older rows keep NULL)",
        table,
        LOAD_ID_COLUMN,
    )
    column = client.escape_column_name(LOAD_ID_COLUMN)
    text = client.capabilities.get_type_mapper().to_destination_type(
        {"name": LOAD_ID_COLUMN, "data_type": "text", "nullable": True}, {"name": table}
    )
    client.execute_sql(
        f"ALTER TABLE {client.make_qualified_table_name(table)} ADD COLUMN {column} {text}"
    )
    with client.with_staging_dataset():
        staging = client.make_qualified_table_name(table)
        try:
            with client.execute_query(f"SELECT * FROM {staging} WHERE 1 = 0") as cursor:  # noqa: S608
                names = [str(c[0]) for c in cursor.description or ()]
        except DatabaseUndefinedRelation:
            return
        if LOAD_ID_COLUMN not in names:
            client.execute_sql(f"ALTER TABLE {staging} ADD COLUMN {column} {text}")


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
    high-water mark and the models' do not add up in a scheduled run's peak memory; the models
    run with the sync's allocators (:func:`~pipelines.voipstudio.memory.sync_memory`)."""
    release_free_memory()
    with sync_memory():
        if not _duckdb_configured(pipeline):
            yield
            return
        key = "destination.duckdb.credentials.global_config"
        with dlt.config.values({key: {"memory_limit": DUCKDB_MEMORY_LIMIT}}):
            yield
