"""Settings of the reporting models: thresholds and the reporting time zone.

They live in the ``[models]`` section of ``.dlt/config.toml``; every key can be overridden by an
environment variable named after it, e.g. ``MODELS__REPORTING_TIMEZONE=Europe/Madrid`` (dlt
conventions). The SQL models read them as ``{{ name }}`` variables (see :meth:`sql_variables`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import dlt

from pipelines.voipstudio.accounts import parse_duration
from pipelines.voipstudio.errors import ConfigError

SECTION = "models"

DEFAULT_REPORTING_TIMEZONE = "UTC"
DEFAULT_SERVICE_LEVEL_SECONDS = 20
DEFAULT_SHORT_ABANDON_SECONDS = 5
DEFAULT_BUSINESS_HOURS_START = "09:00"
DEFAULT_BUSINESS_HOURS_END = "18:00"
DEFAULT_BUSINESS_DAYS = (1, 2, 3, 4, 5)
DEFAULT_REPEAT_CALL_DAYS = 7
DEFAULT_COUNTRY_CODE = ""
DEFAULT_TRUNK_PREFIX = "0"
# The sync reads again this far before its cursor ([sources.voipstudio] lag): CDRs that arrive
# late may still appear up to this far behind the newest one loaded.
DEFAULT_LAG_SECONDS = 6 * 3600

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def env_var(key: str) -> str:
    """The environment variable that overrides a key of the ``[models]`` section."""
    return f"{SECTION.upper()}__{key.upper()}"


@dataclass(frozen=True)
class ModelSettings:
    """What the SQL models are built with.

    Attributes:
        reporting_timezone: IANA zone of days, hours and months in the reports.
        service_level_seconds: an inbound call answered within this many seconds counts as
            answered within the service level.
        short_abandon_seconds: an abandoned call that waited at most this long is a short
            abandon (left out of service level and abandon rate).
        business_hours_start: start of business hours, ``HH:MM`` in the reporting zone.
        business_hours_end: end of business hours (exclusive); earlier than the start means
            business hours run past midnight.
        business_days: ISO weekdays (1 = Monday .. 7 = Sunday) that are business days.
        repeat_call_days: a caller calling again within this many days is a repeat caller.
        default_country_code: country calling code of national numbers (no ``+`` or ``00``);
            empty when unknown (they are then kept as digits, not made E.164).
        trunk_prefix: national trunk prefix dropped before adding ``default_country_code``
            (``0`` in most of Europe; empty for countries without one or that keep it, e.g. IT).
        lag_seconds: the sync's lag window (``[sources.voipstudio] lag``, not a ``[models]``
            key): a day or hour that ends less than this before an account's newest loaded
            call is not complete yet (late CDRs may still arrive for it).
    """

    reporting_timezone: str = DEFAULT_REPORTING_TIMEZONE
    service_level_seconds: int = DEFAULT_SERVICE_LEVEL_SECONDS
    short_abandon_seconds: int = DEFAULT_SHORT_ABANDON_SECONDS
    business_hours_start: str = DEFAULT_BUSINESS_HOURS_START
    business_hours_end: str = DEFAULT_BUSINESS_HOURS_END
    business_days: tuple[int, ...] = DEFAULT_BUSINESS_DAYS
    repeat_call_days: int = DEFAULT_REPEAT_CALL_DAYS
    default_country_code: str = DEFAULT_COUNTRY_CODE
    trunk_prefix: str = DEFAULT_TRUNK_PREFIX
    lag_seconds: int = DEFAULT_LAG_SECONDS

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.reporting_timezone)
        except Exception:  # ZoneInfo raises several kinds; all mean "not a zone"
            raise ConfigError(
                f"{_where('reporting_timezone')} = {self.reporting_timezone!r} is not an IANA "
                "time zone (e.g. Europe/Madrid)"
            ) from None
        for key in ("service_level_seconds", "short_abandon_seconds"):
            if not 0 <= getattr(self, key) <= 86_400:
                raise ConfigError(f"{_where(key)} must be between 0 and 86400 seconds")
        if not 1 <= self.repeat_call_days <= 366:
            raise ConfigError(f"{_where('repeat_call_days')} must be between 1 and 366")
        for key in ("business_hours_start", "business_hours_end"):
            _clock_seconds(key, getattr(self, key))
        if not self.business_days or not set(self.business_days) <= set(range(1, 8)):
            raise ConfigError(
                f"{_where('business_days')} must name ISO weekdays 1 (Monday) to 7 (Sunday)"
            )
        if not re.fullmatch(r"\d{0,3}", self.default_country_code):
            raise ConfigError(
                f"{_where('default_country_code')} must be 1 to 3 digits (e.g. 34), or empty"
            )
        if not re.fullmatch(r"\d{0,2}", self.trunk_prefix):
            raise ConfigError(f"{_where('trunk_prefix')} must be 0 to 2 digits (e.g. 0)")

    def sql_variables(self) -> dict[str, str]:
        """The ``{{ name }}`` variables of the SQL models, as SQL literals."""
        return {
            "reporting_timezone": _quote(self.reporting_timezone),
            "service_level_seconds": str(self.service_level_seconds),
            "short_abandon_seconds": str(self.short_abandon_seconds),
            "business_hours_start_seconds": str(
                _clock_seconds("business_hours_start", self.business_hours_start)
            ),
            "business_hours_end_seconds": str(
                _clock_seconds("business_hours_end", self.business_hours_end)
            ),
            "business_days": ", ".join(str(day) for day in sorted(set(self.business_days))),
            "repeat_call_days": str(self.repeat_call_days),
            "default_country_code": _quote(self.default_country_code),
            "trunk_prefix": _quote(self.trunk_prefix),
            "lag_seconds": str(self.lag_seconds),
        }


def _where(key: str) -> str:
    return f"[{SECTION}] {key} ({env_var(key)})"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _clock_seconds(key: str, value: str) -> int:
    match = _CLOCK.match(value.strip())
    if not match:
        raise ConfigError(f"{_where(key)} = {value!r} is not a time of day HH:MM")
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60


def parse_days(value: Any) -> tuple[int, ...]:
    """ISO weekdays from ``"1-5"``, ``"1,2,3,4,5"``, ``"1-5,7"`` or a list of numbers.

    Raises:
        ConfigError: the value names no weekday or something else.
    """
    if isinstance(value, (list, tuple)):
        parts = [str(item) for item in value]
    else:
        parts = [part for part in str(value).replace(" ", "").split(",") if part]
    days: set[int] = set()
    try:
        for part in parts:
            low, _, high = part.partition("-")
            first, last = int(low), int(high or low)
            if first > last:
                raise ValueError(part)
            days.update(range(first, last + 1))
    except ValueError:
        raise ConfigError(
            f"{_where('business_days')} = {value!r}: use ISO weekdays like 1-5 or 1,2,3,4,5"
        ) from None
    return tuple(sorted(days))


def _integer(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{_where(key)} must be a whole number, not {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{_where(key)} must be a whole number, not {value!r}") from None


def load_settings() -> ModelSettings:
    """Read the ``[models]`` settings (config.toml, environment variables), with defaults.

    Raises:
        ConfigError: a setting is invalid; the message names the key and its variable.
    """

    def get(key: str) -> Any:
        return dlt.config.get(f"{SECTION}.{key}")

    values: dict[str, Any] = {}
    for key in ("reporting_timezone", "business_hours_start", "business_hours_end"):
        value = get(key)
        if value is not None:
            values[key] = str(value).strip()
    for key in ("default_country_code", "trunk_prefix"):
        value = get(key)
        if value is not None:
            text = str(value).strip()
            values[key] = text.lstrip("+") if key == "default_country_code" else text
    for key in ("service_level_seconds", "short_abandon_seconds", "repeat_call_days"):
        value = get(key)
        if value is not None:
            values[key] = _integer(key, value)
    days = get("business_days")
    if days is not None:
        values["business_days"] = parse_days(days)
    lag: Any = dlt.config.get("sources.voipstudio.lag")
    if lag is not None:
        values["lag_seconds"] = int(parse_duration(lag, "[sources.voipstudio] lag").total_seconds())
    return ModelSettings(**values)
