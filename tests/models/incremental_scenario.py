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
6. ``voipstudio reconcile`` (the real one) after the API corrected CDRs older than the lag
   (``/_emulator/cdrs/update``: talk time, a calldate moved a day) and deleted others, recent
   and old (``/_emulator/cdrs/delete``): rows merged again and rows marked ``deleted_at``;
7. a deleted CDR served again: the sync's lag window merges it back (the mark undone);
8. a user renamed (a dimension the per-user mart carries);
9. a day later: the data horizon moves past open 24 h callback windows;
10. an account's CDRs deleted by hand (rows that vanish without a load).

The voicemail messages are loaded too (``resources`` names ``voicemessages``): new calls bring
theirs, and their staging model is compared like every other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from models_harness import ModelsHarness

from pipelines.reconcile import ReconcileOptions, run_reconcile

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


def reconciled(harness: ModelsHarness) -> dict[str, Any] | None:
    """No sync: the API corrects and deletes CDRs, and ``voipstudio reconcile`` finds them."""
    records = _records(harness)
    newest = _newest(harness)
    old = [
        r
        for r in records
        if datetime.fromisoformat(r["calldate"]) < newest - timedelta(days=2) and r["call_id"]
    ]
    rerated = next(r for r in reversed(old) if r["billsec"])
    moved = next(r for r in reversed(old) if r is not rerated and r["type"] == "I")
    moved_to = datetime.fromisoformat(moved["calldate"]) - timedelta(days=1, minutes=3)
    response = harness.admin.post(
        "/cdrs/update",
        json={
            "updates": [
                {
                    "id": rerated["id"],
                    "set": {
                        "billsec": rerated["billsec"] + 40,
                        "duration": rerated["duration"] + 40,
                        "charge": 0.5,
                    },
                },
                {"id": moved["id"], "set": {"calldate": _text(moved_to)}},
            ]
        },
    )
    assert response.status_code == 200 and response.json()["updated"] == 2, response.text
    ids = [r["id"] for r in records]
    gone = [ids[100], ids[230], ids[-12], ids[-3]]
    response = harness.admin.post("/cdrs/delete", json={"ids": gone})
    assert response.status_code == 200 and response.json()["deleted"] == len(gone), response.text
    harness.deleted = [r for r in records if r["id"] in gone]
    summary = run_reconcile(harness.pipeline(), ReconcileOptions(since="2026-03-24"))
    assert summary.exit_code == 0, summary.lines()
    with harness.pipeline().sql_client() as client:
        name = client.make_qualified_table_name("cdrs")
        marked = client.execute_sql(f"select count(*) from {name} where deleted_at is not null")
    assert marked[0][0] == len(gone)
    return None


def served_again(harness: ModelsHarness) -> dict[str, Any] | None:
    """The newest deleted CDR given back to the API: the next sync merges it, unmarked."""
    again = dict(harness.deleted[-1])
    response = harness.admin.post("/cdrs", json={"records": [again]})
    assert response.status_code == 200, response.text
    return {}


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
    ("reconcile: corrected and deleted", reconciled),
    ("a deleted CDR served again", served_again),
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
