"""The pipeline's own settings: ``[pipelines.<name>]`` (``voipstudio`` unless ``--pipeline-name``
says otherwise), next to dlt's own keys of that section."""

from __future__ import annotations

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration
from dlt.pipeline.configuration import PipelineConfiguration

from pipelines.voipstudio.configuration import describe, resolve, warn_unknown_keys
from pipelines.voipstudio.errors import ConfigError

PIPELINE_NAME = "voipstudio"


@configspec
class PipelineSettings(BaseConfiguration):
    """``[pipelines.<name>]``: the pipeline's own settings (README, Configuration).

    Attributes:
        destination_type: any dlt destination; DuckDB writes to ``data/calls.duckdb`` unless
            ``DESTINATION__DUCKDB__CREDENTIALS`` names another file.
        dataset_name: the dataset (schema) of the tables.
        keep_load_packages: completed load packages each sync leaves in dlt's folder (about
            124 KB each); older ones are deleted; 0 keeps none.
    """

    destination_type: str = "duckdb"
    dataset_name: str = "voipstudio"
    keep_load_packages: int = 3


def pipeline_sections(pipeline_name: str) -> tuple[str, ...]:
    """Where a pipeline's own settings live: ``pipelines.<name>``."""
    return ("pipelines", pipeline_name)


def load_pipeline_settings(pipeline_name: str = PIPELINE_NAME) -> PipelineSettings:
    """``[pipelines.<name>]``, checked.

    Raises:
        ConfigError: a value of the wrong type, or ``keep_load_packages`` below 0.
    """
    sections = pipeline_sections(pipeline_name)
    # dlt's own pipeline settings live in the same section.
    warn_unknown_keys(
        sections,
        [*PipelineSettings.get_resolvable_fields(), *PipelineConfiguration.get_resolvable_fields()],
        None,
    )
    found = resolve(PipelineSettings(), sections)
    if found.keep_load_packages < 0:
        raise ConfigError(
            f"{describe(sections, 'keep_load_packages')} = {found.keep_load_packages!r} is not a "
            "whole number of at least 0: set it to 0 or more (default "
            f"{PipelineSettings.keep_load_packages})"
        )
    return found
