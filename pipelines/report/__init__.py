"""The dashboard (``voipstudio report``) and the read-only copy BI tools read (``voipstudio
publish``).

``write_report`` reads the reporting models of a DuckDB file read-only and writes one
self-contained HTML page (Chart.js and the data inlined: it opens offline, from disk, with no
server, and its filters work there), for every VoIPstudio account of the data or some of them.
``publish`` copies the pipeline's dataset to a snapshot file and Parquet files that BI tools can
hold open without ever blocking a sync. See README, "Dashboard and BI tools", and docs/bi.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dlt

from pipelines.models import ModelSettings
from pipelines.report.data import (
    Accounts,
    Period,
    ReportData,
    load_report,
    open_marts,
    resolve_period,
)
from pipelines.report.render import render_html
from pipelines.voipstudio.errors import ConfigError

log = logging.getLogger("voipstudio.report")

DEFAULT_REPORT_NAME = "report.html"


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes:
        path: the HTML file.
        data: what it shows.
        size: bytes written.
    """

    path: Path
    data: ReportData
    size: int


def duckdb_path(pipeline: dlt.Pipeline) -> Path:
    """The DuckDB file the pipeline writes to.

    Raises:
        ConfigError: the pipeline's destination is not DuckDB.
    """
    destination = pipeline.destination
    if destination is None or not str(destination.destination_type).endswith(".duckdb"):
        name = destination.destination_name if destination is not None else "none"
        raise ConfigError(
            f"this reads a DuckDB file, and the pipeline's destination is {name}: point your "
            "BI tool at that destination directly (docs/bi.md), or give --database"
        )
    credentials = pipeline.destination_client().config.credentials
    database = getattr(credentials, "database", None)
    if not database or database == ":memory:":
        raise ConfigError("the DuckDB destination has no database file: give --database")
    return Path(str(database))


def write_report(
    database: Path,
    output: Path,
    *,
    dataset: str,
    settings: ModelSettings,
    period: Period | None = None,
    accounts: Sequence[str] | None = None,
    now: datetime | None = None,
) -> ReportResult:
    """Write the dashboard of ``database`` to ``output``.

    Args:
        database: the DuckDB file holding the reporting models (opened read-only).
        output: the HTML file to write (its folder is created; written atomically).
        dataset: the schema of the models.
        settings: the models' settings; ``reporting_timezone`` is the report's time zone (the
            models are rebuilt in memory when the file's were built for another zone).
        period: the days to report on; by default the last 30 days up to today (in the zone).
        accounts: the VoIPstudio accounts to report on; None: every account of the data (their
            figures summed, ratios re-aggregated).
        now: the time of the report (tests); by default now.

    Raises:
        ConfigError: no database file, a bad period, or an account the data does not hold.
        LockedError: another process is writing the database.
    """
    zone = ZoneInfo(settings.reporting_timezone)
    generated = (now or datetime.now(zone)).astimezone(zone)
    chosen = period or resolve_period(None, None, generated.date())
    with open_marts(database, dataset, settings) as marts:
        data = load_report(
            marts, chosen, settings.reporting_timezone, database.name, accounts=accounts
        )
    page = render_html(data, generated)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Written next to the target and renamed over it: a browser reloading the page never sees
    # half a file.
    partial = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    partial.write_text(page, encoding="utf-8")
    partial.replace(output)
    return ReportResult(output, data, len(page.encode("utf-8")))


def with_timezone(settings: ModelSettings, timezone: str | None) -> ModelSettings:
    """``settings`` with another reporting time zone, or as they are.

    Raises:
        ConfigError: ``timezone`` is not an IANA time zone.
    """
    if not timezone:
        return settings
    try:
        return replace(settings, reporting_timezone=timezone.strip())
    except ConfigError:
        raise ConfigError(
            f"--timezone {timezone!r} is not an IANA time zone (e.g. Europe/Madrid)"
        ) from None


__all__ = [
    "DEFAULT_REPORT_NAME",
    "Accounts",
    "Period",
    "ReportData",
    "ReportResult",
    "duckdb_path",
    "resolve_period",
    "with_timezone",
    "write_report",
]
