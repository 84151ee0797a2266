"""What the last build left, kept in two small tables of the dataset next to the models.

- ``_models_catalog``: one row per model built, with the hash of its definition (its rendered
  SQL, its header and the runner's version). A model whose hash changed, or that is missing,
  is rebuilt in full, and so is everything downstream of it.
- ``_models_watermarks``: one row per raw table and account: the newest ``_dlt_load_id`` of
  that account's rows the last build read. Rows loaded or merged since carry a newer one (dlt
  stamps every row of a load with its load id), which is how a build finds what changed.

dlt never touches these tables (``sync --full-refresh`` drops only its own); ``models --full``
rebuilds everything whatever they say.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

CATALOG_TABLE = "_models_catalog"
WATERMARKS_TABLE = "_models_watermarks"
STATE_TABLES = frozenset({CATALOG_TABLE, WATERMARKS_TABLE})
# Bumped when the runner's way of building changes what a model holds: every model is then
# rebuilt in full once.
RUNNER_VERSION = "2"


def definition_hash(*parts: str) -> str:
    """The hash a model's definition is remembered by."""
    digest = hashlib.sha256(RUNNER_VERSION.encode())
    for part in parts:
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:32]


@dataclass
class State:
    """The bookkeeping of the last build.

    Attributes:
        hashes: model name -> definition hash.
        watermarks: (raw table, account) -> newest ``_dlt_load_id`` read.
        exists: whether the state tables exist yet.
    """

    hashes: dict[str, str] = field(default_factory=dict)
    watermarks: dict[tuple[str, str], str] = field(default_factory=dict)
    exists: bool = False


Execute = Callable[[str], list[tuple[Any, ...]]]


def read_state(execute: Execute, dataset: str, relations: Iterable[str]) -> State:
    """The state tables' contents (empty when they do not exist yet)."""
    names = set(relations)
    state = State(exists=names >= STATE_TABLES)
    if CATALOG_TABLE in names:
        for model, digest in execute(
            f"select model, definition_hash from {dataset}.{CATALOG_TABLE}"
        ):
            state.hashes[str(model)] = str(digest)
    if WATERMARKS_TABLE in names:
        rows = execute(f"select source, account, load_id from {dataset}.{WATERMARKS_TABLE}")
        for source, account, load_id in rows:
            if load_id is not None:
                state.watermarks[(str(source), str(account))] = str(load_id)
    return state


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def write_state(execute: Execute, dataset: str, state: State) -> None:
    """Replace the state tables' contents (inside the build's transaction)."""
    if not state.exists:
        execute(
            f"create table if not exists {dataset}.{CATALOG_TABLE} "
            "(model varchar, definition_hash varchar)"
        )
        execute(
            f"create table if not exists {dataset}.{WATERMARKS_TABLE} "
            "(source varchar, account varchar, load_id varchar)"
        )
        state.exists = True
    execute(f"delete from {dataset}.{CATALOG_TABLE}")
    if state.hashes:
        values = ", ".join(
            f"({_literal(model)}, {_literal(digest)})"
            for model, digest in sorted(state.hashes.items())
        )
        execute(f"insert into {dataset}.{CATALOG_TABLE} values {values}")
    execute(f"delete from {dataset}.{WATERMARKS_TABLE}")
    if state.watermarks:
        values = ", ".join(
            f"({_literal(source)}, {_literal(account)}, {_literal(load_id)})"
            for (source, account), load_id in sorted(state.watermarks.items())
        )
        execute(f"insert into {dataset}.{WATERMARKS_TABLE} values {values}")
