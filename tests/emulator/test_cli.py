"""The ``voipstudio-emulator`` console script, run as a real subprocess."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._support import HTTP

SCRIPT = Path(sys.executable).with_name("voipstudio-emulator")
STARTUP_DEADLINE_S = 60  # a bound on polling, not a speed assertion


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def run() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by a test; terminated (then killed) when it ends."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_script(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the script to its end, capturing its output."""
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def wait_until_serving(process: subprocess.Popen[str], url: str, key: str) -> httpx.Response:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while True:
        assert process.poll() is None, process.communicate()
        try:
            response = HTTP.get(url, headers={"X-Auth-Token": key}, params={"limit": 5})
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the emulator never started serving"
        time.sleep(0.1)


def test_script_is_installed() -> None:
    assert SCRIPT.exists(), f"{SCRIPT} missing: run `uv sync`"


def test_help() -> None:
    result = run_script("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: voipstudio-emulator")
    flags = ("--port", "--rows", "--start", "--end", "--config", "--now", "--no-admin")
    for flag in (*flags, "--page-cap", "--error-entries", "--user-api-key"):
        assert flag in result.stdout


def test_serves_cdrs_with_flags_over_a_config_file(
    tmp_path: Path, run: list[subprocess.Popen[str]]
) -> None:
    config = tmp_path / "emulator.json"
    config.write_text(json.dumps({"rows": 500, "api_key": "file-key", "seed": 3}))
    port = free_port()
    process = subprocess.Popen(
        [
            str(SCRIPT),
            "--port",
            str(port),
            "--config",
            str(config),
            "--rows",
            "1000",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-03",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run.append(process)
    base_url = f"http://127.0.0.1:{port}/v1.2/voipstudio"
    body = wait_until_serving(process, f"{base_url}/cdrs", "file-key").json()
    assert body["total"] == 1000  # the flag wins over the file
    assert len(body["data"]) == 5
    assert all("2026-01-01" <= r["calldate"] < "2026-01-03" for r in body["data"])
    assert HTTP.get(f"{base_url}/cdrs", headers={"X-Auth-Token": "demo-api-key"}).status_code == 401

    process.terminate()
    stdout, _ = process.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/v1.2/voipstudio" in stdout
    assert "file-key" in stdout  # the settings it runs with are printed
    assert "demo-password" not in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2026-01-05", "--end", "2026-01-01"], "must be before"),
        (["--rows", "many"], "invalid int value"),
        (["--page-cap", "0"], "page_cap must be an integer >= 1"),
        (["--error-entries", "xml"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    result = run_script("--port", str(free_port()), *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_bad_config_file_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"rows": 10, "colour": "red"}))
    result = run_script("--config", str(config))
    assert result.returncode == 2
    assert "colour" in result.stderr


def test_a_user_key_for_no_such_user_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "emulator.json"
    config.write_text(json.dumps({"rows": 100, "users": 5, "user_api_key_user_id": 42}))
    result = run_script("--config", str(config), "--port", str(free_port()), timeout=120)
    assert result.returncode == 2
    assert "user_api_key_user_id 42 is not a user id" in result.stderr


def test_busy_port_exits_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_script(
            "--port", str(port), "--rows", "100", "--start", "2026-01-01", timeout=120
        )
    assert result.returncode == 2
    assert "cannot serve" in result.stderr
