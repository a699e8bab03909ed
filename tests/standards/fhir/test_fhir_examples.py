"""Every FHIR R4 specification example in ``testdata/`` parses, with its type, category and subject.

The examples and what each must report are listed in ``testdata/examples.json``
(sources in ``testdata/README.md``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir_support import TESTDATA, fixture_bytes

from carechain.standards.fhir import (
    CATEGORY_PATTERN,
    RECORD_TYPES,
    ParsedResource,
    parse_bundle,
    parse_resource,
)

MANIFEST = json.loads((TESTDATA / "examples.json").read_text(encoding="utf-8"))
EXAMPLES = [pytest.param(example, id=example["file"]) for example in MANIFEST["examples"]]
BUNDLES = [pytest.param(bundle, id=bundle["file"]) for bundle in MANIFEST["bundles"]]


def check(parsed: ParsedResource, expected: dict[str, Any]) -> None:
    assert parsed.resource_type == expected["resource_type"]
    assert parsed.category == expected["category"]
    assert CATEGORY_PATTERN.fullmatch(parsed.category)
    assert parsed.subject == expected["subject"]
    assert parsed.resource_id == expected["id"]
    assert parsed.resource["resourceType"] == expected["resource_type"]


def test_manifest_covers_every_record_type() -> None:
    assert {example["resource_type"] for example in MANIFEST["examples"]} == set(RECORD_TYPES)


@pytest.mark.parametrize("example", EXAMPLES)
def test_specification_example_parses(example: dict[str, Any]) -> None:
    data = fixture_bytes(example["file"])
    parsed = parse_resource(data)
    check(parsed, example)
    assert parsed.raw == data  # the exact bytes, never re-serialised
    assert parsed.resource == json.loads(data)


@pytest.mark.parametrize("example", EXAMPLES)
def test_specification_example_parses_from_text(example: dict[str, Any]) -> None:
    data = fixture_bytes(example["file"])
    parsed = parse_resource(data.decode("utf-8"))
    check(parsed, example)
    assert parsed.raw == data


@pytest.mark.parametrize("bundle", BUNDLES)
def test_specification_bundle_parses(bundle: dict[str, Any]) -> None:
    allowed = RECORD_TYPES + tuple(bundle["allowed_extra"])
    parsed = parse_bundle(fixture_bytes(bundle["file"]), allowed=allowed)
    assert len(parsed) == len(bundle["entries"])
    source = json.loads(fixture_bytes(bundle["file"]))
    for entry, item, expected in zip(source["entry"], parsed, bundle["entries"], strict=True):
        check(item, expected)
        assert item.resource == entry["resource"]
        assert item.raw == json.dumps(
            entry["resource"], ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")


def test_each_bundle_entry_parses_alone() -> None:
    """A record taken from a Bundle is itself a valid record, raw bytes and all."""
    bundle = MANIFEST["bundles"][0]
    allowed = RECORD_TYPES + tuple(bundle["allowed_extra"])
    for item in parse_bundle(fixture_bytes(bundle["file"]), allowed=allowed):
        again = parse_resource(item.raw, allowed=allowed)
        assert again == item


def test_category_of_a_code_the_chain_cannot_hold_is_the_type() -> None:
    observation = json.loads(fixture_bytes("examples/observation-example.json"))
    observation["category"][0]["coding"][0]["code"] = "vital signs"  # a space: not CATEGORY_PATTERN
    assert parse_resource(json.dumps(observation)).category == "observation"


def test_category_skips_a_concept_with_text_only() -> None:
    observation = json.loads(fixture_bytes("examples/observation-example.json"))
    observation["category"].insert(0, {"text": "measured at home"})
    assert parse_resource(json.dumps(observation)).category == "vital-signs"


def test_resource_without_id_or_subject() -> None:
    parsed = parse_resource('{"resourceType":"Observation","status":"final","code":{"text":"x"}}')
    assert (parsed.resource_id, parsed.subject, parsed.category) == (None, None, "observation")


def test_a_clinical_code_as_category_never_reaches_the_chain() -> None:
    """Only coarse standard classes go on the chain; an ICD-10 code (B20, HIV disease) in
    Condition.category would tell everyone what the record says."""
    condition = json.loads(fixture_bytes("examples/condition-example-f201-fever.json"))
    condition["category"] = [
        {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "B20"}]}
    ]
    assert parse_resource(json.dumps(condition)).category == "condition"
    condition["category"][0]["coding"][0] = {
        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
        "code": "encounter-diagnosis",
    }
    assert parse_resource(json.dumps(condition)).category == "encounter-diagnosis"
