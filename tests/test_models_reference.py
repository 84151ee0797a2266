"""README's "Models" table lists every model of `sql/`, with its key, as the SQL declares it.

Each model's header is the one declaration of its grain and key (``-- grain: ...; key: (...)``);
the README's table is written by hand. Adding a model without its row, renaming one, changing
its key, or making it depend on a collection the default ``resources`` does not load without
saying so, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.models import load_project
from pipelines.models.runner import skipped_models
from pipelines.voipstudio import catalog
from pipelines.voipstudio.settings import SourceSettings

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _model_rows() -> dict[str, list[str]]:
    """The rows of the table under "### Models", by the model named in their first cell."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n### Models\n")
    rows: dict[str, list[str]] = {}
    for line in text[start:].splitlines()[2:]:  # after the heading
        if line.startswith("#"):
            break
        if not line.startswith("| `"):
            if rows and not line.startswith("|"):
                break
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.match(r"`(\w+)`", cells[0])
        assert name, f"README's Models table: a row without a model name: {line[:80]}"
        rows[name.group(1)] = cells
    return rows


def test_every_model_has_a_row_and_nothing_else_does() -> None:
    rows = _model_rows()
    models = {model.name for model in load_project(tests=False).models}
    assert set(rows) == models, (
        "README's Models table and sql/ disagree: "
        f"missing {sorted(models - set(rows))}, extra {sorted(set(rows) - models)}"
    )


def test_each_row_names_the_models_key_in_order() -> None:
    rows = _model_rows()
    for model in load_project(tests=False).models:
        key = model.header.key
        assert key, f"{model.name}: its header declares no key"
        grain = rows[model.name][1]
        named = [column for column in re.findall(r"`(\w+)`", grain) if column in key]
        assert named[: len(key)] == list(key), (
            f"README's Models row of {model.name} should name its key ({', '.join(key)}) in "
            f"order in its grain cell: {grain}"
        )


def test_models_of_collections_loaded_only_on_request_say_so() -> None:
    """A model that cannot be built unless an opt-in collection is loaded says "built only
    when `<collection>` is loaded" in its grain cell; one that can says no such thing."""
    rows = _model_rows()
    project = load_project(tests=False)
    default = {c.strip() for c in SourceSettings().resources.split(",")}
    only_when: dict[str, set[str]] = {}
    for collection in catalog.COLLECTIONS:
        if collection.name in default:
            continue
        for name in skipped_models(project, {collection.name}):
            only_when.setdefault(name, set()).add(collection.name)
    assert only_when, "some model should depend on an opt-in collection"
    for name, cells in rows.items():
        said = set(re.findall(r"built only when `(\w+)` is loaded", cells[1]))
        assert said == only_when.get(name, set()), (
            f"README's Models row of {name}: says built only when {sorted(said)} is loaded, "
            f"the SQL needs {sorted(only_when.get(name, set()))}"
        )
