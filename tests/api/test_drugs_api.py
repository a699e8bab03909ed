"""Drug traceability over REST on 127.0.0.1, and the public page a pack's QR code opens.

GTIN 09506000134352 is GS1's own example GTIN (tests/standards/gs1/testdata/README.md).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from carechain.api.client import ApiError, NodeClient, build_transaction
from carechain.identity.wallet import Credentials
from carechain.node.drugs import DrugService
from carechain.node.node import Node
from carechain.standards.epcis import import_document
from carechain.standards.gs1 import PackId, with_check_digit
from carechain.standards.qr import read_codes, read_pack
from support import Server, license_demo_maker

Member = Callable[[str], Credentials]
GTIN = "09506000134352"
PATIENT = "pumch:patient-7f3a9c"


@pytest.fixture(autouse=True)
def _licensed(request: pytest.FixtureRequest) -> None:
    """The regulator licenses the demo maker's prefix and product code before a test's node runs."""
    if "node" in request.fixturenames:
        member = request.getfixturevalue("member")
        license_demo_maker(request.getfixturevalue("node"), member("nmpa/admin"))


def call(c: NodeClient, method: str, args: dict[str, Any]) -> Any:
    tx = build_transaction(c.creds, "demo", "drugs", method, args)
    return c.request("POST", f"/v1/drugs/{method}", raw_body=tx.wire_bytes())


def key(serial: str) -> str:
    return PackId.sgtin(GTIN, serial).key


@pytest.fixture
def at_pharmacy(as_member: Callable[[str], NodeClient]) -> list[str]:
    maker, pharmacy = as_member("sinopharm-mfg/qa-01"), as_member("yf-pharmacy/ph-chen")
    packs = [{"code": key(s), "lot": "LOT1", "expiry": "291231"} for s in ("P1", "P2")]
    assert call(maker, "commission", {"packs": packs})["code"] == "ok"
    shipment = "shp-" + secrets.token_hex(12)
    ship = {"shipment": shipment, "to": "yf-pharmacy", "items": [key("P1"), key("P2")]}
    call(maker, "ship", ship)
    call(pharmacy, "receive", {"shipment": shipment})
    return [key("P1"), key("P2")]


def test_a_pack_is_followed_and_dispensed_at_the_counter(
    as_member: Callable[[str], NodeClient], at_pharmacy: list[str], api: Server
) -> None:
    pharmacy = as_member("yf-pharmacy/ph-chen")
    link = f"https://id.gs1.org/01/{GTIN}/21/P1"
    view = pharmacy.request("GET", "/v1/drugs/pack", params={"code": link, "selling": "true"})
    assert view["verdict"] == "genuine" and view["holder"] == "yf-pharmacy"
    assert [s["step"] for s in view["journey"]] == ["commissioning", "shipping", "receiving"]
    call(pharmacy, "dispense", {"code": link, "patient": PATIENT})
    after = pharmacy.request("GET", "/v1/drugs/pack", params={"code": at_pharmacy[0]})
    assert after["verdict"] == "dispensed" and after["journey"][-1]["patient"] == PATIENT
    with pytest.raises(ApiError) as twice:
        call(pharmacy, "dispense", {"code": link})
    assert twice.value.http_status == 422 and "already dispensed" in twice.value.message
    # The public page: no login, the verdict in words and colour, the journey, no patient.
    page = httpx.get(f"{api.url}/01/{GTIN}/21/P1")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "already dispensed to a patient" in page.text and "yf-pharmacy" in page.text
    assert PATIENT not in page.text and "patient-7f3a9c" not in page.text
    genuine = httpx.get(f"{api.url}/01/{GTIN}/10/LOT1/21/P2")
    assert "genuine and saleable" in genuine.text and "#1b7f3b" in genuine.text
    maker = as_member("sinopharm-mfg/qa-01")
    call(maker, "register_product", {"product": GTIN, "name": "阿莫西林胶囊", "strength": "0.25 g"})
    named = httpx.get(f"{api.url}/01/{GTIN}/21/P2")
    assert "阿莫西林胶囊" in named.text


def test_unknown_and_malformed_codes_on_the_public_page(api: Server) -> None:
    unknown = httpx.get(f"{api.url}/01/{GTIN}/21/NEVER")
    assert unknown.status_code == 200 and "never commissioned" in unknown.text
    wrong_digit = httpx.get(f"{api.url}/01/09506000134353/21/X")
    assert wrong_digit.status_code == 400 and "check digit" in wrong_digit.text
    retail = httpx.get(f"{api.url}/cn/6901234567892")
    assert retail.status_code == 400 and "商品条码" in retail.text


def test_the_qr_code_round_trips_and_a_photo_is_checked(
    as_member: Callable[[str], NodeClient], at_pharmacy: list[str]
) -> None:
    pharmacy = as_member("yf-pharmacy/ph-chen")
    png = pharmacy.request_raw("GET", "/v1/drugs/qr", params={"code": at_pharmacy[1]}).content
    assert read_pack(png).pack.key == at_pharmacy[1]
    view = pharmacy.request("POST", "/v1/drugs/scan-image", raw_body=png)
    assert view["pack"] == at_pharmacy[1] and view["verdict"] == "genuine"
    with pytest.raises(ApiError) as garbage:
        pharmacy.request("POST", "/v1/drugs/scan-image", raw_body=b"not an image")
    assert garbage.value.http_status == 400


def test_scans_are_for_regulators_and_routes_take_their_own_method(
    as_member: Callable[[str], NodeClient], at_pharmacy: list[str]
) -> None:
    pharmacy = as_member("yf-pharmacy/ph-chen")
    call(pharmacy, "verify", {"code": key("FAKE1"), "selling": True})
    scans = as_member("nmpa/admin").request("GET", "/v1/drugs/scans", params={"suspicious": "true"})
    assert [(s["verdict"], s["org"]) for s in scans["scans"]] == [("unknown", "yf-pharmacy")]
    with pytest.raises(ApiError) as forbidden:
        pharmacy.request("GET", "/v1/drugs/scans")
    assert forbidden.value.http_status == 403
    tx = build_transaction(pharmacy.creds, "demo", "drugs", "verify", {"code": key("P1")})
    with pytest.raises(ApiError) as wrong_route:
        pharmacy.request("POST", "/v1/drugs/dispense", raw_body=tx.wire_bytes())
    assert wrong_route.value.http_status == 400 and "drugs.dispense" in wrong_route.value.message
    with pytest.raises(ApiError) as bad_json:
        pharmacy.request("POST", "/v1/drugs/ship", raw_body=b"{")
    assert bad_json.value.http_status == 400


def test_a_packs_journey_exports_as_epcis_and_reads_back_as_the_same_calls(
    as_member: Callable[[str], NodeClient],
) -> None:
    maker, pharmacy = as_member("sinopharm-mfg/qa-01"), as_member("yf-pharmacy/ph-chen")
    codes = [key("E1"), key("E2")]
    call(maker, "commission", {"lot": "LOT5", "expiry": "300131", "codes": codes})
    case = with_check_digit("09506000000000077")
    call(maker, "aggregate", {"parent": case, "children": codes})
    shipment = "shp-" + secrets.token_hex(12)
    call(maker, "ship", {"shipment": shipment, "to": "yf-pharmacy", "items": [case]})
    call(pharmacy, "receive", {"shipment": shipment})
    call(pharmacy, "dispense", {"code": codes[0], "patient": PATIENT})
    doc = pharmacy.request("GET", "/v1/drugs/epcis", params={"code": codes[0]})
    assert doc["type"] == "EPCISDocument" and doc["schemaVersion"] == "2.0"
    assert PATIENT not in str(doc) and "patient-7f3a9c" not in str(doc)
    commands = import_document(doc)
    assert [c.method for c in commands] == ["commission", "aggregate", "ship", "receive",
                                            "dispense"]  # fmt: skip
    assert commands[2].args["items"] == [case] and commands[2].args["to"] == "yf-pharmacy"
    with pytest.raises(ApiError) as unknown:
        pharmacy.request("GET", "/v1/drugs/epcis", params={"code": key("NOPE")})
    assert unknown.value.http_status == 404


def test_the_qr_code_opens_this_nodes_page_and_oversize_calls_are_refused(
    as_member: Callable[[str], NodeClient], at_pharmacy: list[str], api: Server
) -> None:
    pharmacy = as_member("yf-pharmacy/ph-chen")
    png = pharmacy.request_raw("GET", "/v1/drugs/qr", params={"code": at_pharmacy[0]}).content
    (decoded,) = read_codes(png)
    assert decoded.text == f"{api.url}/01/{GTIN}/21/P1"
    assert "genuine and saleable" in httpx.get(decoded.text).text
    huge = {"lot": "L", "expiry": "301231", "codes": [key(f"H{i:07d}") for i in range(9000)]}
    tx = build_transaction(as_member("sinopharm-mfg/qa-01").creds, "demo", "drugs",
                           "commission", huge)  # fmt: skip
    with pytest.raises(ApiError) as oversize:
        pharmacy.request("POST", "/v1/drugs/commission", raw_body=tx.wire_bytes())
    assert oversize.value.http_status == 413 and "the limit is" in oversize.value.message


def test_a_recall_names_its_product_by_a_gtin_of_any_length(
    as_member: Callable[[str], NodeClient], at_pharmacy: list[str]
) -> None:
    recall = {"product": GTIN.lstrip("0"), "lot": "LOT1", "reason": "safety"}  # 13 digits
    assert call(as_member("nmpa/admin"), "recall", recall)["code"] == "ok"
    view = as_member("yf-pharmacy/ph-chen").request("GET", "/v1/drugs/pack",
                                                    params={"code": at_pharmacy[0]})  # fmt: skip
    assert view["verdict"] == "recalled"


def test_an_epcis_document_is_planned_into_calls_and_refused_with_its_path(
    as_member: Callable[[str], NodeClient], at_pharmacy: list[str]
) -> None:
    pharmacy = as_member("yf-pharmacy/ph-chen")
    doc = pharmacy.request("GET", "/v1/drugs/epcis", params={"code": at_pharmacy[0]})
    plan = pharmacy.request("POST", "/v1/drugs/epcis/plan", body=doc)
    assert [c["method"] for c in plan["calls"]] == ["commission", "ship", "receive"]
    assert plan["calls"][0]["source"].startswith("epcisBody.eventList[0]")
    doc["epcisBody"]["eventList"][1]["type"] = "MysteryEvent"
    with pytest.raises(ApiError) as refused:
        pharmacy.request("POST", "/v1/drugs/epcis/plan", body=doc)
    assert refused.value.code == "invalid_epcis" and "eventList[1]" in refused.value.message


def test_suspicious_codes_checked_on_the_public_page_reach_the_regulator(
    as_member: Callable[[str], NodeClient], api: Server, node: Node
) -> None:
    for _ in range(3):  # the same copied code, checked again and again: recorded once
        assert "never commissioned" in httpx.get(f"{api.url}/01/{GTIN}/21/COPY1").text
    deadline = time.monotonic() + 5
    scans: list[Any] = []
    while time.monotonic() < deadline and not scans:
        scans = as_member("nmpa/admin").request("GET", "/v1/drugs/scans")["scans"]
        time.sleep(0.05)
    assert [(s["verdict"], s["public"], s["pack"]) for s in scans] == [
        ("unknown", True, key("COPY1"))
    ]
    with pytest.raises(ApiError) as posing:
        call(as_member("yf-pharmacy/ph-chen"), "verify", {"code": key("P9"), "public": True})
    assert posing.value.http_status == 403


def test_serials_with_slashes_and_percents_keep_their_own_journey(
    as_member: Callable[[str], NodeClient], api: Server
) -> None:
    maker, pharmacy = as_member("sinopharm-mfg/qa-01"), as_member("yf-pharmacy/ph-chen")
    codes = [key("AB"), key("AB/1"), key("A%41")]
    call(maker, "commission", {"lot": "SL1", "expiry": "301231", "codes": codes})
    shipment = "shp-" + secrets.token_hex(12)
    call(maker, "ship", {"shipment": shipment, "to": "yf-pharmacy", "items": [codes[1]]})
    call(pharmacy, "receive", {"shipment": shipment})
    call(pharmacy, "dispense", {"code": codes[1], "patient": PATIENT})
    ab = pharmacy.request("GET", "/v1/drugs/pack", params={"code": codes[0]})
    assert ab["verdict"] == "genuine"
    assert [s["step"] for s in ab["journey"]] == ["commissioning"]
    # The public page of each, by the links their QR codes hold.
    assert "genuine" in httpx.get(f"{api.url}/01/{GTIN}/21/AB").text
    assert "already dispensed" in httpx.get(f"{api.url}/01/{GTIN}/21/AB%2F1").text
    percent = httpx.get(f"{api.url}/01/{GTIN}/21/A%2541")
    assert percent.status_code == 200 and "never commissioned" not in percent.text
    # Who a pack went to: the dispensing pharmacy sees it, another organisation does not.
    seen = pharmacy.request("GET", "/v1/drugs/pack", params={"code": codes[1]})
    assert seen["journey"][-1]["patient"] == PATIENT
    other = as_member("pumch/dr-wang").request("GET", "/v1/drugs/pack", params={"code": codes[1]})
    assert "patient" not in other["journey"][-1]


def test_a_relabelled_lot_shows_on_the_public_page(at_pharmacy: list[str], api: Server) -> None:
    page = httpx.get(f"{api.url}/01/{GTIN}/10/FAKELOT/21/P1")
    assert "#b00020" in page.text and "the lot printed on it (FAKELOT)" in page.text


def test_one_client_cannot_use_up_the_public_scan_budget(node: Node) -> None:
    service = DrugService(node)
    recorded = [service.record_public_scan(key(f"R{i}"), "unknown", "10.0.0.9") for i in range(15)]
    assert recorded.count(True) == 10
    assert service.record_public_scan(key("R99"), "unknown", "10.0.0.10")


def test_licences_are_listed_and_a_refused_shipment_goes_back(
    as_member: Callable[[str], NodeClient], at_pharmacy: list[str]
) -> None:
    maker, pharmacy = as_member("sinopharm-mfg/qa-01"), as_member("yf-pharmacy/ph-chen")
    listed = pharmacy.request("GET", "/v1/drugs/licences")["licences"]
    assert {(x.get("gs1_prefix") or x.get("cn_product"), x["org"], x["by"]) for x in listed} == {
        ("9506000", "sinopharm-mfg", "nmpa"), ("8123456", "sinopharm-mfg", "nmpa")}  # fmt: skip
    assert pharmacy.request("GET", "/v1/drugs/licences", params={"org": "icbc"}) == {"licences": []}
    with pytest.raises(ApiError) as refused:
        call(maker, "license", {"org": "sinopharm-mfg", "gs1_prefix": "6901234"})
    assert refused.value.http_status == 403
    # The pharmacy ships P1 back to the maker, which refuses it: P1 stays the pharmacy's.
    sid = "shp-" + secrets.token_hex(12)
    call(pharmacy, "ship", {"shipment": sid, "to": "sinopharm-mfg", "items": [at_pharmacy[0]]})
    with pytest.raises(ApiError) as wrong:
        call(pharmacy, "reject_shipment", {"shipment": sid, "reason": "damaged"})
    assert wrong.value.http_status == 403 and "not sent to yf-pharmacy" in wrong.value.message
    assert (
        call(maker, "reject_shipment", {"shipment": sid, "reason": "not_ordered"})["code"] == "ok"
    )
    seen = pharmacy.request("GET", f"/v1/drugs/shipments/{sid}")
    assert seen["status"] == "rejected" and seen["reason"] == "not_ordered"
    view = pharmacy.request(
        "GET", "/v1/drugs/pack", params={"code": at_pharmacy[0], "selling": True}
    )
    assert view["verdict"] == "genuine" and view["journey"][-1]["step"] == "arriving"
