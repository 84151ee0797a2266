"""Build the SQL reporting models in ``sql/`` and run their data tests.

A model is one ``.sql`` file holding one ``SELECT`` in DuckDB's dialect:
``sql/staging/*.sql`` become views, ``sql/marts/*.sql`` tables, named after the file. Raw tables
are referenced as ``voipstudio.<table>`` (the runner points them at the configured dataset),
other models by their bare name. The build order comes from those references, parsed with
sqlglot, never from a list kept by hand. ``{{ name }}`` variables are replaced by the settings
(:mod:`pipelines.models.settings`) before parsing.

A model whose header declares ``-- incremental:`` (:mod:`pipelines.models.declarations`) is a
table the builder (:mod:`pipelines.models.builder`) keeps up to date after each sync by
rebuilding only what changed; the others, and every model on ``--full``, are rebuilt in full
with ``CREATE OR REPLACE``. On DuckDB and other destinations with transactional DDL the whole
build is one transaction: a failing model leaves every model as the previous build left it, and
the raw tables are never touched. SQL runs through the dlt pipeline's ``sql_client()``; for a
destination that is not DuckDB it is transpiled with sqlglot to the destination's dialect first.

Data tests (``sql/tests/*.sql``) are queries returning offending rows: zero rows pass.
"""

from __future__ import annotations

import functools
import graphlib
import hashlib
import logging
import pickle
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, TypeVar

import dlt
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from pipelines.models.declarations import (
    RAW_SCHEMA,
    SOURCE_DIALECT,
    DeclarationError,
    Header,
    parse_header,
)
from pipelines.models.key_tests import is_key_test, key_tests
from pipelines.models.settings import ModelSettings, load_settings
from pipelines.voipstudio.errors import VoipstudioError

log = logging.getLogger("voipstudio.models")


def _sql_dir() -> Path:
    """The models' folder: ``pipelines/sql`` in an installed wheel (a build rule copies the
    repository's ``sql/`` there), else the checkout's top-level ``sql/``."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "sql"
    return installed if installed.is_dir() else package.parent / "sql"


SQL_DIR = _sql_dir()
FOLDER_KINDS: dict[str, Literal["view", "table"]] = {"staging": "view", "marts": "table"}
TESTS_FOLDER = "tests"
# Dialects with CREATE OR REPLACE TABLE/VIEW; elsewhere a model is dropped and created.
REPLACE_DIALECTS = frozenset(
    {"duckdb", "snowflake", "bigquery", "databricks", "spark", "clickhouse"}
)
SAMPLE_ROWS = 5

_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

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
        models: the models it references.
        sources: the raw tables it references (names without schema).
        header: what its leading comment declares (key, incremental, optional columns).
        text: the rendered file, whose hash says whether the model changed.
        absent: optional inputs read as one row of NULLs (see :func:`without_inputs`).
        query: the parsed ``SELECT`` (variables substituted), parsed again from ``text`` when
            first used after the file came from the :class:`ParseCache` (an incremental build
            on DuckDB uses compiled templates instead, and never needs it).
    """

    name: str
    path: Path
    kind: Kind
    models: frozenset[str]
    sources: frozenset[str]
    header: Header = field(default_factory=Header, repr=False)
    text: str = field(default="", repr=False)
    absent: tuple[str, ...] = ()

    @functools.cached_property
    def query(self) -> exp.Query:
        """The parsed ``SELECT``, with the ``absent`` inputs replaced."""
        query = _parse_query(self.path, self.name, self.text)
        return _null_inputs(query, self.header, self.absent)

    def __getstate__(self) -> dict[str, Any]:
        # The tree is not kept: sqlglot pickles it through its serde, which takes longer to
        # read back than parsing the text again.
        return {k: v for k, v in self.__dict__.items() if k != "query"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


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
    """One model of a build.

    Attributes:
        name, kind: the model.
        seconds: how long it took.
        rows: its rows, after a full rebuild of a table.
        mode: ``full`` (rebuilt from every row), ``incremental`` (only what changed) or
            ``unchanged`` (nothing it reads changed).
        changed_rows: rows written or removed by an incremental build (old and new versions).
        partitions: partitions rebuilt by an incremental build.
    """

    name: str
    kind: Kind
    seconds: float
    rows: int | None = None
    mode: Literal["full", "incremental", "unchanged"] = "full"
    changed_rows: int | None = None
    partitions: int | None = None


@dataclass
class BuildResult:
    """What :func:`pipelines.models.build_models` did."""

    dataset: str
    dialect: str
    built: list[BuiltModel] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    memory_limit: str | None = None
    # Models of collections the configuration does not load (never reported as skipped).
    not_loaded: dict[str, str] = field(default_factory=dict)

    def count(self, mode: str) -> int:
        """How many models were built in ``mode``."""
        return sum(1 for m in self.built if m.mode == mode)

    def summary(self) -> str:
        """One line for the console."""
        views = sum(1 for m in self.built if m.kind == "view")
        tables = len(self.built) - views
        line = (
            f"models built in {self.seconds:.1f}s into dataset {self.dataset}: "
            f"{_plural(views, 'view')}, {_plural(tables, 'table')}"
        )
        full, incremental = self.count("full"), self.count("incremental")
        if incremental or self.count("unchanged"):
            line += (
                f" ({full} rebuilt in full, {incremental} updated, "
                f"{self.count('unchanged')} unchanged)"
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


def _sqlglot_version() -> str:
    # sqlglot's own attribute: reading the installed distributions' metadata costs 10-40 ms
    return str(getattr(sqlglot, "__version__", None) or metadata.version("sqlglot"))


# The shape of the parsed files kept (bumped when SqlFile or Header gain a field: a pickle of
# the old shape would lack it).
_CACHE_FORMAT = 3


class ParseCache:
    """Parsed models and their compiled templates, kept between processes by the hash of their
    rendered text.

    sqlglot parses the 23 models in 0.2-0.3 s on this machine, and compiling a model's query
    for an incremental build (copying its tree, pointing it at the changed rows, generating
    SQL) costs 10-30 ms a model: a scheduled sync with nothing new spends about as much on
    everything else its models do. The cache keeps each file's header and references (not its
    tree: sqlglot pickles trees through its serde, slower to read back than parsing again) and
    each model's query compiled once into a template (see :func:`compile_sql`), so that an
    incremental build on DuckDB parses and generates nothing. The file lives in the pipeline's
    working folder; an unreadable or stale one is ignored (and rewritten).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, SqlFile] = {}
        self.templates: dict[str, str] = {}
        self.used: set[str] = set()
        self.changed = False
        if path is None or not path.exists():
            return
        try:
            with path.open("rb") as handle:
                loaded = pickle.load(handle)  # noqa: S301 - the pipeline's own working folder
        except Exception:  # a file of another version, or cut short: parse again
            log.debug("model parse cache %s unreadable: ignored", path)
            return
        if isinstance(loaded, dict) and loaded.get("format") == _CACHE_FORMAT:
            self.entries = dict(loaded.get("files", {}))
            self.templates = dict(loaded.get("templates", {}))

    @staticmethod
    def key(path: Path, kind: Kind, text: str) -> str:
        """What a parsed file is kept by: sqlglot's version, the kind, the name, the text."""
        digest = hashlib.sha256(
            f"{_CACHE_FORMAT}\0{_sqlglot_version()}\0{kind}\0{path.stem}\0{text}".encode()
        )
        return digest.hexdigest()

    def get(self, key: str, path: Path) -> SqlFile | None:
        """The file parsed before, if the cache has it (and remember it is used)."""
        found = self.entries.get(key)
        if found is None:
            return None
        self.used.add(key)
        return found if found.path == path else replace(found, path=path)

    def put(self, key: str, item: SqlFile) -> None:
        """Keep a file just parsed."""
        self.entries[key] = item
        self.used.add(key)
        self.changed = True

    def template(self, key: str, make: Callable[[], str]) -> str:
        """The template kept under ``key``, or ``make()`` kept there."""
        found = self.templates.get(key)
        if found is None:
            found = self.templates[key] = make()
            self.changed = True
        self.used.add(key)
        return found

    def save(self) -> None:
        """Write the entries the project used, if anything changed."""
        unused = (set(self.entries) | set(self.templates)) - self.used
        if self.path is None or not (self.changed or unused):
            return
        content = {
            "format": _CACHE_FORMAT,
            "files": {k: v for k, v in self.entries.items() if k in self.used},
            "templates": {k: v for k, v in self.templates.items() if k in self.used},
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            with temporary.open("wb") as handle:
                pickle.dump(content, handle, protocol=pickle.HIGHEST_PROTOCOL)
            temporary.replace(self.path)
        except OSError as exc:  # a cache: the build goes on without it
            log.debug("model parse cache %s not written: %s", self.path, exc)
        self.changed = False


def parse_file(
    path: Path, kind: Kind, variables: dict[str, str], cache: ParseCache | None = None
) -> SqlFile:
    """Read, render and parse one ``.sql`` file (from ``cache`` when it holds the same text).

    Raises:
        ModelError: the file is not exactly one query in DuckDB's SQL.
    """
    name = path.stem
    if not _NAME.match(name):
        raise ModelError(name, f"{path.name}: a model's name is lowercase letters, digits and _")
    text = render(path.read_text(encoding="utf-8"), variables, name)
    key = ParseCache.key(path, kind, text)
    cached = cache.get(key, path) if cache is not None else None
    if cached is not None:
        return cached
    item = _parse(path, kind, name, text)
    if cache is not None:
        cache.put(key, item)
    return item


def _parse_query(path: Path, name: str, text: str) -> exp.Query:
    """The one ``SELECT`` of a rendered file.

    Raises:
        ModelError: the text is not exactly one query in DuckDB's SQL.
    """
    try:
        statements = [s for s in sqlglot.parse(text, read=SOURCE_DIALECT) if s is not None]
    except SqlglotError as exc:
        raise ModelError(name, f"{path.name} is not valid SQL: {_first_line(str(exc))}") from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ModelError(name, f"{path.name} must hold exactly one SELECT query")
    return statements[0]


def _parse(path: Path, kind: Kind, name: str, text: str) -> SqlFile:
    try:
        header = parse_header(text, name)
    except DeclarationError as exc:
        raise ModelError(name, str(exc)) from None
    query = _parse_query(path, name, text)
    models: set[str] = set()
    sources: set[str] = set()
    for table, refers_to in _references(query):
        if refers_to == "model":
            models.add(table.name.lower())
        elif refers_to == "source":
            sources.add(table.name.lower())
    if kind != "test":
        if header.materialized is not None:
            kind = header.materialized
        elif header.incremental is not None:
            kind = "table"  # kept up to date between builds: stored, never a view
    item = SqlFile(name, path, kind, frozenset(models), frozenset(sources), header, text)
    item.__dict__["query"] = query  # parsed already (see SqlFile.query)
    return item


def _check_declarations(item: SqlFile) -> None:
    """An incremental declaration names only what the model reads.

    Raises:
        ModelError: it names an input the model does not read, a source of a partitioned model,
            or a key model reads other models.
    """
    spec = item.header.incremental
    for table in item.header.optional:
        if table not in item.sources:
            raise ModelError(
                item.name, f"declares an optional column of {table}, which it does not read"
            )
    if spec is None:
        return
    if spec.mode == "key":
        if item.models:
            raise ModelError(
                item.name,
                "an incremental key model reads raw tables only (it is where changes are "
                f"found); it reads {', '.join(sorted(item.models))}",
            )
        unknown = sorted(set(spec.sources) - item.sources)
        if unknown:
            raise ModelError(item.name, f"maps {', '.join(unknown)}, which it does not read")
        return
    if item.sources:
        raise ModelError(
            item.name,
            "a partitioned model reads models only (changes of raw tables are found by the "
            f"staging models); it reads {', '.join(sorted(item.sources))}",
        )
    covered = {
        (r.column or "", r.unit)
        for rules in spec.rules.values()
        for r in rules
        if r.kind in ("covers", "between")
    }
    if len(covered) > 1:
        raise ModelError(
            item.name,
            "covers periods of more than one column or unit "
            f"({', '.join(sorted(f'{c} by {u}' for c, u in covered))})",
        )
    for input_name, rules in spec.rules.items():
        if input_name not in item.models:
            raise ModelError(item.name, f"has a rule for {input_name}, which it does not read")
        for rule in rules:
            if rule.kind == "through" and (
                rule.through not in item.models or rule.through == input_name
            ):
                raise ModelError(
                    item.name, f"reads {input_name} through {rule.through}: not another input"
                )


def load_project(
    sql_dir: Path | None = None,
    settings: ModelSettings | None = None,
    *,
    tests: bool = True,
    cache: Path | ParseCache | None = None,
) -> Project:
    """Discover, parse and order every model and data test under ``sql_dir`` (``tests=False``:
    the models only, as a build needs them; ``cache``: a file keeping parsed models between
    processes, see :class:`ParseCache`, or such a cache, which the caller then saves).

    Raises:
        ModelError: a file does not parse, two models share a name, a model references a table
            that is neither a model nor a raw table, or the references form a cycle.
    """
    root = sql_dir or SQL_DIR
    variables = (settings or ModelSettings()).sql_variables()
    parsed = ParseCache(cache) if isinstance(cache, Path) else cache
    found: dict[str, SqlFile] = {}
    for folder, kind in FOLDER_KINDS.items():
        for path in sorted((root / folder).glob("*.sql")):
            model = parse_file(path, kind, variables, parsed)
            if model.name in found:
                raise ModelError(
                    model.name, f"two models are called {model.name}: {found[model.name].path}"
                )
            found[model.name] = model
    if not found:
        raise ModelError(None, f"no models found under {root} (staging/*.sql, marts/*.sql)")
    data_tests = (
        [
            parse_file(path, "test", variables, parsed)
            for path in sorted((root / TESTS_FOLDER).glob("*.sql"))
        ]
        if tests
        else []
    )
    if tests:
        # The unique and not-null tests of every model's key, from its header's key: line
        generated = key_tests({name: model.header.key for name, model in found.items()})
        for name, text in generated.items():
            data_tests.append(_parse(root / TESTS_FOLDER / f"{name}.sql", "test", name, text))
        data_tests.sort(key=lambda test: test.name)
    if isinstance(cache, Path) and parsed is not None:
        parsed.save()
    for item in found.values():
        _check_declarations(item)
    for item in [*found.values(), *data_tests]:
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
    return Project([found[name] for name in order], data_tests)


def point_at_dataset(query: _E, dataset: str) -> _E:
    """A copy of ``query`` with its raw tables (``voipstudio.<table>``) and models pointed at
    ``dataset``."""
    query = query.copy()
    for table, refers_to in _references(query):
        if refers_to in ("source", "model"):
            table.set("db", exp.to_identifier(dataset))
            table.set("this", exp.to_identifier(table.name.lower()))
    return query


def compile_query(
    item: SqlFile,
    dataset: str,
    *,
    source_columns: dict[str, list[str]] | None = None,
    sources: dict[str, exp.Query] | None = None,
    models: dict[str, str | exp.Query] | None = None,
) -> exp.Query:
    """The item's query with raw tables and models pointed at ``dataset``.

    Args:
        item: the model or data test.
        dataset: where the raw tables and models are.
        source_columns: the raw tables' columns, when known: an optional column (``-- optional
            column:``) a table does not have reads as NULL.
        sources: raw tables to read through a query instead (``{table: SELECT}``).
        models: models to read from elsewhere instead: ``{model: table name}`` or
            ``{model: SELECT}``.
    """
    query = item.query.copy()
    for table, refers_to in list(_references(query)):
        name = table.name.lower()
        alias = table.alias or name
        if refers_to == "source":
            replacement: exp.Query | None = sources.get(name) if sources else None
            missing = {
                column: kind
                for column, kind in item.header.optional.get(name, {}).items()
                if source_columns is not None and column not in source_columns.get(name, [])
            }
            if missing:
                inner: exp.Expr = (
                    replacement.subquery("raw")
                    if replacement is not None
                    else exp.table_(name, db=dataset)
                )
                replacement = _with_null_columns(inner, missing)
            if replacement is not None:
                table.replace(replacement.subquery(alias))
            else:
                table.set("db", exp.to_identifier(dataset))
                table.set("this", exp.to_identifier(name))
        elif refers_to == "model":
            if models and name in models:
                instead = models[name]
                table.replace(
                    instead.subquery(alias)
                    if isinstance(instead, exp.Query)
                    else exp.Table(
                        this=exp.to_identifier(instead),
                        alias=exp.TableAlias(this=exp.to_identifier(alias)),
                    )
                )
            else:
                table.set("db", exp.to_identifier(dataset))
                table.set("this", exp.to_identifier(name))
    return query


def _with_null_columns(inner: exp.Expr, missing: dict[str, str]) -> exp.Select:
    """``select *`` from ``inner`` plus each missing optional column as a NULL of its type."""
    return exp.select(
        "*",
        *(
            exp.cast(exp.null(), exp.DataType.build(kind, dialect=SOURCE_DIALECT)).as_(column)
            for column, kind in sorted(missing.items())
        ),
    ).from_(inner)


# A template's slots: __vsm_source_<raw table> and __vsm_model_<model>.
_SLOT = "__vsm_{}_"
_SLOT_NAME = re.compile(r"__vsm_(source|model)_([a-z0-9_]+)")


def _missing_columns(
    item: SqlFile, source_columns: dict[str, list[str]] | None
) -> dict[str, dict[str, str]]:
    """``{raw table: {column: SQL type}}`` of the optional columns its raw tables lack."""
    if source_columns is None:
        return {}
    missing: dict[str, dict[str, str]] = {}
    for name, columns in item.header.optional.items():
        lacking = {c: k for c, k in columns.items() if c not in source_columns.get(name, [])}
        if lacking:
            missing[name] = lacking
    return missing


def _template(item: SqlFile, missing: dict[str, dict[str, str]]) -> str:
    """The item's query in DuckDB's SQL with every raw table and model it reads written as a
    slot, ``__vsm_source_<name>`` or ``__vsm_model_<name>`` (always followed by an alias), for
    :func:`compile_sql`."""
    query = item.query.copy()
    for table, refers_to in list(_references(query)):
        if refers_to not in ("source", "model"):
            continue
        name = table.name.lower()
        alias = table.alias or name
        slot = exp.Table(this=exp.to_identifier(_SLOT.format(refers_to) + name))
        lacking = missing.get(name) if refers_to == "source" else None
        if lacking:
            slot.set("alias", exp.TableAlias(this=exp.to_identifier("raw")))
            table.replace(_with_null_columns(slot, lacking).subquery(alias))
        else:
            slot.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
            table.replace(slot)
    return query.sql(dialect=SOURCE_DIALECT, comments=False)


def compiled_template(
    item: SqlFile,
    source_columns: dict[str, list[str]] | None = None,
    cache: ParseCache | None = None,
) -> str:
    """The item's template for :func:`compile_sql`, from ``cache`` (or compiled, and kept
    there)."""
    missing = _missing_columns(item, source_columns)
    signature = ";".join(
        f"{name}:{','.join(sorted(columns))}" for name, columns in sorted(missing.items())
    )
    key = hashlib.sha256(
        f"{_CACHE_FORMAT}\0{_sqlglot_version()}\0template\0{item.kind}\0{item.name}\0"
        f"{signature}\0{item.text}".encode()
    ).hexdigest()
    if cache is None:
        return _template(item, missing)
    return cache.template(key, lambda: _template(item, missing))


def compile_sql(
    item: SqlFile,
    dataset: str,
    *,
    source_columns: dict[str, list[str]] | None = None,
    sources: dict[str, str] | None = None,
    models: dict[str, str] | None = None,
    cache: ParseCache | None = None,
) -> str:
    """What :func:`compile_query` returns, as DuckDB SQL, from a template compiled once per
    definition (and kept in ``cache``, between processes): the raw tables in ``sources`` and
    the models in ``models`` (``{name: SELECT in DuckDB's SQL}``) are read through their
    query, every other one from ``dataset``. Nothing is parsed or generated when the cache
    holds the template: an incremental build compiles a dozen models after every sync."""
    template = compiled_template(item, source_columns, cache)
    instead = {"source": sources or {}, "model": models or {}}
    qualified = f"{dataset}."

    def fill(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        query = instead[kind].get(name)
        return qualified + name if query is None else f"({query})"

    return _SLOT_NAME.sub(fill, template)


def without_inputs(model: SqlFile, absent: set[str]) -> SqlFile:
    """``model`` reading its optional inputs in ``absent`` (not built: their collection was
    never loaded) as one row of NULLs in their declared columns (``-- optional input:``).

    The model's text records it, so that its definition hash changes when an input comes or
    goes: the model is then rebuilt in full. Its query is changed only when it is used.
    """
    gone = sorted(set(model.header.optional_inputs) & absent)
    if not gone:
        return model
    marks = "".join(f"\n-- not loaded: {name}" for name in gone)
    changed = replace(
        model,
        models=model.models - set(gone),
        text=model.text + marks,
        absent=tuple(sorted({*model.absent, *gone})),
    )
    if "query" in model.__dict__:  # parsed already: no need to parse it again
        changed.__dict__["query"] = _null_inputs(model.query, model.header, gone)
    return changed


def _null_inputs(query: exp.Query, header: Header, absent: Iterable[str]) -> exp.Query:
    """``query`` reading the optional inputs ``absent`` as one row of NULLs."""
    gone = set(absent)
    if not gone:
        return query
    query = query.copy()
    for table, refers_to in list(_references(query)):
        name = table.name.lower()
        if refers_to != "model" or name not in gone:
            continue
        row = exp.select(
            *(
                exp.cast(exp.null(), exp.DataType.build(kind, dialect=SOURCE_DIALECT)).as_(column)
                for column, kind in header.optional_inputs[name]
            )
        )
        table.replace(row.subquery(table.alias or name))
    return query


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
    item: SqlFile,
    dialect: str,
    dataset: str,
    existing_kind: str | None = None,
    source_columns: dict[str, list[str]] | None = None,
) -> list[str]:
    """The statements that (re)build one model in full, in ``dialect`` (``source_columns``: the
    raw tables' columns, for the optional ones; see :func:`compile_query`)."""
    kind = item.kind.upper()
    target = exp.table_(item.name, db=dataset)
    query = compile_query(item, dataset, source_columns=source_columns)
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


def database_message(exc: BaseException) -> str:
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


def relation_exists(client: Any, dialect: str, dataset: str, name: str) -> bool:
    probe = exp.select("1").from_(exp.table_(name, db=dataset)).where("1 = 0")
    try:
        client.execute_sql(probe.sql(dialect=dialect))
    except Exception:  # any failure means the relation cannot be read: missing
        return False
    return True


def existing_kinds(client: Any, dialect: str, dataset: str) -> dict[str, str]:
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
        # an optional input not built is read as "not loaded" (see without_inputs)
        upstream = sorted((model.models - set(model.header.optional_inputs)) & set(skipped))
        if upstream:
            skipped[model.name] = skipped[upstream[0]]
    return skipped


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
                    exists[name] = relation_exists(client, dialect, dataset, name)
            absent = [name for name in needed if not exists[name]]
            if absent and is_key_test(test.name):
                continue  # a model that was not built has no key to test: nothing to report
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
                    test.name, f"data test did not run: {database_message(exc)}"
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
