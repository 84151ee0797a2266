"""The emulator in a process of its own, on loopback, and the parts of its admin API the
benchmark uses (latency, new CDRs, state)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from pipelines.emulator.config import DEFAULT_API_KEY

HOST = "127.0.0.1"


class EmulatorError(Exception):
    """The emulator did not start, or its admin API refused a request."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class EmulatorProcess:
    """``python -m pipelines.emulator.cli --rows N`` on a free loopback port.

    The data is the emulator's default company (30 days of calls ending when it starts, or
    ``days``; its clock the wall clock), so that new CDRs added later arrive "now" as they
    would live.

    Example:
        >>> with EmulatorProcess(10_000, workdir, env) as server:
        ...     server.base_url
    """

    api_key = DEFAULT_API_KEY

    def __init__(
        self,
        rows: int,
        workdir: Path,
        env: dict[str, str],
        start_timeout: float | None = None,
        days: int | None = None,
    ) -> None:
        self.rows = rows
        self.days = days
        self.workdir = workdir
        self.env = env
        # Generating the data takes about 2 s per 100,000 CDRs on a slow machine.
        self.start_timeout = start_timeout or 60.0 + rows / 10_000
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._admin: httpx.Client | None = None

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base URL."""
        return f"{self.url}/v1.2/voipstudio"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self.process.pid if self.process else None

    def start(self) -> EmulatorProcess:
        """Start and wait until the admin API answers.

        Raises:
            EmulatorError: it exited or did not answer in time (its log is in the message).
        """
        last_error = ""
        for _ in range(3):  # another process may take the free port first
            self.port = _free_port()
            log_path = self.workdir / f"emulator-{self.rows}-{self.port}.log"
            with log_path.open("wb") as log:
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "pipelines.emulator.cli",
                        "--host",
                        HOST,
                        "--port",
                        str(self.port),
                        "--rows",
                        str(self.rows),
                        *(["--days", str(self.days)] if self.days else []),
                    ],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._admin = httpx.Client(base_url=f"{self.url}/_emulator", timeout=120.0)
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if self._admin.get("/state", timeout=5.0).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            last_error = log_path.read_text(errors="replace")[-2000:]
            self.stop()
        raise EmulatorError(f"the emulator ({self.rows} CDRs) did not start:\n{last_error}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and wait for it."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- admin API -----------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._admin is None:
            raise EmulatorError("the emulator is not running")
        response = self._admin.request(method, path, json=body)
        if response.status_code != 200:
            raise EmulatorError(f"{method} /_emulator{path}: {response.text[:500]}")
        return response.json()

    def state(self) -> dict[str, Any]:
        """``GET /_emulator/state``."""
        state: dict[str, Any] = self._call("GET", "/state")
        return state

    def cdr_count(self) -> int:
        """CDRs the emulator holds now."""
        return int(self.state()["counts"]["cdrs"])

    def data_start(self) -> str:
        """The first day of the data, ``YYYY-MM-DD``."""
        return str(self.state()["spec"]["start"])[:10]

    def set_latency(self, per_request_ms: float, per_row_ms: float) -> None:
        """Turn the latency model on (or off with zeros)."""
        self._call(
            "PATCH",
            "/config",
            {"latency": {"per_request_ms": per_request_ms, "per_row_ms": per_row_ms}},
        )

    def add_cdrs(self, count: int, late_fraction: float) -> int:
        """Let ``count`` new CDRs arrive now, ``late_fraction`` of them late (calls that
        started hours ago). Returns how many were added."""
        payload = {"generate": {"count": count, "late_fraction": late_fraction}}
        return int(self._call("POST", "/cdrs", payload)["added"])
