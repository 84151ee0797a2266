"""The configuration reference and `.dlt/config.toml` say what the typed settings say.

Every setting is a field of a dlt spec, with its default written there once. The README's
tables (and docs/bi.md's for `[publish]`) must list every key of each spec with that default
and its environment variable, and nothing a spec does not have beyond the rows that document
something else (dlt's own settings, the DuckDB file); `.dlt/config.toml` must show each
setting that is not a secret with its default (commented out when it has none), and nothing
else.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.configuration.specs.base_configuration import is_secret_hint

from pipelines.models.settings import ModelSettings
from pipelines.pipeline_settings import PipelineSettings
from pipelines.reconcile.settings import ReconcileSettings
from pipelines.report.publish import PublishSettings
from pipelines.voipstudio.configuration import env_var
from pipelines.voipstudio.settings import SourceSettings

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


@dataclass(frozen=True)
class Section:
    """A spec and where it is configured and documented."""

    spec: type[BaseConfiguration]
    sections: tuple[str, ...]


SOURCE = Section(SourceSettings, ("sources", "voipstudio"))
PIPELINE = Section(PipelineSettings, ("pipelines", "voipstudio"))
MODELS = Section(ModelSettings, ("models",))
RECONCILE = Section(ReconcileSettings, ("reconcile",))
PUBLISH = Section(PublishSettings, ("publish",))

# (document, the line the table follows, the specs it documents, rows about something else)
TABLES = [
    (
        README,
        "## Configuration",
        [SOURCE, PIPELINE],
        {
            "accounts.<name>.<key>",
            "DuckDB file",
            "dlt's folder",
            "log_level",
            "DuckDB settings during a sync",
            "memory allocators during a sync",
        },
    ),
    (README, "### Settings", [MODELS], set()),
    (README, "### Reconcile settings", [RECONCILE], set()),
    (REPO / "docs" / "bi.md", "Settings, section `[publish]`", [PUBLISH], set()),
]


def table_rows(path: Path, after: str) -> dict[str, tuple[str, str, str]]:
    """The rows of the first table after the line starting with ``after``: key -> (the key's
    cell, the default's, the variable's)."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("| key |"))
    rows: dict[str, tuple[str, str, str]] = {}
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        match = re.match(r"`([^`]+)`", cells[0])
        key = match.group(1) if match else cells[0]
        rows[key] = (cells[0], cells[1], cells[2])
    return rows


def shown(value: Any) -> str:
    """A default as the tables and TOML write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields(section: Section) -> dict[str, Any]:
    return {name: getattr(section.spec, name) for name in section.spec.get_resolvable_fields()}


def secret(section: Section, key: str) -> bool:
    return is_secret_hint(section.spec.get_resolvable_fields()[key])


@pytest.mark.parametrize(
    ("path", "after", "sections", "others"), TABLES, ids=[t[1] for t in TABLES]
)
def test_every_setting_is_in_the_reference_with_its_default_and_variable(
    path: Path, after: str, sections: list[Section], others: set[str]
) -> None:
    rows = table_rows(path, after)
    documented: set[str] = set()
    for section in sections:
        for key, default in fields(section).items():
            assert key in rows, f"{path.name} ({after}) has no row for {key}"
            cell, default_cell, variable = rows[key]
            documented.add(key)
            assert variable == f"`{env_var(section.sections, key)}`", (key, variable)
            if default is None:
                # No default value: the table says in words what then happens.
                assert not default_cell.startswith("`"), (key, default_cell)
            elif default == "":
                assert default_cell == "empty", (key, default_cell)
            else:
                assert default_cell == f"`{shown(default)}`", (key, default_cell, default)
            assert ("(secret)" in cell) == secret(section, key), (key, cell)
    unknown = set(rows) - documented - others
    assert not unknown, f"rows of {path.name} ({after}) that are no setting: {sorted(unknown)}"


CONFIG_SECTIONS = {
    "sources.voipstudio": SOURCE,
    "pipelines.voipstudio": PIPELINE,
    "models": MODELS,
    "reconcile": RECONCILE,
    "publish": PUBLISH,
}


def config_toml() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Per section of .dlt/config.toml: its keys, and its commented-out ``# key = value`` lines."""
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    current = ""
    for line in (REPO / ".dlt" / "config.toml").read_text().splitlines():
        header = re.match(r"^\[([^\]]+)\]$", line)
        if header:
            current = header.group(1)
            found.setdefault(current, ({}, {}))
            continue
        if not current:
            continue
        commented = re.match(r"^# ([a-z_]+) = (.+)$", line)
        if commented:
            found[current][1][commented.group(1)] = tomllib.loads(line[2:])[commented.group(1)]
    parsed = tomllib.loads((REPO / ".dlt" / "config.toml").read_text())
    for name in found:
        node: Any = parsed
        for part in name.split("."):
            node = node.get(part, {})
        values = {k: v for k, v in node.items() if not isinstance(v, dict)}
        found[name] = (values, found[name][1])
    return found


def test_config_toml_shows_every_default() -> None:
    sections = config_toml()
    for name, section in CONFIG_SECTIONS.items():
        assert name in sections, f".dlt/config.toml has no [{name}]"
        values, commented = sections[name]
        for key, default in fields(section).items():
            if secret(section, key) or (name == "sources.voipstudio" and key == "email"):
                # Credentials belong in secrets.toml (example.secrets.toml shows them).
                assert key not in values, f"[{name}] {key} in config.toml"
                continue
            if default is None:
                assert key in commented and key not in values, f"[{name}] {key}"
            else:
                assert values.get(key) == default, f"[{name}] {key}: {values.get(key)!r}"
        unknown = set(values) - set(fields(section))
        assert not unknown, f"[{name}] of .dlt/config.toml: keys no setting has: {unknown}"
