"""GS1's own EPCIS 2.0 examples, imported: ``testdata/examples.json`` says what each gives.

Also checks how a shipment is named when the document is not carechain's
(``shipment_id``) and that a CBV value is read in all three of its forms.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from epcis_support import TESTDATA, load

from carechain.standards.epcis import Command, InvalidEpcis, import_document, shipment_id

DOCUMENT = load("examples.json")
CASES = [pytest.param(case, id=case["id"]) for case in DOCUMENT["cases"]]


@pytest.mark.parametrize("case", CASES)
def test_gs1_example(case: dict[str, Any]) -> None:
    document = load(case["file"])
    if "error" in case:
        with pytest.raises(InvalidEpcis) as caught:
            import_document(document, **case["options"])
        assert caught.value.path == case["error"]["path"]
        assert case["error"]["problem"] in caught.value.problem
        assert caught.value.unsupported is case["error"]["unsupported"]
        return
    expected = [Command(method, args) for method, args in case["commands"]]
    assert import_document(document, **case["options"]) == expected


def test_every_stored_example_is_used() -> None:
    stored = {f"gs1/{p.name}" for p in (TESTDATA / "gs1").glob("*.jsonld")}
    assert stored == {case["file"] for case in DOCUMENT["cases"]}


def test_a_foreign_shipment_is_named_by_a_hash_of_its_uri() -> None:
    uri = "http://transaction.acme.com/po/12345678"
    assert shipment_id(uri) == "shp-" + hashlib.sha256(uri.encode()).hexdigest()[:24]
    assert shipment_id("urn:carechain:shipment:shp-" + "0f" * 12) == "shp-" + "0f" * 12


@pytest.mark.parametrize(
    "form",
    ["shipping", "urn:epcglobal:cbv:bizstep:shipping", "https://ref.gs1.org/cbv/BizStep-shipping"],
)
def test_cbv_values_are_read_in_all_three_forms(form: str) -> None:
    document = load("gs1/Example_9.6.1-ObjectEvent-with-destination.jsonld")
    event = document["epcisBody"]["eventList"][0]
    event["bizStep"] = form
    event["disposition"] = (
        form.replace("bizstep:shipping", "disp:in_transit")
        .replace("BizStep-shipping", "Disp-in_transit")
        .replace("shipping", "in_transit")
    )
    event["destinationList"][0]["type"] = "urn:epcglobal:cbv:sdt:owning_party"
    parties = {"urn:epc:id:pgln:0012345.11111": "yf-pharmacy"}
    assert import_document(document, parties=parties)[0].method == "ship"
