"""In-memory, columnar storage of an emulated collection, with filter, sort, group and paging.

Each record is JSON-encoded once, when it is stored; a page is answered by joining the encoded
rows it selects. Filtering and sorting run on numpy columns, and the full sort order of each
property is computed once per snapshot, so a 5000-row page out of a million CDRs costs a few
milliseconds. Storage is kept in ascending ``id`` order.

A :class:`Table` is an immutable snapshot: adding records builds a new one and swaps it in, so a
request being answered while records arrive sees a consistent table.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from pipelines.emulator.bulk import gc_paused
from pipelines.emulator.fields import CollectionSpec, FieldType
from pipelines.emulator.query import (
    FILTERABLE_TYPES,
    Condition,
    KeyScope,
    Query,
    convert_value,
    parse_datetime,
)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
ObjArray = npt.NDArray[np.object_]

NUMERIC_TYPES: frozenset[FieldType] = frozenset({"int", "number", "bool", "datetime", "epoch"})
# Compared element by element with an object column: the column's nulls.
_NONE: ObjArray = np.array(None, dtype=object)


def like_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a SQL LIKE pattern (``%`` any run, ``_`` one character) to a regex."""
    parts = []
    for char in pattern:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _datetime_column(values: Sequence[Any], strict: bool = False) -> FloatArray:
    """Epoch seconds as float64 (exact for any realistic date), NaN for null or unparseable.

    numpy's parser is fast but lenient (``"2026"`` reads as 2026-01-01), so records added by hand
    (``strict``) are parsed one by one with the API's own rules instead.
    """
    out = np.full(len(values), np.nan)
    if not strict:
        try:
            parsed = np.array(values, dtype="datetime64[s]")
            ok = ~np.isnat(parsed)
            out[ok] = parsed[ok].astype(np.int64).astype(np.float64)
            return out
        except (ValueError, TypeError):
            pass
    for index, value in enumerate(values):
        if isinstance(value, str):
            try:
                out[index] = float(parse_datetime(value))
            except ValueError:
                continue
    return out


def _numeric_column(values: Sequence[Any]) -> FloatArray:
    try:
        return np.array(values, dtype=np.float64)
    except (ValueError, TypeError):
        pass
    # Some value is not a number. Index what a numeric SQL column would hold: numbers and
    # numeric text (as numpy's fast path above does for a batch without bad values), and NULL
    # for the rest, so one bad record does not change how the others are indexed.
    out = np.full(len(values), np.nan)
    for index, value in enumerate(values):
        if isinstance(value, (int, float, str)):
            try:
                out[index] = float(value)
            except ValueError:
                continue
    return out


def _object_column(values: Sequence[Any]) -> ObjArray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _text_column(values: Sequence[Any]) -> ObjArray:
    """A text field's index values: a record added by hand may hold a number (or anything else)
    where text is expected; index its JSON text, the form a filter value of another type is
    converted to (``query.convert_value``), so comparisons never mix types."""
    return _object_column(
        [
            value if value is None or isinstance(value, str) else orjson.dumps(value).decode()
            for value in values
        ]
    )


_ENCODE_CHUNK = 8192


def _encode_rows(
    names: list[str], columns: Mapping[str, Sequence[Any]], length: int
) -> list[bytes]:
    """One JSON object per record, keys in ``names`` order.

    ``orjson.dumps`` costs a few microseconds per call whatever the size, so records are encoded
    a chunk at a time as one JSON array and the array is cut at the record boundaries
    ``},{"<first key>":``. Inside a JSON string a quote is always escaped, so such a boundary can
    only be a false one inside a nested value (an object in a list, whose first key is the same);
    then a chunk yields more pieces than records, and that chunk is encoded record by record.
    """
    if length == 0:
        return []
    separator = b"},{" + orjson.dumps(names[0]) + b":"
    lists = [columns[name] for name in names]
    rows: list[bytes] = []
    with gc_paused():
        for start in range(0, length, _ENCODE_CHUNK):
            stop = min(start + _ENCODE_CHUNK, length)
            records = [
                dict(zip(names, values, strict=True))
                for values in zip(*(column[start:stop] for column in lists), strict=True)
            ]
            pieces = orjson.dumps(records)[2:-2].split(separator)
            if len(pieces) != len(records):
                rows.extend(orjson.dumps(record) for record in records)
                continue
            pieces[0] = b"{" + pieces[0] + b"}"
            for index in range(1, len(pieces)):
                pieces[index] = separator[2:] + pieces[index] + b"}"
            rows.extend(pieces)
    return rows


class Table:
    """An immutable snapshot of a collection."""

    def __init__(
        self,
        fields: dict[str, FieldType],
        ids: IntArray,
        columns: dict[str, npt.NDArray[Any]],
        raw: dict[str, ObjArray],
        rows: list[bytes],
    ) -> None:
        self.fields = fields
        self.ids = ids
        # float64 for numeric/datetime types, object for strings; none for arrays (not indexed)
        self.columns = columns
        self.raw = raw  # original values of datetime fields, for LIKE on their text
        self.rows = rows
        self._cache_lock = threading.Lock()
        self._orders: dict[str, IntArray] = {}
        self._notnull: dict[str, BoolArray] = {}
        self._codes: dict[str, IntArray] = {}
        self._owned: dict[KeyScope, BoolArray] = {}

    @classmethod
    def empty(cls, fields: dict[str, FieldType]) -> Table:
        """A table with no records."""
        return cls.from_columns(fields, {name: [] for name in fields}, keys=[])

    @classmethod
    def from_columns(
        cls,
        fields: dict[str, FieldType],
        columns: Mapping[str, Sequence[Any]],
        by_hand: bool = False,
        keys: Sequence[int] | None = None,
    ) -> Table:
        """Build a table from equal-length value lists, one per field (extra keys are kept in
        the encoded records but are not filterable).

        Args:
            fields: the collection's field types.
            columns: the values, one list per key.
            by_hand: the values may have any JSON type (records added through the admin API):
                index them defensively (see ``_text_column``, ``_datetime_column``). The
                generator's columns are clean and take the fast paths.
            keys: the storage keys of records that have no ``id`` (API keys), unique integers
                in the order "newest last"; by default the ``id`` column.
        """
        names = list(columns)
        length = len(keys if keys is not None else columns["id"])
        for name in names:
            if len(columns[name]) != length:
                raise ValueError(f"column {name!r} has {len(columns[name])} values, not {length}")
        rows = _encode_rows(names, columns, length)
        ids = np.array(keys if keys is not None else columns["id"], dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        if len(ids) > 1 and np.any(np.diff(ids[order]) == 0):
            raise ValueError("duplicate ids")
        sorted_needed = bool(np.any(order != np.arange(length)))
        table_columns: dict[str, npt.NDArray[Any]] = {}
        raw: dict[str, ObjArray] = {}
        for name, ftype in fields.items():
            if ftype not in FILTERABLE_TYPES:
                # Arrays (labels) are served, never filtered, sorted or grouped: indexing them
                # would only keep a million small lists alive, each one more object for every
                # full pass of the cyclic GC to scan (~150 ms per pass at a million rows).
                continue
            values = columns.get(name, [None] * length)
            if ftype == "datetime":
                table_columns[name] = _datetime_column(values, strict=by_hand)
                raw[name] = _text_column(values) if by_hand else _object_column(values)
            elif ftype in NUMERIC_TYPES:
                table_columns[name] = _numeric_column(values)
            elif ftype == "str" and by_hand:
                table_columns[name] = _text_column(values)
            else:
                table_columns[name] = _object_column(values)
        if sorted_needed:
            ids = ids[order]
            table_columns = {name: col[order] for name, col in table_columns.items()}
            raw = {name: col[order] for name, col in raw.items()}
            rows = [rows[index] for index in order.tolist()]
        return cls(fields, ids, table_columns, raw, rows)

    @classmethod
    def from_records(
        cls,
        fields: dict[str, FieldType],
        records: Iterable[dict[str, Any]],
        by_hand: bool = False,
        keys: Sequence[int] | None = None,
    ) -> Table:
        """Build a table from record dicts (keys beyond ``fields`` are kept in the JSON).

        Args:
            keys: storage keys for records without ``id`` (see :meth:`from_columns`).

        Raises:
            ValueError: a record is not a dict, or ids are missing, malformed or repeated.
        """
        records = list(records)
        names = list(fields)
        for record in records:
            if not isinstance(record, dict):
                raise ValueError(f"a record must be a JSON object, got {record!r}")
            record_id = record.get("id")
            if keys is None and (not isinstance(record_id, int) or isinstance(record_id, bool)):
                # numpy would truncate 1.5 to 1 or parse "7": the index and the record would
                # disagree about the primary key.
                raise ValueError(f"a record needs an integer 'id', got {record_id!r}")
            names.extend(key for key in record if key not in names)
        columns = {name: [record.get(name) for record in records] for name in names}
        return cls.from_columns(fields, columns, by_hand=by_hand, keys=keys)

    def __len__(self) -> int:
        return len(self.ids)

    def concat(self, other: Table) -> Table:
        """A new snapshot holding this table's records and ``other``'s (ids must not clash)."""
        if len(other) == 0:
            return self
        if len(self) == 0:
            return other
        if np.intersect1d(self.ids, other.ids).size:
            raise ValueError("records with these ids exist already")
        ids = np.concatenate([self.ids, other.ids])
        columns = {n: np.concatenate([c, other.columns[n]]) for n, c in self.columns.items()}
        raw = {n: np.concatenate([c, other.raw[n]]) for n, c in self.raw.items()}
        rows = self.rows + other.rows
        if self.ids[-1] > other.ids[0]:
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            columns = {n: c[order] for n, c in columns.items()}
            raw = {n: c[order] for n, c in raw.items()}
            rows = [rows[index] for index in order.tolist()]
        return Table(self.fields, ids, columns, raw, rows)

    # -- evaluation -------------------------------------------------------------------------

    def position_of(self, record_id: int) -> int | None:
        """Storage position of the record with this id, if any."""
        index = int(np.searchsorted(self.ids, record_id))
        if index < len(self.ids) and int(self.ids[index]) == record_id:
            return index
        return None

    def notnull(self, field: str) -> BoolArray:
        """Mask of records whose ``field`` is not null (cached per snapshot)."""
        with self._cache_lock:
            mask = self._notnull.get(field)
        if mask is None:
            column = self.columns[field]
            mask = ~np.isnan(column) if column.dtype == np.float64 else np.not_equal(column, _NONE)
            with self._cache_lock:
                self._notnull[field] = mask
        return mask

    def order(self, field: str) -> IntArray:
        """Storage positions sorted ascending by ``field``, nulls first, ties by ascending id."""
        if field == "id":
            return self._identity
        with self._cache_lock:
            cached = self._orders.get(field)
        if cached is not None:
            return cached
        column = self.columns[field]
        keys = np.where(np.isnan(column), -np.inf, column) if column.dtype == np.float64 else None
        result = np.argsort(self.codes(field) if keys is None else keys, kind="stable")
        result = result.astype(np.int64)
        with self._cache_lock:
            self._orders[field] = result
        return result

    def codes(self, field: str) -> IntArray:
        """Dense ranks of a text field's distinct values (-1 for null), cached per snapshot."""
        with self._cache_lock:
            cached = self._codes.get(field)
        if cached is not None:
            return cached
        column = self.columns[field]
        present = self.notnull(field)
        codes = np.full(len(column), -1, dtype=np.int64)
        if present.any():
            _, inverse = np.unique(column[present].astype(str), return_inverse=True)
            codes[present] = inverse
        with self._cache_lock:
            self._codes[field] = codes
        return codes

    @cached_property
    def _identity(self) -> IntArray:
        return np.arange(len(self.ids), dtype=np.int64)

    def mask(self, condition: Condition) -> BoolArray:
        """Records matching one condition, with SQL NULL semantics (NULL never matches, except
        ``eq``/``ne`` with a null value, which mean IS NULL / IS NOT NULL)."""
        field, op, value = condition.field, condition.op, condition.value
        column = self.columns[field]
        present = self.notnull(field)
        if value is None:
            return ~present if op == "eq" else present
        if op in ("like", "notlike"):
            regex = like_to_regex(value)
            texts = self._texts(field)
            matched = np.fromiter(
                (text is not None and regex.fullmatch(text) is not None for text in texts),
                dtype=np.bool_,
                count=len(texts),
            )
            return matched if op == "like" else present & ~matched
        if op == "in":
            if column.dtype == np.float64:
                return np.isin(column, np.array(value, dtype=np.float64))
            wanted = set(value)
            return np.fromiter((item in wanted for item in column), np.bool_, count=len(column))
        if column.dtype == np.float64:
            return _compare(column, op, value)
        result = np.zeros(len(column), dtype=np.bool_)
        result[present] = _compare(column[present], op, value)
        return result

    def _texts(self, field: str) -> Sequence[str | None]:
        """The values of ``field`` as the text LIKE matches against."""
        if field in self.raw:
            return self.raw[field].tolist()  # type: ignore[no-any-return]
        column = self.columns[field]
        if column.dtype != np.float64:
            return column.tolist()  # type: ignore[no-any-return]
        ftype = self.fields[field]
        if ftype in ("int", "bool", "epoch"):
            return [None if np.isnan(v) else str(int(v)) for v in column]
        return [None if np.isnan(v) else repr(float(v)) for v in column]

    def visible(self, scope: KeyScope | None) -> BoolArray | None:
        """The records a key with this scope may see (cached per snapshot); None for all.

        A record is visible when one of the scope's ``owners`` fields names the user: a scalar
        field when it equals the id in the field's type (``user_id`` 100001, ``src_id``
        ``"100001"``), a list field (a queue's ``users``) when it holds the id. Or when one of
        its ``number_fields`` holds one of the user's numbers, or its ``shared`` field is true.
        List fields are not indexed, so they are read from the records: keep them to small
        tables.
        """
        if scope is None:
            return None
        with self._cache_lock:
            cached = self._owned.get(scope)
        if cached is not None:
            return cached
        owned = np.zeros(len(self), dtype=np.bool_)
        if not scope.nobody:
            for name in scope.owners:
                ftype = self.fields[name]
                if ftype in FILTERABLE_TYPES:
                    value = convert_value(name, ftype, scope.user_id)
                    owned |= self.mask(Condition(name, "eq", value))
                    continue
                for position in range(len(self)):
                    members = self.record(position).get(name)
                    owned[position] |= isinstance(members, list) and scope.user_id in members
            for name in scope.number_fields:
                owned |= self.mask(Condition(name, "in", scope.numbers))
            if scope.shared is not None:
                owned |= self.mask(Condition(scope.shared, "eq", 1.0))
        with self._cache_lock:
            self._owned[scope] = owned
        return owned

    def select(self, query: Query) -> tuple[IntArray, int]:
        """Positions of the requested page, and the number of records matching overall (of
        those the query's scope may see)."""
        mask = self.visible(query.scope)
        for condition in query.conditions:
            matched = self.mask(condition)
            mask = matched if mask is None else mask & matched
        ordered = self.order(query.sort or "id")
        if mask is not None:
            ordered = ordered[mask[ordered]]
        if query.descending:
            ordered = ordered[::-1]
        if query.group_by is not None:
            ordered = self._first_per_group(ordered, query.group_by)
        total = len(ordered)
        start = (query.page - 1) * query.limit
        return ordered[start : start + query.limit], total

    def _first_per_group(self, ordered: IntArray, field: str) -> IntArray:
        """Keep the first record (in the requested order) of each distinct value of ``field``;
        nulls form one group, as in SQL's GROUP BY."""
        column = self.columns[field]
        keys = column[ordered] if column.dtype == np.float64 else self.codes(field)[ordered]
        _, first = np.unique(keys, return_index=True)
        return ordered[np.sort(first)]

    def encode_page(self, positions: IntArray, extra: bytes = b"") -> bytes:
        """The JSON array of the records at ``positions``; ``extra`` (``,"k":v`` pairs) is
        appended inside each object, which is how a field added by the live API shows."""
        rows = self.rows
        if extra:
            return b"[" + b",".join(rows[p][:-1] + extra + b"}" for p in positions.tolist()) + b"]"
        return b"[" + b",".join([rows[p] for p in positions.tolist()]) + b"]"

    def record(self, position: int) -> dict[str, Any]:
        """The decoded record at a storage position."""
        return orjson.loads(self.rows[position])  # type: ignore[no-any-return]

    def without(self, positions: Sequence[int]) -> Table:
        """A snapshot without the records at these storage positions (index and rows alike)."""
        keep = np.ones(len(self), dtype=np.bool_)
        keep[np.asarray(positions, dtype=np.int64)] = False
        rows = [row for row, kept in zip(self.rows, keep.tolist(), strict=True) if kept]
        columns = {name: column[keep] for name, column in self.columns.items()}
        raw = {name: column[keep] for name, column in self.raw.items()}
        return Table(self.fields, self.ids[keep], columns, raw, rows)

    def with_rows_replaced(self, replacements: dict[int, bytes]) -> Table:
        """A snapshot whose encoded records at some positions are replaced (the index values stay,
        as when a database column holds a value its serializer renders badly)."""
        rows = list(self.rows)
        for position, encoded in replacements.items():
            rows[position] = encoded
        return Table(self.fields, self.ids, self.columns, self.raw, rows)


def _compare(column: npt.NDArray[Any], op: str, value: Any) -> BoolArray:
    if op == "eq":
        result = column == value
    elif op == "ne":
        result = column != value
        if column.dtype == np.float64:
            result &= ~np.isnan(column)
    elif op == "lt":
        result = column < value
    elif op == "lte":
        result = column <= value
    elif op == "gt":
        result = column > value
    elif op == "gte":
        result = column >= value
    else:  # pragma: no cover - parse_query only produces the operators above
        raise ValueError(op)
    return np.asarray(result, dtype=np.bool_)


class Collection:
    """A named, mutable collection: the current :class:`Table` plus live-change state."""

    def __init__(self, name: str, spec: CollectionSpec, table: Table) -> None:
        self.name = name
        self.spec = spec
        self.fields = spec.fields
        self.table = table
        self.extra_fields: dict[str, Any] = {}
        # Attributes of the link between a record and a record it includes, by their two ids:
        # a queue agent's ``status`` ((queue id, user id) -> {"status": True}).
        self.link_attributes: dict[tuple[int, int], dict[str, Any]] = {}
        # Keys beyond ``fields`` that some stored records carry (records added or patched by
        # hand): an extra field of the same name would make such a record repeat a key.
        self.record_keys: set[str] = set()
        self._lock = threading.Lock()

    @property
    def extra_json(self) -> bytes:
        """Encoded ``,"name":value`` pairs of the fields added at run time."""
        if not self.extra_fields:
            return b""
        return b"," + orjson.dumps(self.extra_fields)[1:-1]

    def append(self, table: Table) -> None:
        """Add records (ids must be new)."""
        with self._lock:
            self.table = self.table.concat(table)

    # -- stored-data changes (admin routes /cdrs/update and /cdrs/delete) ---------------------

    def update_records(self, updates: dict[int, dict[str, Any]]) -> list[int]:
        """Change stored values of records: served, filtered, sorted and counted with the new
        values (a corrected record, as the live API would store it). Ids cannot change.

        Returns:
            The ids that were not found.

        Raises:
            ValueError: a change of ``id``, or a value the table cannot index.
        """
        if any("id" in changes for changes in updates.values()):
            raise ValueError("the id of a stored record cannot change (delete it and add another)")
        with self._lock:
            table = self.table
            positions: list[int] = []
            records: list[dict[str, Any]] = []
            missing: list[int] = []
            for record_id, changes in updates.items():
                position = table.position_of(record_id)
                if position is None:
                    missing.append(record_id)
                    continue
                positions.append(position)
                records.append(table.record(position) | changes)
            if records:
                changed = Table.from_records(self.fields, records, by_hand=True)
                self.table = table.without(positions).concat(changed)
        return missing

    def delete_records(self, ids: Iterable[int]) -> list[int]:
        """Remove records: the API no longer returns them, anywhere.

        Returns:
            The ids that were not found.
        """
        with self._lock:
            table = self.table
            positions: list[int] = []
            missing: list[int] = []
            for record_id in dict.fromkeys(ids):
                position = table.position_of(record_id)
                if position is None:
                    missing.append(record_id)
                else:
                    positions.append(position)
            if positions:
                self.table = table.without(positions)
        return missing

    # -- end of stored-data changes ------------------------------------------------------------

    def replace_records(self, updates: dict[int, dict[str, Any]]) -> list[int]:
        """Overwrite fields of stored records as served (the index keeps the old values).

        Returns:
            The ids that were not found.
        """
        with self._lock:
            table = self.table
            replacements: dict[int, bytes] = {}
            missing: list[int] = []
            for record_id, changes in updates.items():
                position = table.position_of(record_id)
                if position is None:
                    missing.append(record_id)
                    continue
                record = table.record(position)
                record.update(changes)
                replacements[position] = orjson.dumps(record)
            self.table = table.with_rows_replaced(replacements)
        return missing
