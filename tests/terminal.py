"""Running a command on a real terminal (a pseudo-terminal it has as its controlling tty), as a
person at a keyboard would: read what it prints, type answers to its prompts."""

from __future__ import annotations

import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fcntl import ioctl
from pathlib import Path


@dataclass
class TerminalRun:
    """What the terminal showed (stdout and stderr together, as on a screen) and the exit
    code."""

    output: str
    returncode: int


def run_on_terminal(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    answers: Sequence[tuple[str, str]] = (),
    columns: int = 120,
    timeout: float = 120.0,
) -> TerminalRun:
    """Run ``argv`` on a new pseudo-terminal.

    Args:
        answers: ``(prompt, reply)`` in order: once the output (since the previous answer)
            contains ``prompt``, ``reply`` and Enter are typed.
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout, stderr and /dev/tty
        try:
            os.chdir(cwd)
            os.execve(argv[0], list(argv), dict(env))
        finally:
            os._exit(127)
    ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    chunks: list[bytes] = []
    pending = list(answers)
    seen = 0  # output already matched against earlier prompts
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # the child closed the terminal: it ended
                    break
                if not data:
                    break
                chunks.append(data)
            text = b"".join(chunks).decode("utf-8", "replace")
            if pending and pending[0][0] in text[seen:]:
                prompt, reply = pending.pop(0)
                seen = text.index(prompt, seen) + len(prompt)
                os.write(fd, reply.encode() + b"\r")
        else:
            os.kill(pid, signal.SIGKILL)
            raise TimeoutError(f"{argv} did not end within {timeout} s: {b''.join(chunks)!r}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    output = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return TerminalRun(output, os.waitstatus_to_exitcode(status))
