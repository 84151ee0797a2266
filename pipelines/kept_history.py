"""What ``voipstudio sync --full-refresh`` keeps: the histories the API cannot give back.

A full refresh drops every table of the source (dlt's ``drop_sources``) and reads everything
again from ``start_date``. A member history (``queue_memberships``: the queues' members as each
sync observed them, see :mod:`pipelines.voipstudio.memberships`) cannot be read again: the API
gives the current members only, so dropping it would lose for good who was in which queue
when. Before the drop each history table is copied aside (``_<table>_kept``, a table dlt does
not know and never drops); after the refresh's loads the copy goes back:

- when the refresh loaded the history again (it read the dimension), the two are merged as
  dlt's ``scd2`` merge would have merged that read into the kept history: a membership the
  refresh saw again keeps its row (its ``_dlt_valid_from`` of before), one current before and not
  seen by the refresh in an account it read ends when the refresh saw the account, a new one
  keeps the refresh's row; every retired row of before is kept;
- when it did not (``--resources`` without the dimension), the copy becomes the table again,
  and the next load of the dimension merges into it as usual.

A copy left by a refresh that stopped between the drop and the merge is merged back by the next
sync on the same machine (a marker file in the pipeline's working folder says that a copy is
out, so that the syncs in between ask the destination nothing), or else by the next full refresh
before it copies the table again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dlt

from pipelines.voipstudio import catalog
from pipelines.voipstudio.collection import Dimension
from pipelines.voipstudio.settings import ACCOUNT_COLUMN

log = logging.getLogger("voipstudio.sync")

# dlt's scd2 columns: the row's version hash and its validity.
ROW_HASH = "_dlt_id"
VALID_FROM = "_dlt_valid_from"
VALID_TO = "_dlt_valid_to"


def history_tables() -> tuple[str, ...]:
    """The member history tables of the catalog's dimensions."""
    return tuple(
        collection.history.table
        for collection in catalog.COLLECTIONS
        if isinstance(collection, Dimension) and collection.history is not None
    )


def kept_table(table: str) -> str:
    """Where a full refresh keeps ``table`` while the source's tables are dropped."""
    return f"_{table}_kept"


def kept_marker(pipeline: dlt.Pipeline) -> Path:
    """The file that says a copy is out (written before the drop, removed once merged)."""
    return Path(pipeline.working_dir) / "kept_histories"


def _stored(client: Any, tables: tuple[str, ...]) -> dict[str, list[str]]:
    # Imported here: pipelines.sync imports this module.
    from pipelines.sync import table_columns

    names = [name for table in tables for name in (table, kept_table(table))]
    return table_columns(client, names) if client.has_dataset() else {}


def keep_histories(pipeline: dlt.Pipeline) -> None:
    """Copy every member history aside before a full refresh drops the source's tables."""
    tables = history_tables()
    with pipeline.sql_client() as client:
        stored = _stored(client, tables)
        # A copy an earlier refresh left (it stopped before merging it back) goes back first:
        # the table holds what was observed since, the copy what was observed before.
        _restore(client, tables, stored)
        stored = _stored(client, tables)
        marker = kept_marker(pipeline)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("a full refresh kept its member histories aside\n", encoding="utf-8")
        for table in tables:
            if table in stored:
                client.execute_sql(
                    f"CREATE TABLE {client.make_qualified_table_name(kept_table(table))} AS "  # noqa: S608
                    f"SELECT * FROM {client.make_qualified_table_name(table)}"
                )


def restore_histories(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Put back what :func:`keep_histories` kept (see the module's docstring); nothing to do,
    and nothing asked of the destination, unless a copy is out.

    Returns:
        The kept rows put back, by history table (none: nothing was kept).
    """
    marker = kept_marker(pipeline)
    if not marker.exists():
        return {}
    tables = history_tables()
    with pipeline.sql_client() as client:
        restored = _restore(client, tables, _stored(client, tables))
    marker.unlink(missing_ok=True)
    return restored


def _restore(client: Any, tables: tuple[str, ...], stored: dict[str, list[str]]) -> dict[str, int]:
    restored: dict[str, int] = {}
    for table in tables:
        kept = kept_table(table)
        if kept not in stored:
            continue
        name = client.make_qualified_table_name(table)
        copy = client.make_qualified_table_name(kept)
        rows = client.execute_sql(f"SELECT count(*) FROM {copy}")  # noqa: S608
        restored[table] = int(rows[0][0]) if rows else 0
        with client.begin_transaction():
            if table not in stored:
                client.execute_sql(f"ALTER TABLE {copy} RENAME TO {table}")
            else:
                _merge(client, name, copy, [c for c in stored[kept] if c in stored[table]])
                client.execute_sql(f"DROP TABLE {copy}")
        log.info("%s: its history (%d rows) kept across the full refresh", table, restored[table])
    return restored


def _merge(client: Any, table: str, kept: str, columns: list[str]) -> None:
    """Merge the kept history ``kept`` into ``table``, which holds what the refresh loaded."""
    listed = ", ".join(columns)
    # Each statement names only our tables and dlt's columns.
    # Current before, not seen by the refresh in an account it read: ended when it read it.
    client.execute_sql(
        f"UPDATE {kept} AS k SET {VALID_TO} = seen.first_seen "  # noqa: S608
        f"FROM (SELECT {ACCOUNT_COLUMN}, min({VALID_FROM}) AS first_seen FROM {table} "
        f"WHERE {VALID_TO} IS NULL GROUP BY {ACCOUNT_COLUMN}) AS seen "
        f"WHERE k.{ACCOUNT_COLUMN} = seen.{ACCOUNT_COLUMN} AND k.{VALID_TO} IS NULL "
        f"AND k.{ROW_HASH} NOT IN (SELECT {ROW_HASH} FROM {table} WHERE {VALID_TO} IS NULL)"
    )
    # Seen again: the row of before (its first sighting) stays, the refresh's goes.
    client.execute_sql(
        f"DELETE FROM {table} WHERE {VALID_TO} IS NULL AND {ROW_HASH} IN "  # noqa: S608
        f"(SELECT {ROW_HASH} FROM {kept} WHERE {VALID_TO} IS NULL)"
    )
    # Every row of before, once (a merge run again finds them there already).
    client.execute_sql(
        f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {kept} AS k "  # noqa: S608
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE t.{ROW_HASH} = k.{ROW_HASH} "
        f"AND t.{VALID_FROM} = k.{VALID_FROM})"
    )
