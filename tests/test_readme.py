"""Every command the README shows runs as written after the quick start.

The README's `sh` blocks, the commands of its "Command line" table and the commands its text
writes out in full (`.venv/bin/...`) run, in the order they appear, in a project folder laid out
as `make setup` leaves it (its `.venv` is this checkout's), with an emulator standing in for the
account and the settings a user would export (`SOURCES__VOIPSTUDIO__API_KEY`, the base URL, the
password `token create` would ask for). Commands that cannot run here say why (`SKIPPED`); a
skipped command the README no longer shows fails the test, so the list cannot go stale.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from project_folder import make_project_folder

from pipelines.emulator.config import DEFAULT_API_KEY, EmulatorConfig
from pipelines.emulator.server import EmulatorServer

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
# Commands (by a piece of their text) that are run elsewhere, or cannot run here.
SKIPPED = {
    "make demo": "the demo runs installed in tests/test_packaging.py, and in make demo",
    "make test": "what CI runs (.ci/run)",
    "uv tool install": "tests/test_packaging.py installs the built wheel the same way",
    "pipelines.benchmark --quick": "a minute of benchmark; tests/benchmark runs a smaller one",
    "voipstudio demo": "tests/test_packaging.py runs the demo installed",
}
# Table rows that are a syntax, not a command: placeholders in capitals or [optional parts].
SYNTAX = re.compile(r"\[|\b[A-Z]+\b|\.\.\.")
EMULATOR_PORT = 8787  # the README's emulator block serves on the default port


def sh_blocks() -> list[list[str]]:
    """The README's ```sh blocks, each a list of commands (continuation lines joined)."""
    blocks = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL):
        commands: list[str] = []
        pending = ""
        for line in block.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            command = (pending + line).strip()
            pending = ""
            if command and not command.startswith("#"):
                commands.append(command)
        blocks.append(commands)
    return blocks


def table_commands() -> list[str]:
    """The runnable commands of the "Command line" table."""
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(voipstudio[^`]*)` \|", section, flags=re.MULTILINE)
    return [row for row in rows if not SYNTAX.search(row.replace("voipstudio-emulator", ""))]


def prose_commands() -> list[str]:
    """Commands written out in the text (outside code blocks) with their path."""
    prose = re.sub(r"```.*?```", "", README, flags=re.DOTALL)
    found = re.findall(r"`(\.venv/bin/[^`]+)`", prose)
    return [command for command in found if not command.endswith("...") and " " in command]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The project folder after the quick start, and the environment of the user's shell."""
    folder = make_project_folder(tmp_path / "voipstudio-pipeline")
    config = EmulatorConfig(seed=5, users=10, queues=2, days=5, email="you@example.com")
    with EmulatorServer(config) as server:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SOURCES__", "DESTINATION__", "PIPELINES__", "RUNTIME__"))
            and key not in ("VIRTUAL_ENV", "PYTHONPATH")
        }
        home = tmp_path / "home"
        home.mkdir()
        env.update(
            {
                "HOME": str(home),
                # The tests run as root, whose dlt folder (/var/dlt) other runs share.
                "DLT_DATA_DIR": str(tmp_path / "dlt"),
                "SOURCES__VOIPSTUDIO__BASE_URL": server.base_url,
                "SOURCES__VOIPSTUDIO__API_KEY": DEFAULT_API_KEY,
                "SOURCES__VOIPSTUDIO__PASSWORD": config.password,
                # The single account carries the name the README's examples use.
                "SOURCES__VOIPSTUDIO__ACCOUNT": "acme",
            }
        )
        yield folder, env


def run_script(commands: list[str], folder: Path, env: dict[str, str]) -> None:
    script = "set -e\n" + "\n".join(commands) + "\n"
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    shown = f"{script}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    assert result.returncode == 0, shown
    assert "Traceback" not in result.stderr, shown


def test_every_readme_command_runs_as_written(project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    used: set[str] = set()
    ran = 0

    def runnable(command: str) -> bool:
        for piece in SKIPPED:
            if piece in command:
                used.add(piece)
                return False
        return True

    for block in sh_blocks():
        commands = [command for command in block if runnable(command)]
        if not commands:
            continue
        if any("voipstudio-emulator" in c for c in commands) and not port_is_free(EMULATOR_PORT):
            # Someone's emulator serves on the README's port: the block as written cannot run.
            continue
        run_script(commands, folder, env)
        ran += len(commands)
    for row in table_commands():
        if runnable(row):
            run_script([f".venv/bin/{row}"], folder, env)
            ran += 1
    for command in prose_commands():
        if runnable(command):
            run_script([command], folder, env)
            ran += 1
    assert used == set(SKIPPED), f"no longer in the README: {set(SKIPPED) - used}"
    assert ran >= 15, ran
    # What the commands left: a synced database, the models, the reports.
    assert (folder / "data" / "calls.duckdb").is_file()
    assert (folder / ".dlt" / "secrets.toml").is_file()
    for report in ("data/report.html", "january.html", "acme.html"):
        assert (folder / report).is_file(), report
