"""CDR records to Arrow: types, lenient decoding, undeclared fields, rejects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pytest

from pipelines.voipstudio.catalog import CDRS
from pipelines.voipstudio.records import (
    _layout,
    _parse_fast,
    parse_page,
    records_to_table,
    table_schema,
)

CDR_SCHEMA = table_schema(CDRS)


def cdr(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {name: None for name in CDRS.api_fields}
    record.update(
        id=1,
        call_id=10,
        type="I",
        calldate="2026-03-29 01:30:00",
        duration=30,
        billsec=20,
        rate=0.0,
        charge=0.0,
        labels=[],
        src="+34910000000",
    )
    record.update(fields)
    return record


def body(records: list[dict[str, Any]], **raw: str) -> bytes:
    """A page as the API sends it; ``raw`` replaces the JSON string ``"@name"`` by the text."""
    text = orjson.dumps({"data": records, "total": len(records)})
    for name, value in raw.items():
        text = text.replace(orjson.dumps("@" + name), value.encode("utf-8", "surrogateescape"))
    return text


def test_types_follow_the_schema() -> None:
    table, rejects = records_to_table([cdr(), cdr(id=2, rate=1, labels=["vip"])], CDRS)
    assert rejects == []
    assert table.schema == CDR_SCHEMA
    assert table.column("rate").to_pylist() == [0.0, 1.0]
    assert table.column("calldate").to_pylist()[0] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert table.column("calldate_raw").to_pylist()[0] == "2026-03-29 01:30:00"
    assert table.column("labels").to_pylist() == ["[]", '["vip"]']
    assert table.column("extra_fields").to_pylist() == [None, None]


def test_lossless_coercions_are_not_rejects() -> None:
    records = [
        cdr(id="7", billsec=12.0, src=34910000000, rate="0.05"),
        cdr(id=8, duration="42", billsec="12.0", nb_notes="", charge=" "),
        cdr(id=9, labels=None, src=123456789012345678901234567890),
        cdr(id=10, labels="vip", calldate="2026-03-02T10:00:00"),
        cdr(id=11, labels="", calldate="2026-03-02 10:00:00.250"),
        cdr(id=12, charge=9007199254740993),  # an integer a double only approximates
    ]
    table, rejects = records_to_table(records, CDRS)
    assert rejects == []
    rows = {row["id"]: row for row in table.to_pylist()}
    assert (rows[7]["billsec"], rows[7]["src"], rows[7]["rate"]) == (12, "34910000000", 0.05)
    assert (rows[8]["duration"], rows[8]["billsec"]) == (42, 12)
    assert rows[8]["nb_notes"] is None and rows[8]["charge"] is None
    assert rows[9]["labels"] is None
    assert rows[9]["src"] == "123456789012345678901234567890"
    assert rows[10]["labels"] == '["vip"]'
    assert rows[10]["calldate"] == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert rows[11]["labels"] == "[]"
    assert rows[11]["calldate"] == datetime(2026, 3, 2, 10, 0, 0, 250000, tzinfo=UTC)
    assert rows[11]["calldate_raw"] == "2026-03-02 10:00:00.250"
    assert rows[12]["charge"] == 9007199254740992.0


def test_unparseable_records_are_rejected_not_dropped() -> None:
    records = [
        cdr(id=1),
        cdr(id=2, calldate="0000-00-00 00:00:00"),
        cdr(id=3, billsec="twelve"),
        cdr(id=None),
        cdr(id=5, calldate=None),
        cdr(id=6, billsec=12.5),
        cdr(id=7, rate=True),
        cdr(id=8, labels={"a": 1}),
    ]
    table, rejects = records_to_table(records, CDRS)
    assert table.column("id").to_pylist() == [1]
    reasons = {r.record_id: r.reason for r in rejects}
    assert set(reasons) == {"2", "3", None, "5", "6", "7", "8"}
    assert "calldate" in reasons["2"] and "billsec" in reasons["3"] and "id" in reasons[None]
    # A lossy conversion (12.5 seconds to 12) is a reject, not a silent truncation.
    assert reasons["6"] == "billsec: 12.5 is not an integer"
    assert reasons["7"].startswith("rate: True") and "labels" in reasons["8"]
    assert all('"id"' in r.raw for r in rejects)
    rows = [r.as_row(datetime.now(UTC)) for r in rejects]
    assert len({row["record_hash"] for row in rows}) == 7


def test_numbers_no_column_holds_reject_their_record_only() -> None:
    records = [cdr(id=i, duration=f"@d{i}") for i in range(1, 7)]
    page = parse_page(
        body(
            records,
            d1="30",
            d2="18446744073709551615",  # u64: orjson reads it, int64 cannot hold it
            d3="123456789012345678901234567890",  # beyond 64 bits: orjson would make it a float
            d4="1e400",  # beyond a double
            d5="NaN",  # not JSON at all, sent by some encoders
            d6="-9223372036854775809",
        ).replace(b'"charge":0.0', b'"charge":1e400', 1),
        CDRS,
    )
    reasons = {r.record_id: r.reason for r in page.rejects}
    assert page.table.num_rows == 0
    assert reasons["1"] == "charge: 1e400 is beyond the range of a double"
    assert reasons["2"] == "duration: 18446744073709551615 is beyond the 64-bit integer range"
    assert (
        reasons["3"]
        == "duration: 123456789012345678901234567890 is beyond the 64-bit integer range"
    )
    assert reasons["4"] == "duration: 1e400 is beyond the 64-bit integer range"
    assert reasons["5"] == "duration: NaN is not an integer"
    assert reasons["6"] == "duration: -9223372036854775809 is beyond the 64-bit integer range"
    # The raw JSON of a reject keeps the number as the API spelled it.
    raws = {r.record_id: r.raw for r in page.rejects}
    assert '"duration":123456789012345678901234567890' in raws["3"]
    assert '"charge":1e400' in raws["1"]
    assert page.keys == [1, 2, 3, 4, 5, 6]


def test_one_odd_value_leaves_the_rest_of_its_page() -> None:
    records = [cdr(id=i) for i in range(1, 101)]
    records[40]["billsec"] = "@odd"
    page = parse_page(body(records, odd="1e400"), CDRS)
    assert page.table.num_rows == 99
    assert [r.record_id for r in page.rejects] == ["41"]
    assert page.total == 100 and len(page.keys) == 100


def test_unstorable_text_is_repaired_not_rejected() -> None:
    records = [cdr(id=1, src_name="@a"), cdr(id=2, src_name="@b"), cdr(id=3, src_name="@c")]
    raw = body(records, a='"Jos\udce9"', b='"nul\\u0000here"', c='"half \\ud83d pair"')
    page = parse_page(raw, CDRS)
    assert page.rejects == []
    assert page.table.column("src_name").to_pylist() == [
        "Jos\ufffd",
        "nul\ufffdhere",
        "half \ufffd pair",
    ]
    assert page.repaired == 3
    page.table.validate(full=True)


def test_control_characters_in_text_are_kept() -> None:
    page = parse_page(body([cdr(id=1, info="@i")], i='"a\x01b"'), CDRS)
    assert page.table.column("info").to_pylist() == ["a\x01b"]


def test_a_body_that_is_not_json_still_fails() -> None:
    with pytest.raises(ValueError):
        parse_page(b"<html><body>502 Bad Gateway</body></html>", CDRS)


def test_lenient_envelope() -> None:
    empty = parse_page(b'{"data": null, "total": 0}', CDRS)
    assert empty.table.num_rows == 0 and empty.total == 0
    text_total = parse_page(orjson.dumps({"data": [cdr()], "total": "1"}), CDRS)
    assert text_total.total == 1 and text_total.table.num_rows == 1


def test_fields_the_api_adds_go_to_extra_fields() -> None:
    table, rejects = records_to_table(
        [
            cdr(recording_url="https://x/1.wav", score=3, Billsec=9),
            cdr(id=2, score="high", **{"src-name": "x"}),
            cdr(id=3, nothing=None),
        ],
        CDRS,
    )
    assert rejects == []
    assert table.schema == CDR_SCHEMA, "an undeclared field became a column"
    extra = table.column("extra_fields").to_pylist()
    assert extra[0] == '{"Billsec":9,"recording_url":"https://x/1.wav","score":3}'
    assert json.loads(extra[1]) == {"score": "high", "src-name": "x"}
    assert extra[2] is None  # null values are left out; nothing left is null
    assert table.column("billsec").to_pylist() == [20, 20, 20]


EXTRA_VALUES: dict[str, Any] = {
    "text": 'say "hi"\\ \n\t\r ünï 😀',
    "number": 7,
    "big": 9007199254740993,
    "flag": True,
    "price": 0.1,
    "when": "2026-03-02 10:00:00",
    "empty": None,
}


def test_extra_fields_are_the_same_on_the_fast_and_the_lenient_path() -> None:
    records = [cdr(id=1, **EXTRA_VALUES), cdr(id=2, text="only", flag=False), cdr(id=3)]
    fast = _parse_fast(_layout(CDRS), body(records), "UTC")
    assert fast is not None, "this page should take the fast path"
    lenient = parse_page(body([*records, cdr(id=4, billsec="@x")], x='"twelve"'), CDRS)
    assert len(lenient.rejects) == 1
    fast_extra = fast.table.column("extra_fields").to_pylist()
    assert fast_extra == lenient.table.column("extra_fields").to_pylist()
    expected = {k: v for k, v in EXTRA_VALUES.items() if v is not None}
    assert json.loads(fast_extra[0]) == expected
    assert fast_extra[1] == '{"flag":false,"text":"only"}' and fast_extra[2] is None


@pytest.mark.parametrize(
    "value",
    [[1, 2], {"a": {"b": None}}, "@big", "tab\x0bvertical"],
    ids=["list", "object", "beyond-64-bits", "rare-control"],
)
def test_extra_fields_the_fast_path_cannot_spell_are_exact(value: Any) -> None:
    raw = body([cdr(id=1, extra=value)], big="18446744073709551616")
    page = parse_page(raw, CDRS)
    text = page.table.column("extra_fields").to_pylist()[0]
    expected = json.loads(raw)["data"][0]["extra"]
    assert json.loads(text) == {"extra": expected}
    if value == "@big":
        assert text == '{"extra":18446744073709551616}'


def test_unique_rows_drops_ids_already_handed_on() -> None:
    from pipelines.voipstudio.memory import IdSet
    from pipelines.voipstudio.reader import unique_rows

    seen = IdSet()
    first, _ = records_to_table([cdr(id=1), cdr(id=2)], CDRS)
    assert unique_rows(first, seen).column("id").to_pylist() == [1, 2]
    again, _ = records_to_table([cdr(id=2), cdr(id=3), cdr(id=3)], CDRS)
    assert unique_rows(again, seen).column("id").to_pylist() == [3]
    assert len(seen) == 3 and all(record_id in seen for record_id in (1, 2, 3))


def test_schema_columns() -> None:
    names = CDR_SCHEMA.names
    assert names.index("calldate_raw") == names.index("calldate") + 1
    assert names[-1] == "extra_fields"
    assert CDR_SCHEMA.field("extra_fields").type == pa.string()
