"""Field lists and types of the emulated collections, and how each collection is served.

The field lists mirror the field table of ``shared/voipstudio-api.md`` (``GET /cdrs``), the
known fields of ``/users``, ``/queues`` and ``/apitokens``, and its table "Other collections
worth syncing" (``/sms``, ``/chats``, ``/contacts``, ``/queuegroups``, ``/monitors``,
``/voicemessages``, ``/faxes``, ``/transactions``, ``/conversations``): only documented or
known fields, none invented. The emulator's filter engine, its data generators and the
JSON-schema tests all read them from here, so a field is declared exactly once.

Dates: a ``datetime`` field is wall-clock text ``YYYY-MM-DD HH:MM:SS`` (UTC), as the API
documents for ``calldate`` and most resources; an ``epoch`` field is Unix seconds as an integer,
as the live ``/calls`` resource sends ``start_time`` [doc]. Each collection declares the form
of its own date fields, so a resource that uses the other form is one declaration away.

:data:`COLLECTIONS` declares every collection the API serves. Every one of them is answered by
the same code (``app.Emulator``'s list and single-record routes, ``query.parse_query``,
``store.Table.select``): filters, sort, paging, ``group_by``, key scope and ``include`` work the
same everywhere. Adding a collection is one entry here plus its records (see ``app.Emulator``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal["int", "str", "number", "datetime", "epoch", "bool", "array"]

CDR_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "call_id": "int",
    "live_id": "int",
    "parent_live_id": "int",
    "user_id": "int",
    "sip_endpoint_id": "int",
    "server_id": "int",
    "type": "str",
    "calldate": "datetime",
    "clid": "str",
    "src": "str",
    "src_id": "str",
    "src_name": "str",
    "src_ua": "str",
    "src_codec": "str",
    "dst": "str",
    "dst_id": "str",
    "dst_name": "str",
    "dst_ua": "str",
    "dst_codec": "str",
    "duration": "int",
    "billsec": "int",
    "disposition": "str",
    "destination": "str",
    "context": "str",
    "rate": "number",
    "charge": "number",
    "t_cause": "str",
    "info": "str",
    "metadata": "str",
    "labels": "array",
    "nb_notes": "int",
}

USER_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "customer_id": "int",
    "first_name": "str",
    "last_name": "str",
    "email": "str",
    "ext": "str",
    "active": "bool",
    "dnd": "bool",
    "language": "str",
    "timezone": "str",
    "created_at": "datetime",
}

QUEUE_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "customer_id": "int",
    "name": "str",
    "number": "str",
    "users": "array",
    "ring_strategy": "str",
    "ring_time": "int",
    "skip_busy": "bool",
}

APITOKEN_FIELDS: dict[str, FieldType] = {
    "user_id": "int",
    "token": "str",
    "customer_id": "int",
    "name": "str",
    "host": "str",
    "user_agent": "str",
    "expiry": "int",
    "last_request_at": "datetime",
    "created_at": "datetime",
}


# The rest of the call history (shared/voipstudio-api.md, "Other collections worth syncing").
# The types of fields the doc lists without one are the emulator's [guess] (docs/emulator.md).
SMS_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "created_at": "datetime",
    "from": "str",
    "to": "str",
    "message": "str",
    "result": "str",
    "type": "str",
    "user_id": "int",
}

CHAT_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "created_at": "datetime",
    "customer_id": "int",
    "duration": "int",
    "operator_id": "int",
    "operator_ua": "str",
    "state": "int",
    "visitor_city": "str",
    "visitor_country": "str",
    "visitor_email": "str",
    "visitor_geo": "str",
    "visitor_id": "str",
    "visitor_ip": "str",
    "visitor_name": "str",
    "visitor_referer": "str",
    "visitor_ua": "str",
    "website_id": "int",
}

CONTACT_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "created_at": "datetime",
    "first_name": "str",
    "last_name": "str",
    "global": "bool",
    "group_name": "str",
    "internal": "bool",
    "rel_user_id": "int",
    "user_id": "int",
}

QUEUEGROUP_FIELDS: dict[str, FieldType] = {"id": "int", "name": "str"}

MONITOR_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "timestamp": "datetime",
    "caller": "str",
    "called": "str",
    "duration": "int",
    "type": "str",
    "size": "int",
}

VOICEMESSAGE_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "origtime": "datetime",
    "caller": "str",
    "dialled": "str",
    "duration": "int",
    "folder": "str",
    "is_new": "bool",
}

FAX_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "created_at": "datetime",
    "from": "str",
    "to": "str",
    "pages": "int",
    "status": "str",
    "type": "str",
    "filename": "str",
}

TRANSACTION_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "created_at": "datetime",
    "amount": "number",
    "currency_iso": "str",
    "type": "str",
    "result": "str",
}

CONVERSATION_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "created_at": "datetime",
    "channel": "str",
    "src": "str",
    "dst": "str",
    "duration": "int",
    "type": "str",
}


@dataclass(frozen=True)
class Include:
    """What ``include=NAME`` does on a collection: the ids in ``field`` are served as the
    records of ``collection`` (``fields[NAME]=a,b`` keeps only those keys)."""

    field: str
    collection: str


@dataclass(frozen=True)
class FileRoute:
    """``GET /NAME/{id}.EXT``: the file of a record (a recording, a fax, an invoice).

    Attributes:
        extension: the file name's extension (``mp3``, ``pdf``).
        kind: what the emulator synthesises (``audio`` from the record's ``duration``, ``fax``
            with the record's ``pages``, ``invoice``); see ``files.py``.
        size_field: the record's field that holds the file's exact size in bytes, if any.
        pending: ``(field, value)``: a record whose ``field`` holds ``value`` has no file yet
            (an unfinished transaction); its file route answers an error.
    """

    extension: str
    kind: Literal["audio", "fax", "invoice"]
    size_field: str | None = None
    pending: tuple[str, str] | None = None


@dataclass(frozen=True)
class CollectionSpec:
    """How one collection (``GET /NAME``, ``GET /NAME/{id}``) is served.

    Attributes:
        fields: the fields of its records, in the order they are served.
        owners: the fields naming the user a record belongs to (any of them, an int id, a
            string id or a list of ids): the key of a user who is not an admin sees only the
            records where one of them is that user. Empty (and no other rule below): every key
            sees every record.
        owner_numbers: fields holding a phone number or extension: a plain user's key also sees
            the records where one of them is one of that user's numbers (extension or DID).
        shared: a boolean field: the records where it is true are seen by every key.
        admin_only: only an admin's key sees any record (a plain user's list is empty).
        own_only: even an admin's key sees only its own user's records (API keys).
        includes: the ``include=`` values it accepts.
        single: ``GET /NAME/{id}`` serves one record by its ``id``.
        cursor: the date field a client pages on (documentation and generated arrivals).
        unfilterable: fields that answer 400 "Filtration error" under every operator (as the
            live ``/faxes`` does for ``from`` and ``to`` [code]).
        file: the record's file route, if it has one.
        deletable: ``DELETE /NAME/{ids}`` and ``DELETE /NAME`` remove records.
    """

    fields: dict[str, FieldType]
    owners: tuple[str, ...] = ()
    owner_numbers: tuple[str, ...] = ()
    shared: str | None = None
    admin_only: bool = False
    own_only: bool = False
    includes: Mapping[str, Include] = field(default_factory=dict)
    single: bool = True
    cursor: str | None = None
    unfilterable: frozenset[str] = frozenset()
    file: FileRoute | None = None
    deletable: bool = False

    @property
    def scoped(self) -> bool:
        """Whether a plain user's key sees less than an admin's."""
        return bool(self.owners or self.owner_numbers or self.shared or self.admin_only)


COLLECTIONS: dict[str, CollectionSpec] = {
    "cdrs": CollectionSpec(CDR_FIELDS, owners=("user_id", "src_id", "dst_id"), cursor="calldate"),
    "users": CollectionSpec(USER_FIELDS, owners=("id",)),
    "queues": CollectionSpec(
        QUEUE_FIELDS, owners=("users",), includes={"users": Include("users", "users")}
    ),
    # API keys have no id: GET /apitokens/{token} is not served, DELETE is (see app.py).
    "apitokens": CollectionSpec(APITOKEN_FIELDS, owners=("user_id",), own_only=True, single=False),
    # The rest of the call history. Who sees what with a plain user's key is a [guess] for
    # each (docs/emulator.md, "Keys and scope").
    "sms": CollectionSpec(SMS_FIELDS, owners=("user_id",), cursor="created_at", deletable=True),
    "chats": CollectionSpec(
        CHAT_FIELDS, owners=("operator_id",), cursor="created_at", deletable=True
    ),
    "voicemessages": CollectionSpec(
        VOICEMESSAGE_FIELDS,
        owner_numbers=("dialled",),
        cursor="origtime",
        file=FileRoute("mp3", "audio"),
        deletable=True,
    ),
    "monitors": CollectionSpec(
        MONITOR_FIELDS,
        owner_numbers=("caller", "called"),
        cursor="timestamp",
        file=FileRoute("mp3", "audio", size_field="size"),
    ),
    "faxes": CollectionSpec(
        FAX_FIELDS,
        admin_only=True,
        cursor="created_at",
        unfilterable=frozenset({"from", "to"}),
        file=FileRoute("pdf", "fax"),
    ),
    "transactions": CollectionSpec(
        TRANSACTION_FIELDS,
        admin_only=True,
        cursor="created_at",
        file=FileRoute("pdf", "invoice", pending=("result", "pending")),
    ),
    "conversations": CollectionSpec(
        CONVERSATION_FIELDS, owner_numbers=("src", "dst"), cursor="created_at"
    ),
    "contacts": CollectionSpec(
        CONTACT_FIELDS, owners=("user_id",), shared="global", cursor="created_at"
    ),
    "queuegroups": CollectionSpec(QUEUEGROUP_FIELDS),
}
