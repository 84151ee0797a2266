"""``voipstudio status``: how fresh the loaded data is, for people and for monitoring."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dlt

from pipelines.reconcile.run import RUNS_TABLE
from pipelines.reconcile.summary import OK
from pipelines.sync import count_rows, loaded_by_account, oldest_cursor
from pipelines.voipstudio import catalog
from pipelines.voipstudio.accounts import account_names, configured_resources
from pipelines.voipstudio.catalog import CDRS
from pipelines.voipstudio.collection import Collection, DatedCollection
from pipelines.voipstudio.state import ResourceState, resource_states


def status_tables(collections: tuple[Collection, ...]) -> list[str]:
    """The tables ``status`` counts: the collections' and the dated ones' rejects."""
    tables = [c.name for c in collections]
    return tables + [c.rejects_table for c in collections if isinstance(c, DatedCollection)]


@dataclass
class AccountStatus:
    """The state of one configured account's data.

    Attributes:
        cursor: every CDR up to it is loaded (API wall time).
        synced_at: when its dated collections were last all read to the end without an
            error (the oldest of them).
        error: why its last sync failed, if it did.
        cdrs: its CDRs in the destination.
        newest_calldate: its newest ``calldate`` in the destination.
        cursors: the cursor of each dated collection it loads.
        reconcile: its last ``voipstudio reconcile`` (dry runs excepted): when (``at``), how
            it ended (``status``: ok, incomplete, refused, failed) and why (``error``); None
            if it never ran.
        reconciled_ok_at: when a reconcile of it last ended ``ok``.
    """

    cursor: str | None = None
    synced_at: datetime | None = None
    error: str | None = None
    cdrs: int = 0
    newest_calldate: datetime | None = None
    cursors: dict[str, str | None] = field(default_factory=dict)
    reconcile: LastReconcile | None = None
    reconciled_ok_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "cursor": self.cursor,
            "synced_at": _iso(self.synced_at),
            "error": self.error,
            "cdrs": self.cdrs,
            "newest_calldate": _iso(self.newest_calldate),
            "cursors": self.cursors,
            "reconcile": self.reconcile.as_dict() if self.reconcile else None,
            "reconciled_ok_at": _iso(self.reconciled_ok_at),
        }


@dataclass(frozen=True)
class LastReconcile:
    """An account's last reconcile, from ``reconcile_runs``."""

    at: datetime | None
    status: str
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"at": _iso(self.at), "status": self.status, "error": self.error}

    def text(self) -> str:
        """For people: when and how it ended."""
        why = f": {self.error}" if self.error else ""
        return f"{self.at or 'unknown'} {self.status}{why}"


@dataclass
class Status:
    """The state of the loaded data."""

    last_success: datetime | None = None
    cursor: str | None = None
    newest_calldate: datetime | None = None
    rows: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, AccountStatus] = field(default_factory=dict)

    def age_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the data was last brought up to date, None if it never was.

        With several accounts, the oldest account counts: an account whose syncs keep failing
        makes the data stale even though the other accounts' loads succeed.
        """
        if self.last_success is None:
            return None
        times = [self.last_success]
        for account in self.accounts.values():
            if account.synced_at is None:  # an account never synced
                return None
            times.append(account.synced_at)
        return ((now or datetime.now(UTC)) - min(times)).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "last_success": _iso(self.last_success),
            "cursor": self.cursor,
            "newest_calldate": _iso(self.newest_calldate),
            "rows": self.rows,
            "accounts": {name: account.as_dict() for name, account in self.accounts.items()},
        }


def _query_one(pipeline: dlt.Pipeline, sql: str) -> Any:
    try:
        with pipeline.sql_client() as client:
            loads = client.make_qualified_table_name("_dlt_loads")
            rows = client.execute_sql(sql.format(loads=loads))
    except Exception:  # a missing dataset or table just means "nothing yet"
        return None
    return rows[0][0] if rows else None


def _reconciles(pipeline: dlt.Pipeline) -> tuple[dict[str, LastReconcile], dict[str, datetime]]:
    """Per account, its last reconcile and when one last ended ok ({} before any)."""
    last: dict[str, LastReconcile] = {}
    ok: dict[str, datetime] = {}
    try:
        with pipeline.sql_client() as client:
            runs = client.make_qualified_table_name(RUNS_TABLE)
            # The newest run of each account (portable SQL: PostgreSQL has no arg_max).
            rows = client.execute_sql(
                f"SELECT account, reconciled_at, status, error FROM {runs} r "  # noqa: S608
                f"WHERE reconciled_at = (SELECT max(reconciled_at) FROM {runs} s "
                "WHERE s.account = r.account)"
            )
            for account, at, status, error in rows or ():
                last[str(account)] = LastReconcile(_utc(at), str(status), error)
            rows = client.execute_sql(
                f"SELECT account, max(reconciled_at) FROM {runs} "  # noqa: S608
                f"WHERE status = '{OK}' GROUP BY account"
            )
            for account, at in rows or ():
                when = _utc(at)
                if when is not None:
                    ok[str(account)] = when
    except Exception:  # no reconcile yet: no table
        return {}, {}
    return last, ok


def read_status(pipeline: dlt.Pipeline) -> Status:
    """Read the status from the destination (and the pipeline state it holds)."""
    # A destination that does not exist yet simply has no status.
    with contextlib.suppress(Exception):
        pipeline.sync_destination()
    last = _utc(_query_one(pipeline, "SELECT max(inserted_at) FROM {loads} WHERE status = 0"))
    names, named = account_names()
    # cdrs always (the status is about CDRs first), then what the configuration loads.
    collections = tuple(c for c in catalog.COLLECTIONS if c is CDRS or c in configured_resources())
    dated = [c for c in collections if isinstance(c, DatedCollection)]
    states = resource_states(pipeline)
    loaded = loaded_by_account(pipeline).get(CDRS.name, {})
    reconciles, reconciled_ok = _reconciles(pipeline)
    accounts: dict[str, AccountStatus] = {}
    for name in names:

        def state_of(collection: Collection, name: str = name) -> ResourceState:
            return states.get(collection.resource_name(name if named else None), ResourceState())

        errors = [state_of(collection).error for collection in collections]
        error = next((e.message for e in errors if e is not None), None)
        synced: list[datetime | None] = []
        for collection in dated:
            state = state_of(collection)
            # Read but never to the end yet (a first sync committed in parts and stopped): the
            # last successful load.
            synced.append(state.synced_at or (last if state.cursor is not None else None))
        accounts[name] = AccountStatus(
            cursor=state_of(CDRS).cursor,
            synced_at=None if not synced or None in synced else min(s for s in synced if s),
            error=error,
            cdrs=loaded[name].rows if name in loaded else 0,
            newest_calldate=loaded[name].newest if name in loaded else None,
            cursors={c.name: state_of(c).cursor for c in dated},
            reconcile=reconciles.get(name),
            reconciled_ok_at=reconciled_ok.get(name),
        )
    newest = [v.newest for v in loaded.values() if v.newest is not None]
    return Status(
        last_success=last,
        cursor=oldest_cursor([account.cursor for account in accounts.values()]),
        newest_calldate=max(newest, default=None),
        rows={table: count_rows(pipeline, table) for table in status_tables(collections)},
        accounts=accounts,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
