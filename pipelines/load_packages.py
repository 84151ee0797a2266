"""dlt's completed load packages: keep the last few, delete the rest.

dlt keeps every load package it has loaded in the pipeline's working folder
(``<dlt data dir>/pipelines/<name>/load/loaded/<load_id>``), for ever: about 124 KB per
incremental sync, 18 MB a day at a 10-minute schedule. Nothing reads them after the load
(the state and the load log live in the destination); the last few are kept for looking into a
recent load (``dlt pipeline voipstudio load-package``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import dlt

from pipelines.voipstudio.errors import ConfigError

log = logging.getLogger(__name__)

# How many completed load packages a sync leaves in the working folder, unless configured.
DEFAULT_KEEP_LOAD_PACKAGES = 3
KEY = "keep_load_packages"


def keep_load_packages(pipeline_name: str) -> int:
    """``[pipelines.<name>] keep_load_packages`` (``PIPELINES__<NAME>__KEEP_LOAD_PACKAGES``).

    Raises:
        ConfigError: it is not a whole number of at least 0.
    """
    value: object = dlt.config.get(f"pipelines.{pipeline_name}.{KEY}")
    if value is None or value == "":
        return DEFAULT_KEEP_LOAD_PACKAGES
    try:
        keep = int(str(value))
    except ValueError:
        keep = -1
    if keep < 0:
        raise ConfigError(
            f"{KEY} {value!r} is not a whole number of at least 0: set it in .dlt/config.toml "
            f"[pipelines.{pipeline_name}] or PIPELINES__{pipeline_name.upper()}__"
            f"{KEY.upper()} (default {DEFAULT_KEEP_LOAD_PACKAGES})"
        )
    return keep


def prune_load_packages(pipeline: dlt.Pipeline, keep: int) -> list[str]:
    """Delete the pipeline's completed load packages but the newest ``keep``.

    Only packages dlt lists as completely loaded are touched, never one still pending. A
    package that cannot be deleted is logged and left (the sync it follows succeeded).

    Returns:
        The load ids deleted.
    """
    completed = sorted(pipeline.list_completed_load_packages(), key=float)
    doomed = completed[: max(0, len(completed) - keep)]
    loaded = (Path(pipeline.working_dir) / "load" / "loaded").resolve()
    deleted = []
    for load_id in doomed:
        path = Path(pipeline.get_load_package_info(load_id).package_path).resolve()
        if path.parent != loaded:  # not where dlt keeps completed packages: leave it alone
            log.warning("load package %s is not under %s; left in place", load_id, loaded)
            continue
        try:
            shutil.rmtree(path)
        except OSError as exc:
            log.warning("could not delete completed load package %s: %s", path, exc)
            continue
        deleted.append(load_id)
    if deleted:
        log.debug("deleted %d completed load package(s), kept %d", len(deleted), keep)
    return deleted
