"""What every step of a build shares: running SQL (written in DuckDB's dialect, transpiled for
the destination), temporary tables, and the state the last build left (see
:mod:`pipelines.models.builder` for how a build proceeds)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import sqlglot

from pipelines.models.declarations import SOURCE_DIALECT
from pipelines.models.rules import literal
from pipelines.models.runner import ParseCache, Project, SqlFile, compile_sql, to_sql
from pipelines.models.settings import ModelSettings
from pipelines.models.state import State, read_state

log = logging.getLogger("voipstudio.models")

# A full build of a partitioned model on DuckDB is cut into pieces of about this many rows of
# its largest input, and a change of more rows than LARGE_CHANGE_ROWS is rebuilt in full (in
# pieces): the memory then stays within DuckDB's limit whatever the history.
CHUNK_ROWS = 500_000
LARGE_CHANGE_ROWS = CHUNK_ROWS
_TEMP_PREFIX = "__vsm"

ALL: Literal["all"] = "all"
Change = str | Literal["all"] | None  # a temporary table of changed rows, everything, nothing
Execute = Callable[[str], list[tuple[Any, ...]]]


@dataclass
class Outcome:
    """What building one model did: its mode, and the change it hands downstream."""

    mode: Literal["full", "incremental", "unchanged"]
    change: Change
    changed_rows: int | None = None
    partitions: int | None = None
    reason: str = ""


class BuilderBase:
    """One build of the project's models into one dataset, on one open ``sql_client``.

    Args:
        client: the dlt sql client (its connection stays open for the whole build).
        project: the models, in build order.
        settings: the settings the models were rendered with (the reporting time zone).
        full: rebuild every model in full.
        columns: ``{relation: [column, ...]}`` of the dataset before the build.
        kinds: ``{relation: 'view' | 'table'}`` of the dataset before the build.
        cache: where the models' compiled templates are kept (see
            :func:`pipelines.models.runner.compile_sql`).
    """

    def __init__(
        self,
        client: Any,
        project: Project,
        settings: ModelSettings,
        *,
        dialect: str,
        dataset: str,
        full: bool,
        columns: dict[str, list[str]],
        kinds: dict[str, str],
        cache: ParseCache | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.project = project
        self.dialect = dialect
        self.dataset = dataset
        self.full = full
        self.columns = columns
        self.kinds = kinds
        self.timezone = settings.sql_variables()["reporting_timezone"]
        self.state: State = State()
        self.read_hashes: dict[str, str] = {}
        self.read_watermarks: dict[tuple[str, str], str] = {}
        self.changes: dict[str, Change] = {}
        self.sql_seconds = 0.0
        self.row_counts: dict[str, int] = {}
        self.chunk_rows = CHUNK_ROWS
        self.large_change_rows = LARGE_CHANGE_ROWS
        self.temporary: list[str] = []
        self.temp_counts: dict[str, int] = {}
        self.consumers: dict[str, set[str]] = {}
        for model in project.models:
            for upstream in model.models:
                self.consumers.setdefault(upstream, set()).add(model.name)

    # -- running SQL -----------------------------------------------------------------------

    def run(self, text: str, name: str) -> list[tuple[Any, ...]]:
        """Run one statement written in DuckDB's SQL, transpiled for the destination."""
        if self.dialect == SOURCE_DIALECT:  # written in it already: no need to parse it again
            return self.execute(text, name)
        expression = sqlglot.parse_one(text, read=SOURCE_DIALECT)
        return self.execute(to_sql(expression, self.dialect, name), name)

    def execute(self, statement: str, name: str) -> list[tuple[Any, ...]]:
        """Run a statement already in the destination's dialect."""
        started = time.perf_counter()
        rows = list(self.client.execute_sql(statement) or [])
        seconds = time.perf_counter() - started
        self.sql_seconds += seconds
        log.debug("model %s: %.3fs %s", name, seconds, statement)
        return rows

    def compiled(
        self,
        model: SqlFile,
        *,
        sources: dict[str, str] | None = None,
        models: dict[str, str] | None = None,
        source_columns: bool = False,
    ) -> str:
        """The model's query in DuckDB's SQL, reading the raw tables in ``sources`` and the
        models in ``models`` (``{name: SELECT}``) through their query (``source_columns``: the
        missing optional columns of its raw tables as NULLs); see
        :func:`pipelines.models.runner.compile_sql`."""
        return compile_sql(
            model,
            self.dataset,
            source_columns=self.columns if source_columns else None,
            sources=sources,
            models=models,
            cache=self.cache,
        )

    def table(self, name: str) -> str:
        """A relation of the dataset, qualified."""
        return f"{self.dataset}.{name}"

    def temp(self, what: str, model: str, name: str, select: str) -> str:
        """Create a temporary table holding ``select``; returns its name."""
        table = f"{_TEMP_PREFIX}_{what}_{model}"
        if self.dialect == SOURCE_DIALECT:
            self.run(f"create or replace temporary table {table} as {select}", name)
        else:
            self.run(f"drop table if exists {table}", name)
            self.run(f"create temporary table {table} as {select}", name)
        self.temporary.append(table)
        self.temp_counts.pop(table, None)
        return table

    def count(self, table: str, name: str) -> int:
        """The rows of a relation (of a temporary table: counted once, they do not change)."""
        if table in self.temp_counts:
            return self.temp_counts[table]
        rows = self.run(f"select count(*) from {table}", name)
        counted = int(rows[0][0]) if rows else 0
        if table.startswith(_TEMP_PREFIX):
            self.temp_counts[table] = counted
        return counted

    def drop_temporary(self) -> None:
        """Drop the temporary tables of the build (they would outlive it in a kept connection)."""
        tables = list(dict.fromkeys(reversed(self.temporary)))
        if self.dialect == SOURCE_DIALECT and tables:  # one round trip for them all
            self.execute(" ".join(f"drop table if exists {t};" for t in tables), "cleanup")
        else:
            for table in tables:
                self.run(f"drop table if exists {table}", "cleanup")
        self.temporary.clear()
        self.temp_counts.clear()

    # -- the build -------------------------------------------------------------------------

    def load_state(self, execute: Execute) -> None:
        """Read what the last build left."""
        self.state = read_state(execute, self.dataset, self.columns)
        self.read_hashes = dict(self.state.hashes)
        self.read_watermarks = dict(self.state.watermarks)

    def refresh_columns(self, name: str) -> None:
        """Read again the columns of a relation the build (re)created."""
        rows = self.run(
            "select column_name from information_schema.columns "
            f"where lower(table_schema) = {literal(self.dataset.lower())} "
            f"and lower(table_name) = {literal(name)} order by ordinal_position",
            name,
        )
        self.columns[name] = [str(column).lower() for (column,) in rows]
