"""make_bundle splices records without re-encoding them; parse_bundle keeps every digit."""

from __future__ import annotations

import json

import pytest
from fhir_support import TESTDATA, fixture_bytes

from carechain.errors import InvalidFhir
from carechain.standards.fhir import make_bundle, parse_bundle, parse_resource

EXAMPLES = [
    example["file"] for example in json.loads((TESTDATA / "examples.json").read_text())["examples"]
]

# An Observation whose decimals a float would change: 1.50 -> 1.5, 1e2 -> 100.0, 0.000100 -> 0.0001.
DECIMALS = (
    b'{"resourceType":"Observation","status":"final","code":{"text":"glucose"},'
    b'"valueQuantity":{"value":1.50,"unit":"mmol/l"},'
    b'"referenceRange":[{"low":{"value":1e2},"high":{"value":0.000100}}]}'
)


def test_decimal_digits_survive_make_and_parse() -> None:
    assert parse_resource(DECIMALS).raw == DECIMALS
    bundle = make_bundle([DECIMALS])
    assert DECIMALS in bundle
    [record] = parse_bundle(bundle)
    assert record.raw == DECIMALS  # already compact, so re-encoding gives the same bytes
    assert b'"value":1.50' in record.raw and b'"value":1e2' in record.raw
    assert b'"value":0.000100' in record.raw
    assert record.resource["valueQuantity"]["value"] == 1.5  # the parsed JSON holds floats


def test_decimal_digits_survive_an_indented_bundle() -> None:
    text = json.dumps(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": "RECORD"}]},
        indent=2,
    ).replace(
        '"RECORD"',
        '{\n "resourceType": "Observation", "status": "final", '
        '"code": {"text": "x"}, "valueQuantity": {"value": 1.50}\n}',
    )
    [record] = parse_bundle(text)
    assert record.raw == (
        b'{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        b'"valueQuantity":{"value":1.50}}'
    )


def test_spec_examples_round_trip_through_make_bundle() -> None:
    records = [fixture_bytes(name) for name in EXAMPLES]
    bundle = make_bundle(records, timestamp_ms=1_700_000_000_123)
    for record in records:
        assert record in bundle  # spliced, byte for byte, indentation and all
    parsed = parse_bundle(bundle)
    assert [item.resource for item in parsed] == [json.loads(record) for record in records]
    assert [item.category for item in parsed] == [parse_resource(r).category for r in records]


def test_make_bundle_is_a_valid_r4b_bundle() -> None:
    from fhir.resources.R4B.bundle import Bundle

    for bundle_type in ("collection", "searchset"):
        data = make_bundle([fixture_bytes(EXAMPLES[0]), DECIMALS], bundle_type, 1_700_000_000_123)
        document = json.loads(data)
        Bundle.model_validate(document)
        assert document["type"] == bundle_type
        assert document["timestamp"] == "2023-11-14T22:13:20.123Z"
        assert len(parse_bundle(data)) == 2


def test_searchset_has_total_and_match_mode() -> None:
    document = json.loads(make_bundle([DECIMALS, DECIMALS], "searchset"))
    assert document["total"] == 2
    assert [entry["search"] for entry in document["entry"]] == [{"mode": "match"}] * 2
    assert "timestamp" not in document


def test_collection_has_no_total() -> None:
    document = json.loads(make_bundle([DECIMALS]))
    assert "total" not in document and "search" not in document["entry"][0]


def test_empty_bundle_is_valid_fhir_but_not_a_bundle_of_records() -> None:
    from fhir.resources.R4B.bundle import Bundle

    data = make_bundle([], "searchset")
    assert json.loads(data) == {"resourceType": "Bundle", "type": "searchset", "total": 0}
    Bundle.model_validate(json.loads(data))
    with pytest.raises(InvalidFhir) as caught:
        parse_bundle(data)
    assert caught.value.path == "Bundle.entry"


@pytest.mark.parametrize(
    ("resources", "bundle_type", "timestamp_ms", "path", "problem"),
    [
        ([DECIMALS], "transaction", None, "Bundle.type", "expected one of collection, searchset"),
        ([DECIMALS], "collection", -1, "Bundle.timestamp", "integer milliseconds"),
        ([DECIMALS], "collection", 1.5, "Bundle.timestamp", "integer milliseconds"),
        ([DECIMALS, b"[1]"], "collection", None, "Bundle.entry[1].resource", "not an array"),
        ([DECIMALS, b'{"a":1},"b":{'], "collection", None, "Bundle.entry[1].resource", "malformed"),
        (
            [b'{"status":"final"}'],
            "collection",
            None,
            "Bundle.entry[0].resource.resourceType",
            "missing",
        ),
        (["{}"], "collection", None, "Bundle.entry[0].resource", "must be JSON bytes"),
    ],
)
def test_make_bundle_refuses(
    resources: list[bytes], bundle_type: str, timestamp_ms: int | None, path: str, problem: str
) -> None:
    with pytest.raises(InvalidFhir) as caught:
        make_bundle(resources, bundle_type, timestamp_ms)
    assert caught.value.path == path
    assert problem in caught.value.problem


def test_default_entry_limit_is_1000() -> None:
    small = b'{"resourceType":"Observation","status":"final","code":{"text":"x"}}'
    assert len(parse_bundle(make_bundle([small] * 1000))) == 1000
    with pytest.raises(InvalidFhir, match="1,001 entries; the limit is 1,000"):
        parse_bundle(make_bundle([small] * 1001))


def test_entry_larger_than_a_record_may_be_is_refused() -> None:
    big = json.dumps(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "valueString": "a" * 1_048_576,
        }
    ).encode()
    with pytest.raises(InvalidFhir) as caught:
        parse_bundle(make_bundle([big]))
    assert caught.value.path == "Bundle.entry[0].resource"
    assert "the limit is 1,048,576" in caught.value.problem


def test_parse_bundle_takes_the_bundle_types_that_carry_records() -> None:
    for bundle_type in ("collection", "transaction", "batch", "searchset"):
        document = json.loads(make_bundle([DECIMALS]))
        document["type"] = bundle_type
        if bundle_type in ("transaction", "batch"):
            document["entry"][0]["request"] = {"method": "POST", "url": "Observation"}
        assert len(parse_bundle(json.dumps(document))) == 1, bundle_type
