"""The scheduling examples in docs/scheduling, run as their scheduler would run them: the cron
lines with cron's bare environment, the systemd service's command with its working directory
and environment files (and `systemd-analyze verify` where installed), the GitHub Actions steps
and the Airflow tasks' commands, each in a project folder laid out as `make setup` leaves it,
against the emulator: the frequent sync, the hourly freshness check and the nightly reconcile.
The README shows the same commands."""

from __future__ import annotations

import ast
import configparser
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest
import yaml
from project_folder import make_project_folder

from pipelines.emulator.server import EmulatorServer
from pipelines.sync import sync_lock
from pipelines.voipstudio.errors import LockedError, ReconcileRefusedError

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "docs" / "scheduling"
SYNC = re.compile(r"\.venv/bin/voipstudio sync\b")
RECONCILE = re.compile(r"\.venv/bin/voipstudio reconcile\b")
STATUS = re.compile(r"\.venv/bin/voipstudio status\b")
PROJECT = "/opt/voipstudio-pipeline"  # where the examples install the project


@pytest.fixture
def project(tmp_path: Path, emulator: EmulatorServer) -> Iterator[Path]:
    """A project folder as `make setup` leaves it (its .venv is this checkout's), with the
    account's settings in .dlt/secrets.toml, where a scheduled job finds them."""
    folder = make_project_folder(tmp_path / "voipstudio-pipeline")
    (folder / ".dlt" / "secrets.toml").write_text(
        "[sources.voipstudio]\n"
        f'api_key = "{emulator.emulator.config.api_key}"\n'
        f'base_url = "{emulator.base_url}"\n'
        'start_date = "2026-01-01"\n'
    )
    yield folder


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What cron, systemd or a CI runner start a job with: no VoIPstudio settings at all.

    The tests run as root, for whom dlt's working folder would be /var/dlt, shared with every
    other run on the machine: DLT_DATA_DIR points it at the test's own folder (a user's
    scheduled job gets ~/.dlt, the examples that run as a service user set DLT_DATA_DIR).
    """
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "LANG": "C.UTF-8"}
    env["DLT_DATA_DIR"] = str(tmp_path / "dlt")
    env.update(extra)
    return env


def shell(command: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def crontab_lines() -> list[str]:
    return [
        line
        for line in (FOLDER / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_readme_documents_the_same_command() -> None:
    readme = (REPO / "README.md").read_text()
    for path in FOLDER.iterdir():  # every example is linked
        assert f"(docs/scheduling/{path.name})" in readme, path.name
    # the README's cron line is the example's
    [block] = re.findall(r"```cron\n(.*?)```", readme, flags=re.DOTALL)
    lines = block.splitlines()
    for line in lines:
        assert (SYNC.search(line) or RECONCILE.search(line)) and line in crontab_lines(), line
    assert any(RECONCILE.search(line) for line in lines), "the README shows the nightly reconcile"
    assert f"exits {ReconcileRefusedError.exit_code}" in readme


def test_crontab_lines_are_valid() -> None:
    lines = crontab_lines()
    assert any(SYNC.search(line) for line in lines)
    for line in lines:
        fields = line.split(None, 5)
        assert len(fields) == 6, line
        for field in fields[:5]:
            assert re.fullmatch(r"[\d*/,\-]+", field), (field, line)
        assert "%" not in fields[5], "cron turns % into a newline"


def test_crontab_runs_with_crons_environment(project: Path, tmp_path: Path) -> None:
    """The lines as cron runs them (`/bin/sh -c`, a bare environment), logs/ not there yet; the
    freshness check mails only when the data is stale."""
    commands = [line.split(None, 5)[5] for line in crontab_lines()]
    [sync_line] = [line for line in commands if SYNC.search(line)]
    [status_line] = [line for line in commands if STATUS.search(line)]
    [reconcile_line] = [line for line in commands if RECONCILE.search(line)]
    mailbox = tmp_path / "mailbox"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_mail = bin_dir / "mail"
    fake_mail.write_text(f'#!/bin/sh\n{{ echo "subject: $2"; cat; }} >> {mailbox}\n')
    fake_mail.chmod(0o755)
    env = bare_env(tmp_path, PATH=f"{bin_dir}:/usr/bin:/bin")

    def run(line: str) -> subprocess.CompletedProcess[str]:
        return shell(line.replace(PROJECT, str(project)), cwd=tmp_path, env=env)

    # Nothing synced yet: stale, and mailed.
    assert not (project / "logs").exists()
    assert run(status_line).returncode == 0
    assert "STALE: no successful sync yet" in mailbox.read_text()
    mailbox.unlink()
    synced = run(sync_line)
    assert synced.returncode == 0, (project / "logs" / "sync.log").read_text()
    log = (project / "logs" / "sync.log").read_text()
    assert "sync done" in log and "models built" in log and "Traceback" not in log
    assert str(project / "data" / "calls.duckdb") in log
    # Fresh now: no mail, no false alarm.
    assert run(status_line).returncode == 0
    assert not mailbox.exists(), mailbox.read_text()
    assert "last success:" in (project / "logs" / "status.log").read_text()
    # The nightly reconcile, after the syncs: nothing to apply, nothing mailed.
    reconciled = run(reconcile_line)
    assert reconciled.returncode == 0, reconciled.stderr
    assert not mailbox.exists(), mailbox.read_text()
    log = (project / "logs" / "reconcile.log").read_text()
    summary = json.loads([line for line in log.splitlines() if line.startswith("{")][-1])
    assert summary["exit_code"] == 0, summary
    assert summary["accounts"]["default"]["days"], summary


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string((FOLDER / name).read_text())
    return unit


def test_systemd_units_run_the_sync_and_reconcile_as_a_user(project: Path, tmp_path: Path) -> None:
    units = {
        "voipstudio-sync.service": SYNC,
        "voipstudio-reconcile.service": RECONCILE,
    }
    for name, command in units.items():
        service = _unit(name)["Service"]
        assert command.search(service["ExecStart"]), name
        assert service["SuccessExitStatus"] == str(LockedError.exit_code), name
        assert service.get("User") not in (None, "", "root", "0"), name
    assert _unit("voipstudio-sync.timer")["Timer"]["OnCalendar"]
    nightly = _unit("voipstudio-reconcile.timer")["Timer"]["OnCalendar"]
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:00", nightly), nightly
    # As systemd would run them: the working directory, the environment file (the key), the
    # Environment= lines, the state directory systemd creates for the user.
    state = tmp_path / "var-lib"
    env_file = tmp_path / "voipstudio.env"
    secrets = project / ".dlt" / "secrets.toml"
    settings = dict(re.findall(r'^(\w+) = "(.*)"$', secrets.read_text(), flags=re.MULTILINE))
    secrets.unlink()  # the services have their key from the environment file
    env_file.write_text(
        "# test\n"
        f"SOURCES__VOIPSTUDIO__API_KEY={settings['api_key']}\n"
        f"SOURCES__VOIPSTUDIO__BASE_URL={settings['base_url']}\n"
        f"SOURCES__VOIPSTUDIO__START_DATE={settings['start_date']}\n"
    )

    def local(text: str) -> str:
        return (
            text.replace(PROJECT, str(project))
            .replace("/etc/voipstudio.env", str(env_file))
            .replace("/var/lib/", f"{state}/")
        )

    def run(name: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
        service = _unit(name)["Service"]
        (state / service["StateDirectory"]).mkdir(parents=True, exist_ok=True)
        env = bare_env(tmp_path)
        del env["DLT_DATA_DIR"]  # the unit sets it
        env.update(
            dict(line.split("=", 1) for line in local(service["Environment"]).split())
            if "Environment" in service
            else {}
        )
        for line in Path(local(service["EnvironmentFile"])).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key] = value
        result = subprocess.run(
            shlex.split(local(service["ExecStart"])),
            cwd=local(service["WorkingDirectory"]),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return result, env

    synced, env = run("voipstudio-sync.service")
    assert synced.returncode == 0, synced.stderr
    assert "sync done" in synced.stdout
    # dlt's state where the unit says, not in /var/dlt or ~/.dlt.
    assert (Path(env["DLT_DATA_DIR"]) / "pipelines" / "voipstudio" / "state.json").is_file()
    assert (project / "data" / "calls.duckdb").is_file()
    # The nightly reconcile finds the sync's state and data where the sync left them.
    reconciled, _ = run("voipstudio-reconcile.service")
    assert reconciled.returncode == 0, reconciled.stderr
    assert json.loads(reconciled.stdout)["accounts"]["default"]["days"]
    verify = shutil.which("systemd-analyze")
    if verify:  # its own checks too: keys, sections, an executable ExecStart
        folder = tmp_path / "units"
        folder.mkdir()
        for name in (*units, "voipstudio-sync.timer", "voipstudio-reconcile.timer"):
            (folder / name).write_text(local((FOLDER / name).read_text()))
        checked = subprocess.run(
            [verify, "verify", *(str(p) for p in sorted(folder.iterdir()))],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert checked.returncode == 0, checked.stderr


def test_github_actions_steps_run(project: Path, tmp_path: Path) -> None:
    workflow = yaml.safe_load((FOLDER / "github-actions-sync.yml").read_text())
    # YAML 1.1 reads the key `on` as True.
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["schedule"][0]["cron"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    job = workflow["jobs"]["sync"]
    steps = job["steps"]
    runs = [step.get("run", "") for step in steps]
    assert "make setup" in runs
    cached = {step["with"]["path"] for step in steps if "cache" in step.get("uses", "")}
    # The job's steps in order, after `make setup` (the project folder has its .venv), with the
    # secret as Actions would pass it.
    secrets = project / ".dlt" / "secrets.toml"
    settings = dict(re.findall(r'^(\w+) = "(.*)"$', secrets.read_text(), flags=re.MULTILINE))
    secrets.write_text(
        f'[sources.voipstudio]\nbase_url = "{settings["base_url"]}"\n'
        f'start_date = "{settings["start_date"]}"\n'
    )
    workspace = {"${{ github.workspace }}": str(project)}
    env = bare_env(tmp_path)
    for key, value in job.get("env", {}).items():
        for expression, replacement in workspace.items():
            value = value.replace(expression, replacement)
        env[key] = value
    reconciled = False
    for step in steps:
        command = step.get("run")
        if not command or command == "make setup":
            continue
        step_env = dict(env)
        for key, value in (step.get("env") or {}).items():
            step_env[key] = settings["api_key"] if "secrets." in value else value
        result = shell(command, cwd=project, env=step_env)
        assert result.returncode == 0, (command, result.stderr)
        if SYNC.search(command):
            assert "SOURCES__VOIPSTUDIO__API_KEY" in step["env"]
            assert "sync done" in result.stdout
        if RECONCILE.search(command):
            # Nightly only, after the sync, with the same secret.
            nightly = [
                e["cron"]
                for e in triggers["schedule"]
                if e["cron"] != triggers["schedule"][0]["cron"]
            ]
            assert step["if"] == f"github.event.schedule == '{nightly[0]}'"
            assert step["env"] == next(s for s in steps if SYNC.search(s.get("run", "")))["env"]
            assert json.loads(result.stdout)["exit_code"] == 0
            reconciled = True
    assert reconciled, "the workflow reconciles on its nightly schedule"
    # What the cache saves holds the data and dlt's state.
    assert cached == {"data"}
    assert (project / "data" / "calls.duckdb").is_file()
    assert (project / "data" / "dlt" / "pipelines" / "voipstudio" / "state.json").is_file()


def _airflow_commands() -> dict[str, dict[str, Any]]:
    """Each BashOperator's task_id -> its keywords (bash_command as source text)."""
    tree = ast.parse((FOLDER / "airflow_voipstudio_dag.py").read_text())
    tasks: dict[str, dict[str, Any]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "BashOperator":
            keywords = {kw.arg: kw.value for kw in node.keywords}
            task = ast.literal_eval(keywords["task_id"])
            tasks[task] = {
                "command": ast.unparse(keywords["bash_command"]),
                "skip": ast.literal_eval(keywords["skip_on_exit_code"])
                if "skip_on_exit_code" in keywords
                else None,
            }
    return tasks


def test_airflow_tasks_run_and_skip_when_locked(project: Path, tmp_path: Path) -> None:
    tasks = _airflow_commands()
    assert tasks["sync"]["skip"] == LockedError.exit_code
    assert tasks["reconcile"]["skip"] == LockedError.exit_code
    env = bare_env(tmp_path)

    def run(task: str) -> subprocess.CompletedProcess[str]:
        # The f-string with the DAG's PROJECT, as Airflow's BashOperator runs it (bash -c).
        command = ast.literal_eval(tasks[task]["command"].replace("{PROJECT}", str(project))[1:])
        assert SYNC.search(command) or task != "sync"
        return subprocess.run(
            ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=300
        )

    synced = run("sync")
    assert synced.returncode == 0, synced.stderr
    fresh = run("freshness")
    assert fresh.returncode == 0, fresh.stderr
    reconciled = run("reconcile")
    assert reconciled.returncode == 0, reconciled.stderr
    assert RECONCILE.search(tasks["reconcile"]["command"])
    # A run while another sync holds the lock ends with the code the DAG treats as a skip.
    holder = dlt.pipeline("voipstudio", pipelines_dir=str(Path(env["DLT_DATA_DIR"]) / "pipelines"))
    with sync_lock(holder):
        locked = run("sync")
    assert locked.returncode == tasks["sync"]["skip"], locked.stderr
    assert "another sync" in locked.stderr
