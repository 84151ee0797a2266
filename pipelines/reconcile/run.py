"""Running ``voipstudio reconcile``: under the sync's lock, every account reconciled on its own,
then every change applied in one dlt load (merged on ``(account, id)``, like the sync's)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.libs.pyarrow import columns_to_arrow
from dlt.extract.resource import DltResource

from pipelines.reconcile.account import AccountReconciler, Changes, Scope
from pipelines.reconcile.settings import check_days, load_reconcile_settings
from pipelines.reconcile.stored import LOAD_ID_COLUMN, TABLE, json_text, open_stored
from pipelines.reconcile.summary import (
    COUNTERS,
    FAILED,
    REFUSED,
    SKIPPED,
    AccountResult,
    ReconcileSummary,
)
from pipelines.sync import read_cursor, sync_lock
from pipelines.voipstudio import configured_accounts, settings
from pipelines.voipstudio.accounts import configured_account_names, parse_start
from pipelines.voipstudio.catalog import CDRS
from pipelines.voipstudio.errors import ConfigError
from pipelines.voipstudio.redaction import redact

log = logging.getLogger(__name__)

RESOURCE = "reconcile"
# One row per account and reconcile run (dry runs excepted): what `voipstudio status` shows as
# the last reconcile, and a history a monitor or a BI tool can query.
RUNS_TABLE = "reconcile_runs"
# Declared: a column that is null in every row of the first run (error, first_checked) would
# otherwise not exist until a run fills it, and queries of it would fail.
RUNS_COLUMNS: dict[str, Any] = {
    "account": {"data_type": "text", "nullable": False},
    "reconciled_at": {"data_type": "timestamp", "nullable": False},
    "status": {"data_type": "text", "nullable": False},
    "applied": {"data_type": "bool", "nullable": False},
    "first_checked": {"data_type": "text"},
    "last_checked": {"data_type": "text"},
    "days": {"data_type": "bigint", "nullable": False},
    **{name: {"data_type": "bigint", "nullable": False} for name in COUNTERS},
    "error": {"data_type": "text"},
}
# dlt adds `_dlt_load_id` to Arrow tables only when told; a table that has the column must get
# it from every load (see `_stamping`).
LOAD_ID_SETTING = "normalize.parquet_normalizer.add_dlt_load_id"


@dataclass
class ReconcileOptions:
    """What one ``voipstudio reconcile`` does.

    Attributes:
        days: re-read this many days before the day of the sync's cursor, and that day up to
            the cursor (default ``[reconcile] days``).
        since: start at this day instead (``YYYY-MM-DD``, each account's own day).
        counts_only: count each day in the API and in the destination, and re-read only the
            days whose counts differ.
        accounts: which configured accounts (default all).
        dry_run: find and report, apply nothing.
    """

    days: int | None = None
    since: str | None = None
    counts_only: bool = False
    accounts: tuple[str, ...] = ()
    dry_run: bool = False


def run_reconcile(
    pipeline: dlt.Pipeline, options: ReconcileOptions | None = None
) -> ReconcileSummary:
    """Find the late, changed and deleted CDRs of the recent days and apply them.

    The sync's state is read, never written: cursors stay where they are.

    Raises:
        ConfigError: a bad option or setting, or an unknown account.
        LockedError: a sync (or another reconcile) of this pipeline is running.
    """
    options = options or ReconcileOptions()
    if options.days is not None and options.since:
        raise ConfigError("give --days or --since, not both")
    guard = load_reconcile_settings()
    scope = Scope(
        days=guard.days if options.days is None else check_days(options.days),
        since=parse_start(options.since, "--since").date() if options.since else None,
        counts_only=options.counts_only,
    )
    accounts = configured_accounts()
    named = bool(configured_account_names())
    configured = [account.name for account in accounts]
    wanted = list(dict.fromkeys(options.accounts)) or configured
    unknown = [name for name in wanted if name not in configured]
    if unknown:
        raise ConfigError(
            f"unknown account(s) {', '.join(unknown)}: the configured accounts are "
            f"{', '.join(configured)}"
        )
    started = time.perf_counter()
    summary = ReconcileSummary(dry_run=options.dry_run)
    marked_at = datetime.now(UTC).replace(microsecond=0)
    with sync_lock(pipeline):
        _finish_pending_loads(pipeline)
        # The cursors, from the destination when this machine's dlt folder is new or older.
        with contextlib.suppress(Exception):
            pipeline.sync_destination()
        changes: list[Changes] = []
        with open_stored(pipeline) as stored:
            stamp = stored is not None and LOAD_ID_COLUMN in stored.columns
            for account in accounts:
                if account.name not in wanted:
                    continue
                if stored is None:
                    result = AccountResult(timezone=account.timezone, status=SKIPPED)
                    result.error = "no CDR loaded yet: nothing to reconcile"
                    summary.accounts[account.name] = result
                    continue
                cursor = read_cursor(pipeline, account.name if named else None)
                reconciler = AccountReconciler(account, stored, guard, marked_at)
                result, change = reconciler.run(cursor, scope)
                summary.accounts[account.name] = result
                if result.status not in (REFUSED, FAILED, SKIPPED):
                    changes.append(change)
        if not options.dry_run:
            loading = [change for change in changes if change.rows or change.rejects]
            for change in changes:
                summary.accounts[change.account].applied = True
            runs = [
                run_record(name, result, marked_at)
                for name, result in summary.accounts.items()
                if result.status != SKIPPED
            ]
            if loading or runs:
                load_id = _apply(pipeline, loading, runs, named=named, stamp=stamp)
                summary.load_id = load_id if loading else None
    summary.seconds = time.perf_counter() - started
    return summary


def run_record(account: str, result: AccountResult, at: datetime) -> dict[str, Any]:
    """The row of ``reconcile_runs`` for one account's reconcile: when, how it ended, what it
    checked (API wall time) and found."""
    return {
        "account": account,
        "reconciled_at": at,
        "status": result.status,
        "applied": result.applied,
        "first_checked": result.first,
        "last_checked": result.last,
        "days": len(result.days),
        **result.totals(),
        # Stored in the destination: masked as the logs are.
        "error": redact(result.error) if result.error else None,
    }


def _finish_pending_loads(pipeline: dlt.Pipeline) -> None:
    """Load what an earlier run left pending first: dlt would otherwise load it instead of
    this run's changes, and ignore them."""
    if pipeline.has_pending_data:
        log.info("loading the package an earlier run left pending before reconciling")
        pipeline.run()


@contextlib.contextmanager
def _stamping(stamp: bool) -> Iterator[None]:
    """Stamp ``_dlt_load_id`` on the rows of this load when the table has that column (the
    incremental models find changed rows by it; a table with the column cannot take rows
    without it)."""
    if not stamp:
        yield
        return
    with dlt.config.values({LOAD_ID_SETTING: True}):
        yield


def _apply(
    pipeline: dlt.Pipeline,
    changes: list[Changes],
    runs: list[dict[str, Any]],
    *,
    named: bool,
    stamp: bool,
) -> str:
    """Load every account's changes, and the run's record, in one load; returns its id.

    Raises:
        RuntimeError: dlt loaded other rows than the ones handed to it.
    """
    columns = {
        name: column
        for name, column in pipeline.default_schema.get_table_columns(TABLE).items()
        if not name.startswith("_dlt")
    }
    caps = pipeline.destination.capabilities() if pipeline.destination else None
    marked_schema = columns_to_arrow(columns, caps, "UTC")  # type: ignore[arg-type]
    json_columns = [name for name, column in columns.items() if column.get("data_type") == "json"]
    source = reconcile_source(
        [(change, _marked_table(change, marked_schema, json_columns)) for change in changes],
        named,
        runs,
    )
    with _stamping(stamp):
        info = pipeline.run(source)
    trace = pipeline.last_trace
    counts = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    expected = sum(change.rows for change in changes)
    if counts.get(TABLE, 0) != expected:
        raise RuntimeError(
            f"reconcile handed {expected} rows of {TABLE} to dlt, which loaded "
            f"{counts.get(TABLE, 0)}; run `voipstudio reconcile` again"
        )
    return str(info.loads_ids[-1]) if info.loads_ids else ""


def _marked_table(change: Changes, schema: pa.Schema, json_columns: list[str]) -> pa.Table | None:
    """The rows to mark, as the table's own types (stored columns dlt does not know are left
    out; dlt stamps its own)."""
    if not change.marked:
        return None
    rows = [
        {
            name: json_text(row.get(name)) if name in json_columns else row.get(name)
            for name in schema.names
        }
        for row in change.marked
    ]
    return pa.Table.from_pylist(rows, schema=schema)


@dlt.source(name=settings.SOURCE_NAME)
def reconcile_source(changes: Any, named: bool = False, runs: Any = ()) -> list[DltResource]:
    """Reconcile's changes as resources of the sync's own source (same schema, same tables):
    one per account, ``reconcile`` (or ``reconcile_<account>``), loading ``cdrs`` with the
    sync's hints, plus records that cannot be parsed into ``cdrs_rejects``; and the run's
    record of each account, appended to ``reconcile_runs``.

    Args:
        changes: per account, its :class:`Changes` and the table of rows it marks deleted.
        named: the accounts are named ones (``[sources.voipstudio.accounts.<name>]``).
        runs: the rows of ``reconcile_runs`` (see :func:`run_record`).
    """
    resources = [_resource(change, marked, named) for change, marked in changes]
    if runs:
        resources.append(
            dlt.resource(
                list(runs),
                name=RUNS_TABLE,
                write_disposition="append",
                columns=RUNS_COLUMNS,
            )
        )
    return resources


def _resource(change: Changes, marked: pa.Table | None, named: bool) -> DltResource:
    name = f"{RESOURCE}_{change.account}" if named else RESOURCE

    @dlt.resource(name=name, **CDRS.table_hints())
    def reconciled() -> Iterator[Any]:
        yield from change.tables
        if marked is not None:
            yield marked
        if change.rejects:
            rejects = dlt.mark.make_hints(**CDRS.rejects_hints())
            yield dlt.mark.with_hints(change.rejects, rejects, create_table_variant=True)

    return reconciled
