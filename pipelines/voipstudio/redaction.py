"""Keeping secrets out of everything the project emits: log lines, errors, state and dlt's trace.

Every secret the project learns (each account's API key and password, login tokens, minted
API keys) is registered here as soon as it is known, and one function, :func:`redact`, replaces
each of them, in every spelling it could take in a message (as is, escaped as ``repr`` or JSON
would, percent-encoded), with ``***``. It is applied

- to every log record, of any logger (ours, dlt's, httpx's and httpcore's debug lines, which
  show response headers), by a log record factory: whatever handlers are configured, now or
  later, only ever see redacted records;
- to every error of the project, when it is built (:class:`~pipelines.voipstudio.errors.
  VoipstudioError`), and to any other error's text where the project keeps or prints it (an
  account's error in its resource state, the command line's last line);
- to dlt's run trace (``trace.pickle`` in the pipeline's working folder, ``pipeline.last_trace``)
  by a dlt tracking module that rewrites each step's exception texts before dlt saves it.

The hooks are installed with the first secret registered, so a program that uses the source
without the command line (Airflow, a notebook) is covered as well.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from typing import Any

MASK = "***"
# Shorter values are not redacted: replacing every "abc" in every message would make them
# unreadable, and a credential that short is not a secret anyway.
MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
_installed = False


def _spellings(secret: str) -> set[str]:
    """The texts a secret can appear as in a message."""
    forms = {secret, secret.strip()}
    forms.add(repr(secret)[1:-1])
    forms.add(repr(secret.encode("utf-8", "backslashreplace"))[2:-1])
    forms.add(json.dumps(secret)[1:-1])
    forms.add(urllib.parse.quote(secret, safe=""))
    forms.add(urllib.parse.quote_plus(secret))
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def register(*secrets: str | None) -> None:
    """Redact these values from now on (None and short values are ignored).

    Installs the logging and dlt hooks the first time.
    """
    global _secrets
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= _spellings(str(secret))
    if not forms:
        return
    with _lock:
        known = set(_secrets)
        if not forms - known:
            return
        # Longest first: a secret that contains another is masked whole.
        _secrets = tuple(sorted(known | forms, key=len, reverse=True))
    install()


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with secrets redacted in its texts."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item) for item in value)
    return value


def install() -> None:
    """Install the log record factory and the dlt trace hook (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _secrets:
            _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _install_trace_hook()


def _redact_record(record: logging.LogRecord) -> None:
    """Format the record's message (and traceback) now, redacted, so that no handler formats
    the original arguments later."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when the record is emitted
        return
    clean = redact(message)
    if clean != message or record.args:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class _RedactTrace:
    """A dlt tracking module (``dlt.pipeline.trace.TRACKING_MODULES``): a step's exception
    texts are redacted when the step ends, before dlt keeps and pickles the trace."""

    def on_start_trace(self, trace: Any, step: Any, pipeline: Any) -> None:
        """Nothing to do when a trace starts."""

    def on_start_trace_step(self, trace: Any, step: Any, pipeline: Any) -> None:
        """Nothing to do when a step starts."""

    def on_end_trace_step(
        self, trace: Any, step: Any, pipeline: Any, step_info: Any, send_state: bool
    ) -> None:
        """Rewrite the step just appended to the trace, and the configuration values it lists
        (dlt leaves out the values of secret fields; a secret set under another key is not)."""
        if not _secrets:
            return
        if step.step_exception is not None:
            clean = step._replace(
                step_exception=redact(step.step_exception),
                exception_traces=redact_value(step.exception_traces),
            )
            for index, kept in enumerate(trace.steps):
                if kept is step:
                    trace.steps[index] = clean
        trace.resolved_config_values[:] = [
            value._replace(
                value=redact_value(value.value), default_value=redact_value(value.default_value)
            )
            for value in trace.resolved_config_values
        ]

    def on_end_trace(self, trace: Any, pipeline: Any, send_state: bool) -> None:
        """Nothing to do when a trace ends."""


def _install_trace_hook() -> None:
    from dlt.pipeline import trace

    modules = trace.TRACKING_MODULES
    if modules is not None and not any(isinstance(m, _RedactTrace) for m in modules):
        modules.append(_RedactTrace())
