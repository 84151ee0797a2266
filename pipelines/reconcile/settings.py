"""Settings of ``voipstudio reconcile``: how many days it re-reads, and the mass-marking guard.

They live in the ``[reconcile]`` section of ``.dlt/config.toml``; every key can be overridden by
an environment variable named after it, e.g. ``RECONCILE__DAYS=14`` (dlt conventions).
"""

from __future__ import annotations

import math

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration

from pipelines.voipstudio.configuration import describe, resolve, warn_unknown_keys
from pipelines.voipstudio.errors import ConfigError

SECTION = "reconcile"
SECTIONS = (SECTION,)

# The most days one run may re-read in full (counts-only checks have no limit): ten years.
MAX_DAYS = 3660
# CDRs the API is asked for at once when a CDR missing from its day is looked up by id.
LOOKUP_IDS = 100


@configspec
class ReconcileSettings(BaseConfiguration):
    """What ``voipstudio reconcile`` re-reads and how much it may mark deleted (``[reconcile]``).

    Attributes:
        days: re-read the days from midnight this many days before the day of the sync's
            cursor, up to the cursor (in each account's time zone).
        max_deleted_share: a day, and all the days of one account's run together, may lose
            at most this share of their stored CDRs ...
        max_deleted_rows: ... or this many CDRs, whichever is more (so that a small day can
            lose a CDR or two: 1 of 3 is a third).
    """

    days: int = 7
    max_deleted_share: float = 0.05
    max_deleted_rows: int = 2

    def allowed(self, stored: int) -> int:
        """How many of ``stored`` CDRs may be marked deleted at once."""
        return max(self.max_deleted_rows, math.floor(self.max_deleted_share * stored))

    def describe_limit(self) -> str:
        """The guard's limit, in words, with the settings that change it."""
        return (
            f"{self.max_deleted_share:.0%} of its CDRs or {self.max_deleted_rows}, whichever is "
            f"more ([{SECTION}] max_deleted_share / max_deleted_rows)"
        )


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
    warn_unknown_keys(SECTIONS, ReconcileSettings.get_resolvable_fields())
    found = resolve(ReconcileSettings(), SECTIONS)
    check_days(found.days, describe(SECTIONS, "days"))
    if not 0.0 <= found.max_deleted_share <= 1.0:
        raise ConfigError(
            f"{describe(SECTIONS, 'max_deleted_share')} must be from 0 to 1 (0.05 = 5%), got "
            f"{found.max_deleted_share!r}"
        )
    if found.max_deleted_rows < 0:
        raise ConfigError(
            f"{describe(SECTIONS, 'max_deleted_rows')} must be 0 or more, got "
            f"{found.max_deleted_rows}"
        )
    return found
