"""Field lists and types of the emulated collections.

These mirror the field table of ``shared/voipstudio-api.md`` (``GET /cdrs``) and the known
fields of ``/users`` and ``/queues``. The emulator's filter engine, its data generator and the
JSON-schema test all read them from here, so a field is declared exactly once.
"""

from __future__ import annotations

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
