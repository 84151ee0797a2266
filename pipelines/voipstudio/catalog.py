"""The collections the source reads: one declaration each (see ``collection``).

What each field holds, and how sure we are of it, is in ``../shared/voipstudio-api.md`` of the
team workspace. Adding a dated collection is one declaration here plus its staging view (and,
for the tests, the emulator's data): ``docs/collections.md`` walks through ``/voicemessages``.
Which collections load unless ``--resources`` says otherwise is the ``resources`` setting
(``settings.SourceSettings``).
"""

from __future__ import annotations

from pipelines.voipstudio.collection import (
    WALL_CLOCK,
    Collection,
    Cursor,
    DatedCollection,
    Dimension,
)
from pipelines.voipstudio.errors import ConfigError

# Call detail records: one per call leg, written when the call ends.
CDRS = DatedCollection(
    name="cdrs",
    path="/cdrs",
    records="CDRs",
    record="CDR",
    cursor=Cursor("calldate", WALL_CLOCK),
    # The table's column order follows the API's field list.
    columns={
        "id": "bigint",
        "call_id": "bigint",
        "live_id": "bigint",
        "parent_live_id": "bigint",
        "user_id": "bigint",
        "sip_endpoint_id": "bigint",
        "server_id": "bigint",
        "type": "text",
        "calldate": "timestamp",
        "clid": "text",
        "src": "text",
        "src_id": "text",
        "src_name": "text",
        "src_ua": "text",
        "src_codec": "text",
        "dst": "text",
        "dst_id": "text",
        "dst_name": "text",
        "dst_ua": "text",
        "dst_codec": "text",
        "duration": "bigint",
        "billsec": "bigint",
        "disposition": "text",
        "destination": "text",
        "context": "text",
        "rate": "double",
        "charge": "double",
        "t_cause": "text",
        "info": "text",
        "metadata": "text",
        # JSON text: every destination takes text, while an Arrow list column cannot be
        # written to the CSV/INSERT files of PostgreSQL and others.
        "labels": "text_list",
        "nb_notes": "bigint",
    },
    # A CDR is written when its call ends, `duration` seconds after `calldate`.
    written_after="duration",
)

# Voicemail left after a missed call: `origtime` is when the message started (the end of the
# call), `duration` its length; the record is written when the message ends.
VOICEMESSAGES = DatedCollection(
    name="voicemessages",
    path="/voicemessages",
    records="voicemails",
    record="voicemail",
    cursor=Cursor("origtime", WALL_CLOCK),
    columns={
        "id": "bigint",
        "origtime": "timestamp",
        "caller": "text",
        "dialled": "text",
        "duration": "bigint",
        "folder": "text",
        "is_new": "bool",
    },
    written_after="duration",
)

USERS = Dimension(name="users", path="/users", records="users", record="user")
# Call queues; their member user ids land in `queues__users` (dlt's nested table).
QUEUES = Dimension(name="queues", path="/queues", records="queues", record="queue")

# In the order a sync reads and reports them.
COLLECTIONS: tuple[Collection, ...] = (CDRS, USERS, QUEUES, VOICEMESSAGES)
DATED: tuple[DatedCollection, ...] = tuple(c for c in COLLECTIONS if isinstance(c, DatedCollection))
NAMES: tuple[str, ...] = tuple(c.name for c in COLLECTIONS)


def by_name(name: str) -> Collection:
    """The collection called ``name``.

    Raises:
        KeyError: there is none.
    """
    for collection in COLLECTIONS:
        if collection.name == name:
            return collection
    raise KeyError(name)


def choose(names: str | list[str] | tuple[str, ...], where: str) -> tuple[Collection, ...]:
    """The collections a list of names chooses (``cdrs,users`` or a sequence), in catalog order.

    Args:
        names: the names, comma-separated or a sequence (a JSON list's text is read too).
        where: how messages name the setting or option (``--resources``, ``resources``).

    Raises:
        ConfigError: an unknown name, or none at all.
    """
    if isinstance(names, str):
        text = names.strip().removeprefix("[").removesuffix("]")
        parts = [part.strip().strip("'\"") for part in text.split(",")]
    else:
        parts = [str(part).strip() for part in names]
    wanted = [part for part in parts if part]
    unknown = sorted(set(wanted) - set(NAMES))
    if unknown or not wanted:
        what = f"unknown resources {unknown}" if unknown else "no resources"
        raise ConfigError(f"{where}: {what}; choose from {', '.join(NAMES)}")
    return tuple(c for c in COLLECTIONS if c.name in wanted)


def split_resource(resource: str) -> tuple[Collection | None, str | None]:
    """The collection and the account of a resource name (``cdrs``, ``cdrs_acme``); (None,
    None) for a resource of no collection."""
    for collection in sorted(COLLECTIONS, key=lambda c: -len(c.name)):
        if resource == collection.name:
            return collection, None
        if resource.startswith(collection.name + "_"):
            return collection, resource[len(collection.name) + 1 :]
    return None, None
