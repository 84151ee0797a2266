"""Building the models: in full, or incrementally, rebuilding only what changed since the last
build (README, "Reporting models"; docs/models.md, "Incremental builds").

Changes flow down the models in build order, each model handing the next ones its *changed
rows* (old and new versions, in a temporary table) or "everything":

1. **Key models** (staging, ``-- incremental: key``) find the rows of their raw tables that
   were loaded or merged since the last build (``_dlt_load_id`` newer than the watermark the
   last build kept for the account), compute their rows again and compare them with the stored
   ones. Only rows that differ are changes: a sync that re-read its lag window and found
   nothing new changes nothing. Rows that disappeared from a raw table (a full refresh, an
   account deleted by hand) are found by counting, and then the whole table is compared.
2. **Partitioned models** (marts, ``-- incremental: partition``) map their inputs' changed rows
   to the partitions they reach (rules in the header), delete those partitions and insert them
   again, computed from the input rows that belong to them. Their changed rows are every old
   and new row of the partitions rebuilt.
3. **Other tables** are rebuilt in full when an input changed, and compared with their previous
   contents (keep them small); **views** are replaced when their definition changed.

A model is rebuilt in full (and everything downstream of it) on ``--full``, when it does not
exist, when its definition (SQL, header, settings) changed since it was built, and on
destinations where incremental builds are not supported.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dlt
import sqlglot
from sqlglot import exp

from pipelines.models.declarations import SOURCE_DIALECT, Rule
from pipelines.models.partitions import DAY_END, DAY_START, VERSION, Partitioning, literal
from pipelines.models.partitions import sql as partition_sql
from pipelines.models.runner import (
    BuildResult,
    BuiltModel,
    ModelError,
    Project,
    SqlFile,
    build_statements,
    compile_query,
    database_message,
    existing_kinds,
    load_project,
    relation_exists,
    skipped_models,
    to_sql,
)
from pipelines.models.settings import ModelSettings, load_settings
from pipelines.models.state import State, definition_hash, read_state, write_state

log = logging.getLogger("voipstudio.models")

LOAD_ID = "_dlt_load_id"
# Destinations whose incremental builds are tested (the others are rebuilt in full).
INCREMENTAL_DIALECTS = frozenset({"duckdb", "postgres"})
# A full build of a partitioned model on DuckDB is cut into pieces of about this many rows of
# its largest input: its memory then stays within DuckDB's limit whatever the history.
CHUNK_ROWS = 1_000_000
# The parsed models, kept in the pipeline's working folder between builds.
PARSE_CACHE = "models_parsed.pickle"
_TEMP_PREFIX = "__vsm"

ALL: Literal["all"] = "all"
Change = str | Literal["all"] | None  # a temporary table of changed rows, everything, nothing
Execute = Callable[[str], list[tuple[Any, ...]]]


@dataclass
class _Outcome:
    mode: Literal["full", "incremental", "unchanged"]
    change: Change
    changed_rows: int | None = None
    partitions: int | None = None
    reason: str = ""


class Builder:
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

    def build(self, models: list[SqlFile], result: BuildResult) -> None:
        """Build ``models`` (in build order) and remember what was built."""
        build_started = time.perf_counter()
        for model in models:
            started = time.perf_counter()
            try:
                outcome = self.build_model(model)
            except ModelError:
                raise
            except Exception as exc:
                raise ModelError(model.name, database_message(exc)) from exc
            self.changes[model.name] = outcome.change
            self.state.hashes[model.name] = definition_hash(model.text)
            rows = None
            if outcome.mode == "full" and model.kind == "table":
                rows = self.count(self.table(model.name), model.name)
            seconds = time.perf_counter() - started
            result.built.append(
                BuiltModel(
                    model.name,
                    model.kind,
                    seconds,
                    rows,
                    mode=outcome.mode,
                    changed_rows=outcome.changed_rows,
                    partitions=outcome.partitions,
                )
            )
            log.debug(
                "model %s: %s in %.2fs%s",
                model.name,
                outcome.mode,
                seconds,
                f" ({outcome.reason})" if outcome.reason else "",
            )
        if self.state.hashes != self.read_hashes or self.state.watermarks != self.read_watermarks:
            write_state(lambda text: self.run(text, "state"), self.dataset, self.state)
        self.drop_temporary()
        log.debug(
            "models: %.2fs of SQL in %.2fs", self.sql_seconds, time.perf_counter() - build_started
        )

    def full_reason(self, model: SqlFile) -> str | None:
        """Why ``model`` must be rebuilt in full, or None."""
        if self.full:
            return "--full"
        if self.dialect not in INCREMENTAL_DIALECTS:
            return f"incremental builds are not supported on {self.dialect}"
        if model.name not in self.kinds:
            return "not built yet"
        if self.kinds[model.name] != model.kind:
            return f"was a {self.kinds[model.name]}"
        if self.read_hashes.get(model.name) != definition_hash(model.text):
            return "its definition changed"
        return None

    def build_model(self, model: SqlFile) -> _Outcome:
        reason = self.full_reason(model)
        inputs = {name: self.changes.get(name) for name in sorted(model.models)}
        spec = model.header.incremental
        if model.kind == "view":
            if reason:
                self.full_build(model)
            changed = reason is not None or any(c is not None for c in inputs.values())
            return _Outcome(
                "full" if reason else "unchanged", ALL if changed else None, reason=reason or ""
            )
        if reason is None and spec is not None and spec.mode == "partition":
            everything = [name for name, change in inputs.items() if change == ALL]
            if everything:
                reason = f"{everything[0]} was rebuilt in full"
            else:
                # So many changes (a backfill that corrected a year) that rebuilding them in
                # one statement would outgrow the memory limit: a full build, in pieces.
                large = [
                    name
                    for name, change in inputs.items()
                    if change not in (None, ALL)
                    and self.count(str(change), model.name) > CHUNK_ROWS
                ]
                if large:
                    reason = f"more than {CHUNK_ROWS:,} rows of {large[0]} changed"
        if reason is not None:
            self.full_build(model)
            if spec is not None and spec.mode == "key":
                self.full_watermarks(model)
            return _Outcome("full", ALL, reason=reason)
        if spec is not None and spec.mode == "key":
            return self.update_by_key(model)
        if not model.sources and all(change is None for change in inputs.values()):
            return _Outcome("unchanged", None)
        if spec is not None:
            return self.update_partitions(model, inputs)
        return self.rebuild_and_compare(model)

    def full_build(self, model: SqlFile) -> None:
        spec = model.header.incremental
        ranges = (
            self.chunks(model)
            if self.dialect == SOURCE_DIALECT and spec is not None and spec.mode == "partition"
            else []
        )
        if len(ranges) > 1:
            self.build_in_chunks(model, ranges)
        else:
            for statement in build_statements(
                model, self.dialect, self.dataset, self.kinds.get(model.name), self.columns
            ):
                self.execute(statement, model.name)
        self.refresh_columns(model.name)
        self.row_counts.pop(model.name, None)

    def refresh_columns(self, name: str) -> None:
        """Read again the columns of a relation the build (re)created."""
        rows = self.run(
            "select column_name from information_schema.columns "
            f"where lower(table_schema) = {literal(self.dataset.lower())} "
            f"and lower(table_name) = {literal(name)} order by ordinal_position",
            name,
        )
        self.columns[name] = [str(column).lower() for (column,) in rows]

    def partitioning_of(self, model: SqlFile) -> Partitioning:
        """A partitioned model's partition columns, time zone and period (days or months)."""
        spec = model.header.incremental
        assert spec is not None
        units = {
            r.unit for rs in spec.rules.values() for r in rs if r.kind in ("covers", "between")
        }
        return Partitioning(model.name, spec.columns, self.timezone, min(units, default="day"))

    # -- full builds in chunks -------------------------------------------------------------

    def range_column(self, model: SqlFile) -> tuple[str, str, Rule] | None:
        """The partition column a full build is cut along, with the input whose rows set the
        cuts and the rule mapping them: a ``covers`` rule's column, else a partition column
        some input has as a plain column (the input with the most rows wins)."""
        spec = model.header.incremental
        assert spec is not None
        partitioning = Partitioning(model.name, spec.columns, self.timezone)
        candidates: list[tuple[str, str, Rule]] = []
        for input_name in sorted(model.models):
            for rule in self.rules_of(model, input_name, partitioning):
                if (rule.kind == "covers" and rule.column) or (
                    rule.kind == "value"
                    and rule.column
                    and isinstance(rule.expressions[0], exp.Column)
                ):
                    candidates.append((rule.column, input_name, rule))
        covering = [c for c in candidates if c[2].kind == "covers"]
        candidates = covering or candidates
        if not candidates:
            return None
        column = candidates[0][0]
        best = [c for c in candidates if c[0] == column]
        return max(best, key=lambda c: self.rows_of(c[1], model.name))

    def rows_of(self, name: str, model: str) -> int:
        if name not in self.row_counts:
            self.row_counts[name] = self.count(self.table(name), model)
        return self.row_counts[name]

    def chunks(self, model: SqlFile) -> list[tuple[Any, Any]]:
        """Ranges (low exclusive, high inclusive; None: open) of the partition column that cut
        the full build of a partitioned model into pieces of about ``CHUNK_ROWS`` input rows,
        so that its memory does not grow with the history."""
        found = self.range_column(model)
        if found is None:
            return [(None, None)]
        _, input_name, rule = found
        largest = max(self.rows_of(name, model.name) for name in model.models)
        pieces = -(-largest // CHUNK_ROWS)
        if pieces <= 1:
            return [(None, None)]
        partitioning = self.partitioning_of(model)
        if rule.kind == "covers":
            start = partition_sql(rule.expressions[0])
            value = partitioning.period(partitioning.day_of(start))
        else:
            value = partition_sql(rule.expressions[0])
        fractions = ", ".join(str(round(i / pieces, 6)) for i in range(1, pieces))
        rows = self.run(
            f"select quantile_disc({value}, [{fractions}]) from {self.table(input_name)} "
            f"where {value} is not null",
            model.name,
        )
        cuts = sorted({v for v in (rows[0][0] or []) if v is not None}) if rows else []
        edges: list[Any] = [None, *cuts, None]
        return list(itertools.pairwise(edges))

    def build_in_chunks(self, model: SqlFile, ranges: list[tuple[Any, Any]]) -> None:
        """Create the model's table empty, then insert it range by range of its partitions."""
        spec = model.header.incremental
        assert spec is not None
        name = model.name
        found = self.range_column(model)
        assert found is not None
        column = found[0]
        partitioning = self.partitioning_of(model)
        rules = {i: self.rules_of(model, i, partitioning) for i in sorted(model.models)}
        spans = {
            rule: self.longest(i, rule, name)
            for i in sorted(model.models)
            for rule in rules[i]
            if rule.kind == "covers"
        }
        if self.kinds.get(name) == "view":
            self.run(f"drop view if exists {self.table(name)}", name)
        query = compile_query(model, self.dataset, source_columns=self.columns)
        self.run(
            f"create or replace table {self.table(name)} as select * from "
            f"({query.sql(dialect=SOURCE_DIALECT, comments=False)}) as q where false",
            name,
        )
        for low, high in ranges:
            bounds = (
                None if low is None else literal(low),
                None if high is None else literal(high),
            )
            epochs = self.range_epochs(partitioning, bounds) if spans else (None, None)
            restricted: dict[str, str] = {}
            for input_name in self.restriction_order(rules):
                condition = partitioning.range_restriction(
                    rules[input_name], column, bounds, epochs, restricted, spans
                )
                if condition is not None:
                    restricted[input_name] = (
                        f"select i.* from {self.table(input_name)} as i where {condition}"
                    )
            replacements: dict[str, str | exp.Query] = {
                input_name: self.query(select) for input_name, select in restricted.items()
            }
            piece = compile_query(model, self.dataset, models=replacements)
            self.run(
                f"insert into {self.table(name)} select q.* from "
                f"({piece.sql(dialect=SOURCE_DIALECT, comments=False)}) as q "
                f"where {partitioning.in_range(f'q.{column}', bounds)}",
                name,
            )

    def range_epochs(
        self, partitioning: Partitioning, bounds: tuple[str | None, str | None]
    ) -> tuple[int | None, int | None]:
        """The Unix seconds a range of periods (low exclusive, high inclusive) starts and ends
        at: the start of the period after ``low``, the start of the one after ``high``."""
        low, high = bounds
        if low is None and high is None:
            return None, None
        values = [
            "null" if b is None else partitioning.midnight(partitioning.next_period(b))
            for b in (low, high)
        ]
        rows = self.run(f"select {values[0]}, {values[1]}", partitioning.model)
        first, last = rows[0]
        return (None if first is None else int(first), None if last is None else int(last))

    # -- key models ------------------------------------------------------------------------

    def full_watermarks(self, model: SqlFile) -> None:
        """The watermarks after a full build of a key model: the newest load of each account."""
        for source in sorted(model.sources):
            for key in [k for k in self.state.watermarks if k[0] == source]:
                del self.state.watermarks[key]
            if LOAD_ID not in self.columns.get(source, []):
                continue
            rows = self.run(
                f"select account, max({LOAD_ID}) from {self.table(source)} group by account",
                model.name,
            )
            for account, load_id in rows:
                if load_id is not None:
                    self.state.watermarks[(source, str(account))] = str(load_id)

    def candidates(self, source: str) -> str:
        """A condition on a raw table's rows: loaded or merged since the last build."""
        marks = {a: w for (s, a), w in self.read_watermarks.items() if s == source}
        if not marks:
            return "true"
        lowest = min(marks.values())
        # Below the lowest watermark nothing is new (storage blocks of older loads are skipped);
        # above it, each account from its own.
        per_account = " and ".join(
            f"not (account = {literal(account)} and {LOAD_ID} <= {literal(mark)})"
            for account, mark in sorted(marks.items())
        )
        return f"{LOAD_ID} > {literal(lowest)} and {per_account}"

    def update_by_key(self, model: SqlFile) -> _Outcome:
        spec = model.header.incremental
        assert spec is not None
        name = model.name
        sources = sorted(model.sources)
        compare_all = any(
            LOAD_ID not in self.columns.get(source, []) or source not in spec.sources
            for source in sources
        )
        change = self.compare_by_key(model, compare_all)
        if not compare_all and self.lost_rows(model, change):
            log.warning(
                "model %s: rows of %s disappeared since the last build (a full refresh, or rows "
                "deleted by hand): comparing every row",
                name,
                ", ".join(sources),
            )
            change = self.compare_by_key(model, True)
        if change is None:
            return _Outcome("unchanged", None, changed_rows=0)
        changed = self.count(change, name)
        if not changed:
            return _Outcome("unchanged", None, changed_rows=0)
        key = spec.columns
        on = " and ".join(f"c.{k} = {name}.{k}" for k in key)
        self.run(
            f"delete from {self.table(name)} where exists (select 1 from {change} as c "
            f"where c.{VERSION} = 'old' and {on})",
            name,
        )
        columns = ", ".join(self.columns[name])
        self.run(
            f"insert into {self.table(name)} ({columns}) select {columns} from {change} "
            f"where {VERSION} = 'new'",
            name,
        )
        return _Outcome("incremental", change, changed_rows=changed)

    def compare_by_key(self, model: SqlFile, compare_all: bool) -> str | None:
        """The changed rows of a key model (a temporary table), with the watermarks updated."""
        spec = model.header.incremental
        assert spec is not None
        name = model.name
        key = spec.columns
        restricted: dict[str, exp.Query] = {}
        if compare_all:
            old = f"select * from {self.table(name)}"
            for source in sorted(model.sources):
                self.full_watermarks_of(source)
        else:
            selects = []
            for source in sorted(model.sources):
                mapped = ", ".join(
                    f"{column} as {k}" for column, k in zip(spec.sources[source], key, strict=True)
                )
                candidates = self.temp(
                    "candidates",
                    f"{name}_{source}",
                    name,
                    f"select {mapped}, {LOAD_ID} from {self.table(source)} "
                    f"where {self.candidates(source)}",
                )
                for account, load_id in self.run(
                    f"select account, max({LOAD_ID}) from {candidates} group by account",
                    name,
                ):
                    if load_id is not None:
                        mark = self.state.watermarks.get((source, str(account)))
                        if mark is None or str(load_id) > mark:
                            self.state.watermarks[(source, str(account))] = str(load_id)
                selects.append(f"select {', '.join(key)} from {candidates}")
                restricted[source] = self.query(
                    f"select * from {self.table(source)} where {self.candidates(source)}"
                )
            keys = self.temp(
                "keys",
                name,
                name,
                "select distinct * from (" + " union all ".join(selects) + ") as k",
            )
            if not self.count(keys, name):
                return None
            if len(restricted) > 1:
                # A row of one table can be reached by another's change: read each table for
                # every key changed in any of them.
                for source in sorted(model.sources):
                    on = " and ".join(
                        f"k.{k} = t.{column}"
                        for column, k in zip(spec.sources[source], key, strict=True)
                    )
                    restricted[source] = self.query(
                        f"select t.* from {self.table(source)} as t "
                        f"where exists (select 1 from {keys} as k where {on})"
                    )
            on = " and ".join(f"k.{k} = m.{k}" for k in key)
            old = (
                f"select m.* from {self.table(name)} as m "
                f"where exists (select 1 from {keys} as k where {on})"
            )
        query = compile_query(
            model, self.dataset, source_columns=self.columns, sources=restricted or None
        )
        new_table = self.temp("new", name, name, query.sql(dialect=SOURCE_DIALECT, comments=False))
        old_table = self.temp("old", name, name, old)
        # Rows compared column by column, by key: a row that is back unchanged is no change.
        on = " and ".join(f"n.{k} = o.{k}" for k in key)
        differs = " or ".join(
            [
                f"o.{key[0]} is null",
                f"n.{key[0]} is null",
                *(f"n.{c} is distinct from o.{c}" for c in self.columns[name] if c not in key),
            ]
        )
        keys = ", ".join(f"coalesce(n.{k}, o.{k}) as {k}" for k in key)
        changed = self.temp(
            "changed",
            name,
            name,
            f"select {keys} from {new_table} as n full join {old_table} as o on {on} "
            f"where {differs}",
        )
        match = " and ".join(f"c.{k} = t.{k}" for k in key)
        return self.temp(
            "changes",
            name,
            name,
            f"select 'old' as {VERSION}, t.* from {old_table} as t "
            f"where exists (select 1 from {changed} as c where {match}) union all "
            f"select 'new' as {VERSION}, t.* from {new_table} as t "
            f"where exists (select 1 from {changed} as c where {match})",
        )

    def full_watermarks_of(self, source: str) -> None:
        if LOAD_ID not in self.columns.get(source, []):
            return
        for account, load_id in self.run(
            f"select account, max({LOAD_ID}) from {self.table(source)} group by account",
            source,
        ):
            if load_id is not None:
                self.state.watermarks[(source, str(account))] = str(load_id)

    def lost_rows(self, model: SqlFile, change: str | None) -> bool:
        """Whether the key model would hold rows its raw tables no longer have: per account,
        its rows after the change differ in number from what its query returns."""
        name = model.name
        query = compile_query(model, self.dataset, source_columns=self.columns)
        text = query.sql(dialect=SOURCE_DIALECT, comments=False)
        expected = dict(
            self.run(f"select account, count(*) from ({text}) as q group by account", name)
        )
        stored = dict(
            self.run(f"select account, count(*) from {self.table(name)} group by account", name)
        )
        if change is not None:
            for account, delta in self.run(
                f"select account, sum(case when {VERSION} = 'new' then 1 else -1 end) "
                f"from {change} group by account",
                name,
            ):
                stored[account] = stored.get(account, 0) + int(delta)
        return {a: int(n) for a, n in expected.items() if n} != {
            a: int(n) for a, n in stored.items() if n
        }

    # -- partitioned models ----------------------------------------------------------------

    def rules_of(
        self, model: SqlFile, input_name: str, partitioning: Partitioning
    ) -> tuple[Rule, ...]:
        """An input's rules: the declared ones, else by the partition's own columns."""
        spec = model.header.incremental
        assert spec is not None
        declared = spec.rules.get(input_name)
        if declared:
            return declared
        missing = [c for c in partitioning.columns if c not in self.columns.get(input_name, [])]
        if missing:
            raise ModelError(
                model.name,
                f"is partitioned by ({', '.join(partitioning.columns)}) but its input "
                f"{input_name} has no column {missing[0]}: declare under its '-- incremental:' "
                f"line how {input_name}'s rows map to the partitions "
                f"(e.g. '--   {input_name}: {missing[0]} = <expression>')",
            )
        return tuple(
            Rule("value", column, (exp.column(column),)) for column in partitioning.columns[1:]
        )

    def update_partitions(self, model: SqlFile, inputs: dict[str, Change]) -> _Outcome:
        spec = model.header.incremental
        assert spec is not None
        name = model.name
        partitioning = self.partitioning_of(model)
        rules = {i: self.rules_of(model, i, partitioning) for i in sorted(model.models)}
        selects: list[str] = []
        for input_name, input_change in inputs.items():
            if input_change is None or input_change == ALL:
                continue
            key = self.project.model(input_name).header.key
            selects.extend(
                partitioning.parts(
                    input_name, rules[input_name], input_change, key, self.table(name)
                )
            )
        if not selects:
            return _Outcome("unchanged", None)
        parts = self.temp("parts", name, name, partitioning.parts_table(selects))
        found = self.count(parts, name)
        if not found:
            return _Outcome("unchanged", None, changed_rows=0, partitions=0)
        covered = next(
            (partitioning.covered(r) for r in rules.values() if partitioning.covered(r)), None
        )
        days = (
            self.temp("days", name, name, partitioning.days_table(parts, covered))
            if covered
            else None
        )
        bounds = self.bounds(name, partitioning, parts, days)
        restricted: dict[str, str] = {}
        for input_name in self.restriction_order(rules):
            spans = {
                rule: self.longest(input_name, rule, name)
                for rule in rules[input_name]
                if rule.kind == "covers"
            }
            condition = partitioning.restriction(
                rules[input_name], parts, days, bounds, restricted, spans
            )
            if condition is None:
                continue
            # Read in place (not copied to a table): the model's query then reads only the
            # columns it needs of the rows it needs.
            restricted[input_name] = (
                f"select i.* from {self.table(input_name)} as i where {condition}"
            )
        replacements: dict[str, str | exp.Query] = {
            input_name: self.query(select) for input_name, select in restricted.items()
        }
        query = compile_query(model, self.dataset, models=replacements)
        new_table = self.temp(
            "new",
            name,
            name,
            f"select q.* from ({query.sql(dialect=SOURCE_DIALECT, comments=False)}) as q "
            f"where {partitioning.matches(parts, 'q')}",
        )
        old_table = self.temp(
            "old",
            name,
            name,
            f"select m.* from {self.table(name)} as m where {partitioning.matches(parts, 'm')}",
        )
        self.run(
            f"delete from {self.table(name)} where {partitioning.matches(parts, name)}",
            name,
        )
        self.run(f"insert into {self.table(name)} select * from {new_table}", name)
        changed = self.count(new_table, name) + self.count(old_table, name)
        change: Change = None
        if self.consumers.get(name):
            change = self.temp(
                "changes",
                name,
                name,
                f"select 'old' as {VERSION}, * from {old_table} union all "
                f"select 'new' as {VERSION}, * from {new_table}",
            )
        return _Outcome("incremental", change, changed_rows=changed, partitions=found)

    def restriction_order(self, rules: dict[str, tuple[Rule, ...]]) -> list[str]:
        """The inputs, each after the inputs it is read through."""
        ordered: list[str] = []
        pending = sorted(rules)
        while pending:
            ready = [
                name
                for name in pending
                if all(r.through in ordered for r in rules[name] if r.kind == "through")
            ]
            if not ready:  # through each other: read them in full
                return ordered + pending
            ordered.extend(ready)
            pending = [name for name in pending if name not in ready]
        return ordered

    def longest(self, input_name: str, rule: Rule, name: str) -> int | None:
        """The longest interval a ``covers`` rule finds among an input's rows."""
        start, end = (partition_sql(e) for e in rule.expressions)
        rows = self.run(
            f"select max(greatest({end}, {start} + 1) - {start}) from {self.table(input_name)}",
            name,
        )
        value = rows[0][0] if rows else None
        return None if value is None else int(value)

    def bounds(
        self, name: str, partitioning: Partitioning, parts: str, days: str | None
    ) -> dict[str, tuple[Any, Any]]:
        """The smallest and largest value of each partition column (and the days' bounds)."""
        columns = list(partitioning.columns[1:])
        selects = [f"min({c}), max({c})" for c in columns]
        row = self.run(f"select {', '.join(selects)} from {parts}", name)[0]
        bounds = {c: (row[2 * i], row[2 * i + 1]) for i, c in enumerate(columns)}
        if days is not None:
            low, high = self.run(f"select min({DAY_START}), max({DAY_END}) from {days}", name)[0]
            bounds[DAY_START] = (low, high)
            bounds[DAY_END] = (low, high)
        return bounds

    # -- other tables ----------------------------------------------------------------------

    def rebuild_and_compare(self, model: SqlFile) -> _Outcome:
        """Rebuild a table in full and hand its changed rows on (keep such tables small)."""
        name = model.name
        old_table = self.temp("old", name, name, f"select * from {self.table(name)}")
        self.full_build(model)
        if not self.consumers.get(name):
            return _Outcome("full", ALL, reason="an input changed")
        change = self.temp(
            "changes",
            name,
            name,
            f"select 'old' as {VERSION}, * from (select * from {old_table} except "
            f"select * from {self.table(name)}) as gone union all "
            f"select 'new' as {VERSION}, * from (select * from {self.table(name)} except "
            f"select * from {old_table}) as came",
        )
        changed = self.count(change, name)
        return _Outcome(
            "full", change if changed else None, changed_rows=changed, reason="an input changed"
        )


def _dataset_columns(client: Any, dialect: str, dataset: str) -> dict[str, list[str]]:
    """``{relation: [column, ...]}`` of the dataset, in column order."""
    query = (
        "select table_name, column_name from information_schema.columns "
        f"where lower(table_schema) = {literal(dataset.lower())} "
        "order by table_name, ordinal_position"
    )
    rows = client.execute_sql(sqlglot.transpile(query, read=SOURCE_DIALECT, write=dialect)[0])
    columns: dict[str, list[str]] = {}
    for table, column in rows or []:
        columns.setdefault(str(table).lower(), []).append(str(column).lower())
    return columns


def build_models(
    pipeline: dlt.Pipeline,
    settings: ModelSettings | None = None,
    sql_dir: Path | None = None,
    *,
    full: bool = False,
) -> BuildResult:
    """Build the models into the pipeline's dataset: only what changed since the last build,
    or (``full``) everything from every row.

    A model that needs a raw table that was never loaded (e.g. ``queues__users`` when no queue
    has members) is skipped with everything downstream of it.

    Args:
        pipeline: the dlt pipeline whose destination and dataset hold the raw tables.
        settings: thresholds and time zone; by default read from the configuration.
        sql_dir: the models' folder; by default the project's ``sql/``.
        full: rebuild every model in full (``voipstudio models --full``).

    Returns:
        What was built (in full, incrementally, or found unchanged) and skipped.

    Raises:
        ModelError: a model failed; the message names it and quotes the database. Nothing of
            the failed build is kept where the destination has transactional DDL.
        ConfigError: a setting is invalid.
    """
    started = time.perf_counter()
    settings = settings or load_settings()
    cache = Path(pipeline.working_dir) / PARSE_CACHE
    project = load_project(sql_dir, settings, tests=False, cache=cache)
    with pipeline.sql_client() as client:
        dialect = str(client.capabilities.sqlglot_dialect or SOURCE_DIALECT)
        dataset = str(client.dataset_name)
        result = BuildResult(dataset=dataset, dialect=dialect)
        if dialect == "duckdb":
            rows = client.execute_sql("select current_setting('memory_limit')")
            result.memory_limit = str(rows[0][0]) if rows else None
        sources = sorted({s for model in project.models for s in model.sources})
        missing = {s for s in sources if not relation_exists(client, dialect, dataset, s)}
        result.skipped = skipped_models(project, missing)
        to_build = [m for m in project.models if m.name not in result.skipped]
        kinds = existing_kinds(client, dialect, dataset)
        columns = _dataset_columns(client, dialect, dataset)
        # Compile everything before touching the database: a model that cannot be expressed
        # in the destination's dialect stops the run before anything changed. (The models are
        # written in DuckDB's: there is nothing to check there.)
        if dialect != SOURCE_DIALECT:
            for model in to_build:
                build_statements(model, dialect, dataset, kinds.get(model.name), columns)
        builder = Builder(
            client,
            project,
            settings,
            dialect=dialect,
            dataset=dataset,
            full=full,
            columns=columns,
            kinds=kinds,
        )
        builder.load_state(lambda text: builder.run(text, "state"))
        if to_build and client.capabilities.supports_ddl_transactions:
            with client.begin_transaction():
                builder.build(to_build, result)
        else:
            builder.build(to_build, result)
    result.seconds = time.perf_counter() - started
    return result
