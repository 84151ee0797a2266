"""Hand-made CDRs for the standard definitions of the KPIs (issue 17), computed by hand in
test_models_definitions.py.

Reporting time zone Europe/Madrid: CEST (UTC+2) until 2024-10-27 01:00 UTC, then CET (UTC+1).
Times below are UTC (the API's calldate); comments give the local time.

* Friday 2024-10-18 (the first day loaded: partial): outbound answered, no answer, busy,
  rejected (Q.850 21) and a network failure (34); a call forwarded to a mobile (two legs up at
  once); a ring-all queue in two rounds (RONA, then a colleague answering: cause 26); inbound
  calls answered within and after the service level, abandoned after and within it, a short
  abandon; the customer calling again (retry) and the company calling back (callback).
* Monday 2024-10-21 .. Wednesday 23: the traffic of the busy hour (10:00-11:00 local on two
  days), an outbound call from 23:50 local across midnight, an internal call.
* Sunday 2024-10-27 (25 hours): a call in the second 02:00 hour.
* Tuesday 2024-10-29 12:00 CET: the newest call (the data horizon).
"""

from __future__ import annotations

from typing import Any

from handmade_cdrs import X1, X2, X3, X4, A, B, C, _leg

X5 = "+34 600 999 888"  # a short abandon, never called back
X6 = "+34 600 777 666"  # the queue's caller
X7 = "+34 600 555 444"  # the call on the DST day
MOBILE = "+34 699 000 111"  # A's mobile, where A's calls are forwarded


def _cause(record: dict[str, Any], cause: str) -> dict[str, Any]:
    return {**record, "t_cause": cause}


RECORDS: list[dict[str, Any]] = [
    # Outbound on the 18th (B, 09:00-09:40 local): answered, no answer, busy, rejected, failed.
    _leg(101, 2001, "O", "2024-10-18 07:00:00", B, called=X1, duration=65, billsec=60,
         disposition="CONNECTED", destination="Spain Mobile", charge=0.1),
    _cause(_leg(102, 2002, "O", "2024-10-18 07:10:00", B, called=X1, duration=30, billsec=0,
                disposition="NO ANSWER", destination="Spain Mobile"), "19"),
    _cause(_leg(103, 2003, "O", "2024-10-18 07:20:00", B, called=X1, duration=5, billsec=0,
                disposition="BUSY", destination="Spain Mobile"), "17"),
    _cause(_leg(104, 2004, "O", "2024-10-18 07:30:00", B, called=X1, duration=2, billsec=0,
                disposition="FAILED", destination="Spain Mobile"), "21"),
    _cause(_leg(105, 2005, "O", "2024-10-18 07:40:00", B, called=X1, duration=2, billsec=0,
                disposition="FAILED", destination="Spain Mobile"), "34"),
    # 2010, 11:00 local: X1 calls A, forwarded to A's mobile at once; both legs ring 10 s and
    # carry the same 300 s conversation (09:00:10-09:05:10 UTC); only the outbound leg is charged.
    _leg(110, 2010, "I", "2024-10-18 09:00:00", A, caller=X1, duration=310, billsec=300,
         disposition="CONNECTED"),
    _leg(111, 2010, "O", "2024-10-18 09:00:00", A, called=MOBILE, duration=310, billsec=300,
         disposition="CONNECTED", destination="Spain Mobile", charge=0.5,
         context="from-internal-fwd"),
    # 2020, 12:00 local: a ring-all queue. Round 1 rings A and B for 20 s (RONA, 19); round 2
    # rings A, B and C from 10:00:20; B answers 8 s later (wait 28 s) and talks 100 s; A's and
    # C's legs are cut as B answers (26, answered elsewhere).
    _cause(_leg(120, 2020, "M", "2024-10-18 10:00:00", A, caller=X6, duration=20, billsec=0,
                disposition="NO ANSWER", destination="Sales", context="from-queue"), "19"),
    _cause(_leg(121, 2020, "M", "2024-10-18 10:00:00", B, caller=X6, duration=20, billsec=0,
                disposition="NO ANSWER", destination="Sales", context="from-queue"), "19"),
    _cause(_leg(122, 2020, "M", "2024-10-18 10:00:20", A, caller=X6, duration=8, billsec=0,
                disposition="NO ANSWER", destination="Sales", context="from-queue"), "26"),
    _cause(_leg(123, 2020, "M", "2024-10-18 10:00:20", C, caller=X6, duration=8, billsec=0,
                disposition="NO ANSWER", destination="Sales", context="from-queue"), "26"),
    _leg(124, 2020, "I", "2024-10-18 10:00:20", B, caller=X6, duration=108, billsec=100,
         disposition="CONNECTED", destination="Sales", context="from-queue"),
    # 2030, 13:00 local: answered after 15 s (within the 20 s service level), 60 s talk.
    _leg(130, 2030, "I", "2024-10-18 11:00:00", A, caller=X2, duration=75, billsec=60,
         disposition="CONNECTED"),
    # 2031: X3 gives up after 30 s (abandoned after the service level).
    _cause(_leg(131, 2031, "M", "2024-10-18 11:10:00", A, caller=X3, duration=30, billsec=0,
                disposition="NO ANSWER"), "19"),
    # 2032: X4 gives up after 10 s (within the service level, not a short abandon).
    _cause(_leg(132, 2032, "M", "2024-10-18 11:20:00", A, caller=X4, duration=10, billsec=0,
                disposition="NO ANSWER"), "19"),
    # 2033: X5 hangs up after 3 s: a short abandon.
    _cause(_leg(133, 2033, "M", "2024-10-18 11:30:00", A, caller=X5, duration=3, billsec=0,
                disposition="NO ANSWER"), "19"),
    # 2034, 14:00 local: X3 calls again and B answers after 10 s: a retry, 2970 s after 2031.
    _leg(134, 2034, "I", "2024-10-18 12:00:00", B, caller=X3, duration=40, billsec=30,
         disposition="CONNECTED"),
    # 2035, 15:00 local: A calls X4 back: a callback, 5990 s after 2032 ended.
    _leg(135, 2035, "O", "2024-10-18 13:00:00", A, called=X4, duration=20, billsec=10,
         disposition="CONNECTED", destination="France Landline", charge=0.01),
    # Monday 21st, 10:00:00-11:00:00 local: X1 again (A), 10 s ring.
    _leg(140, 2040, "I", "2024-10-21 08:00:00", A, caller=X1, duration=3600, billsec=3590,
         disposition="CONNECTED"),
    # Tuesday 22nd, 10:30-11:00 local: X2 again (C).
    _leg(141, 2041, "I", "2024-10-22 08:30:00", C, caller=X2, duration=1800, billsec=1790,
         disposition="CONNECTED"),
    # 22nd 23:50 local to 23rd 00:20 local: B calls X4.
    _leg(142, 2042, "O", "2024-10-22 21:50:00", B, called=X4, duration=1800, billsec=1790,
         disposition="CONNECTED", destination="France Landline", charge=0.2),
    # Wednesday 23rd, 14:00-14:30 local: internal, A calls B.
    _leg(143, 2043, "O", "2024-10-23 12:00:00", A, called=str(B), duration=1800, billsec=1795,
         disposition="CONNECTED", destination="Internal", context="from-internal"),
    # Sunday 27th (clocks back at 03:00 CEST): 02:30 CET, the second 02:00 hour.
    _leg(144, 2044, "I", "2024-10-27 01:30:00", C, caller=X7, duration=600, billsec=590,
         disposition="CONNECTED"),
    # Tuesday 29th, 12:00 CET: the newest call.
    _leg(145, 2045, "O", "2024-10-29 11:00:00", B, called=X1, duration=60, billsec=50,
         disposition="CONNECTED", destination="Spain Mobile", charge=0.03),
]  # fmt: skip
