"""Settings of the reporting models: thresholds and the reporting time zone.

They live in the ``[models]`` section of ``.dlt/config.toml``; every key can be overridden by an
environment variable named after it, e.g. ``MODELS__REPORTING_TIMEZONE=Europe/Madrid`` (dlt
conventions). :class:`ModelSettings` is their dlt spec (each key, type and default written
once). The SQL models read them as ``{{ name }}`` variables (see :meth:`sql_variables`).
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

import dlt
from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration

from pipelines.voipstudio.accounts import parse_duration
from pipelines.voipstudio.configuration import describe, resolve, warn_unknown_keys
from pipelines.voipstudio.errors import ConfigError
from pipelines.voipstudio.settings import AccountSettings

SECTION = "models"
SECTIONS = (SECTION,)

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@configspec
class ModelSettings(BaseConfiguration):
    """What the SQL models are built with (``[models]``).

    Attributes:
        reporting_timezone: IANA zone of days, hours and months in the reports.
        service_level_seconds: an inbound call answered within this many seconds counts as
            answered within the service level.
        short_abandon_seconds: an abandoned call that waited at most this long is a short
            abandon (left out of service level and abandon rate).
        business_hours_start: start of business hours, ``HH:MM`` in the reporting zone.
        business_hours_end: end of business hours (exclusive); earlier than the start means
            business hours run past midnight.
        business_days: ISO weekdays (1 = Monday .. 7 = Sunday) that are business days, as
            written: ``1-5``, ``1,2,3,4,5``, ``1-5,7`` (see :attr:`weekdays`).
        repeat_call_days: a caller calling again within this many days is a repeat caller.
        default_country_code: country calling code of national numbers (no ``+`` or ``00``);
            empty when unknown (they are then kept as digits, not made E.164).
        trunk_prefix: national trunk prefix dropped before adding ``default_country_code``
            (``0`` in most of Europe; empty for countries without one or that keep it, e.g. IT).
        queue_interval_minutes: length of the intervals of ``agg_queue_interval``, 15 or 30
            minutes of the reporting zone's clock.
    """

    reporting_timezone: str = "UTC"
    service_level_seconds: int = 20
    short_abandon_seconds: int = 5
    business_hours_start: str = "09:00"
    business_hours_end: str = "18:00"
    business_days: str = "1-5"
    repeat_call_days: int = 7
    default_country_code: str = ""
    trunk_prefix: str = "0"
    queue_interval_minutes: int = 30

    def __post_init__(self) -> None:
        self._check()

    def on_resolved(self) -> None:
        """Called by dlt once the values are read: tidied and checked."""
        for key in ("reporting_timezone", "business_hours_start", "business_hours_end"):
            setattr(self, key, str(getattr(self, key)).strip())
        self.default_country_code = str(self.default_country_code).strip().lstrip("+")
        self.trunk_prefix = str(self.trunk_prefix).strip()
        self._check()

    def _check(self) -> None:
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
        if not self.weekdays or not set(self.weekdays) <= set(range(1, 8)):
            raise ConfigError(
                f"{_where('business_days')} must name ISO weekdays 1 (Monday) to 7 (Sunday)"
            )
        if not re.fullmatch(r"\d{0,3}", self.default_country_code):
            raise ConfigError(
                f"{_where('default_country_code')} must be 1 to 3 digits (e.g. 34), or empty"
            )
        if not re.fullmatch(r"\d{0,2}", self.trunk_prefix):
            raise ConfigError(f"{_where('trunk_prefix')} must be 0 to 2 digits (e.g. 0)")
        if self.queue_interval_minutes not in (15, 30):
            raise ConfigError(f"{_where('queue_interval_minutes')} must be 15 or 30")

    @property
    def weekdays(self) -> tuple[int, ...]:
        """The business days as ISO weekday numbers, sorted."""
        return parse_days(self.business_days)

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
            "business_days": ", ".join(str(day) for day in self.weekdays),
            "repeat_call_days": str(self.repeat_call_days),
            "default_country_code": _quote(self.default_country_code),
            "trunk_prefix": _quote(self.trunk_prefix),
            "lag_seconds": str(sync_lag_seconds()),
            "queue_interval_seconds": str(self.queue_interval_minutes * 60),
        }


def sync_lag_seconds() -> int:
    """The sync's lag (``[sources.voipstudio] lag``, not a ``[models]`` key), in seconds: a day
    or hour that ends less than this before an account's newest loaded call is not complete
    yet (late CDRs may still arrive for it; ``{{ lag_seconds }}`` in the models).

    Raises:
        ConfigError: the lag is not a duration.
    """
    value: Any = dlt.config.get("sources.voipstudio.lag")
    text = AccountSettings.__dataclass_fields__["lag"].default if value is None else value
    return int(parse_duration(text, "[sources.voipstudio] lag").total_seconds())


def _where(key: str) -> str:
    return describe(SECTIONS, key)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _clock_seconds(key: str, value: str) -> int:
    match = _CLOCK.match(value.strip())
    if not match:
        raise ConfigError(f"{_where(key)} = {value!r} is not a time of day HH:MM")
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60


def parse_days(value: Any) -> tuple[int, ...]:
    """ISO weekdays from ``"1-5"``, ``"1,2,3,4,5"``, ``"1-5,7"`` or a list of numbers (or its
    JSON text, as a TOML list reaches a text setting).

    Raises:
        ConfigError: the value names no weekday or something else.
    """
    if isinstance(value, (list, tuple)):
        parts = [str(item) for item in value]
    else:
        text = str(value).replace(" ", "").removeprefix("[").removesuffix("]")
        parts = [part for part in text.split(",") if part]
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


def load_settings() -> ModelSettings:
    """Read the ``[models]`` settings (config.toml, environment variables), with defaults.

    Raises:
        ConfigError: a setting is invalid; the message names the key and its variable.
    """
    warn_unknown_keys(SECTIONS, ModelSettings.get_resolvable_fields())
    return resolve(ModelSettings(), SECTIONS)
