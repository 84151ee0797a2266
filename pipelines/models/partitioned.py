"""Partitioned models (``-- incremental: partition``, the marts): rebuilding the partitions the
inputs' changes reach, and full builds in pieces of partitions."""

from __future__ import annotations

import itertools
from typing import Any

from sqlglot import exp

from pipelines.models.declarations import Rule
from pipelines.models.execution import ALL, BuilderBase, Change, Outcome
from pipelines.models.rules import DAY_END, DAY_START, VERSION, Partitioning, literal
from pipelines.models.rules import sql as rule_sql
from pipelines.models.runner import ModelError, SqlFile


class PartitionedModels(BuilderBase):
    """The builder's steps for partitioned models."""

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
        the full build of a partitioned model into pieces of about ``self.chunk_rows`` input rows,
        so that its memory does not grow with the history."""
        found = self.range_column(model)
        if found is None:
            return [(None, None)]
        _, input_name, rule = found
        largest = max(self.rows_of(name, model.name) for name in model.models)
        pieces = -(-largest // self.chunk_rows)
        if pieces <= 1:
            return [(None, None)]
        partitioning = self.partitioning_of(model)
        if rule.kind == "covers":
            start = rule_sql(rule.expressions[0])
            value = partitioning.period(partitioning.day_of(start))
        else:
            value = rule_sql(rule.expressions[0])
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
        query = self.compiled(model, source_columns=True)
        self.run(
            f"create or replace table {self.table(name)} as select * from ({query}) as q "
            "where false",
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
            piece = self.compiled(model, models=restricted)
            self.run(
                f"insert into {self.table(name)} select q.* from ({piece}) as q "
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

    def update_partitions(self, model: SqlFile, inputs: dict[str, Change]) -> Outcome:
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
            return Outcome("unchanged", None)
        parts = self.temp("parts", name, name, partitioning.parts_table(selects))
        found = self.count(parts, name)
        if not found:
            return Outcome("unchanged", None, changed_rows=0, partitions=0)
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
        query = self.compiled(model, models=restricted)
        new_table = self.temp(
            "new",
            name,
            name,
            f"select q.* from ({query}) as q where {partitioning.matches(parts, 'q')}",
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
        return Outcome("incremental", change, changed_rows=changed, partitions=found)

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
        start, end = (rule_sql(e) for e in rule.expressions)
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
