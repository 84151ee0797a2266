"""SQL reporting models on top of the loaded CDRs: build them, and run their data tests.

``build_models(pipeline)`` builds the models under ``sql/`` (staging and mart tables) into the
pipeline's dataset in dependency order, rebuilding only what changed since the last build
(``full=True``: everything); ``run_data_tests(pipeline)`` runs ``sql/tests``. See README,
"Reporting models", and docs/models.md.
"""

from __future__ import annotations

from pipelines.models.builder import build_models
from pipelines.models.runner import (
    SQL_DIR,
    BuildResult,
    DataTestError,
    DataTestResult,
    ModelError,
    Project,
    check_data_tests,
    load_project,
    run_data_tests,
)
from pipelines.models.settings import ModelSettings, load_settings
from pipelines.models.state import STATE_TABLES

__all__ = [
    "SQL_DIR",
    "STATE_TABLES",
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
