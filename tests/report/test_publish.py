"""``voipstudio publish`` and the BI recipes of docs/bi.md, on real DuckDB files and real
processes: DuckDB's single-writer rule, a reader of the published copy never blocking the next
publish, read-only connections as BI drivers open them, and every example query of the docs.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, holding

from pipelines.models import STATE_TABLES
from pipelines.report.publish import (
    PublishError,
    PublishSettings,
    load_publish_settings,
    publish,
)
from pipelines.voipstudio.errors import ConfigError

MARTS = (
    "fct_calls",
    "agg_calls_daily",
    "agg_traffic_hourly",
    "agg_user_daily",
    "agg_destination_monthly",
    "fct_missed_call_callbacks",
    "rpt_repeat_callers",
)


def ask(process: subprocess.Popen[str]) -> int:
    """How many calls the holding process sees through the connection it kept open."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("count\n")
    process.stdin.flush()
    return int(process.stdout.readline())


def counts(path: Path, names: list[str]) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as db:
        return {
            name: db.execute(f"select count(*) from voipstudio.{name}").fetchone()[0]  # type: ignore[index]
            for name in names
        }


def test_publish_copies_tables_views_and_parquet(live: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(live)) as db:  # a view of the user's own (the models are tables)
        db.execute(
            "create view voipstudio.answered_calls as "
            "select * from voipstudio.fct_calls where is_answered"
        )
    target = tmp_path / "published"
    result = publish(live, "voipstudio", PublishSettings(directory=target))
    snapshot = target / "calls.duckdb"
    assert result.snapshot == snapshot
    with duckdb.connect(str(live), read_only=True) as db:
        relations = {
            name: kind
            for name, kind in db.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_schema = 'voipstudio'"
            ).fetchall()
        }
    # dlt's and the models' bookkeeping stays behind
    expected = sorted(set(relations) - {"_dlt_pipeline_state", "_dlt_version"} - STATE_TABLES)
    assert set(relations) >= STATE_TABLES
    assert sorted(result.rows) == expected
    assert counts(snapshot, expected) == counts(live, expected) == result.rows
    with duckdb.connect(str(snapshot), read_only=True) as db:
        kinds = dict(
            db.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_schema = 'voipstudio'"
            ).fetchall()
        )
        assert kinds["stg_voipstudio__cdrs"] == "BASE TABLE" and kinds["fct_calls"] == "BASE TABLE"
        # the view is a view again, reading the snapshot's own tables
        assert kinds["answered_calls"] == "VIEW"
        foreign = db.execute(
            "select view_name from duckdb_views() where not internal "
            "and (sql like '%source_db%' or sql like '%snapshot.%')"
        ).fetchall()
        assert foreign == []
    # Written in the v1.0.0 storage format (DuckDB 1.0+ can open it): byte 8 holds "DUCK",
    # then the storage version number (64 for v1.0.0).
    header = snapshot.read_bytes()[8:16]
    assert header[:4] == b"DUCK" and int.from_bytes(header[4:], "little") == 64
    parquet = {path.stem: path for path in (target / "parquet").glob("*.parquet")}
    assert set(MARTS) <= set(parquet) and "stg_voipstudio__cdrs" in parquet
    for name, path in parquet.items():
        rows = duckdb.execute(f"select count(*) from '{path}'").fetchone()
        assert rows is not None and rows[0] == result.rows[name], name
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["rows"] == result.rows and manifest["snapshot"] == "calls.duckdb"
    assert manifest["last_load_at"] and manifest["published_at"]
    # one account configured the simple way: every row is account "default"'s
    assert list(manifest["accounts"]) == ["default"]
    assert manifest["accounts"]["default"]["fct_calls"] == result.rows["fct_calls"]
    assert not [p for p in target.rglob("*") if p.name.startswith(".")]  # no leftovers


def test_a_reader_of_the_copy_never_blocks_the_next_publish(live: Path, tmp_path: Path) -> None:
    target = tmp_path / "published"
    settings = PublishSettings(directory=target)
    publish(live, "voipstudio", settings)
    before = counts(target / "calls.duckdb", ["fct_calls"])["fct_calls"]
    with holding(target / "calls.duckdb", read_only=True) as bi_tool:
        assert ask(bi_tool) == before
        # new data arrives in the live database (as a sync would write it)...
        with duckdb.connect(str(live)) as db:
            db.execute("delete from voipstudio.fct_calls where call_key % 2 = 0")
        # ...and is published while the BI tool still holds the old copy open
        publish(live, "voipstudio", settings)
        after = counts(target / "calls.duckdb", ["fct_calls"])["fct_calls"]
        assert 0 < after < before
        assert ask(bi_tool) == before  # undisturbed: it reads the copy it opened
    # The Parquet recipe (Metabase's in-memory database with views over the files): a view
    # re-reads its file on each query, so it sees every publish without reconnecting.
    memory = duckdb.connect()
    parquet = target / "parquet" / "fct_calls.parquet"
    memory.execute(f"create view fct_calls as select * from '{parquet}'")
    assert memory.execute("select count(*) from fct_calls").fetchone() == (after,)
    with duckdb.connect(str(live)) as db:
        db.execute("delete from voipstudio.fct_calls where call_key % 3 = 0")
    publish(live, "voipstudio", settings)
    newest = counts(live, ["fct_calls"])["fct_calls"]
    assert newest < after
    assert memory.execute("select count(*) from fct_calls").fetchone() == (newest,)


def test_duckdb_single_writer_rule(live: Path) -> None:
    """What docs/bi.md says: a reader in another process blocks a writer, a writer blocks
    every reader; readers share."""
    with holding(live, read_only=True) as bi_tool:
        with pytest.raises(duckdb.IOException, match="Could not set lock"):
            duckdb.connect(str(live))  # the sync cannot write
        with duckdb.connect(str(live), read_only=True) as other_reader:
            assert other_reader.execute("select 1").fetchone() == (1,)
        assert ask(bi_tool) > 0
    with (
        holding(live, read_only=False),
        pytest.raises(duckdb.IOException, match="Could not set lock"),
    ):
        duckdb.connect(str(live), read_only=True)  # nobody reads while the sync writes
    # Publishing reads the live file: it cannot run while a sync writes it.
    with holding(live, read_only=False), pytest.raises(PublishError, match="lock"):
        publish(live, "voipstudio", PublishSettings(directory=live.parent / "published"))
    assert not list((live.parent / "published").glob(".*"))  # nothing half-written left


def test_read_only_connections_as_bi_drivers_open_them(live: Path, tmp_path: Path) -> None:
    """Superset's ``duckdb:///...?access_mode=read_only`` (duckdb-engine hands the query string
    to DuckDB as configuration) and Metabase's read-only toggle both come down to these."""
    target = tmp_path / "published"
    publish(live, "voipstudio", PublishSettings(directory=target))
    snapshot = str(target / "calls.duckdb")
    with (
        duckdb.connect(snapshot, config={"access_mode": "read_only"}) as superset,
        holding(target / "calls.duckdb", read_only=True) as metabase,
    ):
        assert superset.execute("select count(*) from voipstudio.agg_calls_daily").fetchone()
        assert ask(metabase) > 0
        with pytest.raises(duckdb.Error, match="read-only"):
            superset.execute("create table voipstudio.scratch (x int)")
        # and the next publish still goes through
        publish(live, "voipstudio", PublishSettings(directory=target))


def sql_examples() -> list[str]:
    """The ``sql`` blocks of docs/bi.md's "Example queries" section."""
    text = (REPO / "docs" / "bi.md").read_text(encoding="utf-8")
    section = text.split("## Example queries", 1)[1]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def test_every_example_query_of_the_docs_runs_on_the_copy(live: Path, tmp_path: Path) -> None:
    examples = sql_examples()
    assert len(examples) >= 5
    target = tmp_path / "published"
    publish(live, "voipstudio", PublishSettings(directory=target))
    with duckdb.connect(str(target / "calls.duckdb"), config={"access_mode": "read_only"}) as db:
        for sql in examples:
            rows = db.execute(sql).fetchall()
            assert rows, sql


def test_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_publish_settings() == PublishSettings()
    monkeypatch.setenv("PUBLISH__AFTER_SYNC", "true")
    monkeypatch.setenv("PUBLISH__PARQUET", "false")
    monkeypatch.setenv("PUBLISH__DIRECTORY", "/srv/bi/calls")
    monkeypatch.setenv("PUBLISH__STORAGE_VERSION", "latest")
    assert load_publish_settings() == PublishSettings(
        after_sync=True, directory="/srv/bi/calls", parquet=False, storage_version="latest"
    )
    assert load_publish_settings("elsewhere").path == Path("elsewhere")
    monkeypatch.setenv("PUBLISH__AFTER_SYNC", "sometimes")
    with pytest.raises(ConfigError, match=r"\[publish\] after_sync \(PUBLISH__AFTER_SYNC\)"):
        load_publish_settings()
    monkeypatch.setenv("PUBLISH__AFTER_SYNC", "no")
    monkeypatch.setenv("PUBLISH__STORAGE_VERSION", "1.0")
    with pytest.raises(ConfigError, match="storage_version"):
        load_publish_settings()


def test_nothing_to_publish(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no database at"):
        publish(tmp_path / "missing.duckdb", "voipstudio", PublishSettings(directory=tmp_path))
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(ConfigError, match="has no dataset 'voipstudio'"):
        publish(empty, "voipstudio", PublishSettings(directory=tmp_path / "published"))
    with pytest.raises(ConfigError, match="must not be the database's own folder"):
        publish(empty, "voipstudio", PublishSettings(directory=tmp_path))
