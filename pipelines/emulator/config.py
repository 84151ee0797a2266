"""Start-up configuration of the emulator (command-line flags, a JSON file, or Python)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipelines.emulator.generator import CompanySpec

DEFAULT_EMAIL = "demo@example.com"
DEFAULT_PASSWORD = "demo-password"  # noqa: S105 - a public demo credential of a local emulator
DEFAULT_API_KEY = "demo-api-key"


def _parse_instant(text: str) -> datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    fmt = "%Y-%m-%d" if len(text.strip()) == 10 else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(text.strip(), fmt).replace(tzinfo=UTC)


@dataclass
class EmulatorConfig:
    """Everything the emulator is started with.

    Attributes:
        seed: seed of the synthetic company (same seed, same data).
        users: number of users (extensions) of the company.
        queues: number of call queues.
        rows: exact number of CDRs; None derives it from the date range.
        start: first day of data (UTC, ``YYYY-MM-DD``); None means ``days`` before today.
        end: end of data, exclusive; None means now.
        days: length of the default date range.
        timezone: the company's local time zone (business hours).
        calldate_timezone: the zone of the ``calldate`` texts served: ``UTC`` (as the API is
            believed to answer) or an IANA zone, e.g. the company's (an API answering in local
            time: an hour repeats each autumn, one is skipped each spring).
        email / password: the login of the main account.
        api_key: a ready-made API key of the main account (never expires); empty for none.
        two_factor_email / two_factor_code: a second account that needs a second factor.
        login_ttl: seconds of inactivity after which a login token expires.
        latency_per_request_ms / latency_per_row_ms: the latency model.
        faults: fault rules (see ``faults.FaultRule``).
        now: a fixed start for the emulator's clock (``YYYY-MM-DD HH:MM:SS``), else wall clock.
        admin: serve the ``/_emulator`` admin API.
    """

    seed: int = 42
    users: int = 25
    queues: int = 4
    rows: int | None = None
    start: str | None = None
    end: str | None = None
    days: int = 30
    timezone: str = "Europe/Madrid"
    calldate_timezone: str = "UTC"
    email: str = DEFAULT_EMAIL
    password: str = DEFAULT_PASSWORD
    api_key: str = DEFAULT_API_KEY
    two_factor_email: str | None = "2fa@example.com"
    two_factor_code: str = "123456"
    login_ttl: float = 1800.0
    latency_per_request_ms: float = 0.0
    latency_per_row_ms: float = 0.0
    faults: list[dict[str, Any]] = field(default_factory=list)
    now: str | None = None
    admin: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmulatorConfig:
        """Build from a JSON object, rejecting unknown keys with the list of known ones."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown emulator settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    def company_spec(self) -> CompanySpec:
        """The generator's spec for this configuration."""
        end = _parse_instant(self.end) if self.end else datetime.now(UTC).replace(microsecond=0)
        start = _parse_instant(self.start) if self.start else (end - timedelta(days=self.days))
        if self.start and not self.end:
            end = max(end, start + timedelta(days=1))
        if start >= end:
            raise ValueError(f"start ({start}) must be before end ({end})")
        try:
            ZoneInfo(self.calldate_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"calldate_timezone {self.calldate_timezone!r} is not a zone"
            ) from None
        return CompanySpec(
            seed=self.seed,
            users=self.users,
            queues=self.queues,
            start=start,
            end=end,
            rows=self.rows,
            timezone=self.timezone,
        )
