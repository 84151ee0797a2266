"""Build the SQL reporting models in ``sql/`` and run their data tests.

A model is one ``.sql`` file holding one ``SELECT`` in DuckDB's dialect:
``sql/staging/*.sql`` become views, ``sql/marts/*.sql`` tables, named after the file. Raw tables
are referenced as ``voipstudio.<table>`` (the runner points them at the configured dataset),
other models by their bare name. The build order comes from those references, parsed with
sqlglot, never from a list kept by hand. ``{{ name }}`` variables are replaced by the settings
(:mod:`pipelines.models.settings`) before parsing.

Every model is rebuilt in full with ``CREATE OR REPLACE`` (idempotent). On DuckDB and other
destinations with transactional DDL the whole build is one transaction: a failing model leaves
every model as the previous build left it, and the raw tables are never touched. SQL runs through
the dlt pipeline's ``sql_client()``; for a destination that is not DuckDB it is transpiled with
sqlglot to the destination's dialect first.

Data tests (``sql/tests/*.sql``) are queries returning offending rows: zero rows pass.
"""

from __future__ import annotations

import graphlib
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import dlt
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from pipelines.models.settings import ModelSettings, load_settings
from pipelines.voipstudio.accounts import unconfigured_tables
from pipelines.voipstudio.errors import VoipstudioError

log = logging.getLogger("voipstudio.models")


def _sql_dir() -> Path:
    """The models' folder: ``pipelines/sql`` in an installed wheel (a build rule copies the
    repository's ``sql/`` there), else the checkout's top-level ``sql/``."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "sql"
    return installed if installed.is_dir() else package.parent / "sql"


SQL_DIR = _sql_dir()
# The schema name models use for raw tables; the runner substitutes the pipeline's dataset.
RAW_SCHEMA = "voipstudio"
# The dialect the models are written in.
SOURCE_DIALECT = "duckdb"
FOLDER_KINDS: dict[str, Literal["view", "table"]] = {"staging": "view", "marts": "table"}
TESTS_FOLDER = "tests"
# Dialects with CREATE OR REPLACE TABLE/VIEW; elsewhere a model is dropped and created.
REPLACE_DIALECTS = frozenset(
    {"duckdb", "snowflake", "bigquery", "databricks", "spark", "clickhouse"}
)
SAMPLE_ROWS = 5

_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")

Kind = Literal["view", "table", "test"]
_E = TypeVar("_E", bound=exp.Expr)


class ModelError(VoipstudioError):
    """A model (or a data test query) could not be parsed, compiled or built."""

    exit_code = 6

    def __init__(self, name: str | None, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(f"model {name} failed: {message}" if name else message)


class DataTestError(VoipstudioError):
    """One or more data tests returned rows."""

    exit_code = 7


@dataclass(frozen=True)
class SqlFile:
    """A parsed model or data test.

    Attributes:
        name: file name without ``.sql``; the relation a model builds.
        path: where it was read from.
        kind: ``view`` (staging), ``table`` (marts) or ``test``.
        query: the parsed ``SELECT`` (variables substituted).
        models: the models it references.
        sources: the raw tables it references (names without schema).
    """

    name: str
    path: Path
    kind: Kind
    query: exp.Query = field(repr=False)
    models: frozenset[str]
    sources: frozenset[str]


@dataclass(frozen=True)
class Project:
    """Every model in build order, and the data tests."""

    models: list[SqlFile]
    tests: list[SqlFile]

    def model(self, name: str) -> SqlFile:
        """The model called ``name``."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)


@dataclass
class BuiltModel:
    """One model of a build."""

    name: str
    kind: Kind
    seconds: float
    rows: int | None = None


@dataclass
class BuildResult:
    """What :func:`build_models` did."""

    dataset: str
    dialect: str
    built: list[BuiltModel] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    # Models of collections the configuration does not load (never reported as skipped).
    not_loaded: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the console."""
        views = sum(1 for m in self.built if m.kind == "view")
        tables = len(self.built) - views
        line = (
            f"models built in {self.seconds:.1f}s into dataset {self.dataset}: "
            f"{_plural(views, 'view')}, {_plural(tables, 'table')}"
        )
        if self.skipped:
            names = sorted(self.skipped)
            which = ", ".join(names) if len(names) <= 4 else _plural(len(names), "model")
            line += f"; skipped {which} ({self.skip_reasons()})"
        return line

    def skip_reasons(self) -> str:
        """Why models were skipped, each reason once."""
        return "; ".join(sorted(set(self.skipped.values())))


@dataclass
class DataTestResult:
    """One data test: how many rows it returned (None when skipped) and a few of them."""

    name: str
    failures: int | None
    columns: list[str] = field(default_factory=list)
    sample: list[tuple[Any, ...]] = field(default_factory=list)
    skipped_because: str = ""

    @property
    def passed(self) -> bool:
        """True when the test ran and returned no rows."""
        return self.failures == 0

    def describe(self) -> str:
        """``FAIL name: N rows, e.g. {...}`` or ``PASS name``."""
        if self.failures is None:
            return f"SKIP {self.name}: {self.skipped_because}"
        if not self.failures:
            return f"PASS {self.name}"
        example = dict(zip(self.columns, self.sample[0], strict=False)) if self.sample else {}
        return f"FAIL {self.name}: {self.failures} rows, e.g. {example}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def render(text: str, variables: dict[str, str], name: str) -> str:
    """Replace ``{{ name }}`` variables by their SQL literals.

    Raises:
        ModelError: the text uses a variable that does not exist.
    """

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in variables:
            raise ModelError(
                name, f"unknown variable {{{{ {key} }}}}; known: {', '.join(sorted(variables))}"
            )
        return variables[key]

    return _VARIABLE.sub(substitute, text)


def _references(query: exp.Expr) -> Iterable[tuple[exp.Table, str]]:
    """Each table node with what it refers to: ``source``, ``model``, ``cte`` or ``external``."""
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function
        schema = table.db.lower()
        if table.catalog:
            yield table, "external"
        elif schema == RAW_SCHEMA:
            yield table, "source"
        elif schema:
            yield table, "external"
        elif table.name.lower() in ctes:
            yield table, "cte"
        else:
            yield table, "model"


def parse_file(path: Path, kind: Kind, variables: dict[str, str]) -> SqlFile:
    """Read, render and parse one ``.sql`` file.

    Raises:
        ModelError: the file is not exactly one query in DuckDB's SQL.
    """
    name = path.stem
    text = render(path.read_text(encoding="utf-8"), variables, name)
    try:
        statements = [s for s in sqlglot.parse(text, read=SOURCE_DIALECT) if s is not None]
    except SqlglotError as exc:
        raise ModelError(name, f"{path.name} is not valid SQL: {_first_line(str(exc))}") from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ModelError(name, f"{path.name} must hold exactly one SELECT query")
    query = statements[0]
    models: set[str] = set()
    sources: set[str] = set()
    for table, refers_to in _references(query):
        if refers_to == "model":
            models.add(table.name.lower())
        elif refers_to == "source":
            sources.add(table.name.lower())
    return SqlFile(name, path, kind, query, frozenset(models), frozenset(sources))


def load_project(sql_dir: Path | None = None, settings: ModelSettings | None = None) -> Project:
    """Discover, parse and order every model and data test under ``sql_dir``.

    Raises:
        ModelError: a file does not parse, two models share a name, a model references a table
            that is neither a model nor a raw table, or the references form a cycle.
    """
    root = sql_dir or SQL_DIR
    variables = (settings or ModelSettings()).sql_variables()
    found: dict[str, SqlFile] = {}
    for folder, kind in FOLDER_KINDS.items():
        for path in sorted((root / folder).glob("*.sql")):
            model = parse_file(path, kind, variables)
            if model.name in found:
                raise ModelError(
                    model.name, f"two models are called {model.name}: {found[model.name].path}"
                )
            found[model.name] = model
    if not found:
        raise ModelError(None, f"no models found under {root} (staging/*.sql, marts/*.sql)")
    tests = [
        parse_file(path, "test", variables) for path in sorted((root / TESTS_FOLDER).glob("*.sql"))
    ]
    for item in [*found.values(), *tests]:
        unknown = sorted(item.models - set(found))
        if unknown:
            raise ModelError(
                item.name,
                f"references {', '.join(unknown)}: neither a model (sql/staging, sql/marts) nor "
                f"a raw table ({RAW_SCHEMA}.<table>)",
            )
        if item.name in item.models:
            raise ModelError(item.name, "references itself")
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in sorted(found):
        sorter.add(name, *sorted(found[name].models))
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise ModelError(cycle.split(" -> ")[0], f"dependency cycle {cycle}") from None
    return Project([found[name] for name in order], tests)


def point_at_dataset(query: _E, dataset: str) -> _E:
    """A copy of ``query`` with its raw tables (``voipstudio.<table>``) and models pointed at
    ``dataset``."""
    query = query.copy()
    for table, refers_to in _references(query):
        if refers_to in ("source", "model"):
            table.set("db", exp.to_identifier(dataset))
            table.set("this", exp.to_identifier(table.name.lower()))
    return query


def compile_query(item: SqlFile, dataset: str) -> exp.Query:
    """The item's query with raw tables and models pointed at ``dataset``."""
    return point_at_dataset(item.query, dataset)


def to_sql(expression: exp.Expr, dialect: str, name: str) -> str:
    """Generate SQL in ``dialect``.

    Raises:
        ModelError: sqlglot cannot express the query in that dialect.
    """
    try:
        return expression.sql(dialect=dialect, comments=False, unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise ModelError(
            name, f"cannot be transpiled to {dialect}: {_first_line(str(exc))}"
        ) from exc


def build_statements(
    item: SqlFile, dialect: str, dataset: str, existing_kind: str | None = None
) -> list[str]:
    """The statements that (re)build one model, in ``dialect``."""
    kind = item.kind.upper()
    target = exp.table_(item.name, db=dataset)
    query = compile_query(item, dataset)
    statements: list[exp.Expr] = []
    if existing_kind is not None and existing_kind != item.kind:
        statements.append(exp.Drop(tables=[target.copy()], kind=existing_kind.upper(), exists=True))
    if dialect in REPLACE_DIALECTS:
        statements.append(exp.Create(this=target, kind=kind, expression=query, replace=True))
    else:
        statements.append(exp.Drop(tables=[target.copy()], kind=kind, exists=True, cascade=True))
        statements.append(exp.Create(this=target, kind=kind, expression=query))
    return [to_sql(statement, dialect, item.name) for statement in statements]


def _lines(text: str) -> list[str]:
    """The text's non-blank lines, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _first_line(text: str) -> str:
    lines = _lines(text)
    return lines[0] if lines else text


def _database_message(exc: BaseException) -> str:
    """The database's own message: the innermost cause, first line (then a hint line)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    innermost = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        innermost = current
        current = current.__cause__ or current.__context__
    lines = _lines(str(innermost))
    if not lines:
        return type(innermost).__name__
    return " ".join(lines[:2]) if len(lines[0]) < 40 and len(lines) > 1 else lines[0]


def _relation_exists(client: Any, dialect: str, dataset: str, name: str) -> bool:
    probe = exp.select("1").from_(exp.table_(name, db=dataset)).where("1 = 0")
    try:
        client.execute_sql(probe.sql(dialect=dialect))
    except Exception:  # any failure means the relation cannot be read: missing
        return False
    return True


def _existing_kinds(client: Any, dialect: str, dataset: str) -> dict[str, str]:
    """``{name: 'view' | 'table'}`` of the relations in the dataset; empty if unknown."""
    query = (
        exp.select("table_name", "table_type")
        .from_("information_schema.tables")
        .where(
            exp.func("lower", exp.column("table_schema")).eq(exp.Literal.string(dataset.lower()))
        )
    )
    try:
        rows = client.execute_sql(query.sql(dialect=dialect)) or []
    except Exception:  # no information_schema in this form here: kinds are unknown
        return {}
    return {
        str(name).lower(): "view" if "VIEW" in str(kind).upper() else "table" for name, kind in rows
    }


def skipped_models(project: Project, missing_sources: set[str]) -> dict[str, str]:
    """The models that cannot be built, with why: those reading a raw table in
    ``missing_sources`` (never loaded), and everything downstream of them."""
    skipped: dict[str, str] = {}
    for model in project.models:  # build order: dependencies come first
        missing = sorted(model.sources & missing_sources)
        if missing:
            skipped[model.name] = f"raw table {', '.join(missing)} not loaded"
            continue
        upstream = sorted(model.models & set(skipped))
        if upstream:
            skipped[model.name] = skipped[upstream[0]]
    return skipped


def build_models(
    pipeline: dlt.Pipeline,
    settings: ModelSettings | None = None,
    sql_dir: Path | None = None,
) -> BuildResult:
    """Build every model, in dependency order, into the pipeline's dataset.

    A model that needs a raw table that was never loaded (e.g. ``queues__users`` when no queue
    has members) is skipped with everything downstream of it.

    Args:
        pipeline: the dlt pipeline whose destination and dataset hold the raw tables.
        settings: thresholds and time zone; by default read from the configuration.
        sql_dir: the models' folder; by default the project's ``sql/``.

    Returns:
        What was built and skipped.

    Raises:
        ModelError: a model failed; the message names it and quotes the database. Nothing of
            the failed build is kept where the destination has transactional DDL.
        ConfigError: a setting is invalid.
    """
    started = time.perf_counter()
    project = load_project(sql_dir, settings or load_settings())
    with pipeline.sql_client() as client:
        dialect = str(client.capabilities.sqlglot_dialect or SOURCE_DIALECT)
        dataset = str(client.dataset_name)
        result = BuildResult(dataset=dataset, dialect=dialect)
        sources = sorted({s for model in project.models for s in model.sources})
        missing = {s for s in sources if not _relation_exists(client, dialect, dataset, s)}
        skipped = skipped_models(project, missing)
        # The raw tables of collections the configuration does not load (opt-in ones, e.g.
        # voicemessages): their models are not built, and not reported as skipped.
        result.not_loaded = skipped_models(project, missing & unconfigured_tables())
        result.skipped = {n: why for n, why in skipped.items() if n not in result.not_loaded}
        to_build = [m for m in project.models if m.name not in skipped]
        existing = _existing_kinds(client, dialect, dataset)
        # Compile everything before touching the database: a model that cannot be expressed
        # in the destination's dialect stops the run before anything changed.
        plans = [(m, build_statements(m, dialect, dataset, existing.get(m.name))) for m in to_build]

        def run() -> None:
            for model, statements in plans:
                model_started = time.perf_counter()
                try:
                    for statement in statements:
                        log.debug("model %s: %s", model.name, statement)
                        client.execute_sql(statement)
                    rows = None
                    if model.kind == "table":
                        count = exp.select("count(*)").from_(exp.table_(model.name, db=dataset))
                        counted = client.execute_sql(count.sql(dialect=dialect))
                        rows = int(counted[0][0]) if counted else 0
                except Exception as exc:
                    raise ModelError(model.name, _database_message(exc)) from exc
                seconds = time.perf_counter() - model_started
                result.built.append(BuiltModel(model.name, model.kind, seconds, rows))
                log.debug("model %s built in %.2fs", model.name, seconds)

        if plans and client.capabilities.supports_ddl_transactions:
            with client.begin_transaction():
                run()
        else:
            run()
    result.seconds = time.perf_counter() - started
    return result


def run_data_tests(
    pipeline: dlt.Pipeline,
    settings: ModelSettings | None = None,
    sql_dir: Path | None = None,
) -> list[DataTestResult]:
    """Run every data test against the built models.

    A test whose models or raw tables do not exist (skipped by the build) is skipped.

    Returns:
        One result per test, in file name order.

    Raises:
        ModelError: a test query failed to run (the message names the test).
    """
    project = load_project(sql_dir, settings or load_settings())
    results: list[DataTestResult] = []
    with pipeline.sql_client() as client:
        dialect = str(client.capabilities.sqlglot_dialect or SOURCE_DIALECT)
        dataset = str(client.dataset_name)
        exists: dict[str, bool] = {}
        for test in project.tests:
            needed = sorted(test.models | test.sources)
            for name in needed:
                if name not in exists:
                    exists[name] = _relation_exists(client, dialect, dataset, name)
            absent = [name for name in needed if not exists[name]]
            if absent:
                results.append(
                    DataTestResult(test.name, None, skipped_because=f"{absent[0]} does not exist")
                )
                continue
            query = compile_query(test, dataset)
            count_sql = to_sql(
                exp.select("count(*)").from_(query.subquery("failures")), dialect, test.name
            )
            sample_sql = to_sql(
                exp.select("*").from_(query.subquery("failures")).limit(SAMPLE_ROWS),
                dialect,
                test.name,
            )
            try:
                counted = client.execute_sql(count_sql)
                failures = int(counted[0][0]) if counted else 0
                columns: list[str] = []
                sample: list[tuple[Any, ...]] = []
                if failures:
                    with client.execute_query(sample_sql) as cursor:
                        columns = [str(d[0]) for d in cursor.description or []]
                        sample = [tuple(row) for row in cursor.fetchall()]
            except Exception as exc:
                raise ModelError(
                    test.name, f"data test did not run: {_database_message(exc)}"
                ) from exc
            results.append(DataTestResult(test.name, failures, columns, sample))
    return results


def check_data_tests(results: list[DataTestResult]) -> None:
    """Raise if any data test returned rows.

    Raises:
        DataTestError: naming the failed tests.
    """
    failed = [r for r in results if r.failures]
    if failed:
        names = ", ".join(f"{r.name} ({r.failures} rows)" for r in failed)
        raise DataTestError(f"{len(failed)} of {len(results)} data tests failed: {names}")
