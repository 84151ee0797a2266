"""What the command line prints and how: results on stdout (safe to pipe into ``head``), log
lines on stderr at the configured level, and errors reduced to the one line that says what went
wrong and how to fix it."""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TextIO

import dlt
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigValueCannotBeCoercedException,
    ValueNotSecretException,
)
from rich.console import Console
from rich.logging import RichHandler

from pipelines.voipstudio.configuration import secret_in_config
from pipelines.voipstudio.errors import ConfigError, VoipstudioError
from pipelines.voipstudio.redaction import redact

log = logging.getLogger("voipstudio")

PACKAGE = "voipstudio-pipeline"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# This project's loggers: the source and the emulator log under `pipelines.*` (module names),
# the command line and the models under `voipstudio.*`.
OWN_LOGGERS = ("pipelines", "voipstudio")
# Without a configured level: this project's messages from INFO up, everybody else's (dlt's
# internals, libraries) from WARNING up, which is also dlt's own default.
DEFAULT_LEVEL = "INFO"
OTHERS_DEFAULT_LEVEL = "WARNING"
# Connection-level chatter (a line per request and per socket event); only at DEBUG configured.
CONNECTION_LOGGERS = ("httpx", "httpcore")
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def package_version() -> str:
    """The installed version of this package ("unknown" in a source tree never installed)."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def version_text() -> str:
    """What ``voipstudio --version`` prints: this package and the parts that shape its data."""
    parts = []
    for name in ("dlt", "duckdb"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} missing")
    python = ".".join(str(part) for part in sys.version_info[:3])
    return f"voipstudio {package_version()} ({', '.join(parts)}, Python {python})"


@dataclass(frozen=True)
class Verbosity:
    """How much a command says.

    Attributes:
        level: the level of this project's log messages.
        progress: whether to show progress (the display on a terminal, periodic lines in logs).
    """

    level: int
    progress: bool


def configured_log_level() -> str | None:
    """``[runtime] log_level`` (``RUNTIME__LOG_LEVEL``), upper-cased; None when not set.

    Raises:
        ConfigError: it is not a level name.
    """
    fix = (
        "set [runtime] log_level in .dlt/config.toml or RUNTIME__LOG_LEVEL to one of "
        f"{', '.join(LEVELS)} (in capitals)"
    )
    try:
        value: object = dlt.config.get("runtime.log_level")
    except ValueError as exc:
        # dlt sets up its logger when the configuration is first read, and fails on a bad name.
        raise ConfigError(f"log_level: {exc}: {fix}") from None
    if value is None or str(value).strip() == "":
        return None
    level = str(value).strip()
    if level not in LEVELS:
        raise ConfigError(f"log_level {value!r} is not a log level: {fix}")
    return level


def setup_logging(*, verbose: bool = False, quiet: int = 0) -> Verbosity:
    """Send log messages to stderr at the level the user asked for.

    ``[runtime] log_level`` (``RUNTIME__LOG_LEVEL``) is one level for every message, this
    project's and dlt's; not set, this project's messages show from INFO up and the others from
    WARNING up. ``-v`` shows this project's DEBUG messages too (each request: method, path and
    query), ``-q`` only warnings and errors, ``-qq`` only errors; ``-q`` also hides progress.

    Raises:
        ConfigError: the configured level is not a level name.
    """
    configured = configured_log_level()
    own = configured or DEFAULT_LEVEL
    others = configured or OTHERS_DEFAULT_LEVEL
    if verbose:
        own = "DEBUG"
    if quiet:
        floor = "WARNING" if quiet == 1 else "ERROR"
        own = max(own, floor, key=LEVELS.index)
        others = max(others, floor, key=LEVELS.index)
    handler: logging.Handler
    if _is_terminal(sys.stderr):
        handler = RichHandler(console=error_console(), show_path=False, log_time_format="%H:%M:%S")
    else:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.set_name("voipstudio")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "voipstudio"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(others)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(own)
    for name in CONNECTION_LOGGERS:
        logging.getLogger(name).setLevel("DEBUG" if configured == "DEBUG" else "WARNING")
    # dlt's logger does not propagate: it has its own handler, at the configured level.
    logging.getLogger("dlt").setLevel(others)
    return Verbosity(level=logging.getLevelNamesMapping()[own], progress=not quiet)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Log lines to whatever ``sys.stderr`` is when they are written (it is replaced by
    whoever captures output, e.g. a test running the command in-process)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


@functools.cache
def error_console() -> Console:
    """The rich console on stderr (``sys.stderr`` as it is when it writes). The progress
    display and the log lines share it, so that log lines print above the display instead of
    through it."""
    return Console(stderr=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def say(text: str = "", *, error: bool = False) -> None:
    """Print a line of the command's output (stdout) or a message (stderr).

    A reader that went away (``voipstudio status | head -3``) ends nothing: the rest of the
    output goes nowhere and the command finishes its work (a sync still builds its models) and
    exits with its own code.
    """
    stream = sys.stderr if error else sys.stdout
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        discard_closed_pipe(stream)


def discard_closed_pipe(stream: TextIO) -> None:
    """Point a stream whose reader closed the pipe at /dev/null, so that nothing written to it
    later (Python's own flush at exit included) raises or prints a traceback."""
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, descriptor)
    finally:
        os.close(devnull)


# dlt's configuration errors a command may meet outside this project's own settings (dlt's
# sections, a destination's credentials): configuration errors too (exit 2).
_DLT_CONFIG_ERRORS = (
    ConfigFieldMissingException,
    ConfigValueCannotBeCoercedException,
    ValueNotSecretException,
)


def root_cause(exc: BaseException) -> BaseException:
    """The innermost error worth showing: our own error if one is in the chain, else the last
    cause (dlt wraps what a source raises in its own step exceptions)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    last = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (VoipstudioError, *_DLT_CONFIG_ERRORS)):
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
    if isinstance(cause, ConfigValueCannotBeCoercedException):
        # dlt names the key and the type, not the section: its value says which one it is.
        return (
            f"the configured value {cause.field_value!r} of {cause.field_name} cannot be read as "
            f"{getattr(cause.hint, '__name__', cause.hint)}: fix it in .dlt/config.toml or its "
            "environment variable (see README, Configuration)",
            ConfigError.exit_code,
        )
    if isinstance(cause, ValueNotSecretException):
        return secret_in_config(cause.key.split(".")), ConfigError.exit_code
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return f"{type(cause).__name__}: {text}", 1


def format_age(seconds: float) -> str:
    """A duration the way people say it: ``42 s``, ``5 min``, ``3.5 h``, ``2.0 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
