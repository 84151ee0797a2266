"""The VoIPstudio accounts one configuration syncs, and the checking of their settings.

One account is configured in ``[sources.voipstudio]`` itself; its rows carry the name in
``account`` (``"default"`` unless set). Several accounts are configured as sections
``[sources.voipstudio.accounts.<name>]``, each with its own credentials and, optionally, its
own value of any key of :class:`~pipelines.voipstudio.settings.AccountSettings`; a key an
account does not set is taken from ``[sources.voipstudio]`` (dlt looks a key up in the
enclosing sections). Credentials are never shared between accounts: a named account's are read
from its own section only.

:func:`load_source_configuration` reads it all once: the typed settings (dlt specs), checked
into :class:`Account` values ready to read with, and the collections to load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
from dlt.common.configuration.providers import EnvironProvider

from pipelines.voipstudio import catalog, redaction, settings
from pipelines.voipstudio.client import (
    SECTION,
    Credentials,
    FailureBudget,
    RetryPolicy,
    VoipstudioClient,
    check_base_url,
    env_variable,
)
from pipelines.voipstudio.collection import Collection, DatedCollection, Dimension
from pipelines.voipstudio.configuration import refuse_secrets_in_config, resolve, warn_unknown_keys
from pipelines.voipstudio.errors import ConfigError
from pipelines.voipstudio.settings import CREDENTIAL_KEYS, AccountSettings, SourceSettings
from pipelines.voipstudio.wallclock import longest_fold
from pipelines.voipstudio.windows import Progress, WindowScanner

SECTIONS = (*settings.SECTIONS, settings.ACCOUNTS_KEY)
_ENV_PREFIX = "__".join(SECTIONS).upper() + "__"
# Names become part of resource names and of every row: kept to what every destination and
# every environment variable can spell.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# An account's resources are named <table>_<account>: `<table>_rejects` names a table.
_RESERVED = frozenset({"rejects"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


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
    """One VoIPstudio account and how to read it (its settings, checked).

    Attributes:
        name: the name its rows carry in the ``account`` column.
        credentials: its API key, or email and password.
        base_url: the API's base URL.
        start_date: where its first sync starts (wall time in ``timezone``); None = 30 days ago.
        lag: how far before its cursor each sync reads again.
        page_size: records per request.
        max_concurrency: requests in flight at once for this account.
        timezone: the zone of its wall-clock date texts.
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
    failure_budget: float = AccountSettings.failure_budget
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

    def scanner(
        self,
        client: VoipstudioClient,
        collection: DatedCollection,
        *,
        on_page: Progress | None = None,
        on_plan: Callable[[int], None] | None = None,
    ) -> WindowScanner:
        """The windowed reader of ``collection`` with this account's page size, concurrency
        and time zone (the sync, reconcile and download read through it alike)."""
        return WindowScanner(
            client,
            collection,
            page_size=self.page_size,
            max_concurrency=self.max_concurrency,
            timezone=self.timezone,
            on_page=on_page,
            on_plan=on_plan,
        )


def build_account(
    name: str, values: AccountSettings, credentials: Mapping[str, Any], *, named: bool
) -> Account:
    """Check one account's settings.

    Args:
        name: the account's name.
        values: its settings, resolved.
        credentials: its ``api_key``, ``email`` and ``password`` (None = unset).
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
        credentials.get("api_key"), key("api_key"), env_variable(section, "api_key"), header=True
    )
    password = clean_secret(
        credentials.get("password"),
        key("password"),
        env_variable(section, "password"),
        header=False,
    )
    try:
        login = Credentials(
            api_key=api_key,
            email=str(credentials.get("email") or "").strip() or None,
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
    backoff_base = values.backoff_base
    if not backoff_base >= 0:
        raise ConfigError(f"{key('backoff_base')} must be 0 or more seconds, got {backoff_base!r}")
    lag = parse_duration(values.lag, key("lag"))
    timezone = check_zone(values.timezone, key("timezone"))
    repeated = longest_fold(timezone)
    if lag.total_seconds() < repeated:
        # A sync during the repeated hour reads up to a wall-clock time the cursor has passed
        # already: only a lag longer than the hour reads those records again.
        raise ConfigError(
            f"{key('lag')} = {values.lag!r} is shorter than the hour {timezone} repeats when "
            f"its clocks go back: CDRs of that hour would be missed; set it to at least "
            f"{repeated // 60}m"
        )
    return Account(
        name=name,
        credentials=login,
        base_url=check_base_url(values.base_url, section),
        start_date=(
            parse_start(values.start_date, key("start_date")) if values.start_date else None
        ),
        lag=lag,
        page_size=check_range(values.page_size, key("page_size"), 1, settings.MAX_PAGE_SIZE),
        max_concurrency=check_range(values.max_concurrency, key("max_concurrency"), 1, 64),
        timezone=timezone,
        request_timeout=check_seconds(values.request_timeout, key("request_timeout")),
        retry=RetryPolicy(
            max_attempts=check_range(values.max_attempts, key("max_attempts"), 1, 100),
            backoff_base=float(backoff_base),
            request_budget=check_seconds(values.request_budget, key("request_budget")),
        ),
        failure_budget=check_seconds(values.failure_budget, key("failure_budget")),
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
    """The accounts configured and whether they are named ones (else the single account),
    without reading their settings (``voipstudio status`` needs no credentials).

    Raises:
        ConfigError: a name that cannot name an account.
    """
    names = configured_account_names()
    if names:
        return names, True
    single: Any = dlt.config.get(f"{SECTION}.account")
    return [check_name(str(single or SourceSettings.account), "account")], False


def configured_resources() -> tuple[Collection, ...]:
    """The collections the ``resources`` setting loads, without reading the other settings
    (``voipstudio status`` and the models need no credentials); the default when it is not a
    list of collections (the sync says what is wrong with it)."""
    configured: object = dlt.config.get(f"{SECTION}.resources")
    if configured:
        try:
            return catalog.choose(str(configured), f"{SECTION}.resources")
        except ConfigError:
            pass
    return catalog.choose(SourceSettings.resources, f"{SECTION}.resources")


def unconfigured_tables() -> set[str]:
    """The tables of the collections the ``resources`` setting does not load (and their
    rejects tables): a model reading one that was never loaded is not built, and not reported
    as skipped either (it is a choice, not a gap)."""
    chosen = configured_resources()
    tables = set()
    for collection in catalog.COLLECTIONS:
        if collection not in chosen:
            tables.add(collection.name)
            if isinstance(collection, Dimension):
                tables.update(collection.tables)
            if isinstance(collection, DatedCollection):
                tables.add(collection.rejects_table)
    return tables


@dataclass(frozen=True)
class SourceConfiguration:
    """What ``[sources.voipstudio]`` configures, read and checked once.

    Attributes:
        settings: the section's settings as resolved.
        accounts: the accounts to read, checked.
        named: they are the named accounts of ``[sources.voipstudio.accounts]`` (else the
            single account of ``[sources.voipstudio]``).
        resources: the collections a sync loads unless told otherwise (``resources``).
    """

    settings: SourceSettings
    accounts: list[Account] = field(default_factory=list)
    named: bool = False
    resources: tuple[Collection, ...] = ()


def load_source_configuration(explicit: Mapping[str, Any] | None = None) -> SourceConfiguration:
    """Read ``[sources.voipstudio]`` and its accounts (files, environment variables), warn
    about keys no setting has, and check every account.

    Args:
        explicit: values given in code for the single account (``voipstudio_source``'s
            arguments); they win over the configuration. Named accounts take theirs from
            their own sections, falling back to ``[sources.voipstudio]``.

    Raises:
        ConfigError: a missing or invalid setting, naming the key.
    """
    source_keys = SourceSettings.get_resolvable_fields()
    warn_unknown_keys(settings.SECTIONS, source_keys, {settings.ACCOUNTS_KEY})
    source = resolve(SourceSettings(), settings.SECTIONS, explicit=explicit)
    resources = catalog.choose(source.resources, f"{SECTION}.resources")
    names = configured_account_names()
    if not names:
        single = build_account(
            check_name(source.account, "account"),
            source,
            {key: source[key] for key in CREDENTIAL_KEYS},
            named=False,
        )
        return SourceConfiguration(source, [single], False, resources)
    accounts = []
    account_keys = [*AccountSettings.get_resolvable_fields(), *CREDENTIAL_KEYS]
    for name in names:
        sections = (*SECTIONS, name)
        warn_unknown_keys(sections, account_keys, ())
        own = resolve(AccountSettings(), sections)
        refuse_secrets_in_config(sections, SourceSettings)
        # Read at the account's section exactly: credentials are never shared.
        credentials: dict[str, Any] = {
            key: dlt.secrets.get(".".join((*sections, key))) for key in ("api_key", "password")
        }
        credentials["email"] = dlt.config.get(".".join((*sections, "email")))
        accounts.append(build_account(name, own, credentials, named=True))
    return SourceConfiguration(source, accounts, True, resources)
