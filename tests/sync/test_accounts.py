"""Many accounts in one configuration: every account loaded in one sync into the same tables,
each row carrying its account, each account with its own cursor; one failing account neither
holds back nor corrupts the others, and its error names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from pipeline_harness import edited_sql
from sync_harness import Harness, assert_cdrs_equal, small_config

from pipelines.cli import main
from pipelines.emulator.config import DEFAULT_API_KEY
from pipelines.emulator.server import EmulatorServer
from pipelines.sync import read_cursor
from pipelines.voipstudio.errors import AccountsFailedError, ConfigError
from pipelines.voipstudio.state import resource_states

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def beta_server() -> Iterator[EmulatorServer]:
    """A second company: other data, but the same id ranges as the first one's."""
    with EmulatorServer(small_config(seed=12, rows=2000, users=7, queues=2)) as server:
        yield server


@pytest.fixture
def two(harness: Harness, beta_server: EmulatorServer) -> Harness:
    """Accounts acme (the harness's emulator) and beta, on DuckDB and on PostgreSQL."""
    harness.add_account("acme", harness.server)
    harness.add_account("beta", beta_server)
    return harness


@pytest.fixture
def two_duckdb(duckdb_harness: Harness, beta_server: EmulatorServer) -> Harness:
    """Accounts acme and beta on DuckDB only."""
    duckdb_harness.add_account("acme", duckdb_harness.server)
    duckdb_harness.add_account("beta", beta_server)
    return duckdb_harness


def admin(server: EmulatorServer) -> httpx.Client:
    """The emulator's admin API."""
    return httpx.Client(base_url=server.url + "/_emulator", timeout=30)


def beta_cdrs(beta_server: EmulatorServer) -> list[dict[str, Any]]:
    """Every CDR of the second company, as served."""
    return admin(beta_server).get("/cdrs").json()["data"]  # type: ignore[no-any-return]


def test_two_accounts_load_in_one_sync(two: Harness, beta_server: EmulatorServer) -> None:
    acme, beta = two.emulator_cdrs(), beta_cdrs(beta_server)
    # Ids that collide across accounts are what makes (account, id) the key.
    assert {r["id"] for r in acme} & {r["id"] for r in beta}
    summary = two.sync()
    assert sorted(summary.accounts) == ["acme", "beta"]
    assert summary.loads == 1
    assert_cdrs_equal(two, acme, account="acme")
    assert_cdrs_equal(two, beta, account="beta")
    assert {row["account"] for row in two.loaded()} == {"acme", "beta"}
    users = two.loaded("users")
    assert sum(row["account"] == "acme" for row in users) == 12
    assert sum(row["account"] == "beta" for row in users) == 7
    queues = two.loaded("queues")
    assert sorted(row["account"] for row in queues) == ["acme"] * 3 + ["beta"] * 2
    pipeline = two.pipeline()
    assert read_cursor(pipeline, "acme") is not None
    assert read_cursor(pipeline, "beta") is not None
    assert summary.accounts["acme"].cdrs_after == len(acme)
    assert summary.accounts["beta"].cdrs_after == len(beta)

    # Nothing new: nothing changes, nothing is doubled (the dimensions neither).
    again = two.sync()
    assert again.cdrs_new == 0
    assert_cdrs_equal(two, acme, account="acme")
    assert_cdrs_equal(two, beta, account="beta")
    assert len(two.loaded("users")) == 19


def test_a_failing_account_holds_back_no_other(two: Harness, beta_server: EmulatorServer) -> None:
    two.sync()
    beta_before = [row for row in two.loaded() if row["account"] == "beta"]
    beta_users = [row for row in two.loaded("users") if row["account"] == "beta"]
    beta_cursor = read_cursor(two.pipeline(), "beta")
    for server in (two.server, beta_server):
        admin(server).post("/cdrs", json={"generate": {"count": 30, "late_fraction": 0.0}})
    # beta's key stops working: acme's new calls must still load.
    two.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__API_KEY", "revoked-key")
    with pytest.raises(AccountsFailedError) as failed:
        two.sync()
    error = failed.value
    assert error.exit_code == 3  # the exit code of an authentication failure
    assert list(error.failures) == ["beta"]
    assert "account 'beta' failed" in str(error)
    assert "SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__API_KEY" in str(error)
    assert "revoked-key" not in str(error)
    summary = error.summary
    assert summary.accounts["acme"].cdrs_after - summary.accounts["acme"].cdrs_before == 30
    assert summary.accounts["beta"].error
    assert_cdrs_equal(two, two.emulator_cdrs(), account="acme")
    # beta's rows, users and cursor are exactly as they were.
    assert [row for row in two.loaded() if row["account"] == "beta"] == beta_before
    assert [row for row in two.loaded("users") if row["account"] == "beta"] == beta_users
    assert read_cursor(two.pipeline(), "beta") == beta_cursor
    assert resource_states(two.pipeline())["users_beta"]["error"]["exit_code"] == 3

    # The key is fixed: beta catches up, nothing doubled, the error is gone.
    two.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__API_KEY", DEFAULT_API_KEY)
    two.sync()
    assert_cdrs_equal(two, beta_cdrs(beta_server), account="beta")
    assert_cdrs_equal(two, two.emulator_cdrs(), account="acme")
    assert "error" not in resource_states(two.pipeline())["cdrs_beta"]


def test_an_account_failing_half_way_keeps_what_it_read(
    two_duckdb: Harness, beta_server: EmulatorServer
) -> None:
    two = two_duckdb
    # beta's /cdrs fails for good after a few pages (2 attempts per request for beta only).
    two.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__MAX_ATTEMPTS", "2")
    beta_admin = admin(beta_server)
    fault = {"kind": "503", "path": "/cdrs", "nth": list(range(9, 1000))}
    assert beta_admin.patch("/config", json={"faults": [fault]}).status_code == 200
    with pytest.raises(AccountsFailedError) as failed:
        two.sync()
    assert failed.value.exit_code == 4
    assert_cdrs_equal(two, two.emulator_cdrs(), account="acme")
    beta_admin.patch("/config", json={"faults": []})
    two.sync()
    assert_cdrs_equal(two, beta_cdrs(beta_server), account="beta")


def test_accounts_commit_in_parts(two_duckdb: Harness, beta_server: EmulatorServer) -> None:
    summary = two_duckdb.sync(commit_every_rows=700)
    assert summary.loads > 1
    assert_cdrs_equal(two_duckdb, two_duckdb.emulator_cdrs(), account="acme")
    assert_cdrs_equal(two_duckdb, beta_cdrs(beta_server), account="beta")
    states = resource_states(two_duckdb.pipeline())
    assert not states["cdrs_acme"].get("more")
    assert not states["cdrs_beta"].get("more")


def test_an_account_keeps_its_own_settings(
    two_duckdb: Harness, beta_server: EmulatorServer
) -> None:
    # beta starts later than the shared start_date of [sources.voipstudio].
    two_duckdb.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__START_DATE", "2026-02-27")
    two_duckdb.sync()
    beta_rows = [row for row in two_duckdb.loaded() if row["account"] == "beta"]
    expected = [r for r in beta_cdrs(beta_server) if r["calldate"] > "2026-02-27 00:00:00"]
    assert len(beta_rows) == len(expected) > 0
    assert_cdrs_equal(two_duckdb, two_duckdb.emulator_cdrs(), account="acme")


def test_only_some_accounts(two_duckdb: Harness, beta_server: EmulatorServer) -> None:
    summary = two_duckdb.sync(accounts=("beta",))
    assert list(summary.accounts) == ["beta"]
    assert {row["account"] for row in two_duckdb.loaded()} == {"beta"}
    with pytest.raises(ConfigError, match=r"unknown account.*gamma.*acme, beta"):
        two_duckdb.sync(accounts=("gamma",))
    with pytest.raises(ConfigError, match="--full-refresh"):
        two_duckdb.sync(accounts=("beta",), full_refresh=True)
    # What is loaded stays as it was after the refused commands.
    assert_cdrs_equal(two_duckdb, beta_cdrs(beta_server), account="beta")


def test_cli_names_the_failed_account_and_reports_the_others(
    two_duckdb: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    two_duckdb.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__API_KEY", "wrong-key")
    code = main(["sync", "--no-models"])
    out, err = capsys.readouterr()
    assert code == 3
    assert "account acme:" in out
    assert "account beta: " in out and "FAILED" in out
    assert "account 'beta' failed" in err
    assert "the other accounts were loaded (acme)" in err
    assert "wrong-key" not in out + err
    assert_cdrs_equal(two_duckdb, two_duckdb.emulator_cdrs(), account="acme")
    # Monitoring sees it: beta never synced, so the data is stale as a whole.
    assert main(["status", "--max-age", "1h", "--json"]) == 8
    status = json.loads(capsys.readouterr().out)
    assert status["stale"] is True
    assert "SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__API_KEY" in status["accounts"]["beta"]["error"]
    assert status["accounts"]["acme"]["error"] is None
    assert status["accounts"]["acme"]["cdrs"] == len(two_duckdb.emulator_cdrs())
    assert main(["sync", "--no-models", "--account", "acme"]) == 0
    two_duckdb.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__API_KEY", DEFAULT_API_KEY)
    assert main(["sync", "--no-models"]) == 0
    capsys.readouterr()
    assert main(["status", "--max-age", "1h"]) == 0
    out = capsys.readouterr().out
    assert "account beta: 2,000 CDRs" in out and "FAILED" not in out


def test_an_account_without_credentials_is_named(
    duckdb_harness: Harness, beta_server: EmulatorServer
) -> None:
    duckdb_harness.add_account("acme", duckdb_harness.server)
    duckdb_harness.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__BASE_URL", beta_server.base_url)
    with pytest.raises(ConfigError, match="SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__API_KEY"):
        duckdb_harness.sync()
    assert duckdb_harness.loaded() == []


@pytest.mark.parametrize("name", ["ACME-ES", "REJECTS", "9LIVES"])
def test_a_bad_account_name_is_refused(duckdb_harness: Harness, name: str) -> None:
    duckdb_harness.setenv(f"SOURCES__VOIPSTUDIO__ACCOUNTS__{name}__API_KEY", "k")
    with pytest.raises(ConfigError, match="lowercase letters, digits and underscores"):
        duckdb_harness.sync()


def test_the_single_account_can_be_named(duckdb_harness: Harness) -> None:
    duckdb_harness.setenv("SOURCES__VOIPSTUDIO__ACCOUNT", "headquarters")
    summary = duckdb_harness.sync()
    assert list(summary.accounts) == ["headquarters"]
    assert {row["account"] for row in duckdb_harness.loaded()} == {"headquarters"}
    assert {row["account"] for row in duckdb_harness.loaded("users")} == {"headquarters"}


def test_a_table_loaded_without_accounts_is_refused(duckdb_harness: Harness) -> None:
    # A table as an earlier version of the pipeline loaded it: no account column.
    duckdb_harness.sync()
    with duckdb.connect(str(duckdb_harness.db_path)) as db:
        db.execute("alter table voipstudio.cdrs drop column account")
    before = duckdb_harness.loaded()
    with pytest.raises(ConfigError, match="--full-refresh"):
        duckdb_harness.sync()
    assert duckdb_harness.loaded() == before
    # The fix the message names works.
    duckdb_harness.sync(full_refresh=True)
    assert_cdrs_equal(duckdb_harness, duckdb_harness.emulator_cdrs(), account="default")


def test_accounts_from_the_toml_files(
    duckdb_harness: Harness, beta_server: EmulatorServer, tmp_path: Path
) -> None:
    # The documented way: URLs and settings in config.toml, keys in secrets.toml, for one
    # account split across the two files; a separate process run from the project folder.
    project = tmp_path / "project"
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt" / "config.toml").write_text(
        "[sources.voipstudio]\n"
        'start_date = "2026-02-01"\npage_size = 100\nbackoff_base = 0.01\n'
        "[sources.voipstudio.accounts.acme]\n"
        f'base_url = "{duckdb_harness.server.base_url}"\n'
        "[sources.voipstudio.accounts.beta]\n"
        f'base_url = "{beta_server.base_url}"\n'
        'start_date = "2026-02-27"\n'
    )
    (project / ".dlt" / "secrets.toml").write_text(
        f'[sources.voipstudio.accounts.acme]\napi_key = "{DEFAULT_API_KEY}"\n'
        f'[sources.voipstudio.accounts.beta]\napi_key = "{DEFAULT_API_KEY}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "sync", "--no-models"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "account acme: 3,000 CDRs" in done.stdout
    assert_cdrs_equal(duckdb_harness, duckdb_harness.emulator_cdrs(), account="acme")
    expected = [r for r in beta_cdrs(beta_server) if r["calldate"] > "2026-02-27 00:00:00"]
    assert sum(row["account"] == "beta" for row in duckdb_harness.loaded()) == len(expected)


def test_a_failed_account_is_reported_when_the_models_fail_too(
    two_duckdb: Harness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = edited_sql(
        tmp_path / "sql", {"marts/fct_calls.sql": ("min(call_id) as call_id", "min(nothing)")}
    )
    monkeypatch.setattr("pipelines.models.runner.SQL_DIR", broken)
    two_duckdb.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__API_KEY", "wrong-key")
    assert main(["sync"]) == 6  # the models' error ends the command...
    err = capsys.readouterr().err
    assert "account 'beta' failed" in err  # ...and the account's is said as well
    assert_cdrs_equal(two_duckdb, two_duckdb.emulator_cdrs(), account="acme")
