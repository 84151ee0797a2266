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

import logging
import time
from pathlib import Path
from typing import Any

import dlt
import sqlglot

from pipelines.models.changes import KeyModels
from pipelines.models.declarations import SOURCE_DIALECT
from pipelines.models.execution import ALL, Outcome
from pipelines.models.partitioned import PartitionedModels
from pipelines.models.rules import VERSION, literal
from pipelines.models.runner import (
    BuildResult,
    BuiltModel,
    ModelError,
    ParseCache,
    Project,
    SqlFile,
    build_statements,
    compiled_template,
    database_message,
    existing_kinds,
    load_project,
    relation_exists,
    skipped_models,
    without_inputs,
)
from pipelines.models.settings import ModelSettings, load_settings
from pipelines.models.state import definition_hash, write_state
from pipelines.voipstudio.accounts import unconfigured_tables

log = logging.getLogger("voipstudio.models")

# Destinations whose incremental builds are tested (the others are rebuilt in full).
INCREMENTAL_DIALECTS = frozenset({"duckdb", "postgres"})
# The parsed models, kept in the pipeline's working folder between builds.
PARSE_CACHE = "models_parsed.pickle"


class Builder(KeyModels, PartitionedModels):
    """One build of the project's models into one dataset, on one open ``sql_client``
    (arguments: see :class:`pipelines.models.execution.BuilderBase`)."""

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
        self.prepare_templates(models)
        self.drop_temporary()
        log.debug(
            "models: %.2fs of SQL in %.2fs", self.sql_seconds, time.perf_counter() - build_started
        )

    def prepare_templates(self, models: list[SqlFile]) -> None:
        """Compile the templates the next incremental build will use, where the cache lacks
        them (after a full build, or a new definition): that build, the first sync after it,
        then parses and compiles nothing either. A lookup each when they are there."""
        if self.cache is None or self.dialect not in INCREMENTAL_DIALECTS:
            return
        for model in models:
            spec = model.header.incremental
            if spec is not None:
                columns = self.columns if spec.mode == "key" else None
                compiled_template(model, columns, self.cache)

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

    def build_model(self, model: SqlFile) -> Outcome:
        reason = self.full_reason(model)
        inputs = {name: self.changes.get(name) for name in sorted(model.models)}
        spec = model.header.incremental
        if model.kind == "view":
            if reason:
                self.full_build(model)
            changed = reason is not None or any(c is not None for c in inputs.values())
            return Outcome(
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
                    and self.count(str(change), model.name) > self.large_change_rows
                ]
                if large:
                    reason = f"more than {self.large_change_rows:,} rows of {large[0]} changed"
        if reason is not None:
            self.full_build(model)
            if spec is not None and spec.mode == "key":
                self.full_watermarks(model)
            return Outcome("full", ALL, reason=reason)
        if spec is not None and spec.mode == "key":
            return self.update_by_key(model)
        if not model.sources and all(change is None for change in inputs.values()):
            return Outcome("unchanged", None)
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

    # -- other tables ----------------------------------------------------------------------

    def rebuild_and_compare(self, model: SqlFile) -> Outcome:
        """Rebuild a table in full and hand its changed rows on (keep such tables small)."""
        name = model.name
        old_table = self.temp("old", name, name, f"select * from {self.table(name)}")
        self.full_build(model)
        if not self.consumers.get(name):
            return Outcome("full", ALL, reason="an input changed")
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
        return Outcome(
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
    cache = ParseCache(Path(pipeline.working_dir) / PARSE_CACHE)
    project = load_project(sql_dir, settings, tests=False, cache=cache)
    with pipeline.sql_client() as client:
        dialect = str(client.capabilities.sqlglot_dialect or SOURCE_DIALECT)
        dataset = str(client.dataset_name)
        result = BuildResult(dataset=dataset, dialect=dialect)
        if dialect == "duckdb":
            rows = client.execute_sql("select current_setting('memory_limit')")
            result.memory_limit = str(rows[0][0]) if rows else None
        sources = sorted({s for model in project.models for s in model.sources})
        kinds = existing_kinds(client, dialect, dataset)
        # The information schema names every relation; a probe each where it is not readable.
        missing = {
            s
            for s in sources
            if s not in kinds and (kinds or not relation_exists(client, dialect, dataset, s))
        }
        skipped = skipped_models(project, missing)
        # The raw tables of collections the configuration does not load (opt-in ones, e.g.
        # voicemessages): their models are not built, and not reported as skipped.
        result.not_loaded = skipped_models(project, missing & unconfigured_tables())
        result.skipped = {n: why for n, why in skipped.items() if n not in result.not_loaded}
        # A model reading an optional input that is not built reads it as "not loaded".
        project = Project([without_inputs(m, set(skipped)) for m in project.models], project.tests)
        to_build = [m for m in project.models if m.name not in skipped]
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
            cache=cache,
        )
        builder.load_state(lambda text: builder.run(text, "state"))
        if to_build and client.capabilities.supports_ddl_transactions:
            with client.begin_transaction():
                builder.build(to_build, result)
        else:
            builder.build(to_build, result)
    cache.save()  # after the build: it compiled the templates the cache lacked
    result.seconds = time.perf_counter() - started
    return result
