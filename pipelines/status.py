"""``voipstudio status``: how fresh the loaded data is, for people and for monitoring."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dlt

from pipelines.sync import count_rows, read_cursor
from pipelines.voipstudio import settings

TABLES = ("cdrs", "users", "queues", settings.REJECTS_TABLE)


@dataclass
class Status:
    """The state of the loaded data."""

    last_success: datetime | None = None
    cursor: str | None = None
    newest_calldate: datetime | None = None
    rows: dict[str, int] = field(default_factory=dict)

    def age_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the last successful load, None if there was none."""
        if self.last_success is None:
            return None
        return ((now or datetime.now(UTC)) - self.last_success).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "cursor": self.cursor,
            "newest_calldate": self.newest_calldate.isoformat() if self.newest_calldate else None,
            "rows": self.rows,
        }


def _query_one(pipeline: dlt.Pipeline, sql: str) -> Any:
    try:
        with pipeline.sql_client() as client:
            rows = client.execute_sql(sql.format(**_names(client)))
    except Exception:  # a missing dataset or table just means "nothing yet"
        return None
    return rows[0][0] if rows else None


def _names(client: Any) -> dict[str, str]:
    return {
        "loads": client.make_qualified_table_name("_dlt_loads"),
        "cdrs": client.make_qualified_table_name("cdrs"),
    }


def read_status(pipeline: dlt.Pipeline) -> Status:
    """Read the status from the destination (and the pipeline state it holds)."""
    # A destination that does not exist yet simply has no status.
    with contextlib.suppress(Exception):
        pipeline.sync_destination()
    last = _query_one(pipeline, "SELECT max(inserted_at) FROM {loads} WHERE status = 0")
    newest = _query_one(pipeline, "SELECT max(calldate) FROM {cdrs}")
    return Status(
        last_success=_utc(last),
        cursor=read_cursor(pipeline),
        newest_calldate=_utc(newest),
        rows={table: count_rows(pipeline, table) for table in TABLES},
    )


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
