"""The ``unique`` and ``not_null`` data tests of every model's key, generated from the
``key: (...)`` of its header's grain line (``-- grain: ...; key: (account, call_key)``).

A model declares its key once, in its header; these tests follow it, so a new model or a
changed key needs no hand-written ``union all`` of checks. Each is a query returning the
offending rows, like the files in ``sql/tests`` (zero rows pass).
"""

from __future__ import annotations

from collections.abc import Iterable

UNIQUE = "unique_keys"
NOT_NULL = "not_null_keys"


def _as_text(columns: Iterable[str]) -> str:
    return " || ' ' || ".join(f"cast({column} as varchar)" for column in columns)


def key_tests(keys: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """The SQL of the two tests over ``keys`` (model name -> its key columns), by test name;
    models without a key are left out, and so is a test without any model."""
    unique: list[str] = []
    not_null: list[str] = []
    for model, columns in sorted(keys.items()):
        if not columns:
            continue
        listed = ", ".join(columns)
        # Model and column names come from the project's own SQL files, checked identifiers.
        unique.append(
            f"select '{model}' as model, {_as_text(columns)} as key_value, "  # noqa: S608
            f"count(*) as occurrences from {model} group by {listed} having count(*) > 1"
        )
        nulls = " or ".join(f"{column} is null" for column in columns)
        not_null.append(
            f"select '{model}' as model, '{listed}' as key_columns, count(*) as null_rows "  # noqa: S608
            f"from {model} where {nulls} having count(*) > 0"
        )
    tests: dict[str, str] = {}
    if unique:
        tests[UNIQUE] = (
            "-- test: every model's key (the key: of its header) is unique (rows: model, key, "
            "how many times it occurs)\n" + "\nunion all\n".join(unique)
        )
        tests[NOT_NULL] = (
            "-- test: no column of a model's key is null (rows: model, key columns, rows with "
            "a null)\n" + "\nunion all\n".join(not_null)
        )
    return tests
