"""``voipstudio publish``: a read-only copy of the data for BI tools, so they never block a sync.

DuckDB lets one process write a database file, and no other process open it while it does; a
process holding it open, even read-only, stops a writer from opening it. A BI tool connected to
``data/calls.duckdb`` would make every sync fail, and a sync would make the BI tool fail. So BI
tools read a published copy instead:

* ``<directory>/<database file name>`` (``data/published/calls.duckdb``): the pipeline's dataset,
  raw tables, models (tables and views), copied table by table into a new file that replaces
  the previous copy with an atomic rename. A reader that has the old copy open keeps reading it,
  undisturbed, until it reconnects; new connections see the new copy.
* ``<directory>/parquet/<model>.parquet``: every reporting model as a Parquet file (each
  replaced atomically), for tools that read files, and for DuckDB sessions that should see new
  data on every query (a view over a Parquet file reads it each time).
* ``<directory>/manifest.json``: when it was published, from what, row counts, and the
  VoIPstudio accounts in the copy with each one's row counts.

Every account of the dataset is published: the tables carry each row's ``account``, and a BI
tool filters or sums by it.

The snapshot is written in DuckDB's ``v1.0.0`` storage format by default (``storage_version``):
this project's DuckDB (2.x) writes a newer format that the DuckDB 1.x embedded in BI tools'
drivers cannot open, while every DuckDB from 1.0 on reads ``v1.0.0`` files.

It runs under the sync lock (no sync is writing meanwhile, so the copy is consistent) after
every successful ``voipstudio sync`` when ``[publish] after_sync = true``, and on demand.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration

from pipelines.models import STATE_TABLES, load_project
from pipelines.report.data import literal, quote
from pipelines.voipstudio.configuration import describe, resolve, warn_unknown_keys
from pipelines.voipstudio.errors import ConfigError, VoipstudioError

SECTION = "publish"
SECTIONS = (SECTION,)
PARQUET_FOLDER = "parquet"
MANIFEST = "manifest.json"
# dlt's and the models' own bookkeeping: not for BI tools (``_dlt_loads`` stays: it says when
# data arrived).
SKIPPED_TABLES = frozenset({"_dlt_pipeline_state", "_dlt_version"}) | STATE_TABLES


class PublishError(VoipstudioError):
    """The copy could not be written (the loaded data is untouched)."""

    exit_code = 1


@configspec
class PublishSettings(BaseConfiguration):
    """Section ``[publish]`` of ``.dlt/config.toml`` (or ``PUBLISH__<KEY>`` variables).

    Attributes:
        after_sync: publish after every successful ``voipstudio sync``.
        directory: where the copy goes.
        parquet: also write the models as Parquet files.
        storage_version: DuckDB storage format of the snapshot (``v1.0.0``, ``v1.2.0``, ...,
            ``latest``): the oldest DuckDB among the BI tools must be able to read it. The
            default reads in every DuckDB from 1.0 on (BI drivers often embed a DuckDB older
            than this project's).
    """

    after_sync: bool = False
    directory: str = "data/published"
    parquet: bool = True
    storage_version: str = "v1.0.0"

    @property
    def path(self) -> Path:
        """``directory`` as a path."""
        return Path(self.directory)


@dataclass
class PublishResult:
    """What :func:`publish` wrote."""

    snapshot: Path
    rows: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, dict[str, int]] = field(default_factory=dict)
    parquet: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the console."""
        files = (
            f"; {len(self.parquet)} Parquet files in {self.parquet[0].parent}"
            if self.parquet
            else ""
        )
        accounts = ""
        if self.accounts:
            noun = "account" if len(self.accounts) == 1 else "accounts"
            accounts = f", {noun} {', '.join(self.accounts)}"
        return (
            f"published in {self.seconds:.1f}s: {self.snapshot} "
            f"({len(self.rows)} tables and views{accounts}){files}"
        )


def load_publish_settings(directory: str | Path | None = None) -> PublishSettings:
    """Read ``[publish]`` (config.toml, environment variables); ``directory`` overrides.

    Raises:
        ConfigError: a setting is invalid.
    """
    warn_unknown_keys(SECTIONS, PublishSettings.get_resolvable_fields())
    found = resolve(
        PublishSettings(),
        SECTIONS,
        explicit={"directory": None if directory is None else str(directory)},
    )
    version = found.storage_version.strip()
    if not re.fullmatch(r"v\d+\.\d+\.\d+|latest", version):
        raise ConfigError(
            f"{describe(SECTIONS, 'storage_version')} = {version!r}: use a DuckDB version like "
            "v1.0.0, or latest"
        )
    found.storage_version = version
    return found


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _copy_views(connection: duckdb.DuckDBPyConnection, views: list[tuple[str, str]]) -> None:
    """Create the views in the current catalog; one may depend on another, so retry until
    every view is made or no progress is possible."""
    pending = list(views)
    while pending:
        failed: list[tuple[str, str]] = []
        error: Exception | None = None
        for name, sql in pending:
            try:
                connection.execute(sql)
            except duckdb.Error as exc:
                failed.append((name, sql))
                error = exc
        if len(failed) == len(pending):
            raise PublishError(f"view {failed[0][0]} could not be copied: {error}")
        pending = failed


def _write_manifest(target: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (a reader never sees half of it)."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    partial.replace(target)


def publish(database: Path, dataset: str, settings: PublishSettings) -> PublishResult:
    """Publish a read-only copy of ``dataset`` of ``database`` (see the module docstring).

    Call it while holding the sync lock, so no sync writes the database meanwhile. Every file is
    written under a temporary name first and renamed into place only when all are complete, so a
    failure leaves the previous copy whole.

    Raises:
        ConfigError: there is no database file, or no such dataset in it.
        PublishError: the copy could not be written.
    """
    started = time.perf_counter()
    if not database.is_file():
        raise ConfigError(f"no database at {database}: run `voipstudio sync` first")
    directory = settings.path
    directory.mkdir(parents=True, exist_ok=True)
    snapshot = directory / database.name
    if snapshot.resolve() == database.resolve():
        raise ConfigError(f"[{SECTION}] directory must not be the database's own folder")
    result = PublishResult(snapshot)
    renames = [(directory / f".{database.name}.{os.getpid()}.tmp", snapshot)]
    _remove(renames[0][0])
    connection = duckdb.connect(":memory:")
    try:
        connection.execute(f"attach {literal(str(database))} as source_db (read_only)")
        relations = _relations(connection, dataset)
        if not relations:
            raise ConfigError(f"{database} has no dataset {dataset!r}: run `voipstudio sync`")
        _copy_dataset(
            connection, dataset, relations, renames[0][0], settings.storage_version, result
        )
        if settings.parquet:
            renames += _write_parquet(connection, dataset, directory / PARQUET_FOLDER, result)
        last_load = _last_load(connection, dataset) if "_dlt_loads" in relations else None
    except (duckdb.Error, PublishError) as exc:
        for partial, _ in renames:
            _remove(partial)
        if isinstance(exc, PublishError):
            raise
        raise PublishError(f"publishing to {directory} failed: {exc}") from exc
    finally:
        connection.close()
    # Readers switch from one copy to the next within a few milliseconds; one holding the old
    # snapshot open keeps its (deleted) file until it reconnects.
    for partial, target in renames:
        partial.replace(target)
    result.parquet = [target for _, target in renames[1:]]
    result.seconds = time.perf_counter() - started
    _write_manifest(
        directory / MANIFEST,
        {
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": database.name,
            "dataset": dataset,
            "last_load_at": last_load,
            "snapshot": snapshot.name,
            "storage_version": settings.storage_version,
            "parquet": [str(path.relative_to(directory)) for path in result.parquet],
            "rows": result.rows,
            "accounts": result.accounts,
        },
    )
    return result


def _relations(connection: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, str]:
    """``{name: 'BASE TABLE' | 'VIEW'}`` of the dataset in the attached source."""
    rows = connection.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_catalog = 'source_db' and table_schema = $ds order by table_name",
        {"ds": dataset},
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def _copy_dataset(
    connection: duckdb.DuckDBPyConnection,
    dataset: str,
    relations: dict[str, str],
    target: Path,
    storage_version: str,
    result: PublishResult,
) -> None:
    """Tables (data) and views (definitions) of the dataset into a new database file."""
    ds = quote(dataset)
    views = connection.execute(
        "select view_name, sql from duckdb_views() "
        "where database_name = 'source_db' and schema_name = $ds and not internal",
        {"ds": dataset},
    ).fetchall()
    connection.execute(
        f"attach {literal(str(target))} as snapshot (storage_version {literal(storage_version)})"
    )
    connection.execute(f"create schema snapshot.{ds}")
    for name, kind in relations.items():
        if kind != "VIEW" and name not in SKIPPED_TABLES:
            connection.execute(
                f"create table snapshot.{ds}.{quote(name)} as "  # noqa: S608 - identifiers
                f"select * from source_db.{ds}.{quote(name)}"
            )
    # A view's stored SQL names its tables by schema only: created in the snapshot's catalog it
    # reads the snapshot's tables, in the copy as in the original.
    connection.execute("use snapshot")
    _copy_views(connection, [(str(name), str(sql)) for name, sql in views])
    connection.execute("use memory")
    for name in relations:
        if name not in SKIPPED_TABLES:
            counted = connection.execute(
                f"select count(*) from snapshot.{ds}.{quote(name)}"  # noqa: S608 - identifiers
            ).fetchone()
            result.rows[name] = int(counted[0]) if counted else 0
    result.accounts = _account_rows(connection, dataset)
    connection.execute("detach snapshot")  # checkpoints: the file is complete on its own


def _account_rows(connection: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, dict[str, int]]:
    """``{account: {table or view: rows}}`` over the snapshot's relations with an ``account``
    column (child tables such as ``queues__users`` have none: they belong to their parent)."""
    ds = quote(dataset)
    with_account = connection.execute(
        "select table_name from information_schema.columns where table_catalog = 'snapshot' "
        "and table_schema = $ds and column_name = 'account' order by table_name",
        {"ds": dataset},
    ).fetchall()
    accounts: dict[str, dict[str, int]] = {}
    for (name,) in with_account:
        if name in SKIPPED_TABLES:
            continue
        counted = connection.execute(
            f"select account, count(*) from snapshot.{ds}.{quote(name)} "  # noqa: S608
            "group by account order by account"
        ).fetchall()
        for account, rows in counted:
            accounts.setdefault(str(account), {})[str(name)] = int(rows)
    return dict(sorted(accounts.items()))


def _write_parquet(
    connection: duckdb.DuckDBPyConnection, dataset: str, folder: Path, result: PublishResult
) -> list[tuple[Path, Path]]:
    """Every built model as a Parquet file under a temporary name; returns (temporary, final)."""
    folder.mkdir(exist_ok=True)
    written: list[tuple[Path, Path]] = []
    for model in load_project().models:
        if model.name not in result.rows:
            continue  # not built (its raw table was never loaded)
        partial = folder / f".{model.name}.parquet.{os.getpid()}.tmp"
        written.append((partial, folder / f"{model.name}.parquet"))
        connection.execute(
            f"copy (select * from source_db.{quote(dataset)}.{quote(model.name)}) "  # noqa: S608
            f"to {literal(str(partial))} (format parquet, compression zstd)"
        )
    return written


def _last_load(connection: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """When the last successful load finished (UTC, ISO), from dlt's ``_dlt_loads``."""
    row = connection.execute(
        f"select max(inserted_at) from source_db.{quote(dataset)}._dlt_loads "  # noqa: S608
        "where status = 0"
    ).fetchone()
    if not row or row[0] is None:
        return None
    value = row[0]
    return value.isoformat() if isinstance(value, datetime) else str(value)
