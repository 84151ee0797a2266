"""What `voipstudio` prints, as a person or a scheduler sees it (separate processes): log levels
from the configuration, -v, -q and --version, the progress display on a terminal and progress
lines in a log, a closed pipe, summaries without `None`, an account's error said once, and the
DuckDB file relative to where the command runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
from sync_harness import DATASET, Harness
from terminal import run_on_terminal

from pipelines.emulator.config import DEFAULT_API_KEY
from pipelines.emulator.server import EmulatorServer

REPO = Path(__file__).resolve().parents[2]
VOIPSTUDIO = str(Path(sys.executable).parent / "voipstudio")


def environment(harness: Harness, **env: str) -> dict[str, str]:
    merged = {**os.environ, **harness.env, **env}
    merged.pop("RUNTIME__LOG_LEVEL", None)
    merged.update({k: v for k, v in env.items() if k == "RUNTIME__LOG_LEVEL"})
    return merged


def voipstudio(
    harness: Harness, *args: str, cwd: Path = REPO, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VOIPSTUDIO, *args],
        cwd=cwd,
        env=environment(harness, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def log_lines(stderr: str, level: str) -> list[str]:
    return [line for line in stderr.splitlines() if f" {level} " in line]


def test_version() -> None:
    result = subprocess.run([VOIPSTUDIO, "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert re.fullmatch(
        r"voipstudio \d+\.\d+\.\d+\S* \(dlt \S+, duckdb \S+, Python 3\.\d+\.\d+\)\n", result.stdout
    )


def test_log_level_is_honoured_for_every_message(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    default = voipstudio(harness, "sync", "--no-models")
    assert default.returncode == 0, default.stderr
    # Not configured: this project's INFO lines (progress included), not dlt's internals.
    assert any("read cdrs: 3,000 CDRs in" in line for line in log_lines(default.stderr, "INFO"))
    assert "|dlt|" not in default.stderr
    assert not log_lines(default.stderr, "DEBUG")

    quiet = voipstudio(harness, "sync", "--no-models", RUNTIME__LOG_LEVEL="ERROR")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert "sync done" in quiet.stdout  # results are not log messages

    loud = voipstudio(harness, "sync", "--no-models", RUNTIME__LOG_LEVEL="INFO")
    assert "|dlt|" in loud.stderr  # dlt's own INFO lines: one level for every message

    bad = voipstudio(harness, "status", RUNTIME__LOG_LEVEL="LOUD")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "RUNTIME__LOG_LEVEL" in bad.stderr and "LOUD" in bad.stderr


def test_log_level_from_the_config_file(duckdb_harness: Harness, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt" / "config.toml").write_text('[runtime]\nlog_level = "WARNING"\n')
    duckdb_harness.configure(faults=[{"kind": "503", "nth": [2], "path": "/cdrs"}])
    result = voipstudio(duckdb_harness, "sync", "--no-models", cwd=project)
    assert result.returncode == 0, result.stderr
    assert not log_lines(result.stderr, "INFO")
    [warning] = log_lines(result.stderr, "WARNING")
    assert "HTTP 503" in warning and "retry 1/" in warning


def test_verbose_logs_each_request_and_no_secret(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    result = voipstudio(harness, "-v", "sync", "--resources", "cdrs", "--no-models")
    assert result.returncode == 0, result.stderr
    requests = [line for line in log_lines(result.stderr, "DEBUG") if "GET /cdrs" in line]
    # Counting requests (limit=1) and pages, each with its filter, sort and answer.
    assert any("limit=1 " in line for line in requests)
    page = next(line for line in requests if "limit=100 " in line)
    assert re.search(r'filter=\[\{"property":"calldate","operator":"gt","value":"[^"]+"\}', page)
    assert "sort=id dir=ASC -> HTTP 200 in" in page
    assert DEFAULT_API_KEY not in result.stderr + result.stdout
    # Not the connection noise of the HTTP library.
    assert "connect_tcp" not in result.stderr and "HTTP Request:" not in result.stderr
    after = voipstudio(harness, "sync", "--resources", "cdrs", "--no-models", "-v")
    assert log_lines(after.stderr, "DEBUG"), "-v after the command works too"


def test_quiet_prints_results_and_problems_only(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    result = voipstudio(harness, "-q", "sync")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "sync done" in result.stdout and "models built" in result.stdout
    harness.configure(faults=[{"kind": "503", "nth": [1], "path": "/cdrs"}])
    warned = voipstudio(harness, "-q", "sync", "--no-models")
    assert len(log_lines(warned.stderr, "WARNING")) == 1, warned.stderr
    harness.configure(faults=[{"kind": "503", "nth": [1], "path": "/cdrs"}])
    silent = voipstudio(harness, "-qq", "sync", "--no-models")
    assert silent.returncode == 0 and silent.stderr == ""


def test_a_closed_pipe_ends_nothing(duckdb_harness: Harness) -> None:
    """`voipstudio ... | head`: the reader leaves before the output is written."""
    harness = duckdb_harness

    def piped(command: str) -> tuple[int, str]:
        # `true` exits at once without reading: every write of voipstudio meets a closed pipe.
        shell = f'{VOIPSTUDIO} {command} | true; echo "exit=${{PIPESTATUS[0]}}" >&2'
        result = subprocess.run(
            ["bash", "-c", shell],
            cwd=REPO,
            env=environment(harness),
            capture_output=True,
            text=True,
            timeout=300,
        )
        code = int(re.findall(r"exit=(\d+)", result.stderr)[-1])
        return code, result.stderr

    code, stderr = piped("-q sync")
    assert code == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    # It finished its work: the models were built after the summary could not be printed.
    with duckdb.connect(str(harness.db_path), read_only=True) as db:
        assert db.execute(f"select count(*) from {DATASET}.fct_calls").fetchone()[0] > 0
    code, stderr = piped("status")
    assert code == 0 and "Traceback" not in stderr and "Exception ignored" not in stderr
    time.sleep(1.2)
    code, stderr = piped("status --max-age 1s")
    assert code == 8, stderr  # the command's own exit code
    code, stderr = piped("--help")
    assert code == 0 and "Traceback" not in stderr


def test_progress_lines_in_a_log(duckdb_harness: Harness) -> None:
    result = voipstudio(duckdb_harness, "sync")
    assert result.returncode == 0, result.stderr
    info = [line.split(" INFO ", 1)[1] for line in log_lines(result.stderr, "INFO")]
    assert any(re.fullmatch(r"read cdrs: 3,000 CDRs in \d+\.\d s.*", line) for line in info)
    assert any(re.fullmatch(r"read users: 12 users in \d+\.\d s", line) for line in info)
    assert any(re.fullmatch(r"load duckdb: \d+ jobs in \d+\.\d s", line) for line in info)
    assert "models: building the reporting models" in info
    # No terminal: no control sequences in the log.
    assert "\x1b[" not in result.stderr


def test_progress_display_on_a_terminal(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.configure(latency={"per_request_ms": 20})
    run = run_on_terminal(
        [VOIPSTUDIO, "sync"], env=environment(harness, TERM="xterm-256color"), cwd=REPO
    )
    assert run.returncode == 0, run.output
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run.output)  # colours and cursor moves
    for row in (
        r"✓ read\s+cdrs\s+━+ 100% 3,000/3,000 CDRs",
        r"✓ read\s+users\s+━+ 100% 12/12 users",
        r"✓ load\s+duckdb\s+━+ 100% \d+/\d+ jobs",
        r"✓ models\s+━+ 100%",
        r"plan\s+cdrs",  # counting the range before the total is known
    ):
        assert re.search(row, text), (row, text[-3000:])
    assert "sync done" in text and "models built" in text
    assert "Traceback" not in text


def test_summaries_say_nothing_that_does_not_apply(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    users = voipstudio(harness, "sync", "--resources", "users", "--no-models")
    assert users.returncode == 0, users.stderr
    assert "cursor" not in users.stdout and "CDRs" not in users.stdout
    assert "12 users" in users.stdout and str(harness.db_path) in users.stdout
    backfill = voipstudio(
        harness, "sync", "--start", "2026-02-25", "--end", "2026-02-26", "--no-models"
    )
    assert "None" not in backfill.stdout
    assert "no cursor yet (a backfill)" in backfill.stdout
    assert voipstudio(harness, "sync", "--no-models").returncode == 0
    again = voipstudio(
        harness, "sync", "--start", "2026-02-25", "--end", "2026-02-26", "--no-models"
    )
    assert re.search(r"cursor left at 2026-\d\d-\d\d \d\d:\d\d:\d\d \(a backfill\)", again.stdout)
    status = voipstudio(harness, "status")
    rows = [line for line in status.stdout.splitlines() if line.startswith("rows ")]
    assert "rows cdrs_rejects: 0" in rows
    # The counts line up in one column.
    assert len({line.index(line.split()[-1]) for line in rows}) == 1, rows
    assert f"data:            {harness.db_path}, dataset {DATASET}" in status.stdout
    time.sleep(1.2)
    stale = voipstudio(harness, "status", "--max-age", "1s")
    assert stale.returncode == 8
    assert re.search(r"STALE: last successful sync \d+ s ago; allowed: 1s", stale.stderr)
    assert "0.0 h" not in stale.stderr and "longest ago" not in stale.stderr


def test_a_failed_account_is_logged_once(make_harness: Any) -> None:
    harness: Harness = make_harness()
    with EmulatorServer(harness.server.emulator.config) as other:
        harness.use_accounts({"acme": harness.server, "beta": other})
        harness.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__BETA__API_KEY", "refused-key")
        result = voipstudio(harness, "sync", "--no-models")
    assert result.returncode == 3
    [logged] = [line for line in log_lines(result.stderr, "ERROR") if "'beta'" in line]
    assert "refused the API key" in logged
    [final] = [line for line in result.stderr.splitlines() if line.startswith("voipstudio: error")]
    assert "account 'beta' failed" in final
    assert "account beta: 0 CDRs (+0); FAILED (the error is below)" in result.stdout
    assert "account acme: 3,000 CDRs (+3,000); cursor 20" in result.stdout
    assert "None" not in result.stdout


def test_a_relative_duckdb_path_is_relative_to_where_voipstudio_runs(
    duckdb_harness: Harness, tmp_path: Path
) -> None:
    """Two project folders, one dlt folder: each writes its own file (dlt alone would resolve
    the second folder's relative path against the first's)."""
    harness = duckdb_harness
    harness.delenv("DESTINATION__DUCKDB__CREDENTIALS")
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        result = voipstudio(harness, "sync", "--no-models", cwd=folder)
        assert result.returncode == 0, result.stderr
        database = folder / "data" / "calls.duckdb"
        assert f"into {database}, dataset {DATASET}" in result.stdout
        with duckdb.connect(str(database), read_only=True) as db:
            assert db.execute(f"select count(*) from {DATASET}.cdrs").fetchone() == (3000,)
    named = voipstudio(
        harness, "sync", "--no-models", cwd=second, DESTINATION__DUCKDB__CREDENTIALS="mine.duckdb"
    )
    assert named.returncode == 0, named.stderr
    assert (second / "mine.duckdb").is_file() and not (first / "mine.duckdb").exists()
