"""Settings of ``voipstudio reconcile``: how many days it re-reads, and the mass-marking guard.

They live in the ``[reconcile]`` section of ``.dlt/config.toml``; every key can be overridden by
an environment variable named after it, e.g. ``RECONCILE__DAYS=14`` (dlt conventions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import dlt

from pipelines.voipstudio.errors import ConfigError

SECTION = "reconcile"

DEFAULT_DAYS = 7
DEFAULT_MAX_DELETED_SHARE = 0.05
DEFAULT_MAX_DELETED_ROWS = 2
# The most days one run may re-read in full (counts-only checks have no limit): ten years.
MAX_DAYS = 3660
# CDRs the API is asked for at once when a CDR missing from its day is looked up by id.
LOOKUP_IDS = 100


def env_var(key: str) -> str:
    """The environment variable that overrides a key of the ``[reconcile]`` section."""
    return f"{SECTION.upper()}__{key.upper()}"


@dataclass(frozen=True)
class ReconcileSettings:
    """What ``voipstudio reconcile`` re-reads and how much it may mark deleted.

    Attributes:
        days: re-read the days from midnight this many days before the day of the sync's
            cursor, up to the cursor (in each account's time zone).
        max_deleted_share: a day, and all the days of one account's run together, may lose
            at most this share of their stored CDRs ...
        max_deleted_rows: ... or this many CDRs, whichever is more (so that a small day can
            lose a CDR or two: 1 of 3 is a third).
    """

    days: int = DEFAULT_DAYS
    max_deleted_share: float = DEFAULT_MAX_DELETED_SHARE
    max_deleted_rows: int = DEFAULT_MAX_DELETED_ROWS

    def allowed(self, stored: int) -> int:
        """How many of ``stored`` CDRs may be marked deleted at once."""
        return max(self.max_deleted_rows, math.floor(self.max_deleted_share * stored))

    def describe_limit(self) -> str:
        """The guard's limit, in words, with the settings that change it."""
        return (
            f"{self.max_deleted_share:.0%} of its CDRs or {self.max_deleted_rows}, whichever is "
            f"more ([{SECTION}] max_deleted_share / max_deleted_rows)"
        )


def _number(key: str, kind: type, default: Any) -> Any:
    value: Any = dlt.config.get(f"{SECTION}.{key}")
    if value is None:
        return default
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        number = kind(value) if kind is float else int(str(value).strip())
    except (TypeError, ValueError):
        what = "a number" if kind is float else "an integer"
        raise ConfigError(
            f"[{SECTION}] {key} ({env_var(key)}) must be {what}, not {value!r}"
        ) from None
    return number


def check_days(days: int, key: str = "--days") -> int:
    """``days`` if it is a number of days reconcile can re-read.

    Raises:
        ConfigError: it is not, naming ``key``.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"{key} must be from 1 to {MAX_DAYS} days, got {days}")
    return days


def load_reconcile_settings() -> ReconcileSettings:
    """Read ``[reconcile]`` (config.toml, environment variables).

    Raises:
        ConfigError: a setting is invalid, naming it.
    """
    days = check_days(_number("days", int, DEFAULT_DAYS), f"[{SECTION}] days ({env_var('days')})")
    share = _number("max_deleted_share", float, DEFAULT_MAX_DELETED_SHARE)
    if not 0.0 <= share <= 1.0:
        raise ConfigError(
            f"[{SECTION}] max_deleted_share ({env_var('max_deleted_share')}) must be from 0 to 1 "
            f"(0.05 = 5%), got {share!r}"
        )
    rows = _number("max_deleted_rows", int, DEFAULT_MAX_DELETED_ROWS)
    if rows < 0:
        raise ConfigError(
            f"[{SECTION}] max_deleted_rows ({env_var('max_deleted_rows')}) must be 0 or more, "
            f"got {rows}"
        )
    return ReconcileSettings(days=days, max_deleted_share=share, max_deleted_rows=rows)
