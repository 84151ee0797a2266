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

from pipelines.voipstudio import redaction, settings
from pipelines.voipstudio.client import (
    SECTION,
    Credentials,
    FailureBudget,
    RetryPolicy,
    VoipstudioClient,
    env_variable,
)
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
    "request_budget": float,
    "failure_budget": float,
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


def check_seconds(value: Any, key: str) -> float:
    """``value`` if it is a number of seconds above 0.

    Raises:
        ConfigError: it is not, naming the key.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e9:
        raise ConfigError(f"{key} must be a number of seconds above 0, got {value!r}")
    return float(value)


def clean_secret(value: Any, key: str, env: str, *, header: bool) -> str | None:
    """A credential as configured, with the whitespace a paste or a file leaves around it
    removed; None when nothing is left. Every spelling of it is redacted from then on.

    Args:
        value: the configured value (None = unset).
        key: the key's name, for the message.
        env: its environment variable, for the message.
        header: it is sent in an HTTP header (an API key): only visible ASCII characters are
            allowed, since anything else cannot be sent (and the HTTP library's error would
            quote the key).

    Raises:
        ConfigError: a header value with a character a header cannot carry; the message names
            the key, never its value.
    """
    if value is None:
        return None
    raw = str(value)
    redaction.register(raw)
    text = raw.strip() if header else raw.strip("\r\n")
    if header and any(not 0x21 <= ord(char) <= 0x7E for char in text):
        raise ConfigError(
            f"{key} ({env}) holds a space, a line break, a control or a non-ASCII character "
            "inside it, which an HTTP header cannot carry: copy the key again from the "
            "VoIPstudio admin panel (it is never shown here)"
        )
    return text or None


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
        request_timeout: seconds one attempt of a request may take, to its last byte.
        retry: how failed requests are retried.
        failure_budget: seconds of failed requests its sync tolerates (see ``FailureBudget``).
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
    failure_budget: float = settings.FAILURE_BUDGET_SECONDS
    section: str = SECTION

    def client(self, failures: FailureBudget | None = None) -> VoipstudioClient:
        """An API client with this account's settings.

        Args:
            failures: the failure budget the clients of one run of the account share; None = a
                budget of its own (``failure_budget`` seconds).
        """
        return VoipstudioClient(
            self.base_url,
            self.credentials,
            max_concurrency=self.max_concurrency,
            timeout=self.request_timeout,
            retry=self.retry,
            failure_budget=failures or FailureBudget(self.failure_budget),
            section=self.section,
        )


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

    api_key = clean_secret(
        values.get("api_key"), key("api_key"), env_variable(section, "api_key"), header=True
    )
    password = clean_secret(
        values.get("password"), key("password"), env_variable(section, "password"), header=False
    )
    try:
        credentials = Credentials(
            api_key=api_key,
            email=str(values.get("email") or "").strip() or None,
            password=password,
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
        request_timeout=check_seconds(values["request_timeout"], key("request_timeout")),
        retry=RetryPolicy(
            max_attempts=check_range(values["max_attempts"], key("max_attempts"), 1, 100),
            backoff_base=float(backoff_base),
            request_budget=check_seconds(values["request_budget"], key("request_budget")),
        ),
        failure_budget=check_seconds(values["failure_budget"], key("failure_budget")),
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
    return section_values(".".join((*SECTIONS, name)), defaults)


def section_values(prefix: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The credentials and :data:`OVERRIDABLE` settings configured in section ``prefix``, each
    one not set there taken from ``defaults`` (credentials never).

    Raises:
        ConfigError: a value of the wrong type, naming the key.
    """
    values: dict[str, Any] = {}
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


def build_accounts(defaults: Mapping[str, Any], account: str) -> tuple[list[Account], bool]:
    """Every configured account and whether they are named ones: the named accounts of
    ``[sources.voipstudio.accounts]`` if there are any, else the single account ``account``
    of ``[sources.voipstudio]`` (whose settings are ``defaults``).

    Raises:
        ConfigError: a missing or invalid setting, naming the key.
    """
    names = configured_account_names()
    if names:
        return [build_account(n, account_values(n, defaults), named=True) for n in names], True
    return [build_account(check_name(account, "account"), defaults, named=False)], False
