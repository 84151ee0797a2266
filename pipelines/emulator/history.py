"""The rest of a synthetic company's communication history, consistent with its calls.

``History(company)`` builds the records of every collection besides ``cdrs``, ``users`` and
``queues`` (see ``fields.COLLECTIONS``) from the company the generator made:

* ``monitors`` (call recordings): one per recorded leg. The users who record their calls, and
  the queues that record theirs, record every answered leg with an outside party. A recording
  carries its leg's ``calldate`` as ``timestamp``, its ``src``/``dst`` as ``caller``/``called``,
  its ``billsec`` as ``duration`` and its ``type``; ``size`` is the exact size of its MP3 file.
* ``voicemessages``: after some missed calls (to a user: their mailbox, ``dialled`` = their
  extension; to a queue, after a long wait: the queue's mailbox, ``dialled`` = its number), with
  ``origtime`` = the end of the missed call and ``caller`` = its ``src``.
* ``sms``: threads between users and customers (mobiles of the callers' pool): a user texting a
  caller they missed, reminders and quotes, customers writing in, and replies.
* ``chats``: website chats answered by the users who are chat operators, missed ones and
  offline messages.
* ``conversations``: one per SMS thread (channel ``sms``) and per chat (channel ``chat``).
* ``faxes``: received and sent on the company's fax number.
* ``transactions``: per month, the plan's fee and the month's call charges (exactly the sum of
  the month's CDR ``charge``, rounded to cents; the open month's is ``pending``), and top-ups.
* ``contacts``: the company's directory (colleagues, shared contacts) and personal contacts.
* ``queuegroups``: groups of queues.

Every value is drawn from a generator of its own (seeded from the company's seed), so the same
company gives the same history, and the CDRs are the same with or without it. What VoIPstudio
records in these collections beyond their field names is not documented: the volumes, shares,
texts and the way a record matches its call are the emulator's choices [guess], listed in
``docs/emulator.md`` ("The rest of the history").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.emulator.bulk import gc_paused
from pipelines.emulator.fields import COLLECTIONS
from pipelines.emulator.files import audio_sizes
from pipelines.emulator.generator import (
    CATEGORY_DIRECT,
    CATEGORY_FORWARD,
    CATEGORY_INTERNAL,
    CATEGORY_QUEUE,
    CallLegs,
    Company,
    TimeSampler,
    format_timestamps,
)

__all__ = ["CALL_DERIVED", "HISTORY_COLLECTIONS", "History"]

I64 = npt.NDArray[np.int64]
Columns = dict[str, list[Any]]

HISTORY_COLLECTIONS = (
    "sms",
    "chats",
    "voicemessages",
    "monitors",
    "faxes",
    "transactions",
    "conversations",
    "contacts",
    "queuegroups",
)
# Collections whose records come from calls: new ones arrive with new calls (and their CDRs).
CALL_DERIVED = ("monitors", "voicemessages")

_HISTORY_STREAM = 0x415
_FIRST_IDS = {
    "monitors": 20_000_001,
    "voicemessages": 21_000_001,
    "sms": 22_000_001,
    "chats": 23_000_001,
    "faxes": 24_000_001,
    "transactions": 25_000_001,
    "conversations": 26_000_001,
    "contacts": 27_000_001,
    "queuegroups": 9_001,
}

# Recordings [guess]: a share of users record all their calls; the first queue records its
# calls, each other queue with this probability.
_RECORDING_USERS_SHARE = 0.35
_RECORDING_QUEUE_P = 0.5
# Voicemail [guess]: a missed caller to a user leaves a message with _VOICEMAIL_P; a queue caller
# is offered the queue's mailbox after waiting _QUEUE_VOICEMAIL_AFTER seconds and leaves one
# with _QUEUE_VOICEMAIL_P. A message lasts a log-normal time.
_VOICEMAIL_P = 0.35
_QUEUE_VOICEMAIL_AFTER = 45
_QUEUE_VOICEMAIL_P = 0.4
_VOICEMAIL_MEDIAN, _VOICEMAIL_SIGMA = 20.0, 0.6
_VOICEMAIL_NEW_RECENT_P, _VOICEMAIL_NEW_OLD_P = 0.8, 0.1
# SMS [guess]: a user texts a missed caller on a mobile with _MISSED_SMS_P; per user and working
# day, _OUTBOUND_THREADS threads start with the user and _INBOUND_THREADS with a customer; the
# other side answers with _REPLY_P (a customer) or _USER_REPLY_P (a user).
_MISSED_SMS_P = 0.12
_OUTBOUND_THREADS, _INBOUND_THREADS = 0.6, 0.3
_REPLY_P, _USER_REPLY_P = 0.35, 0.6
_SMS_RESULTS = (("DELIVERED", 0.93), ("SENT", 0.03), ("FAILED", 0.04))
# Chats [guess]: a share of users are chat operators; each gets this many chats per working day.
_CHAT_OPERATORS_SHARE = 0.4
_CHATS_PER_OPERATOR_DAY = 1.2
# state: 2 closed (answered), 3 missed (nobody answered), 4 offline message [guess].
_CHAT_STATES = ((2, 0.82), (3, 0.10), (4, 0.08))
_WEBSITE_IDS = (4101, 4102)
# Faxes per working day, company-wide [guess].
_FAXES_PER_DAY = 1.5
# Transactions [guess]: the plan's monthly fee per active user, and top-ups now and then.
_PLAN_FEE = 14.95
_TOPUP_EVERY_DAYS = 9.0
_TOPUP_AMOUNTS = (50.0, 100.0, 200.0)
_CURRENCIES = {"34": "EUR", "33": "EUR", "49": "EUR", "39": "EUR", "351": "EUR", "44": "GBP",
               "1": "USD", "52": "MXN", "212": "MAD"}  # fmt: skip
# Contacts [guess]: shared contacts of the company, personal ones per user.
_SHARED_CONTACTS_BASE, _SHARED_CONTACTS_PER_USER = 40, 2
_PERSONAL_CONTACTS_MAX = 6
_CONTACT_GROUPS = (("Customers", 0.7), ("Suppliers", 0.1), ("Partners", 0.1), ("VIP", 0.1))
_QUEUE_GROUP_NAMES = ("Front office", "Back office", "After hours")

_TEXTS_ES = {
    "missed": (
        "Hola, hemos visto su llamada perdida. Le llamamos en cuanto podamos. {user}",
        "Sentimos no haber podido atenderle. ¿Le llamamos más tarde? {user}",
    ),
    "outbound": (
        "Recordatorio: su cita es mañana a las {hour}:00. Responda SI para confirmar.",
        "Hola, le hemos enviado el presupuesto por email. Un saludo, {user}",
        "Su pedido ha salido hoy. Cualquier duda, estamos a su disposición. {user}",
    ),
    "customer": (
        "Hola, ¿me pueden llamar?",
        "¿A qué hora abren mañana?",
        "Necesito cambiar la cita, por favor.",
    ),
    "reply": ("SI", "Gracias", "Perfecto, gracias", "Ok", "¿Me llaman a las {hour}?"),
    "user_reply": (
        "Claro, le llamamos ahora.", "Abrimos a las 9:00. Un saludo.", "Hecho, gracias.",
    ),
}  # fmt: skip
_TEXTS_EN = {
    "missed": (
        "Hi, we saw your missed call and will call you back shortly. {user}",
        "Sorry we missed your call. Shall we call you later? {user}",
    ),
    "outbound": (
        "Reminder: your appointment is tomorrow at {hour}:00. Reply YES to confirm.",
        "Hi, we have emailed you the quote. Best regards, {user}",
        "Your order shipped today. Any questions, just reply. {user}",
    ),
    "customer": ("Hi, could you call me?", "What time do you open tomorrow?",
                 "I need to move my appointment, please."),
    "reply": ("YES", "Thanks", "Great, thank you", "Ok", "Can you call me at {hour}?"),
    "user_reply": ("Sure, calling you now.", "We open at 9:00. Best regards.", "Done, thanks."),
}  # fmt: skip

_VISITOR_PLACES = (
    ("Madrid", "ES", "40.4168,-3.7038"), ("Barcelona", "ES", "41.3874,2.1686"),
    ("Valencia", "ES", "39.4699,-0.3763"), ("Sevilla", "ES", "37.3891,-5.9845"),
    ("London", "GB", "51.5072,-0.1276"), ("Paris", "FR", "48.8566,2.3522"),
    ("Berlin", "DE", "52.5200,13.4050"), ("Lisboa", "PT", "38.7223,-9.1393"),
    ("New York", "US", "40.7128,-74.0060"), ("Ciudad de México", "MX", "19.4326,-99.1332"),
)  # fmt: skip
_VISITOR_PLACE_P = np.array([0.3, 0.2, 0.1, 0.08, 0.08, 0.06, 0.05, 0.05, 0.04, 0.04])
_BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36",
)
_REFERERS = (
    None, "https://www.google.com/", "https://www.example-company.com/contacto",
    "https://www.example-company.com/precios", "https://www.example-company.com/",
    "https://www.bing.com/", "https://www.facebook.com/",
)  # fmt: skip


def _choice(rng: np.random.Generator, options: tuple[tuple[Any, float], ...], n: int) -> list[Any]:
    values = [value for value, _ in options]
    picks = rng.choice(len(options), n, p=[weight for _, weight in options]).tolist()
    return [values[i] for i in picks]


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> I64:
    return np.rint(rng.lognormal(math.log(median), sigma, n)).astype(np.int64)


# A conversation: (created_at, channel, src, dst, duration, type).
_Conversation = tuple[int, str, str | None, str | None, int, str]
# A contact: (created_at, first_name, last_name, global, group_name, internal, rel_user_id,
# user_id).
_Contact = tuple[int, str | None, str | None, bool, str | None, bool, int | None, int | None]


@dataclass
class _Thread:
    """An SMS thread between a user and a customer: messages (time, from the user?, text)."""

    user: int
    customer: str  # digits, no "+"
    messages: list[tuple[int, bool, str]]


class History:
    """The other collections of a company (``records``), and the ones that arrive later.

    Args:
        company: a company from ``generator.generate_company``; its ``calls`` are consumed
            (set to None once the history is built).

    Attributes:
        records: per collection, its records as one list per field (the fields of
            ``COLLECTIONS[name]``), sorted by id. The emulator stores them and empties this.
    """

    def __init__(self, company: Company) -> None:
        spec = company.spec
        assert company.parties is not None, "a company from generate_company"
        self.company = company
        self.parties = company.parties
        self.rng = np.random.default_rng([spec.seed, _HISTORY_STREAM])
        self.sampler = TimeSampler.for_spec(spec)
        self.t_lo = math.ceil(spec.start.timestamp())
        self.t_hi = math.ceil(spec.end.timestamp())
        self.texts = _TEXTS_ES if spec.country_code == "34" else _TEXTS_EN
        self.currency = _CURRENCIES.get(spec.country_code, "EUR")
        users = company.users
        self.user_ids = np.array([user["id"] for user in users], dtype=np.int64)
        self.user_exts = [user["ext"] for user in users]
        self.user_names = [f"{user['first_name']} {user['last_name']}" for user in users]
        self.user_did_digits = [did.lstrip("+") for did in company.user_dids]
        self.queue_numbers = [queue["number"] for queue in company.queues]
        self.fax_number = f"{spec.country_code}910559999"
        rng = self.rng
        n_users, n_queues = len(users), len(company.queues)
        self.records_user = rng.random(n_users) < _RECORDING_USERS_SHARE
        self.records_queue = np.r_[True, rng.random(max(n_queues - 1, 0)) < _RECORDING_QUEUE_P]
        operators = rng.random(n_users) < _CHAT_OPERATORS_SHARE
        operators[0] |= not operators.any()
        self.chat_operators = np.flatnonzero(operators)
        self.operator_ua = [_BROWSERS[i % len(_BROWSERS)] for i in range(n_users)]
        self.next_id = dict(_FIRST_IDS)
        calls = company.calls
        company.calls = None
        with gc_paused():
            self.records = self._build(calls)

    # -- ids, texts, numbers ---------------------------------------------------------------------

    def _ids(self, name: str, count: int) -> list[int]:
        first = self.next_id[name]
        self.next_id[name] = first + count
        return list(range(first, first + count))

    def shift_ids(self, name: str, above: int) -> None:
        """Number the next records of ``name`` above ``above`` (records were added by hand)."""
        self.next_id[name] = max(self.next_id[name], above + 1)

    def _digits(self, number: str) -> str:
        """A number as SMS and faxes write it: international digits, no "+" [doc]."""
        if number.startswith("+"):
            return number[1:]
        code = self.company.spec.country_code
        return number if len(number) < 7 else code + number

    def _text(self, kind: str, user: int) -> str:
        options = self.texts[kind]
        template = options[int(self.rng.integers(0, len(options)))]
        first_name = self.user_names[user].split(" ")[0]
        return template.format(user=first_name, hour=int(self.rng.integers(9, 19)))

    def _customers(self, count: int, mobile: bool = True) -> list[int]:
        """Party indexes of ``count`` external numbers by popularity (mobiles, or landlines)."""
        parties, rng = self.parties, self.rng
        picked: list[int] = []
        while len(picked) < count:
            need = count - len(picked)
            draw = np.searchsorted(parties.external_cdf, rng.random(need * 3 + 8), side="right")
            draw = np.minimum(draw, parties.n_external - 1) + parties.n_users
            fits = parties.mobile[draw] == mobile
            picked.extend(draw[fits][:need].tolist())
            if not fits.any() and not (parties.mobile[parties.n_users :] == mobile).any():
                break  # the pool has no number of that kind
        return picked

    # -- the whole history -----------------------------------------------------------------------

    def _build(self, calls: CallLegs | None) -> dict[str, Columns]:
        records: dict[str, Columns] = {}
        if calls is not None:
            records |= self.from_calls(calls, self.t_hi, history=True)
        threads = self._sms_threads(calls)
        chats, chat_conversations = self._chats()
        records["sms"], sms_conversations = self._sms_records(threads)
        records["chats"] = chats
        records["conversations"] = self._conversations(sms_conversations + chat_conversations)
        records["faxes"] = self._faxes()
        records["transactions"] = self._transactions(calls)
        records["contacts"] = self._contacts()
        records["queuegroups"] = self._queuegroups()
        for name, columns in records.items():
            assert list(columns) == list(COLLECTIONS[name].fields), name
        return records

    def from_calls(self, calls: CallLegs, now: int, history: bool = False) -> dict[str, Columns]:
        """The recordings and voicemail of a batch of calls (legs in CDR id order).

        Args:
            calls: the legs' facts.
            now: no record ends after this instant (epoch seconds): a voicemail still being
                left has no record yet.
            history: the calls are the company's history (older voicemail has been listened to);
                otherwise they just ended.
        """
        return {
            "voicemessages": self._voicemessages(calls, now, history),
            "monitors": self._monitors(calls),
        }

    def _monitors(self, calls: CallLegs) -> Columns:
        outside = calls.category != CATEGORY_INTERNAL
        forward_out = (calls.category == CATEGORY_FORWARD) & (calls.leg == 1)
        queue = np.maximum(calls.queue, 0)
        by_queue = (calls.queue >= 0) & self.records_queue[queue]
        recorded = calls.answered & outside & ~forward_out
        recorded &= self.records_user[calls.user] | by_queue
        p = np.flatnonzero(recorded)
        ids = self._ids("monitors", len(p))
        durations = calls.billsec[p]
        return {
            "id": ids,
            "timestamp": format_timestamps(calls.start[p]),
            "caller": self.parties.number[calls.src[p]].tolist(),
            "called": self.parties.number[calls.dst[p]].tolist(),
            "duration": durations.tolist(),
            "type": calls.type[p].tolist(),
            "size": audio_sizes("monitors", np.array(ids, dtype=np.int64), durations),
        }

    def _voicemessages(self, calls: CallLegs, now: int, history: bool) -> Columns:
        rng = self.rng
        first = calls.leg == 0
        to_user = (calls.category == CATEGORY_DIRECT) | (calls.category == CATEGORY_FORWARD)
        to_queue = calls.category == CATEGORY_QUEUE
        missed = first & ~calls.call_answered
        waited = calls.call_end - calls.start
        draw = rng.random(len(calls))
        long_wait = to_queue & (waited >= _QUEUE_VOICEMAIL_AFTER)
        left = missed & (
            (to_user & (draw < _VOICEMAIL_P)) | (long_wait & (draw < _QUEUE_VOICEMAIL_P))
        )
        p = np.flatnonzero(left)
        origtime = calls.call_end[p]
        seconds = np.clip(_lognormal(rng, _VOICEMAIL_MEDIAN, _VOICEMAIL_SIGMA, len(p)), 3, 120)
        # A message still being left has no record yet; one that just started is kept short.
        seconds = np.minimum(seconds, now - origtime)
        keep = seconds >= 3
        p, origtime, seconds = p[keep], origtime[keep], seconds[keep]
        order = np.argsort(origtime + seconds, kind="stable")
        p, origtime, seconds = p[order], origtime[order], seconds[order]
        recent = origtime >= self.t_hi - 2 * 86400
        new_p = np.where(recent, _VOICEMAIL_NEW_RECENT_P, _VOICEMAIL_NEW_OLD_P)
        is_new = rng.random(len(p)) < new_p if history else np.ones(len(p), dtype=bool)
        queue = calls.queue[p].tolist()
        users = calls.user[p].tolist()
        dialled = [
            self.queue_numbers[q] if q >= 0 else self.user_exts[u]
            for q, u in zip(queue, users, strict=True)
        ]
        return {
            "id": self._ids("voicemessages", len(p)),
            "origtime": format_timestamps(origtime),
            "caller": self.parties.number[calls.src[p]].tolist(),
            "dialled": dialled,
            "duration": seconds.tolist(),
            "folder": ["INBOX" if new else "Old" for new in is_new.tolist()],
            "is_new": is_new.tolist(),
        }

    # -- SMS and conversations -------------------------------------------------------------------

    def _thread(self, user: int, customer: int, start: int, by_user: bool, kind: str) -> _Thread:
        """A thread opened at ``start`` by the user (``kind`` of text) or the customer, with
        maybe a reply and an answer to it."""
        rng = self.rng
        messages = [(start, by_user, self._text(kind, user))]
        reply_p = _REPLY_P if by_user else _USER_REPLY_P
        if rng.random() < reply_p:
            at = start + int(rng.integers(60, 1200))
            messages.append(
                (at, not by_user, self._text("reply" if by_user else "user_reply", user))
            )
            if rng.random() < 0.3:
                again = at + int(rng.integers(60, 900))
                text = self._text("user_reply" if by_user else "reply", user)
                messages.append((again, by_user, text))
        number = self._digits(str(self.parties.number[customer]))
        return _Thread(user, number, [m for m in messages if m[0] < self.t_hi])

    def _sms_threads(self, calls: CallLegs | None) -> list[_Thread]:
        rng, parties = self.rng, self.parties
        threads: list[_Thread] = []
        if calls is not None:
            to_user = (calls.category == CATEGORY_DIRECT) | (calls.category == CATEGORY_FORWARD)
            missed = (calls.leg == 0) & to_user & ~calls.call_answered
            missed &= parties.mobile[calls.src] & (calls.src >= parties.n_users)
            missed &= rng.random(len(calls)) < _MISSED_SMS_P
            p = np.flatnonzero(missed)
            at = calls.call_end[p] + rng.integers(120, 1800, len(p))
            for user, customer, start in zip(
                calls.user[p].tolist(), calls.src[p].tolist(), at.tolist(), strict=True
            ):
                if start < self.t_hi:
                    threads.append(self._thread(user, customer, start, True, "missed"))
        n_users = len(self.user_ids)
        days = self.sampler.weekday_days
        for by_user, per_day in ((True, _OUTBOUND_THREADS), (False, _INBOUND_THREADS)):
            count = round(per_day * n_users * days)
            starts = self.sampler.sample(rng, count).tolist()
            users = rng.integers(0, n_users, count).tolist()
            customers = self._customers(count)
            for user, customer, start in zip(users, customers, starts, strict=False):
                kind = "outbound" if by_user else "customer"
                threads.append(self._thread(user, customer, start, by_user, kind))
        return threads

    def _sms_records(self, threads: list[_Thread]) -> tuple[Columns, list[_Conversation]]:
        """SMS rows of the threads (ids in ``created_at`` order) and one conversation each."""
        rows: list[tuple[int, str, str, str, bool, int]] = []
        conversations: list[_Conversation] = []
        for thread in threads:
            if not thread.messages:
                continue
            did = self.user_did_digits[thread.user]
            for at, by_user, text in thread.messages:
                sender, receiver = (did, thread.customer) if by_user else (thread.customer, did)
                rows.append((at, sender, receiver, text, by_user, thread.user))
            first, by_user, _ = thread.messages[0]
            src, dst = (did, thread.customer) if by_user else (thread.customer, did)
            duration = thread.messages[-1][0] - first
            conversations.append((first, "sms", src, dst, duration, "O" if by_user else "I"))
        rows.sort(key=lambda row: row[0])
        return self._sms_columns(rows), conversations

    def _sms_columns(self, rows: list[tuple[int, str, str, str, bool, int]]) -> Columns:
        results = _choice(self.rng, _SMS_RESULTS, len(rows))
        return {
            "id": self._ids("sms", len(rows)),
            "created_at": format_timestamps(np.array([row[0] for row in rows], dtype=np.int64)),
            "from": [row[1] for row in rows],
            "to": [row[2] for row in rows],
            "message": [row[3] for row in rows],
            "result": [
                result if row[4] else "RECEIVED" for row, result in zip(rows, results, strict=True)
            ],
            "type": ["O" if row[4] else "I" for row in rows],
            "user_id": [int(self.user_ids[row[5]]) for row in rows],
        }

    def _conversations(self, rows: list[_Conversation]) -> Columns:
        rows = sorted(rows, key=lambda row: row[0])
        return {
            "id": self._ids("conversations", len(rows)),
            "created_at": format_timestamps(np.array([row[0] for row in rows], dtype=np.int64)),
            "channel": [row[1] for row in rows],
            "src": [row[2] for row in rows],
            "dst": [row[3] for row in rows],
            "duration": [row[4] for row in rows],
            "type": [row[5] for row in rows],
        }

    # -- chats -----------------------------------------------------------------------------------

    def _chat_rows(self, starts: I64) -> tuple[Columns, list[_Conversation]]:
        """Chats that started at ``starts`` (sorted), and their conversations."""
        rng, n = self.rng, len(starts)
        spec = self.company.spec
        states = _choice(rng, _CHAT_STATES, n)
        operators = self.chat_operators[rng.integers(0, len(self.chat_operators), n)].tolist()
        talked = np.clip(_lognormal(rng, 240.0, 0.8, n), 20, 3600).tolist()
        waited = rng.integers(30, 181, n).tolist()
        places = rng.choice(len(_VISITOR_PLACES), n, p=_VISITOR_PLACE_P).tolist()
        customers = self._customers(n) + self._customers(n, mobile=False)
        named = rng.random(n) < 0.7
        emailed = rng.random(n) < 0.6
        visitor_ids = rng.integers(0, 1 << 48, n).tolist()
        ips = rng.integers(0, 1 << 24, n).tolist()
        browsers = rng.integers(0, len(_BROWSERS), n).tolist()
        referers = rng.integers(0, len(_REFERERS), n).tolist()
        websites = rng.integers(0, len(_WEBSITE_IDS), n).tolist()
        columns: Columns = {name: [] for name in COLLECTIONS["chats"].fields}
        conversations: list[_Conversation] = []
        ids = self._ids("chats", n)
        for i, start in enumerate(starts.tolist()):
            state = states[i]
            answered = state == 2
            duration = talked[i] if answered else (waited[i] if state == 3 else 0)
            operator = operators[i] if answered else None
            name = str(self.parties.name[customers[i % len(customers)]]) if customers else None
            if name is not None and (name[:1] in "+0123456789" or not named[i]):
                name = None
            visitor = f"{visitor_ids[i]:012x}"
            city, country, geo = _VISITOR_PLACES[places[i]]
            email = None
            if name is not None and emailed[i]:
                email = ".".join(name.lower().split()[:2]) + "@example.net"
            ip = ips[i]
            record = {
                "id": ids[i],
                "created_at": None,
                "customer_id": spec.customer_id,
                "duration": duration,
                "operator_id": None if operator is None else int(self.user_ids[operator]),
                "operator_ua": None if operator is None else self.operator_ua[operator],
                "state": state,
                "visitor_city": city,
                "visitor_country": country,
                "visitor_email": email,
                "visitor_geo": geo,
                "visitor_id": visitor,
                "visitor_ip": f"83.{ip >> 16}.{(ip >> 8) & 255}.{ip & 255}",
                "visitor_name": name,
                "visitor_referer": _REFERERS[referers[i]],
                "visitor_ua": _BROWSERS[browsers[i]],
                "website_id": _WEBSITE_IDS[websites[i]],
            }
            for key, value in record.items():
                columns[key].append(value)
            dst = None if operator is None else self.user_exts[operator]
            conversations.append((start, "chat", visitor, dst, duration, "I"))
        columns["created_at"] = format_timestamps(starts)
        return columns, conversations

    def _chats(self) -> tuple[Columns, list[_Conversation]]:
        count = round(
            _CHATS_PER_OPERATOR_DAY * len(self.chat_operators) * self.sampler.weekday_days
        )
        starts = np.sort(self.sampler.sample(self.rng, count))
        return self._chat_rows(starts)

    # -- faxes, transactions, contacts, queue groups ---------------------------------------------

    def _fax_rows(self, starts: I64) -> Columns:
        rng, n = self.rng, len(starts)
        inbound = rng.random(n) < 0.6
        others = [self._digits(str(self.parties.number[p])) for p in self._customers(n, False)]
        pages = np.minimum(1 + rng.geometric(0.45, n) - 1, 12).tolist()
        failed = rng.random(n)
        ids = self._ids("faxes", n)
        stamps = format_timestamps(starts)
        columns: Columns = {name: [] for name in COLLECTIONS["faxes"].fields}
        for i in range(n):
            other = others[i % len(others)] if others else "34910000000"
            incoming = bool(inbound[i])
            status = ("received" if failed[i] >= 0.04 else "failed") if incoming else (
                "sent" if failed[i] >= 0.1 else "failed"
            )  # fmt: skip
            stamp = stamps[i].replace("-", "").replace(":", "").replace(" ", "-")
            for key, value in (
                ("id", ids[i]),
                ("created_at", stamps[i]),
                ("from", other if incoming else self.fax_number),
                ("to", self.fax_number if incoming else other),
                ("pages", max(1, int(pages[i]))),
                ("status", status),
                ("type", "I" if incoming else "O"),
                ("filename", f"fax-{stamp}-{ids[i]}.pdf"),
            ):
                columns[key].append(value)
        return columns

    def _faxes(self) -> Columns:
        count = round(_FAXES_PER_DAY * self.sampler.weekday_days)
        return self._fax_rows(np.sort(self.sampler.sample(self.rng, count)))

    def _transactions(self, calls: CallLegs | None) -> Columns:
        """Per UTC month of the data: the plan's fee (at the month's start), the month's call
        charges (issued two hours into the next month; the open month's is ``pending``), and
        top-ups now and then."""
        rng = self.rng
        start_month = np.datetime64(self.t_lo, "s").astype("datetime64[M]")
        end_month = np.datetime64(self.t_hi - 1, "s").astype("datetime64[M]")
        months = np.arange(start_month, end_month + 1)
        month_starts = months.astype("datetime64[s]").astype(np.int64)
        charges: npt.NDArray[np.float64] = np.zeros(len(months))
        if calls is not None and len(calls):
            month_of = calls.start.astype("datetime64[s]").astype("datetime64[M]")
            index = (month_of - start_month).astype(np.int64)
            charges = np.bincount(index, weights=calls.charge, minlength=len(months)).astype(
                np.float64
            )
        active = sum(1 for user in self.company.users if user["active"])
        rows: list[tuple[int, float, str, str]] = []
        for month_start, next_start, total in zip(
            month_starts.tolist(),
            (months + 1).astype("datetime64[s]").astype(np.int64).tolist(),
            charges.tolist(),
            strict=True,
        ):
            rows.append(
                (month_start + 3600, round(_PLAN_FEE * active, 2), "subscription", "completed")
            )
            issued = next_start + 7200
            if issued < self.t_hi:
                rows.append((issued, round(total, 2), "calls", "completed"))
            else:
                rows.append((month_start + 3601, round(total, 2), "calls", "pending"))
        topups = max(1, round((self.t_hi - self.t_lo) / 86400 / _TOPUP_EVERY_DAYS))
        for at in self.sampler.sample(rng, topups).tolist():
            amount = _TOPUP_AMOUNTS[int(rng.integers(0, len(_TOPUP_AMOUNTS)))]
            rows.append((at, amount, "payment", "completed" if rng.random() >= 0.05 else "failed"))
        rows = sorted((row for row in rows if row[0] < self.t_hi), key=lambda row: row[0])
        return self._transaction_columns(rows)

    def _transaction_columns(self, rows: list[tuple[int, float, str, str]]) -> Columns:
        return {
            "id": self._ids("transactions", len(rows)),
            "created_at": format_timestamps(np.array([row[0] for row in rows], dtype=np.int64)),
            "amount": [float(row[1]) for row in rows],
            "currency_iso": [self.currency] * len(rows),
            "type": [row[2] for row in rows],
            "result": [row[3] for row in rows],
        }

    def _contact_rows(self, rows: list[_Contact]) -> Columns:
        """Contacts ``(created_at, first, last, global, group, internal, rel_user_id, user_id)``,
        ids in ``created_at`` order."""
        rows = sorted(rows, key=lambda row: row[0])
        return {
            "id": self._ids("contacts", len(rows)),
            "created_at": format_timestamps(np.array([row[0] for row in rows], dtype=np.int64)),
            "first_name": [row[1] for row in rows],
            "last_name": [row[2] for row in rows],
            "global": [row[3] for row in rows],
            "group_name": [row[4] for row in rows],
            "internal": [row[5] for row in rows],
            "rel_user_id": [row[6] for row in rows],
            "user_id": [row[7] for row in rows],
        }

    def _external_contact(self, party: int) -> tuple[str, str | None]:
        name = str(self.parties.name[party])
        if name[:1] in "+0123456789":
            name = "Cliente " + name[-4:] if self.texts is _TEXTS_ES else "Customer " + name[-4:]
        first, _, last = name.partition(" ")
        return first, last or None

    def _contacts(self) -> Columns:
        rng = self.rng
        main = int(self.user_ids[0])
        rows: list[_Contact] = []
        for user in self.company.users:
            created = int(
                datetime.strptime(user["created_at"], "%Y-%m-%d %H:%M:%S")
                .replace(tzinfo=UTC)
                .timestamp()
            )
            rows.append((created, user["first_name"], user["last_name"], True, "Colleagues",
                         True, user["id"], None))  # fmt: skip
        n_users = len(self.user_ids)
        shared = _SHARED_CONTACTS_BASE + _SHARED_CONTACTS_PER_USER * n_users
        spans = self.t_hi - (self.t_lo - 730 * 86400)
        for party in self._customers(shared) + self._customers(shared // 2, mobile=False):
            first, last = self._external_contact(party)
            created = self.t_lo - 730 * 86400 + int(rng.random() * spans)
            group = _choice(rng, _CONTACT_GROUPS, 1)[0]
            rows.append((created, first, last, True, group, False, None, main))
        for index in range(n_users):
            for party in self._customers(int(rng.integers(0, _PERSONAL_CONTACTS_MAX + 1))):
                first, last = self._external_contact(party)
                created = self.t_lo - 730 * 86400 + int(rng.random() * spans)
                owner = int(self.user_ids[index])
                rows.append((created, first, last, False, None, False, None, owner))
        return self._contact_rows([row for row in rows if row[0] < self.t_hi])

    def _queuegroups(self) -> Columns:
        n_queues = len(self.company.queues)
        names = list(_QUEUE_GROUP_NAMES[: min(len(_QUEUE_GROUP_NAMES), max(1, n_queues // 2))])
        names = names if n_queues else []
        return {"id": self._ids("queuegroups", len(names)), "name": names}

    # -- records that arrive later ---------------------------------------------------------------

    def arrivals(
        self, name: str, count: int, now: int, late_fraction: float, max_late_seconds: int
    ) -> Columns:
        """``count`` new records of ``name`` (not a call-derived collection): most dated within
        the last two minutes, a share ``late_fraction`` 20 minutes to ``max_late_seconds`` before
        ``now`` (written late), ids after every id so far, in date order."""
        if name in CALL_DERIVED or COLLECTIONS[name].cursor is None:
            raise ValueError(f"{name} records do not arrive on their own")
        rng = self.rng
        n_late = round(count * late_fraction) if max_late_seconds > 0 else 0
        fresh = now - rng.integers(0, 121, count - n_late)
        late = now - rng.integers(min(1200, max_late_seconds), max_late_seconds + 1, n_late)
        at = np.sort(np.concatenate([fresh, late]).astype(np.int64))
        users = rng.integers(0, len(self.user_ids), count).tolist()
        if name == "sms":
            rows = []
            for when, user, customer in zip(
                at.tolist(), users, self._customers(count), strict=True
            ):
                by_user = bool(rng.random() < 0.6)
                did = self.user_did_digits[user]
                number = self._digits(str(self.parties.number[customer]))
                text = self._text("outbound" if by_user else "customer", user)
                sender, receiver = (did, number) if by_user else (number, did)
                rows.append((when, sender, receiver, text, by_user, user))
            return self._sms_columns(rows)
        if name == "chats":
            return self._chat_rows(at)[0]
        if name == "conversations":
            conversations: list[_Conversation] = []
            for when, user, customer in zip(
                at.tolist(), users, self._customers(count), strict=True
            ):
                did = self.user_did_digits[user]
                number = self._digits(str(self.parties.number[customer]))
                conversations.append((when, "sms", did, number, 0, "O"))
            return self._conversations(conversations)
        if name == "faxes":
            return self._fax_rows(at)
        if name == "transactions":
            rows_t = [(when, _TOPUP_AMOUNTS[int(rng.integers(0, 3))], "payment", "completed")
                      for when in at.tolist()]  # fmt: skip
            return self._transaction_columns(rows_t)
        contacts: list[_Contact] = []
        for when, user, customer in zip(at.tolist(), users, self._customers(count), strict=True):
            first, last = self._external_contact(customer)
            contacts.append((when, first, last, False, None, False, None, int(self.user_ids[user])))
        return self._contact_rows(contacts)
