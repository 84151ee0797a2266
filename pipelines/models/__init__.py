"""SQL reporting models on top of the loaded CDRs: build them, and run their data tests.

``build_models(pipeline)`` builds every model under ``sql/`` (staging views, mart tables) into
the pipeline's dataset in dependency order; ``run_data_tests(pipeline)`` runs ``sql/tests``.
See README, "Reporting models".
"""

from __future__ import annotations

from pipelines.models.runner import (
    SQL_DIR,
    BuildResult,
    DataTestError,
    DataTestResult,
    ModelError,
    Project,
    build_models,
    check_data_tests,
    load_project,
    run_data_tests,
)
from pipelines.models.settings import ModelSettings, load_settings

__all__ = [
    "SQL_DIR",
    "BuildResult",
    "DataTestError",
    "DataTestResult",
    "ModelError",
    "ModelSettings",
    "Project",
    "build_models",
    "check_data_tests",
    "load_project",
    "load_settings",
    "run_data_tests",
]
