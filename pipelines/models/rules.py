"""The SQL that finds the partitions a change reaches and the input rows they are computed from.

Everything here is written in DuckDB's dialect and transpiled by the builder, like the models.
Days are days of the reporting time zone: a date ``d`` is the interval of Unix seconds from
its local midnight to the next one (23 or 25 hours on DST changeover days); a month is the
interval from the local midnight of its first day to the next month's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp

from pipelines.models.declarations import SOURCE_DIALECT, Rule, Unit

DAY_START = "__day_start"
DAY_END = "__day_end"
VERSION = "_version"

# 0 .. 9999: days a single change can reach (27 years).
_DIGITS = "(values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9))"
NUMBERS = (
    "(select d1.d + 10 * d2.d + 100 * d3.d + 1000 * d4.d as n "
    f"from {_DIGITS} as d1 (d) cross join {_DIGITS} as d2 (d) "
    f"cross join {_DIGITS} as d3 (d) cross join {_DIGITS} as d4 (d))"
)


def sql(expression: exp.Expr) -> str:
    """DuckDB SQL of an expression, in parentheses."""
    return f"({expression.sql(dialect=SOURCE_DIALECT)})"


def qualified(expression: exp.Expr, alias: str) -> exp.Expr:
    """A copy whose unqualified columns are qualified by ``alias``."""
    copy = expression.copy()
    for column in copy.find_all(exp.Column):
        if not column.table:
            column.set("table", exp.to_identifier(alias))
    return copy


def column_offset(expression: exp.Expr) -> tuple[str, int] | None:
    """``(column, c)`` when the expression is ``column`` or ``column +/- c`` (an integer): a
    bound on it is then a bound on the column, which the database can check against the
    minimum and maximum it keeps per storage block."""
    while isinstance(expression, exp.Paren):
        expression = expression.this
    if isinstance(expression, exp.Column) and not expression.table:
        return expression.name, 0
    if isinstance(expression, (exp.Add, exp.Sub)):
        left, right = expression.this, expression.expression
        if (
            isinstance(left, exp.Column)
            and not left.table
            and isinstance(right, exp.Literal)
            and not right.is_string
            and right.this.lstrip("-").isdigit()
        ):
            sign = 1 if isinstance(expression, exp.Add) else -1
            return left.name, sign * int(right.this)
    return None


def literal(value: Any) -> str:
    """A Python value as a DuckDB literal (dates and timestamps cast to their type)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, datetime):
        return f"cast('{value.isoformat(sep=' ')}' as timestamp)"
    if isinstance(value, date):
        return f"cast('{value.isoformat()}' as date)"
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class Partitioning:
    """One partitioned model's partition columns and how its inputs map to them.

    Attributes:
        model: the model's name.
        columns: its partition columns (``account`` first).
        timezone: the reporting time zone as a SQL literal.
    """

    model: str
    columns: tuple[str, ...]
    timezone: str
    unit: Unit = "day"

    def day_of(self, epoch: str) -> str:
        """The local date of a Unix-seconds expression."""
        return f"cast(to_timestamp({epoch}) at time zone {self.timezone} as date)"

    def midnight(self, day: str) -> str:
        """The Unix seconds of a date expression's local midnight."""
        return f"cast(epoch(cast({day} as timestamp) at time zone {self.timezone}) as bigint)"

    def period(self, day: str) -> str:
        """The partition value of a day: the day, or its month's first day."""
        if self.unit == "month":
            return f"cast(date_trunc('month', {day}) as date)"
        return day

    def next_period(self, period: str) -> str:
        """The first day of the period after ``period``."""
        if self.unit == "month":
            return f"cast(date_trunc('month', {period} + 32) as date)"
        return f"{period} + 1"

    def covered(self, rules: Sequence[Rule]) -> str | None:
        """The date column the rules cover days of, if any."""
        for rule in rules:
            if rule.kind in ("covers", "between"):
                return rule.column
        return None

    def value_map(self, rules: Sequence[Rule], skip: str | None = None) -> dict[str, exp.Expr]:
        """The expression of each partition column (but ``skip``) over an input's row: the
        ``value`` rules', else the column of the same name."""
        declared = {r.column: r.expressions[0] for r in rules if r.kind == "value" and r.column}
        return {
            column: declared.get(column, exp.column(column))
            for column in self.columns[1:]
            if column != skip
        }

    # -- the partitions a change reaches ----------------------------------------------------

    def parts(
        self,
        input_name: str,
        rules: Sequence[Rule],
        change_table: str,
        input_key: Sequence[str],
        target: str,
    ) -> list[str]:
        """SELECTs of the partitions (the partition columns) that the changed rows of one input
        (``change_table``: old and new versions, told apart by ``_version``) reach.

        Args:
            input_name: the input, the name its rows go by in ``rows where`` conditions.
            rules: the input's rules.
            change_table: the temporary table of its changed rows.
            input_key: the input's key, which pairs a row's old and new versions.
            target: the model's stored table (``rows where`` looks at its rows).
        """
        selects: list[str] = []
        restrictive = [r for r in rules if r.kind in ("value", "covers")]
        covers = [r for r in rules if r.kind == "covers"]
        if restrictive:
            covered = covers[0].column if covers else None
            others = self.value_map(rules, skip=covered)
            if not covers:
                columns = ", ".join(f"{sql(qualified(e, 'c'))} as {c}" for c, e in others.items())
                selects.append(f"select c.account, {columns} from {change_table} as c")
            for rule in covers:
                start, end = (sql(qualified(e, "c")) for e in rule.expressions)
                carried = "".join(f", {sql(qualified(e, 'c'))} as {c}" for c, e in others.items())
                selects.append(
                    self._days(
                        f"select c.account{carried}, {self.day_of(start)} as __first, "
                        f"{self.day_of(f'greatest({end} - 1, {start})')} as __last "
                        f"from {change_table} as c",
                        rule.column or "",
                        list(others),
                    )
                )
        for rule in (r for r in rules if r.kind == "between"):
            key = list(input_key) or ["account"]
            on = " and ".join(f"o.{k} = n.{k}" for k in key)
            others = self.value_map([], skip=rule.column)
            carried = "".join(f", coalesce(n.{c}, o.{c}) as {c}" for c in others)
            for expression in rule.expressions:
                old, new = sql(qualified(expression, "o")), sql(qualified(expression, "n"))
                selects.append(
                    self._days(
                        f"select coalesce(n.account, o.account) as account{carried}, "
                        f"{self.day_of(f'least({old}, {new})')} as __first, "
                        f"{self.day_of(f'greatest({old}, {new})')} as __last "
                        f"from (select * from {change_table} where {VERSION} = 'old') as o "
                        f"full join (select * from {change_table} where {VERSION} = 'new') as n "
                        f"on {on} where {old} is distinct from {new}",
                        rule.column or "",
                        list(others),
                    )
                )
        for rule in (r for r in rules if r.kind == "rows"):
            columns = ", ".join(f"this.{c}" for c in self.columns)
            selects.append(
                f"select distinct {columns} from {target} as this "
                f"inner join {change_table} as {input_name} on {input_name}.account = this.account "
                f"where {sql(rule.expressions[0])}"
            )
        return selects

    def _days(self, ranges: str, column: str, others: list[str]) -> str:
        """Every period (day, or month) from ``__first`` to ``__last`` of each row of
        ``ranges``."""
        carried = "".join(f", r.{c}" for c in others)
        day = "cast(r.__first + numbers.n as date)"
        return (
            f"select distinct r.account{carried}, {self.period(day)} as {column} "
            f"from ({ranges}) as r inner join {NUMBERS} as numbers "
            "on numbers.n <= r.__last - r.__first"
        )

    def parts_table(self, selects: list[str]) -> str:
        """The distinct partitions of all the SELECTs (none with a null column)."""
        columns = ", ".join(self.columns)
        not_null = " and ".join(f"{c} is not null" for c in self.columns)
        union = " union all ".join(f"select {columns} from ({s}) as s" for s in selects)
        return f"select distinct {columns} from ({union}) as parts where {not_null}"

    def days_table(self, parts_table: str, column: str) -> str:
        """The partitions with the Unix seconds their period (day or month) starts and ends
        at."""
        return (
            f"select p.*, {self.midnight(f'p.{column}')} as {DAY_START}, "
            f"{self.midnight(self.next_period(f'p.{column}'))} as {DAY_END} "
            f"from {parts_table} as p"
        )

    def matches(self, parts_table: str, alias: str) -> str:
        """A condition: the row ``alias`` (of the model) is in one of the partitions."""
        on = " and ".join(f"p.{c} = {alias}.{c}" for c in self.columns)
        return f"exists (select 1 from {parts_table} as p where {on})"

    # -- the input rows a partition is computed from ----------------------------------------

    def restriction(
        self,
        rules: Sequence[Rule],
        parts_table: str,
        days_table: str | None,
        bounds: dict[str, tuple[Any, Any]],
        restricted: dict[str, str],
        spans: dict[Rule, int | None],
    ) -> str | None:
        """A condition on an input's rows (alias ``i``): the rows the rebuilt partitions are
        computed from; None when the input is read in full.

        Args:
            rules: the input's rules.
            parts_table: the partitions being rebuilt.
            days_table: the same with their periods' bounds (for ``covers`` rules).
            bounds: the smallest and largest value of each partition column, and of the
                periods' bounds, among the partitions: written as constants into the condition
                so that the database can skip the storage blocks outside them.
            restricted: the other inputs already restricted, as SELECTs (``through`` reads
                them).
            spans: for each ``covers`` rule, the longest interval among the input's rows (so
                that a row overlapping the periods must start after the first one's start
                minus that).
        """
        if any(not rule.restricts for rule in rules):
            return None
        conditions: list[str] = []
        if any(rule.kind == "value" for rule in rules) or not rules:
            mapping = self.value_map(rules)
            on = " and ".join(
                [
                    "q.account = i.account",
                    *(f"q.{c} = {sql(qualified(e, 'i'))}" for c, e in mapping.items()),
                ]
            )
            ranges = [
                f"{sql(qualified(e, 'i'))} between {literal(bounds[c][0])} and "
                f"{literal(bounds[c][1])}"
                for c, e in mapping.items()
                if isinstance(e, exp.Column) and c in bounds and None not in bounds[c]
            ]
            conditions.append(
                " and ".join([*ranges, f"exists (select 1 from {parts_table} as q where {on})"])
            )
        for rule in (r for r in rules if r.kind == "covers"):
            if days_table is None:  # pragma: no cover - the builder makes it for covers rules
                raise ValueError("covers rules need the periods table")
            start = sql(qualified(rule.expressions[0], "i"))
            end = f"greatest({sql(qualified(rule.expressions[1], 'i'))}, {start} + 1)"
            others = self.value_map(rules, skip=rule.column)
            on = " and ".join(
                [
                    "d.account = i.account",
                    f"d.{DAY_START} < {end}",
                    f"d.{DAY_END} > {start}",
                    *(f"d.{c} = {sql(qualified(e, 'i'))}" for c, e in others.items()),
                ]
            )
            conditions.append(
                " and ".join(
                    [
                        *self._covers_ranges(rule, bounds, spans.get(rule)),
                        f"exists (select 1 from {days_table} as d where {on})",
                    ]
                )
            )
        for rule in (r for r in rules if r.kind == "through"):
            other = restricted.get(rule.through or "")
            if other is None:
                return None  # the other input is read in full: so is this one
            on = " and ".join(f"x.{c} = i.{c}" for c in rule.columns)
            conditions.append(f"exists (select 1 from ({other}) as x where {on})")
        return " or ".join(f"({c})" for c in conditions)

    def _covers_ranges(
        self, rule: Rule, bounds: dict[str, tuple[Any, Any]], span: int | None
    ) -> list[str]:
        """Constant bounds on a ``covers`` rule's start: it is before the last period's end,
        and (intervals being at most ``span`` long) after the first period's start minus
        ``span``; on the column itself when the start is a column plus a constant."""
        low, high = bounds.get(DAY_START, (None, None))[0], bounds.get(DAY_END, (None, None))[1]
        if low is None or high is None:
            return []
        first = None if span is None else int(low) - int(span) - 1
        plain = column_offset(rule.expressions[0])
        if plain is not None:
            column, offset = plain
            ranges = [f"i.{column} < {int(high) - offset}"]
            if first is not None:
                ranges.append(f"i.{column} > {first - offset}")
            return ranges
        start = sql(qualified(rule.expressions[0], "i"))
        ranges = [f"{start} < {literal(high)}"]
        if first is not None:
            ranges.append(f"{start} > {first}")
        return ranges

    # -- the input rows of a range of partitions (full builds in chunks) ---------------------

    def range_restriction(
        self,
        rules: Sequence[Rule],
        column: str,
        bounds: tuple[str | None, str | None],
        epochs: tuple[int | None, int | None],
        restricted: dict[str, str],
        spans: dict[Rule, int | None],
    ) -> str | None:
        """A condition on an input's rows (alias ``i``): the rows the partitions whose
        ``column`` is in a range are computed from; None when the input is read in full.

        Args:
            rules: the input's rules.
            column: the partition column the range is of.
            bounds: the range (low, exclusive; high, inclusive) as SQL literals; None: open.
            epochs: the Unix seconds the range's periods start and end at (for ``covers``).
            restricted: the other inputs already restricted, as SELECTs.
            spans: for each ``covers`` rule, the longest interval among the input's rows.
        """
        if any(not rule.restricts for rule in rules):
            return None
        conditions: list[str] = []
        mapping = self.value_map(rules)
        if (any(rule.kind == "value" for rule in rules) or not rules) and column in mapping:
            value = sql(qualified(mapping[column], "i"))
            conditions.append(self.in_range(value, bounds))
        for rule in (r for r in rules if r.kind == "covers"):
            start = sql(qualified(rule.expressions[0], "i"))
            end = f"greatest({sql(qualified(rule.expressions[1], 'i'))}, {start} + 1)"
            low, high = epochs
            parts = [] if high is None else [f"{start} < {high}"]
            if low is not None:
                parts.append(f"{end} > {low}")
            # The same bounds on the column itself, for the database's per-block minimums and
            # maximums: it starts before the range ends, and after its start minus the span.
            plain = column_offset(rule.expressions[0])
            if plain is not None:
                name, offset = plain
                if high is not None:
                    parts.append(f"i.{name} < {high - offset}")
                span = spans.get(rule)
                if low is not None and span is not None:
                    parts.append(f"i.{name} > {low - span - 1 - offset}")
            conditions.append(" and ".join(parts) or "true")
        for rule in (r for r in rules if r.kind == "through"):
            other = restricted.get(rule.through or "")
            if other is None:
                return None
            on = " and ".join(f"x.{c} = i.{c}" for c in rule.columns)
            conditions.append(f"exists (select 1 from ({other}) as x where {on})")
        if not conditions:
            return None
        return " or ".join(f"({c})" for c in conditions)

    @staticmethod
    def in_range(value: str, bounds: tuple[str | None, str | None]) -> str:
        """A condition: ``value`` is in (low, high]."""
        low, high = bounds
        parts = [f"{value} is not null"]
        if low is not None:
            parts.append(f"{value} > {low}")
        if high is not None:
            parts.append(f"{value} <= {high}")
        return " and ".join(parts)
