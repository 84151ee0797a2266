"""The metric registry and the generated key tests: the README's metric table is the registry's,
and the key tests find what they promise."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from pipelines.models import load_project
from pipelines.models.key_tests import NOT_NULL, UNIQUE, key_tests
from pipelines.models.metrics import BY_NAME, MART_DATE_COLUMNS, METRICS, metric_table, tiles

README = Path(__file__).parents[2] / "README.md"


def test_the_readme_metric_table_is_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- metrics: start -->\n(.*?)\n<!-- metrics: end -->", text, re.S)
    assert found, "README.md has no metric table between <!-- metrics: start/end --> markers"
    assert found.group(1) == metric_table(), (
        "README's metric table differs from pipelines/models/metrics.py: paste "
        "`python -c 'from pipelines.models.metrics import metric_table; print(metric_table())'`"
    )


def test_every_metric_reads_a_mart_with_a_date_and_names_only_known_metrics() -> None:
    marts = {model.name: model for model in load_project(tests=False).models}
    assert len(BY_NAME) == len(METRICS)
    for metric in METRICS:
        assert metric.mart in marts and metric.mart in MART_DATE_COLUMNS, metric.name
        for name in re.findall(r"\{(\w+)\.", metric.detail):
            assert name in BY_NAME, (metric.name, name)
    assert [m.name for m in tiles()] == [
        "calls", "asr", "ner", "acd", "service_level", "abandon_rate", "callback_rate", "cost",
    ]  # fmt: skip


def test_key_tests_follow_every_models_key_line() -> None:
    project = load_project()
    names = {test.name for test in project.tests}
    keyed = {model.name for model in project.models if model.header.key}
    assert keyed == {model.name for model in project.models}  # every model declares its key
    for model in keyed:
        assert {UNIQUE + model, NOT_NULL + model} <= names
        unique = next(test for test in project.tests if test.name == UNIQUE + model)
        assert unique.models == {model}


def test_key_tests_catch_duplicates_and_nulls() -> None:
    tests = key_tests({"fct_things": ("account", "thing_id"), "keyless": ()})
    assert set(tests) == {UNIQUE + "fct_things", NOT_NULL + "fct_things"}
    db = duckdb.connect()
    db.execute(
        "create table fct_things as select * from (values ('a', 1), ('a', 1), ('a', 2), "
        "('b', null)) as t (account, thing_id)"
    )
    assert db.execute(tests[UNIQUE + "fct_things"]).fetchall() == [("a 1", 2)]
    assert db.execute(tests[NOT_NULL + "fct_things"]).fetchall() == [("b", None)]
