"""The VoIPstudio accounts one configuration syncs, and the parsing of their settings.

One account is configured in ``[sources.voipstudio]`` itself; its rows carry the name in
``account`` (``"default"`` unless set). Several accounts are configured as sections
``[sources.voipstudio.accounts.<name>]``, each with its own credentials and, optionally, its
own value of any key of :data:`OVERRIDABLE`; a key an account does not set is taken from
``[sources.voipstudio]``. Credentials are never shared between accounts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
from dlt.common.configuration.providers import EnvironProvider

from pipelines.voipstudio import settings
from pipelines.voipstudio.client import SECTION, Credentials, RetryPolicy, env_variable
from pipelines.voipstudio.errors import ConfigError
from pipelines.voipstudio.wallclock import longest_fold

SECTIONS = ("sources", settings.SOURCE_NAME, "accounts")
_ENV_PREFIX = "__".join(SECTIONS).upper() + "__"
# Names become part of resource names and of every row: kept to what every destination and
# every environment variable can spell.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# An account's resources are named <table>_<account>: these would name a table of the source.
_RESERVED = frozenset({settings.REJECTS_TABLE.removeprefix("cdrs_")})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

# Settings an account may set for itself, with the type their text is read as.
OVERRIDABLE: dict[str, type] = {
    "base_url": str,
    "start_date": str,
    "lag": str,
    "timezone": str,
    "page_size": int,
    "max_concurrency": int,
    "max_attempts": int,
    "request_timeout": float,
    "backoff_base": float,
}
CREDENTIAL_KEYS = ("api_key", "email", "password")


def parse_duration(text: str | int | float, key: str = "lag") -> timedelta:
    """``"6h"``, ``"90m"``, ``"2d"``, ``"45s"`` or a number of seconds.

    Raises:
        ConfigError: anything else, naming the key.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise ConfigError(
                f"{key} = {text!r} is not a duration: write it like '6h', '90m', '2d' or seconds"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ConfigError(f"{key} must not be negative, got {text!r}")
    return timedelta(seconds=seconds)


def parse_start(text: str, key: str = "start_date") -> datetime:
    """A wall-clock instant from ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS`` (``T`` allowed).

    Raises:
        ConfigError: anything else, naming the key.
    """
    value = str(text).strip().replace("T", " ")
    for fmt in ("%Y-%m-%d", settings.API_DATETIME_FORMAT, "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ConfigError(
        f"{key} = {text!r} is not a date: write it as YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS'"
    )


def check_zone(name: str, key: str = "timezone") -> str:
    """``name`` if it is an IANA time zone.

    Raises:
        ConfigError: it is not, naming the key.
    """
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{key} = {name!r} is not an IANA time zone (e.g. 'UTC', 'Europe/Madrid')"
        ) from None
    return str(name)


def check_range(value: Any, key: str, low: int, high: int) -> int:
    """``value`` if it is an integer from ``low`` to ``high``.

    Raises:
        ConfigError: it is not, naming the key.
    """
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{key} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_name(name: str, where: str) -> str:
    """``name`` if it can name an account.

    Raises:
        ConfigError: it cannot, saying where it was found.
    """
    if not _NAME.match(name) or name in _RESERVED:
        raise ConfigError(
            f"account name {name!r} ({where}) is not allowed: use lowercase letters, digits and "
            "underscores, starting with a letter, at most 40 characters, not 'rejects' "
            "(e.g. 'acme_es')"
        )
    return name


@dataclass(frozen=True)
class Account:
    """One VoIPstudio account and how to read it.

    Attributes:
        name: the name its rows carry in the ``account`` column.
        credentials: its API key, or email and password.
        base_url: the API's base URL.
        start_date: where its first sync starts (wall time in ``timezone``); None = 30 days ago.
        lag: how far before its cursor each sync reads again.
        page_size: records per request.
        max_concurrency: requests in flight at once for this account.
        timezone: the zone of its ``calldate`` texts.
        request_timeout: seconds before a request times out.
        retry: how failed requests are retried.
        section: where it is configured (error messages name it).
    """

    name: str
    credentials: Credentials
    base_url: str
    start_date: datetime | None
    lag: timedelta
    page_size: int
    max_concurrency: int
    timezone: str
    request_timeout: float
    retry: RetryPolicy
    section: str = SECTION


def build_account(name: str, values: Mapping[str, Any], *, named: bool) -> Account:
    """Validate one account's settings.

    Args:
        name: the account's name.
        values: every key of :data:`OVERRIDABLE` and :data:`CREDENTIAL_KEYS` (None = unset).
        named: the account is one of ``[sources.voipstudio.accounts.<name>]`` (error messages
            then name its section), not the single account of ``[sources.voipstudio]``.

    Raises:
        ConfigError: a missing or invalid setting, naming the key.
    """
    section = ".".join((*SECTIONS, name)) if named else SECTION

    def key(setting: str) -> str:
        # How messages spell a key: where the user sets it.
        return f"{section}.{setting}" if named else setting

    try:
        credentials = Credentials(
            api_key=values.get("api_key"),
            email=values.get("email"),
            password=values.get("password"),
        )
    except ConfigError:
        if not named:
            raise
        raise ConfigError(
            f"No VoIPstudio credentials for account '{name}': set {key('api_key')} (recommended) "
            f"or {key('email')} and {key('password')} in .dlt/secrets.toml, or the environment "
            f"variable {env_variable(section, 'api_key')}"
        ) from None
    backoff_base = values["backoff_base"]
    if not isinstance(backoff_base, (int, float)) or not backoff_base >= 0:
        raise ConfigError(f"{key('backoff_base')} must be 0 or more seconds, got {backoff_base!r}")
    lag = parse_duration(values["lag"], key("lag"))
    timezone = check_zone(values["timezone"], key("timezone"))
    repeated = longest_fold(timezone)
    if lag.total_seconds() < repeated:
        # A sync during the repeated hour reads up to a wall-clock time the cursor has passed
        # already: only a lag longer than the hour reads those CDRs again.
        raise ConfigError(
            f"{key('lag')} = {values['lag']!r} is shorter than the hour {timezone} repeats when "
            f"its clocks go back: CDRs of that hour would be missed; set it to at least "
            f"{repeated // 60}m"
        )
    return Account(
        name=name,
        credentials=credentials,
        base_url=str(values["base_url"]),
        start_date=(
            parse_start(values["start_date"], key("start_date")) if values["start_date"] else None
        ),
        lag=lag,
        page_size=check_range(values["page_size"], key("page_size"), 1, settings.MAX_PAGE_SIZE),
        max_concurrency=check_range(values["max_concurrency"], key("max_concurrency"), 1, 64),
        timezone=timezone,
        request_timeout=float(values["request_timeout"]),
        retry=RetryPolicy(
            max_attempts=check_range(values["max_attempts"], key("max_attempts"), 1, 100),
            backoff_base=float(backoff_base),
        ),
        section=section,
    )


def configured_account_names() -> list[str]:
    """Names of the ``[sources.voipstudio.accounts.<name>]`` sections, in every provider.

    dlt returns a section from the first provider that has it, so an account whose key is in
    secrets.toml and whose base URL is in config.toml would be half-seen by a single lookup:
    each provider is asked, and environment variables are scanned for
    ``SOURCES__VOIPSTUDIO__ACCOUNTS__<NAME>__<KEY>``.

    Raises:
        ConfigError: a name that cannot name an account, or an ``accounts`` value that is
            not a table of accounts.
    """
    names: dict[str, None] = {}
    for provider in dlt.config.config_providers:
        if isinstance(provider, EnvironProvider):
            for variable in os.environ:
                if variable.startswith(_ENV_PREFIX):
                    name = variable[len(_ENV_PREFIX) :].split("__", 1)[0].lower()
                    names[check_name(name, f"environment variable {variable}")] = None
            continue
        section, _ = provider.get_value(SECTIONS[-1], Any, None, *SECTIONS[:-1])
        if section is None:
            continue
        if not isinstance(section, Mapping):
            raise ConfigError(
                f"{'.'.join(SECTIONS)} in {provider.name} must be a table of accounts, e.g. "
                '[sources.voipstudio.accounts.acme] with api_key = "..."'
            )
        for name in section:
            names[check_name(str(name), f"{provider.name} [{'.'.join((*SECTIONS, name))}]")] = None
    return sorted(names)


def account_names() -> tuple[list[str], bool]:
    """The accounts configured and whether they are named ones (else the single account).

    Raises:
        ConfigError: a name that cannot name an account.
    """
    names = configured_account_names()
    if names:
        return names, True
    single: Any = dlt.config.get(f"sources.{settings.SOURCE_NAME}.account")
    return [check_name(str(single or settings.DEFAULT_ACCOUNT), "account")], False


def account_values(name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """One named account's settings: its own where set, else ``defaults`` (credentials never).

    Raises:
        ConfigError: a value of the wrong type, naming the key.
    """
    values: dict[str, Any] = {}
    prefix = ".".join((*SECTIONS, name))
    for key in CREDENTIAL_KEYS:
        values[key] = dlt.secrets.get(f"{prefix}.{key}")
    for key, kind in OVERRIDABLE.items():
        try:
            value: Any = dlt.config.get(f"{prefix}.{key}", kind)
        except Exception:  # dlt's coercion errors: one clear message instead
            raise ConfigError(
                f"{prefix}.{key} must be {'a number' if kind in (int, float) else 'text'}"
            ) from None
        values[key] = defaults.get(key) if value is None else value
    return values
