"""Measured jobs that use dlt: this project's sync, dlt's ``rest_api`` source, the SQL models.

Each runs in a child process (see :mod:`pipelines.benchmark.child`) configured by environment
variables, as a user would run it, and returns ``rows`` (CDRs read) plus details.
"""

from __future__ import annotations

from typing import Any

import dlt
import duckdb

from pipelines.sync import SyncOptions, make_pipeline, run_sync


def _steps(pipeline: dlt.Pipeline) -> dict[str, float]:
    trace = pipeline.last_trace
    if trace is None:
        return {}
    return {
        step.step: round((step.finished_at - step.started_at).total_seconds(), 3)
        for step in trace.steps
        if step.finished_at is not None
    }


def project_sync() -> dict[str, Any]:
    """This project's sync (``run_sync``), configured by ``SOURCES__VOIPSTUDIO__*``,
    ``DESTINATION__DUCKDB__CREDENTIALS`` and ``DLT_DATA_DIR``. Only the sync is timed:
    no models, no status query."""
    pipeline = make_pipeline()
    summary = run_sync(pipeline, SyncOptions())
    return {
        # Read, whether loaded or read again unchanged (not loaded again).
        "rows": summary.cdrs_read,
        "loaded_rows": summary.rows_loaded.get("cdrs", 0),
        "new_rows": summary.cdrs_new,
        "table_rows": summary.cdrs_after,
        "loads": summary.loads,
        "steps": _steps(pipeline),
    }


def cli_sync(models: bool) -> dict[str, Any]:
    """``voipstudio sync`` as a user runs it (``models``: the default, the reporting models
    built after the sync; else ``--no-models``), configured as :func:`project_sync` is. The
    child's process time is the figure: interpreter start, imports, sync and models."""
    import pipelines.cli as cli

    seen: dict[str, Any] = {}
    print_summary, print_models = cli._print_summary, cli._print_models

    def keep_summary(pipeline: Any, summary: Any, options: Any) -> None:
        seen["summary"] = summary
        print_summary(pipeline, summary, options)

    def keep_models(result: Any) -> None:
        seen["models"] = result
        print_models(result)

    # What the command did, taken where it prints it (nothing else is measured or changed).
    cli._print_summary, cli._print_models = keep_summary, keep_models
    code = cli.main(["sync"] if models else ["sync", "--no-models"])
    if code != 0:
        raise RuntimeError(f"voipstudio sync exited with {code}")
    summary = seen["summary"]
    detail: dict[str, Any] = {
        "rows": summary.cdrs_read,
        "loaded_rows": summary.rows_loaded.get("cdrs", 0),
        "new_rows": summary.cdrs_new,
        "table_rows": summary.cdrs_after,
        "sync_seconds": round(summary.seconds, 3),
    }
    result = seen.get("models")
    if result is not None:
        detail.update(
            models_seconds=round(result.seconds, 3),
            models_full=result.count("full"),
            models_incremental=result.count("incremental"),
            models_unchanged=result.count("unchanged"),
            memory_limit=result.memory_limit,
        )
    return detail


def rest_api_baseline(
    base_url: str, api_key: str, database: str, pipelines_dir: str, page_size: int
) -> dict[str, Any]:
    """dlt's declarative ``rest_api`` source as its documentation suggests for this API.

    Page-number paging (``page``, from 1) with ``limit`` at the API's maximum, the key as an
    ``X-Auth-Token`` header, records under ``data``, merged on ``id`` into DuckDB. ``total``
    counts records, not pages, so it is not given as the paginator's ``total_path``: paging
    stops at the first empty page, as the paginator does by default.
    """
    # Imported here: the project's runs must not pay for (or hold the memory of) rest_api.
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": base_url.rstrip("/") + "/",
                "auth": {
                    "type": "api_key",
                    "name": "X-Auth-Token",
                    "api_key": api_key,
                    "location": "header",
                },
            },
            "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
            "resources": [
                {
                    "name": "cdrs",
                    "endpoint": {
                        "path": "cdrs",
                        "params": {"limit": page_size, "sort": "id", "dir": "ASC"},
                        "data_selector": "data",
                        "paginator": {
                            "type": "page_number",
                            "base_page": 1,
                            "page_param": "page",
                            "total_path": None,
                        },
                    },
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="rest_api_baseline",
        destination=dlt.destinations.duckdb(credentials=database),
        dataset_name="voipstudio",
        pipelines_dir=pipelines_dir,
    )
    pipeline.run(source)
    trace = pipeline.last_trace
    counts = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    with duckdb.connect(database, read_only=True) as connection:
        row = connection.execute("SELECT count(*) FROM voipstudio.cdrs").fetchone()
    table_rows = int(row[0]) if row else 0
    return {
        "rows": counts.get("cdrs", 0),
        "table_rows": table_rows,
        "child_rows": {k: v for k, v in counts.items() if k.startswith("cdrs__")},
        "steps": _steps(pipeline),
    }


def build_models() -> dict[str, Any]:
    """The SQL reporting models rebuilt in full on the loaded CDRs, as ``voipstudio models
    --full`` does (under the models' DuckDB memory limit)."""
    # Imported here: the syncs' runs must not pay for (or hold the memory of) the models.
    from pipelines.models import build_models as build
    from pipelines.sync import models_duckdb_settings

    pipeline = make_pipeline()
    with models_duckdb_settings(pipeline):
        result = build(pipeline, full=True)
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name("cdrs")
        rows = client.execute_sql(f"SELECT count(*) FROM {name}")  # noqa: S608 - our name
    return {
        "rows": int(rows[0][0]) if rows else 0,
        "built": len(result.built),
        "skipped": sorted(result.skipped),
    }


def warm_up() -> dict[str, Any]:
    """Import everything a measured run imports (the bytecode is cached for the next ones)."""
    import dlt.sources.rest_api  # noqa: F401 - imported to be compiled and cached

    import pipelines.models  # noqa: F401

    return {"rows": 0}
