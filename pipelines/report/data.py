"""What the dashboard shows, read from the reporting models (the marts) for one period.

Every figure comes from the marts ``voipstudio report`` is pointed at: KPI tiles from
``agg_calls_daily`` and ``fct_missed_call_callbacks``, daily outcomes and destinations from
``fct_calls`` (``agg_destination_monthly`` is monthly and cannot be cut to an arbitrary period),
traffic from ``agg_traffic_hourly``, people from ``agg_user_daily``. Ratios are re-aggregated from
their numerators and denominators summed over the period, never by averaging daily ratios.

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
class DailyOutcome:
    """Calls started on a day with one outcome."""

    call_date: date
    outcome: str
    calls: int


@dataclass(frozen=True)
class HeatCell:
    """Calls started in one hour of the day on one weekday, over the period.

    Attributes:
        weekday: ISO weekday, 1 = Monday.
        hour: hour of the day (reporting zone).
        calls: calls started in that hour, summed over the period.
        hours: how many such hours the period holds data for (the average's denominator).
    """

    weekday: int
    hour: int
    calls: int
    hours: int

    @property
    def average(self) -> float:
        """Calls started in that hour on an average such day."""
        return self.calls / self.hours if self.hours else 0.0


@dataclass(frozen=True)
class TrafficHour:
    """One row of ``agg_traffic_hourly``."""

    hour_start_local: datetime
    call_date: date
    hour_of_day: int
    erlangs: float
    call_attempts: int
    peak_concurrent_calls: int
    is_busy_hour: bool


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


@dataclass(frozen=True)
class Destination:
    """Outbound calls to one destination over the period."""

    name: str
    attempts: int
    answered_calls: int
    talk_seconds: int
    cost: float

    @property
    def cost_per_minute(self) -> float | None:
        """Cost / talk minutes; None without talk."""
        return self.cost / (self.talk_seconds / 60) if self.talk_seconds else None


@dataclass(frozen=True)
class UserRow:
    """One user's figures over the period (``agg_user_daily`` summed); a user is an
    (account, user_id): ids repeat across accounts."""

    account: str
    user_id: int
    name: str
    extension: str
    handled_calls: int
    inbound_handled_calls: int
    outbound_calls: int
    outbound_answered_calls: int
    internal_calls: int
    missed_calls: int
    missed_unanswered_calls: int
    talk_seconds: int
    answered_ring_seconds: int
    inbound_answered_legs: int
    callbacks_made: int

    @property
    def avg_ring_seconds(self) -> float | None:
        """Average ring before the user answered an inbound call."""
        return MetricValue(self.answered_ring_seconds, self.inbound_answered_legs).value


@dataclass(frozen=True)
class OpenMissed:
    """An outside number whose missed calls to an account in the period have had no callback
    from that account yet."""

    account: str
    number: str
    missed_calls: int
    first_missed_at: datetime
    last_missed_at: datetime
    waiting_seconds: int
    in_business_hours: bool


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
    daily: list[DailyOutcome] = field(default_factory=list)
    heatmap: list[HeatCell] = field(default_factory=list)
    traffic: list[TrafficHour] = field(default_factory=list)
    busy_hours: list[BusyHour] = field(default_factory=list)
    destinations: list[Destination] = field(default_factory=list)
    users: list[UserRow] = field(default_factory=list)
    open_missed: list[OpenMissed] = field(default_factory=list)
    open_missed_numbers: int = 0
    open_missed_calls: int = 0
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


def _users(marts: Marts, period: Period) -> list[UserRow]:
    rows = marts.rows(query_text("users"), _between(period))
    return [
        UserRow(
            account=str(row[0]),
            user_id=int(row[1]),
            name=str(row[2]) if row[2] else f"user {row[1]}",
            extension=str(row[3] or ""),
            handled_calls=int(row[4]),
            inbound_handled_calls=int(row[5]),
            outbound_calls=int(row[6]),
            outbound_answered_calls=int(row[7]),
            internal_calls=int(row[8]),
            missed_calls=int(row[9]),
            missed_unanswered_calls=int(row[10]),
            talk_seconds=int(row[11]),
            answered_ring_seconds=int(row[12]),
            inbound_answered_legs=int(row[13]),
            callbacks_made=int(row[14]),
        )
        for row in rows
    ]


def combined_peaks(marts: Marts, period: Period) -> dict[int, int]:
    """The peak of concurrent calls of :attr:`Marts.accounts` together in each hour of
    ``period``, by the hour's start (Unix seconds), counted from their calls."""
    return {
        int(hour): int(peak) for hour, peak in marts.rows(query_text("peaks"), _between(period))
    }


def _traffic(marts: Marts, period: Period) -> list[TrafficHour]:
    rows = marts.rows(query_text("traffic"), _between(period))
    # One account's peaks are the mart's; several accounts' peaks are not the sum of theirs.
    peaks = combined_peaks(marts, period) if len(marts.accounts) > 1 else {}
    return [
        TrafficHour(
            hour_start_local=row[0],
            call_date=row[1],
            hour_of_day=int(row[2]),
            erlangs=float(row[3]),
            call_attempts=int(row[4]),
            peak_concurrent_calls=peaks.get(int(row[7]), int(row[5])),
            is_busy_hour=bool(row[6]),
        )
        for row in rows
    ]


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
    if "daily" not in data.missing:
        data.daily = [
            DailyOutcome(day, str(outcome), int(calls))
            for day, outcome, calls in marts.rows(query_text("daily"), _between(period))
        ]
    if "heatmap" not in data.missing:
        data.heatmap = [
            HeatCell(int(weekday), int(hour), int(calls), int(hours))
            for weekday, hour, calls, hours in marts.rows(query_text("heatmap"), _between(period))
        ]
        data.traffic = _traffic(marts, period)
    if "agg_busy_hour_monthly" in marts.relations:
        data.busy_hours = [
            BusyHour(str(row[0]), row[1], int(row[2]), str(row[3]), *map(float, row[4:]))
            for row in marts.rows(query_text("busy_hours"), _between(period))
        ]
    if "destinations" not in data.missing:
        data.destinations = [
            Destination(str(name), int(attempts), int(answered), int(talk), float(cost))
            for name, attempts, answered, talk, cost in marts.rows(
                query_text("destinations"), {**_between(period), "limit": TOP_DESTINATIONS}
            )
        ]
    if "users" not in data.missing:
        data.users = _users(marts, period)
    if "open_missed" not in data.missing:
        rows = marts.rows(query_text("open_missed"), _between(period))
        data.open_missed_numbers = len(rows)
        data.open_missed_calls = sum(int(row[2]) for row in rows)
        data.open_missed = [
            OpenMissed(
                str(row[0]), str(row[1]), int(row[2]), row[3], row[4], int(row[5]), bool(row[6])
            )
            for row in rows[:OPEN_MISSED_ROWS]
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
