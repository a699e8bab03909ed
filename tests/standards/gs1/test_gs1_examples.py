"""Examples from GS1's own documents and reference code, loaded from ``testdata/examples.json``.

``testdata/README.md`` names each source. Every parsed example is also
generated again and parsed back, so each one is a round trip as well.
"""

from __future__ import annotations

from typing import Any

import pytest
from gs1_support import data_of, load

from carechain.standards.gs1 import (
    DEFAULT_RESOLVER,
    GS,
    check_digit,
    digital_link,
    element_string,
    hri,
    normalise_gtin,
    parse_digital_link,
    parse_element_string,
    parse_pack_code,
    validate_sscc,
    with_check_digit,
)

EXAMPLES = load("examples.json")


def cases(section: str) -> list[Any]:
    return [pytest.param(case, id=case["id"]) for case in EXAMPLES[section]]


def test_example_ids_are_unique_in_each_section() -> None:
    for section in EXAMPLES.values():
        if isinstance(section, list):
            ids = [case["id"] for case in section]
            assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", cases("check_digits"))
def test_check_digit(case: dict[str, Any]) -> None:
    assert check_digit(case["body"]) == case["check_digit"]
    assert with_check_digit(case["body"]) == case["body"] + case["check_digit"]


@pytest.mark.parametrize("case", cases("gtins"))
def test_gtin_normalised_to_14_digits(case: dict[str, Any]) -> None:
    assert normalise_gtin(case["input"]) == case["gtin14"]
    assert normalise_gtin(case["gtin14"]) == case["gtin14"]


@pytest.mark.parametrize("case", cases("ssccs"))
def test_sscc(case: dict[str, Any]) -> None:
    assert validate_sscc(case["input"]) == case["input"]


@pytest.mark.parametrize("case", cases("element_strings"))
def test_element_string(case: dict[str, Any]) -> None:
    data = parse_element_string(case["input"])
    assert [list(pair) for pair in data.elements()] == case["elements"]
    assert data == data_of(case["elements"])
    assert parse_element_string(element_string(data)) == data
    assert parse_element_string(element_string(data, symbology_id="]d2")) == data
    assert parse_element_string(hri(data)) == data


@pytest.mark.parametrize("case", cases("digital_links"))
def test_digital_link(case: dict[str, Any]) -> None:
    link = parse_digital_link(case["input"])
    assert link.resolver == case["resolver"]
    assert [list(pair) for pair in link.data.elements()] == case["elements"]
    again = parse_digital_link(digital_link(link.data, link.resolver))
    assert again == link


@pytest.mark.parametrize("case", cases("generated_links"))
def test_generated_digital_link(case: dict[str, Any]) -> None:
    data = data_of(case["elements"])
    uri = digital_link(data, case.get("resolver", DEFAULT_RESOLVER))
    assert uri == case["uri"]
    assert parse_digital_link(uri).data == data


@pytest.mark.parametrize("case", cases("pack_codes"))
def test_pack_code(case: dict[str, Any]) -> None:
    scanned = parse_pack_code(case["input"])
    assert scanned.pack.key == case["key"]
    assert scanned.form == case["form"]
    assert scanned.lot == case["lot"]
    assert (scanned.expiry.yymmdd if scanned.expiry else None) == case["expiry"]


def test_brief_example_in_every_form_names_one_pack() -> None:
    """The issue's example, as HRI, DataMatrix scan (three symbologies) and Digital Link."""
    data = parse_element_string("(01)09506000134352(17)201225(10)ABC123(21)XYZ")
    carrier = element_string(data)
    assert carrier == "01095060001343521720122510ABC123" + GS + "21XYZ"
    assert digital_link(data) == ("https://id.gs1.org/01/09506000134352/10/ABC123/21/XYZ?17=201225")
    scans = [hri(data), digital_link(data), carrier, GS + carrier + "\r\n"]
    scans += [symbology + carrier for symbology in ("]d2", "]Q3", "]C1", "]e0")]
    keys = {parse_pack_code(scan).pack.key for scan in scans}
    assert keys == {"sgtin:09506000134352.XYZ"}
