"""What a model's header declares about how it is built incrementally (README, "Reporting
models"; docs/models.md, "Incremental builds").

A model's leading comment block may hold, after its ``-- grain: ...; key: (...)`` line:

``-- incremental: key (account, cdr_id)``
    A staging model, stored as a table and kept up to date row by row: after a sync the runner
    recomputes the rows whose source rows changed, compares them with the stored ones and
    applies the difference. Each source that maps its rows to the key is declared under it::

        --   voipstudio.cdrs: (account, id)

    A source without such a line (or without dlt's ``_dlt_load_id``) is compared in full.

``-- incremental: partition (account, call_date)``
    A mart, stored as a table and rebuilt partition by partition: the partitions the changes
    of its inputs reach are deleted and computed again from the input rows that belong to them.
    How a changed row of each input reaches partitions, and which input rows a partition is
    computed from, is one rule per input (the default: the input has the partition's columns)::

        --   fct_calls: month_start = cast(date_trunc('month', call_date) as date)
        --   fct_calls: call_date covers days of [start_epoch, end_epoch)
        --   fct_calls: month_start covers months of [start_epoch, start_epoch + 1)
        --   dim_accounts: call_date covers days between old and new last_activity_epoch
        --   stg_voipstudio__users: rows where this.user_id = stg_voipstudio__users.user_id
        --   stg_voipstudio__cdrs: through fct_calls (account, call_key)

``-- optional column: voipstudio.cdrs.deleted_at timestamp with time zone``
    A source column the model reads that older datasets may not have: it reads as NULL there.

``-- optional input: stg_voipstudio__monitors (account varchar, start_epoch bigint)``
    A model input of a collection the configuration may not load (its raw table was never
    loaded, so the input is not built): the model is built all the same, reading the input as
    one row of NULLs in the declared columns (a real row always has an ``account``, so
    ``exists (select 1 from input where account is null)`` tells "not loaded" from "loaded,
    nothing in it"). A flag from another collection is then NULL, not false, when that
    collection is not loaded.

``-- materialized: view``
    A mart kept as a view: figures over all history per entity (a caller's calls) computed at
    query time from a table that is kept up to date incrementally, instead of a table that
    every change of the entity would rebuild from all its history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

SOURCE_DIALECT = "duckdb"
# The schema name models use for raw tables.
RAW_SCHEMA = "voipstudio"

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_COLUMNS = re.compile(r"^\(\s*(" + _IDENTIFIER + r"(?:\s*,\s*" + _IDENTIFIER + r")*)\s*\)$")
_KEY = re.compile(r"\bkey:\s*(\([^)]*\))")
_INCREMENTAL = re.compile(r"^--\s*incremental:\s*(key|partition)\s*(\(.*\))\s*$")
_RULE = re.compile(r"^--\s{2,}(\S[^:]*?):\s*(\S.*?)\s*$")
_OPTIONAL = re.compile(
    r"^--\s*optional column:\s*" + RAW_SCHEMA + r"\.(" + _IDENTIFIER + r")\.(" + _IDENTIFIER + r")"
    r"\s+(\S.*?)\s*$"
)
_OPTIONAL_INPUT = re.compile(r"^--\s*optional input:\s*(" + _IDENTIFIER + r")\s*\((.*)\)\s*$")
_TYPED_COLUMN = re.compile(r"^(" + _IDENTIFIER + r")\s+(\S.*?)$")
_MATERIALIZED = re.compile(r"^--\s*materialized:\s*(view|table)\s*$")
_COVERS_OF = re.compile(r"^(" + _IDENTIFIER + r")\s+covers (days|months) of\s*\[(.*)\)$")
_COVERS_BETWEEN = re.compile(
    r"^(" + _IDENTIFIER + r")\s+covers (days|months) between old and new\s+(\S.*)$"
)
_ROWS_WHERE = re.compile(r"^rows where\s+(\S.*)$")
_THROUGH = re.compile(r"^through\s+(" + _IDENTIFIER + r")\s*(\(.*\))$")
_VALUE = re.compile(r"^(" + _IDENTIFIER + r")\s*=\s*(\S.*)$")

RuleKind = Literal["value", "covers", "between", "rows", "through"]
Unit = Literal["day", "month"]


class DeclarationError(ValueError):
    """A header declaration that cannot be read; the message says which line and why."""


@dataclass(frozen=True)
class Rule:
    """How one input's changes reach a partitioned model's partitions.

    Attributes:
        kind: ``value`` (a partition column is an expression of the input's row), ``covers``
            (a date partition column covers the days, or months, of an interval of Unix
            seconds), ``between`` (the days, or months, between a changed row's old and new
            values), ``rows`` (the
            model's stored rows matching a condition), ``through`` (the input is read only
            for the rows of another input: its changes are that input's).
        column: the partition column the rule sets (``value``, ``covers``, ``between``).
        expressions: ``value``: the expression; ``covers``: start and end (exclusive);
            ``between``: the instants compared; ``rows``: the condition.
        through: ``through``: the other input.
        columns: ``through``: the columns the two share.
        unit: ``covers`` and ``between``: whether the partition column holds days or the
            first days of months.
    """

    kind: RuleKind
    column: str | None = None
    expressions: tuple[exp.Expr, ...] = ()
    through: str | None = None
    columns: tuple[str, ...] = ()
    unit: Unit = "day"

    @property
    def restricts(self) -> bool:
        """Whether the input is read only for the partitions rebuilt (otherwise it is read in
        full: a dimension whose every row may matter)."""
        return self.kind in ("value", "covers", "through")


@dataclass(frozen=True)
class Incremental:
    """A model's incremental declaration.

    Attributes:
        mode: ``key`` (a staging table kept by row) or ``partition`` (a mart rebuilt by
            partition).
        columns: the key or partition columns (``account`` first).
        sources: ``key``: the raw tables whose changed rows map to the key, with the columns
            (in key order) that do.
        rules: ``partition``: the rules by input (an input without any rule maps by the
            partition's own columns).
    """

    mode: Literal["key", "partition"]
    columns: tuple[str, ...]
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Header:
    """What a model's leading comment declares.

    Attributes:
        key: the columns of the ``key: (...)`` of the grain line (empty when absent).
        incremental: the ``-- incremental:`` declaration, if any.
        optional: ``{raw table: {column: SQL type}}`` of the optional source columns.
        materialized: ``view`` or ``table`` when declared (``-- materialized:``).
        optional_inputs: ``{model: ((column, SQL type), ...)}`` of the optional model inputs
            (``-- optional input:``).
    """

    key: tuple[str, ...] = ()
    incremental: Incremental | None = None
    optional: dict[str, dict[str, str]] = field(default_factory=dict)
    materialized: Literal["view", "table"] | None = None
    optional_inputs: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


def _columns(text: str, where: str) -> tuple[str, ...]:
    match = _COLUMNS.match(text.strip())
    if not match:
        raise DeclarationError(f"{where}: expected column names in parentheses, got {text!r}")
    return tuple(name.strip().lower() for name in match.group(1).split(","))


def _expressions(text: str, where: str) -> tuple[exp.Expr, ...]:
    """Comma-separated SQL expressions (DuckDB's dialect)."""
    try:
        parsed = sqlglot.parse_one(f"select {text}", read=SOURCE_DIALECT)
    except SqlglotError as exc:
        raise DeclarationError(f"{where}: {text!r} is not SQL: {exc}") from None
    if not isinstance(parsed, exp.Select) or parsed.args.get("from_") or parsed.args.get("from"):
        raise DeclarationError(f"{where}: {text!r} must be expressions")
    return tuple(parsed.expressions)


def _unit(word: str) -> Unit:
    return "month" if word == "months" else "day"


def _rule(text: str, where: str) -> Rule:
    covers = _COVERS_OF.match(text)
    if covers:
        bounds = _expressions(covers.group(3), where)
        if len(bounds) != 2:
            raise DeclarationError(f"{where}: 'covers days of [start, end)' takes two bounds")
        return Rule("covers", covers.group(1).lower(), bounds, unit=_unit(covers.group(2)))
    between = _COVERS_BETWEEN.match(text)
    if between:
        return Rule(
            "between",
            between.group(1).lower(),
            _expressions(between.group(3), where),
            unit=_unit(between.group(2)),
        )
    rows = _ROWS_WHERE.match(text)
    if rows:
        condition = _expressions(rows.group(1), where)
        if len(condition) != 1:
            raise DeclarationError(f"{where}: 'rows where' takes one condition")
        return Rule("rows", None, condition)
    through = _THROUGH.match(text)
    if through:
        return Rule(
            "through",
            through=through.group(1).lower(),
            columns=_columns(through.group(2), where),
        )
    value = _VALUE.match(text)
    if value:
        expression = _expressions(value.group(2), where)
        if len(expression) != 1:
            raise DeclarationError(f"{where}: '{value.group(1)} = ...' takes one expression")
        return Rule("value", value.group(1).lower(), expression)
    raise DeclarationError(
        f"{where}: {text!r} is not a rule; use 'COLUMN = EXPRESSION', "
        "'COLUMN covers days (or months) of [START, END)', 'COLUMN covers days (or months) "
        "between old and new "
        "EXPRESSION, ...', 'rows where CONDITION' or 'through INPUT (COLUMNS)'"
    )


def parse_header(text: str, name: str) -> Header:
    """Read the declarations of a model's leading comment block (variables already rendered).

    Raises:
        DeclarationError: a declaration cannot be read.
    """
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        lines.append(stripped)
    key: tuple[str, ...] = ()
    for line in lines:
        found = _KEY.search(line)
        if found:
            key = _columns(found.group(1), f"{name}: key")
            break
    optional: dict[str, dict[str, str]] = {}
    optional_inputs: dict[str, tuple[tuple[str, str], ...]] = {}
    incremental: Incremental | None = None
    materialized: Literal["view", "table"] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        kind = _MATERIALIZED.match(line)
        if kind:
            materialized = "view" if kind.group(1) == "view" else "table"
            continue
        optional_input = _OPTIONAL_INPUT.match(line)
        if optional_input:
            optional_inputs[optional_input.group(1).lower()] = _typed_columns(
                optional_input.group(2), f"{name}: optional input {optional_input.group(1)}"
            )
            continue
        opt = _OPTIONAL.match(line)
        if opt:
            optional.setdefault(opt.group(1).lower(), {})[opt.group(2).lower()] = opt.group(3)
            continue
        head = _INCREMENTAL.match(line)
        if not head:
            if re.match(r"^--\s*(incremental|optional column|optional input|materialized)\b", line):
                raise DeclarationError(f"{name}: cannot read the declaration {line!r}")
            continue
        if incremental is not None:
            raise DeclarationError(f"{name}: more than one '-- incremental:' line")
        mode = "key" if head.group(1) == "key" else "partition"
        columns = _columns(head.group(2), f"{name}: incremental {mode}")
        if columns[0] != "account":
            raise DeclarationError(
                f"{name}: the {mode} must start with account (every row is one account's)"
            )
        sources: dict[str, tuple[str, ...]] = {}
        rules: dict[str, list[Rule]] = {}
        while index < len(lines):
            match = _RULE.match(lines[index])
            if not match:
                break
            index += 1
            where = f"{name}: rule for {match.group(1)}"
            inputs = [part.strip().lower() for part in match.group(1).split(",")]
            for input_name in inputs:
                if not re.fullmatch(rf"({RAW_SCHEMA}\.)?{_IDENTIFIER}", input_name):
                    raise DeclarationError(f"{where}: {input_name!r} is not a model or table")
                if mode == "key":
                    if not input_name.startswith(f"{RAW_SCHEMA}."):
                        raise DeclarationError(
                            f"{where}: a key model maps its raw tables ({RAW_SCHEMA}.<table>)"
                        )
                    mapped = _columns(match.group(2), where)
                    if len(mapped) != len(columns):
                        raise DeclarationError(
                            f"{where}: maps {len(mapped)} columns to a key of {len(columns)}"
                        )
                    sources[input_name.split(".", 1)[1]] = mapped
                else:
                    rule = _rule(match.group(2), where)
                    if rule.column is not None and rule.column not in columns:
                        raise DeclarationError(
                            f"{where}: {rule.column} is not a partition column "
                            f"({', '.join(columns)})"
                        )
                    rules.setdefault(input_name, []).append(rule)
        incremental = Incremental(
            mode,  # type: ignore[arg-type]  # narrowed by the regular expression
            columns,
            sources,
            {input_name: tuple(found) for input_name, found in rules.items()},
        )
    if materialized == "view" and incremental is not None:
        raise DeclarationError(f"{name}: a view is not kept incrementally (it has no rows)")
    return Header(key, incremental, optional, materialized, optional_inputs)


def _typed_columns(text: str, where: str) -> tuple[tuple[str, str], ...]:
    """``account varchar, start_epoch bigint`` as ``(("account", "varchar"), ...)``."""
    columns: list[tuple[str, str]] = []
    for part in text.split(","):
        match = _TYPED_COLUMN.match(part.strip())
        if not match:
            raise DeclarationError(f"{where}: {part.strip()!r} is not '<column> <SQL type>'")
        columns.append((match.group(1).lower(), match.group(2)))
    if not any(column == "account" for column, _ in columns):
        raise DeclarationError(f"{where}: declare its account column (it says 'not loaded')")
    return tuple(columns)
