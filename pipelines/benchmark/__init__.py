"""``python -m pipelines.benchmark`` (``make bench``): the sync against dlt's ``rest_api`` source
and against the plainest possible code, on the same emulated data, in one run.

Every measured job runs in a fresh child process (its peak memory is its own, and no run
shares another's caches) against an emulator serving in a process of its own on loopback, so
what is measured is the client. The report is printed and written to ``docs/benchmarks.md``.

Modules:
    cli: the command line and the plan of measurements.
    emulator: the emulator in a child process, and its admin API.
    measure: running one job in a child process and reading its time and memory.
    child: the child process's entry point.
    jobs_dlt: the jobs that use dlt (this project's sync, the ``rest_api`` baseline, models).
    jobs_floor: the floor, plain httpx and DuckDB without dlt.
    report: the table, the targets and the Markdown file.
"""
