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
    MemberHistory,
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
    optional=True,
)

# Call recordings (the file at `/monitors/{id}.mp3`): `timestamp` is when the recorded leg
# started, `duration` its talk time, `size` the file's bytes [code]; written when the leg ends.
MONITORS = DatedCollection(
    name="monitors",
    path="/monitors",
    records="recordings",
    record="recording",
    cursor=Cursor("timestamp", WALL_CLOCK),
    columns={
        "id": "bigint",
        "timestamp": "timestamp",
        "caller": "text",
        "called": "text",
        "duration": "bigint",
        "type": "text",
        "size": "bigint",
    },
    written_after="duration",
    optional=True,
)

# SMS sent and received; `from` and `to` are digits without "+" [doc].
SMS = DatedCollection(
    name="sms",
    path="/sms",
    records="SMS",
    record="SMS",
    cursor=Cursor("created_at", WALL_CLOCK),
    columns={
        "id": "bigint",
        "created_at": "timestamp",
        "from": "text",
        "to": "text",
        "message": "text",
        "result": "text",
        "type": "text",
        "user_id": "bigint",
    },
    optional=True,
)

# Website chats; `state` 0-4 [doc], `duration` seconds.
CHATS = DatedCollection(
    name="chats",
    path="/chats",
    records="chats",
    record="chat",
    cursor=Cursor("created_at", WALL_CLOCK),
    columns={
        "id": "bigint",
        "created_at": "timestamp",
        "customer_id": "bigint",
        "duration": "bigint",
        "operator_id": "bigint",
        "operator_ua": "text",
        "state": "bigint",
        "visitor_city": "text",
        "visitor_country": "text",
        "visitor_email": "text",
        "visitor_geo": "text",
        "visitor_id": "text",
        "visitor_ip": "text",
        "visitor_name": "text",
        "visitor_referer": "text",
        "visitor_ua": "text",
        "website_id": "bigint",
    },
    optional=True,
)

# Conversations: a thread of SMS or a chat, one record each [code].
CONVERSATIONS = DatedCollection(
    name="conversations",
    path="/conversations",
    records="conversations",
    record="conversation",
    cursor=Cursor("created_at", WALL_CLOCK),
    columns={
        "id": "bigint",
        "created_at": "timestamp",
        "channel": "text",
        "src": "text",
        "dst": "text",
        "duration": "bigint",
        "type": "text",
    },
    optional=True,
)

# Faxes sent and received (the file at `/faxes/{id}.pdf`); `from` and `to` cannot be filtered
# [code], which the reader never does (it filters on the cursor only).
FAXES = DatedCollection(
    name="faxes",
    path="/faxes",
    records="faxes",
    record="fax",
    cursor=Cursor("created_at", WALL_CLOCK),
    columns={
        "id": "bigint",
        "created_at": "timestamp",
        "from": "text",
        "to": "text",
        "pages": "bigint",
        "status": "text",
        "type": "text",
        "filename": "text",
    },
    optional=True,
)

# The account's transactions (subscription fees, call charges, payments), each in its
# `currency_iso`; the invoice is at `/transactions/{id}.pdf` once `result` is not pending [code].
TRANSACTIONS = DatedCollection(
    name="transactions",
    path="/transactions",
    records="transactions",
    record="transaction",
    cursor=Cursor("created_at", WALL_CLOCK),
    columns={
        "id": "bigint",
        "created_at": "timestamp",
        "amount": "double",
        "currency_iso": "text",
        "type": "text",
        "result": "text",
    },
    optional=True,
)

USERS = Dimension(name="users", path="/users", records="users", record="user")
# Call queues; their member user ids land in `queues__users` (dlt's nested table, replaced
# with the queues), and every membership as each sync observed it in `queue_memberships` (the
# API gives the current members only).
QUEUES = Dimension(
    name="queues",
    path="/queues",
    records="queues",
    record="queue",
    history=MemberHistory(
        table="queue_memberships", field="users", owner_key="queue_id", member_key="user_id"
    ),
)
# The company's directory: contacts change (renamed, regrouped) without a date saying so, so
# they are read whole, like users, rather than incrementally on `created_at`.
CONTACTS = Dimension(
    name="contacts", path="/contacts", records="contacts", record="contact", optional=True
)
QUEUEGROUPS = Dimension(
    name="queuegroups",
    path="/queuegroups",
    records="queue groups",
    record="queue group",
    optional=True,
)

# In the order a sync reads and reports them.
COLLECTIONS: tuple[Collection, ...] = (
    CDRS,
    USERS,
    QUEUES,
    VOICEMESSAGES,
    MONITORS,
    SMS,
    CHATS,
    CONVERSATIONS,
    FAXES,
    TRANSACTIONS,
    CONTACTS,
    QUEUEGROUPS,
)
DATED: tuple[DatedCollection, ...] = tuple(c for c in COLLECTIONS if isinstance(c, DatedCollection))
NAMES: tuple[str, ...] = tuple(c.name for c in COLLECTIONS)
# `resources = "all"` (or `--resources all`): every collection.
ALL = "all"


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

    ``all`` stands for every collection.

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
    if ALL in wanted:
        wanted = [part for part in wanted if part != ALL] + list(NAMES)
    unknown = sorted(set(wanted) - set(NAMES))
    if unknown or not wanted:
        what = f"unknown resources {unknown}" if unknown else "no resources"
        raise ConfigError(f"{where}: {what}; choose from {', '.join(NAMES)} (or {ALL})")
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
