"""A series of syncs that exercise every kind of change the incremental models must follow.

After each step the models are built incrementally (what ``voipstudio sync`` does) and the
caller compares every model with a full rebuild of the same data. The steps, on a small
synthetic company whose week spans the Europe/Madrid spring DST change:

1. the first sync (the first build is a full one);
2. a sync with nothing new (it re-reads the lag window: nothing may change);
3. new CDRs arriving now, some late (started hours ago, inside the lag window), and a late
   copy of a call placed earlier;
4. CDRs corrected in place: talk time, disposition, a leg moved to another call, a calldate
   moved two days back (its old day must be rebuilt too);
5. a backfill (``--start``) re-reading a range with a corrected CDR older than the lag;
6. CDRs marked deleted by a merge that sets ``deleted_at`` (as ``voipstudio reconcile`` does;
   the column does not exist before this step);
7. a user renamed (a dimension the per-user mart carries);
8. a day later: the data horizon moves past open 24 h callback windows;
9. an account's CDRs deleted by hand (rows that vanish without a load).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
import pyarrow as pa
from models_harness import ModelsHarness

from pipelines.sync import stamp_load_ids

# A step changes the data and returns the options of the sync that follows (None: no sync).
Step = Callable[[ModelsHarness], dict[str, Any] | None]

COMPANY: dict[str, Any] = {
    "seed": 11,
    "users": 6,
    "queues": 2,
    "rows": 700,
    "start": "2026-03-25",
    "end": "2026-04-01",
    "now": "2026-04-01 00:00:00",
}


def _records(harness: ModelsHarness) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = harness.admin.get("/cdrs").json()["data"]
    return sorted(data, key=lambda r: (r["calldate"], r["id"]))


def _patch(harness: ModelsHarness, updates: list[tuple[int, dict[str, Any]]]) -> None:
    response = harness.admin.post(
        "/cdrs/patch", json={"updates": [{"id": i, "set": s} for i, s in updates]}
    )
    assert response.status_code == 200 and response.json()["patched"] == len(updates)


def _newest(harness: ModelsHarness) -> datetime:
    return max(datetime.fromisoformat(r["calldate"]) for r in _records(harness))


def _text(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def nothing(harness: ModelsHarness) -> dict[str, Any] | None:
    """A sync with nothing new: only the lag window is read again."""
    return {}


def new_and_late(harness: ModelsHarness) -> dict[str, Any] | None:
    newest = _newest(harness)
    added = harness.admin.post(
        "/cdrs",
        json={
            "generate": {
                "count": 60,
                "late_fraction": 0.5,
                "max_late_seconds": 4 * 3600,
                "now": _text(newest + timedelta(minutes=20)),
            }
        },
    )
    assert added.status_code == 200, added.text
    # A late copy of an answered call, three hours before the newest: same number, new ids.
    records = _records(harness)
    answered = next(r for r in reversed(records) if r["billsec"] and r["call_id"])
    top = max(r["id"] for r in records)
    copy = dict(answered, id=top + 1, call_id=answered["call_id"] + 10_000_000)
    copy["calldate"] = _text(newest - timedelta(hours=3))
    response = harness.admin.post("/cdrs", json={"records": [copy]})
    assert response.status_code == 200, response.text
    return {}


def corrected(harness: ModelsHarness) -> dict[str, Any] | None:
    newest = _newest(harness)
    recent = [
        r
        for r in _records(harness)
        if datetime.fromisoformat(r["calldate"]) > newest - timedelta(hours=5) and r["call_id"]
    ]
    talked = next(r for r in recent if r["billsec"])
    answered = next(r for r in recent if r["disposition"] == "CONNECTED" and r is not talked)
    legs: dict[int, list[dict[str, Any]]] = {}
    for record in recent:
        legs.setdefault(record["call_id"], []).append(record)
    moved_leg = next(ls[-1] for ls in legs.values() if len(ls) > 1)
    other_call = next(r for r in recent if r["call_id"] != moved_leg["call_id"])
    moved_day = next(
        r for r in recent if r not in (talked, answered, moved_leg) and r["call_id"] in legs
    )
    when = datetime.fromisoformat(moved_day["calldate"]) - timedelta(days=2, minutes=7)
    _patch(
        harness,
        [
            (
                talked["id"],
                {"billsec": talked["billsec"] + 95, "duration": talked["duration"] + 95},
            ),
            (answered["id"], {"disposition": "NO ANSWER", "billsec": 0}),
            (moved_leg["id"], {"call_id": other_call["call_id"]}),
            (moved_day["id"], {"calldate": _text(when)}),
        ],
    )
    return {}


def backfill(harness: ModelsHarness) -> dict[str, Any] | None:
    """An inbound CDR more than a day old (outside the lag) corrected: only a re-read sees it."""
    newest = _newest(harness)
    old = [
        r
        for r in _records(harness)
        if datetime.fromisoformat(r["calldate"]) < newest - timedelta(days=1)
        and r["type"] == "I"
        and r["src"]
    ][-1]
    _patch(harness, [(old["id"], {"src": "+34 699 000 111", "clid": "+34699000111"})])
    start = datetime.fromisoformat(old["calldate"]) - timedelta(hours=1)
    return {"start": _text(start)}


def _stored_rows(harness: ModelsHarness, where: str) -> pa.Table:
    """Rows of the loaded cdrs table, as dlt would load them again."""
    with harness.pipeline().sql_client() as client:
        name = client.make_qualified_table_name("cdrs")
        with client.execute_query(f"select * from {name} where {where}") as cursor:
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
    keep = [c for c in columns if not c.startswith("_dlt")]
    table = pa.Table.from_pylist([dict(zip(columns, row, strict=True)) for row in rows])
    return table.select(keep)


def mark_deleted(harness: ModelsHarness, where: str) -> int:
    """Merge the rows ``where`` selects with ``deleted_at`` set, as reconcile does."""
    table = _stored_rows(harness, where)
    stamp = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
    table = table.append_column(
        "deleted_at", pa.array([stamp] * table.num_rows, pa.timestamp("us", tz="UTC"))
    )
    for name in table.column_names:
        if pa.types.is_null(table.schema.field(name).type):
            table = table.drop_columns([name])
    resource = dlt.resource(
        table, name="cdrs", write_disposition="merge", primary_key=("account", "id")
    )
    with stamp_load_ids():
        harness.pipeline().run(resource)
    return int(table.num_rows)


def deleted(harness: ModelsHarness) -> dict[str, Any] | None:
    """No sync: the emulator still serves these CDRs, and the next syncs' lag window brings the
    recent ones back (a mark undone is one more change to follow)."""
    records = _records(harness)
    victims = [r["id"] for r in records][-40::9] + [r["id"] for r in records][100:103]
    assert mark_deleted(harness, f"id in ({', '.join(map(str, victims))})") == len(victims)
    return None


def renamed(harness: ModelsHarness) -> dict[str, Any] | None:
    with harness.pipeline().sql_client() as client:
        name = client.make_qualified_table_name("users")
        user_id = client.execute_sql(f"select min(id) from {name}")[0][0]
    response = harness.admin.post(
        "/users/patch", json={"updates": [{"id": user_id, "set": {"first_name": "Renamed"}}]}
    )
    assert response.json()["patched"] == 1
    return {}


def next_day(harness: ModelsHarness) -> dict[str, Any] | None:
    newest = _newest(harness)
    added = harness.admin.post(
        "/cdrs",
        json={
            "generate": {
                "count": 15,
                "late_fraction": 0.0,
                "now": _text(newest + timedelta(days=3, hours=2)),
            }
        },
    )
    assert added.status_code == 200, added.text
    return {}


def vanished(harness: ModelsHarness) -> dict[str, Any] | None:
    """Rows deleted by hand, without a load (what the README says to do for an account)."""
    with harness.pipeline().sql_client() as client:
        name = client.make_qualified_table_name("cdrs")
        client.execute_sql(f"delete from {name} where id % 17 = 3")
    return None


STEPS: list[tuple[str, Step]] = [
    ("first sync", nothing),
    ("nothing new", nothing),
    ("new and late CDRs", new_and_late),
    ("CDRs corrected", corrected),
    ("backfill re-read", backfill),
    ("CDRs marked deleted", deleted),
    ("user renamed", renamed),
    ("a day later", next_day),
    ("rows deleted by hand", vanished),
]


def run_steps(
    harness: ModelsHarness, after_each: Callable[[str, ModelsHarness], None]
) -> Iterator[str]:
    """Each step: change the data, sync (unless the step says otherwise), then ``after_each``."""
    for label, step in STEPS:
        options = step(harness)
        if options is not None:
            harness.sync(**options)
        after_each(label, harness)
        yield label
