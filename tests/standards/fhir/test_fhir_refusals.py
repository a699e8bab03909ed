"""Damaged and wrong FHIR input, loaded from ``testdata/refusals.json``.

Each case names the function it runs (``parse_resource`` unless given), its
input, and the ``InvalidFhir`` it must raise: the element path exactly and a
fragment of the problem.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir_support import TESTDATA, apply_patch, fixture_bytes

from carechain.errors import InvalidFhir, InvalidInput
from carechain.standards.fhir import RECORD_TYPES, parse_bundle, parse_resource

DOCUMENT = json.loads((TESTDATA / "refusals.json").read_text(encoding="utf-8"))
CASES = [pytest.param(case, id=case["id"]) for case in DOCUMENT["cases"]]


def case_input(case: dict[str, Any]) -> bytes:
    if "input" in case:
        return str(case["input"]).encode("utf-8")
    if "input_hex" in case:
        return bytes.fromhex(case["input_hex"])
    data = fixture_bytes(case["fixture"])
    if "text_replace" in case:
        old, new = case["text_replace"]
        text = data.decode("utf-8")
        assert old in text, f"{case['id']}: {old!r} not in {case['fixture']}"
        return text.replace(old, new, 1).encode("utf-8")
    if "patch" in case:
        document = apply_patch(json.loads(data), case["patch"])
        return json.dumps(document, ensure_ascii=False).encode("utf-8")
    return data


def run(case: dict[str, Any], data: bytes) -> Any:
    options = {key: case[key] for key in ("allowed", "max_bytes", "max_entries") if key in case}
    if case.get("function", "parse_resource") == "parse_bundle":
        return parse_bundle(data, **options)
    return parse_resource(data, **options)


def test_cases_have_unique_ids() -> None:
    ids = [case["id"] for case in DOCUMENT["cases"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES)
def test_refused(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidFhir) as caught:
        run(case, case_input(case))
    error = caught.value
    assert error.path == case["path"], error.message
    assert case["error"] in error.problem, error.message
    assert isinstance(error, InvalidInput) and error.http_status == 400
    assert "pydantic" not in error.message and "errors.pydantic.dev" not in error.message


UNDAMAGED = [
    pytest.param(case, id=case["id"])
    for case in DOCUMENT["cases"]
    if "fixture" in case
    and not (case.get("function") == "parse_bundle" and case["fixture"].startswith("examples/"))
]


@pytest.mark.parametrize("case", UNDAMAGED)
def test_undamaged_fixture_is_accepted(case: dict[str, Any]) -> None:
    """The damage, not the fixture, is what each case refuses."""
    data = fixture_bytes(case["fixture"])
    if case.get("function") == "parse_bundle":
        assert parse_bundle(data, allowed=(*RECORD_TYPES, "ServiceRequest"))
    else:
        parse_resource(data, allowed=case.get("allowed", RECORD_TYPES))
