"""Rows an incremental sync reads again unchanged are not loaded again.

Every incremental run reads its lag window again (``(cursor - lag, now]``: about 10,000 CDRs a
run at 500,000 CDRs a month), and merging all of them cost most of a sync that finds nothing
new. Before the run, the sync fetches the destination's rows of that window
(:func:`fetch_stored`: the rows not marked deleted, whose cursor value is in the window); the
resource then drops each re-read row whose stored version already holds exactly what the load
would write (:func:`drop_unchanged`): the same ``(account, id)``, and every column equal, a
null as a null. A row the destination lacks (new, deleted by hand, outside the fetched window),
one marked deleted by ``voipstudio reconcile``, or one that differs in any value is loaded as
before. So the table ends exactly as if every row had been merged, except that an unchanged
row keeps its ``_dlt_load_id`` (the reporting models then see no change there, which is true).

Nothing is stored for this: the comparison is of values, column by column with Arrow, against
the rows as the destination holds them. Where the two sides differ in form only (a type the
destination gives back differently), the row counts as changed and is merged: that costs a
merge, never a loss. When nothing at all is new or changed, the run's load package holds no
rows of the table (the cursor still advances with dlt's state).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.voipstudio import settings

if TYPE_CHECKING:
    from pipelines.voipstudio.accounts import Account
    from pipelines.voipstudio.collection import DatedCollection
    from pipelines.voipstudio.plan import RunPlan
    from pipelines.voipstudio.state import ResourceState

# The most stored rows fetched for one (table, account), about 400 bytes each in memory (40 MB):
# a larger window (a very busy account, or a cursor far behind the destination's newest rows)
# is merged as before instead of held in memory.
MAX_STORED_ROWS = 100_000
# Fetched from this long before the window's start: a repeated hour of a DST change widens the
# read by an hour (``wallclock.widen_start``). Rows fetched in excess only cost their fetch.
MARGIN = timedelta(hours=3)


def reread_since(
    plan: RunPlan, collection: DatedCollection, account: Account, state: ResourceState
) -> datetime | None:
    """The instant from which the destination's rows are fetched for a resource of an
    incremental run (its range's start, less :data:`MARGIN`); None for a backfill of an
    explicit range or a resource that has never loaded (nothing is read again)."""
    if not plan.update_cursor or state.cursor is None or plan.ceilings is None:
        return None
    if (collection.name, account.name) not in plan.ceilings:
        return None
    start, _ = plan.bounds(collection, account, state)
    wall = datetime.fromtimestamp(start, tz=UTC).replace(tzinfo=None)
    zone = ZoneInfo(collection.cursor.clock(account.timezone))
    earliest = min(wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1))
    return earliest.astimezone(UTC) - MARGIN


@dataclass(frozen=True)
class StoredRows:
    """The destination's rows of one account's re-read window.

    Attributes:
        table: the rows (not marked deleted), every column but dlt's own and ``deleted_at``.
        ids: their ids (``key``), for lookups.
    """

    table: pa.Table
    ids: pa.Array

    @classmethod
    def of(cls, table: pa.Table, key: str = "id") -> StoredRows:
        """The rows of ``table``; dlt's columns and ``deleted_at`` left out (they are not what
        the API sends)."""
        keep = [name for name in table.column_names if _compared(name)]
        table = table.select(keep).combine_chunks()
        return cls(table, table.column(key).combine_chunks())


def _compared(column: str) -> bool:
    return not column.startswith("_dlt") and column != settings.DELETED_AT_COLUMN


def fetch_stored(
    client: Any, table: str, cursor_column: str, account: str, since: datetime
) -> StoredRows | None:
    """The account's rows of ``table`` not marked deleted whose ``cursor_column`` is at or after
    ``since``, through an open dlt SQL client; None when there are more than
    :data:`MAX_STORED_ROWS` (or none)."""
    name = client.make_qualified_table_name(table)
    account_column, cursor_name, deleted = (
        client.escape_column_name(column)
        for column in (settings.ACCOUNT_COLUMN, cursor_column, settings.DELETED_AT_COLUMN)
    )
    sql = (
        f"SELECT * FROM {name} WHERE {account_column} = %s AND {cursor_name} >= %s "  # noqa: S608
        f"AND {deleted} IS NULL LIMIT {MAX_STORED_ROWS + 1}"
    )
    connection = getattr(client, "native_connection", None)
    if isinstance(connection, duckdb.DuckDBPyConnection):
        # DuckDB hands the rows over as Arrow, without a Python object per value.
        relation = connection.sql(sql.replace("%s", "?"), params=[account, since])
        rows: pa.Table = relation.to_arrow_table()
    else:
        with client.execute_query(sql, account, since) as cursor:
            names = [str(column[0]) for column in cursor.description or ()]
            converted = _rows_to_arrow(names, list(cursor.fetchall()))
        if converted is None:
            return None
        rows = converted
    if rows.num_rows == 0 or rows.num_rows > MAX_STORED_ROWS:
        return None
    return StoredRows.of(rows)


def _rows_to_arrow(names: list[str], rows: list[tuple[Any, ...]]) -> pa.Table | None:
    """Rows of a destination without native Arrow (PostgreSQL), column by column; None when
    Arrow cannot type a column (then nothing is compared: every row is merged)."""
    arrays = []
    for index, name in enumerate(names):
        if not _compared(name):
            continue
        try:
            arrays.append((name, pa.array([row[index] for row in rows])))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            return None
    return pa.Table.from_arrays([a for _, a in arrays], names=[n for n, _ in arrays])


def drop_unchanged(rows: pa.Table, stored: StoredRows, key: str = "id") -> tuple[pa.Table, int]:
    """``rows`` without those whose stored version is the same in every column, and how many
    were dropped.

    Compared: every column of either side (a column one side lacks is null there: the load
    would write null into it, or the stored table would gain it), values cast to the re-read
    row's type. A column whose values cannot be cast makes every row changed. Arrow only, no
    per-row Python: about 1 ms for 10,000 rows.
    """
    if rows.num_rows == 0:
        return rows, 0
    at = pc.index_in(rows.column(key), value_set=stored.ids)
    found = pc.is_valid(at)
    if not pc.any(found).as_py():
        return rows, 0
    # Row by row, the stored version (an absent one is a row of nulls, left out by `found`).
    old = stored.table.take(at)
    same = _equal_rows(rows, old)
    if same is None:
        return rows, 0
    unchanged = pc.and_(found, same)
    dropped = int(pc.sum(unchanged).as_py() or 0)
    if dropped == 0:
        return rows, 0
    return rows.filter(pc.invert(unchanged)), dropped


def _equal_rows(new: pa.Table, old: pa.Table) -> pa.Array | None:
    """Per row, whether ``new`` and ``old`` (aligned row by row) hold the same values in
    every column; None when no row can be (a column that cannot be compared)."""
    same: pa.Array | None = None
    columns = list(dict.fromkeys([*new.column_names, *old.column_names]))
    for name in columns:
        if not _compared(name):
            continue
        a = new.column(name) if name in new.column_names else None
        b = old.column(name) if name in old.column_names else None
        if a is None and b is None:
            continue
        if a is None or b is None:
            # A column one side lacks: equal where the other side is null.
            present = b if a is None else a
            assert present is not None
            column_same = pc.is_null(present)
        else:
            try:
                if b.type != a.type:
                    b = b.cast(a.type)
                equal = pc.equal(a, b)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                return None
            both_null = pc.and_(pc.is_null(a), pc.is_null(b))
            column_same = pc.or_(pc.fill_null(equal, False), both_null)
        same = column_same if same is None else pc.and_(same, column_same)
    return same


def without_unchanged(
    items: Iterator[Any], stored: StoredRows | None, table: str, run: str
) -> Iterator[Any]:
    """The items a dated collection's resource hands on, its Arrow tables without the rows
    that are unchanged (:func:`drop_unchanged`), counted for the run's summary; everything
    else (rejects) as it comes."""
    if stored is None:
        yield from items
        return
    for item in items:
        if isinstance(item, pa.Table):
            item, dropped = drop_unchanged(item, stored)
            if dropped:
                count_unchanged(run, table, dropped)
            if item.num_rows == 0:
                continue
        yield item


# Re-read rows left out because they were unchanged, per run (RunPlan.key) and table.
_UNCHANGED_ROWS: dict[str, dict[str, int]] = {}
_LOCK = threading.Lock()


def count_unchanged(run: str, table: str, rows: int) -> None:
    """Note ``rows`` re-read rows of ``table`` left out in run ``run``."""
    with _LOCK:
        tables = _UNCHANGED_ROWS.setdefault(run, {})
        tables[table] = tables.get(table, 0) + rows


def unchanged_rows(run: str) -> dict[str, int]:
    """The re-read rows of run ``run`` left out as unchanged, per table; forgotten once asked."""
    with _LOCK:
        return dict(sorted(_UNCHANGED_ROWS.pop(run, {}).items()))
