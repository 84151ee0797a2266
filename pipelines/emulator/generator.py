"""Deterministic synthetic company for the VoIPstudio emulator.

``generate_company`` builds the users, queues and call detail records (CDRs) of a believable
small company; ``generate_new_cdrs`` keeps the same company "alive" by producing the records of
calls that end around a given moment, the way a PBX writes a CDR at hang-up.

Everything is drawn from one ``numpy.random.Generator`` seeded by the spec, so the same spec gives
byte-identical data. Generation is vectorised: every call attribute is an array, legs are
expanded with ``np.repeat`` and string columns are lookups into small object tables, because the
benchmarks ask for a million rows in a few seconds.

Call model (one row per leg, "call" = all legs sharing ``call_id``):

* inbound calls to a user directly (answered ``I`` or missed ``M``), through a queue (several
  legs, one per agent rung, all but the answering one ``M``), or answered and then transferred
  (two legs);
* outbound calls to external numbers (``O``), including callbacks of missed callers and a few
  predictive-dialer campaign bursts that place dozens of calls in the same second;
* internal calls between extensions (``O`` on the caller's record).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from pipelines.emulator.bulk import gc_paused
from pipelines.emulator.cdr_conventions import (
    CALL_TYPES,
    CAUSES,
    CONTEXTS,
    DESTINATIONS,
    DISPOSITIONS,
    TRANSFER_INFO,
)
from pipelines.emulator.fields import CDR_FIELDS, QUEUE_FIELDS, USER_FIELDS

__all__ = [
    "CallLegs",
    "Company",
    "CompanySpec",
    "Parties",
    "TimeSampler",
    "format_timestamps",
    "generate_company",
    "generate_new_calls",
    "generate_new_cdrs",
]

Arr = npt.NDArray[Any]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Obj = npt.NDArray[np.object_]
Cols = dict[str, Arr]

_DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
# Sentinel: a frozen dataclass cannot default one field from another, so __post_init__ swaps it.
_AUTO_END = datetime.min.replace(tzinfo=UTC)

_FIRST_USER_ID = 100_001
_FIRST_QUEUE_ID = 7_001
_FIRST_CDR_ID = 100_000_001
_FIRST_CALL_ID = 500_000_001
_FIRST_LIVE_ID = 900_000_001
_SERVER_IDS = np.array([3, 5, 7, 12], dtype=np.int64)
_SERVER_P = np.array([0.4, 0.3, 0.2, 0.1])

# Call categories (internal codes). Categories up to _INBOUND_LAST have an outside caller.
_IN_DIRECT, _IN_QUEUE, _IN_TRANSFER, _IN_FORWARD, _OUT_EXT, _INTERNAL = 0, 1, 2, 3, 4, 5
_N_CATS = 6
_INBOUND_LAST = _IN_FORWARD
# Base-call mix [guess] (docs/emulator.md, "Generated cases"). Customers calling again after a
# missed call and the company's callbacks are added on top, so the base shares are chosen to
# land near 45 % I, 35 % O, 20 % M of all calls.
_CAT_P_WITH_QUEUES = np.array([0.37, 0.21, 0.04, 0.045, 0.235, 0.10])
_CAT_P_NO_QUEUES = np.array([0.58, 0.0, 0.04, 0.045, 0.235, 0.10])
_ANSWER_P = np.array([0.65, 0.75, 1.0, 0.8, 0.72, 0.85])
# A missed caller calls again (a retry) with this probability, after a log-normal delay; the
# retry gets through with _RETRY_ANSWER_P. The company calls a missed caller back with
# _CALLBACK_P, unless the caller already got through before that.
_RETRY_P = 0.35
_RETRY_ANSWER_P = 0.75
_RETRY_DELAY_MEDIAN, _RETRY_DELAY_SIGMA = 900.0, 1.0
_CALLBACK_P = 0.5
_CALLBACK_ANSWER_P = 0.65
_CAMPAIGN_ANSWER_P = 0.45
_LEGS_PER_CALL_GUESS = 1.5
# Queue waits [guess]: time to answer and the caller's patience, log-normal, longer at the busy
# hours of the day (scaled by the hour's traffic weight), at most _QUEUE_MAX_ROUNDS rounds.
_QUEUE_WAIT_MEDIAN, _QUEUE_WAIT_SIGMA = 9.0, 0.95
_QUEUE_PATIENCE_MEDIAN, _QUEUE_PATIENCE_SIGMA = 28.0, 1.0
_QUEUE_MAX_ROUNDS = 12
# Share of users whose calls follow them to their mobile (at least one user) [guess].
_FORWARD_USERS_SHARE = 0.3
_USER_MOBILE_STREAM = 0xF0D

# How a call is written as CDRs (types, dispositions, causes, contexts) is a set of conventions
# kept in cdr_conventions.py; the columns below are lookup tables built from them.
_TYPES = np.array([CALL_TYPES.inbound, CALL_TYPES.outbound, CALL_TYPES.missed], dtype=object)
_T_I, _T_O, _T_M = 0, 1, 2
_DISPOSITIONS = np.array(
    [DISPOSITIONS.connected, DISPOSITIONS.no_answer, DISPOSITIONS.busy, DISPOSITIONS.failed],
    dtype=object,
)
_D_CONNECTED, _D_NO_ANSWER, _D_BUSY, _D_FAILED = 0, 1, 2, 3
_T_CAUSES = np.array(
    [
        CAUSES.normal_clearing,
        CAUSES.normal_unspecified,
        *CAUSES.no_answer,
        CAUSES.busy,
        *CAUSES.failed,
        CAUSES.answered_elsewhere,
    ],
    dtype=object,
)
_TC_NORMAL, _TC_UNSPEC = 0, 1
_TC_NOANS = 2 + np.arange(len(CAUSES.no_answer), dtype=np.int64)
_TC_NOANS_P = np.array(list(CAUSES.no_answer.values()))
_TC_BUSY = 2 + len(CAUSES.no_answer)
_TC_FAILED = _TC_BUSY + 1 + np.arange(len(CAUSES.failed), dtype=np.int64)
_TC_FAILED_P = np.array(list(CAUSES.failed.values()))
_TC_ELSEWHERE = _TC_BUSY + 1 + len(CAUSES.failed)
_CONTEXTS = np.array(
    [CONTEXTS.from_outside, CONTEXTS.queue, CONTEXTS.internal, CONTEXTS.transfer, CONTEXTS.forward],
    dtype=object,
)
_CTX_PSTN, _CTX_QUEUE, _CTX_INTERNAL, _CTX_XFER, _CTX_FWD = 0, 1, 2, 3, 4

# Free-text notes (whether a caller left a voicemail shows in /voicemessages, not here).
_MISC_INFO = ("Customer requested callback", "Asked for a quote", "Escalated to supervisor")
_CAMPAIGNS = ("Campaign: Spring promo", "Campaign: Renewals", "Campaign: Win-back")
_METADATA = (
    None,
    '{"crm": "hubspot", "synced": true}',
    '{"ivr_option": "1"}',
    '{"ivr_option": "2"}',
    '{"priority": "high"}',
)
_LABELS: tuple[tuple[str, ...], ...] = (
    (),
    ("sales",),
    ("support",),
    ("vip",),
    ("complaint",),
    ("follow-up",),
    ("sales", "vip"),
    ("campaign",),
)
_LABEL_TABLE = np.empty(len(_LABELS), dtype=object)
_LABEL_TABLE[:] = _LABELS
_LABEL_P = np.array([0.94, 0.02, 0.015, 0.008, 0.006, 0.006, 0.005, 0.0])
_LABEL_CAMPAIGN = 7

_USER_AGENTS = (
    ("Yealink SIP-T46S 66.86.0.15", "hard"),
    ("Yealink SIP-T54W 96.86.0.70", "hard"),
    ("VoIPstudio Desktop 4.2", "soft"),
    ("VoIPstudio Mobile iOS 3.8.1", "soft"),
    ("Grandstream GXP2170 1.0.11.23", "hard"),
    ("Zoiper rv2.10.20.1", "soft"),
    ("Polycom VVX 411 6.4.3", "hard"),
)
_UA_P = np.array([0.3, 0.15, 0.25, 0.08, 0.1, 0.07, 0.05])

_SPANISH_FIRST = (
    "María", "José", "Lucía", "Antonio", "Carmen", "Javier", "Laura", "David", "Marta",
    "Álvaro", "Sofía", "Pablo", "Elena", "Manuel", "Paula", "Sergio", "Ana", "Diego", "Cristina",
    "Jorge", "Irene", "Raúl", "Nuria", "Alberto", "Sara", "Iván", "Andrea", "Rubén", "Beatriz",
    "Miguel", "Alba", "Óscar",
)  # fmt: skip
_SPANISH_LAST = (
    "García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
    "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Álvarez", "Muñoz",
    "Romero", "Alonso", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos", "Gil", "Serrano",
    "Castro", "Ortega", "Rubio", "Molina", "Iglesias", "Vidal",
)  # fmt: skip
_ENGLISH_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Emma", "David", "Olivia", "Richard", "Sophie", "Thomas", "Emily", "Daniel", "Grace",
    "Matthew", "Chloe", "Andrew", "Hannah", "Peter", "Lucy",
)  # fmt: skip
_ENGLISH_LAST = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Miller",
    "Evans", "Thomas", "Clarke", "Walker", "White", "Green", "Hall", "Wood", "Harris", "Martin",
    "Cooper", "King", "Baker", "Turner", "Hill",
)  # fmt: skip
_COMPANY_NAMES = (
    "Transportes Norte SL", "Clínica Dental Sol", "Grupo Inmobiliario Levante", "Acme Logistics",
    "Hotel Mirador", "Talleres Ruiz", "Asesoría Fiscal Vega", "Nordic Supplies AB",
    "Farmacia Central", "Construcciones Ortega", "Blue Harbour Ltd", "Seguros Atlántico",
)  # fmt: skip
_QUEUE_NAMES = (
    "Sales", "Support", "Billing", "Reception", "Technical Support", "Customer Care", "Returns",
    "Partners", "Collections", "Bookings",
)  # fmt: skip
_RING_STRATEGIES = ("ringall", "ringall", "roundrobin", "leastrecent", "random")
_AGENT_LOGGED_IN_P = 0.8
_AGENT_STATUS_STREAM = 0x51A7
_QUEUE_RING_TIMES = (15, 20, 25, 30, 40)

# Local-time call profile of a weekday (relative weight per local hour): business hours 09-14
# and 15-19 with the Spanish lunch dip at 14-15, a trickle at night.
_WEEKDAY_PROFILE = np.array(
    [0.010, 0.006, 0.004, 0.004, 0.004, 0.008, 0.020, 0.080, 0.400, 0.850, 1.000, 1.000,
     0.950, 0.850, 0.350, 0.700, 0.900, 0.850, 0.600, 0.200, 0.080, 0.040, 0.025, 0.015]
)  # fmt: skip
_SATURDAY_FACTOR_AM, _SATURDAY_FACTOR_PM, _SUNDAY_FACTOR = 0.12, 0.04, 0.035
# A callback is only placed when the agent is at work: hours whose weekday weight reaches this.
_BUSINESS_WEIGHT = 0.3
_HOLIDAYS_GENERIC = frozenset({(1, 1), (12, 25)})
_HOLIDAYS_ES = _HOLIDAYS_GENERIC | {(1, 6), (5, 1), (8, 15), (10, 12), (11, 1), (12, 6), (12, 8)}


@dataclass(frozen=True)
class _Country:
    code: str
    name: str
    mobile_prefixes: tuple[str, ...]
    landline_prefixes: tuple[str, ...]
    digits: int  # national significant number length
    mobile_rate: float
    landline_rate: float
    codec: str


# code, name, mobile prefixes, landline prefixes, national digits, mobile/landline rate, codec
_COUNTRIES: dict[str, _Country] = {
    c.code: c
    for c in (
        _Country("34", "Spain", ("6", "7"), ("91", "93", "96", "95", "98", "886"),
                 9, 0.028, 0.012, "PCMA"),
        _Country("44", "United Kingdom", ("7",), ("20", "161", "121", "131"),
                 10, 0.08, 0.02, "PCMA"),
        _Country("49", "Germany", ("151", "160", "170", "176"), ("30", "89", "40", "221"),
                 10, 0.11, 0.02, "PCMA"),
        _Country("33", "France", ("6", "7"), ("1", "4", "5"), 9, 0.09, 0.02, "PCMA"),
        _Country("1", "United States", ("646", "917", "310"), ("212", "415", "305", "312"),
                 10, 0.012, 0.01, "PCMU"),
        _Country("52", "Mexico", ("155", "133", "181"), ("55", "33", "81"),
                 10, 0.12, 0.045, "PCMU"),
        _Country("212", "Morocco", ("6", "7"), ("52", "53"), 9, 0.35, 0.22, "PCMA"),
        _Country("351", "Portugal", ("91", "93", "96"), ("21", "22"), 9, 0.1, 0.03, "PCMA"),
        _Country("39", "Italy", ("32", "33", "34"), ("06", "02"), 10, 0.1, 0.02, "PCMA"),
    )
}  # fmt: skip
# Relative frequency of foreign countries among external numbers (home country excluded).
_FOREIGN_WEIGHTS = {"44": 4.0, "49": 3.0, "33": 3.0, "1": 2.0, "52": 1.5, "212": 1.5,
                    "351": 1.5, "39": 1.5, "34": 3.0}  # fmt: skip
_FOREIGN_SHARE = 0.15
_NATIONAL_NO_PLUS_SHARE = 0.2


@dataclass(frozen=True)
class CompanySpec:
    """What company to synthesise.

    Attributes:
        seed: Seed of the random generator; equal specs give identical companies.
        users: Number of VoIPstudio users (agents with an extension), at least 2.
        queues: Number of call queues / ring groups, at least 0.
        start: First instant of the CDR range (tz-aware, stored as UTC).
        end: Exclusive end of the CDR range; defaults to ``start + 30 days``.
        rows: Exact number of CDRs; ``None`` derives about 40 CDRs per user per weekday.
        timezone: The company's local time zone (business hours are local).
        country_code: The company's own country calling code.
        customer_id: VoIPstudio customer id of every user and queue.
    """

    seed: int = 42
    users: int = 25
    queues: int = 4
    start: datetime = _DEFAULT_START
    end: datetime = _AUTO_END
    rows: int | None = None
    timezone: str = "Europe/Madrid"
    country_code: str = "34"
    customer_id: int = 521156

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        start = self.start.astimezone(UTC)
        end = start + timedelta(days=30) if self.end == _AUTO_END else self.end.astimezone(UTC)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        if self.users < 2:
            raise ValueError("users must be >= 2")
        if self.queues < 0:
            raise ValueError("queues must be >= 0")
        if end <= start:
            raise ValueError("end must be after start")
        if self.rows is not None and self.rows < 0:
            raise ValueError("rows must be >= 0")
        ZoneInfo(self.timezone)  # fail early on an unknown zone


@dataclass
class _State:
    """Everything needed to keep generating calls for a company after its history."""

    rng: np.random.Generator
    next_id: int
    next_call_id: int
    next_live_id: int
    cat_p: F64
    user_ids: I64
    user_endpoint: I64
    user_in_cdf: F64
    user_out_cdf: F64
    forward_cdf: F64  # users whose calls follow them to their mobile, by inbound weight
    queue_cdf: F64
    queue_members: I64  # (queues, max members) user indexes, padded
    queue_size: I64
    queue_ring_time: I64
    queue_ringall: npt.NDArray[np.bool_]
    pool_cdf: F64  # the external numbers that call in or get called (the pool's first rows)
    pool_rate: F64
    n_users: int
    n_pool: int  # pool rows: the external numbers, then one mobile per user
    n_external: int  # of which external numbers (the rest are the users' mobiles)
    n_queues: int
    # Lookup tables for string columns. "party" rows: users first, then the pool.
    party_number: Obj
    party_id: Obj
    party_src_name: Obj
    party_dst_name: Obj
    party_ua: Obj
    party_codec: Obj
    clid: Obj  # users' DID clids, users' extension clids, pool clids
    user_dids: list[str]  # each user's direct number (E.164, with "+")
    party_mobile: npt.NDArray[np.bool_]
    dest: Obj  # pool destination labels, queue names, "Internal", None
    info: Obj  # None, misc notes, "Transferred from <ext>" per user, campaign names
    metadata: Obj


@dataclass
class CallLegs:
    """What the rest of the history (recordings, voicemail, SMS, invoices; ``history.py``) needs
    to know of a batch of CDR legs: one numpy array per fact, in CDR id order.

    Attributes:
        cdr_id, call_id: the leg's ids.
        start, duration, billsec: its ``calldate`` (epoch seconds), ``duration`` and ``billsec``.
        charge: its ``charge``.
        category: the generator's kind of call (``CATEGORY_*``).
        leg: the leg's number within its call (0 the first).
        answered: the leg was answered (``billsec`` > 0).
        call_end: when the last leg of its call ended (epoch seconds).
        call_answered: some leg of its call was answered.
        user: the index of the leg's user in ``Company.users``.
        queue: the index of the queue in ``Company.queues`` (-1: not a queue call).
        src, dst: the parties' indexes in ``Company.parties``.
        type: the leg's ``type`` text.
    """

    cdr_id: I64
    call_id: I64
    start: I64
    duration: I64
    billsec: I64
    charge: F64
    category: I64
    leg: I64
    answered: npt.NDArray[np.bool_]
    call_end: I64
    call_answered: npt.NDArray[np.bool_]
    user: I64
    queue: I64
    src: I64
    dst: I64
    type: Obj

    def __len__(self) -> int:
        return len(self.cdr_id)


@dataclass(frozen=True)
class Parties:
    """Everyone who appears in a CDR: the users (their extensions) first, then the external
    numbers (the pool callers come from), then each user's mobile.

    Attributes:
        number: the number or extension as a CDR writes it (``src``/``dst``).
        name: a person's or company's name (the number itself when unknown).
        mobile: the number is a mobile (it can receive an SMS).
        n_users, n_external: how many rows are users, and external numbers after them.
        external_cdf: popularity of the external numbers (a few regulars, a long tail).
    """

    number: Obj
    name: Obj
    mobile: npt.NDArray[np.bool_]
    n_users: int
    n_external: int
    external_cdf: F64


# Kinds of call (CallLegs.category).
CATEGORY_DIRECT, CATEGORY_QUEUE, CATEGORY_TRANSFER, CATEGORY_FORWARD = 0, 1, 2, 3
CATEGORY_OUTBOUND, CATEGORY_INTERNAL = 4, 5


@dataclass
class Company:
    """A generated company: users, queues and CDR columns, plus state to continue generating.

    Attributes:
        spec: The spec it was generated from.
        users: One dict per user, keys exactly ``USER_FIELDS``.
        queues: One dict per queue, keys exactly ``QUEUE_FIELDS``.
        cdrs: One list per ``CDR_FIELDS`` key (same order), all of equal length, sorted by id.
        agent_status: ``(queue id, user id) -> status`` of every queue member: whether the agent
            is logged in to the queue now (``include=users`` on ``/queues`` shows it).
        calls: the facts of the CDRs' legs the rest of the history derives from (``history.py``
            takes them and sets this to None).
        parties: everyone who appears in a CDR.
        user_dids: each user's direct number (E.164), in ``users`` order.
        history: the records of the other collections (``history.py``): per collection name,
            one list per field, sorted by id.
    """

    spec: CompanySpec
    users: list[dict[str, Any]]
    queues: list[dict[str, Any]]
    cdrs: dict[str, list[Any]] = field(repr=False)
    agent_status: dict[tuple[int, int], bool] = field(default_factory=dict, repr=False)
    calls: CallLegs | None = field(default=None, repr=False, compare=False)
    parties: Parties | None = field(default=None, repr=False, compare=False)
    user_dids: list[str] = field(default_factory=list, repr=False)
    history: dict[str, dict[str, list[Any]]] = field(default_factory=dict, repr=False)
    _state: _State | None = field(default=None, repr=False, compare=False)


def _cdf(weights: Arr) -> F64:
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


def _draw(rng: np.random.Generator, cdf: F64, n: int) -> I64:
    idx = np.searchsorted(cdf, rng.random(n), side="right")
    return np.minimum(idx, len(cdf) - 1).astype(np.int64)


def _tod_table() -> npt.NDArray[np.uint32]:
    tod = np.arange(86400)
    tab = np.empty((86400, 9), dtype=np.uint32)
    digits = [
        tod // 36000,
        tod // 3600 % 10,
        tod // 600 % 6,
        tod // 60 % 10,
        tod // 10 % 6,
        tod % 10,
    ]
    tab[:, [1, 2, 4, 5, 7, 8]] = np.stack(digits, axis=1) + ord("0")
    tab[:, 0] = ord(" ")
    tab[:, [3, 6]] = ord(":")
    return tab


# UCS-4 code points of " HH:MM:SS" for every second of a day.
_TOD_TABLE = _tod_table()


def format_timestamps(secs: I64) -> list[str]:
    """Format epoch seconds as ``YYYY-MM-DD HH:MM:SS`` strings, vectorised.

    Gathers the UCS-4 code points of the date and the time of day from two small tables into one
    uint32 matrix and views it as ``<U19``: an order of magnitude faster than ``strftime``.
    """
    n = len(secs)
    if n == 0:
        return []
    days = secs // 86400
    d0 = int(days.min())
    day_idx = days - d0
    nd = int(day_idx.max()) + 1
    day_str = np.datetime_as_string((np.arange(nd) + d0).astype("datetime64[D]")).astype("U10")
    day_tab = np.ascontiguousarray(day_str).view(np.uint32).reshape(nd, 10)
    out = np.concatenate(
        [np.take(day_tab, day_idx, axis=0), np.take(_TOD_TABLE, secs - days * 86400, axis=0)],
        axis=1,
    )
    result: list[str] = out.view("<U19").ravel().tolist()
    return result


def _round4(x: F64) -> F64:
    """``round(v, 4)`` for every element, bit-identical to Python's ``round``.

    ``np.round`` scales by 10**4 in binary floating point, which can land on the other side of a
    half-way point; Python rounds the exact value. Only near-ties can differ, so redo just those.
    """
    out = np.round(x, 4)
    scaled = x * 10_000.0
    near_tie = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    out[near_tie] = [round(v, 4) for v in x[near_tie].tolist()]
    return out


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


class TimeSampler:
    """Draws start times (of calls, messages, chats) following a local business-hours profile
    over [t_lo, t_hi)."""

    def __init__(self, t_lo: int, t_hi: int, tz: ZoneInfo, country_code: str) -> None:
        holidays = _HOLIDAYS_ES if country_code == "34" else _HOLIDAYS_GENERIC
        h0 = t_lo - t_lo % 3600
        nb = -(-(t_hi - h0) // 3600)
        starts = h0 + 3600 * np.arange(nb, dtype=np.int64)
        self.h0 = h0
        self.lo = np.maximum(starts, t_lo)
        self.hi = np.minimum(starts + 3600, t_hi)
        profile = np.empty(nb)
        weekday = np.empty(nb, dtype=bool)
        for i, b in enumerate(starts.tolist()):
            local = datetime.fromtimestamp(b, tz)
            w = _WEEKDAY_PROFILE[local.hour]
            if (local.month, local.day) in holidays or local.weekday() == 6:
                w *= _SUNDAY_FACTOR
            elif local.weekday() == 5:
                w *= _SATURDAY_FACTOR_AM if local.hour < 14 else _SATURDAY_FACTOR_PM
            profile[i] = w
            weekday[i] = local.weekday() < 5 and (local.month, local.day) not in holidays
        self.profile = profile
        span = (self.hi - self.lo).astype(np.float64)
        self.cdf = _cdf(profile * span)
        self.weekday_days = float(span[weekday].sum() / 86400)

    @classmethod
    def for_spec(cls, spec: CompanySpec) -> TimeSampler:
        """The sampler of a company's data range, in its time zone."""
        t_lo = math.ceil(spec.start.timestamp())
        t_hi = math.ceil(spec.end.timestamp())
        return cls(t_lo, t_hi, ZoneInfo(spec.timezone), spec.country_code)

    def sample(self, rng: np.random.Generator, n: int) -> I64:
        b = _draw(rng, self.cdf, n)
        width = self.hi[b] - self.lo[b]
        ts: I64 = self.lo[b] + (rng.random(n) * width).astype(np.int64)
        return ts

    def weight(self, ts: I64) -> F64:
        """The traffic weight of each instant's hour (1.0 at a weekday's busiest hours)."""
        b = np.clip((ts - self.h0) // 3600, 0, len(self.profile) - 1)
        result: F64 = self.profile[b]
        return result

    def business(self, ts: I64) -> npt.NDArray[np.bool_]:
        result: npt.NDArray[np.bool_] = self.weight(ts) >= _BUSINESS_WEIGHT
        return result


# --------------------------------------------------------------------------------------------
# Static entities: users, queues, the external number pool.
# --------------------------------------------------------------------------------------------


def _build_users(
    spec: CompanySpec, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    n = spec.users
    spanish = spec.country_code == "34"
    first_names = _SPANISH_FIRST if spanish else _ENGLISH_FIRST
    last_names = _SPANISH_LAST if spanish else _ENGLISH_LAST
    fi = rng.integers(0, len(first_names), n).tolist()
    li = rng.integers(0, len(last_names), n).tolist()
    active = (rng.random(n) < 0.92).tolist()
    dnd = (rng.random(n) < 0.04).tolist()
    langs = ("es", "en", "ca") if spanish else ("en", "es", "fr")
    lang = rng.choice(3, n, p=[0.85, 0.1, 0.05]).tolist()
    created = rng.integers(20 * 86400, 1200 * 86400, n)
    created_at = format_timestamps(int(spec.start.timestamp()) - created)
    ua = rng.choice(len(_USER_AGENTS), n, p=_UA_P).tolist()
    codec_roll = rng.random(n).tolist()
    endpoints = 200_000 + rng.choice(800_000, n, replace=False).astype(np.int64)
    # Activity: some agents live on the phone, some rarely use it; sales people dial out more.
    base = rng.gamma(2.0, 1.0, n) * np.where(np.array(active), 1.0, 0.15)
    out_bias = rng.beta(2.0, 2.0, n) * 2.0
    users: list[dict[str, Any]] = []
    names: list[str] = []
    exts: list[str] = []
    uas: list[str] = []
    codecs: list[str] = []
    seen_emails: set[str] = set()
    for i in range(n):
        first, last = first_names[fi[i]], last_names[li[i]]
        local = f"{_ascii(first)}.{_ascii(last)}"
        email, k = f"{local}@company{spec.customer_id}.example.com", 2
        while email in seen_emails:
            email, k = f"{local}{k}@company{spec.customer_id}.example.com", k + 1
        seen_emails.add(email)
        ua_name, kind = _USER_AGENTS[ua[i]]
        if kind == "hard":
            codec = "G722" if codec_roll[i] < 0.7 else "PCMA"
        else:
            codec = "opus" if codec_roll[i] < 0.75 else ("PCMA" if codec_roll[i] < 0.92 else "PCMU")
        names.append(f"{first} {last}")
        exts.append(str(101 + i))
        uas.append(ua_name)
        codecs.append(codec)
        users.append(
            {
                "id": _FIRST_USER_ID + i,
                "customer_id": spec.customer_id,
                "first_name": first,
                "last_name": last,
                "email": email,
                "ext": exts[-1],
                "active": active[i],
                "dnd": dnd[i],
                "language": langs[lang[i]],
                "timezone": spec.timezone,
                "created_at": created_at[i],
            }
        )
    dids = [f"+{spec.country_code}910555{i:03d}" if i < 1000 else f"+{spec.country_code}91{i:07d}"
            for i in range(n)]  # fmt: skip
    extra = {
        "ids": _FIRST_USER_ID + np.arange(n, dtype=np.int64),
        "endpoint": endpoints,
        "in_cdf": _cdf(base * (2.0 - out_bias) + 1e-3),
        "out_cdf": _cdf(base * out_bias + 1e-3),
        "names": names,
        "exts": exts,
        "uas": uas,
        "codecs": codecs,
        "dids": dids,
        "did_clid": [f'"{nm}" <{d}>' for nm, d in zip(names, dids, strict=True)],
        "ext_clid": [f'"{nm}" <{e}>' for nm, e in zip(names, exts, strict=True)],
    }
    return users, extra


def _build_queues(
    spec: CompanySpec, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    nq = spec.queues
    max_ext = 100 + spec.users
    # Keep queue numbers out of the extension range.
    base = 800 if max_ext < 800 else 8 * 10 ** len(str(max_ext))
    queues: list[dict[str, Any]] = []
    size = np.zeros(max(nq, 1), dtype=np.int64)
    members = np.zeros((max(nq, 1), min(spec.users, 8)), dtype=np.int64)
    ring_time = np.full(max(nq, 1), 20, dtype=np.int64)
    ringall = np.ones(max(nq, 1), dtype=bool)
    for q in range(nq):
        m = min(spec.users, int(rng.integers(3, 9)))
        chosen = np.sort(rng.choice(spec.users, m, replace=False))
        # The first queue always rings all agents at once, the most common set-up.
        strategy = _RING_STRATEGIES[int(rng.integers(0, len(_RING_STRATEGIES))) if q else 0]
        rt = _QUEUE_RING_TIMES[int(rng.integers(0, len(_QUEUE_RING_TIMES)))]
        size[q], ring_time[q], ringall[q] = m, rt, strategy == "ringall"
        members[q, :m] = chosen
        name = _QUEUE_NAMES[q] if q < len(_QUEUE_NAMES) else f"Queue {q + 1}"
        queues.append(
            {
                "id": _FIRST_QUEUE_ID + q,
                "customer_id": spec.customer_id,
                "name": name,
                "number": str(base + q),
                "users": (_FIRST_USER_ID + chosen).tolist(),
                "ring_strategy": strategy,
                "ring_time": rt,
                "skip_busy": bool(rng.random() < 0.5),
            }
        )
    extra = {
        "cdf": _cdf(rng.gamma(2.0, 1.0, max(nq, 1))),
        "members": members,
        "size": size,
        "ring_time": ring_time,
        "ringall": ringall,
        "names": [q["name"] for q in queues],
    }
    return queues, extra


def _agent_status(spec: CompanySpec, queues: list[dict[str, Any]]) -> dict[tuple[int, int], bool]:
    """Whether each queue member is logged in to the queue now: most are.

    Drawn from a generator of its own, so that adding it left every other value unchanged.
    """
    rng = np.random.default_rng([spec.seed, _AGENT_STATUS_STREAM])
    return {
        (queue["id"], user_id): bool(rng.random() < _AGENT_LOGGED_IN_P)
        for queue in queues
        for user_id in queue["users"]
    }


def _home_country(spec: CompanySpec) -> _Country:
    return _COUNTRIES.get(spec.country_code) or _Country(
        spec.country_code, "National", ("6",), ("8",), 9, 0.03, 0.012, "PCMA"
    )


def _build_pool(spec: CompanySpec, rng: np.random.Generator, size: int) -> dict[str, Any]:
    """External numbers that call in or get called, with a Zipf-Mandelbrot popularity."""
    home = _home_country(spec)
    countries = [home] + [c for c in _COUNTRIES.values() if c.code != home.code]
    foreign_w = np.array([_FOREIGN_WEIGHTS.get(c.code, 1.0) for c in countries[1:]])
    probs = np.concatenate([[1.0 - _FOREIGN_SHARE], _FOREIGN_SHARE * foreign_w / foreign_w.sum()])
    country = rng.choice(len(countries), size, p=probs)
    mobile = rng.random(size) < 0.55
    no_plus = (country == 0) & (rng.random(size) < _NATIONAL_NO_PLUS_SHARE)
    name_roll = rng.random(size)
    person_p = np.where(country == 0, 0.55, 0.15)
    first = rng.integers(0, 10_000, size).tolist()
    last = rng.integers(0, 10_000, size).tolist()
    prefix_pick = rng.integers(0, 1_000, size).tolist()
    digits = rng.random(size).tolist()
    first_names = _SPANISH_FIRST + _ENGLISH_FIRST
    last_names = _SPANISH_LAST + _ENGLISH_LAST
    # One shared label string per (country, kind) keeps a million rows from holding copies.
    dest_labels = [
        (f"{c.name} Landline", f"{c.name} Mobile") if i else
        (f"{c.name} Landline (Local)", f"{c.name} Mobile (Local)")
        for i, c in enumerate(countries)
    ]  # fmt: skip
    numbers: list[str] = []
    src_names: list[str] = []
    mobiles: list[bool] = []
    labels: list[str] = []
    clids: list[str] = []
    rates: list[float] = []
    codecs: list[str] = []
    seen: set[str] = set()
    rows = zip(
        country.tolist(), mobile.tolist(), no_plus.tolist(), name_roll.tolist(),
        person_p.tolist(), first, last, prefix_pick, digits, strict=True,
    )  # fmt: skip
    for ci, mob, bare, roll, pp, fi, li, pick, dig in rows:
        c = countries[ci]
        prefixes = c.mobile_prefixes if mob else c.landline_prefixes
        prefix = prefixes[pick % len(prefixes)]
        width = c.digits - len(prefix)
        national = f"{prefix}{int(dig * 10**width):0{width}d}"
        if national in seen:
            continue
        seen.add(national)
        number = national if bare else f"+{c.code}{national}"
        if roll < pp:
            name = f"{first_names[fi % len(first_names)]} {last_names[li % len(last_names)]}"
        elif roll < pp + 0.08:
            name = _COMPANY_NAMES[fi % len(_COMPANY_NAMES)]
        else:
            name = number
        numbers.append(number)
        src_names.append(name)
        mobiles.append(mob)
        labels.append(dest_labels[ci][mob])
        clids.append(f'"{name}" <{number}>')
        rates.append(c.mobile_rate if mob else c.landline_rate)
        codecs.append(c.codec)
    p = len(numbers)
    # Zipf-Mandelbrot: a handful of regulars, a long tail of one-off callers.
    weights = (np.arange(1, p + 1) + 30.0) ** -1.15
    return {
        "numbers": numbers,
        "src_names": src_names,
        "mobile": np.array(mobiles, dtype=bool),
        "labels": labels,
        "clids": clids,
        "rate": np.array(rates, dtype=np.float64),
        "codecs": codecs,
        "cdf": _cdf(weights),
    }


def _obj(values: list[Any]) -> Obj:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _user_mobiles(
    spec: CompanySpec, u: dict[str, Any], taken: set[str]
) -> tuple[list[str], npt.NDArray[np.bool_]]:
    """Each user's mobile number, and which users have their calls follow them there.

    Drawn from a generator of its own, so that adding them changed no other value.
    """
    rng = np.random.default_rng([spec.seed, _USER_MOBILE_STREAM])
    home = _home_country(spec)
    n = len(u["names"])
    numbers: list[str] = []
    for i in range(n):
        prefix = home.mobile_prefixes[i % len(home.mobile_prefixes)]
        width = home.digits - len(prefix)
        while True:
            number = f"+{home.code}{prefix}{int(rng.integers(0, 10**width)):0{width}d}"
            if number not in taken:
                break
        taken.add(number)
        numbers.append(number)
    forwards = rng.random(n) < _FORWARD_USERS_SHARE
    if not forwards.any():
        forwards[int(np.argmax(np.diff(np.r_[0.0, u["in_cdf"]])))] = True
    return numbers, forwards


def _build_state(
    spec: CompanySpec,
    rng: np.random.Generator,
    u: dict[str, Any],
    q: dict[str, Any],
    pool_size: int,
) -> _State:
    p = _build_pool(spec, rng, pool_size)
    n_users, n_external = len(u["names"]), len(p["numbers"])
    mobiles, forwards = _user_mobiles(spec, u, set(p["numbers"]))
    home = _home_country(spec)
    mobile_label = f"{home.name} Mobile (Local)"
    info = [None, *_MISC_INFO, *(TRANSFER_INFO.format(ext=e) for e in u["exts"]), *_CAMPAIGNS]
    in_weight = np.diff(np.r_[0.0, u["in_cdf"]])
    numbers = p["numbers"] + mobiles
    return _State(
        rng=rng,
        next_id=_FIRST_CDR_ID,
        next_call_id=_FIRST_CALL_ID,
        next_live_id=_FIRST_LIVE_ID,
        cat_p=_CAT_P_WITH_QUEUES if spec.queues > 0 else _CAT_P_NO_QUEUES,
        user_ids=u["ids"],
        user_endpoint=u["endpoint"],
        user_in_cdf=u["in_cdf"],
        user_out_cdf=u["out_cdf"],
        forward_cdf=_cdf(in_weight * forwards),
        queue_cdf=q["cdf"],
        queue_members=q["members"],
        queue_size=q["size"],
        queue_ring_time=q["ring_time"],
        queue_ringall=q["ringall"],
        pool_cdf=p["cdf"],
        pool_rate=np.concatenate([p["rate"], np.full(n_users, home.mobile_rate)]),
        n_users=n_users,
        n_pool=len(numbers),
        n_external=n_external,
        n_queues=spec.queues,
        party_number=_obj(u["exts"] + numbers),
        party_id=_obj([str(i) for i in u["ids"].tolist()] + [None] * len(numbers)),
        party_src_name=_obj(u["names"] + p["src_names"] + u["names"]),
        party_dst_name=_obj(u["names"] + p["labels"] + [mobile_label] * n_users),
        party_ua=_obj(u["uas"] + [None] * len(numbers)),
        party_codec=_obj(u["codecs"] + p["codecs"] + [home.codec] * n_users),
        clid=_obj(
            u["did_clid"]
            + u["ext_clid"]
            + p["clids"]
            + [f'"{nm}" <{m}>' for nm, m in zip(u["names"], mobiles, strict=True)]
        ),
        user_dids=u["dids"],
        party_mobile=np.concatenate(
            [np.zeros(n_users, dtype=bool), p["mobile"], np.ones(n_users, dtype=bool)]
        ),
        dest=_obj(
            [*p["labels"], *[mobile_label] * n_users, *q["names"], DESTINATIONS.internal, None]
        ),
        info=_obj(info),
        metadata=_obj(list(_METADATA)),
    )


# --------------------------------------------------------------------------------------------
# Calls: draw attributes, settle outcomes, expand into legs.
# --------------------------------------------------------------------------------------------


def _other_user(rng: np.random.Generator, st: _State, user: I64) -> I64:
    other = _draw(rng, st.user_in_cdf, len(user))
    clash = other == user
    other[clash] = (user[clash] + 1 + rng.integers(0, st.n_users - 1, int(clash.sum()))) % (
        st.n_users
    )
    return other


def _draw_calls(st: _State, n: int, cat: I64 | None = None) -> Cols:
    """Draw who calls whom; outcomes are settled later by ``_settle`` (they may be overridden)."""
    rng = st.rng
    if cat is None:
        cat = rng.choice(_N_CATS, n, p=st.cat_p).astype(np.int64)
    inbound = cat <= _INBOUND_LAST
    user = np.where(inbound, _draw(rng, st.user_in_cdf, n), _draw(rng, st.user_out_cdf, n))
    # A forwarded call goes to one of the users whose calls follow them to their mobile.
    user = np.where(cat == _IN_FORWARD, _draw(rng, st.forward_cdf, n), user)
    queue = np.where(cat == _IN_QUEUE, _draw(rng, st.queue_cdf, n), -1)
    info = np.where(rng.random(n) < 0.004, rng.integers(1, 1 + len(_MISC_INFO), n), 0)
    meta_roll = rng.random(n)
    meta = np.where(
        meta_roll < 0.01,
        np.where(inbound, rng.integers(2, 4, n), np.where(meta_roll < 0.005, 1, 4)),
        0,
    )
    notes = np.searchsorted(np.array([0.97, 0.993]), rng.random(n), side="right")
    return {
        "cat": cat,
        "user": user.astype(np.int64),
        "peer": _other_user(rng, st, user.astype(np.int64)),
        "ext": _draw(rng, st.pool_cdf, n),
        "queue": queue.astype(np.int64),
        "qoff": rng.integers(0, 1 << 20, n),
        "server": _SERVER_IDS[rng.choice(len(_SERVER_IDS), n, p=_SERVER_P)],
        "answered": rng.random(n) < _ANSWER_P[cat],
        "label": rng.choice(len(_LABELS), n, p=_LABEL_P).astype(np.int64),
        "info": info.astype(np.int64),
        "meta": meta.astype(np.int64),
        "notes": notes.astype(np.int64),
        "start": np.zeros(n, dtype=np.int64),
        "load": np.ones(n),
    }


def _lognormal_secs(rng: np.random.Generator, median: Arr | float, sigma: float, n: int) -> I64:
    return np.rint(rng.lognormal(np.log(median), sigma, n)).astype(np.int64)


def _settle(st: _State, c: Cols) -> None:
    """Draw ring times, talk times, failure kinds, queue rounds and forwarding delays from
    ``answered`` (and ``load``, the traffic weight of the hour, for queue waits)."""
    rng = st.rng
    cat, ans = c["cat"], c["answered"]
    n = len(cat)
    outbound = cat >= _OUT_EXT
    isq = cat == _IN_QUEUE
    fwd = cat == _IN_FORWARD
    fail = np.where(
        outbound,
        rng.choice([1, 2, 3], n, p=[0.6, 0.25, 0.15]),
        rng.choice([1, 2, 3], n, p=[0.8, 0.15, 0.05]),
    )
    # A queue rings its agents, a forwarded call the user's mobile: neither is busy or failed.
    fail = np.where(isq | fwd, _D_NO_ANSWER, fail)
    disp = np.where(ans, _D_CONNECTED, fail)
    tc_fail = _TC_FAILED[rng.choice(len(_TC_FAILED), n, p=_TC_FAILED_P)]
    tc_noans = _TC_NOANS[rng.choice(len(_TC_NOANS), n, p=_TC_NOANS_P)]
    tc_ok = np.where(rng.random(n) < CAUSES.unspecified_share, _TC_UNSPEC, _TC_NORMAL)
    tcause = np.select(
        [disp == _D_CONNECTED, disp == _D_NO_ANSWER, disp == _D_BUSY],
        [tc_ok, tc_noans, _TC_BUSY],
        tc_fail,
    )
    ring = np.select(
        [disp == _D_CONNECTED, disp == _D_NO_ANSWER, disp == _D_BUSY],
        [
            _lognormal_secs(rng, 9.0, 0.55, n),
            np.rint(rng.normal(24.0, 7.0, n)).astype(np.int64),
            rng.integers(2, 7, n),
        ],
        rng.integers(2, 6, n),
    )
    ring = np.clip(ring, 2, 40)
    median = np.select([cat == _OUT_EXT, cat == _INTERNAL], [75.0, 45.0], 110.0)
    talk = _lognormal_secs(rng, median, 1.05, n)
    # The heavy tail: a few calls of one to three hours (conference calls, forgotten lines).
    tail = rng.random(n) < 0.0025
    talk = np.where(tail, rng.integers(3600, 10_801, n), talk)
    talk = np.clip(talk, 1, 4 * 3600)
    # A transferred call: short first leg (triage), normal second leg on the colleague's phone.
    xfer = cat == _IN_TRANSFER
    talk = np.where(xfer, np.clip(_lognormal_secs(rng, 35.0, 0.6, n), 5, 600), talk)

    # Queue calls ring in rounds of the queue's ring time until an agent answers or the caller
    # hangs up: `wait` seconds after the first ring. A ring-all queue rings its available agents
    # (2-4) each round, any other strategy one agent per round, in turn.
    q = np.maximum(c["queue"], 0)
    size = np.maximum(st.queue_size[q], 1)
    rt = st.queue_ring_time[q]
    ringall = st.queue_ringall[q]
    load = 0.5 + c["load"]
    wait = np.where(
        ans,
        _lognormal_secs(rng, _QUEUE_WAIT_MEDIAN * load, _QUEUE_WAIT_SIGMA, n),
        _lognormal_secs(rng, _QUEUE_PATIENCE_MEDIAN * load, _QUEUE_PATIENCE_SIGMA, n),
    )
    wait = np.clip(wait, 2, rt * _QUEUE_MAX_ROUNDS)
    rounds = (wait - 1) // rt + 1
    last_ring = wait - (rounds - 1) * rt
    # An agent's phone rings at least 2 s before it is answered or given up on.
    wait = np.where(last_ring < 2, wait + 1, wait)
    last_ring = np.maximum(last_ring, 2)
    per_round = np.where(
        ringall, np.minimum(size, rng.choice([2, 3, 4], n, p=[0.45, 0.4, 0.15])), 1
    )
    ans_slot = np.where(ringall, (rng.random(n) * per_round).astype(np.int64), 0)

    # A forwarded call: the desk phone rings a while first (follow-me) or not at all, then the
    # mobile rings until it answers or the caller gives up.
    fdelay = np.where(rng.random(n) < 0.4, rng.integers(0, 3, n), rng.integers(10, 16, n))
    mring = np.where(
        ans, np.clip(_lognormal_secs(rng, 8.0, 0.5, n), 3, 25), rng.integers(20, 26, n)
    )

    c["nlegs"] = np.select([isq, xfer, fwd], [rounds * per_round, 2, 2], 1).astype(np.int64)
    c["ans_leg"] = np.where(isq & ans, (rounds - 1) * per_round + ans_slot, -1).astype(np.int64)
    c["ringall"] = ringall & isq
    c["rt"] = rt.astype(np.int64)
    c["per_round"] = per_round.astype(np.int64)
    c["rounds"] = rounds.astype(np.int64)
    c["last_ring"] = last_ring.astype(np.int64)
    c["ring"] = np.select([isq, fwd], [last_ring, fdelay + mring], ring).astype(np.int64)
    c["ring2"] = np.where(fwd, mring, rng.integers(3, 15, n)).astype(np.int64)
    c["fdelay"] = fdelay.astype(np.int64)
    c["talk"] = np.where(ans, talk, 0).astype(np.int64)
    c["talk2"] = np.where(xfer, np.clip(_lognormal_secs(rng, 110.0, 1.0, n), 5, 4 * 3600), 0)
    c["disp"] = disp.astype(np.int64)
    c["tcause"] = tcause.astype(np.int64)
    c["tc_noans"] = tc_noans.astype(np.int64)


def _expand(st: _State, c: Cols, key0: int) -> Cols:
    """One row per leg, legs of a call contiguous and in leg order; keys start at ``key0``."""
    nlegs = c["nlegs"]
    n_calls = len(nlegs)
    ci = np.repeat(np.arange(n_calls), nlegs)
    j = np.arange(len(ci)) - np.repeat(np.cumsum(nlegs) - nlegs, nlegs)
    cat = c["cat"][ci]
    ans_call = c["answered"][ci]
    isq = cat == _IN_QUEUE
    xfer = cat == _IN_TRANSFER
    fwd = cat == _IN_FORWARD
    second = j == 1
    # The outbound leg of a forwarded call, from the user to their mobile.
    fwd_out = fwd & second
    inbound = (cat <= _INBOUND_LAST) & ~fwd_out
    user = c["user"][ci]
    agent = np.where(xfer & second, c["peer"][ci], user)

    # Queue legs: round `rnd`, slot `slot` in the round (ring-all), agents taken in turn.
    per_round = c["per_round"][ci]
    rnd = j // per_round
    slot = j - rnd * per_round
    ringall = c["ringall"][ci]
    q = np.maximum(c["queue"][ci], 0)
    turn = np.where(ringall, slot, j)
    member = (c["qoff"][ci] + turn) % np.maximum(st.queue_size[q], 1)
    agent = np.where(isq, st.queue_members[q, member], agent)
    last_round = rnd == c["rounds"][ci] - 1

    ans_leg = c["ans_leg"][ci]
    answered = np.where(isq, j == ans_leg, ans_call)
    rt = c["rt"][ci]
    ring = np.select(
        [isq & ~last_round, xfer & second, fwd_out],
        [rt, c["ring2"][ci], c["ring2"][ci]],
        c["ring"][ci],
    )
    talk = np.where(xfer & second, c["talk2"][ci], c["talk"][ci])
    billsec = np.where(answered, talk, 0)
    duration = ring + billsec
    offset = np.select(
        [isq, xfer & second, fwd_out],
        # Blind transfer: the colleague's phone starts ringing when the first leg hangs up.
        [rnd * rt, c["ring"][ci] + c["talk"][ci], c["fdelay"][ci]],
        0,
    )

    disp = np.where(answered, _D_CONNECTED, np.where(isq, _D_NO_ANSWER, c["disp"][ci]))
    tcause = np.where(answered, _TC_NORMAL, c["tcause"][ci])
    tcause = np.where(answered & (j == 0), c["tcause"][ci], tcause)
    # Still ringing as a colleague answered (the answering round of a ring-all queue), or rang
    # and nobody answered it (RONA).
    elsewhere = isq & ~answered & ans_call & ringall & last_round
    tcause = np.where(
        isq & ~answered, np.where(elsewhere, _TC_ELSEWHERE, c["tc_noans"][ci]), tcause
    )
    typ = np.where(inbound, np.where(answered, _T_I, _T_M), _T_O)

    u, pool = st.n_users, st.n_pool
    ext = c["ext"][ci]
    mobile = st.n_external + agent
    outbound = cat == _OUT_EXT
    internal = cat == _INTERNAL
    src = np.where(inbound, u + ext, agent)
    dst = np.select([inbound, internal, fwd_out], [agent, c["peer"][ci], u + mobile], u + ext)
    clid = np.where(inbound | fwd_out, 2 * u + ext, np.where(internal, u + agent, agent))
    nq = st.n_queues
    dest = np.select(
        [outbound, fwd_out, isq, internal], [ext, mobile, pool + q, pool + nq], pool + nq + 1
    )
    ctx = np.select(
        [isq, xfer & second, fwd_out, inbound],
        [_CTX_QUEUE, _CTX_XFER, _CTX_FWD, _CTX_PSTN],
        _CTX_INTERNAL,
    )
    info = c["info"][ci]
    xfer_info = 1 + len(_MISC_INFO) + user
    info = np.where(xfer & second, xfer_info, info)
    rate = np.select([outbound, fwd_out], [st.pool_rate[ext], st.pool_rate[mobile]], 0.0)
    return {
        "call": ci + key0,
        "j": j,
        "cat": cat,
        "queue": np.where(isq, q, -1),
        "start": c["start"][ci] + offset,
        "duration": duration.astype(np.int64),
        "billsec": billsec.astype(np.int64),
        "type": typ,
        "disp": disp,
        "tcause": tcause,
        "agent": agent.astype(np.int64),
        "src": src,
        "dst": dst,
        "clid": clid,
        "dest": dest,
        "ctx": ctx,
        "rate": rate,
        "info": info,
        "meta": c["meta"][ci],
        "label": c["label"][ci],
        "notes": c["notes"][ci],
        "server": c["server"][ci],
    }


def _concat(parts: list[Cols]) -> Cols:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _take(cols: Cols, idx: Arr) -> Cols:
    return {k: v[idx] for k, v in cols.items()}


def _call_bounds(legs: Cols) -> I64:
    call = legs["call"]
    return np.flatnonzero(np.r_[True, call[1:] != call[:-1]]).astype(np.int64)


def _cut(rng: np.random.Generator, legs: Cols, rows: int) -> Cols:
    """Keep exactly ``rows`` legs, dropping whole calls at random (legs stay together)."""
    n = len(legs["call"])
    if n <= rows:
        return legs
    if rows == 0:
        return _take(legs, np.zeros(0, dtype=np.int64))
    first = _call_bounds(legs)
    counts = np.diff(np.r_[first, n])
    perm = rng.permutation(len(first))
    cs = np.cumsum(counts[perm])
    k = int(np.searchsorted(cs, rows, side="right"))
    deficit = rows - (int(cs[k - 1]) if k else 0)
    rest = perm[k:]
    singles = rest[counts[rest] == 1][:deficit]
    keep_calls = np.zeros(len(first), dtype=bool)
    keep_calls[perm[:k]] = True
    keep_calls[singles] = True
    deficit -= len(singles)
    keep = np.repeat(keep_calls, counts)
    for ci in rest[counts[rest] > 1].tolist():
        if deficit <= 0:
            break
        # Partial call as a last resort: the first legs (the parent leg included) survive.
        take = min(deficit, int(counts[ci]))
        keep[first[ci] : first[ci] + take] = True
        deficit -= take
    return _take(legs, np.flatnonzero(keep))


def _simulate_history(st: _State, sampler: TimeSampler, n: int, t_hi: int) -> Cols:
    """Legs of ``n`` base calls plus their callbacks, restricted to calls ended before ``t_hi``."""
    rng = st.rng
    c = _draw_calls(st, n)
    c["start"] = sampler.sample(rng, n)
    # Predictive-dialer campaigns: dozens of outbound calls placed in the very same second.
    out_idx = np.flatnonzero(c["cat"] == _OUT_EXT)
    n_bursts = max(1, round(n / 2500)) if len(out_idx) >= 40 else 0
    if n_bursts:
        sizes = rng.integers(15, 61, n_bursts)
        sizes = sizes[np.cumsum(sizes) <= len(out_idx) // 2]
    if n_bursts and len(sizes):
        chosen = rng.choice(out_idx, int(sizes.sum()), replace=False)
        burst = np.repeat(np.arange(len(sizes)), sizes)
        c["start"][chosen] = sampler.sample(rng, len(sizes))[burst]
        c["answered"][chosen] = rng.random(len(chosen)) < _CAMPAIGN_ANSWER_P
        c["label"][chosen] = _LABEL_CAMPAIGN
        campaign_info = 1 + len(_MISC_INFO) + st.n_users + burst % len(_CAMPAIGNS)
        c["info"][chosen] = campaign_info
    c["load"] = sampler.weight(c["start"])
    _settle(st, c)
    legs = _expand(st, c, 0)

    first = _call_bounds(legs)
    call_end = np.maximum.reduceat(legs["start"] + legs["duration"], first)
    missed = (c["cat"] <= _INBOUND_LAST) & ~c["answered"]
    parts = [legs]
    # A missed caller calls again (a retry), to the same user or queue, while the company is open.
    retry_delay = _lognormal_secs(rng, _RETRY_DELAY_MEDIAN, _RETRY_DELAY_SIGMA, n)
    retry_at = call_end + np.clip(retry_delay, 30, 6 * 3600)
    retry = missed & (rng.random(n) < _RETRY_P) & (retry_at < t_hi) & sampler.business(retry_at)
    retry_calls = np.flatnonzero(retry)
    got_through = np.zeros(n, dtype=bool)
    if len(retry_calls):
        m = len(retry_calls)
        rc = _draw_calls(st, m, c["cat"][retry_calls])
        for key in ("user", "queue", "ext"):
            rc[key] = c[key][retry_calls]
        rc["answered"] = rng.random(m) < _RETRY_ANSWER_P
        rc["start"] = retry_at[retry_calls]
        rc["load"] = sampler.weight(rc["start"])
        _settle(st, rc)
        parts.append(_expand(st, rc, n))
        got_through[retry_calls] = rc["answered"]
    # The company calls a missed caller back, unless the caller already got through.
    delay = np.clip(_lognormal_secs(rng, 1500.0, 1.1, n), 60, 8 * 3600)
    cb_start = call_end + delay
    pick = missed & (rng.random(n) < _CALLBACK_P) & (cb_start < t_hi)
    pick &= sampler.business(cb_start) & ~(got_through & (retry_at < cb_start))
    src_calls = np.flatnonzero(pick)
    if len(src_calls):
        m = len(src_calls)
        cb = _draw_calls(st, m, np.full(m, _OUT_EXT, dtype=np.int64))
        cb["ext"] = c["ext"][src_calls]
        cb["user"] = legs["agent"][first[src_calls]]
        cb["answered"] = rng.random(m) < _CALLBACK_ANSWER_P
        cb["start"] = cb_start[src_calls]
        _settle(st, cb)
        parts.append(_expand(st, cb, n + len(retry_calls)))
    if len(parts) > 1:
        legs = _concat(parts)
        first = _call_bounds(legs)
        call_end = np.maximum.reduceat(legs["start"] + legs["duration"], first)
    # A call still in progress at t_hi has no CDR yet.
    counts = np.diff(np.r_[first, len(legs["call"])])
    return _take(legs, np.flatnonzero(np.repeat(call_end < t_hi, counts)))


def _columns(st: _State, legs: Cols) -> tuple[dict[str, list[Any]], CallLegs]:
    """Assign ids (by end time), call ids and live ids, and build the CDR_FIELDS columns and
    the facts of the legs (``CallLegs``). ``legs`` holds each call's legs together."""
    n = len(legs["call"])
    end = legs["start"] + legs["duration"]
    if n:
        first = _call_bounds(legs)
        counts = np.diff(np.r_[first, n])
        legs["call_end"] = np.repeat(np.maximum.reduceat(end, first), counts)
        legs["call_answered"] = np.repeat(
            np.logical_or.reduceat(legs["billsec"] > 0, first), counts
        )
    else:
        legs["call_end"] = np.zeros(0, dtype=np.int64)
        legs["call_answered"] = np.zeros(0, dtype=bool)
    order = np.lexsort((legs["j"], legs["call"], end))
    legs = _take(legs, order)
    call, j, start = legs["call"], legs["j"], legs["start"]

    ids = st.next_id + np.arange(n, dtype=np.int64)
    is0 = j == 0
    keys0 = call[is0]
    nkeys = int(call.max()) + 1 if n else 0
    call_id_of = np.zeros(nkeys, dtype=np.int64)
    call_id_of[keys0[np.lexsort((keys0, start[is0]))]] = st.next_call_id + np.arange(len(keys0))
    live = np.empty(n, dtype=np.int64)
    live[np.lexsort((j, call, start))] = st.next_live_id + np.arange(n)
    live0_of = np.zeros(nkeys, dtype=np.int64)
    live0_of[keys0] = live[is0]
    parent = live0_of[call].astype(object)
    parent[is0] = None
    st.next_id += n
    st.next_call_id += len(keys0)
    st.next_live_id += n

    billsec = legs["billsec"]
    rate = legs["rate"].astype(np.float64)
    charge = _round4(rate * billsec / 60)

    agent, src, dst = legs["agent"], legs["src"], legs["dst"]
    # Fresh list objects per row: a consumer mutating one row's labels must not touch another's.
    label_lists = list(map(list, _LABEL_TABLE[legs["label"]]))
    cols: dict[str, list[Any]] = {
        "id": ids.tolist(),
        "call_id": call_id_of[call].tolist(),
        "live_id": live.tolist(),
        "parent_live_id": parent.tolist(),
        "user_id": st.user_ids[agent].tolist(),
        "sip_endpoint_id": st.user_endpoint[agent].tolist(),
        "server_id": legs["server"].tolist(),
        "type": _TYPES[legs["type"]].tolist(),
        "calldate": format_timestamps(start),
        "clid": st.clid[legs["clid"]].tolist(),
        "src": st.party_number[src].tolist(),
        "src_id": st.party_id[src].tolist(),
        "src_name": st.party_src_name[src].tolist(),
        "src_ua": st.party_ua[src].tolist(),
        "src_codec": st.party_codec[src].tolist(),
        "dst": st.party_number[dst].tolist(),
        "dst_id": st.party_id[dst].tolist(),
        "dst_name": st.party_dst_name[dst].tolist(),
        "dst_ua": st.party_ua[dst].tolist(),
        "dst_codec": st.party_codec[dst].tolist(),
        "duration": legs["duration"].tolist(),
        "billsec": billsec.tolist(),
        "disposition": _DISPOSITIONS[legs["disp"]].tolist(),
        "destination": st.dest[legs["dest"]].tolist(),
        "context": _CONTEXTS[legs["ctx"]].tolist(),
        "rate": rate.tolist(),
        "charge": charge.tolist(),
        "t_cause": _T_CAUSES[legs["tcause"]].tolist(),
        "info": st.info[legs["info"]].tolist(),
        "metadata": st.metadata[legs["meta"]].tolist(),
        "labels": label_lists,
        "nb_notes": legs["notes"].tolist(),
    }
    assert list(cols) == list(CDR_FIELDS)
    facts = CallLegs(
        cdr_id=ids,
        call_id=call_id_of[call],
        start=start,
        duration=legs["duration"],
        billsec=billsec,
        charge=charge,
        category=legs["cat"],
        leg=j,
        answered=billsec > 0,
        call_end=legs["call_end"],
        call_answered=legs["call_answered"],
        user=agent,
        queue=legs["queue"],
        src=src,
        dst=dst,
        type=_TYPES[legs["type"]],
    )
    return cols, facts


def generate_company(spec: CompanySpec) -> Company:
    """Generate a company's users, queues and CDR history.

    Args:
        spec: What to generate. The same spec always yields identical output.

    Returns:
        The company; ``cdrs`` holds exactly ``spec.rows`` rows when given (otherwise about 40 per
        user per weekday), sorted by id, with every ``calldate`` in ``[start, end)`` and every
        call ended before ``end`` (a call still in progress has no CDR yet).
    """
    rng = np.random.default_rng(spec.seed)
    t_hi = math.ceil(spec.end.timestamp())
    sampler = TimeSampler.for_spec(spec)
    rows = spec.rows if spec.rows is not None else round(40 * spec.users * sampler.weekday_days)
    users, u_extra = _build_users(spec, rng)
    queues, q_extra = _build_queues(spec, rng)
    n_calls = math.ceil(rows / _LEGS_PER_CALL_GUESS * 1.1) + 20
    pool_size = int(np.clip(n_calls // 6, 300, 120_000))
    st = _build_state(spec, rng, u_extra, q_extra, pool_size)
    assert all(list(x) == list(USER_FIELDS) for x in users)
    assert all(list(x) == list(QUEUE_FIELDS) for x in queues)
    with gc_paused():
        while True:
            legs = _simulate_history(st, sampler, n_calls, t_hi)
            got = len(legs["call"])
            if got >= rows:
                break
            n_calls = math.ceil(n_calls * rows / max(got, 1) * 1.1) + 20
        cdrs, calls = _columns(st, _cut(rng, legs, rows))
    parties = Parties(
        number=st.party_number,
        name=st.party_src_name,
        mobile=st.party_mobile,
        n_users=st.n_users,
        n_external=st.n_external,
        external_cdf=st.pool_cdf,
    )
    return Company(
        spec=spec,
        users=users,
        queues=queues,
        cdrs=cdrs,
        agent_status=_agent_status(spec, queues),
        calls=calls,
        parties=parties,
        user_dids=list(st.user_dids),
        _state=st,
    )


def generate_new_cdrs(
    company: Company,
    count: int,
    *,
    now: datetime,
    late_fraction: float = 0.2,
    max_late_seconds: int = 4 * 3600,
) -> dict[str, list[Any]]:
    """Generate the CDRs of calls that end around ``now`` (see :func:`generate_new_calls`)."""
    cdrs, _ = generate_new_calls(
        company, count, now=now, late_fraction=late_fraction, max_late_seconds=max_late_seconds
    )
    return cdrs


def generate_new_calls(
    company: Company,
    count: int,
    *,
    now: datetime,
    late_fraction: float = 0.2,
    max_late_seconds: int = 4 * 3600,
) -> tuple[dict[str, list[Any]], CallLegs]:
    """Generate the CDRs of calls that end around ``now``, and the facts of their legs.

    Ids continue after the largest id generated so far (strictly increasing, never reused) and
    follow end time within the batch. A share ``late_fraction`` of the rows are long single-leg
    calls whose ``calldate`` lies up to ``max_late_seconds`` before ``now``; the rest started
    within the last few minutes. Every call has ended by ``now``.

    Args:
        company: A company from ``generate_company``; its private state advances, so repeated
            calls never repeat ids. ``company.cdrs`` is left alone (the caller appends).
        count: Exact number of rows to return (legs of one call count as rows).
        now: The current instant (tz-aware).
        late_fraction: Share of rows that are late-arriving long calls, in ``[0, 1]``.
        max_late_seconds: How long before ``now`` a late call may have started.

    Returns:
        Columns keyed like ``Company.cdrs``, exactly ``count`` rows, sorted by id; and the
        facts of those legs (``CallLegs``), in the same order.

    Raises:
        ValueError: On a negative count, a naive ``now``, a bad fraction or a company without
            generator state.
    """
    st = company._state
    if st is None:
        raise ValueError("company has no generator state; build it with generate_company")
    if count < 0:
        raise ValueError("count must be >= 0")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not 0.0 <= late_fraction <= 1.0:
        raise ValueError("late_fraction must be in [0, 1]")
    rng = st.rng
    now_s = math.floor(now.timestamp())
    n_late = round(count * late_fraction) if max_late_seconds > 0 else 0
    n_fresh = count - n_late
    parts: list[Cols] = []
    late_key0 = 0
    with gc_paused():
        if n_fresh:
            n = math.ceil(n_fresh / _LEGS_PER_CALL_GUESS * 1.2) + 5
            while True:
                c = _draw_calls(st, n)
                _settle(st, c)
                # "Started within the last few minutes": keep fresh calls short.
                c["talk"] = np.minimum(c["talk"], 300)
                c["talk2"] = np.minimum(c["talk2"], 120)
                legs = _expand(st, c, 0)
                if len(legs["call"]) >= n_fresh:
                    break
                n *= 2
            legs = _cut(rng, legs, n_fresh)
            late_key0 = n
            first = _call_bounds(legs)
            counts = np.diff(np.r_[first, len(legs["call"])])
            span = np.maximum.reduceat(legs["start"] + legs["duration"], first)
            call_start = now_s - rng.integers(0, 121, len(first)) - span
            legs["start"] = legs["start"] + np.repeat(call_start, counts)
            parts.append(legs)
        if n_late:
            cat = np.where(rng.random(n_late) < 0.55, _IN_DIRECT, _OUT_EXT).astype(np.int64)
            c = _draw_calls(st, n_late, cat)
            c["answered"][:] = True
            _settle(st, c)
            # At least 20 minutes late (when allowed), so late rows never pass for fresh ones.
            lateness = rng.integers(min(1200, max_late_seconds), max_late_seconds + 1, n_late)
            end_s = now_s - rng.integers(0, 61, n_late)
            duration = np.maximum(lateness - (now_s - end_s), 3)
            c["ring"] = np.minimum(c["ring"], duration - 1)
            c["talk"] = duration - c["ring"]
            c["start"] = end_s - duration
            parts.append(_expand(st, c, late_key0))
        if not parts:
            none = _draw_calls(st, 0)
            _settle(st, none)
            parts.append(_expand(st, none, 0))
        return _columns(st, _concat(parts))
