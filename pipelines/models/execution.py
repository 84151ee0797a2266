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
from sqlglot import exp

from pipelines.models.declarations import SOURCE_DIALECT
from pipelines.models.rules import literal
from pipelines.models.runner import Project, to_sql
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
    ) -> None:
        self.client = client
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

    def query(self, text: str) -> exp.Query:
        """A SELECT written in DuckDB's SQL, parsed."""
        parsed = sqlglot.parse_one(text, read=SOURCE_DIALECT)
        if not isinstance(parsed, exp.Query):  # pragma: no cover - the builder writes SELECTs
            raise TypeError(f"not a query: {text[:80]}")
        return parsed

    def table(self, name: str) -> str:
        """A relation of the dataset, qualified."""
        return f"{self.dataset}.{name}"

    def temp(self, what: str, model: str, name: str, select: str) -> str:
        """Create a temporary table holding ``select``; returns its name."""
        table = f"{_TEMP_PREFIX}_{what}_{model}"
        self.run(f"drop table if exists {table}", name)
        self.run(f"create temporary table {table} as {select}", name)
        self.temporary.append(table)
        return table

    def count(self, table: str, name: str) -> int:
        rows = self.run(f"select count(*) from {table}", name)
        return int(rows[0][0]) if rows else 0

    def drop_temporary(self) -> None:
        """Drop the temporary tables of the build (they would outlive it in a kept connection)."""
        for table in reversed(self.temporary):
            self.run(f"drop table if exists {table}", "cleanup")
        self.temporary.clear()

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
