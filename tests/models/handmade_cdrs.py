"""A small, hand-made CDR set whose KPIs are computed by hand in test_models_kpis.py.

Times are UTC (the API's calldate). The reporting time zone of the tests is Europe/Madrid:
CET (UTC+1) until 2024-03-31 01:00 UTC, then CEST (UTC+2) until 2024-10-27 01:00 UTC, then CET.

* 2024-03-29 (Friday, a business day): a queue call rung on two phones, a missed call called
  back within 1.5 h, a short abandon answered later by the caller's next call, a transferred
  call, an internal call, outbound busy / failed (no call_id) / unknown type calls, a queue
  call answered by the second agent at exactly 18:00 local (outside business hours), a call
  at 00:30 local that is still 2024-03-28 in UTC, and an outbound call from 23:50 local that
  ends the next day.
* 2024-03-31 (clocks go forward at 02:00 local: a 23-hour day): a call talking across the jump.
* 2024-10-27 (clocks go back at 03:00 local: a 25-hour day): two calls at 02:30 local, one in
  each 02:00 hour; a call at 00:30 local that is 2024-10-26 in UTC; a missed call too recent to
  judge; a missed call called back by an unanswered outbound call.
* 2024-10-28: one last outbound call (it sets the data horizon and completes 2024-10-27).

Users are the emulator's: 100001 (ext 101), 100002 (ext 102), 100003 (ext 103).
"""

from __future__ import annotations

from typing import Any

A, B, C = 100001, 100002, 100003
EXT = {A: "101", B: "102", C: "103"}

# Outside numbers as the API writes them, and normalized (default_country_code 34).
X1 = "+34 600 111 222"  # -> +34600111222
X2 = "612345678"  # national -> +34612345678
X3 = "0044 20 7946 0000"  # 00 prefix -> +442079460000
X4 = "+33 1 23 45 67 89"  # -> +33123456789
N1, N2, N3, N4 = "+34600111222", "+34612345678", "+442079460000", "+33123456789"


def _leg(
    cdr_id: int,
    call_id: int | None,
    kind: str,
    calldate: str,
    user: int,
    *,
    duration: int,
    billsec: int,
    disposition: str,
    caller: str | None = None,
    called: str | None = None,
    destination: str | None = None,
    rate: float = 0.0,
    charge: float = 0.0,
    context: str = "from-pstn",
) -> dict[str, Any]:
    """One CDR. Inbound / missed legs: ``caller`` rings ``user``; outbound legs: ``user``
    calls ``called`` (a user id as text makes it internal)."""
    if kind in ("I", "M", "V"):
        src, src_id, dst, dst_id = caller, None, EXT[user], str(user)
    else:
        src, src_id, dst = EXT[user], str(user), called
        dst_id = called if called in {str(u) for u in EXT} else None
        if dst_id is not None:
            dst = EXT[int(dst_id)]
    return {
        "id": cdr_id,
        "call_id": call_id,
        "live_id": None,
        "parent_live_id": None,
        "user_id": user,
        "sip_endpoint_id": None,
        "server_id": 3,
        "type": kind,
        "calldate": calldate,
        "clid": None,
        "src": src,
        "src_id": src_id,
        "src_name": None,
        "src_ua": None,
        "src_codec": None,
        "dst": dst,
        "dst_id": dst_id,
        "dst_name": None,
        "dst_ua": None,
        "dst_codec": None,
        "duration": duration,
        "billsec": billsec,
        "disposition": disposition,
        "destination": destination,
        "context": context,
        "rate": rate,
        "charge": charge,
        "t_cause": "16",
        "info": None,
        "metadata": None,
        "labels": [],
        "nb_notes": 0,
    }


RECORDS: list[dict[str, Any]] = [
    # call 1011: 00:30 local on the 29th (23:30 UTC on the 28th); anonymous caller, busy.
    _leg(11, 1011, "M", "2024-03-28 23:30:00", C, caller="anonymous",
         duration=5, billsec=0, disposition="BUSY"),
    # call 1008: outbound at 09:00:00 local (business hours start, inclusive), busy.
    _leg(8, 1008, "O", "2024-03-29 08:00:00", B, called="+33 1 23 45 67 89",
         duration=4, billsec=0, disposition="BUSY", destination="France Landline", rate=0.02),
    # call 1001: queue rings A and B at once; B answers after 12 s and talks 300 s.
    _leg(1, 1001, "M", "2024-03-29 09:00:00", A, caller=X1,
         duration=12, billsec=0, disposition="NO ANSWER", destination="Sales",
         context="from-queue"),
    _leg(2, 1001, "I", "2024-03-29 09:00:00", B, caller=X1,
         duration=312, billsec=300, disposition="CONNECTED", destination="Sales",
         context="from-queue"),
    # call 1002: X2 rings A for 25 s while call 1001 is in progress; abandoned.
    _leg(3, 1002, "M", "2024-03-29 09:02:00", A, caller=X2,
         duration=25, billsec=0, disposition="NO ANSWER"),
    # call 1003: A calls X2 back (+34 form), 10 s ring, 60 s talk.
    _leg(4, 1003, "O", "2024-03-29 10:30:00", A, called="+34612345678",
         duration=70, billsec=60, disposition="CONNECTED", destination="Spain Mobile",
         rate=0.028, charge=0.028),
    # call 1004: X3 hangs up after 3 s: a short abandon.
    _leg(5, 1004, "M", "2024-03-29 11:00:00", B, caller=X3,
         duration=3, billsec=0, disposition="NO ANSWER"),
    # call 1006: A answers X4 after 8 s, talks 40 s, transfers to B (5 s ring, 200 s talk).
    _leg(6, 1006, "I", "2024-03-29 12:00:00", A, caller=X4,
         duration=48, billsec=40, disposition="CONNECTED"),
    _leg(7, 1006, "I", "2024-03-29 12:00:48", B, caller=X4,
         duration=205, billsec=200, disposition="CONNECTED", context="from-internal-xfer"),
    # call 1007: internal, A calls B, 5 s ring, 60 s talk.
    _leg(9, 1007, "O", "2024-03-29 13:00:00", A, called=str(B),
         duration=65, billsec=60, disposition="CONNECTED", destination="Internal",
         context="from-internal"),
    # call without call_id (key -10): outbound, failed.
    _leg(10, None, "O", "2024-03-29 14:30:00", C, called="+44 7700 900123",
         duration=3, billsec=0, disposition="FAILED", destination="United Kingdom Mobile",
         rate=0.08),
    # call 1020: a type the API may send that we do not know: direction unknown.
    _leg(12, 1020, "V", "2024-03-29 15:00:00", A, caller=X2,
         duration=10, billsec=0, disposition="NO ANSWER"),
    # call 1005: 18:00:00 local (outside business hours: the end is exclusive); the queue rings
    # A for 20 s, then C, who answers after 10 s (30 s wait in all) and talks 120 s.
    _leg(13, 1005, "M", "2024-03-29 17:00:00", A, caller=X3,
         duration=20, billsec=0, disposition="NO ANSWER", destination="Sales",
         context="from-queue"),
    _leg(14, 1005, "I", "2024-03-29 17:00:20", C, caller=X3,
         duration=130, billsec=120, disposition="CONNECTED", destination="Sales",
         context="from-queue"),
    # call 1010: 23:50 local, 10 s ring, 1200 s talk: ends 00:10:10 local on the 30th.
    _leg(15, 1010, "O", "2024-03-29 22:50:00", A, called=X1,
         duration=1210, billsec=1200, disposition="CONNECTED", destination="Spain Mobile",
         rate=0.028, charge=0.56),
    # call 1012: 01:30 local on 2024-03-31, 4 s ring, talks 30 min across the clock change.
    _leg(16, 1012, "I", "2024-03-31 00:30:00", A, caller="+34600111222",
         duration=1804, billsec=1800, disposition="CONNECTED"),
    # call 1013: 03:30 local (CEST), B calls X2 (national number with spaces).
    _leg(17, 1013, "O", "2024-03-31 01:30:00", B, called="612 34 56 78",
         duration=96, billsec=90, disposition="CONNECTED", destination="Spain Mobile",
         rate=0.028, charge=0.042),
    # call 1014: 00:30 local on 2024-10-27 (22:30 UTC the day before); national number with
    # the trunk prefix 0.
    _leg(18, 1014, "I", "2024-10-26 22:30:00", C, caller="0612345678",
         duration=115, billsec=100, disposition="CONNECTED"),
    # call 1015: 02:30 CEST (the first 02:00 hour), answered after 25 s (outside the SL).
    _leg(19, 1015, "I", "2024-10-27 00:30:00", A, caller="+34600111222",
         duration=625, billsec=600, disposition="CONNECTED"),
    # call 1016: 02:30 CET (the second 02:00 hour), missed; X1 calls again within 7 days.
    _leg(20, 1016, "M", "2024-10-27 01:30:00", A, caller="+34600111222",
         duration=30, billsec=0, disposition="NO ANSWER"),
    # call 1017: A calls X1 back (00 34 form) 4.5 h later; nobody answers.
    _leg(21, 1017, "O", "2024-10-27 06:00:00", A, called="0034600111222",
         duration=30, billsec=0, disposition="NO ANSWER", destination="Spain Mobile",
         rate=0.028),
    # call 1018: X4 missed at 21:00 local; never called back.
    _leg(22, 1018, "M", "2024-10-27 20:00:00", B, caller="+33123456789",
         duration=40, billsec=0, disposition="NO ANSWER"),
    # call 1019: X3 again, 22:30 local, answered after 5 s.
    _leg(23, 1019, "I", "2024-10-27 21:30:00", C, caller=X3,
         duration=55, billsec=50, disposition="CONNECTED"),
    # call 1021: Monday 09:00 local, B calls X3; the newest call (the data horizon).
    _leg(24, 1021, "O", "2024-10-28 08:00:00", B, called="+44 20 7946 0000",
         duration=65, billsec=60, disposition="CONNECTED",
         destination="United Kingdom Landline", rate=0.02, charge=0.02),
]  # fmt: skip

# A second account whose ids collide with RECORDS' (the same CDR ids, call_ids and user ids,
# the same outside numbers, at the same times) and mean other calls: the models must keep the
# two accounts apart. Its users are another emulator company's (same ids, other names).
SECOND_ACCOUNT_RECORDS: list[dict[str, Any]] = [
    # call 1001: one leg (RECORDS' 1001 has two): X1 rings B directly; 6 s ring, 120 s talk.
    _leg(1, 1001, "I", "2024-03-29 09:00:00", B, caller=X1,
         duration=126, billsec=120, disposition="CONNECTED"),
    # CDR 2 (RECORDS': a leg of 1001), call 1003 (RECORDS': A calling X2 back): B calls X4.
    _leg(2, 1003, "O", "2024-03-29 10:00:00", B, called=X4,
         duration=50, billsec=45, disposition="CONNECTED", destination="France Landline",
         rate=0.02, charge=0.015),
    # call 1002: the same miss as RECORDS' 1002 (X2 rings A at 09:02), but nobody of this
    # account calls X2 back: the other account's call 1003 to X2 is no callback of it.
    _leg(3, 1002, "M", "2024-03-29 09:02:00", A, caller=X2,
         duration=25, billsec=0, disposition="NO ANSWER"),
    # call 1004: X2 again a day later, missed again: a repeat call of this account only.
    _leg(4, 1004, "M", "2024-03-30 10:00:00", A, caller=X2,
         duration=20, billsec=0, disposition="NO ANSWER"),
    # no call_id (key -10, as RECORDS' CDR 10): C calls X3 at 21:00 local, 10 s ring, 60 s
    # talk. The account's newest call: its data horizon, seven months before RECORDS'.
    _leg(10, None, "O", "2024-03-30 20:00:00", C, called=X3,
         duration=70, billsec=60, disposition="CONNECTED",
         destination="United Kingdom Landline", rate=0.02, charge=0.02),
]  # fmt: skip
