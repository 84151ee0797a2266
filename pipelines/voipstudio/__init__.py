"""A dlt source for VoIPstudio: call detail records and the rest of the call history
(incremental), users and queues.

Example:
    >>> import dlt
    >>> from pipelines.voipstudio import voipstudio_source
    >>> pipeline = dlt.pipeline("voipstudio", destination="duckdb", dataset_name="voipstudio")
    >>> pipeline.run(voipstudio_source())
    >>> pipeline.run(voipstudio_source().with_resources("cdrs", "voicemessages"))

Configuration comes from ``.dlt/config.toml`` / ``.dlt/secrets.toml`` section
``[sources.voipstudio]`` or the matching ``SOURCES__VOIPSTUDIO__*`` environment variables
(every key: ``settings.SourceSettings``). What the source reads is declared in ``catalog``, one
declaration per collection; how one run reads (the range, resuming, the cursor ceiling) is a
:class:`~pipelines.voipstudio.plan.RunPlan`, which ``voipstudio sync`` builds.

Modules: ``catalog`` (the collections), ``collection`` (how one is declared), ``settings``
(constants and typed settings), ``accounts`` (the accounts, their settings checked), ``plan``
(a run's range), ``state`` (a resource's state), ``reader`` (one account's resources read),
``windows`` (the windowed reader and its completion rule), ``records`` (pages to typed Arrow,
rejects), ``wallclock`` (dates across DST changes), ``jsontext`` (lenient JSON), ``client``
(HTTP), ``check`` (``voipstudio check``), ``progress``, ``errors``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import dlt
from dlt.common.typing import TSecretStrValue
from dlt.extract.resource import DltResource

from pipelines.voipstudio import catalog, settings
from pipelines.voipstudio.accounts import (
    Account,
    load_source_configuration,
    parse_duration,
    parse_start,
)
from pipelines.voipstudio.collection import Collection, DatedCollection, Dimension
from pipelines.voipstudio.memberships import with_history
from pipelines.voipstudio.plan import RunPlan
from pipelines.voipstudio.reader import AccountReader, add_account_column
from pipelines.voipstudio.rereads import without_unchanged
from pipelines.voipstudio.state import ResourceState

__all__ = [
    "ACCOUNT_COLUMN",
    "DELETED_AT_COLUMN",
    "RunPlan",
    "add_account_column",
    "configured_accounts",
    "parse_duration",
    "parse_start",
    "voipstudio_source",
]

ACCOUNT_COLUMN = settings.ACCOUNT_COLUMN
DELETED_AT_COLUMN = settings.DELETED_AT_COLUMN


@dlt.source(name=settings.SOURCE_NAME)
def voipstudio_source(
    api_key: TSecretStrValue | None = None,
    email: str | None = None,
    password: TSecretStrValue | None = None,
    base_url: str | None = None,
    start_date: str | None = None,
    plan: RunPlan | None = None,
) -> Sequence[DltResource]:
    """The VoIPstudio source: one account, or every account of ``[sources.voipstudio.accounts]``.

    One resource per collection of ``catalog`` and account: with one account they are named
    after the collections (``cdrs``, ``users``, ``queues``, ``voicemessages``, ...); with named
    accounts each account has its own (``cdrs_<name>``, ...: its own cursor and state), loading
    into the same tables. Every row carries its account's name in ``account``, and the keys are
    ``(account, id)``: ids are only unique within an account. The collections of the
    ``resources`` setting are selected (``cdrs,users,queues`` unless configured); choose others
    with ``.with_resources(...)``.

    Every argument not given comes from the configuration (``settings.SourceSettings``); the
    arguments are the single account's, named accounts are configured in their own sections.

    Args:
        api_key: an API key (``X-Auth-Token``); preferred over email and password.
        email: login email, used when there is no API key.
        password: login password.
        base_url: the API's base URL.
        start_date: where the first sync starts (``YYYY-MM-DD[ HH:MM:SS]``, in ``timezone``).
        plan: what the run reads (default: incrementally from each cursor up to now).

    Returns:
        The resources of every account.

    Raises:
        ConfigError: a missing or invalid setting, naming the key.
    """
    configured = load_source_configuration(
        {
            "api_key": api_key,
            "email": email,
            "password": password,
            "base_url": base_url,
            "start_date": start_date,
        }
    )
    plan = plan or RunPlan()
    resources: list[DltResource] = []
    for account in configured.accounts:
        reader = AccountReader(account, plan, named=configured.named)
        for collection in catalog.COLLECTIONS:
            selected = collection in configured.resources
            resources.append(_resource(reader, collection, selected))
    return resources


def configured_accounts() -> list[Account]:
    """The accounts ``voipstudio_source`` reads, with their settings, for commands that talk to
    the API outside a dlt run (``voipstudio check``, ``voipstudio reconcile``).

    Raises:
        ConfigError: a missing or invalid setting, naming the key.
    """
    return load_source_configuration().accounts


def _resource(reader: AccountReader, collection: Collection, selected: bool) -> DltResource:
    """The dlt resource of one collection of one account."""
    name = collection.resource_name(reader.account.name if reader.named else None)
    if isinstance(collection, DatedCollection):
        dated = collection

        # Rows of one load are made unique on the primary key (``reader.unique_rows``).
        @dlt.resource(
            name=name, parallelized=reader.named, selected=selected, **dated.table_hints()
        )
        def records() -> Iterator[Any]:
            """A dated collection, read window by window and merged on ``(account, id)``; rows
            read again exactly as the destination holds them are left out (``rereads``)."""
            plan, stored = reader.plan, reader.plan.stored or {}
            yield from reader.guarded(
                lambda state: without_unchanged(
                    reader.read_dated(dated, name, state),
                    stored.get((dated.name, reader.account.name)),
                    dated.name,
                    plan.key,
                ),
                ResourceState.current(),
                dated,
                name,
            )

        return records
    assert isinstance(collection, Dimension)
    dimension = collection

    @dlt.resource(name=name, selected=selected, **dimension.table_hints())
    def dimension_records() -> Iterator[Any]:
        """A dimension, read in full every run, loaded when it changed (with its history, if
        it keeps one: inside the comparison, so that a read not loaded hands the history
        nothing, and an unchanged read never retires a membership)."""
        yield from reader.guarded(
            lambda state: reader.when_changed(
                with_history(
                    reader.read_dimension(dimension, name), dimension.history, reader.account.name
                ),
                dimension,
                name,
                state,
            ),
            ResourceState.current(),
            dimension,
            name,
        )

    return dimension_records
