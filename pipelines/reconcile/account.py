"""Reconciling one account: re-read its days, compare them with what is stored, apply the
mass-marking guard, and collect the changes to load (nothing is written here).

1. **Read.** Each day is read on its own with the sync's reader (``WindowScanner``): a day is
   *verified* when every window of it added up. A day that did not add up after every re-read
   is *incomplete*: nothing of it applies, neither its new rows nor its deletions.
2. **Compare.** Every row the API returned is compared with the stored row of the same id by a
   digest of its content (``content.digests``): new ids are *late* rows (written after the sync's
   lag had passed), different digests are *changed* rows (re-rated, corrected, moved to another
   day), rows marked deleted that the API returns are *restored*.
3. **Missing rows.** A stored row of a verified day whose id the API returned nowhere in the
   range is *missing*. Before anything is marked, the mass-marking guard counts them: a day may
   lose at most ``max_deleted_share`` of its stored rows or ``max_deleted_rows``, whichever is
   more, and so may all the account's days together. Past that, the account is *refused*:
   nothing of it is changed (a key that lost its admin scope still returns rows, and they may
   be shown differently to a plain user).
4. **Confirm.** The missing rows are then looked up by id (``id in [...]``): one that the API
   still returns had its ``calldate`` moved out of the range, and is a changed row. The others
   are marked: their stored row, unchanged but for ``deleted_at``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.reconcile import content
from pipelines.reconcile.days import Day, date_of, days_between, describe
from pipelines.reconcile.settings import LOOKUP_IDS, SECTIONS, ReconcileSettings
from pipelines.reconcile.stored import StoredCdr, StoredCdrs
from pipelines.reconcile.summary import (
    COUNTED,
    COUNTS_AGREE,
    FAILED,
    INCOMPLETE,
    OK,
    PARTIAL,
    REFUSED,
    SKIPPED,
    TOO_MANY_MISSING,
    VERIFIED,
    AccountResult,
    DayResult,
)
from pipelines.voipstudio import add_account_column, settings
from pipelines.voipstudio.accounts import Account, parse_start
from pipelines.voipstudio.catalog import CDRS
from pipelines.voipstudio.client import VoipstudioClient, page_params
from pipelines.voipstudio.configuration import env_var
from pipelines.voipstudio.errors import (
    ApiRequestError,
    DataCheckError,
    ReconcileRefusedError,
    VoipstudioError,
)
from pipelines.voipstudio.progress import report_finished, report_page, report_planning
from pipelines.voipstudio.records import ParsedPage, parse_page, wall_seconds
from pipelines.voipstudio.windows import Page, WindowScanner

log = logging.getLogger(__name__)

# What a row the API returned is, once compared (rows found unchanged are only counted).
_ADDED, _CHANGED, _RESTORED = "added", "changed", "restored"


@dataclass(frozen=True)
class Scope:
    """Which days of an account a run checks, and how.

    Attributes:
        days: without ``since``: the days from midnight this many days before the day of the
            sync's cursor, up to the cursor.
        since: the first day instead.
        counts_only: count each day first, and re-read only the days whose counts differ.
    """

    days: int
    since: date | None = None
    counts_only: bool = False


@dataclass
class Changes:
    """What one account's reconcile loads.

    Attributes:
        account: the account's name.
        tables: rows as the API returns them (late, changed, restored), with ``account``.
        marked: stored rows the API no longer returns, with ``deleted_at`` set.
        rejects: rows for ``cdrs_rejects`` (records the API returned that cannot be parsed).
    """

    account: str
    tables: list[pa.Table] = field(default_factory=list)
    marked: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows of ``cdrs`` this loads."""
        return sum(int(table.num_rows) for table in self.tables) + len(self.marked)


@dataclass
class _Seen:
    """A row the API returned that is to be applied."""

    day: date
    kind: str
    digest: bytes | None  # None: holds a field the stored table has no column for


class AccountReconciler:
    """One account's reconcile (see the module docstring).

    Args:
        account: the account and how to read it.
        stored: the destination's ``cdrs`` table.
        guard: the mass-marking guard's settings.
        marked_at: the ``deleted_at`` the rows marked in this run get.
    """

    def __init__(
        self,
        account: Account,
        stored: StoredCdrs,
        guard: ReconcileSettings,
        marked_at: datetime,
    ) -> None:
        self.account = account
        self.name = account.name
        # How the progress display names this account's reading.
        self.resource = f"reconcile_{account.name}"
        self.zone = ZoneInfo(account.timezone)
        self.stored_table = stored
        self.guard = guard
        self.marked_at = marked_at
        self.stored: dict[int, StoredCdr] = {}
        self.seen: set[int] = set()  # every id the API returned (rejects included)
        self.found: dict[int, _Seen] = {}  # rows to apply, by id
        self.tables: list[pa.Table] = []  # holding the rows of `found` (and maybe more)
        self.rejects: list[tuple[date, dict[str, Any]]] = []
        self.results: dict[date, DayResult] = {}

    # -- the whole account ---------------------------------------------------------------------

    def run(self, cursor: str | None, scope: Scope) -> tuple[AccountResult, Changes]:
        """Reconcile the account up to the sync's ``cursor`` (None: never synced).

        Errors of the API (credentials, network) end in a ``failed`` result, never an
        exception: the other accounts go on.
        """
        result = AccountResult(timezone=self.account.timezone)
        changes = Changes(self.name)
        if cursor is None:
            result.status = SKIPPED
            result.error = "never synced: nothing to reconcile (run `voipstudio sync` first)"
            return result, changes
        days = self._days(cursor, scope)
        if not days:
            return result, changes
        result.first, result.last = describe(days[0].start, days[-1].end)
        report_planning(self.resource)
        try:
            with self._client() as client:
                scanner = self.account.scanner(
                    client, CDRS, on_page=lambda _, rows: report_page(self.resource, rows)
                )
                to_read = self._count(scanner, days) if scope.counts_only else days
                self._read(scanner, to_read)
                self._resolve_elsewhere()
                refusal = self._guard()
                lookup_error = None if refusal else self._confirm_missing(client, changes)
        except VoipstudioError as error:
            report_finished(self.resource)
            log.error("account '%s': reconcile failed: %s", self.name, error)
            result.status, result.exit_code, result.error = FAILED, error.exit_code, str(error)
            result.days = self._ordered()
            return result, Changes(self.name)
        report_finished(self.resource)
        result.days = self._ordered()
        if refusal is not None:
            result.status, result.error = REFUSED, refusal
            result.exit_code = ReconcileRefusedError.exit_code
            log.error("account '%s': %s", self.name, refusal)
            return result, Changes(self.name)
        self._collect(changes)
        incomplete = [day for day in result.days if day.status == INCOMPLETE]
        if incomplete or lookup_error:
            result.status, result.exit_code = PARTIAL, DataCheckError.exit_code
            result.error = self._incomplete_message(incomplete, lookup_error)
            log.error("account '%s': %s", self.name, result.error)
        else:
            result.status = OK
        return result, changes

    def _days(self, cursor: str, scope: Scope) -> list[Day]:
        """The days to check, from the first one up to the cursor (never beyond now)."""
        now = wall_seconds(datetime.now(self.zone))
        end = min(wall_seconds(parse_start(cursor, "the stored cursor")), now)
        first = scope.since or date_of(end) - timedelta(days=scope.days)
        start = None
        if scope.since is None and self.account.start_date is not None:
            # Never before where the account's syncs start (its start_date, included).
            start = wall_seconds(self.account.start_date) - 1
        return days_between(first, end, start)

    def _client(self) -> VoipstudioClient:
        return self.account.client()

    def _ordered(self) -> list[DayResult]:
        return [self.results[day] for day in sorted(self.results)]

    # -- counting and reading ------------------------------------------------------------------

    def _count(self, scanner: WindowScanner, days: list[Day]) -> list[Day]:
        """Count every day in the API and in the destination; the days that differ are read."""
        if not days:
            return []
        with ThreadPoolExecutor(self.account.max_concurrency) as pool:
            api = list(pool.map(lambda day: scanner.count(day.start, day.end), days))
        stored = self.stored_table.counts(self.name, self.zone, days[0].start, days[-1].end)
        to_read = []
        for day, in_api in zip(days, api, strict=True):
            in_store = stored.get(day.date, 0)
            if in_api == in_store:
                self.results[day.date] = DayResult(
                    day.date, COUNTED, COUNTS_AGREE, api_rows=in_api, stored_rows=in_store
                )
            else:
                log.info(
                    "account '%s': %s: %d CDRs in the API, %d stored; reading the day",
                    self.name,
                    day.date,
                    in_api,
                    in_store,
                )
                to_read.append(day)
        return to_read

    def _read(self, scanner: WindowScanner, days: list[Day]) -> None:
        """Read each day in full, comparing every row with its stored version."""
        for span in _spans(days):
            self.stored.update(
                self.stored_table.in_range(self.name, self.zone, span[0].start, span[-1].end)
            )
        alive = Counter(stored.day for stored in self.stored.values() if not stored.deleted)
        for day in days:
            result = DayResult(day.date, stored_rows=alive[day.date])
            self.results[day.date] = result
            try:
                for event in scanner.scan(day.start, day.end):
                    if isinstance(event, Page):
                        self._page(day.date, result, event.parsed)
            except DataCheckError as error:
                # Nothing of this day applies; its ids still count as returned (they exist).
                result.status, result.error = INCOMPLETE, str(error)
                for name in ("added", "changed", "restored", "unchanged", "rejected"):
                    setattr(result, name, 0)
                log.warning("account '%s': %s did not add up: %s", self.name, day.date, error)

    def _digests(self, table: pa.Table) -> list[bytes | None]:
        """Each row's content digest; None for a row holding a field the stored table has no
        column for (a field the API added: its content differs from anything stored)."""
        digests: list[bytes | None] = list(self.stored_table.digests(table))
        unknown = content.unknown_values(table, self.stored_table.content_columns)
        if unknown is not None:
            for index, flagged in enumerate(unknown.to_pylist()):
                if flagged:
                    digests[index] = None
        return digests

    def _page(self, day: date, result: DayResult, parsed: ParsedPage) -> None:
        table = parsed.table
        ids = table.column("id").to_pylist()
        keep: list[int] = []
        for index, (record_id, digest) in enumerate(zip(ids, self._digests(table), strict=True)):
            if record_id in self.seen:  # a window read again hands rows on twice
                continue
            self.seen.add(record_id)
            result.api_rows += 1
            stored = self.stored.get(record_id)
            if stored is None:
                kind = _ADDED  # or stored with a calldate elsewhere: see _resolve_elsewhere
            elif stored.deleted:
                kind = _RESTORED
            elif stored.digest != digest:
                kind = _CHANGED
            else:
                result.unchanged += 1
                continue
            self.found[record_id] = _Seen(day, kind, digest)
            keep.append(index)
        if keep:
            self.tables.append(table.take(keep))
        good = set(ids)
        for key in parsed.keys:
            if isinstance(key, int) and key not in good and key not in self.seen:
                self.seen.add(key)  # returned, but cannot be parsed: its stored row stays
                result.api_rows += 1
                result.rejected += 1
        now = datetime.now(UTC)
        self.rejects.extend(
            (day, {settings.ACCOUNT_COLUMN: self.name, **reject.as_row(now)})
            for reject in parsed.rejects
        )

    def _resolve_elsewhere(self) -> None:
        """Rows the range's stored rows do not hold may be stored with another ``calldate``
        (moved into the range): compare them with that row instead."""
        unknown = [i for i, seen in self.found.items() if seen.kind == _ADDED]
        if not unknown:
            return
        elsewhere = self.stored_table.by_ids(self.name, self.zone, unknown)
        if not elsewhere:
            return
        for record_id, stored in elsewhere.items():
            seen = self.found[record_id]
            if stored.deleted:
                seen.kind = _RESTORED
            elif stored.digest != seen.digest:
                seen.kind = _CHANGED
            else:  # cannot be: its calldate is elsewhere; counted as it is found
                del self.found[record_id]
                self.results[seen.day].unchanged += 1

    # -- missing rows ----------------------------------------------------------------------------

    def _missing(self) -> dict[date, list[int]]:
        """Stored rows of verified days the API returned nowhere, by day."""
        verified = {d for d, r in self.results.items() if r.status == VERIFIED}
        missing: dict[date, list[int]] = {}
        for stored in self.stored.values():
            if stored.day in verified and not stored.deleted and stored.id not in self.seen:
                missing.setdefault(stored.day, []).append(stored.id)
        for day, ids in missing.items():
            self.results[day].missing = len(ids)
        return missing

    def _guard(self) -> str | None:
        """The mass-marking guard: why the account is refused, or None."""
        missing = self._missing()
        verified = [r for r in self.results.values() if r.status == VERIFIED]
        limit = self.guard.describe_limit()
        refused = []
        for result in verified:
            if result.missing > self.guard.allowed(result.stored_rows):
                result.status = TOO_MANY_MISSING
                refused.append(result)
        total = sum(len(ids) for ids in missing.values())
        stored = sum(result.stored_rows for result in verified)
        if not refused and total <= self.guard.allowed(stored):
            return None
        if refused:
            worst = max(refused, key=lambda r: (r.missing / max(1, r.stored_rows), r.missing))
            what = (
                f"on {worst.date}, {worst.missing:,} of its {worst.stored_rows:,} stored CDRs "
                f"({worst.missing / max(1, worst.stored_rows):.0%}) are no longer returned by "
                f"the API (and on {len(refused)} day(s) in all), more than a day may lose: "
                f"{limit}"
            )
        else:
            what = (
                f"{total:,} of the {stored:,} CDRs stored for the {len(verified)} days read "
                f"({total / max(1, stored):.0%}) are no longer returned by the API, more than "
                f"the days together may lose: {limit}"
            )
        return (
            f"refused to mark CDRs deleted: {what}; nothing of this account was changed. A key "
            "that lost its admin scope (a key sees only its own user's calls: use an admin "
            "user's key) or an API that no longer serves old days (a retention limit) looks "
            "like this. If those CDRs really were deleted, allow it for one run: "
            f"{_override_hint()}"
        )

    def _confirm_missing(self, client: VoipstudioClient, changes: Changes) -> str | None:
        """Look the missing rows up by id; mark those the API does not return at all.

        Returns:
            Why the lookup could not be trusted (nothing is then marked), or None.
        """
        missing = self._missing()
        ids = sorted(i for day_ids in missing.values() for i in day_ids)
        if not ids:
            return None
        try:
            pages = list(self._lookup(client, ids))
        except DataCheckError as error:
            return str(error)
        except ApiRequestError as error:
            return (
                f"the API refused to look CDRs up by id (filter id in [...]: {error}); the "
                f"{len(ids):,} CDRs it no longer returns in their days were not marked deleted"
            )
        moved: set[int] = set()
        for parsed in pages:
            keep = []
            table = parsed.table
            ids_digests = zip(table.column("id").to_pylist(), self._digests(table), strict=True)
            for index, (record_id, digest) in enumerate(ids_digests):
                if record_id in moved:
                    continue
                moved.add(record_id)
                stored = self.stored[record_id]
                if stored.digest == digest:
                    log.warning(
                        "account '%s': CDR %d is returned by id but was not in its day %s; "
                        "left as stored",
                        self.name,
                        record_id,
                        stored.day,
                    )
                    self.results[stored.day].unchanged += 1
                    continue
                self.found[record_id] = _Seen(stored.day, _CHANGED, digest)
                keep.append(index)
            if keep:
                self.tables.append(parsed.table.take(keep))
            for key in parsed.keys:
                if isinstance(key, int) and key not in moved:
                    moved.add(key)  # returned but not parseable: kept as stored
                    self.results[self.stored[key].day].rejected += 1
        gone = [i for i in ids if i not in moved]
        for row in self.stored_table.rows(self.name, gone):
            row[settings.DELETED_AT_COLUMN] = self.marked_at
            changes.marked.append(row)
            self.results[self.stored[int(row["id"])].day].deleted += 1
        return None

    def _lookup(self, client: VoipstudioClient, ids: list[int]) -> Iterator[ParsedPage]:
        """The CDRs with these ids, wherever their ``calldate`` is, checked to be only and
        exactly what the API says it holds of them.

        Raises:
            DataCheckError: the API answered CDRs it was not asked for (it may not filter
                ``id`` with ``in``), or pages that do not add up to their ``total``.
        """
        for at in range(0, len(ids), LOOKUP_IDS):
            chunk = ids[at : at + LOOKUP_IDS]
            wanted = set(chunk)
            filters = [{"property": "id", "operator": "in", "value": chunk}]
            received: set[Any] = set()
            number, total = 1, 0
            while number <= len(chunk) + 1:
                parsed: ParsedPage = client.request(
                    "GET",
                    CDRS.path,
                    params=page_params(number, len(chunk), filters, "id"),
                    decode=lambda body: parse_page(body, CDRS, self.account.timezone),
                )
                strays = {k for k in parsed.keys if isinstance(k, int)} - wanted
                if strays:
                    raise DataCheckError(
                        f"looking CDRs up by id (filter id in [...]), the API answered CDRs it "
                        f"was not asked for (e.g. {min(strays)}); nothing was marked deleted"
                    )
                total = parsed.total
                received.update(parsed.keys)
                yield parsed
                if not parsed.keys or len(received) >= total:
                    break
                number += 1
            if len(received) != total:
                raise DataCheckError(
                    f"looking {len(chunk)} CDRs up by id, the pages held {len(received)} for a "
                    f"total of {total}; nothing was marked deleted: run reconcile again later"
                )

    # -- the changes -----------------------------------------------------------------------------

    def _collect(self, changes: Changes) -> None:
        """The rows to load, of the days whose read was verified, and the counters."""
        applied = {d for d, r in self.results.items() if r.status == VERIFIED}
        keep_ids = pa.array(
            sorted(i for i, seen in self.found.items() if seen.day in applied), pa.int64()
        )
        for table in self.tables:
            kept = table.filter(pc.is_in(table.column("id"), value_set=keep_ids))
            if kept.num_rows:
                changes.tables.append(add_account_column(kept, self.name))
        for seen in self.found.values():
            if seen.day in applied:
                result = self.results[seen.day]
                setattr(result, seen.kind, getattr(result, seen.kind) + 1)
        changes.rejects = [row for day, row in self.rejects if day in applied]

    def _incomplete_message(self, days: list[DayResult], lookup_error: str | None) -> str:
        parts = []
        if days:
            dates = ", ".join(str(day.date) for day in days)
            parts.append(
                f"{len(days)} day(s) did not add up ({dates}): nothing of them was applied, "
                "nothing marked deleted; the other days were applied; run reconcile again later"
            )
        if lookup_error:
            parts.append(lookup_error)
        return "; ".join(parts)


def _spans(days: list[Day]) -> Iterator[list[Day]]:
    """Runs of consecutive days (one query of the destination each)."""
    run: list[Day] = []
    for day in days:
        if run and day.date != run[-1].date + timedelta(days=1):
            yield run
            run = []
        run.append(day)
    if run:
        yield run


def _override_hint() -> str:
    return f"{env_var(SECTIONS, 'max_deleted_share')}=1 voipstudio reconcile"
