"""How a collection of the API is declared: the one place that says what the source reads.

A **dated collection** (``/cdrs``, ``/voicemessages``, ...) is read incrementally on a date
field, window by window, by the shared reader (``windows``): both bounds on every request, an
explicit sort on the primary key, the completion rule, the lag, the cursor ceiling, commits in
parts, rejects and the merge on ``(account, id)``. Its declaration is everything the reader,
the record parser and the load need to know (see ``catalog`` for the declarations and
``docs/collections.md`` for adding one):

- ``path`` and ``primary_key`` (also the sort key: ids grow as records are written);
- ``cursor``: the date field and how the API writes it (:class:`Cursor`: wall-clock text in
  the account's time zone, or Unix seconds), dlt's ``cursor_path``;
- ``columns``: the declared fields and their types (:data:`DataType`); every other field the
  API sends goes, as one JSON object, into the text column ``extra_fields``;
- ``page_cap``: the most records one page of it may be asked for;
- ``written_after``: a field saying how long after the cursor's instant a record is written
  (a CDR's ``duration``: it is written when the call ends), the evidence that places records
  of an hour a DST change repeats (``wallclock``).

A **dimension** (``/users``, ``/queues``) is small: it is read whole every run and replaced
account by account. The API gives its current state only; a list field whose past matters (a
queue's members) declares a :class:`MemberHistory`: every sync adds the versions it observed
to a table of its own, which no sync replaces.

The vocabulary follows dlt's: ``cursor_path``, ``primary_key``, a table's hints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

from pipelines.voipstudio.settings import (
    ACCOUNT_COLUMN,
    DELETED_AT_COLUMN,
    EXTRA_FIELDS_COLUMN,
    MAX_PAGE_SIZE,
)

# The types a declared column may have (dlt's data type names, plus one of ours):
#   bigint, double, text, bool: as dlt has them (a text column keeps any value: numbers as
#       their digits, objects as JSON);
#   timestamp: the cursor's column only, a UTC instant (converted from the API's format);
#   text_list: a list of texts (a CDR's ``labels``), stored as its JSON text; a lone text is a
#       list of one, an empty text an empty list.
DataType = Literal["bigint", "double", "text", "bool", "timestamp", "text_list"]
DATA_TYPES: tuple[DataType, ...] = ("bigint", "double", "text", "bool", "timestamp", "text_list")

CursorFormat = Literal["wall_clock", "epoch"]
WALL_CLOCK: CursorFormat = "wall_clock"
EPOCH: CursorFormat = "epoch"
UTC_ZONE = "UTC"


@dataclass(frozen=True)
class Cursor:
    """The date field a dated collection is read by, and how the API writes it.

    The reader counts in whole seconds of one clock, the cursor's: the account's wall clock
    for ``wall_clock`` text (``"YYYY-MM-DD HH:MM:SS"``, no offset, in the account's
    ``timezone``; the API compares such texts as written), the UTC clock for ``epoch``
    integers (Unix seconds). Stored cursors are texts of that clock (``"YYYY-MM-DD
    HH:MM:SS"``), whichever the format.

    Attributes:
        path: the field's name (dlt's ``cursor_path``).
        format: ``wall_clock`` or ``epoch``.
    """

    path: str
    format: CursorFormat = WALL_CLOCK

    def clock(self, timezone: str) -> str:
        """The zone whose wall clock the cursor's seconds count, for an account in
        ``timezone``."""
        return timezone if self.format == WALL_CLOCK else UTC_ZONE

    @property
    def raw_column(self) -> str | None:
        """The column keeping the API's text as sent (wall-clock text only: an epoch integer
        is its instant exactly)."""
        return f"{self.path}_raw" if self.format == WALL_CLOCK else None

    def filter_value(self, text: str, seconds: int) -> str | int:
        """A bound as the API's filter takes it: the clock's text, or Unix seconds."""
        return text if self.format == WALL_CLOCK else seconds

    @property
    def expected(self) -> str:
        """How reject reasons name the format."""
        if self.format == WALL_CLOCK:
            return "'YYYY-MM-DD HH:MM:SS' expected"
        return "Unix seconds expected"


@dataclass(frozen=True, eq=False, kw_only=True)
class Collection:
    """What every collection declares.

    Attributes:
        name: the resource's and the table's name (an account's resource is
            ``<name>_<account>``).
        path: the API's route, e.g. ``/cdrs``.
        records: how messages count its records (``CDRs``, ``voicemails``).
        record: one of them (``CDR``).
        primary_key: the field that identifies a record within an account; pages are sorted
            on it.
        page_cap: the most records one page may be asked for (``page_size`` is cut to it).
        optional: an account's plan or a key's permissions may not allow it: an answer 403
            or 404 to it skips the collection for that account with one warning, its state
            untouched, instead of failing the sync. The core collections (``cdrs``, ``users``,
            ``queues``) are not optional: a 403 there is a key that cannot sync at all, a 404
            a wrong ``base_url``.
    """

    name: str
    path: str
    records: str
    record: str
    primary_key: str = "id"
    page_cap: int = MAX_PAGE_SIZE
    optional: bool = False

    def resource_name(self, account: str | None) -> str:
        """The resource of this collection of a named account, or of the single account
        (``account`` None)."""
        return self.name if account is None else f"{self.name}_{account}"

    def page_size(self, configured: int) -> int:
        """The ``limit`` asked for: the configured page size, at most the cap."""
        return min(configured, self.page_cap)


@dataclass(frozen=True, kw_only=True)
class MemberHistory:
    """A list field of a dimension kept as it was observed by each sync (``pipelines/voipstudio
    /memberships.py``): one row per record and member of the list, in ``table``, versioned by
    dlt's ``scd2`` merge (``_dlt_valid_from`` / ``_dlt_valid_to``: the syncs that first saw the
    membership and first saw it gone).

    Attributes:
        table: the history table (``queue_memberships``).
        field: the record's list of member ids (``users``).
        owner_key: the column of the record's id (``queue_id``).
        member_key: the column of the member's id (``user_id``).
    """

    table: str
    field: str
    owner_key: str
    member_key: str


@dataclass(frozen=True, eq=False, kw_only=True)
class Dimension(Collection):
    """A small collection read whole every run, replaced account by account: the merge key
    ``account`` deletes the account's rows before its new ones go in and leaves other
    accounts' rows alone (a plain replace would empty the table of an account that failed).

    Attributes:
        history: a list field whose membership every sync keeps as observed, or None.
    """

    history: MemberHistory | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables its resources load: its own, and its history's."""
        return (self.name,) if self.history is None else (self.name, self.history.table)

    def table_hints(self) -> dict[str, Any]:
        """The dlt hints of its resources."""
        return {
            "table_name": self.name,
            "write_disposition": {"disposition": "merge", "strategy": "delete-insert"},
            "primary_key": (ACCOUNT_COLUMN, self.primary_key),
            "merge_key": ACCOUNT_COLUMN,
            "columns": {ACCOUNT_COLUMN: {"data_type": "text", "nullable": False}},
        }


@dataclass(frozen=True, eq=False, kw_only=True)
class DatedCollection(Collection):
    """A collection read incrementally on its :class:`Cursor` (see the module docstring).

    Attributes:
        cursor: the date field.
        columns: the declared fields, in table order, with their :data:`DataType`; the
            cursor's is ``timestamp``. The table adds ``account`` first, the cursor's raw text
            (``<cursor>_raw``, wall-clock text only) after the cursor, ``extra_fields`` last,
            and ``deleted_at``.
        written_after: a ``bigint`` field: seconds after the cursor's instant the record is
            written (a CDR's ``duration``); None: records are written at their instant.
    """

    cursor: Cursor
    columns: Mapping[str, DataType]
    written_after: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))
        problems = []
        for name, data_type in self.columns.items():
            if data_type not in DATA_TYPES:
                problems.append(f"column {name} has unknown type {data_type!r}")
            elif data_type == "timestamp" and name != self.cursor.path:
                problems.append(f"column {name}: only the cursor is a timestamp")
        if self.columns.get(self.cursor.path) != "timestamp":
            problems.append(f"the cursor {self.cursor.path} must be a timestamp column")
        if self.columns.get(self.primary_key) != "bigint":
            problems.append(f"the primary key {self.primary_key} must be a bigint column")
        if self.written_after is not None and self.columns.get(self.written_after) != "bigint":
            problems.append(f"written_after {self.written_after} must be a bigint column")
        own = {ACCOUNT_COLUMN, DELETED_AT_COLUMN, EXTRA_FIELDS_COLUMN, self.cursor.raw_column}
        problems.extend(f"column {name} is the pipeline's own" for name in own & set(self.columns))
        if problems:
            raise ValueError(f"collection {self.name}: {'; '.join(problems)}")

    @property
    def rejects_table(self) -> str:
        """Where its records that cannot be typed go: ``<name>_rejects``."""
        return f"{self.name}_rejects"

    @cached_property
    def api_fields(self) -> tuple[str, ...]:
        """The fields the API sends that have a column of their own."""
        return tuple(self.columns)

    def table_hints(self) -> dict[str, Any]:
        """How every resource that loads its table declares it (the sync's and reconcile's).

        Merged on ``(account, id)``, told the rows of a load are unique on that key: that
        spares the destination dlt's de-duplicating window query over the whole load, which in
        DuckDB doubles the memory and the time of a first sync. ``deleted_at`` is declared here
        so that the column exists from the first sync on (the models filter on it), null until
        ``voipstudio reconcile`` marks a record the API no longer returns; a row the API
        returns again is merged without it, which unmarks it.
        """
        return {
            "table_name": self.name,
            "write_disposition": {
                "disposition": "merge",
                "strategy": "delete-insert",
                "deduplicated": True,
            },
            "primary_key": (ACCOUNT_COLUMN, self.primary_key),
            "columns": {
                ACCOUNT_COLUMN: {"data_type": "text", "nullable": False},
                DELETED_AT_COLUMN: {"data_type": "timestamp", "timezone": True, "nullable": True},
            },
        }

    def rejects_hints(self) -> dict[str, Any]:
        """How its rejects are written: merged into ``<name>_rejects`` on ``(account,
        record_hash)``, so that a record read again is stored once."""
        return {
            "table_name": self.rejects_table,
            "write_disposition": "merge",
            "primary_key": (ACCOUNT_COLUMN, "record_hash"),
        }
