"""Property-based check of /cdrs filtering, sorting, grouping and paging.

Random queries go to the emulator over HTTP, and the same queries are answered independently by
DuckDB over the full dataset (the admin dump), translated to SQL here:

- SQL NULL semantics: a null matches no comparison, LIKE or IN; ``eq``/``ne`` with a JSON null
  mean IS NULL / IS NOT NULL (the emulator's documented choice);
- a filter value is compared with the field's type (``"100001"`` equals an int field's 100001, an
  int value of a text field is compared as its text; a bare date is midnight);
- LIKE matches the value's text (``%`` any run, ``_`` one character, case-sensitive, no escape),
  and a pattern without ``%`` matches as a substring (as if wrapped in ``%...%``);
- ORDER BY the sort field, ASC with NULLs first and DESC with NULLs last (as MySQL), ties by id
  in the same direction; no sort means id DESC;
- ``group_by`` keeps the first row of each group in that order (NULLs form one group).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.emulator.fields import CDR_FIELDS
from pipelines.emulator.server import EmulatorServer

from ._support import all_cdrs

Record = dict[str, Any]
Condition = tuple[str, str, Any]

FILTER_FIELDS = sorted(name for name, ftype in CDR_FIELDS.items() if ftype != "array")
OPERATORS = {
    "eq": "eq",
    "=": "eq",
    "ne": "ne",
    "neq": "ne",
    "<>": "ne",
    "!=": "ne",
    "lt": "lt",
    "<": "lt",
    "lte": "lte",
    "<=": "lte",
    "gt": "gt",
    ">": "gt",
    "gte": "gte",
    ">=": "gte",
    "in": "in",
    "like": "like",
    "notlike": "notlike",
}
SQL_OPERATORS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
ARROW_TYPES = {
    "int": pa.int64(),
    "number": pa.float64(),
    "str": pa.string(),
    "datetime": pa.string(),
}
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Reference:
    """The dataset in DuckDB, and the SQL answer to a /cdrs query."""

    def __init__(self, records: list[Record]) -> None:
        self.connection = duckdb.connect()
        schema = pa.schema([(name, ARROW_TYPES[CDR_FIELDS[name]]) for name in FILTER_FIELDS])
        table = pa.Table.from_pylist(
            [{name: record[name] for name in FILTER_FIELDS} for record in records], schema=schema
        )
        self.connection.register("raw_cdrs", table)
        # calldate is kept as its text (for LIKE) and as a TIMESTAMP (for comparisons and sort).
        self.connection.execute(
            "CREATE TABLE cdrs AS SELECT *, CAST(calldate AS TIMESTAMP) AS calldate_ts "
            "FROM raw_cdrs"
        )
        self.connection.unregister("raw_cdrs")

    @staticmethod
    def _column(field: str) -> str:
        return "calldate_ts" if CDR_FIELDS[field] == "datetime" else f'"{field}"'

    @staticmethod
    def _value(field: str, value: Any) -> tuple[str, Any]:
        """A placeholder and its parameter, in the field's type."""
        ftype = CDR_FIELDS[field]
        if ftype in ("int", "number"):
            return "CAST(? AS DOUBLE)", float(value)
        if ftype == "datetime":
            return "CAST(? AS TIMESTAMP)", value
        return "?", value if isinstance(value, str) else json.dumps(value)

    def where(self, conditions: list[Condition]) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for field, spelling, value in conditions:
            op = OPERATORS[spelling.lower()]
            column = self._column(field)
            if op in ("like", "notlike"):
                # LIKE matches the value's text as served (calldate's text column).
                text = f'CAST("{field}" AS VARCHAR)'
                clauses.append(f"{text} {'LIKE' if op == 'like' else 'NOT LIKE'} ?")
                pattern = str(value)
                params.append(pattern if "%" in pattern else f"%{pattern}%")
            elif op == "in":
                items = [self._value(field, item) for item in value if item is not None]
                if not items:
                    clauses.append("FALSE")
                    continue
                clauses.append(f"{column} IN ({', '.join(p for p, _ in items)})")
                params.extend(v for _, v in items)
            elif value is None:
                clauses.append(f"{column} IS {'NULL' if op == 'eq' else 'NOT NULL'}")
            else:
                placeholder, parameter = self._value(field, value)
                clauses.append(f"{column} {SQL_OPERATORS[op]} {placeholder}")
                params.append(parameter)
        return (" AND ".join(clauses) or "TRUE"), params

    def answer(
        self,
        conditions: list[Condition],
        sort: str | None,
        direction: str | None,
        page: int,
        limit: int,
        group_by: str | None = None,
    ) -> tuple[list[int], int]:
        """The ids of the page and the total, as the emulator should answer."""
        field = sort or "id"
        descending = (direction or ("ASC" if sort else "DESC")).upper() == "DESC"
        if descending:
            order = f"{self._column(field)} DESC NULLS LAST, id DESC"
        else:
            order = f"{self._column(field)} ASC NULLS FIRST, id ASC"
        where, params = self.where(conditions)
        matched = f"SELECT * FROM cdrs WHERE {where}"
        if group_by is not None:
            matched = (
                f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER "
                f'(PARTITION BY "{group_by}" ORDER BY {order}) AS group_row FROM ({matched})) '
                f"WHERE group_row = 1"
            )
        total = self.connection.execute(f"SELECT COUNT(*) FROM ({matched})", params).fetchone()
        assert total is not None
        rows = self.connection.execute(
            f"SELECT id FROM ({matched}) ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, limit, (page - 1) * limit],
        ).fetchall()
        return [row[0] for row in rows], int(total[0])


@pytest.fixture(scope="module")
def dataset(emulator: EmulatorServer) -> list[Record]:
    return all_cdrs(emulator)


@pytest.fixture(scope="module")
def reference(dataset: list[Record]) -> Iterator[Reference]:
    ref = Reference(dataset)
    yield ref
    ref.connection.close()


@pytest.fixture(scope="module")
def client(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.base_url,
        headers={"X-Auth-Token": emulator.emulator.config.api_key},
        timeout=30,
    ) as http:
        yield http


# -- strategies: values drawn from the data, so filters match something ------------------------


@dataclass(frozen=True)
class Pools:
    """The distinct non-null values of each field, and the fields to draw from: those holding
    nulls are drawn more often, since most SQL-semantics mistakes only show on nulls."""

    values: dict[str, list[Any]]
    fields: list[str]

    @classmethod
    def of(cls, records: list[Record]) -> Pools:
        values = {
            field: sorted({r[field] for r in records if r[field] is not None})
            for field in FILTER_FIELDS
        }
        nullable = [f for f in FILTER_FIELDS if any(r[f] is None for r in records)]
        assert any(CDR_FIELDS[f] == "int" for f in nullable), "no nullable number to test"
        return cls(values, FILTER_FIELDS + nullable * 3)


def _value(draw: st.DrawFn, field: str, pools: Pools) -> Any:
    """A value of the field as found in the data, sometimes in another JSON type."""
    value = draw(st.sampled_from(pools.values[field]))
    ftype = CDR_FIELDS[field]
    variant = draw(st.integers(0, 3))
    if ftype == "int" and variant == 0:
        return str(value)  # "100001" for 100001
    if ftype == "int" and variant == 1:
        return value + 0.5  # between two stored values
    if ftype == "str" and variant == 0 and value.isdigit():
        return int(value)  # 100001 for "100001" (src_id, dst_id, t_cause)
    if ftype == "datetime" and variant == 0:
        return value[:10]  # a bare date
    return value


def _text(field: str, value: Any) -> str:
    ftype = CDR_FIELDS[field]
    if ftype == "int":
        return str(int(value))
    if ftype == "number":
        return repr(float(value))
    return str(value)


def _pattern(draw: st.DrawFn, field: str, pools: Pools) -> str:
    """A LIKE pattern made from a stored value's text."""
    text = _text(field, draw(st.sampled_from(pools.values[field])))
    cut = draw(st.integers(0, len(text)))
    kinds = ["exact", "prefix", "suffix", "infix", "underscore", "length", "any"]
    kind = draw(st.sampled_from(kinds))
    if kind == "prefix":
        pattern = text[:cut] + "%"
    elif kind == "suffix":
        pattern = "%" + text[cut:]
    elif kind == "infix":
        end = draw(st.integers(cut, len(text)))
        pattern = "%" + text[cut:end] + "%"
    elif kind == "underscore" and text:
        index = min(cut, len(text) - 1)
        pattern = text[:index] + "_" + text[index + 1 :]
    elif kind == "length":
        # "_" is exactly one character: one "_" per character, give or take one.
        pattern = "_" * max(0, len(text) + draw(st.integers(-1, 1)))
    elif kind == "any":
        pattern = "%"
    else:
        pattern = text
    # LIKE is case-sensitive here: a pattern in other case must not match the stored text.
    case = draw(st.sampled_from(["same", "same", "upper", "lower"]))
    return pattern.upper() if case == "upper" else pattern.lower() if case == "lower" else pattern


@st.composite
def conditions(draw: st.DrawFn, pools: Pools) -> Condition:
    field = draw(st.sampled_from(pools.fields))
    spelling = draw(st.sampled_from(sorted(OPERATORS)))
    op = OPERATORS[spelling]
    if draw(st.booleans()) and spelling.isalpha():
        spelling = spelling.upper()
    if op == "in":
        # Mostly values from the data, now and then a null (which never matches).
        kinds = draw(st.lists(st.integers(0, 4), max_size=4))
        return field, spelling, [None if k == 0 else _value(draw, field, pools) for k in kinds]
    if op in ("like", "notlike"):
        return field, spelling, _pattern(draw, field, pools)
    if op in ("eq", "ne") and draw(st.integers(0, 5)) == 0:
        return field, spelling, None
    return field, spelling, _value(draw, field, pools)


@st.composite
def queries(draw: st.DrawFn, pools: Pools) -> dict[str, Any]:
    return {
        # sampled_from rather than none() | ...: hypothesis favours the first branch of a
        # one_of, and most examples would then not sort at all.
        "conditions": draw(st.lists(conditions(pools), max_size=3)),
        "sort": draw(st.sampled_from([None, *pools.fields])),
        "direction": draw(st.sampled_from([None, "ASC", "DESC", "desc"])),
        "page": draw(st.integers(1, 4)),
        "limit": draw(st.sampled_from([1, 7, 50, 333, 5000])),
        "group_by": draw(st.sampled_from([None] * len(pools.fields) + pools.fields)),
    }


def _query(
    conditions: list[Condition] | None = None,
    sort: str | None = None,
    direction: str | None = None,
    page: int = 1,
    limit: int = 5000,
    group_by: str | None = None,
) -> dict[str, Any]:
    """A query as ``queries`` draws them, for explicit examples."""
    return {
        "conditions": conditions or [],
        "sort": sort,
        "direction": direction,
        "page": page,
        "limit": limit,
        "group_by": group_by,
    }


def _params(query: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"page": query["page"], "limit": query["limit"]}
    if query["conditions"]:
        params["filter"] = json.dumps(
            [{"property": f, "operator": o, "value": v} for f, o, v in query["conditions"]]
        )
    for key, name in (("sort", "sort"), ("direction", "dir"), ("group_by", "group_by")):
        if query[key] is not None:
            params[name] = query[key]
    return params


def test_random_queries_match_an_independent_sql_evaluation(
    client: httpx.Client, reference: Reference, dataset: list[Record]
) -> None:
    pools = Pools.of(dataset)

    @SETTINGS
    @given(query=queries(pools))
    # Cases a random search may miss, always run: nulls sort first ascending and last
    # descending, and form one group; null never matches IN, NE or NOT LIKE; LIKE keeps case.
    @example(query=_query(sort="parent_live_id", limit=50))
    @example(query=_query(sort="parent_live_id", direction="DESC", limit=50))
    @example(query=_query(sort="src_ua", direction="ASC", limit=50))
    @example(query=_query(sort="dst_id", direction="DESC", page=2, limit=2000))
    @example(query=_query(group_by="parent_live_id", sort="id", direction="ASC", limit=5000))
    @example(query=_query(group_by="src_id", limit=5000))
    @example(query=_query(conditions=[("parent_live_id", "in", [900000003, None])]))
    @example(query=_query(conditions=[("parent_live_id", "ne", 900000003)]))
    @example(query=_query(conditions=[("src_ua", "!=", "x")]))
    @example(query=_query(conditions=[("src_ua", "notlike", "x%")]))
    @example(query=_query(conditions=[("parent_live_id", "notlike", "1%")]))
    @example(query=_query(conditions=[("dst_name", "like", "%A%")]))
    @example(query=_query(conditions=[("type", "like", "__")]))
    @example(query=_query(conditions=[("src", "like", "55")]))
    @example(query=_query(conditions=[("duration", "notlike", "3")]))
    @example(query=_query(conditions=[("src_id", "eq", None), ("dst_id", "ne", None)]))
    def check(query: dict[str, Any]) -> None:
        response = client.get("/cdrs", params=_params(query))
        assert response.status_code == 200, response.text
        body = orjson.loads(response.content)
        expected_ids, expected_total = reference.answer(
            query["conditions"],
            query["sort"],
            query["direction"],
            query["page"],
            query["limit"],
            query["group_by"],
        )
        assert [r["id"] for r in body["data"]] == expected_ids
        assert body["total"] == expected_total

    check()


def test_union_of_all_pages_is_the_filtered_set(
    client: httpx.Client, reference: Reference, dataset: list[Record]
) -> None:
    pools = Pools.of(dataset)

    # Each example pages through its whole result: fewer examples, larger pages.
    @settings(SETTINGS, max_examples=20)
    @given(
        condition_list=st.lists(conditions(pools), min_size=1, max_size=2),
        sort=st.sampled_from(["id", "calldate", "duration", "dst_name"]),
        direction=st.sampled_from(["ASC", "DESC"]),
        limit=st.integers(150, 1500),
    )
    def check(condition_list: list[Condition], sort: str, direction: str, limit: int) -> None:
        query = {
            "conditions": condition_list,
            "sort": sort,
            "direction": direction,
            "limit": limit,
            "group_by": None,
        }
        seen: list[int] = []
        totals: set[int] = set()
        page = 1
        while True:
            body = orjson.loads(
                client.get("/cdrs", params=_params({**query, "page": page})).content
            )
            totals.add(body["total"])
            if not body["data"]:
                break
            assert len(body["data"]) <= limit
            seen.extend(r["id"] for r in body["data"])
            page += 1
        expected, total = reference.answer(condition_list, None, None, 1, 10**9)
        assert totals == {total}
        assert len(seen) == len(set(seen)) == total
        assert set(seen) == set(expected)

    check()
