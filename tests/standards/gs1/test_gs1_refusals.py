"""Damaged and wrong input, loaded from ``testdata/refusals.json``.

Each case names the function it runs, its input, and the ``InvalidGs1`` it
must raise: the part exactly and a fragment of the message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from gs1_support import load

from carechain.errors import InvalidInput
from carechain.standards.gs1 import (
    PARTS,
    Gs1Data,
    Gs1Date,
    InvalidGs1,
    PackId,
    check_digit,
    digital_link,
    normalise_gtin,
    parse_cn_trace_code,
    parse_digital_link,
    parse_element_string,
    parse_pack_code,
    validate_sscc,
)

DOCUMENT = load("refusals.json")
CASES = [pytest.param(case, id=case["id"]) for case in DOCUMENT["cases"]]
SGTIN = Gs1Data(gtin="09506000134352", serial="XYZ")

FUNCTIONS: dict[str, Callable[[str], object]] = {
    "normalise_gtin": normalise_gtin,
    "check_digit": check_digit,
    "validate_sscc": validate_sscc,
    "gs1_date": Gs1Date,
    "parse_element_string": parse_element_string,
    "parse_digital_link": parse_digital_link,
    "digital_link": lambda resolver: digital_link(SGTIN, resolver),
    "parse_cn_trace_code": parse_cn_trace_code,
    "parse_pack_code": parse_pack_code,
    "pack_key": PackId.from_key,
}


def test_cases_have_unique_ids_and_known_parts() -> None:
    ids = [case["id"] for case in DOCUMENT["cases"]]
    assert len(ids) == len(set(ids))
    assert {case["part"] for case in DOCUMENT["cases"]} <= set(PARTS)
    assert {case["function"] for case in DOCUMENT["cases"]} <= set(FUNCTIONS)


def test_every_part_is_covered() -> None:
    assert {case["part"] for case in DOCUMENT["cases"]} == set(PARTS)


@pytest.mark.parametrize("case", CASES)
def test_refused(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidGs1) as caught:
        FUNCTIONS[case["function"]](case["input"])
    error = caught.value
    assert error.part == case["part"], error.message
    assert case["error"] in error.message, error.message
    assert isinstance(error, InvalidInput) and error.http_status == 400
    assert error.code == "invalid_gs1"
    assert error.to_dict() == {"code": "invalid_gs1", "message": error.message}
    assert "\n" not in error.message


def test_generating_a_link_with_two_keys_is_refused() -> None:
    data = Gs1Data(sscc="106141411234567897", gtin="09506000134352")
    with pytest.raises(InvalidGs1, match="both an SSCC and a GTIN") as caught:
        digital_link(data)
    assert caught.value.part == "digital_link"


def test_empty_data_is_refused() -> None:
    with pytest.raises(InvalidGs1, match="no Application Identifiers") as caught:
        Gs1Data()
    assert caught.value.part == "ai"
