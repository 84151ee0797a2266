"""Field lists and types of the emulated collections, and how each collection is served.

The field lists mirror the field table of ``shared/voipstudio-api.md`` (``GET /cdrs``) and the
known fields of ``/users``, ``/queues`` and ``/apitokens``. The emulator's filter engine, its
data generator and the JSON-schema test all read them from here, so a field is declared exactly
once.

:data:`COLLECTIONS` declares every collection the API serves. Every one of them is answered by
the same code (``app.Emulator``'s list and single-record routes, ``query.parse_query``,
``store.Table.select``): filters, sort, paging, ``group_by``, key scope and ``include`` work the
same everywhere. Adding a collection is one entry here plus its records (see ``app.Emulator``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal["int", "str", "number", "datetime", "bool", "array"]

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


@dataclass(frozen=True)
class Include:
    """What ``include=NAME`` does on a collection: the ids in ``field`` are served as the
    records of ``collection`` (``fields[NAME]=a,b`` keeps only those keys)."""

    field: str
    collection: str


@dataclass(frozen=True)
class CollectionSpec:
    """How one collection (``GET /NAME``, ``GET /NAME/{id}``) is served.

    Attributes:
        fields: the fields of its records, in the order they are served.
        owners: the fields naming the user a record belongs to (any of them, an int id, a
            string id or a list of ids): the key of a user who is not an admin sees only the
            records where one of them is that user. Empty: every key sees every record.
        own_only: even an admin's key sees only its own user's records (API keys).
        includes: the ``include=`` values it accepts.
        single: ``GET /NAME/{id}`` serves one record by its ``id``.
    """

    fields: dict[str, FieldType]
    owners: tuple[str, ...] = ()
    own_only: bool = False
    includes: Mapping[str, Include] = field(default_factory=dict)
    single: bool = True


COLLECTIONS: dict[str, CollectionSpec] = {
    "cdrs": CollectionSpec(CDR_FIELDS, owners=("user_id", "src_id", "dst_id")),
    "users": CollectionSpec(USER_FIELDS, owners=("id",)),
    "queues": CollectionSpec(
        QUEUE_FIELDS, owners=("users",), includes={"users": Include("users", "users")}
    ),
    # API keys have no id: GET /apitokens/{token} is not served, DELETE is (see app.py).
    "apitokens": CollectionSpec(APITOKEN_FIELDS, owners=("user_id",), own_only=True, single=False),
}
