"""Start-up configuration of the emulator (command-line flags, a JSON file, or Python)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipelines.emulator.auth import DEFAULT_TOKEN_ALPHABET, DEFAULT_TOKEN_LENGTH, TokenFormat
from pipelines.emulator.generator import CompanySpec
from pipelines.emulator.query import PAGE_CAP

DEFAULT_EMAIL = "demo@example.com"
DEFAULT_PASSWORD = "demo-password"  # noqa: S105 - a public demo credential of a local emulator
DEFAULT_API_KEY = "demo-api-key"
DEFAULT_USER_API_KEY = "demo-user-key"
# How the entries of an error body's "errors" list look: {"message": ...} objects (what the
# official CLI reads) or plain strings (what the API introduction shows).
ERROR_ENTRIES = ("object", "string")


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
        email / password: the login of the main account (an admin user).
        api_key: a ready-made API key of the main account (never expires); empty for none.
        two_factor_email / two_factor_code: a second admin account that needs a second factor.
        user_api_key: a ready-made API key of a plain (not admin) user, who sees only their own
            calls; empty for none. That user also logs in with their email and ``password``.
        user_api_key_user_id: which user that is; None is the company's third user (the second
            when it has only two).
        login_ttl: seconds of inactivity after which a login token expires.
        latency_per_request_ms / latency_per_row_ms: the latency model.
        faults: fault rules (see ``faults.FaultRule``).
        now: a fixed start for the emulator's clock (``YYYY-MM-DD HH:MM:SS``), else wall clock.
        admin: serve the ``/_emulator`` admin API.
        page_cap: the most records a page holds; a larger ``limit`` gets this many.
        total_cap: the largest ``total`` a collection answer reports (a search-backed API's
            capped count); the pages still hold every record. None reports exact totals.
        ignore_sort: serve collections in their default order (``id DESC``) whatever
            ``sort``/``dir`` ask, as an API that ignores a sort it cannot serve.
        error_entries: ``"object"`` (``{"message": ...}``) or ``"string"`` entries in ``errors``.
        token_length / token_alphabet: how minted login tokens and API keys look.
        file_ranges: file routes honour ``Range`` (206 answers); off, they send the whole file
            whatever is asked, as the live ``/monitors/{id}.mp3`` does [code].
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
    user_api_key: str = DEFAULT_USER_API_KEY
    user_api_key_user_id: int | None = None
    login_ttl: float = 1800.0
    latency_per_request_ms: float = 0.0
    latency_per_row_ms: float = 0.0
    faults: list[dict[str, Any]] = field(default_factory=list)
    now: str | None = None
    admin: bool = True
    page_cap: int = PAGE_CAP
    total_cap: int | None = None
    ignore_sort: bool = False
    error_entries: str = "object"
    token_length: int = DEFAULT_TOKEN_LENGTH
    token_alphabet: str = DEFAULT_TOKEN_ALPHABET
    file_ranges: bool = False

    def __post_init__(self) -> None:
        check_page_cap(self.page_cap)
        check_total_cap(self.total_cap)
        check_flag(self.ignore_sort, "ignore_sort")
        check_error_entries(self.error_entries)
        self.token_format()
        if self.user_api_key and self.user_api_key == self.api_key:
            raise ValueError("user_api_key must differ from api_key")

    def token_format(self) -> TokenFormat:
        """How minted tokens look.

        Raises:
            ValueError: a bad ``token_length`` or ``token_alphabet``.
        """
        return TokenFormat(self.token_length, self.token_alphabet)

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


def check_page_cap(value: Any) -> int:
    """A valid ``page_cap`` (an integer >= 1).

    Raises:
        ValueError: it is not.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"page_cap must be an integer >= 1, got {value!r}")
    return value


def check_total_cap(value: Any) -> int | None:
    """A valid ``total_cap`` (None, or an integer >= 1).

    Raises:
        ValueError: it is not.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"total_cap must be null or an integer >= 1, got {value!r}")
    return value


def check_flag(value: Any, name: str) -> bool:
    """A valid boolean setting.

    Raises:
        ValueError: it is not a boolean.
    """
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def check_error_entries(value: Any) -> str:
    """A valid ``error_entries`` (one of :data:`ERROR_ENTRIES`).

    Raises:
        ValueError: it is not.
    """
    if value not in ERROR_ENTRIES:
        raise ValueError(f"error_entries must be one of {list(ERROR_ENTRIES)}, got {value!r}")
    return str(value)
