"""A dated collection whose date is Unix seconds (the live ``/calls`` writes ``start_time`` so),
read by the shared reader: integer bounds in every filter, the UTC clock for windows and the
stored cursor, the account's zone only for the dates a person writes (``start_date``).

The emulator serves no such collection, so a small API is served here, over real HTTP on
loopback, with the documented query semantics (a JSON ``filter`` of ``gt``/``lte`` entries,
``sort``/``dir``, ``page``/``limit``, ``total``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import pyarrow as pa
import pytest

from pipelines.voipstudio.accounts import build_account
from pipelines.voipstudio.collection import EPOCH, Cursor, DatedCollection
from pipelines.voipstudio.plan import RunPlan
from pipelines.voipstudio.reader import AccountReader
from pipelines.voipstudio.records import parse_page, table_schema
from pipelines.voipstudio.settings import AccountSettings
from pipelines.voipstudio.state import ResourceState

CALLS = DatedCollection(
    name="calls",
    path="/calls",
    records="calls",
    record="call",
    cursor=Cursor("start_time", EPOCH),
    columns={"id": "bigint", "start_time": "timestamp", "duration": "bigint", "src": "text"},
    written_after="duration",
)
START = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
# 400 calls over three days, several in some seconds.
RECORDS = [
    {"id": 1000 + i, "start_time": START + (i * 647) % (3 * 86400), "duration": i % 90, "src": "1"}
    for i in range(400)
]
RECORDS.sort(key=lambda r: (r["start_time"] + r["duration"], r["id"]))
for number, record in enumerate(RECORDS):
    record["id"] = 1000 + number  # ids in the order calls were written


class _Api(BaseHTTPRequestHandler):
    filters_seen: list[Any] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path != "/v1/calls":
            self.send_error(404)
            return
        entries = json.loads(query.get("filter", "[]"))
        _Api.filters_seen.append(entries)
        rows = list(RECORDS)
        for entry in entries:
            value = entry["value"]
            assert isinstance(value, int), f"a bound sent as {value!r}, not Unix seconds"
            field = entry["property"]
            if entry["operator"] == "gt":
                rows = [r for r in rows if r[field] > value]
            elif entry["operator"] == "lte":
                rows = [r for r in rows if r[field] <= value]
        rows.sort(key=lambda r: r[query.get("sort", "id")], reverse=query.get("dir") == "DESC")
        limit, page = int(query["limit"]), int(query["page"])
        body = orjson.dumps({"data": rows[(page - 1) * limit : page * limit], "total": len(rows)})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Api.filters_seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_epoch_seconds_parse_to_utc_instants_and_odd_ones_are_rejects() -> None:
    good = RECORDS[:3]
    page = parse_page(orjson.dumps({"data": good, "total": 3}), CALLS, "Europe/Madrid")
    assert page.table.schema == table_schema(CALLS)
    assert "start_time_raw" not in page.table.schema.names  # the integer is its instant
    assert page.table.column("start_time").to_pylist() == [
        datetime.fromtimestamp(r["start_time"], UTC) for r in good
    ]
    odd = [
        {**good[0], "id": 1, "start_time": "2026-03-01 10:00:00"},
        {**good[0], "id": 2, "start_time": -5},
        {**good[0], "id": 3, "start_time": 1.5},
        {"id": 4, "duration": 3, "src": "1"},
    ]
    lenient = parse_page(orjson.dumps({"data": [*odd, good[1]], "total": 5}), CALLS)
    assert lenient.table.column("id").to_pylist() == [good[1]["id"]]
    assert [r.record_id for r in lenient.rejects] == ["1", "2", "3", "4"]
    assert all("Unix seconds expected" in r.reason for r in lenient.rejects)
    assert lenient.keys[:4] == [1, 2, 3, 4]


def test_the_shared_reader_reads_an_epoch_collection_once_with_integer_bounds(api: str) -> None:
    account = build_account(
        "default",
        AccountSettings(
            base_url=api, page_size=7, timezone="Europe/Madrid", start_date="2026-03-01"
        ),
        {"api_key": "key"},
        named=False,
    )
    run_at = datetime.fromtimestamp(START + 3 * 86400, UTC)
    state = ResourceState()
    reader = AccountReader(account, RunPlan(run_at=run_at), named=False)
    tables = [
        item for item in reader.read_dated(CALLS, "calls", state) if isinstance(item, pa.Table)
    ]
    loaded = pa.concat_tables(tables)
    ids = loaded.column("id").to_pylist()
    # start_date is midnight in Madrid (23:00 UTC the day before): everything from there.
    assert sorted(ids) == sorted(r["id"] for r in RECORDS if r["start_time"] <= run_at.timestamp())
    assert len(ids) == len(set(ids))
    assert loaded.column("account").unique().to_pylist() == ["default"]
    first = _Api.filters_seen[0]
    assert first[0] == {
        "property": "start_time",
        "operator": "gt",
        "value": int(datetime(2026, 2, 28, 23, tzinfo=UTC).timestamp()) - 1,
    }
    # The cursor is the UTC clock's text of the range's end.
    assert state.cursor == "2026-03-04 00:00:00" and state.synced_at is not None
    # The next run starts at the cursor less the lag (6h), in Unix seconds.
    _Api.filters_seen.clear()
    later = datetime.fromtimestamp(START + 3 * 86400 + 60, UTC)
    again = AccountReader(account, RunPlan(run_at=later), named=False)
    rows = sum(
        item.num_rows
        for item in again.read_dated(CALLS, "calls", state)
        if isinstance(item, pa.Table)
    )
    lower = int(datetime(2026, 3, 3, 18, tzinfo=UTC).timestamp())
    assert _Api.filters_seen[0][0]["value"] == lower
    assert rows == sum(1 for r in RECORDS if lower < r["start_time"] <= later.timestamp())
