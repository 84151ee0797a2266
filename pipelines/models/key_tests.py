"""The ``unique`` and ``not_null`` data tests of every model's key, generated from the
``key: (...)`` of its header's grain line (``-- grain: ...; key: (account, call_key)``).

A model declares its key once, in its header; these tests follow it, so a new model or a
changed key needs no hand-written ``union all`` of checks. Each model gets two tests,
``unique_key__<model>`` and ``not_null_key__<model>``; those of a model that was not built (a
collection the configuration does not load) are left out of the run. Each is a query
returning the offending rows, like the files in ``sql/tests`` (zero rows pass).
"""

from __future__ import annotations

from collections.abc import Iterable

UNIQUE = "unique_key__"
NOT_NULL = "not_null_key__"


def _as_text(columns: Iterable[str]) -> str:
    return " || ' ' || ".join(f"cast({column} as varchar)" for column in columns)


def is_key_test(name: str) -> bool:
    """Whether a data test is one of the generated key tests (left out, not reported as
    skipped, when its model was not built: e.g. a collection the configuration does not load)."""
    return name.startswith((UNIQUE, NOT_NULL))


def key_tests(keys: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """The SQL of the two tests of each model of ``keys`` (model name -> its key columns), by
    test name; models without a key have none."""
    tests: dict[str, str] = {}
    for model, columns in sorted(keys.items()):
        if not columns:
            continue
        listed = ", ".join(columns)
        nulls = " or ".join(f"{column} is null" for column in columns)
        # Model and column names come from the project's own SQL files, checked identifiers.
        tests[UNIQUE + model] = (
            f"-- test: the key ({listed}) of {model} is unique (rows: key, occurrences)\n"
            f"select {_as_text(columns)} as key_value, count(*) as occurrences "
            f"from {model} group by {listed} having count(*) > 1"
        )
        tests[NOT_NULL + model] = (
            f"-- test: no column of the key ({listed}) of {model} is null (rows: a null key)\n"
            f"select {listed} from {model} where {nulls}"
        )
    return tests
