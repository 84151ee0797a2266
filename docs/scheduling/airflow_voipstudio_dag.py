"""Airflow DAGs that run the VoIPstudio sync every 30 minutes, and the reconcile once a night.

Copy it to your DAGs folder and set the project folder (``VOIPSTUDIO_PROJECT``) where this
repository is installed (``make setup``). The sync runs as the same command as everywhere else,
``voipstudio sync``, in that folder, so its ``.dlt`` configuration, lock file and DuckDB file are
the ones a person would use; secrets come from the environment (an Airflow connection or
variable exported as ``SOURCES__VOIPSTUDIO__API_KEY``). Exit code 75 (another sync running) is
treated as a skip. The reconcile (late, corrected and deleted CDRs of the last days) fails its
task with exit 9 when its guard refuses to mark CDRs deleted; it is not retried (the next night
reads the same days).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

PROJECT = os.environ.get("VOIPSTUDIO_PROJECT", "/opt/voipstudio-pipeline")

with DAG(
    dag_id="voipstudio_sync",
    schedule=timedelta(minutes=30),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one sync at a time; the lag makes a skipped run harmless
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["voipstudio", "dlt"],
) as dag:
    sync = BashOperator(
        task_id="sync",
        bash_command=f"cd {PROJECT} && .venv/bin/voipstudio sync",
        skip_on_exit_code=75,
    )
    freshness = BashOperator(
        task_id="freshness",
        bash_command=f"cd {PROJECT} && .venv/bin/voipstudio status --max-age 2h",
    )
    sync >> freshness

with DAG(
    dag_id="voipstudio_reconcile",
    schedule="35 3 * * *",  # between two syncs, at a quiet hour
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["voipstudio", "dlt"],
) as reconcile_dag:
    BashOperator(
        task_id="reconcile",
        bash_command=f"cd {PROJECT} && .venv/bin/voipstudio reconcile --json",
        skip_on_exit_code=75,
    )
