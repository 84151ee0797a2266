"""Collections as declared (``catalog``): what a declaration must hold, the table every dated
one gets, and the shared parsing and DST placement applied to another collection than CDRs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pytest

from pipelines.voipstudio import catalog
from pipelines.voipstudio.catalog import CDRS, VOICEMESSAGES
from pipelines.voipstudio.collection import Cursor, DatedCollection
from pipelines.voipstudio.records import parse_page, table_schema
from pipelines.voipstudio.wallclock import FoldResolver

MADRID = "Europe/Madrid"
FOLD_AT = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # Madrid goes back from 03:00 to 02:00


def declare(**changes: Any) -> DatedCollection:
    fields: dict[str, Any] = {
        "name": "things",
        "path": "/things",
        "records": "things",
        "record": "thing",
        "cursor": Cursor("created_at"),
        "columns": {"id": "bigint", "created_at": "timestamp", "length": "bigint"},
    }
    return DatedCollection(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"columns": {"id": "bigint", "created_at": "text"}}, "must be a timestamp"),
        ({"columns": {"id": "text", "created_at": "timestamp"}}, "primary key id must be"),
        ({"written_after": "nothing"}, "written_after nothing"),
        (
            {"columns": {"id": "bigint", "created_at": "timestamp", "when": "timestamp"}},
            "only the cursor",
        ),
        ({"columns": {"id": "bigint", "created_at": "timestamp", "x": "int"}}, "unknown type"),
        (
            {"columns": {"id": "bigint", "created_at": "timestamp", "extra_fields": "text"}},
            "the pipeline's own",
        ),
    ],
)
def test_a_declaration_that_cannot_be_read_is_refused(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        declare(**changes)


def test_every_dated_collection_gets_the_same_table_shape() -> None:
    assert declare().name == "things"
    for collection in catalog.DATED:
        schema = table_schema(collection)
        names = schema.names
        cursor = collection.cursor.path
        assert names[0] == collection.primary_key
        assert not schema.field(collection.primary_key).nullable
        assert schema.field(cursor).type == pa.timestamp("us", tz="UTC")
        assert names.index(f"{cursor}_raw") == names.index(cursor) + 1
        assert names[-1] == "extra_fields"
        assert collection.rejects_table == f"{collection.name}_rejects"
        hints = collection.table_hints()
        assert hints["primary_key"] == ("account", collection.primary_key)
        assert "deleted_at" in hints["columns"]
    assert {c.name for c in catalog.COLLECTIONS} == set(catalog.NAMES)
    assert catalog.split_resource("voicemessages_acme") == (VOICEMESSAGES, "acme")
    assert catalog.split_resource("cdrs") == (CDRS, None)


def voicemail(record_id: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": record_id,
        "origtime": "2026-03-01 10:00:00",
        "caller": "+34910000000",
        "dialled": "101",
        "duration": 20,
        "folder": "INBOX",
        "is_new": True,
    }
    record.update(fields)
    return record


def test_voicemails_take_the_lossless_coercions_and_reject_the_rest() -> None:
    records = [
        voicemail(1),
        voicemail(2, is_new="false", duration="21"),
        voicemail(3, is_new=0, duration=22.0, mood="calm"),
        voicemail(4, is_new="maybe"),
        voicemail(5, origtime="yesterday"),
    ]
    page = parse_page(orjson.dumps({"data": records, "total": 5}), VOICEMESSAGES)
    assert page.table.column("id").to_pylist() == [1, 2, 3]
    assert page.table.column("is_new").to_pylist() == [True, False, False]
    assert page.table.column("duration").to_pylist() == [20, 21, 22]
    assert page.table.column("extra_fields").to_pylist() == [None, None, '{"mood":"calm"}']
    reasons = {r.record_id: r.reason for r in page.rejects}
    assert reasons == {
        "4": "is_new: 'maybe' is not a boolean",
        "5": "origtime: 'yesterday' is not a timestamp ('YYYY-MM-DD HH:MM:SS' expected)",
    }
    # The fast path gives the same table for a page it can take as is.
    fast = parse_page(orjson.dumps({"data": records[:1], "total": 1}), VOICEMESSAGES)
    slow = parse_page(orjson.dumps({"data": [*records[:1], records[3]], "total": 2}), VOICEMESSAGES)
    assert fast.table.equals(slow.table)


def _by_id(table: pa.Table) -> dict[int, datetime]:
    ids, times = table.column("id").to_pylist(), table.column("origtime").to_pylist()
    return dict(zip(ids, times, strict=True))


def test_voicemails_of_the_repeated_hour_are_placed_by_the_order_of_their_ids() -> None:
    """A voicemail is written when the message ends (origtime + duration): in id order those
    ends do not go back in time, which tells the two passes of 02:00-02:59 apart."""
    zone = ZoneInfo(MADRID)
    rng = random.Random(4)
    messages = []
    moment = FOLD_AT - timedelta(hours=3)
    while moment < FOLD_AT + timedelta(hours=3):
        messages.append((moment, rng.randint(5, 120)))
        moment += timedelta(seconds=rng.randint(60, 240))
    messages.sort(key=lambda m: m[0] + timedelta(seconds=m[1]))
    truth, records = {}, []
    for record_id, (start, duration) in enumerate(messages, start=500):
        wall = start.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        records.append(voicemail(record_id, origtime=wall, duration=duration))
        truth[record_id] = start
    resolver = FoldResolver(MADRID, records="voicemails", cursor="origtime")
    loaded: dict[int, datetime] = {}
    for at in range(0, len(records), 9):  # pages cut the hour anywhere
        body = orjson.dumps({"data": records[at : at + 9], "total": len(records)})
        parsed = parse_page(body, VOICEMESSAGES, MADRID)
        table = resolver.take(parsed.table, parsed.fold_rows, parsed.ambiguous)
        loaded.update(_by_id(table))
    held = resolver.release()
    assert held is not None and held.num_rows > 10, "the hour held too few voicemails"
    loaded.update(_by_id(held))
    assert loaded == truth
