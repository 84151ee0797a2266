"""Reading the collections of one account in one run into what dlt loads.

:class:`AccountReader` holds what an account's resources share in a run (its client settings,
its failure budget, the run's :class:`~pipelines.voipstudio.plan.RunPlan`) and reads:

- a **dated collection** (:meth:`AccountReader.read_dated`): its range from the plan and the
  resource's state, read window by window by the shared reader (``windows.WindowScanner``),
  each record once per load, the records of an hour a DST change repeats held until the range
  is read (``wallclock``), rejects into ``<table>_rejects``, and the cursor moved past each
  window only once every row of it was handed to dlt;
- a **dimension** (:meth:`AccountReader.read_dimension`): read whole, handed on once it added
  up, and only when it changed (:meth:`AccountReader.when_changed`).

Named accounts keep their failures to themselves: the error is logged and kept in the
resource's state (``error``), the resource ends, and the other accounts load; the run is then
failed by ``run_sync``, naming the account. The single account's errors end the run.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dlt
import orjson
import pyarrow as pa

from pipelines.voipstudio import settings
from pipelines.voipstudio.accounts import Account
from pipelines.voipstudio.client import FailureBudget, VoipstudioClient
from pipelines.voipstudio.collection import Collection, DatedCollection, Dimension
from pipelines.voipstudio.errors import AccessDeniedError, NotFoundError, VoipstudioError
from pipelines.voipstudio.memory import IdSet, release_free_memory
from pipelines.voipstudio.plan import RunPlan
from pipelines.voipstudio.progress import (
    report_finished,
    report_page,
    report_planned,
    report_planning,
)
from pipelines.voipstudio.records import api_time
from pipelines.voipstudio.redaction import redact
from pipelines.voipstudio.state import ResourceState
from pipelines.voipstudio.wallclock import FoldResolver, widen_start
from pipelines.voipstudio.windows import Page, describe_range, read_collection

log = logging.getLogger(__name__)

ACCOUNT_COLUMN = settings.ACCOUNT_COLUMN


def add_account_column(table: pa.Table, account: str) -> pa.Table:
    """``table`` with the account's name as its first column, as every row carries it."""
    field = pa.field(ACCOUNT_COLUMN, pa.string(), nullable=False)
    return table.add_column(0, field, pa.array([account] * table.num_rows, pa.string()))


class AccountReader:
    """What the resources of one account share in one run (see the module docstring).

    Args:
        account: the account.
        plan: what the run reads.
        named: the account is one of several named ones (its failures are kept in its
            resources' state instead of ending the run).
    """

    def __init__(self, account: Account, plan: RunPlan, *, named: bool) -> None:
        self.account = account
        self.plan = plan
        self.named = named
        self.failures = _failure_budget(plan.key, account.name, account.failure_budget)
        # An account's failure is logged once, by the first of its resources to fail: the
        # others usually fail the same way (one refused key fails all), and the run's end
        # names it.
        self._failure_logged = threading.Event()

    def client(self) -> VoipstudioClient:
        """A client of the account sharing the run's failure budget."""
        return self.account.client(self.failures)

    def guarded(
        self,
        read: Callable[[ResourceState], Iterator[Any]],
        state: ResourceState,
        collection: Collection | None = None,
        resource: str | None = None,
    ) -> Iterator[Any]:
        """``read(state)``; a named account's failure is kept in ``state`` and logged once; an
        optional ``collection`` the API refuses (403, 404) is skipped (:meth:`skipping`)."""
        if collection is not None and collection.optional:
            read = functools.partial(self.skipping, read, collection, resource or "")
        state.start_run()
        if not self.named:
            yield from read(state)
            return
        name = self.account.name
        try:
            yield from read(state)
        except VoipstudioError as error:
            if not self._failure_logged.is_set():
                self._failure_logged.set()
                log.error("account '%s' failed: %s", name, error)
            state.fail(str(error), error.exit_code)
        except Exception as error:  # a bug or a dlt error: still only this account's
            if not self._failure_logged.is_set():
                self._failure_logged.set()
                log.exception("account '%s' failed", name)
            state.fail(redact(f"{type(error).__name__}: {error}"), 1)

    def skipping(
        self,
        read: Callable[[ResourceState], Iterator[Any]],
        collection: Collection,
        resource: str,
        state: ResourceState,
    ) -> Iterator[Any]:
        """``read(state)``, or, when the API answers 403 or 404 to the collection (the
        account's plan or the key's permissions do not include it), one warning, the state as
        it was before the run, and the skip noted for the sync's summary (:func:`skipped`).

        Rows handed on before a refusal in the middle of a read (a permission withdrawn during
        the run) are still loaded; the cursor goes back, so they are read again next time and
        merged once."""
        before = state.snapshot()
        try:
            yield from read(state)
        except (AccessDeniedError, NotFoundError) as error:
            state.restore(before)
            with _SKIPPED_LOCK:
                _SKIPPED.setdefault(self.plan.key, {})[resource] = error.status
            log.warning(
                "account '%s': %s skipped: the API answered %d (%s), so the account's plan or "
                "the key's permissions do not include it; nothing of it was changed (take %s "
                "out of the resources setting to stop this warning)",
                self.account.name,
                collection.path,
                error.status,
                "Access denied" if error.status == 403 else "not found",
                collection.name,
            )
            report_finished(resource)

    # -- dated collections -----------------------------------------------------------------------

    def read_dated(
        self, collection: DatedCollection, resource: str, state: ResourceState
    ) -> Iterator[Any]:
        """The records of ``collection`` in the run's range, as Arrow tables with ``account``,
        and its rejects; moves the cursor in ``state`` (see the module docstring)."""
        account, plan = self.account, self.plan
        name = account.name
        start, end = plan.bounds(collection, account, state)
        report_planning(resource)
        if start >= end:
            report_planned(resource, 0)
            report_finished(resource)
            log.info(
                "account '%s': %s: nothing to read, the range %s is empty",
                name,
                collection.path,
                describe_range(start, end),
            )
            if plan.update_cursor:
                state.mark_synced()
            return
        clock = collection.cursor.clock(account.timezone)
        widened = widen_start(start, clock)
        if widened < start:
            log.info(
                "account '%s': %s: the range starts inside a repeated hour of %s; reading from "
                "%s so that its two passes can be told apart",
                name,
                collection.path,
                clock,
                api_time(widened),
            )
            start = widened
        key = collection.primary_key
        rejects = dlt.mark.make_hints(**collection.rejects_hints())
        with self.client() as client:
            scanner = account.scanner(
                client,
                collection,
                on_page=lambda _, rows: report_page(resource, rows),
                on_plan=lambda total: report_planned(resource, total),
            )
            last_end: int | None = None
            loaded_ids = IdSet()
            batch = Batch(settings.YIELD_ROWS)
            # Records of a repeated hour (a DST change) wait until the range has been read.
            folds = FoldResolver(
                clock, name, records=collection.records, key=key, cursor=collection.cursor.path
            )

            def can_stop(wall: int) -> bool:
                # A part never ends inside a repeated hour: the next would start before it.
                return widen_start(wall, clock) == wall

            for event in scanner.scan(start, end, max_rows=plan.max_rows, can_stop=can_stop):
                if isinstance(event, Page):
                    parsed = event.parsed
                    table = folds.take(parsed.table, parsed.fold_rows, parsed.ambiguous)
                    table = unique_rows(table, loaded_ids, key)
                    if table.num_rows:
                        yield from batch.add(add_account_column(table, name))
                    if parsed.rejects:
                        log.warning(
                            "account '%s': %d %s could not be parsed; see table %s",
                            name,
                            len(parsed.rejects),
                            collection.records,
                            collection.rejects_table,
                        )
                        now = datetime.now(UTC)
                        rows = [{ACCOUNT_COLUMN: name, **r.as_row(now)} for r in parsed.rejects]
                        yield dlt.mark.with_hints(rows, rejects, create_table_variant=True)
                else:
                    # Every row of the window is handed to dlt before the cursor passes it.
                    yield from batch.flush()
                    last_end = event.window.end
                    if plan.update_cursor:
                        state.advance(api_time(event.window.end))
            # The held rows are handed on before the resource ends: dlt commits them in the
            # same load as the cursor that passed their windows.
            held = folds.release()
            if held is not None:
                table = unique_rows(held, loaded_ids, key)
                if table.num_rows:
                    yield from batch.add(add_account_column(table, name))
            yield from batch.flush()
        report_finished(resource)
        # The scan's buffers are free now; give them back before dlt loads (see the function).
        release_free_memory()
        # Windows cover the range in order: the last one ends at `end` unless max_rows cut it.
        if last_end is None or last_end >= end:
            if plan.update_cursor:
                state.advance(api_time(end))
                # When the account was last brought up to date (`voipstudio status`).
                state.mark_synced()
        else:
            # Cut by max_rows after the window ending at last_end: the next part resumes there.
            # An incremental run starts below its cursor (the lag, or the newest row loaded), so
            # the window may end before the cursor of the run before: resuming at that cursor
            # would skip what lies between (late rows: lost for good).
            if plan.update_cursor:
                state.resume_at(api_time(last_end))
            state.set_more()

    # -- dimensions --------------------------------------------------------------------------

    def read_dimension(
        self, collection: Dimension, resource: str
    ) -> Iterator[list[dict[str, Any]]]:
        """Every record of ``collection``, with ``account``; pages are handed to dlt only once
        the whole collection added up."""
        name = self.account.name
        report_planning(resource)
        with self.client() as client:
            pages = read_collection(
                client,
                collection.path,
                page_size=collection.page_size(self.account.page_size),
                label=f"account '{name}': {collection.path}",
            )
        report_planned(resource, sum(len(records) for records in pages))
        for records in pages:
            report_page(resource, len(records))
            yield [{ACCOUNT_COLUMN: name, **record} for record in records]
        report_finished(resource)

    def when_changed(
        self, items: Iterable[Any], collection: Dimension, resource: str, state: ResourceState
    ) -> Iterator[Any]:
        """What a dimension's resource hands on (``items``, read whole), handed on only when it
        differs from what its last load handed on, or when the destination does not hold it.

        A dimension is replaced account by account at every load: a staging copy and a merge of
        each of its tables (``queues`` and ``queues__users``), and new load ids on every row,
        which send the models after their changes. Unchanged, it is not loaded at all. What is
        compared is a digest of everything the resource would hand on (the records as loaded,
        any other table's rows and their hints, the collection's table hints), kept in the
        resource's state with the load, so a load that is set aside puts it back; a changed
        record, a record more or less, and a changed declaration all load. And the
        destination's own rows are checked (``RunPlan.held``): a table dropped, emptied or
        never loaded, or another destination, loads again.
        """
        read = list(items)
        digest = content_digest(collection, read)
        records = sum(len(item) for item in read if isinstance(item, list))
        held = (
            None
            if self.plan.held is None
            else self.plan.held.get((collection.name, self.account.name), 0)
        )
        if state.digest == digest and held == records:
            with _SKIPPED_LOCK:
                _UNCHANGED.setdefault(self.plan.key, set()).add(resource)
            log.info(
                "account '%s': %s unchanged since the last load (%d %s): not loaded again",
                self.account.name,
                collection.path,
                records,
                collection.records,
            )
            return
        state.set_digest(digest)
        yield from read


# The resources skipped because the API refused them (403, 404), per run (RunPlan.key):
# resource -> status. Kept out of the resource's state, which a skip leaves untouched.
_SKIPPED: dict[str, dict[str, int]] = {}
_SKIPPED_LOCK = threading.Lock()


def skipped(run: str) -> dict[str, int]:
    """The resources of run ``run`` (``RunPlan.key``) skipped because the API answered 403 or
    404 to them, with the status; forgotten once asked."""
    with _SKIPPED_LOCK:
        return dict(sorted(_SKIPPED.pop(run, {}).items()))


# The dimension resources not loaded because they were read unchanged, per run (RunPlan.key).
_UNCHANGED: dict[str, set[str]] = {}


def unchanged(run: str) -> tuple[str, ...]:
    """The dimension resources of run ``run`` read unchanged and so not loaded again; forgotten
    once asked."""
    with _SKIPPED_LOCK:
        return tuple(sorted(_UNCHANGED.pop(run, set())))


# Bumped when what `content_digest` covers changes: every dimension then loads once more.
DIGEST_VERSION = 1


def content_digest(collection: Dimension, items: Sequence[Any]) -> str:
    """A digest of what a dimension's resource hands on: its records in order, however they
    were paged (a server's page size is not the data), the other items (rows for other tables,
    with their hints) in order, and the collection's table hints."""
    records = [record for item in items if isinstance(item, list) for record in item]
    others = [item for item in items if not isinstance(item, list)]
    body = orjson.dumps(
        [DIGEST_VERSION, collection.table_hints(), records, others],
        default=_plain,
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
    )
    return hashlib.sha256(body).hexdigest()


def _plain(value: Any) -> Any:
    """What orjson cannot write itself (dlt's item wrappers, with ``__slots__``), as data."""
    slots = getattr(type(value), "__slots__", None)
    if isinstance(slots, tuple) and slots:
        return {"type": type(value).__name__, **{name: getattr(value, name) for name in slots}}
    return repr(value)


@functools.lru_cache(maxsize=256)
def _failure_budget(run: str, account: str, seconds: float) -> FailureBudget:
    """The failure budget of one account in one run, shared by its resources and by the parts
    of a run committed in parts."""
    return FailureBudget(seconds)


class Batch:
    """Pages gathered into fewer, larger tables before they are handed to dlt.

    dlt's extract step has a fixed cost per item (schema checks, configuration lookups, a
    buffer flush) that, per 5000-row page, is a large share of a full sync's main-thread time.
    Only tables of one schema are joined (a table of another schema starts a new batch), and
    joining is zero-copy, so dlt receives exactly the same rows and columns.
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.tables: list[pa.Table] = []
        self.rows = 0

    def add(self, table: pa.Table) -> Iterator[pa.Table]:
        """Gather ``table``; yields a batch when it is full or the schema changes."""
        if self.tables and not table.schema.equals(self.tables[0].schema):
            yield from self.flush()
        self.tables.append(table)
        self.rows += table.num_rows
        if self.rows >= self.max_rows:
            yield from self.flush()

    def flush(self) -> Iterator[pa.Table]:
        """Yield what was gathered, if anything."""
        if self.tables:
            tables, self.tables, self.rows = self.tables, [], 0
            yield tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def unique_rows(table: pa.Table, seen: IdSet, key: str = "id") -> pa.Table:
    """Drop rows whose id was already handed on in this load (a window read again, a page of an
    abandoned read arriving late), and record the ids kept.

    A load must not hold one id twice: the merge is told the data is de-duplicated. Ids are
    never null (the primary key's column is not nullable): a record without one is a reject.
    """
    keep_mask = seen.add_page(table.column(key).to_numpy())
    return table if keep_mask is None else table.filter(pa.array(keep_mask))
