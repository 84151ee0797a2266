"""What the destination holds of one account's CDRs, read the same way on every destination
(dlt's SQL client, portable SQL): digests per row, counts per day, and whole rows to mark."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import orjson
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from pipelines.reconcile import content
from pipelines.reconcile.days import date_of, utc_cover, wall_of
from pipelines.voipstudio import settings

TABLE = "cdrs"
LOAD_ID_COLUMN = "_dlt_load_id"
# Rows fetched from the destination at a time, and ids in one `IN (...)` list.
FETCH_ROWS = 10_000
IDS_PER_QUERY = 500
# Counts are read per quarter of an hour (UTC): every zone's offset is a multiple of 15
# minutes, so each quarter lies within one wall-clock day of any zone.
COUNT_BUCKET_SECONDS = 900


@dataclass(frozen=True, slots=True)
class StoredCdr:
    """One stored CDR, as reconcile compares it."""

    id: int
    day: date  # its wall-clock day in the account's zone
    deleted: bool  # marked deleted already
    digest: bytes


class StoredCdrs:
    """Reads of the ``cdrs`` table through one open connection (see :func:`open_stored`)."""

    def __init__(self, client: Any, columns: list[str]) -> None:
        self.client = client
        self.columns = columns
        self.table = client.make_qualified_table_name(TABLE)
        self.has_deleted_at = settings.DELETED_AT_COLUMN in columns

    def _rows(self, sql: str, *args: Any) -> Iterator[dict[str, Any]]:
        with self.client.execute_query(sql, *args) as cursor:
            names = [str(column[0]) for column in cursor.description or ()]
            for chunk in cursor.iter_fetch(FETCH_ROWS):
                for values in chunk:
                    yield dict(zip(names, values, strict=True))

    def _stored(self, row: dict[str, Any], zone: ZoneInfo) -> StoredCdr:
        return StoredCdr(
            id=int(row["id"]),
            day=date_of(wall_of(row["calldate"], zone)),
            deleted=row.get(settings.DELETED_AT_COLUMN) is not None,
            digest=content.digest(row),
        )

    def in_range(self, account: str, zone: ZoneInfo, start: int, end: int) -> dict[int, StoredCdr]:
        """The account's CDRs whose ``calldate`` is in the wall-clock range ``(start, end]``."""
        low, high = utc_cover(start, end)
        sql = (
            f"SELECT * FROM {self.table} WHERE {settings.ACCOUNT_COLUMN} = %s "  # noqa: S608
            "AND calldate >= %s AND calldate <= %s"
        )
        found: dict[int, StoredCdr] = {}
        for row in self._rows(sql, account, low, high):
            if row["calldate"] is not None and start < wall_of(row["calldate"], zone) <= end:
                stored = self._stored(row, zone)
                found[stored.id] = stored
        return found

    def by_ids(self, account: str, zone: ZoneInfo, ids: Sequence[int]) -> dict[int, StoredCdr]:
        """The account's CDRs with these ids, wherever their ``calldate`` is."""
        found: dict[int, StoredCdr] = {}
        for row in self.rows(account, ids):
            stored = self._stored(row, zone)
            found[stored.id] = stored
        return found

    def rows(self, account: str, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The account's rows with these ids, every column."""
        rows: list[dict[str, Any]] = []
        ordered = sorted(set(ids))
        for at in range(0, len(ordered), IDS_PER_QUERY):
            chunk = ordered[at : at + IDS_PER_QUERY]
            marks = ", ".join(["%s"] * len(chunk))
            sql = (
                f"SELECT * FROM {self.table} WHERE {settings.ACCOUNT_COLUMN} = %s "  # noqa: S608
                f"AND id IN ({marks})"
            )
            rows.extend(self._rows(sql, account, *chunk))
        return rows

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


@contextmanager
def open_stored(pipeline: dlt.Pipeline) -> Iterator[StoredCdrs | None]:
    """The ``cdrs`` table through one connection; None when it does not exist yet."""
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(TABLE)
        try:
            with client.execute_query(f"SELECT * FROM {name} WHERE 1 = 0") as cursor:  # noqa: S608
                columns = [str(column[0]) for column in cursor.description or ()]
        except DatabaseUndefinedRelation:
            yield None
            return
        yield StoredCdrs(client, columns)


def json_text(value: Any) -> Any:
    """A value read back from a JSON column (PostgreSQL hands objects back) as the JSON text
    the load expects; anything else as it is."""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value
