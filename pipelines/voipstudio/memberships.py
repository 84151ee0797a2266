"""The members of a dimension's records as each sync observed them (a :class:`MemberHistory`:
the queues' ``users``).

The API gives a queue's current members only. Every sync hands dlt one row per queue and
member it read, into the history table, with dlt's ``scd2`` merge: a membership the table
holds as current and the sync saw again is left alone (an unchanged sync adds nothing); one it
did not see is retired (``_dlt_valid_to`` = the sync's load package time); a new one is
inserted (``_dlt_valid_from`` = the same). The merge key ``account`` confines retiring to the
accounts the load holds rows of, so an account whose read failed, or another account's
resource, keeps its memberships. So that every account read holds a row, a queue without
members is a row with a null member, and an account without queues one with a null queue
(the staging model leaves both out).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import dlt

from pipelines.voipstudio.collection import MemberHistory
from pipelines.voipstudio.errors import DataCheckError
from pipelines.voipstudio.settings import ACCOUNT_COLUMN


def history_hints(history: MemberHistory) -> Any:
    """dlt's hints of the history table (a table variant of the dimension's resource)."""
    return dlt.mark.make_hints(
        table_name=history.table,
        write_disposition={"disposition": "merge", "strategy": "scd2"},
        # scd2 versions rows by their hash: no primary key (not the dimension's).
        primary_key=[],
        merge_key=ACCOUNT_COLUMN,
        columns={
            ACCOUNT_COLUMN: {"data_type": "text", "nullable": False},
            history.owner_key: {"data_type": "bigint", "nullable": True},
            history.member_key: {"data_type": "bigint", "nullable": True},
        },
    )


def member_id(value: Any, history: MemberHistory, owner: Any) -> int:
    """A member's id as the list gives it: an id (integer or its digits), or an object with an
    ``id`` (``include=users``).

    Raises:
        DataCheckError: anything else, naming the record.
    """
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise DataCheckError(
        f"{history.field} of {history.owner_key} {owner} holds {value!r} where a member id "
        "was expected; nothing of the collection was loaded (the API's format changed: report "
        "it with the record)"
    )


def membership_rows(
    account: str, records: Iterable[dict[str, Any]], history: MemberHistory
) -> list[dict[str, Any]]:
    """The history rows of one account's records: one per record and member (each member
    once), a record without members as a null member, no records as one null row.

    Raises:
        DataCheckError: a list holding something other than member ids, or a list field that
            is not a list.
    """
    rows: list[dict[str, Any]] = []
    for record in records:
        owner = record.get("id")
        members = record.get(history.field) or []
        if not isinstance(members, list):
            raise DataCheckError(
                f"{history.field} of {history.owner_key} {owner} is {members!r}, not a list "
                "of member ids; nothing of the collection was loaded"
            )
        ids = dict.fromkeys(member_id(m, history, owner) for m in members)
        for member in ids or [None]:
            rows.append(
                {ACCOUNT_COLUMN: account, history.owner_key: owner, history.member_key: member}
            )
    return rows or [{ACCOUNT_COLUMN: account, history.owner_key: None, history.member_key: None}]


def with_history(
    pages: Iterable[list[dict[str, Any]]], history: MemberHistory | None, account: str
) -> Iterator[Any]:
    """The dimension's pages, then the history rows they make; the rows are made before the
    first page is handed on, so that a list the history cannot read loads nothing."""
    if history is None:
        yield from pages
        return
    read = list(pages)
    rows = membership_rows(account, (record for page in read for record in page), history)
    yield from read
    yield dlt.mark.with_hints(rows, history_hints(history), create_table_variant=True)
