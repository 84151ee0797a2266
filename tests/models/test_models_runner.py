"""The model runner: order from the SQL's own references, idempotent rebuilds, a failing model
that names itself and keeps everything as it was, skipped models, other dialects, settings."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest
import sqlglot
from models_harness import DATASET, ModelsHarness, small_company
from pipeline_harness import edited_sql

from pipelines.emulator.server import EmulatorServer
from pipelines.models import (
    SQL_DIR,
    DataTestError,
    ModelError,
    ModelSettings,
    build_models,
    check_data_tests,
    load_project,
    load_settings,
    run_data_tests,
)
from pipelines.models.builder import PARSE_CACHE
from pipelines.models.runner import (
    ParseCache,
    build_statements,
    compile_query,
    compile_sql,
    to_sql,
)
from pipelines.models.settings import parse_days
from pipelines.sync import make_pipeline
from pipelines.voipstudio.errors import ConfigError

SETTINGS = ModelSettings(reporting_timezone="Europe/Madrid", default_country_code="34")


@pytest.fixture(scope="module")
def synced_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A DuckDB file holding a small company's raw tables, loaded by the real sync."""
    tmp_path = tmp_path_factory.mktemp("runner")
    with pytest.MonkeyPatch.context() as monkeypatch, EmulatorServer(small_company()) as server:
        harness = ModelsHarness(server, tmp_path, monkeypatch)
        harness.sync()
    yield harness.db_path


@pytest.fixture
def db(synced_db: Path, tmp_path: Path) -> tuple[Any, Path]:
    """A private copy of the synced file and a pipeline pointing at it."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(synced_db, path)
    pipeline = make_pipeline(
        "models_test",
        destination=dlt.destinations.duckdb(str(path)),
        dataset_name=DATASET,
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    return pipeline, path


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def snapshot(path: Path, *tables: str) -> dict[str, list[tuple[Any, ...]]]:
    return {t: query(path, f"select * from {DATASET}.{t} order by all") for t in tables}


def write_models(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def test_build_order_comes_from_the_sql_references() -> None:
    project = load_project(SQL_DIR, SETTINGS)
    order = [model.name for model in project.models]
    for upstream, downstream in [
        ("stg_voipstudio__cdrs", "fct_calls"),
        ("fct_calls", "agg_calls_daily"),
        ("fct_calls", "agg_traffic_hourly"),
        ("stg_voipstudio__cdrs", "agg_traffic_hourly"),
        ("fct_calls", "fct_missed_call_callbacks"),
        ("fct_missed_call_callbacks", "agg_user_daily"),
        ("stg_voipstudio__users", "agg_user_daily"),
        ("fct_calls", "rpt_repeat_callers"),
        ("fct_calls", "agg_destination_monthly"),
        ("fct_calls", "dim_accounts"),
        ("dim_accounts", "agg_traffic_hourly"),
        ("dim_accounts", "fct_missed_call_callbacks"),
    ]:
        assert order.index(upstream) < order.index(downstream), (upstream, downstream)
    cdrs = project.model("stg_voipstudio__cdrs")
    # a staging model kept up to date by key is a table
    assert cdrs.kind == "table" and cdrs.sources == {"cdrs"} and not cdrs.models
    assert cdrs.header.incremental is not None and cdrs.header.incremental.mode == "key"
    assert cdrs.header.incremental.sources == {"cdrs": ("account", "id")}
    assert cdrs.header.optional == {"cdrs": {"deleted_at": "timestamp with time zone"}}
    fct = project.model("fct_calls")
    # its flags read the recordings and voicemail, optional inputs (collections loaded on demand)
    flags = {
        "stg_voipstudio__monitors",
        "stg_voipstudio__voicemessages",
        "stg_voipstudio__queue_names",
    }
    assert fct.kind == "table" and fct.models == {"stg_voipstudio__cdrs", *flags}
    assert not fct.sources and set(fct.header.optional_inputs) == flags
    # CTE names (legs, ranked, ...) are not mistaken for tables
    assert project.model("agg_user_daily").models == {
        "stg_voipstudio__cdrs",
        "fct_calls",
        "fct_missed_call_callbacks",
        "stg_voipstudio__users",
    }
    assert {test.name for test in project.tests} >= {
        "unique_key__fct_calls",
        "not_null_key__fct_calls",
        "accepted_values",
        "billsec_within_duration",
        "every_cdr_in_one_call",
        "daily_totals_reconcile",
        "traffic_reconciles",
    }
    for model in project.models:
        text = model.path.read_text()
        assert text.startswith("-- grain: one row per "), model.name


def test_order_is_parsed_not_alphabetical(tmp_path: Path) -> None:
    root = write_models(
        tmp_path,
        {
            "staging/zz_base.sql": "with source as (select * from voipstudio.cdrs) "
            "select id from source",
            "marts/aa_top.sql": "select count(*) as n from mm_middle",
            "marts/mm_middle.sql": "with zz as (select * from zz_base) select id from zz",
        },
    )
    project = load_project(root, SETTINGS)
    assert [m.name for m in project.models] == ["zz_base", "mm_middle", "aa_top"]
    # mm_middle's CTE called zz is not a model; zz_base inside it is
    assert project.model("mm_middle").models == {"zz_base"}


@pytest.mark.parametrize(
    ("files", "model", "words"),
    [
        (
            {"marts/a.sql": "select * from b", "marts/b.sql": "select * from a"},
            "a",
            ["cycle", "a", "b"],
        ),
        ({"marts/a.sql": "select * from nowhere"}, "a", ["nowhere", "neither a model"]),
        ({"marts/a.sql": "select {{ no_such_setting }} as x"}, "a", ["no_such_setting"]),
        ({"marts/a.sql": "select 1; select 2"}, "a", ["exactly one SELECT"]),
        ({"marts/a.sql": "delete from voipstudio.cdrs"}, "a", ["exactly one SELECT"]),
        ({"marts/a.sql": "select from from"}, "a", ["not valid SQL"]),
    ],
)
def test_bad_model_files_are_named(
    tmp_path: Path, files: dict[str, str], model: str, words: list[str]
) -> None:
    with pytest.raises(ModelError) as raised:
        load_project(write_models(tmp_path, files), SETTINGS)
    assert raised.value.exit_code == 6
    assert raised.value.name == model or "cycle" in str(raised.value)
    for word in words:
        assert word in str(raised.value)


BASE = {"staging/stg.sql": "select account, id, calldate from voipstudio.cdrs"}


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("-- incremental: partition (call_date)", ["must start with account"]),
        ("-- incremental: partition (account, id)\n--   stg: id ~ 3", ["is not a rule"]),
        ("-- incremental: partition (account, id)\n--   other: id = id", ["rule for other"]),
        (
            "-- incremental: partition (account, id)\n--   stg: day covers days of [id, id)",
            ["day is not a partition column"],
        ),
        (
            "-- incremental: partition (account, id)\n--   stg: id covers days of [calldate)",
            ["takes two bounds"],
        ),
        (
            "-- incremental: partition (account, id)\n--   stg: through stg (account)",
            ["through stg: not another input"],
        ),
        (
            "-- incremental: partition (account, id)\n-- incremental: key (account)",
            ["more than one"],
        ),
        (
            "-- materialized: view\n-- incremental: partition (account, id)",
            ["not kept incrementally"],
        ),
        ("-- incremental partition (account, id)", ["cannot read the declaration"]),
        (
            "-- optional column: voipstudio.users.email text",
            ["optional column of users, which it does not read"],
        ),
    ],
)
def test_bad_declarations_are_named(tmp_path: Path, header: str, words: list[str]) -> None:
    root = write_models(
        tmp_path, {**BASE, "marts/a.sql": f"-- grain: one row per id\n{header}\nselect * from stg"}
    )
    with pytest.raises(ModelError) as raised:
        load_project(root, SETTINGS)
    assert raised.value.name == "a" and raised.value.exit_code == 6
    for word in words:
        assert word in str(raised.value)


def test_a_partitioned_model_reading_raw_tables_or_a_key_model_reading_models_is_refused(
    tmp_path: Path,
) -> None:
    root = write_models(
        tmp_path,
        {
            **BASE,
            "marts/a.sql": "-- incremental: partition (account, id)\nselect * from voipstudio.cdrs",
        },
    )
    with pytest.raises(ModelError, match="reads models only"):
        load_project(root, SETTINGS)
    root = write_models(
        tmp_path / "key",
        {**BASE, "staging/k.sql": "-- incremental: key (account, id)\nselect * from stg"},
    )
    with pytest.raises(ModelError, match="reads raw tables only"):
        load_project(root, SETTINGS)


def test_an_input_without_a_rule_or_the_partition_columns_is_named(
    db: tuple[Any, Path], tmp_path: Path
) -> None:
    pipeline, _ = db
    root = edited_sql(
        tmp_path / "sql",
        {
            "marts/fct_calls.sql": (
                "-- incremental: partition (account, call_key)",
                "-- incremental: partition (account, call_ref)",
            )
        },
    )
    with pytest.raises(ModelError) as raised:
        build_models(pipeline, SETTINGS, sql_dir=root)
    message = str(raised.value)
    assert message.startswith("model fct_calls failed: is partitioned by (account, call_ref)")
    assert "its input stg_voipstudio__cdrs has no column call_ref" in message
    assert "--   stg_voipstudio__cdrs: call_ref = <expression>" in message


def test_build_is_idempotent(db: tuple[Any, Path]) -> None:
    pipeline, path = db
    first = build_models(pipeline, SETTINGS)
    assert [m.name for m in first.built][:1] == ["stg_voipstudio__cdrs"]
    assert not first.skipped and len(first.built) == 23
    assert {m.mode for m in first.built} == {"full"}
    tables = [m.name for m in first.built if m.kind == "table"]
    before = snapshot(path, *tables)
    assert all(before[t] for t in tables if t != "rpt_repeat_callers")
    # Nothing loaded since: nothing to rebuild, nothing written.
    second = build_models(pipeline, SETTINGS)
    assert {m.mode for m in second.built} == {"unchanged"}
    assert "0 rebuilt in full, " in second.summary() and "unchanged" in second.summary()
    assert snapshot(path, *tables) == before
    full = build_models(pipeline, SETTINGS, full=True)
    assert snapshot(path, *tables) == before
    assert [(m.name, m.rows) for m in full.built] == [(m.name, m.rows) for m in first.built]
    calls = query(path, f"select count(*) from {DATASET}.fct_calls")[0][0]
    assert dict((m.name, m.rows) for m in full.built)["fct_calls"] == calls
    results = run_data_tests(pipeline, SETTINGS)
    assert [r.name for r in results if not r.passed] == []
    check_data_tests(results)


def test_failing_model_stops_the_run_names_itself_and_changes_nothing(
    db: tuple[Any, Path], tmp_path: Path
) -> None:
    pipeline, path = db
    build_models(pipeline, SETTINGS)
    kept = ("cdrs", "fct_calls", "agg_calls_daily", "agg_user_daily")
    before = snapshot(path, *kept)
    # fct_calls would be rebuilt empty, then agg_calls_daily fails.
    broken = edited_sql(
        tmp_path / "broken_sql",
        {
            "marts/fct_calls.sql": ("select * from final", "select * from final where 1 = 0"),
            "marts/agg_calls_daily.sql": ("count(*) as attempts", "count(no_such_column)"),
        },
    )
    with pytest.raises(ModelError) as raised:
        build_models(pipeline, SETTINGS, sql_dir=broken)
    error = raised.value
    assert error.name == "agg_calls_daily" and error.exit_code == 6
    assert str(error).startswith("model agg_calls_daily failed: ")
    assert "no_such_column" in str(error) and "\n" not in str(error)
    # One transaction: the raw data and every model are as the last good build left them.
    assert snapshot(path, *kept) == before


def test_a_model_that_changes_kind_replaces_the_old_relation(
    db: tuple[Any, Path], tmp_path: Path
) -> None:
    pipeline, path = db
    build_models(pipeline, SETTINGS)
    # Without its incremental declaration a staging model is a view; a mart without one moved
    # to staging becomes a view too.
    moved = edited_sql(
        tmp_path / "moved_sql",
        {"staging/stg_voipstudio__users.sql": ("-- incremental: key (account, user_id)\n", "")},
    )
    (moved / "marts" / "dim_accounts.sql").rename(moved / "staging" / "dim_accounts.sql")
    build_models(pipeline, SETTINGS, sql_dir=moved)

    def kinds() -> dict[str, str]:
        rows = query(
            path,
            "select table_name, table_type from information_schema.tables "
            f"where table_schema = '{DATASET}'",
        )
        return dict(rows)  # type: ignore[arg-type]

    assert kinds()["stg_voipstudio__users"] == "VIEW"
    assert kinds()["dim_accounts"] == "VIEW"
    build_models(pipeline, SETTINGS)
    assert kinds()["stg_voipstudio__users"] == "BASE TABLE"
    assert kinds()["dim_accounts"] == "BASE TABLE"


def test_models_whose_raw_tables_are_missing_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorServer(small_company(rows=150)) as server:
        harness = ModelsHarness(
            server, tmp_path, monkeypatch, PIPELINES__VOIPSTUDIO__DATASET_NAME="telephony"
        )
        harness.sync(resources=("cdrs",))
        result = build_models(harness.pipeline())
    assert result.dataset == "telephony"
    assert set(result.skipped) == {
        "stg_voipstudio__users",
        "stg_voipstudio__queues",
        "stg_voipstudio__queue_members",
        "stg_voipstudio__queue_names",
        "stg_voipstudio__queue_memberships",
        "dim_queues",
        "dim_queue_members",
        "agg_user_daily",
        # the queue views need the queues' ids
        "fct_queue_calls",
        "agg_queue_interval",
        "agg_queue_daily",
        "agg_agent_daily",
    }
    assert "users not loaded" in result.skipped["agg_user_daily"]
    assert "skipped" in result.summary()
    assert {m.name for m in result.built} >= {"fct_calls", "agg_calls_daily", "agg_traffic_hourly"}
    # Built into the configured dataset, reading its raw tables.
    loaded = query(harness.db_path, "select count(*) from telephony.cdrs")[0][0]
    legs = query(harness.db_path, "select sum(leg_count) from telephony.fct_calls")[0][0]
    assert legs == loaded == 150
    results = {r.name: r for r in run_data_tests(harness.pipeline())}
    assert results["dimension_keys"].failures is None
    assert results["user_daily_reconciles"].failures is None
    assert "SKIP" in results["dimension_keys"].describe()
    assert all(r.passed for n, r in results.items() if r.failures is not None)


@pytest.mark.parametrize(
    "dialect",
    # duckdb also stands for MotherDuck; the others are the warehouses README documents.
    [
        "postgres",
        "snowflake",
        "bigquery",
        "clickhouse",
        "redshift",
        "databricks",
        "tsql",
        "trino",
        "duckdb",
    ],
)
def test_every_model_and_data_test_transpiles(dialect: str) -> None:
    project = load_project(SQL_DIR, SETTINGS)
    for model in project.models:
        statements = build_statements(model, dialect, "calls_raw")
        text = " ".join(statements).lower()
        assert "voipstudio." not in text  # the raw schema points at the configured dataset
        assert f"calls_raw.{model.name}" in text
        if dialect in ("postgres", "redshift", "tsql", "trino"):
            assert statements[0].lower().startswith("drop ") and "cascade" in statements[0].lower()
            assert f"into calls_raw.{model.name} " in statements[1].lower() or statements[
                1
            ].lower().startswith(f"create {model.kind} calls_raw.{model.name} ")
        else:
            assert len(statements) == 1
            assert statements[0].lower().startswith(f"create or replace {model.kind}")
    assert "calls_raw.cdrs" in " ".join(
        build_statements(project.model("stg_voipstudio__cdrs"), dialect, "calls_raw")
    )
    for test in project.tests:
        assert to_sql(compile_query(test, "calls_raw"), dialect, test.name)


def test_a_model_the_target_dialect_cannot_express_fails_before_the_build(
    tmp_path: Path,
) -> None:
    root = write_models(
        tmp_path,
        {
            "marts/a.sql": "select regexp_replace(src, '[^0-9]', '', 'g') as digits "
            "from voipstudio.cdrs"
        },
    )
    model = load_project(root, SETTINGS).model("a")
    assert build_statements(model, "duckdb", DATASET)
    with pytest.raises(ModelError) as raised:
        build_statements(model, "bigquery", DATASET)
    assert "cannot be transpiled to bigquery" in str(raised.value)


def test_settings_change_what_the_models_compute(db: tuple[Any, Path]) -> None:
    pipeline, path = db
    national = (
        f"select count(*) from {DATASET}.stg_voipstudio__cdrs "
        "where external_number not like '+%' and length(external_number) = 9"
    )
    build_models(pipeline, ModelSettings(default_country_code=""))
    plain = query(path, national)[0][0]
    build_models(pipeline, replace(SETTINGS, service_level_seconds=7))
    # The emulator writes a fifth of Spanish numbers without +34: E.164 only with a country code
    assert plain > 0 and query(path, national)[0][0] == 0
    thresholds = f"select distinct service_level_seconds from {DATASET}.agg_calls_daily"
    assert query(path, thresholds) == [(7,)]


def test_settings_come_from_config_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ModelSettings.__dataclass_fields__:
        monkeypatch.delenv(f"MODELS__{key.upper()}", raising=False)
    defaults = load_settings()  # .dlt/config.toml holds the documented defaults
    assert defaults == ModelSettings()
    monkeypatch.setenv("MODELS__REPORTING_TIMEZONE", "America/New_York")
    monkeypatch.setenv("MODELS__SERVICE_LEVEL_SECONDS", "30")
    monkeypatch.setenv("MODELS__BUSINESS_DAYS", "1-4,6")
    settings = load_settings()
    assert settings.reporting_timezone == "America/New_York"
    assert settings.service_level_seconds == 30
    assert settings.weekdays == (1, 2, 3, 4, 6)
    assert settings.sql_variables()["reporting_timezone"] == "'America/New_York'"
    assert settings.sql_variables()["business_days"] == "1, 2, 3, 4, 6"
    assert parse_days([5, 1]) == (1, 5)
    for key, value, word in [
        ("REPORTING_TIMEZONE", "Mars/Olympus", "MODELS__REPORTING_TIMEZONE"),
        ("SERVICE_LEVEL_SECONDS", "twenty", "MODELS__SERVICE_LEVEL_SECONDS"),
        ("BUSINESS_HOURS_START", "9am", "MODELS__BUSINESS_HOURS_START"),
        ("BUSINESS_DAYS", "8", "MODELS__BUSINESS_DAYS"),
        ("DEFAULT_COUNTRY_CODE", "spain", "MODELS__DEFAULT_COUNTRY_CODE"),
    ]:
        with monkeypatch.context() as patch:
            patch.setenv(f"MODELS__{key}", value)
            with pytest.raises(ConfigError) as raised:
                load_settings()
            assert word in str(raised.value) and raised.value.exit_code == 2


def test_failed_data_tests_are_reported_with_their_rows(db: tuple[Any, Path]) -> None:
    pipeline, path = db
    with duckdb.connect(str(path)) as con:
        bad = con.execute(
            f"update {DATASET}.cdrs set billsec = duration + 7 "
            "where id = (select min(id) from voipstudio.cdrs) returning id"
        ).fetchall()[0][0]
    # Changed by hand, not by a load: its _dlt_load_id is the old one, so only a full build
    # sees it.
    build_models(pipeline, SETTINGS, full=True)
    results = {r.name: r for r in run_data_tests(pipeline, SETTINGS)}
    failed = results["billsec_within_duration"]
    assert failed.failures == 1 and not failed.passed
    assert failed.columns[:2] == ["account", "cdr_id"] and failed.sample[0][1] == bad
    assert (
        f"FAIL billsec_within_duration: 1 rows, e.g. {{'account': 'default', 'cdr_id': {bad}"
        in failed.describe()
    )
    with pytest.raises(DataTestError) as raised:
        check_data_tests(list(results.values()))
    assert raised.value.exit_code == 7
    assert "billsec_within_duration (1 rows)" in str(raised.value)


def test_no_model_reads_the_wall_clock() -> None:
    """Everything is judged against each account's loaded high-water mark (dim_accounts), so
    that a build with no new data gives the same rows whenever it runs."""
    from sqlglot import exp

    clock = (
        exp.CurrentDate,
        exp.CurrentTimestamp,
        exp.CurrentTime,
        exp.CurrentDatetime,
    )
    for model in load_project(settings=SETTINGS).models:
        found = [node.sql() for node in model.query.find_all(*clock)]
        functions = {
            str(node.name).lower()
            for node in model.query.find_all(exp.Anonymous)
            if str(node.name).lower() in {"now", "today", "get_current_timestamp", "clock"}
        }
        assert not found and not functions, (model.name, found, functions)


def test_the_parse_cache_keeps_no_trees_and_a_changed_file_is_parsed_and_compiled_again(
    tmp_path: Path,
) -> None:
    root = write_models(
        tmp_path / "sql",
        {
            "staging/base.sql": "with source as (select * from voipstudio.cdrs) "
            "select id, calldate from source",
            "marts/top.sql": "select id from base",
        },
    )
    path = tmp_path / "models_parsed.pickle"
    cache = ParseCache(path)
    first = load_project(root, SETTINGS, cache=cache).model("top")
    assert "query" in first.__dict__  # parsed now: its tree is at hand
    assert "id" in compile_sql(first, "ds", cache=cache)
    cache.save()
    # Read back: the file holds headers, references and templates, no sqlglot tree.
    cache = ParseCache(path)
    assert cache.templates
    again = load_project(root, SETTINGS, cache=cache).model("top")
    assert "query" not in again.__dict__ and again.models == {"base"}
    assert compile_sql(again, "ds", cache=cache) == compile_sql(first, "ds")
    assert "query" not in again.__dict__  # the template came from the cache: nothing parsed
    cache.save()
    # The file changes: parsed and compiled again, whatever the cache holds.
    (root / "marts/top.sql").write_text("select id, calldate as started from base")
    cache = ParseCache(path)
    changed = load_project(root, SETTINGS, cache=cache).model("top")
    assert "query" in changed.__dict__
    sql = compile_sql(changed, "ds", models={"base": "select 1 as id, 2 as calldate"}, cache=cache)
    assert "started" in sql and "(select 1 as id, 2 as calldate)" in sql
    assert query_rows(sql) == [(1, 2)]
    cache.save()
    assert len(ParseCache(path).templates) == 1  # the old definition's template is gone


def query_rows(sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect() as con:
        return con.execute(sql).fetchall()


def test_compiled_templates_read_what_the_query_reads(db: tuple[Any, Path]) -> None:
    """compile_sql (templates, used by incremental builds) returns the rows compile_query
    (trees, used by full builds) does, for every model, with and without its inputs read
    through a query, and with an optional column missing."""
    pipeline, path = db
    build_models(pipeline, SETTINGS)
    project = load_project(SQL_DIR, SETTINGS, tests=False)
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name from information_schema.columns "
            f"where table_schema = '{DATASET}' order by table_name, ordinal_position"
        ).fetchall()
        columns: dict[str, list[str]] = {}
        for table, column in rows:
            columns.setdefault(table, []).append(column)
        # A dataset loaded before deleted_at existed: the optional column reads as NULL.
        columns["cdrs"] = [c for c in columns["cdrs"] if c != "deleted_at"]
        compared = 0
        for model in project.models:
            if not {*model.models, *model.sources} <= set(columns):
                continue  # a collection the small company does not load
            through = {n: f"select * from {DATASET}.{n} where true" for n in model.models}
            sources = {n: f"select * from {DATASET}.{n} where true" for n in model.sources}
            tree = compile_query(
                model,
                DATASET,
                source_columns=columns,
                sources={n: sqlglot.parse_one(s, read="duckdb") for n, s in sources.items()},
                models={n: sqlglot.parse_one(s, read="duckdb") for n, s in through.items()},
            ).sql(dialect="duckdb")
            for text in (
                compile_sql(model, DATASET, source_columns=columns),
                compile_sql(
                    model, DATASET, source_columns=columns, sources=sources, models=through
                ),
            ):
                difference = con.execute(
                    f"select count(*) from ((select * from ({tree})) except all "
                    f"(select * from ({text}))) as d"
                ).fetchall()
                assert difference == [(0,)], model.name
                assert con.execute(f"select count(*) from ({text}) as q").fetchall() == (
                    con.execute(f"select count(*) from ({tree}) as q").fetchall()
                ), model.name
            compared += 1
    assert compared >= 15


def test_every_build_leaves_the_templates_the_next_incremental_build_needs(
    db: tuple[Any, Path],
) -> None:
    """A full build compiles the incremental models' templates, and a build with nothing new
    keeps them: the first sync after either parses and compiles nothing."""
    pipeline, _ = db
    built = build_models(pipeline, SETTINGS, full=True)
    incremental = {
        m.name
        for m in load_project(SQL_DIR, SETTINGS, tests=False).models
        if m.header.incremental is not None and m.name in {b.name for b in built.built}
    }
    path = Path(pipeline.working_dir) / PARSE_CACHE
    assert len(ParseCache(path).templates) == len(incremental) > 10
    second = build_models(pipeline, SETTINGS)
    assert {m.mode for m in second.built} == {"unchanged"}
    assert len(ParseCache(path).templates) == len(incremental)
