"""dlt's completed load packages: keep the last few, delete the rest.

dlt keeps every load package it has loaded in the pipeline's working folder
(``<dlt data dir>/pipelines/<name>/load/loaded/<load_id>``), for ever: about 124 KB per
incremental sync, 18 MB a day at a 10-minute schedule. Nothing reads them after the load
(the state and the load log live in the destination); the last few are kept for looking into a
recent load (``dlt pipeline voipstudio load-package``): how many is the setting
``[pipelines.<name>] keep_load_packages`` (``configuration.PipelineSettings``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import dlt

log = logging.getLogger(__name__)


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
