"""Collections of the emulated API: envelopes, single records, errors, paging, sorting,
grouping and every filter operator, checked against the full dataset from the admin dump."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pipelines.emulator.fields import CDR_FIELDS, QUEUE_FIELDS, USER_FIELDS
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, all_cdrs, assert_error, filter_param, state

Record = dict[str, Any]


@pytest.fixture(scope="module")
def cdrs(emulator: EmulatorServer) -> list[Record]:
    """Every CDR of the shared emulator, in id order."""
    return all_cdrs(emulator)


def ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [record["id"] for record in response.json()["data"]]


def fetch_all(api: httpx.Client, **params: Any) -> tuple[list[Record], int]:
    """One request with the largest page (the test datasets are smaller than that)."""
    response = api.get("/cdrs", params={"limit": 5000, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["data"]) == body["total"] <= 5000
    return body["data"], body["total"]


# -- envelopes and routes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fields"), [("/cdrs", CDR_FIELDS), ("/users", USER_FIELDS), ("/queues", QUEUE_FIELDS)]
)
def test_collection_envelope(
    emulator: EmulatorServer, api: httpx.Client, path: str, fields: dict[str, str]
) -> None:
    response = api.get(path, params={"limit": 10})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"data", "total"}
    assert isinstance(body["data"], list) and 0 < len(body["data"]) <= 10
    assert body["total"] == state(emulator)["counts"][path[1:]]
    for record in body["data"]:
        assert list(record) == list(fields)


@pytest.mark.parametrize("path", ["/cdrs", "/users", "/queues"])
def test_single_record_envelope(api: httpx.Client, path: str) -> None:
    listed = api.get(path, params={"limit": 3}).json()["data"]
    for record in listed:
        response = api.get(f"{path}/{record['id']}")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"data", "links"}
        assert body["data"] == record
        assert isinstance(body["links"], dict)


@pytest.mark.parametrize("record_id", ["1", "99999999999", "abc", "-5", "1.5"])
def test_unknown_record_is_404(api: httpx.Client, record_id: str) -> None:
    assert_error(api.get(f"/cdrs/{record_id}"), 404)


@pytest.mark.parametrize(
    "url",
    ["/v1.2/voipstudio/nothing", "/v1.2/voipstudio/cdrs/1/extra", "/", "/v2/voipstudio/cdrs"],
)
def test_unknown_route_is_404(emulator: EmulatorServer, url: str) -> None:
    headers = {"X-Auth-Token": emulator.emulator.config.api_key}
    assert_error(HTTP.get(emulator.url + url, headers=headers), 404)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/cdrs", "/cdrs/100000001", "/users", "/me"])
def test_wrong_method_is_405(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path)
    assert_error(response, 405)
    assert response.headers["allow"] == "GET"


def test_v1_1_base_url_serves_the_same(emulator: EmulatorServer, api: httpx.Client) -> None:
    old = HTTP.get(
        f"{emulator.url}/v1.1/voipstudio/cdrs",
        params={"limit": 5},
        headers={"X-Auth-Token": emulator.emulator.config.api_key},
    )
    assert old.json() == api.get("/cdrs", params={"limit": 5}).json()


# -- paging -----------------------------------------------------------------------------------


def test_pages_are_one_based_and_contiguous(api: httpx.Client) -> None:
    first = ids(api.get("/cdrs", params={"page": 1, "limit": 10}))
    second = ids(api.get("/cdrs", params={"page": 2, "limit": 10}))
    both = ids(api.get("/cdrs", params={"page": 1, "limit": 20}))
    assert len(first) == len(second) == 10
    assert first + second == both


def test_page_past_the_end_is_empty_with_the_right_total(
    api: httpx.Client, cdrs: list[Record]
) -> None:
    response = api.get("/cdrs", params={"page": 1000, "limit": 100})
    assert response.status_code == 200
    assert response.json() == {"data": [], "total": len(cdrs)}


def test_last_page_is_partial(api: httpx.Client, cdrs: list[Record]) -> None:
    limit = 300
    last_page = -(-len(cdrs) // limit)
    response = api.get("/cdrs", params={"page": last_page, "limit": limit})
    assert len(response.json()["data"]) == len(cdrs) - (last_page - 1) * limit


def test_limit_5000_is_allowed(api: httpx.Client, cdrs: list[Record]) -> None:
    assert len(cdrs) >= 5000
    assert len(ids(api.get("/cdrs", params={"limit": 5000}))) == 5000


def test_default_limit_returns_a_page(api: httpx.Client) -> None:
    # The live default is unknown (clients must send `limit`); the emulator's is a small page.
    body = api.get("/cdrs").json()
    assert 0 < len(body["data"]) < body["total"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": -1},
        {"limit": "ten"},
        {"page": 0},
        {"page": -1},
        {"page": "1.5"},
    ],
)
def test_bad_paging_is_400(api: httpx.Client, params: dict[str, Any]) -> None:
    assert_error(api.get("/cdrs", params=params), 400)


# -- sorting ----------------------------------------------------------------------------------


def test_default_order_is_id_descending_not_calldate(api: httpx.Client) -> None:
    records = api.get("/cdrs", params={"limit": 500}).json()["data"]
    record_ids = [r["id"] for r in records]
    assert record_ids == sorted(record_ids, reverse=True)
    assert len(set(record_ids)) == len(record_ids)
    calldates = [r["calldate"] for r in records]
    assert calldates != sorted(calldates)


def sort_key(field: str) -> Callable[[Record], tuple[bool, Any]]:
    # Nulls sort first ascending (as MySQL does); the generator leaves some fields null.
    return lambda r: (r[field] is not None, r[field] if r[field] is not None else 0)


@pytest.mark.parametrize("field", ["calldate", "duration", "dst_name", "charge", "src_id"])
@pytest.mark.parametrize("direction", ["ASC", "DESC", "asc"])
def test_sort_and_dir(api: httpx.Client, cdrs: list[Record], field: str, direction: str) -> None:
    records, _ = fetch_all(api, sort=field, dir=direction)
    descending = direction.upper() == "DESC"
    # Ties are broken by id in the same direction.
    expected = sorted(cdrs, key=lambda r: r["id"], reverse=descending)
    expected.sort(key=sort_key(field), reverse=descending)
    assert [r["id"] for r in records] == [r["id"] for r in expected[:5000]]


def test_sort_without_dir_is_ascending(api: httpx.Client) -> None:
    durations = [
        r["duration"] for r in api.get("/cdrs", params={"sort": "duration"}).json()["data"]
    ]
    assert durations == sorted(durations)


def test_dir_without_sort_orders_by_id(api: httpx.Client) -> None:
    record_ids = ids(api.get("/cdrs", params={"dir": "ASC", "limit": 50}))
    assert record_ids == sorted(record_ids)


@pytest.mark.parametrize(
    "params",
    [{"sort": "nope"}, {"sort": "labels"}, {"sort": "id", "dir": "UP"}, {"group_by": "nope"}],
)
def test_bad_sort_or_group_is_400(api: httpx.Client, params: dict[str, str]) -> None:
    assert_error(api.get("/cdrs", params=params), 400)


# -- grouping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["user_id", "type", "disposition", "src_id", "server_id"])
def test_group_by_returns_one_row_per_value(
    api: httpx.Client, cdrs: list[Record], field: str
) -> None:
    records, total = fetch_all(api, group_by=field)
    values = [r[field] for r in records]
    distinct = {r[field] for r in cdrs}
    assert len(values) == len(set(values)) == total
    assert set(values) == distinct
    # Each row is the first record of its group in the requested order (default id DESC).
    newest: dict[Any, int] = {}
    for record in cdrs:
        newest[record[field]] = max(newest.get(record[field], 0), record["id"])
    assert [r["id"] for r in records] == sorted(newest.values(), reverse=True)


def test_group_by_with_filter_and_sort(api: httpx.Client, cdrs: list[Record]) -> None:
    records, total = fetch_all(
        api, group_by="user_id", filter=filter_param(("type", "eq", "M")), sort="user_id"
    )
    expected = sorted({r["user_id"] for r in cdrs if r["type"] == "M"})
    assert [r["user_id"] for r in records] == expected
    assert total == len(expected)
    assert all(r["type"] == "M" for r in records)


def test_group_by_array_field_is_400(api: httpx.Client) -> None:
    assert_error(api.get("/cdrs", params={"group_by": "labels"}), 400)


# -- filter operators -------------------------------------------------------------------------

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "=": operator.eq,
    "ne": operator.ne,
    "neq": operator.ne,
    "<>": operator.ne,
    "!=": operator.ne,
    "lt": operator.lt,
    "<": operator.lt,
    "lte": operator.le,
    "<=": operator.le,
    "gt": operator.gt,
    ">": operator.gt,
    "gte": operator.ge,
    ">=": operator.ge,
}


def matching_ids(cdrs: list[Record], predicate: Callable[[Record], bool]) -> set[int]:
    return {r["id"] for r in cdrs if predicate(r)}


@pytest.mark.parametrize("op", list(COMPARE))
@pytest.mark.parametrize("field", ["duration", "dst_name", "calldate"])
def test_comparison_operators_and_aliases(
    api: httpx.Client, cdrs: list[Record], op: str, field: str
) -> None:
    values = sorted({r[field] for r in cdrs if r[field] is not None})
    value = values[len(values) // 2]
    records, total = fetch_all(api, filter=filter_param((field, op, value)))
    compare = COMPARE[op]
    # SQL semantics: a null never compares, not even with "ne".
    expected = matching_ids(cdrs, lambda r: r[field] is not None and compare(r[field], value))
    assert {r["id"] for r in records} == expected
    assert total == len(expected)
    assert 0 < total < len(cdrs) or op in ("ne", "neq", "<>", "!=")


def test_operators_are_case_insensitive(api: httpx.Client) -> None:
    lower = api.get("/cdrs", params={"filter": filter_param(("type", "eq", "M"))}).json()
    upper = api.get("/cdrs", params={"filter": filter_param(("type", "EQ", "M"))}).json()
    assert lower == upper
    assert lower["total"] > 0


def test_in_operator(api: httpx.Client, cdrs: list[Record]) -> None:
    wanted = ["NO ANSWER", "BUSY"]
    records, total = fetch_all(api, filter=filter_param(("disposition", "in", wanted)))
    expected = matching_ids(cdrs, lambda r: r["disposition"] in wanted)
    assert {r["id"] for r in records} == expected and total == len(expected) > 0


def test_in_operator_with_numbers_nulls_and_empty_list(
    api: httpx.Client, cdrs: list[Record]
) -> None:
    users = sorted({r["user_id"] for r in cdrs})[:3]
    records, _ = fetch_all(api, filter=filter_param(("user_id", "in", [users[0], str(users[1])])))
    assert {r["id"] for r in records} == matching_ids(cdrs, lambda r: r["user_id"] in users[:2])
    # A null in the list matches nothing (SQL: x IN (NULL) is never true).
    records, total = fetch_all(api, filter=filter_param(("src_id", "in", [None])))
    assert total == 0 and records == []
    assert fetch_all(api, filter=filter_param(("type", "in", [])))[1] == 0


def test_like_and_notlike(api: httpx.Client, cdrs: list[Record]) -> None:
    like, total = fetch_all(api, filter=filter_param(("dst_name", "like", "%a_a%")))
    pattern = re.compile(r".*a.a.*", re.DOTALL)
    expected = matching_ids(
        cdrs, lambda r: r["dst_name"] is not None and pattern.fullmatch(r["dst_name"]) is not None
    )
    assert {r["id"] for r in like} == expected and total == len(expected) > 0

    notlike, _ = fetch_all(api, filter=filter_param(("dst_name", "notlike", "%a_a%")))
    expected_not = matching_ids(cdrs, lambda r: r["dst_name"] is not None) - expected
    assert {r["id"] for r in notlike} == expected_not
    assert expected_not


def test_like_on_numbers_and_dates_matches_their_text(
    api: httpx.Client, cdrs: list[Record]
) -> None:
    records, _ = fetch_all(api, filter=filter_param(("duration", "like", "1%")))
    assert {r["id"] for r in records} == matching_ids(
        cdrs, lambda r: str(r["duration"]).startswith("1")
    )
    records, _ = fetch_all(api, filter=filter_param(("calldate", "like", "2026-01-05 %")))
    expected = matching_ids(cdrs, lambda r: r["calldate"].startswith("2026-01-05 "))
    assert {r["id"] for r in records} == expected and expected


def test_eq_and_ne_null_mean_is_null_and_is_not_null(api: httpx.Client, cdrs: list[Record]) -> None:
    null, _ = fetch_all(api, filter=filter_param(("src_id", "eq", None)))
    not_null, _ = fetch_all(api, filter=filter_param(("src_id", "ne", None)))
    assert {r["id"] for r in null} == matching_ids(cdrs, lambda r: r["src_id"] is None)
    assert {r["id"] for r in not_null} == matching_ids(cdrs, lambda r: r["src_id"] is not None)
    assert null and not_null


def test_filters_are_anded(api: httpx.Client, cdrs: list[Record]) -> None:
    records, total = fetch_all(
        api,
        filter=filter_param(
            ("type", "eq", "I"), ("duration", "gt", 60), ("calldate", "lt", "2026-01-08")
        ),
    )
    expected = matching_ids(
        cdrs,
        lambda r: r["type"] == "I" and r["duration"] > 60 and r["calldate"] < "2026-01-08",
    )
    assert {r["id"] for r in records} == expected and total == len(expected) > 0


def test_bare_date_is_accepted_for_calldate(api: httpx.Client, cdrs: list[Record]) -> None:
    records, total = fetch_all(
        api,
        filter=filter_param(("calldate", "gte", "2026-01-05"), ("calldate", "lt", "2026-01-06")),
    )
    expected = matching_ids(cdrs, lambda r: r["calldate"].startswith("2026-01-05"))
    assert {r["id"] for r in records} == expected and total == len(expected) > 0
    # A bare date is midnight: "gt 2026-01-05" includes 00:00:01 and excludes 00:00:00.
    after, _ = fetch_all(api, filter=filter_param(("calldate", "gt", "2026-01-13")))
    assert {r["id"] for r in after} == matching_ids(
        cdrs, lambda r: r["calldate"] > "2026-01-13 00:00:00"
    )


def test_values_are_compared_with_the_fields_type(api: httpx.Client, cdrs: list[Record]) -> None:
    user_id = cdrs[0]["user_id"]
    as_int = api.get("/cdrs", params={"filter": filter_param(("user_id", "eq", user_id))}).json()
    as_text = api.get(
        "/cdrs", params={"filter": filter_param(("user_id", "eq", str(user_id)))}
    ).json()
    assert as_int == as_text
    assert as_int["total"] == sum(1 for r in cdrs if r["user_id"] == user_id) > 0

    # src_id is a string field: an int value is compared as text, and "9" > "10" as text.
    src_id = next(r["src_id"] for r in cdrs if r["src_id"] is not None)
    assert isinstance(src_id, str)
    as_text = api.get("/cdrs", params={"filter": filter_param(("src_id", "eq", src_id))}).json()
    as_int = api.get("/cdrs", params={"filter": filter_param(("src_id", "eq", int(src_id)))}).json()
    assert as_int == as_text and as_int["total"] > 0
    records, _ = fetch_all(api, filter=filter_param(("src_id", "gt", "100009")))
    assert {r["id"] for r in records} == matching_ids(
        cdrs, lambda r: r["src_id"] is not None and r["src_id"] > "100009"
    )

    # A number field takes a numeric string, compared as a number.
    records, _ = fetch_all(api, filter=filter_param(("duration", "gte", "100")))
    assert {r["id"] for r in records} == matching_ids(cdrs, lambda r: r["duration"] >= 100)


def test_filter_accepts_a_single_object(api: httpx.Client) -> None:
    # Lenient: an object instead of a one-element array is read as that array.
    one = json.dumps({"property": "type", "operator": "eq", "value": "M"})
    assert (
        api.get("/cdrs", params={"filter": one}).json()
        == api.get("/cdrs", params={"filter": filter_param(("type", "eq", "M"))}).json()
    )


@pytest.mark.parametrize(
    "raw_filter",
    [
        filter_param(("duration", "between", [1, 10])),
        filter_param(("duration", "~", 1)),
        filter_param(("nope", "eq", 1)),
        filter_param(("labels", "eq", "vip")),
        filter_param(("labels", "like", "%vip%")),
        filter_param(("type", "in", "I")),
        filter_param(("type", "in", [["I"]])),
        filter_param(("duration", "eq", "long")),
        filter_param(("duration", "eq", "nan")),
        filter_param(("duration", "gt", None)),
        filter_param(("duration", "like", None)),
        filter_param(("calldate", "gt", "yesterday")),
        filter_param(("calldate", "gt", "2026-02-30")),
        filter_param(("calldate", "gt", 1767225600)),
        filter_param(("type", "eq", {"a": 1})),
        '[{"property": "type", "operator": "eq", "value": "I"',
        "not json",
        "42",
        '["type"]',
        '[{"property": "type", "value": "I"}]',
        '[{"operator": "eq", "value": "I"}]',
        '[{"property": 5, "operator": "eq", "value": "I"}]',
    ],
)
def test_bad_filters_are_400_not_500(api: httpx.Client, raw_filter: str) -> None:
    assert_error(api.get("/cdrs", params={"filter": raw_filter}), 400)


def test_empty_filter_means_no_filter(api: httpx.Client, cdrs: list[Record]) -> None:
    for raw in ("", "[]"):
        assert api.get("/cdrs", params={"filter": raw, "limit": 1}).json()["total"] == len(cdrs)


def test_cors_preflight_is_answered(emulator: EmulatorServer) -> None:
    response = HTTP.options(
        emulator.base_url + "/cdrs",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "X-Auth-Token" in response.headers["access-control-allow-headers"]
