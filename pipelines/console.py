"""What the command line prints: a progress line on a terminal, log lines otherwise, and errors
reduced to the one line that says what went wrong and how to fix it."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

from dlt.common.configuration.exceptions import ConfigFieldMissingException

from pipelines.voipstudio.errors import ConfigError, VoipstudioError
from pipelines.voipstudio.redaction import redact

log = logging.getLogger("voipstudio")


class Progress:
    """Counts pages and rows; redraws one line on a terminal, logs every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, interval: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = 0.2 if self.tty else interval
        self.pages = 0
        self.rows = 0
        self._started = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, pages: int, rows: int) -> None:
        with self._lock:
            self.pages += pages
            self.rows += rows
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            self._last = now
            line = self.line(now)
        if self.tty:
            self.stream.write("\r" + line.ljust(70))
            self.stream.flush()
        else:
            log.info(line)

    def line(self, now: float | None = None) -> str:
        """The progress text: pages, rows and rows per second so far."""
        elapsed = max(1e-6, (now or time.monotonic()) - self._started)
        return f"pages {self.pages:,} | rows {self.rows:,} | {self.rows / elapsed:,.0f} rows/s"

    def finish(self) -> None:
        """End the progress line."""
        if self.tty and self.pages:
            self.stream.write("\r" + self.line().ljust(70) + "\n")
            self.stream.flush()


def root_cause(exc: BaseException) -> BaseException:
    """The innermost error worth showing: our own error if one is in the chain, else the last
    cause (dlt wraps what a source raises in its own step exceptions)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    last = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (VoipstudioError, ConfigFieldMissingException)):
            return current
        last = current
        current = current.__cause__ or current.__context__
    return last


def describe(exc: BaseException) -> tuple[str, int]:
    """One line and an exit code for an error that stopped a command (never with a secret)."""
    message, code = _describe(exc)
    return redact(message), code


def _describe(exc: BaseException) -> tuple[str, int]:
    cause = root_cause(exc)
    if isinstance(cause, VoipstudioError):
        return str(cause), cause.exit_code
    if isinstance(cause, ConfigFieldMissingException):
        # dlt's first lines name the missing keys, nested ones included (never their values).
        lines = [line.strip() for line in str(cause).splitlines()[:2] if line.strip()]
        return (
            f"missing configuration: {'; '.join(lines)} (see README, Configuration)",
            ConfigError.exit_code,
        )
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return f"{type(cause).__name__}: {text}", 1
