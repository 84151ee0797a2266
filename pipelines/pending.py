"""Loads that fail: what a sync leaves behind, and the way out of a load that keeps failing.

dlt loads in packages. A package whose load fails stays *pending*, and by default every later
``pipeline.run`` loads the pending packages first and reads nothing new: a package the
destination can never take (a value its column refuses) would fail every later sync, even after
the API stopped serving the record. So a sync:

- **aborts a package the destination refuses** (a terminal error), with dlt's
  ``[load] auto_abort_on_terminal_error``: the package is completed as aborted (its files stay
  in the pipeline's folder, ``load/loaded/<load id>/failed_jobs``), and the local state goes
  back to where it was before it, so the cursor does not pass data that was not loaded. The
  sync fails with the destination's message; the next sync reads the same CDRs again. (The
  cursor is also never trusted beyond the newest ``calldate`` in the destination.)
- **loads what an earlier sync left pending first** (its load hit a transient error, or it was
  killed while loading), then reads as usual. If that load fails again, the sync fails naming
  the package and the way out, and nothing new is read.
- ``voipstudio sync --abort-pending`` sets pending packages aside the same way, when a
  package keeps failing with an error the destination calls transient.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import dlt
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.voipstudio.errors import LoadFailedError, VoipstudioError

log = logging.getLogger(__name__)

AUTO_ABORT_KEY = "load.auto_abort_on_terminal_error"
ABORT_FLAG = "voipstudio sync --abort-pending"


def refused_loads_aborted() -> dict[str, Any]:
    """The setting that makes a sync abort a package the destination refuses instead of leaving
    it pending; none when ``[load] auto_abort_on_terminal_error`` is configured, which then
    decides. The sync applies it with its other settings (``sync._sync_settings``)."""
    if dlt.config.get(AUTO_ABORT_KEY) is not None:
        return {}
    return {AUTO_ABORT_KEY: True}


def _pending_ids(pipeline: dlt.Pipeline) -> list[str]:
    return sorted(
        {*pipeline.list_extracted_load_packages(), *pipeline.list_normalized_load_packages()}
    )


def abort_pending(pipeline: dlt.Pipeline) -> list[str]:
    """Set aside every pending package and put the local state back to before the oldest.

    Returns:
        The ids of the packages set aside.
    """
    pending = _pending_ids(pipeline)
    if not pending:
        log.info("--abort-pending: no load package is pending")
        return []
    pipeline.abort_packages()
    log.warning(
        "--abort-pending: set aside %d load package(s) (%s), kept in %s; the pipeline state "
        "is back to before them, so their CDRs are read again from the API",
        len(pending),
        ", ".join(pending),
        _loaded_folder(pipeline),
    )
    return pending


def load_pending(pipeline: dlt.Pipeline) -> None:
    """Load what an earlier sync left pending, before anything new is read.

    A package the destination refuses is aborted (see :func:`refused_loads_aborted`): the sync
    then goes on and reads its CDRs again.

    Raises:
        LoadFailedError: a pending package still fails to load and stays pending.
    """
    pending = _pending_ids(pipeline)
    if not pending:
        return
    log.warning(
        "an earlier sync left %d load package(s) not loaded (%s): loading them first",
        len(pending),
        ", ".join(pending),
    )
    try:
        pipeline.normalize()
        pipeline.load()
    except PipelineStepFailed as error:
        cause = failure_cause(error)
        if not pipeline.has_pending_data:
            log.warning(
                "the destination refused a load package left by an earlier sync (%s): it was "
                "set aside (kept in %s) and the state put back; its CDRs are read again now",
                cause,
                _loaded_folder(pipeline),
            )
            return
        raise LoadFailedError(
            f"a load package left by an earlier sync ({', '.join(pending)}) still fails to "
            f"load: {cause}. Nothing new was read. Fix what the destination names and run "
            f"again, or run `{ABORT_FLAG}` to set the package aside: the pipeline state goes "
            "back to before it, so its CDRs are read again from the API"
        ) from error


def run_pipeline(pipeline: dlt.Pipeline, source: Any, **kwargs: Any) -> None:
    """``pipeline.run``, with a load that fails reported as what it means for the data.

    Raises:
        LoadFailedError: the load failed (the message says whether its package was set aside
            or stays pending).
        PipelineStepFailed: the extract or normalize step failed.
    """
    try:
        pipeline.run(source, **kwargs)
    except PipelineStepFailed as error:
        if error.step != "load" or _own_error(error):
            raise
        cause = failure_cause(error)
        if pipeline.has_pending_data:
            message = (
                f"the load into the destination failed: {cause}. Its data is kept in a load "
                "package that the next sync loads first; if it keeps failing, fix the cause, or "
                f"run `{ABORT_FLAG}` to set it aside (its CDRs are then read again from the API)"
            )
        else:
            message = (
                f"the destination refused the load of this sync: {cause}. Nothing of it was "
                f"committed: the load package was set aside (kept in {_loaded_folder(pipeline)}) "
                "and the cursor put back, so the next sync reads the same CDRs again; fix what "
                "the destination names and run again"
            )
        raise LoadFailedError(message) from error


def _own_error(error: BaseException) -> bool:
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, VoipstudioError):
            return True
        current = current.__cause__ or current.__context__
    return False


def failure_cause(error: PipelineStepFailed) -> str:
    """The destination's own message for a failed load, in one line."""
    current: Any = error.exception
    failed_message = ""
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        failed_message = str(getattr(current, "failed_message", "") or failed_message)
        nested = getattr(current, "job_exception", None) or getattr(
            current, "client_exception", None
        )
        if nested is None:
            break
        current = nested
    message = str(current) if current is not None else ""
    if not message.strip() or message.startswith("Load package with"):
        message = failed_message or str(error.exception)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    # A job's failure message may be a whole traceback: its last line is the error.
    line = (lines[-1] if lines[0].startswith("Traceback") else lines[0]) if lines else message
    line = re.sub(r"^(?:[a-z_]\w*\.)+(?=\w+: )", "", line)
    return line if len(line) <= 300 else line[:297] + "..."


def _loaded_folder(pipeline: dlt.Pipeline) -> Path:
    return Path(pipeline.working_dir) / "load" / "loaded"
