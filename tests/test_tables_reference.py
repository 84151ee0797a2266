"""README's "Tables" section lists what the catalog loads, as the catalog loads it.

The catalog (pipelines/voipstudio/catalog.py) is the one declaration of every collection; the
README's table of loaded tables is written by hand. Adding a collection without its row, or
changing how one is loaded without its words, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.reconcile.run import RUNS_TABLE
from pipelines.voipstudio import catalog
from pipelines.voipstudio.collection import DatedCollection, Dimension

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
STAGING = REPO / "sql" / "staging"


def _section(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def _table_rows() -> dict[str, list[str]]:
    """The rows of the section's first table, by the table named in their first cell."""
    rows: dict[str, list[str]] = {}
    for line in _section("## Tables").splitlines():
        if rows and not line.startswith("|"):
            break
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    return rows


def test_every_collection_has_a_row_and_nothing_else_does() -> None:
    rows = _table_rows()
    rejects = {f"{c.name}_rejects" for c in catalog.DATED}
    # Rows for rejects tables may be spelt out or covered by the generic `<table>_rejects` row.
    # Tables that are not collections: written by `voipstudio reconcile`.
    listed = set(rows) - rejects - {"<table>_rejects", RUNS_TABLE}
    # A dimension's resource may load more tables than its own (a history of its members).
    names = {
        table
        for collection in catalog.COLLECTIONS
        for table in (
            collection.tables if isinstance(collection, Dimension) else (collection.name,)
        )
    }
    assert listed == names, (
        "README's Tables section and the catalog disagree: "
        f"missing {sorted(names - listed)}, extra {sorted(listed - names)}"
    )
    assert "<table>_rejects" in rows or rejects <= set(rows)


def test_each_row_says_how_its_collection_is_loaded() -> None:
    rows = _table_rows()
    for collection in catalog.COLLECTIONS:
        loaded = rows[collection.name][3]
        if isinstance(collection, DatedCollection):
            assert loaded.startswith("merged"), (collection.name, loaded)
        else:
            assert isinstance(collection, Dimension)
            assert "replaced account by account" in loaded, (collection.name, loaded)
        key = rows[collection.name][2]
        assert key == "`(account, id)`", (collection.name, key)


def test_optional_collections_say_so() -> None:
    rows = _table_rows()
    for collection in catalog.COLLECTIONS:
        grain = rows[collection.name][1]
        if collection.optional:
            assert "only when" in grain, (collection.name, grain)
        else:
            assert "only when" not in grain, (collection.name, grain)


def test_the_guarantees_paragraph_names_every_dated_collection() -> None:
    section = _section("## Tables")
    paragraph = section[section.index("Every dated collection (") :]
    named = re.findall(r"`(\w+)`", paragraph[: paragraph.index(")")])
    assert named == [c.name for c in catalog.DATED]


def test_staging_models_named_exist() -> None:
    section = _section("## Tables")
    for model in sorted(set(re.findall(r"stg_voipstudio__\w+", section))):
        assert (STAGING / f"{model}.sql").is_file(), f"README names {model}, sql/staging has none"
