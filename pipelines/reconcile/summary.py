"""What a reconcile found and did, per account and day: for people (``lines``) and for
monitoring (``as_dict``, printed by ``voipstudio reconcile --json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

# How a day was checked.
READ = "read"  # re-read in full and compared row by row
COUNTED = "counts"  # counted only (--counts-only), and the counts agreed

# What became of a day.
VERIFIED = "verified"  # read in full, every window added up: its changes apply
INCOMPLETE = "incomplete"  # a window never added up: nothing of the day applies
COUNTS_AGREE = "counts agree"  # counted, not re-read (counts cannot see corrections)
TOO_MANY_MISSING = "too many missing"  # the mass-marking guard refused it

# What became of an account.
OK = "ok"
PARTIAL = "incomplete"  # some days did not add up; the others were applied
REFUSED = "refused"  # the guard refused: nothing of the account was changed
FAILED = "failed"  # the API failed (credentials, network): nothing of the account was changed
SKIPPED = "skipped"  # never synced: nothing to reconcile

COUNTERS = ("added", "changed", "restored", "deleted", "unchanged", "rejected")


@dataclass
class DayResult:
    """One day of one account.

    Attributes:
        date: the wall-clock day (the account's zone).
        mode: ``read`` or ``counts``.
        status: see the constants above.
        api_rows: CDRs the API returned for the day (``counts``: the count it reported).
        stored_rows: CDRs the destination held for the day, not marked deleted, before.
        missing: stored CDRs the API did not return for the day (before looking them up by
            id: a CDR whose ``calldate`` moved to another day is found there).
        added: CDRs new to the destination (written late, beyond the sync's lag).
        changed: CDRs whose content changed (re-rated, corrected, moved to this day).
        restored: CDRs marked deleted that the API returns again (unmarked).
        deleted: CDRs marked deleted (the API no longer returns them).
        unchanged: CDRs that were loaded as the API returns them.
        rejected: CDRs the API returned that cannot be parsed (see ``cdrs_rejects``); their
            stored rows are left as they are.
        error: why the day is incomplete or refused.
    """

    date: date
    mode: str = READ
    status: str = VERIFIED
    api_rows: int = 0
    stored_rows: int = 0
    missing: int = 0
    added: int = 0
    changed: int = 0
    restored: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "date": self.date.isoformat(),
            "mode": self.mode,
            "status": self.status,
            "api_rows": self.api_rows,
            "stored_rows": self.stored_rows,
            "missing": self.missing,
            **{name: getattr(self, name) for name in COUNTERS},
            "error": self.error,
        }

    def line(self) -> str:
        """One line for people."""
        head = f"  {self.date}  {self.mode:<6} {self.status:<16}"
        if self.mode == COUNTED:
            return f"{head} {self.api_rows:,} in the API = {self.stored_rows:,} stored"
        figures = (
            f"{self.api_rows:,} in the API, {self.stored_rows:,} stored: +{self.added:,} late, "
            f"{self.changed:,} changed, {self.restored:,} restored, {self.deleted:,} deleted, "
            f"{self.unchanged:,} unchanged"
        )
        if self.rejected:
            figures += f", {self.rejected:,} rejected"
        if self.status == TOO_MANY_MISSING:
            figures += f"; {self.missing:,} not returned by the API"
        return f"{head} {figures}"


@dataclass
class AccountResult:
    """One account's reconcile.

    Attributes:
        timezone: the zone of its days.
        first: the first second checked (API wall time), None if nothing was.
        last: the last second checked: the sync's cursor.
        status: see the constants above.
        applied: its changes were loaded (False for a dry run, a refusal, a failure).
        exit_code: what a reconcile of this account alone would exit with.
        error: what went wrong, for people.
        days: every day checked, in order.
    """

    timezone: str
    first: str | None = None
    last: str | None = None
    status: str = OK
    applied: bool = False
    exit_code: int = 0
    error: str | None = None
    days: list[DayResult] = field(default_factory=list)

    def total(self, name: str) -> int:
        """A counter summed over the days."""
        return sum(int(getattr(day, name)) for day in self.days)

    def totals(self) -> dict[str, int]:
        """Every counter summed over the days."""
        return {name: self.total(name) for name in COUNTERS}

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "status": self.status,
            "applied": self.applied,
            "exit_code": self.exit_code,
            "error": self.error,
            "timezone": self.timezone,
            "first": self.first,
            "last": self.last,
            "totals": self.totals(),
            "days": [day.as_dict() for day in self.days],
        }


@dataclass
class ReconcileSummary:
    """What one ``voipstudio reconcile`` found and did.

    Attributes:
        accounts: per account, by name.
        dry_run: nothing was applied on purpose.
        load_id: the dlt load that applied the changes (None when nothing was loaded).
        seconds: how long it took.
    """

    accounts: dict[str, AccountResult] = field(default_factory=dict)
    dry_run: bool = False
    load_id: str | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """The first failed account's code (by name), 0 when none failed: what a scheduler
        sees, as for ``voipstudio sync``."""
        return next((a.exit_code for _, a in sorted(self.accounts.items()) if a.exit_code), 0)

    def failures(self) -> list[str]:
        """One message per failed account."""
        return [
            f"account '{name}': {result.error}"
            for name, result in sorted(self.accounts.items())
            if result.exit_code and result.error
        ]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "exit_code": self.exit_code,
            "dry_run": self.dry_run,
            "load_id": self.load_id,
            "seconds": round(self.seconds, 3),
            "accounts": {name: result.as_dict() for name, result in self.accounts.items()},
        }

    def lines(self) -> list[str]:
        """The summary for people: a line per account, then one per day."""
        lines: list[str] = []
        for name, result in self.accounts.items():
            totals = result.totals()
            span = f"{result.first} to {result.last}" if result.first else "nothing to check"
            if result.status == SKIPPED:
                outcome = "skipped"
            elif result.applied:
                outcome = "applied"
            else:
                outcome = "dry run, nothing applied" if self.dry_run else "NOTHING APPLIED"
            lines.append(
                f"account {name} ({result.timezone}, {span}): {result.status}, {outcome}: "
                f"{totals['added']:,} late CDRs added, {totals['changed']:,} changed, "
                f"{totals['restored']:,} restored, {totals['deleted']:,} marked deleted, "
                f"{totals['unchanged']:,} unchanged"
            )
            if result.error:
                lines.append(f"  {result.error}")
            lines.extend(day.line() for day in result.days)
        loaded = f"load {self.load_id}" if self.load_id else "nothing loaded"
        lines.append(f"reconcile done in {self.seconds:.1f}s: {loaded}; exit {self.exit_code}")
        return lines
