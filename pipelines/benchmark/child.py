"""The entry point of a measured child process.

``python -m pipelines.benchmark.child MODULE:FUNCTION ARGS.json RESULT.json`` imports the job's
module (dlt, httpx, DuckDB...), then times the call of the job alone and writes what it
returned, with ``seconds``, to the result file.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    """Run one job; exit 0 when it succeeded and its result was written."""
    started = time.perf_counter()
    target, args_path, result_path = argv if argv is not None else sys.argv[1:]
    module_name, function_name = target.split(":")
    module = importlib.import_module(f"pipelines.benchmark.{module_name}")
    job = getattr(module, function_name)
    args: dict[str, Any] = json.loads(Path(args_path).read_text())
    job_started = time.perf_counter()
    result: dict[str, Any] = job(**args)
    seconds = time.perf_counter() - job_started
    result.update(seconds=seconds, import_seconds=job_started - started)
    Path(result_path).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
