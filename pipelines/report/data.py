"""What the dashboard shows, read from the reporting models (the marts) for one period.

Every figure comes from the marts ``voipstudio report`` is pointed at: the KPI tiles and the
comparison with the previous period from the metric registry's marts (``agg_calls_daily``,
``fct_missed_call_callbacks``, ``agg_queue_daily``), the busy hours from
``agg_busy_hour_monthly``, and everything the page's filters work over from the marts
pre-aggregated by :func:`pipelines.report.cube.build_cube`. Ratios are re-aggregated from their
numerators and denominators summed over the period, never by averaging daily ratios.

Accounts: every mart carries the VoIPstudio ``account`` of its rows, and a report covers some
accounts (by default all of them; :func:`resolve_accounts`). Every query keeps the rows of those
accounts only (``account in (...)``). Across several accounts counts, seconds and costs add up, and
ratios are summed numerators over summed denominators, as across days. Users and missed-call
numbers are told apart by (account, id): user ids repeat across accounts. Two hourly figures do
not add up: the busy hour of the accounts together is the hour with the most talk summed over
them, and their peak of concurrent calls is counted again from their calls (``fct_calls``).

The database is opened read-only. When the marts were built for another reporting time zone than
the one asked for, the models are rebuilt in an in-memory database from the file's raw tables
(the same SQL, see :func:`open_marts`), so the file is never written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb

from pipelines.models import ModelError, ModelSettings, load_project
from pipelines.models.metrics import MART_DATE_COLUMNS, MetricValue, detail, read_metrics, tiles
from pipelines.models.runner import build_statements, skipped_models, without_inputs
from pipelines.voipstudio.errors import ConfigError, LockedError

log = logging.getLogger("voipstudio.report")

DEFAULT_PERIOD_DAYS = 30
# Missed calls are judged against this callback window (a column of fct_missed_call_callbacks).
CALLBACK_WINDOW_HOURS = 24
TOP_DESTINATIONS = 10
OPEN_MISSED_ROWS = 50
# Outcomes of fct_calls in the order they are stacked and listed.
OUTCOMES = ("answered", "no_answer", "busy", "failed", "other")
# The marts each part of the dashboard reads.
SECTION_MARTS: dict[str, tuple[str, ...]] = {
    "kpis": ("agg_calls_daily", "fct_missed_call_callbacks"),
    "daily": ("fct_calls",),
    "heatmap": ("agg_traffic_hourly",),
    "traffic": ("agg_traffic_hourly",),
    "destinations": ("fct_calls",),
    "users": ("agg_user_daily",),
    "open_missed": ("fct_missed_call_callbacks",),
}

KpiKind = Literal["count", "ratio", "seconds", "money"]
Better = Literal["higher", "lower", "neither"]


@dataclass(frozen=True)
class Period:
    """Whole days of the reporting time zone, both ends included.

    Attributes:
        start: first day.
        end: last day (included).
    """

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ConfigError(f"the period starts ({self.start}) after it ends ({self.end})")

    @property
    def days(self) -> int:
        """Number of days in the period."""
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)


def parse_day(text: str, option: str) -> date:
    """A ``YYYY-MM-DD`` date.

    Raises:
        ConfigError: the text is not such a date; the message names ``option``.
    """
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date YYYY-MM-DD") from None


def resolve_period(
    start: str | None, end: str | None, today: date, days: int = DEFAULT_PERIOD_DAYS
) -> Period:
    """The period of ``--from`` / ``--to``: by default the last ``days`` days up to ``today``.

    Only ``--from`` runs to today; only ``--to`` covers the ``days`` days ending there.

    Raises:
        ConfigError: a date is invalid, or the period would end before it starts.
    """
    last = parse_day(end, "--to") if end else today
    first = parse_day(start, "--from") if start else last - timedelta(days=days - 1)
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    return Period(first, last)


@dataclass(frozen=True)
class Accounts:
    """The VoIPstudio accounts a report covers.

    Attributes:
        shown: the accounts reported on, sorted.
        available: every account the data holds, sorted.
    """

    shown: tuple[str, ...] = ()
    available: tuple[str, ...] = ()

    @property
    def several(self) -> bool:
        """More than one account in the report: users and numbers are shown with theirs."""
        return len(self.shown) > 1

    @property
    def label(self) -> str:
        """``all accounts (acme, beta)``, ``account acme`` or ``accounts acme, beta``."""
        names = ", ".join(self.shown)
        if not self.shown:
            return "no account loaded yet"
        if len(self.shown) == 1:
            return f"account {names}"
        if self.shown == self.available:
            return f"all accounts ({names})"
        return f"accounts {names}"


@dataclass(frozen=True)
class Kpi:
    """One KPI tile: its value in the period and in the previous period.

    Attributes:
        key: stable identifier (``calls``, ``asr``, ...).
        label: tile title.
        kind: how to format the value: a count, a ratio (0..1), seconds or money.
        better: which way is good news (colours the change).
        value: the value in the period; None when undefined (a ratio over 0).
        previous: the same over the previous period.
        detail: the numbers behind the value, one short line.
    """

    key: str
    label: str
    kind: KpiKind
    better: Better
    value: float | None
    previous: float | None
    detail: str

    @property
    def change(self) -> float | None:
        """Ratios: the difference in points (0.02 = +2 pp); others: the relative change."""
        if self.value is None or self.previous is None:
            return None
        if self.kind == "ratio":
            return self.value - self.previous
        if self.previous == 0:
            return None
        return (self.value - self.previous) / self.previous


@dataclass(frozen=True)
class Totals:
    """Every metric of the registry (``pipelines.models.metrics``) over a period: its summed
    numerator and denominator."""

    values: dict[str, MetricValue] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        """Calls in the period, any direction."""
        found = self.values.get("calls")
        return 0 if found is None else int(found.numerator)

    def value(self, name: str) -> float | None:
        """A metric's value (None when undefined or not read)."""
        found = self.values.get(name)
        return None if found is None else found.value


@dataclass(frozen=True)
class BusyHour:
    """One account's time-consistent busy hour of a month (``agg_busy_hour_monthly``)."""

    account: str
    month: date
    days_counted: int
    start_local: str
    tcbh_erlangs: float
    adph_erlangs: float
    tcbh_call_attempts: float


@dataclass
class ReportData:
    """Everything the dashboard shows.

    Attributes:
        period: the reported days; ``previous`` the days it is compared with.
        timezone: the reporting time zone of every day and hour.
        dataset: the dataset (schema) read; ``source`` the database file's name.
        accounts: the accounts reported on (and every account of the data).
        first_day: the first day with calls of those accounts; ``newest_call`` the start of
            their newest call (local), i.e. how far the data goes.
        totals / previous_totals: sums over the period and the previous one.
        kpis: the tiles.
        missing: sections that cannot be shown, with the reason (a model not built).
        notes: remarks shown under the header (partial comparison, rebuilt time zone).
        cube: what the page's filters work over (:func:`pipelines.report.cube.build_cube`).
    """

    period: Period
    previous: Period
    timezone: str
    dataset: str
    source: str
    accounts: Accounts = field(default_factory=Accounts)
    first_day: date | None = None
    newest_call: datetime | None = None
    totals: Totals = field(default_factory=Totals)
    previous_totals: Totals | None = None
    kpis: list[Kpi] = field(default_factory=list)
    busy_hours: list[BusyHour] = field(default_factory=list)
    service_level_seconds: int | None = None
    cube: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def has_calls(self) -> bool:
        """True when the period holds at least one call."""
        return self.totals.calls > 0


@dataclass
class Marts:
    """An open, read-only view of the marts.

    Attributes:
        connection: a DuckDB connection where ``<dataset>.<model>`` resolves.
        dataset: the schema of the models.
        relations: names of the tables and views in the dataset.
        rebuilt_for: the time zone the models were rebuilt in memory for, if they were.
        accounts: the accounts ``{accounts}`` in a query stands for (see :meth:`rows`).
    """

    connection: duckdb.DuckDBPyConnection
    dataset: str
    relations: frozenset[str]
    rebuilt_for: str | None = None
    accounts: tuple[str, ...] = ()

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` and return every row.

        ``{ds}`` in ``sql`` stands for the quoted dataset, ``{accounts}`` for the list of
        :attr:`accounts` as parameters (``account in ({accounts})``; no account matches none).
        """
        values = dict(params or {})
        placeholders = "null"
        if "{accounts}" in sql and self.accounts:
            names = {f"account_{i}": name for i, name in enumerate(self.accounts)}
            values.update(names)
            placeholders = ", ".join(f"${name}" for name in names)
        text = sql.format(ds=quote(self.dataset), accounts=placeholders)
        return self.connection.execute(text, values).fetchall()

    def columns(self, relation: str) -> set[str]:
        """The column names of a relation of the dataset (empty when it does not exist)."""
        rows = self.connection.execute(
            "select column_name from information_schema.columns "
            "where table_catalog = current_database() and table_schema = $dataset "
            "and table_name = $name",
            {"dataset": self.dataset, "name": relation},
        ).fetchall()
        return {str(name) for (name,) in rows}


def quote(identifier: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A DuckDB string literal, quoted."""
    return "'" + text.replace("'", "''") + "'"


def _relations(connection: duckdb.DuckDBPyConnection, catalog: str, dataset: str) -> set[str]:
    rows = connection.execute(
        "select table_name from information_schema.tables "
        "where table_catalog = $catalog and table_schema = $dataset",
        {"catalog": catalog, "dataset": dataset},
    ).fetchall()
    return {str(name) for (name,) in rows}


@contextmanager
def _lock_errors(database: Path) -> Iterator[None]:
    """Turn DuckDB's "could not set lock" into the error a scheduler understands (exit 75)."""
    try:
        yield
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        # DuckDB allows one writing process and no reader beside it: a sync (or anything that
        # opened the file for writing) is running now.
        raise LockedError(
            f"{database} is being written by another process (a sync?): retry when it is "
            "done, or read the published snapshot (voipstudio publish; see docs/bi.md)"
        ) from None


def _open_read_only(database: Path) -> duckdb.DuckDBPyConnection:
    if not database.is_file():
        raise ConfigError(
            f"no database at {database}: run `voipstudio sync` first, or give --database"
        )
    with _lock_errors(database):
        return duckdb.connect(str(database), read_only=True)


def _zone_matches(connection: duckdb.DuckDBPyConnection, dataset: str, timezone: str) -> bool:
    """Whether ``fct_calls`` was built for ``timezone``: every call's local start is its UTC
    instant on that zone's clock (zones that agree on every call are the same here)."""
    sql = (
        f"select count(*) from {quote(dataset)}.fct_calls "  # noqa: S608 - a quoted identifier
        "where started_at_local <> to_timestamp(start_epoch) at time zone $tz"
    )
    row = connection.execute(sql, {"tz": timezone}).fetchone()
    return row is not None and row[0] == 0


def _rebuild_in_memory(
    database: Path, dataset: str, settings: ModelSettings
) -> tuple[duckdb.DuckDBPyConnection, set[str]]:
    """Build every model from the file's raw tables into an in-memory database."""
    memory = duckdb.connect(":memory:")
    with _lock_errors(database):
        memory.execute(f"attach {literal(str(database))} as source_db (read_only)")
    memory.execute(f"create schema {quote(dataset)}")
    project = load_project(settings=settings)
    raw = _relations(memory, "source_db", dataset)
    sources = {s for model in project.models for s in model.sources}
    skipped = skipped_models(project, sources - raw)
    for name in sorted(sources & raw):
        memory.execute(
            f"create view {quote(dataset)}.{quote(name)} as "  # noqa: S608 - identifiers
            f"select * from source_db.{quote(dataset)}.{quote(name)}"
        )
    columns: dict[str, list[str]] = {}
    for table, column in memory.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_catalog = 'source_db' and table_schema = $dataset "
        "order by table_name, ordinal_position",
        {"dataset": dataset},
    ).fetchall():
        columns.setdefault(str(table), []).append(str(column))
    built: set[str] = set()
    for model in project.models:  # in dependency order
        if model.name in skipped:
            continue
        # As the builder does: an optional input that is not built is read as "not loaded".
        model = without_inputs(model, set(skipped))
        try:
            for statement in build_statements(model, "duckdb", dataset, source_columns=columns):
                memory.execute(statement)
        except duckdb.Error as exc:
            memory.close()
            raise ModelError(
                model.name, f"rebuilding it in memory for {settings.reporting_timezone}: {exc}"
            ) from exc
        built.add(model.name)
    return memory, built


@contextmanager
def open_marts(database: Path, dataset: str, settings: ModelSettings) -> Iterator[Marts]:
    """Open the marts of ``database`` read-only, in ``settings.reporting_timezone``.

    When ``fct_calls`` was built for another zone, every model is rebuilt in memory from the
    file's raw tables with ``settings`` (the file is not written).

    Raises:
        ConfigError: there is no database file.
        LockedError: another process is writing the file.
        ModelError: a model failed to rebuild for the time zone.
    """
    connection = _open_read_only(database)
    catalog = str(connection.execute("select current_database()").fetchone()[0])  # type: ignore[index]
    relations = _relations(connection, catalog, dataset)
    rebuilt_for: str | None = None
    if "fct_calls" in relations and not _zone_matches(
        connection, dataset, settings.reporting_timezone
    ):
        connection.close()
        log.info(
            "the models in %s were built for another time zone: rebuilding them in memory for %s",
            database,
            settings.reporting_timezone,
        )
        connection, relations = _rebuild_in_memory(database, dataset, settings)
        rebuilt_for = settings.reporting_timezone
    try:
        yield Marts(connection, dataset, frozenset(relations), rebuilt_for)
    finally:
        connection.close()


# Where the accounts of the data are listed: every account with calls is in fct_calls (or, before
# the models are built, in the raw cdrs); users adds an account that has no call yet.
_ACCOUNT_SOURCES = (("fct_calls", "cdrs"), ("users",))


def resolve_accounts(marts: Marts, requested: Sequence[str] | None, source: str) -> Accounts:
    """The accounts to report on: ``requested`` (None or empty: every account of the data).

    Args:
        marts: see :func:`open_marts`.
        requested: account names (``--account``); matched without regard to case.
        source: the database's name, for messages.

    Raises:
        ConfigError: a requested account is not in the data (the message lists those that
            are), or the marts were built before they carried their account.
    """
    if "fct_calls" in marts.relations and "account" not in marts.columns("fct_calls"):
        raise ConfigError(
            f"the models in {source} were built before they carried their account: run "
            "`voipstudio models` (or sync) to rebuild them"
        )
    found: set[str] = set()
    for candidates in _ACCOUNT_SOURCES:
        table = next((name for name in candidates if name in marts.relations), None)
        if table is not None and "account" in marts.columns(table):
            rows = marts.rows(f"select distinct account from {{ds}}.{quote(table)}")  # noqa: S608
            found.update(str(name) for (name,) in rows if name is not None)
    available = tuple(sorted(found))
    if not requested:
        return Accounts(available, available)
    wanted = {name.strip().lower() for name in requested}
    unknown = sorted(wanted - found)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        holds = (
            f"it holds {', '.join(available)}"
            if available
            else "it holds no account yet (run `voipstudio sync`)"
        )
        noun = "account" if len(unknown) == 1 else "accounts"
        raise ConfigError(f"no {noun} {names} in {source}: {holds}")
    return Accounts(tuple(sorted(wanted)), available)


_QUERIES = Path(__file__).parent / "sql"


def query_text(name: str) -> str:
    """The report's query ``sql/<name>.sql`` (``{ds}``: the dataset, ``{accounts}``: the
    accounts, ``$name``: parameters; see :meth:`Marts.rows`)."""
    return (_QUERIES / f"{name}.sql").read_text(encoding="utf-8")


def _between(period: Period) -> dict[str, Any]:
    return {"start": period.start, "end": period.end}


def read_totals(marts: Marts, period: Period) -> Totals:
    """Every registered metric over ``period``."""

    def source(mart: str) -> tuple[str, str] | None:
        if mart not in marts.relations:
            return None
        day = MART_DATE_COLUMNS[mart]
        return f"{{ds}}.{mart}", f"account in ({{accounts}}) and {day} between $start and $end"

    return Totals(read_metrics(lambda sql: marts.rows(sql, _between(period))[0], source))


def _service_level_seconds(marts: Marts) -> int | None:
    """The service-level threshold the marts were built with (None before they are)."""
    if "agg_calls_daily" not in marts.relations:
        return None
    sl_seconds = marts.rows(query_text("threshold"))[0][0]
    return None if sl_seconds is None else int(sl_seconds)


def _kpis(now: Totals, before: Totals | None, sl_seconds: int | None) -> list[Kpi]:
    """The tiles: the registry's tile metrics, with their values in both periods."""
    minutes = now.value("outbound_minutes")
    cost = now.value("cost")
    settings = {
        "sl": f"{sl_seconds} s" if sl_seconds is not None else "the threshold",
        "cost_per_minute": f"{cost / minutes:,.4f}" if minutes and cost is not None else "n/a",
    }
    better: dict[bool | None, Better] = {True: "higher", False: "lower", None: "neither"}
    kinds: dict[str, KpiKind] = {
        "count": "count", "minutes": "count", "ratio": "ratio", "seconds": "seconds",
        "money": "money",
    }  # fmt: skip
    return [
        Kpi(
            metric.name,
            metric.label,
            kinds[metric.kind],
            better[metric.higher_is_better],
            now.value(metric.name),
            None if before is None else before.value(metric.name),
            detail(metric, now.values, **settings),
        )
        for metric in tiles()
        if metric.name in now.values
    ]


def combined_peaks(marts: Marts, period: Period) -> dict[int, int]:
    """The peak of concurrent calls of :attr:`Marts.accounts` together in each hour of
    ``period``, by the hour's start (Unix seconds), counted from their calls."""
    return {
        int(hour): int(peak) for hour, peak in marts.rows(query_text("peaks"), _between(period))
    }


def load_report(
    marts: Marts,
    period: Period,
    timezone: str,
    source: str,
    accounts: Sequence[str] | None = None,
) -> ReportData:
    """Read everything the dashboard shows for ``period`` from open marts.

    Args:
        marts: see :func:`open_marts`.
        period: the days to report on (reporting time zone).
        timezone: the reporting time zone (shown; the marts are in it).
        source: the database's name, shown as the source.
        accounts: the accounts to report on; None (or empty): every account of the data.

    Raises:
        ConfigError: an account is not in the data (see :func:`resolve_accounts`).
    """
    chosen = resolve_accounts(marts, accounts, source)
    marts = replace(marts, accounts=chosen.shown)
    data = ReportData(period, period.previous(), timezone, marts.dataset, source, chosen)
    for section, needed in SECTION_MARTS.items():
        absent = [name for name in needed if name not in marts.relations]
        if absent:
            data.missing[section] = (
                f"model {', '.join(absent)} is not built: run `voipstudio models` (or sync first)"
            )
    if marts.rebuilt_for:
        data.notes.append(
            f"The models in {source} were built for another time zone; this report rebuilt "
            f"them in memory for {timezone}."
        )
    if "fct_calls" in marts.relations:
        first_day, newest = marts.rows(query_text("extent"))[0]
        data.first_day, data.newest_call = first_day, newest
    data.totals = read_totals(marts, period)
    data.service_level_seconds = _service_level_seconds(marts)
    previous = data.previous
    # Compared only with a period the data covers in full: the first day loaded may start
    # mid-day, and a partly covered period is not like with like (it gave "calls +67,608%").
    if data.first_day is not None and data.first_day < previous.start:
        data.previous_totals = read_totals(marts, previous)
    elif data.first_day is not None and data.first_day <= previous.end:
        data.notes.append(
            f"The data starts on {data.first_day}: the comparison period "
            f"({previous.start} to {previous.end}) is only partly covered, so the figures are "
            "not compared."
        )
    data.kpis = _kpis(data.totals, data.previous_totals, data.service_level_seconds)
    if "agg_calls_daily" in marts.relations and "is_complete" in marts.columns("agg_calls_daily"):
        first, last, partial = marts.rows(query_text("incomplete"), _between(period))[0]
        if partial:
            days = {1: f"{first}", 2: f"{first} and {last}"}.get(
                partial, f"{partial} days from {first} to {last}"
            )
            data.notes.append(
                f"Not complete yet: {days} (the first day loaded, or still inside the sync's lag "
                "window where late CDRs may arrive); those figures may still change."
            )
    if "agg_busy_hour_monthly" in marts.relations:
        data.busy_hours = [
            BusyHour(str(row[0]), row[1], int(row[2]), str(row[3]), *map(float, row[4:]))
            for row in marts.rows(query_text("busy_hours"), _between(period))
        ]
    from pipelines.report.cube import build_cube  # it builds on this module's types

    first_days: dict[str, date] = {}
    if "fct_calls" in marts.relations:
        first_days = {str(name): day for name, day in marts.rows(query_text("first_days"))}
    data.cube = build_cube(
        marts,
        period,
        sl_seconds=data.service_level_seconds,
        missing=data.missing,
        first_days=first_days,
    )
    return data
