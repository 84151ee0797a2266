"""``voipstudio check``: what the sync assumes about the API, tried with a few small requests.

Before a first sync, and from a monitor afterwards: are the credentials good, what does the key
see (a plain user's key sees one user's calls), and do the API's answers still hold what the
sync relies on: the page size it serves, ``sort``/``dir`` honoured, a ``total`` consistent with
its pages, ``calldate`` texts in the documented format and a time zone that puts the newest call
before now. About seven requests per account, the largest one page of ``page_size`` CDRs.

The sync makes the same checks as it reads (``windows``): this command tells you beforehand.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.voipstudio import settings
from pipelines.voipstudio.accounts import Account
from pipelines.voipstudio.catalog import CDRS, USERS
from pipelines.voipstudio.client import RetryPolicy, VoipstudioClient
from pipelines.voipstudio.errors import ConfigError, DataCheckError, VoipstudioError

CHECKS = ("credentials", "scope", "page size", "sort", "total", "calldate", "timezone")
OK, WARN, FAIL, SKIP = "ok", "WARN", "FAIL", "skip"
# Requests of a check are retried less than a sync's: the command must answer fast.
CHECK_ATTEMPTS = 3
# How many CDRs the probes of order and total page by.
PROBE_PAGE = 100
# A newest call this far after now means calldates are read in the wrong zone.
FUTURE_SLACK = timedelta(minutes=15)
_CALLDATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@dataclass(frozen=True)
class CheckResult:
    """One line of ``voipstudio check``."""

    name: str
    status: str  # OK, WARN, FAIL or SKIP
    message: str
    exit_code: int = 0

    def line(self, account: str | None = None) -> str:
        """The printed line (``account`` prefixes it when several accounts are configured)."""
        prefix = f"[{account}] " if account else ""
        return f"{prefix}{self.name:<12} {self.status:<4} {self.message}"


def _ids(records: Sequence[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in records if isinstance(r.get("id"), int)]


def _strictly(ids: list[int], ascending: bool) -> bool:
    pairs = itertools.pairwise(ids)
    return all(a < b for a, b in pairs) if ascending else all(a > b for a, b in pairs)


class _Probe:
    """The requests of one account's check, and what they found."""

    def __init__(self, client: VoipstudioClient, account: Account, now: datetime) -> None:
        self.client = client
        self.account = account
        self.now = now
        self.user: dict[str, Any] = {}
        self.newest: list[dict[str, Any]] = []  # page 1 of /cdrs, newest first, page_size long
        self.total = 0
        self.oldest: list[dict[str, Any]] = []  # page 1 of /cdrs, oldest first, PROBE_PAGE long

    def credentials(self) -> CheckResult:
        pong: dict[str, Any] = self.client.request("GET", "/ping")
        about: dict[str, Any] = self.client.request("GET", "/me")
        me = about.get("data")
        self.user = me if isinstance(me, dict) else {}
        who = f"user {self.user.get('id', '?')}"
        if self.user.get("email"):
            who += f" ({self.user['email']})"
        what = "API key" if self.account.credentials.api_key else "login"
        answered = pong.get("data", {}) if isinstance(pong.get("data"), dict) else {}
        note = "" if answered.get("response") == "Pong" else "; /ping did not answer Pong"
        return CheckResult("credentials", OK, f"the API accepts the {what}: {who}{note}")

    def load(self) -> None:
        """The two pages the other checks look at."""
        limit = self.account.page_size
        self.newest, self.total = self.client.get_page(
            CDRS.path, page=1, limit=limit, sort="id", descending=True
        )
        self.oldest, _ = self.client.get_page(
            CDRS.path, page=1, limit=min(PROBE_PAGE, limit), sort="id"
        )

    def scope(self) -> CheckResult:
        self.load()
        _, users = self.client.get_page(USERS.path, page=1, limit=1)
        me = self.user.get("id")
        mine = str(me)
        if not self.newest:
            if users <= 1:
                return CheckResult(
                    "scope",
                    WARN,
                    f"the key sees {users} user and no CDRs: if this is not the whole company, "
                    "use an admin user's API key",
                )
            return CheckResult("scope", SKIP, f"the key sees {users} users but no CDRs yet")
        involved = [
            r
            for r in self.newest
            if r.get("user_id") == me or mine in (str(r.get("src_id")), str(r.get("dst_id")))
        ]
        people = {r.get("user_id") for r in self.newest if r.get("user_id") is not None}
        if me is not None and len(involved) == len(self.newest):
            return CheckResult(
                "scope",
                WARN,
                f"ONLY ONE USER'S CALLS: each of the newest {len(self.newest):,} CDRs involves "
                f"user {me}, and /users shows {users} user{'s' if users != 1 else ''}: this key is "
                "a plain user's, so a sync "
                "loads that user's calls only; for the whole company use an admin user's API key",
            )
        return CheckResult(
            "scope",
            OK,
            f"the key sees {users:,} users; the newest {len(self.newest):,} CDRs belong to "
            f"{len(people):,} of them",
        )

    def page_size(self) -> CheckResult:
        asked, served = self.account.page_size, len(self.newest)
        if served > asked:
            return CheckResult(
                "page size",
                WARN,
                f"a page holds {served:,} records though {asked:,} were asked: the sync pages by "
                "what is served",
            )
        if self.total <= served:
            return CheckResult(
                "page size",
                SKIP,
                f"all {self.total:,} CDRs fit in one page of {asked:,}: not tested",
            )
        if served < asked:
            return CheckResult(
                "page size",
                WARN,
                f"the API serves {served:,} records a page though {asked:,} were asked: the sync "
                f"pages by what is served (page_size = {served} asks no more than it gets)",
            )
        return CheckResult("page size", OK, f"a page holds {asked:,} records, as asked")

    def sort(self) -> CheckResult:
        descending, ascending = _ids(self.newest), _ids(self.oldest)
        if len(descending) < 2:
            return CheckResult("sort", SKIP, "fewer than 2 CDRs: not tested")
        broken = []
        if not _strictly(ascending, ascending=True):
            broken.append("dir=ASC")
        if not _strictly(descending, ascending=False):
            broken.append("dir=DESC")
        if not broken and ascending[0] > descending[-1]:
            broken.append("dir=ASC (its first id is not the smallest)")
        if broken:
            return CheckResult(
                "sort",
                FAIL,
                f"sort=id&{' and '.join(broken)} is not honoured (the ids of a page came in "
                "another order): the sync then checks every window exactly and cuts one that "
                "changes while it is read into single pages (more requests; a busy second can "
                "fail with exit 5); report it",
                DataCheckError.exit_code,
            )
        return CheckResult("sort", OK, "sort=id with dir=ASC and dir=DESC is honoured")

    def total_check(self) -> CheckResult:
        limit = min(PROBE_PAGE, self.account.page_size)
        total = self.total
        if total == 0:
            return CheckResult("total", SKIP, "no CDRs: not tested")
        # The page size served for `limit`, as far as page 1 shows it.
        size = len(self.oldest) if len(self.oldest) < min(limit, total) else limit
        if size == 0:
            return CheckResult(
                "total",
                FAIL,
                f"the total says {total:,} CDRs but page 1 holds none",
                DataCheckError.exit_code,
            )
        last = math.ceil(total / size)
        expected = total - (last - 1) * size
        tail, tail_total = self.client.get_page(CDRS.path, page=last, limit=limit, sort="id")
        beyond, beyond_total = self.client.get_page(
            CDRS.path, page=last + 1, limit=limit, sort="id"
        )
        if tail_total != total or beyond_total != total:
            return CheckResult(
                "total",
                SKIP,
                f"the total changed while it was checked ({total:,}, {tail_total:,}, "
                f"{beyond_total:,}: calls are being written): not tested",
            )
        if beyond:
            return CheckResult(
                "total",
                FAIL,
                f"the total says {total:,} CDRs but page {last + 1} after them still holds "
                f"{len(beyond)}: the API's total looks capped; the sync cuts its windows below "
                "the cap it finds, at the cost of more requests; report it",
                DataCheckError.exit_code,
            )
        if len(tail) != expected:
            return CheckResult(
                "total",
                FAIL,
                f"the total says {total:,} CDRs, so page {last} of {size} should hold "
                f"{expected}, but it holds {len(tail)}: the API's pages and its total disagree, "
                "and the sync's windows will not add up (exit 5); report it",
                DataCheckError.exit_code,
            )
        return CheckResult(
            "total",
            OK,
            f"the total ({total:,}) agrees with the pages (page {last} holds {expected}, the "
            "next none)",
        )

    def calldate(self) -> CheckResult:
        records = self.newest + self.oldest
        for record in records:
            value = record.get("calldate")
            if not isinstance(value, str) or not _CALLDATE.match(value) or not _parses(value):
                return CheckResult(
                    "calldate",
                    FAIL,
                    f"CDR {record.get('id')} has calldate {value!r}, not 'YYYY-MM-DD HH:MM:SS': "
                    "the sync cannot place such records in time (they go to cdrs_rejects); "
                    "report it",
                    DataCheckError.exit_code,
                )
        if not records:
            return CheckResult("calldate", SKIP, "no CDRs: not tested")
        return CheckResult(
            "calldate", OK, f"'YYYY-MM-DD HH:MM:SS' in all {len(records):,} CDRs looked at"
        )

    def timezone(self) -> CheckResult:
        zone_name = self.account.timezone
        texts = [r["calldate"] for r in self.newest if isinstance(r.get("calldate"), str)]
        stamps = [stamp for stamp in map(_parses, texts) if stamp is not None]
        if not stamps:
            return CheckResult("timezone", SKIP, "no CDRs: not tested")
        zone = ZoneInfo(zone_name)
        wall = max(stamps)
        newest = wall.replace(tzinfo=zone).astimezone(UTC)
        ahead = newest - self.now
        text = wall.strftime(settings.API_DATETIME_FORMAT)
        if ahead > FUTURE_SLACK:
            # The offset that would put the newest call at most at now.
            offset = zone.utcoffset(wall) or timedelta(0)
            needed = offset + timedelta(minutes=15 * math.ceil(ahead.total_seconds() / 900))
            sign = "+" if needed >= timedelta(0) else "-"
            minutes = abs(int(needed.total_seconds())) // 60
            return CheckResult(
                "timezone",
                FAIL,
                f"the newest calldate {text}, read in {zone_name}, is {_hours(ahead)} in the "
                f"future: the API writes calldate in another zone (about UTC{sign}"
                f"{minutes // 60:02d}:{minutes % 60:02d} or east of it); set timezone to the "
                f"account's zone ({self.account.section}.timezone)",
                ConfigError.exit_code,
            )
        age = self.now - newest
        when = f"{_hours(age)} before now" if age >= timedelta(0) else "now"
        note = ": a quiet account, or a key that sees little" if age > timedelta(days=2) else ""
        return CheckResult(
            "timezone", OK, f"the newest calldate {text} ({zone_name}) is {when}{note}"
        )


def _parses(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, settings.API_DATETIME_FORMAT)
    except ValueError:
        return None


def _hours(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def check_account(account: Account, now: datetime | None = None) -> list[CheckResult]:
    """Run every check of :data:`CHECKS` against one account, in that order.

    A check the API fails to answer (refused credentials, an unreachable host) is a failure
    with that error's exit code, and the checks after it are skipped.
    """
    retry = RetryPolicy(
        max_attempts=min(CHECK_ATTEMPTS, account.retry.max_attempts),
        backoff_base=account.retry.backoff_base,
    )
    probe_now = now or datetime.now(UTC)
    results: list[CheckResult] = []
    with VoipstudioClient(
        account.base_url,
        account.credentials,
        max_concurrency=1,
        timeout=account.request_timeout,
        retry=retry,
        section=account.section,
    ) as client:
        probe = _Probe(client, account, probe_now)
        steps: list[Callable[[], CheckResult]] = [
            probe.credentials,
            probe.scope,
            probe.page_size,
            probe.sort,
            probe.total_check,
            probe.calldate,
            probe.timezone,
        ]
        for name, step in zip(CHECKS, steps, strict=True):
            try:
                results.append(step())
            except VoipstudioError as error:
                results.append(CheckResult(name, FAIL, str(error), error.exit_code))
                break
    failed = results[-1].name if results and results[-1].status == FAIL else None
    for name in CHECKS[len(results) :]:
        results.append(CheckResult(name, SKIP, f"not run: the {failed} check failed"))
    return results


def exit_code(results: Sequence[CheckResult]) -> int:
    """The exit code of the first failure, 0 when nothing failed."""
    return next((r.exit_code for r in results if r.status == FAIL), 0)
