"""Running one job in a fresh child process, and what it cost: time, memory, CPU.

The child reports the wall time of the job itself (after its imports) and what the job did;
the parent reads the child's peak resident memory and CPU time from ``wait4``, so they cover
the whole process and nothing of the parent or of other runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Where the project is: the children run there, so that dlt reads `.dlt/` as for a user.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Configuration a user's shell may hold that would change what is measured: children start
# from a clean slate and get only what each job sets.
_CONFIG_PREFIXES = (
    "SOURCES__",
    "DESTINATION__",
    "PIPELINES__",
    "NORMALIZE__",
    "LOAD__",
    "EXTRACT__",
    "DATA_WRITER__",
    "RUNTIME__",
    "MODELS__",
    "DLT_",
)


class JobError(Exception):
    """A job exited with an error or ran out of time."""


@dataclass
class Run:
    """One run of one job.

    Attributes:
        seconds: wall time of the job itself, in the child, after its imports.
        process_seconds: wall time of the child process, interpreter start and imports included.
        peak_rss_mb: the child's peak resident memory (``ru_maxrss``), MiB.
        cpu_seconds: the child's user plus system CPU time.
        server_cpu_seconds: CPU time the emulator spent while the job ran (it shares the
            machine: its serving time is inside every wall time measured).
        rows: CDRs the job read.
        detail: what else the job reported (rows in the table, new rows, dlt steps...).
    """

    seconds: float
    process_seconds: float
    peak_rss_mb: float
    cpu_seconds: float
    server_cpu_seconds: float
    rows: int
    detail: dict[str, Any] = field(default_factory=dict)


def child_environment(workdir: Path, settings: dict[str, str]) -> dict[str, str]:
    """The environment of a child: this one without dlt settings, plus ``settings``.

    Bytecode is cached under ``workdir`` (shared by all children of a benchmark run): a user's
    installation caches it too, and without it every child would spend a second or two
    compiling dlt (some environments set ``PYTHONDONTWRITEBYTECODE``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    env["PYTHONUNBUFFERED"] = "1"
    env["RUNTIME__LOG_LEVEL"] = "WARNING"
    env.update(settings)
    return env


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a running process (0.0 if it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    # Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the command name.
    return (int(fields[11]) + int(fields[12])) / ticks


def run_job(
    target: str,
    args: dict[str, Any],
    *,
    run_dir: Path,
    env: dict[str, str],
    timeout: float,
    server_pid: int | None = None,
) -> Run:
    """Run ``target`` (``module:function`` under ``pipelines.benchmark``) in a child process.

    Args:
        target: the job, e.g. ``"jobs_dlt:project_sync"``.
        args: keyword arguments of the job (JSON).
        run_dir: a folder of this run: arguments, result and the child's log go there.
        env: the child's environment (see :func:`child_environment`).
        timeout: seconds before the child (and everything it started) is killed.
        server_pid: the emulator's process, whose CPU time is recorded.

    Raises:
        JobError: the child failed or timed out; the message ends with its log.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    args_path, result_path, log_path = (
        run_dir / "args.json",
        run_dir / "result.json",
        run_dir / "job.log",
    )
    args_path.write_text(json.dumps(args))
    result_path.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "pipelines.benchmark.child",
        target,
        str(args_path),
        str(result_path),
    ]
    server_before = process_cpu_seconds(server_pid) if server_pid else 0.0
    with log_path.open("wb") as log:
        started = time.perf_counter()
        # A session of its own: on a timeout the whole group is killed, threads and all.
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _RUNNING.add(process)
        try:
            status, usage = _wait(process, timeout)
        finally:
            _RUNNING.discard(process)
        elapsed = time.perf_counter() - started
    server_cpu = process_cpu_seconds(server_pid) - server_before if server_pid else 0.0
    if status is None:
        raise JobError(f"{target} did not finish in {timeout:.0f}s{_log_tail(log_path)}")
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or not result_path.exists():
        raise JobError(f"{target} exited with {code}{_log_tail(log_path)}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    return Run(
        seconds=float(result.pop("seconds")),
        process_seconds=elapsed,
        # Linux reports ru_maxrss in KiB.
        peak_rss_mb=usage.ru_maxrss / 1024,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        server_cpu_seconds=max(0.0, server_cpu),
        rows=int(result.pop("rows")),
        detail=result,
    )


# Children running now, killed if the benchmark itself is interrupted.
_RUNNING: set[subprocess.Popen[bytes]] = set()


def kill_running() -> None:
    """Kill every child still running (an interrupted benchmark leaves nothing behind)."""
    for process in list(_RUNNING):
        _kill_group(process)


def _wait(
    process: subprocess.Popen[bytes], timeout: float
) -> tuple[int | None, resource.struct_rusage]:
    """Wait for the child with ``wait4`` (for its own resource usage); kill it after
    ``timeout``. Returns its wait status, None if it was killed for taking too long."""
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        pid, status, usage = os.wait4(process.pid, 0 if timed_out else os.WNOHANG)
        if pid == process.pid:
            # Popen must not wait for a process that was reaped here.
            process.returncode = os.waitstatus_to_exitcode(status)
            return (None if timed_out else status), usage
        if not timed_out and time.monotonic() > deadline:
            _kill_group(process)
            timed_out = True
            continue
        time.sleep(0.02)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return ":\n    " + "\n    ".join(text[-lines:]) if text else ""
