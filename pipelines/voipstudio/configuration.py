"""Typed settings, resolved the way dlt does, with errors a person can act on.

Every section of this project's configuration is a dlt ``@configspec`` whose fields are the
keys, with their types and defaults written once: ``[sources.voipstudio]`` and its accounts
(``pipelines.voipstudio.settings``), ``[pipelines.voipstudio]``
(``pipelines.pipeline_settings``), ``[models]``, ``[publish]`` and ``[reconcile]`` (each in its
own package). This module
resolves one (:func:`resolve`) from ``.dlt/*.toml`` and the environment, as dlt does for a
source, and turns what can go wrong into one line that names the key, the value and the fix:

- a value of the wrong type (``page_size = "abc"``: dlt's ``ConfigValueCannotBeCoerced``);
- a secret written into ``config.toml``, which is committed to git: refused, and said where it
  belongs (``.dlt/secrets.toml`` or the environment);
- keys no spec knows (``page_sise``, ``lagg``) are warned about once, with the closest known
  key, instead of being silently ignored (:func:`warn_unknown_keys`).
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import dlt
from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.exceptions import (
    ConfigValueCannotBeCoercedException,
    ValueNotSecretException,
)
from dlt.common.configuration.providers import ConfigProvider, EnvironProvider
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.configuration.specs.base_configuration import is_secret_hint
from dlt.common.typing import AnyType

from pipelines.voipstudio.errors import ConfigError

log = logging.getLogger(__name__)

SpecT = TypeVar("SpecT", bound=BaseConfiguration)

SECRETS_FILE = ".dlt/secrets.toml"


def env_var(sections: Sequence[str], key: str) -> str:
    """The environment variable of a key (``("sources", "voipstudio")``, ``lag`` ->
    ``SOURCES__VOIPSTUDIO__LAG``)."""
    return "__".join((*sections, key)).upper()


def describe(sections: Sequence[str], key: str) -> str:
    """How messages name a key: ``[sources.voipstudio] lag (SOURCES__VOIPSTUDIO__LAG)``."""
    return f"[{'.'.join(sections)}] {key} ({env_var(sections, key)})"


def resolve(
    spec: SpecT, sections: tuple[str, ...], *, explicit: Mapping[str, Any] | None = None
) -> SpecT:
    """Resolve ``spec`` in ``sections`` as dlt does (explicit values first, then the
    environment, ``secrets.toml``, ``config.toml``, each looked up in ``sections`` and then in
    the enclosing ones; a key found nowhere keeps the spec's value).

    Args:
        spec: an instance of the spec; its values are the defaults.
        sections: where its keys live, e.g. ``("sources", "voipstudio")``.
        explicit: values given in code (None values are ignored).

    Raises:
        ConfigError: a value of the wrong type, or a secret in ``config.toml``; the message
            names the key, the value and where it was set.
    """
    given = {key: value for key, value in (explicit or {}).items() if value is not None}
    refuse_secrets_in_config(sections, type(spec))
    try:
        return resolve_configuration(spec, sections=sections, explicit_value=given)
    except ConfigValueCannotBeCoercedException as error:
        raise ConfigError(
            not_coercible(sections, error.field_name, error.field_value, error.hint, spec)
        ) from None
    except ValueNotSecretException as error:
        raise ConfigError(secret_in_config(tuple(error.key.split(".")))) from None


_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def not_coercible(
    sections: Sequence[str], key: str, value: Any, hint: Any, spec: BaseConfiguration
) -> str:
    """The message for a value that is not of its key's type: the key (and its environment
    variable), the value, where it was set, and what to write instead."""
    kind = _KINDS.get(hint, f"of type {getattr(hint, '__name__', hint)}")
    default = getattr(type(spec), key, None)
    where = origin(sections, key)
    example = f", e.g. {key} = {_toml(default)} (the default)" if default is not None else ""
    return (
        f"{describe(sections, key)} = {_toml(value)} is not {kind}"
        f"{f' {where}' if where else ''}: write {kind}{example}"
    )


def secret_in_config(path: Sequence[str]) -> str:
    """The message for a secret found in ``config.toml`` (``path``: sections and the key)."""
    *sections, key = path
    return (
        f"{key} is a secret but is set in .dlt/config.toml [{'.'.join(sections)}], which is "
        f"committed to git: move it to {SECRETS_FILE} (git-ignored), same section, or set "
        f"the environment variable {env_var(sections, key)}; nothing was read"
    )


def refuse_secrets_in_config(sections: Sequence[str], spec: type[BaseConfiguration]) -> None:
    """Refuse a secret field of ``spec`` written into a file that cannot hold secrets
    (``config.toml``), at ``sections`` exactly (dlt would refuse it too, with a message that
    does not say where it belongs; dlt's secret lookups of a single key skip it silently).

    Raises:
        ConfigError: one is there, naming it (never its value).
    """
    secrets = [key for key, hint in spec.get_resolvable_fields().items() if is_secret_hint(hint)]
    for provider in _providers():
        if provider.supports_secrets:
            continue
        for key in secrets:
            value, _ = provider.get_value(key, AnyType, None, *sections)
            if value is not None:
                raise ConfigError(secret_in_config((*sections, key)))


def origin(sections: Sequence[str], key: str) -> str:
    """Where a key's value was found, for messages: ``(environment variable X)``, ``(in
    ./.dlt/config.toml)``; empty when it cannot be told."""
    for provider in _providers():
        for path in _lookup_paths(sections):
            value, name = provider.get_value(key, AnyType, None, *path)
            if value is None:
                continue
            if isinstance(provider, EnvironProvider):
                return f"(environment variable {name})"
            locations = list(provider.present_locations) or [provider.name]
            return f"(in {locations[0]})"
    return ""


def _lookup_paths(sections: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """The sections dlt looks a key up in, most specific first."""
    path = tuple(sections)
    while True:
        yield path
        if not path:
            return
        path = path[:-1]


def _providers() -> list[ConfigProvider]:
    return list(dlt.config.config_providers)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


# -- keys no spec knows ------------------------------------------------------------------------

_warned: set[tuple[str, ...]] = set()


def section_keys(sections: Sequence[str]) -> dict[str, tuple[str, bool]]:
    """The keys set directly in ``sections``, in every provider: key -> (where, is a table).

    Environment variables count as keys of the section they spell
    (``SOURCES__VOIPSTUDIO__PAGE_SISE`` is ``page_sise`` of ``[sources.voipstudio]``; one with
    more parts, a key of a sub-section, counts as that sub-section).
    """
    found: dict[str, tuple[str, bool]] = {}
    prefix = env_var(sections, "")
    for provider in _providers():
        if isinstance(provider, EnvironProvider):
            for variable in os.environ:
                if variable.startswith(prefix) and len(variable) > len(prefix):
                    rest = variable[len(prefix) :]
                    key, _, nested = rest.partition("__")
                    found.setdefault(
                        key.lower(), (f"environment variable {variable}", bool(nested))
                    )
            continue
        if not provider.supports_sections or not sections:
            continue
        table, _ = provider.get_value(sections[-1], AnyType, None, *sections[:-1])
        if not isinstance(table, Mapping):
            continue
        where = (list(provider.present_locations) or [provider.name])[0]
        for key, value in table.items():
            found.setdefault(str(key), (where, isinstance(value, Mapping)))
    return found


def warn_unknown_keys(
    sections: Sequence[str], known: Collection[str], tables: Collection[str] | None = ()
) -> list[str]:
    """Warn, once per process, about each key of ``sections`` that no setting has, naming the
    closest known key (a typo is otherwise silently ignored and the default used).

    Args:
        sections: the section, e.g. ``("sources", "voipstudio")``.
        known: its keys.
        tables: the sub-sections it may hold (``accounts``); None: any (dlt reads sub-sections
            of ``[pipelines.<name>]`` for its own steps).

    Returns:
        The warnings given now (for tests).
    """
    given = []
    for key, (where, is_table) in sorted(section_keys(sections).items()):
        if key in known or (is_table and (tables is None or key in tables)):
            continue
        marker = (*sections, key)
        if marker in _warned:
            continue
        _warned.add(marker)
        choices = [*known, *(tables or ())]
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(sorted(known))}"
        what = "section" if is_table else "key"
        message = f"unknown {what} {key!r} in [{'.'.join(sections)}] ({where}) is ignored: {hint}"
        log.warning("%s", message)
        given.append(message)
    return given
