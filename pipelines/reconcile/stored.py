"""What the destination holds of one account's CDRs, read the same way on every destination
(dlt's SQL client, portable SQL): digests per row, counts per day, and whole rows to mark.

Rows come back as Arrow tables (DuckDB hands them over natively; other destinations' rows are
converted column by column), so that digests and days are computed column by column too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from pipelines.reconcile import content
from pipelines.reconcile.days import DAY_SECONDS, date_of, utc_cover, wall_of
from pipelines.voipstudio import settings

TABLE = "cdrs"
LOAD_ID_COLUMN = "_dlt_load_id"
# Rows fetched from the destination at a time, and ids in one `IN (...)` list.
FETCH_ROWS = 50_000
IDS_PER_QUERY = 500
# Counts are read per quarter of an hour (UTC): every zone's offset is a multiple of 15
# minutes, so each quarter lies within one wall-clock day of any zone.
COUNT_BUCKET_SECONDS = 900
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class StoredCdr:
    """One stored CDR, as reconcile compares it."""

    id: int
    day: date  # its wall-clock day in the account's zone
    deleted: bool  # marked deleted already
    digest: bytes


class StoredCdrs:
    """Reads of the ``cdrs`` table through one open connection (see :func:`open_stored`).

    Attributes:
        columns: the table's columns, as the destination has them.
        content_columns: those holding the API's fields, in the order digests use.
        json_columns: those dlt declared JSON.
    """

    def __init__(self, client: Any, columns: list[str], json_columns: set[str]) -> None:
        self.client = client
        self.columns = columns
        self.content_columns = sorted(name for name in columns if content.is_content(name))
        self.json_columns = json_columns
        self.table = client.make_qualified_table_name(TABLE)
        self.has_deleted_at = settings.DELETED_AT_COLUMN in columns

    def digests(self, table: pa.Table) -> list[bytes]:
        """The content digest of each row of a table of CDRs (an API page or stored rows)."""
        return content.digests(table, self.content_columns, self.json_columns)

    def _arrow(self, sql: str, *args: Any) -> pa.Table:
        connection = getattr(self.client, "native_connection", None)
        if isinstance(connection, duckdb.DuckDBPyConnection):
            # DuckDB hands a relation over as Arrow without a copy (a DB-API result would
            # make one, and bind the parameters more slowly).
            relation = connection.sql(sql.replace("%s", "?"), params=list(args))
            # `to_arrow_table` since DuckDB 1.4, `arrow` before.
            convert = getattr(relation, "to_arrow_table", None) or relation.arrow
            table: pa.Table = convert()
            return table
        with self.client.execute_query(sql, *args) as cursor:
            names = [str(column[0]) for column in cursor.description or ()]
            rows: list[tuple[Any, ...]] = []
            for chunk in cursor.iter_fetch(FETCH_ROWS):
                rows.extend(chunk)
        return _rows_to_arrow(names, rows)

    def _stored(self, table: pa.Table, zone: ZoneInfo, start: int, end: int) -> list[StoredCdr]:
        """The rows of ``table`` whose wall-clock ``calldate`` is in ``(start, end]``."""
        table = table.filter(pc.is_valid(table.column("calldate")))
        if table.num_rows == 0:
            return []
        # Wall-clock seconds of each instant in the account's zone, as the API writes them.
        instants = pc.cast(table.column("calldate"), pa.timestamp("us", tz="UTC"), safe=False)
        local = pc.local_timestamp(instants.cast(pa.timestamp("us", tz=zone.key)))
        walls = np.asarray(local.cast(pa.int64()).to_numpy()) // 1_000_000
        keep = (walls > start) & (walls <= end)
        table, walls = table.filter(pa.array(keep)), walls[keep]
        if self.has_deleted_at:
            deleted = pc.is_valid(table.column(settings.DELETED_AT_COLUMN)).to_pylist()
        else:
            deleted = [False] * table.num_rows
        days: dict[int, date] = {}
        found = []
        for record_id, wall, gone, digest in zip(
            table.column("id").to_pylist(),
            (walls // DAY_SECONDS).tolist(),
            deleted,
            self.digests(table),
            strict=True,
        ):
            day = days.get(wall)
            if day is None:
                day = days[wall] = _EPOCH + timedelta(days=wall)
            found.append(StoredCdr(int(record_id), day, bool(gone), digest))
        return found

    def in_range(self, account: str, zone: ZoneInfo, start: int, end: int) -> dict[int, StoredCdr]:
        """The account's CDRs whose ``calldate`` is in the wall-clock range ``(start, end]``."""
        low, high = utc_cover(start, end)
        sql = (
            f"SELECT * FROM {self.table} WHERE {settings.ACCOUNT_COLUMN} = %s "  # noqa: S608
            "AND calldate >= %s AND calldate <= %s"
        )
        table = self._arrow(sql, account, low, high)
        return {row.id: row for row in self._stored(table, zone, start, end)}

    def by_ids(self, account: str, zone: ZoneInfo, ids: Sequence[int]) -> dict[int, StoredCdr]:
        """The account's CDRs with these ids, wherever their ``calldate`` is."""
        found: dict[int, StoredCdr] = {}
        for table in self._by_ids(account, ids):
            for row in self._stored(table, zone, -(2**62), 2**62):
                found[row.id] = row
        return found

    def rows(self, account: str, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The account's rows with these ids, every column."""
        return [row for table in self._by_ids(account, ids) for row in table.to_pylist()]

    def _by_ids(self, account: str, ids: Sequence[int]) -> Iterator[pa.Table]:
        ordered = sorted(set(ids))
        for at in range(0, len(ordered), IDS_PER_QUERY):
            chunk = ordered[at : at + IDS_PER_QUERY]
            marks = ", ".join(["%s"] * len(chunk))
            sql = (
                f"SELECT * FROM {self.table} WHERE {settings.ACCOUNT_COLUMN} = %s "  # noqa: S608
                f"AND id IN ({marks})"
            )
            yield self._arrow(sql, account, *chunk)

    def counts(self, account: str, zone: ZoneInfo, start: int, end: int) -> dict[date, int]:
        """The account's CDRs not marked deleted, per wall-clock day of ``(start, end]``.

        Counted in the destination by quarter of an hour, so that only the counts travel.
        """
        low, high = utc_cover(start, end)
        alive = f"AND {settings.DELETED_AT_COLUMN} IS NULL " if self.has_deleted_at else ""
        bucket = f"floor(extract(epoch FROM calldate) / {COUNT_BUCKET_SECONDS})"
        sql = (
            f"SELECT {bucket}, count(*) FROM {self.table} "  # noqa: S608
            f"WHERE {settings.ACCOUNT_COLUMN} = %s AND calldate >= %s AND calldate <= %s "
            f"{alive}GROUP BY 1"
        )
        counts: dict[date, int] = {}
        with self.client.execute_query(sql, account, low, high) as cursor:
            for quarter, count in cursor.fetchall():
                instant = datetime.fromtimestamp(int(quarter) * COUNT_BUCKET_SECONDS, tz=UTC)
                wall = wall_of(instant, zone)
                if start < wall <= end:
                    counts[date_of(wall)] = counts.get(date_of(wall), 0) + int(count)
        return counts


def _rows_to_arrow(names: list[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    """Rows of a destination without native Arrow, column by column (Arrow infers each type;
    a column it cannot type becomes JSON text)."""
    arrays = []
    for index, _ in enumerate(names):
        values = [row[index] for row in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            arrays.append(pa.array([None if v is None else json_text(v) for v in values]))
    return pa.Table.from_arrays(arrays, names=names)


@contextmanager
def open_stored(pipeline: dlt.Pipeline) -> Iterator[StoredCdrs | None]:
    """The ``cdrs`` table through one connection; None when it does not exist yet."""
    try:
        schema_columns = pipeline.default_schema.get_table_columns(TABLE)
    except Exception:  # no schema or no table yet on this machine: none declared JSON
        schema_columns = {}
    json_columns = {n for n, c in schema_columns.items() if c.get("data_type") == "json"}
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(TABLE)
        try:
            with client.execute_query(f"SELECT * FROM {name} WHERE 1 = 0") as cursor:  # noqa: S608
                columns = [str(column[0]) for column in cursor.description or ()]
        except DatabaseUndefinedRelation:
            yield None
            return
        yield StoredCdrs(client, columns, json_columns)


def json_text(value: Any) -> Any:
    """A value read back from a JSON column (PostgreSQL hands objects back) as the JSON text
    the load expects; anything else as it is."""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value
