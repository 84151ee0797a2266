"""The scheduling examples in docs/scheduling parse, and run the commands the README documents
(the frequent sync, the nightly reconcile) with the exit codes the CLI really uses."""

from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

import yaml

from pipelines.voipstudio.errors import LockedError, ReconcileRefusedError

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "docs" / "scheduling"
SYNC = re.compile(r"\.venv/bin/voipstudio sync\b")
RECONCILE = re.compile(r"\.venv/bin/voipstudio reconcile\b")


def test_readme_documents_the_same_command() -> None:
    readme = (REPO / "README.md").read_text()
    for path in FOLDER.iterdir():  # every example is linked
        assert f"(docs/scheduling/{path.name})" in readme, path.name
    # the README's cron line is the example's
    [block] = re.findall(r"```cron\n(.*?)```", readme, flags=re.DOTALL)
    crontab = (FOLDER / "crontab").read_text().splitlines()
    lines = block.splitlines()
    for line in lines:
        assert (SYNC.search(line) or RECONCILE.search(line)) and line in crontab, line
    assert any(RECONCILE.search(line) for line in lines), "the README shows the nightly reconcile"
    assert "voipstudio reconcile" in readme and f"exits {ReconcileRefusedError.exit_code}" in readme


def test_github_actions_workflow_parses_and_syncs() -> None:
    workflow = yaml.safe_load((FOLDER / "github-actions-sync.yml").read_text())
    # YAML 1.1 reads the key `on` as True.
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["schedule"][0]["cron"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    steps = workflow["jobs"]["sync"]["steps"]
    runs = [step.get("run", "") for step in steps]
    assert "make setup" in runs
    sync = next(step for step in steps if SYNC.search(step.get("run", "")))
    assert "SOURCES__VOIPSTUDIO__API_KEY" in sync["env"]
    assert any("status --max-age" in run for run in runs)
    # The nightly schedule also reconciles, after the sync, with the same secret.
    nightly = [entry["cron"] for entry in triggers["schedule"] if entry["cron"].startswith("35 3")]
    assert nightly == ["35 3 * * *"]
    reconcile = next(step for step in steps if RECONCILE.search(step.get("run", "")))
    assert reconcile["if"] == f"github.event.schedule == '{nightly[0]}'"
    assert reconcile["env"] == sync["env"]
    assert steps.index(reconcile) > steps.index(sync)


def test_airflow_dag_parses_and_syncs() -> None:
    tree = ast.parse((FOLDER / "airflow_voipstudio_dag.py").read_text())
    operators = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "BashOperator"
    ]
    commands = [
        ast.unparse(kw.value) for op in operators for kw in op.keywords if kw.arg == "bash_command"
    ]
    assert any(SYNC.search(command) for command in commands), commands
    assert any(RECONCILE.search(command) for command in commands), commands
    dags = [
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DAG"
        for kw in node.keywords
        if kw.arg == "dag_id" and isinstance(kw.value, ast.Constant)
    ]
    assert dags == ["voipstudio_sync", "voipstudio_reconcile"]
    skip = [
        kw.value.value
        for op in operators
        for kw in op.keywords
        if kw.arg == "skip_on_exit_code" and isinstance(kw.value, ast.Constant)
    ]
    assert skip == [LockedError.exit_code] * 2


def test_systemd_units_parse_and_sync() -> None:
    service = configparser.ConfigParser(strict=False)
    service.read_string((FOLDER / "voipstudio-sync.service").read_text())
    assert SYNC.search(service["Service"]["ExecStart"])
    assert service["Service"]["SuccessExitStatus"] == str(LockedError.exit_code)
    timer = configparser.ConfigParser(strict=False)
    timer.read_string((FOLDER / "voipstudio-sync.timer").read_text())
    assert timer["Timer"]["OnCalendar"]
    reconcile = configparser.ConfigParser(strict=False)
    reconcile.read_string((FOLDER / "voipstudio-reconcile.service").read_text())
    assert RECONCILE.search(reconcile["Service"]["ExecStart"])
    assert reconcile["Service"]["SuccessExitStatus"] == str(LockedError.exit_code)
    nightly = configparser.ConfigParser(strict=False)
    nightly.read_string((FOLDER / "voipstudio-reconcile.timer").read_text())
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:00", nightly["Timer"]["OnCalendar"])


def test_crontab_lines_are_valid() -> None:
    lines = [
        line
        for line in (FOLDER / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert any(SYNC.search(line) for line in lines)
    [reconcile] = [line for line in lines if RECONCILE.search(line)]
    assert reconcile.split()[2:5] == ["*", "*", "*"], "once a day"
    assert f"|| [ $? -eq {LockedError.exit_code} ] ||" in reconcile, "75 is a skip, not a failure"
    for line in lines:
        fields = line.split(None, 5)
        assert len(fields) == 6, line
        for field in fields[:5]:
            assert re.fullmatch(r"[\d*/,\-]+", field), (field, line)
