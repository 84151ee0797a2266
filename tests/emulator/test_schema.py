"""Emulator records against a JSON schema written by hand from the field table of
shared/voipstudio-api.md ("GET /cdrs: call detail records"): every field present, typed as the
doc says, nullable, and nothing else (``additionalProperties: false``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import jsonschema

from pipelines.emulator.fields import CDR_FIELDS
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, admin_url, all_cdrs, configure, state


def nullable(json_type: str, **extra: Any) -> dict[str, Any]:
    return {"type": [json_type, "null"], **extra}


INT = nullable("integer")
STR = nullable("string")
NUMBER = nullable("number")
# The doc's table, row by row.
CDR_PROPERTIES: dict[str, dict[str, Any]] = {
    "id": INT,
    "call_id": INT,
    "live_id": INT,
    "parent_live_id": INT,
    "user_id": INT,
    "sip_endpoint_id": INT,
    "server_id": INT,
    "type": STR,
    # "call start, YYYY-MM-DD HH:MM:SS, UTC"
    "calldate": nullable("string", pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"),
    "clid": STR,
    "src": STR,
    "src_id": STR,
    "src_name": STR,
    "src_ua": STR,
    "src_codec": STR,
    "dst": STR,
    "dst_id": STR,
    "dst_name": STR,
    "dst_ua": STR,
    "dst_codec": STR,
    "duration": INT,
    "billsec": INT,
    "disposition": STR,
    "destination": STR,
    "context": STR,
    "rate": NUMBER,
    "charge": NUMBER,
    "t_cause": STR,
    "info": STR,
    "metadata": STR,
    "labels": nullable("array"),
    "nb_notes": INT,
}
CDR_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": CDR_PROPERTIES,
    "required": sorted(CDR_PROPERTIES),
    "additionalProperties": False,
}
VALIDATOR = jsonschema.Draft202012Validator(
    CDR_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def errors_of(record: dict[str, Any]) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(record)]


def test_schema_is_valid_and_matches_the_emulators_field_list() -> None:
    jsonschema.Draft202012Validator.check_schema(CDR_SCHEMA)
    # The emulator declares its fields once (fields.py): they must be the doc's.
    assert list(CDR_PROPERTIES) == list(CDR_FIELDS)


def test_every_stored_record_matches_the_schema(emulator: EmulatorServer) -> None:
    records = all_cdrs(emulator)
    assert len(records) >= 5000
    bad = {r.get("id"): errors_of(r) for r in records if errors_of(r)}
    assert bad == {}


def test_served_pages_and_single_records_match_the_schema(api: httpx.Client) -> None:
    records = api.get("/cdrs", params={"limit": 3000, "page": 1, "sort": "calldate"}).json()["data"]
    assert len(records) == 3000
    assert all(not errors_of(r) for r in records)
    for record in records[:20]:
        single = api.get(f"/cdrs/{record['id']}").json()["data"]
        assert errors_of(single) == []


def test_the_schema_rejects_what_the_doc_forbids() -> None:
    # The schema is strict enough to fail: these are the mistakes a broken emulator would make.
    good = {name: None for name in CDR_PROPERTIES} | {"id": 1, "calldate": "2026-01-05 10:00:00"}
    assert errors_of(good) == []
    assert errors_of(good | {"src_id": 100001})  # a user id as int, not string
    assert errors_of(good | {"duration": "60"})
    assert errors_of(good | {"calldate": "2026-01-05T10:00:00Z"})
    assert errors_of(good | {"labels": "vip"})
    assert errors_of({k: v for k, v in good.items() if k != "nb_notes"})


def test_extra_fields_fail_the_strict_schema_and_are_served(
    emulator_factory: Callable[..., EmulatorServer],
    client_for: Callable[..., httpx.Client],
) -> None:
    server = emulator_factory(rows=2000)
    client = client_for(server)
    assert all(not errors_of(r) for r in client.get("/cdrs", params={"limit": 100}).json()["data"])

    new_fields = {"recording_url": None, "cost_center": "sales"}
    assert configure(server, extra_fields=new_fields)["extra_fields"] == new_fields
    assert state(server)["extra_fields"] == new_fields

    page = client.get("/cdrs", params={"limit": 100}).json()["data"]
    single = client.get(f"/cdrs/{page[0]['id']}").json()["data"]
    for record in [*page, single, *all_cdrs(server)[:100]]:
        assert record["recording_url"] is None and record["cost_center"] == "sales"
        assert any("Additional properties" in message for message in errors_of(record))
        # Everything else is unchanged: without the new fields the record is valid again.
        assert errors_of({k: v for k, v in record.items() if k not in new_fields}) == []


def test_extra_fields_may_not_redefine_fields(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(rows=2000)
    for extra in ({"calldate": "x"}, ["not", "an", "object"]):
        response = HTTP.patch(admin_url(server, "/config"), json={"extra_fields": extra})
        assert response.status_code == 400
        assert state(server)["extra_fields"] == {}
