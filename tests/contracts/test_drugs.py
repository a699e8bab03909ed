"""The drugs contract on a real node: a pack from commissioning to dispensing, and
every way the supply chain can be abused refused with no state change.

GTIN 09506000134352 is GS1's own example GTIN (GS1 Resolver CE test data; see
tests/standards/gs1/testdata/README.md). The 20-digit 药品追溯码 values are made
up: no public sample code was found (same README).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from carechain.api.client import build_transaction
from carechain.contracts.drugs import verdict
from carechain.crypto.suite import DEFAULT
from carechain.identity.certificates import create_org_ca, fingerprint_of, issue_member_certificate
from carechain.identity.roles import OrgType, Role
from carechain.identity.wallet import Credentials
from carechain.node.drugs import DrugService
from carechain.node.node import Node, TxStatus
from carechain.standards.gs1 import PackId, with_check_digit
from support import license_demo_maker

Member = Callable[[str], Credentials]
GTIN = "09506000134352"
MAKER, CARRIER, PHARMACY = "sinopharm-mfg/qa-01", "jd-logistics/admin", "yf-pharmacy/ph-chen"
CN_CODE = "81234567890123456789"  # made up: the NMPA rule's layout is not public


@pytest.fixture(autouse=True)
def _licensed(request: pytest.FixtureRequest) -> None:
    """The regulator licenses the demo maker's prefix and product code before a test's node runs."""
    if "node" in request.fixturenames:
        member = request.getfixturevalue("member")
        license_demo_maker(request.getfixturevalue("node"), member("nmpa/admin"))


def send(node: Node, creds: Credentials, method: str, args: dict[str, Any]) -> TxStatus:
    return node.submit_one(build_transaction(creds, "demo", "drugs", method, args), wait_s=10)


def state(node: Node, key: str) -> Any:
    raw = node.state.get("drugs/" + key)
    return None if raw is None else orjson.loads(raw)


def contract_state(node: Node) -> list[tuple[str, bytes]]:
    return node.state.scan("drugs/")


def sgtin(serial: str) -> str:
    return PackId.sgtin(GTIN, serial).key


def sscc(n: int) -> str:
    return with_check_digit(f"0950600{n:010d}")


def shipment() -> str:
    return "shp-" + secrets.token_hex(12)


def ok(status: TxStatus) -> None:
    assert status.code == "ok", status.message


def packs(*serials: str, lot: str = "LOT1", expiry: str = "291231") -> dict[str, Any]:
    return {"packs": [{"code": sgtin(s), "lot": lot, "expiry": expiry} for s in serials]}


def now_verdict(node: Node, key: str, seller: str | None) -> str:
    return verdict(lambda k: state(node, k), PackId.from_key(key), seller, int(time.time() * 1000))


def move(node: Node, member: Member, items: list[str], sender: str, receiver: str) -> None:
    to = receiver.split("/")[0]
    sid = shipment()
    ok(send(node, member(sender), "ship", {"shipment": sid, "to": to, "items": items}))
    ok(send(node, member(receiver), "receive", {"shipment": sid}))


def test_a_pack_goes_from_factory_to_patient_inside_a_case(node: Node, member: Member) -> None:
    ok(send(node, member(MAKER), "commission", packs("S1", "S2", "S3")))
    case = sscc(1)
    ok(send(node, member(MAKER), "aggregate", {"parent": case, "children": [sgtin("S1"),
        sgtin("S2"), sgtin("S3")]}))  # fmt: skip
    # The case moves; the packs inside it follow without being touched.
    move(node, member, [case], MAKER, CARRIER)
    assert state(node, f"unit/{case}")["owner"] == "jd-logistics"
    assert state(node, f"pack/{sgtin('S1')}")["owner"] == "sinopharm-mfg"  # custody is the case's
    assert now_verdict(node, sgtin("S1"), "jd-logistics") == "genuine"
    assert now_verdict(node, sgtin("S1"), "yf-pharmacy") == "not_in_custody"
    move(node, member, [case], CARRIER, PHARMACY)
    # The pharmacist scans the pack at the counter (Digital Link as in the QR code).
    link = f"https://id.gs1.org/01/{GTIN}/21/S1"
    ok(send(node, member(PHARMACY), "dispense", {"code": link, "patient": "pumch:patient-7f3a9c"}))
    pack = state(node, f"pack/{sgtin('S1')}")
    assert pack["status"] == "dispensed" and pack["parent"] is None
    assert sgtin("S1") not in state(node, f"unit/{case}")["children"]
    assert now_verdict(node, sgtin("S1"), None) == "dispensed"  # a copied code shows it
    assert now_verdict(node, sgtin("S2"), "yf-pharmacy") == "genuine"
    steps = [e["biz_step"] for _, e in ((k, orjson.loads(v)) for k, v in
             node.state.scan(f"drugs/event/{sgtin('S1')}/"))]  # fmt: skip
    assert steps == ["commissioning", "packing", "dispensing"]


def test_a_chinese_traceability_code_is_a_pack_of_equal_standing(
    node: Node, member: Member
) -> None:
    args = {"packs": [{"code": f" {CN_CODE}\r\n", "lot": "B2031", "expiry": "280600"}]}
    ok(send(node, member(MAKER), "commission", args))
    pack = state(node, f"pack/cn-trace:{CN_CODE}")
    assert pack["product"] == "cn:8123456" and pack["expiry"] == "2028-06-30"
    move(node, member, [CN_CODE], MAKER, PHARMACY)
    ok(send(node, member(PHARMACY), "dispense", {"code": CN_CODE}))
    again = send(node, member(PHARMACY), "dispense", {"code": CN_CODE})
    assert "already dispensed" in (again.message or "")


def test_recalls_and_expiry_stop_a_sale(node: Node, member: Member) -> None:
    ok(send(node, member(MAKER), "commission", packs("R1", lot="BAD7")))
    stale = send(node, member(MAKER), "commission", packs("E0", lot="OLD1", expiry="200100"))
    assert "has already passed" in (stale.message or "")
    move(node, member, [sgtin("R1")], MAKER, PHARMACY)
    recall = {"product": GTIN, "lot": "BAD7", "reason": "quality"}
    assert send(node, member(PHARMACY), "recall", recall).code == "forbidden"
    ok(send(node, member("nmpa/admin"), "recall", recall))
    refused = send(node, member(PHARMACY), "dispense", {"code": sgtin("R1")})
    assert "recalled" in (refused.message or "")
    assert state(node, f"pack/{sgtin('R1')}")["status"] == "active"


def test_a_pack_past_its_expiry_is_not_dispensed() -> None:
    """Expiry is judged at block time: the verdict of a pack whose date has passed."""
    doc = {"status": "active", "product": GTIN, "lot": "L", "expiry": "2026-01-31",
           "parent": None, "owner": "yf-pharmacy", "transit": None}  # fmt: skip
    states = {f"pack/{sgtin('E1')}": doc}
    pack = PackId.from_key(sgtin("E1"))
    jan_31, feb_1 = 1769817600000, 1769904000000  # 2026-01-31 and 2026-02-01, 00:00 UTC
    assert verdict(states.get, pack, "yf-pharmacy", jan_31) == "genuine"
    assert verdict(states.get, pack, "yf-pharmacy", feb_1) == "expired"


@pytest.mark.parametrize(
    ("who", "method", "args", "code", "words"),
    [
        (PHARMACY, "commission", packs("X1"), "forbidden", ""),
        (MAKER, "commission", {"packs": [{"code": f"(01){GTIN[:-1]}3(21)X1", "lot": "L",
         "expiry": "291231"}]}, "contract_error", "check digit"),
        (MAKER, "commission", packs("X1", expiry="291332"), "contract_error", "month 13"),
        (MAKER, "commission", {"packs": [{"code": "6901234567892", "lot": "L",
         "expiry": "291231"}]}, "contract_error", "retail barcode"),
        (MAKER, "commission", {"packs": [{"code": sgtin("X1"), "lot": "L", "expiry": "291231",
         "patient": "x"}]}, "contract_error", "unknown field"),
        (MAKER, "commission", {"packs": []}, "contract_error", "no packs"),
        (MAKER, "commission", {"lot": "L", "expiry": "291231", "codes": [sgtin("X1")],
         "note": "x"}, "contract_error", "unknown argument"),
        (MAKER, "aggregate", {"parent": "095060000000000016", "children": [sgtin("S1")]},
         "contract_error", "check digit"),
        (MAKER, "recall", {"product": GTIN, "lot": "L", "reason": "whim"}, "contract_error",
         "not one of"),
        (MAKER, "ship", {"shipment": "shp-1", "to": "yf-pharmacy", "items": [sgtin("S1")]},
         "contract_error", "shipment"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_changes_nothing(
    node: Node, member: Member, who: str, method: str, args: dict[str, Any], code: str, words: str
) -> None:
    before = contract_state(node)
    status = send(node, member(who), method, args)
    assert status.code == code, status.message
    assert words in (status.message or "")
    assert contract_state(node) == before


def test_custody_abuse_is_refused(node: Node, member: Member) -> None:
    ok(send(node, member(MAKER), "commission", packs("C1", "C2")))
    before = contract_state(node)
    # Shipping what you do not hold; receiving what was not sent to you.
    stolen = {"shipment": shipment(), "to": "yf-pharmacy", "items": [sgtin("C1")]}
    assert send(node, member(CARRIER), "ship", stolen).code == "forbidden"
    sid = shipment()
    ok(send(node, member(MAKER), "ship", {"shipment": sid, "to": "jd-logistics",
        "items": [sgtin("C1")]}))  # fmt: skip
    middle = contract_state(node)
    assert send(node, member(PHARMACY), "receive", {"shipment": sid}).code == "forbidden"
    # Selling from stock in transit, shipping it twice, dispensing before receiving.
    assert "in transit" in (send(node, member(MAKER), "ship", {"shipment": shipment(),
        "to": "yf-pharmacy", "items": [sgtin("C1")]}).message or "")  # fmt: skip
    assert send(node, member(PHARMACY), "dispense", {"code": sgtin("C1")}).code == (
        "contract_error"
    )
    assert contract_state(node) == middle
    ok(send(node, member(CARRIER), "receive", {"shipment": sid}))
    again = send(node, member(CARRIER), "receive", {"shipment": sid})
    assert "already received" in (again.message or "")
    # Aggregating a pack twice.
    ok(send(node, member(MAKER), "aggregate", {"parent": sscc(7), "children": [sgtin("C2")]}))
    twice = send(node, member(MAKER), "aggregate", {"parent": sscc(8), "children": [sgtin("C2")]})
    assert "is inside" in (twice.message or "")
    assert contract_state(node) != before


def test_unknown_and_copied_codes_are_caught_and_every_scan_is_recorded(
    node: Node, member: Member
) -> None:
    ok(send(node, member(MAKER), "commission", packs("V1")))
    move(node, member, [sgtin("V1")], MAKER, PHARMACY)
    ok(send(node, member(PHARMACY), "verify", {"code": sgtin("V1"), "selling": True}))
    ok(send(node, member(PHARMACY), "verify", {"code": sgtin("FAKE9"), "selling": True}))
    ok(send(node, member(PHARMACY), "dispense", {"code": sgtin("V1")}))
    ok(send(node, member("pumch/patient-7f3a9c"), "verify", {"code": sgtin("V1")}))
    scans = [orjson.loads(v) for _, v in node.state.scan("drugs/scan/")]
    assert [(s["verdict"], s["org"]) for s in scans] == [
        ("genuine", "yf-pharmacy"),
        ("unknown", "yf-pharmacy"),
        ("dispensed", "pumch"),
    ]


def test_a_whole_lot_is_commissioned_in_the_compact_form(node: Node, member: Member) -> None:
    codes = [sgtin(f"B{i:05d}") for i in range(5000)]
    args = {"lot": "LOT9", "expiry": "300630", "codes": codes}
    ok(send(node, member(MAKER), "commission", args))
    assert len(node.state.scan("drugs/pack/")) == 5000
    assert state(node, f"pack/{codes[-1]}")["expiry"] == "2030-06-30"


def test_a_serial_is_commissioned_once_whatever_form_names_it(node: Node, member: Member) -> None:
    ok(send(node, member(MAKER), "commission", packs("D1")))
    again = send(node, member(MAKER), "commission", packs("D1"))
    assert "already commissioned" in (again.message or "")
    # The same pack in another scanned form is the same pack.
    element = send(node, member(MAKER), "commission", {"packs": [{"code": f"(01){GTIN}(21)D1",
        "lot": "LOT1", "expiry": "291231"}]})  # fmt: skip
    assert "already commissioned" in (element.message or "")


def test_a_product_is_named_by_its_maker_only(node: Node, member: Member) -> None:
    named = {"product": GTIN.lstrip("0"), "name": "阿莫西林胶囊", "strength": "0.25 g",
             "approval": "国药准字H00000000"}  # fmt: skip
    assert send(node, member(PHARMACY), "register_product", named).code == "forbidden"
    ok(send(node, member(MAKER), "register_product", named))
    product = state(node, f"product/{GTIN}")
    assert product["name"] == "阿莫西林胶囊" and product["manufacturer"] == "sinopharm-mfg"
    ok(send(node, member(MAKER), "commission", packs("N1")))  # keeps the name
    assert state(node, f"product/{GTIN}")["strength"] == "0.25 g"
    before = contract_state(node)
    for bad in ({"name": " padded"}, {"name": "two\nlines"}, {"product": "cn:12"},
                {"product": "09506000134353"}, {"colour": "red"}):  # fmt: skip
        status = send(node, member(MAKER), "register_product", {**named, **bad})
        assert status.code == "contract_error", (bad, status)
    assert contract_state(node) == before


# -- found in review ------------------------------------------------------------------------


def test_units_nest_at_most_pallets_of_cases(node: Node, member: Member) -> None:
    ok(send(node, member(MAKER), "commission", packs("NEST1")))
    ok(send(node, member(MAKER), "aggregate", {"parent": sscc(101), "children": [sgtin("NEST1")]}))
    ok(send(node, member(MAKER), "aggregate", {"parent": sscc(102), "children": [sscc(101)]}))
    before = contract_state(node)
    deeper = send(node, member(MAKER), "aggregate", {"parent": sscc(103), "children": [sscc(102)]})
    assert deeper.code == "contract_error" and "at most 2 deep" in (deeper.message or "")
    assert contract_state(node) == before


def test_what_a_code_prints_must_agree_and_unknown_patients_are_refused(
    node: Node, member: Member
) -> None:
    printed = f"(01){GTIN}(17)270101(10)REAL(21)LT1"
    for lot, expiry, words in (("OTHER", "270101", "says lot REAL"),
                               ("REAL", "291231", "says expiry 270101")):  # fmt: skip
        status = send(node, member(MAKER), "commission",
                      {"packs": [{"code": printed, "lot": lot, "expiry": expiry}]})  # fmt: skip
        assert status.code == "contract_error" and words in (status.message or "")
    ok(send(node, member(MAKER), "commission",
            {"packs": [{"code": printed, "lot": "REAL", "expiry": "270101"}]}))  # fmt: skip
    move(node, member, [sgtin("LT1")], MAKER, PHARMACY)
    nobody = send(node, member(PHARMACY), "dispense", {"code": sgtin("LT1"), "patient": "pumch:x1"})
    assert "unknown patient pumch:x1" in (nobody.message or "")


def test_a_shipment_or_unit_holds_what_one_state_value_can(node: Node, member: Member) -> None:
    items = [sgtin(f"BIG{i:05d}") for i in range(1501)]
    status = send(node, member(MAKER), "ship",
                  {"shipment": shipment(), "to": "yf-pharmacy", "items": items})  # fmt: skip
    assert status.code == "contract_error" and "more than 1500 items" in (status.message or "")


def test_an_unreadable_code_is_counted_by_its_fingerprint(node: Node, member: Member) -> None:
    ok(send(node, member(PHARMACY), "verify", {"code": "(01)09506000134353(21)X"}))
    (scan,) = [orjson.loads(v) for _, v in node.state.scan("drugs/scan/")]
    assert scan["pack"] is None and scan["verdict"] == "unknown" and len(scan["unreadable"]) == 64


def test_a_journey_keeps_the_order_of_steps_within_one_block(node: Node, member: Member) -> None:
    """Unpack, repack and ship in one block: the journey follows the block's order."""
    maker = member(MAKER)
    ok(send(node, maker, "commission", packs("ORD1")))
    ok(send(node, maker, "aggregate", {"parent": sscc(201), "children": [sgtin("ORD1")]}))
    sid = shipment()
    steps = [
        ("disaggregate", {"parent": sscc(201)}),
        ("aggregate", {"parent": sscc(202), "children": [sgtin("ORD1")]}),
        ("ship", {"shipment": sid, "to": "yf-pharmacy", "items": [sscc(202)]}),
    ]
    txs = [build_transaction(maker, "demo", "drugs", m, a) for m, a in steps]
    receipts = node.submit(txs)
    assert all(not isinstance(r, Exception) and r.wait(10) for r in receipts)
    heights = {node.tx_status(tx.txid).height for tx in txs}
    assert len(heights) == 1, heights  # one block
    assert all(node.tx_status(tx.txid).code == "ok" for tx in txs)
    ok(send(node, member(PHARMACY), "receive", {"shipment": sid}))
    journey = DrugService(node).journey(sgtin("ORD1"))
    assert [(s["step"], s.get("parent")) for s in journey] == [
        ("commissioning", None),
        ("packing", sscc(201)),
        ("unpacking", sscc(201)),
        ("packing", sscc(202)),
        ("shipping", None),
        ("receiving", None),
    ]


# -- licences: who may commission which products ------------------------------------------

OTHER_GTIN = "06901234567892"  # a GTIN-13 under prefix 6901234 (check digit computed)


def _admit_manufacturer(node: Node, member: Member, org_id: str) -> Credentials:
    """Admit a second manufacturer the way a consortium does: a proposal and a majority."""
    now = datetime.now(UTC).replace(microsecond=0)
    ca_key = DEFAULT.generate_private_key()
    ca_pem = create_org_ca(org_id, "江苏恒瑞医药 Hengrui", OrgType.MANUFACTURER, ca_key,
                           now - timedelta(days=1), now + timedelta(days=400))  # fmt: skip
    admin_key = DEFAULT.generate_private_key()
    valid = (now - timedelta(minutes=1), now + timedelta(days=365))
    admin_pem = issue_member_certificate(
        ca_pem, ca_key, "admin", Role.ADMIN, DEFAULT.public_key(admin_key), *valid
    )
    proposal = node.submit_one(
        build_transaction(member("pumch/admin"), "demo", "governance", "propose_admit_org",
                          {"ca_certificate": ca_pem.decode(), "admin_certificates":
                           [admin_pem.decode()]}), wait_s=10)  # fmt: skip
    ok(proposal)
    for org in ("chaoyang-clinic", "yf-pharmacy", "sinopharm-mfg", "jd-logistics"):
        vote = build_transaction(member(f"{org}/admin"), "demo", "governance", "vote",
                                 {"proposal": proposal.txid, "approve": True})  # fmt: skip
        ok(node.submit_one(vote, wait_s=10))
    return Credentials(fingerprint_of(admin_pem), admin_pem, admin_key)


def test_only_the_licensee_of_a_prefix_commissions_its_products(node: Node, member: Member) -> None:
    hengrui = _admit_manufacturer(node, member, "hengrui")
    regulator = member("nmpa/admin")
    # sinopharm-mfg holds 9506000 (the autouse fixture): hengrui cannot claim its GTINs.
    squat = send(node, hengrui, "commission", packs("H1"))
    assert squat.code == "forbidden" and "licensed to sinopharm-mfg" in (squat.message or "")
    named = {"product": GTIN, "name": "假药 fake"}
    assert send(node, hengrui, "register_product", named).code == "forbidden"
    # Nor may sinopharm commission a prefix nobody holds.
    other = {"packs": [{"code": PackId.sgtin(OTHER_GTIN, "Z1").key, "lot": "L1",
                        "expiry": "291231"}]}  # fmt: skip
    unlicensed = send(node, member(MAKER), "commission", other)
    assert unlicensed.code == "forbidden" and "licensed to anyone" in (unlicensed.message or "")
    # The regulator licenses 6901234 to hengrui, which then commissions under it.
    ok(send(node, regulator, "license", {"org": "hengrui", "gs1_prefix": "6901234"}))
    ok(send(node, hengrui, "commission", other))
    assert state(node, f"product/{OTHER_GTIN}")["manufacturer"] == "hengrui"
    other["packs"][0]["code"] = PackId.sgtin(OTHER_GTIN, "Z2").key
    assert send(node, member(MAKER), "commission", other).code == "forbidden"
    # A licence moves: withdrawn from sinopharm, granted to hengrui; old packs keep their maker.
    ok(send(node, member(MAKER), "commission", packs("H2")))
    ok(
        send(
            node, regulator, "withdraw_licence", {"gs1_prefix": "9506000", "reason": "transferred"}
        )
    )
    after = send(node, member(MAKER), "commission", packs("H3"))
    assert after.code == "forbidden" and "licensed to anyone" in (after.message or "")
    ok(send(node, regulator, "license", {"org": "hengrui", "gs1_prefix": "9506000"}))
    ok(send(node, hengrui, "commission", packs("H3")))
    assert state(node, f"product/{GTIN}")["manufacturer"] == "hengrui"
    assert state(node, f"pack/{sgtin('H2')}")["manufacturer"] == "sinopharm-mfg"
    (ended,) = [orjson.loads(v) for _, v in node.state.scan("drugs/withdrawn/gs1/9506000/")]
    assert ended["org"] == "sinopharm-mfg" and ended["reason"] == "transferred"
    listed = DrugService(node).licences()
    assert {(x.get("gs1_prefix") or x.get("cn_product"), x["org"]) for x in listed} == {
        ("9506000", "hengrui"), ("6901234", "hengrui"), ("8123456", "sinopharm-mfg")}  # fmt: skip


@pytest.mark.parametrize(
    ("who", "args", "code", "words"),
    [
        (MAKER, {"org": "sinopharm-mfg", "gs1_prefix": "690"}, "forbidden", ""),
        ("nmpa/auditor-01", {"org": "sinopharm-mfg", "gs1_prefix": "6901234"}, "forbidden", ""),
        ("nmpa/admin", {"org": "yf-pharmacy", "gs1_prefix": "6901234"}, "contract_error",
         "not a manufacturer"),
        ("nmpa/admin", {"org": "nobody", "gs1_prefix": "6901234"}, "contract_error",
         "unknown organisation"),
        ("nmpa/admin", {"org": "sinopharm-mfg", "gs1_prefix": "690"}, "contract_error",
         "gs1_prefix"),
        ("nmpa/admin", {"org": "sinopharm-mfg", "gs1_prefix": "69012A"}, "contract_error",
         "gs1_prefix"),
        ("nmpa/admin", {"org": "sinopharm-mfg"}, "contract_error", "exactly one"),
        ("nmpa/admin", {"org": "sinopharm-mfg", "gs1_prefix": "6901234",
         "cn_product": "1234567"}, "contract_error", "exactly one"),
        ("nmpa/admin", {"org": "sinopharm-mfg", "cn_product": "123456"}, "contract_error",
         "cn_product"),
        ("nmpa/admin", {"org": "sinopharm-mfg", "gs1_prefix": "9506000"}, "contract_error",
         "already licensed"),
        ("nmpa/admin", {"org": "sinopharm-mfg", "gs1_prefix": "95060001"}, "contract_error",
         "lies inside 9506000"),
        ("nmpa/admin", {"org": "sinopharm-mfg", "gs1_prefix": "950600"}, "contract_error",
         "would cover 9506000"),
        ("nmpa/admin", {"org": "sinopharm-mfg", "gs1_prefix": "6901234", "note": "x"},
         "contract_error", "unknown argument"),
    ],
)  # fmt: skip
def test_a_licence_is_granted_by_a_regulator_to_a_manufacturer_only(
    node: Node, member: Member, who: str, args: dict[str, Any], code: str, words: str
) -> None:
    before = contract_state(node)
    status = send(node, member(who), "license", args)
    assert status.code == code and words in (status.message or ""), status.message
    assert contract_state(node) == before


def test_withdrawing_a_licence_is_checked(node: Node, member: Member) -> None:
    before = contract_state(node)
    for who, args, words in [
        (MAKER, {"gs1_prefix": "9506000", "reason": "revoked"}, ""),
        ("nmpa/admin", {"gs1_prefix": "6901234", "reason": "revoked"}, "not licensed"),
        ("nmpa/admin", {"gs1_prefix": "9506000", "reason": "whim"}, "not one of"),
        ("nmpa/admin", {"cn_product": "8123456"}, "reason"),
    ]:
        status = send(node, member(who), "withdraw_licence", args)
        assert status.code != "ok" and words in (status.message or ""), (args, status)
    assert contract_state(node) == before


# -- shipments that never arrive ----------------------------------------------------------


def test_a_shipment_called_back_or_refused_leaves_the_goods_with_the_sender(
    node: Node, member: Member
) -> None:
    ok(send(node, member(MAKER), "commission", packs("V1", "V2", "V3")))
    ok(send(node, member(MAKER), "aggregate", {"parent": sscc(301), "children": [sgtin("V1")]}))
    # The sender calls a shipment back before it is received.
    called = shipment()
    ok(send(node, member(MAKER), "ship", {"shipment": called, "to": "yf-pharmacy",
        "items": [sscc(301), sgtin("V2")]}))  # fmt: skip
    assert now_verdict(node, sgtin("V1"), None) == "in_transit"
    ok(send(node, member(MAKER), "cancel_shipment", {"shipment": called, "reason": "wrong_goods"}))
    assert state(node, f"shipment/{called}")["status"] == "cancelled"
    assert state(node, f"unit/{sscc(301)}")["transit"] is None
    assert now_verdict(node, sgtin("V1"), "sinopharm-mfg") == "genuine"
    late = send(node, member(PHARMACY), "receive", {"shipment": called})
    assert "already cancelled" in (late.message or "")
    # The receiver refuses another: the goods are back on the sender's books.
    refused = shipment()
    ok(send(node, member(MAKER), "ship", {"shipment": refused, "to": "yf-pharmacy",
        "items": [sgtin("V3")]}))  # fmt: skip
    ok(send(node, member(PHARMACY), "reject_shipment", {"shipment": refused, "reason": "damaged"}))
    assert state(node, f"shipment/{refused}")["status"] == "rejected"
    assert state(node, f"pack/{sgtin('V3')}")["owner"] == "sinopharm-mfg"
    assert now_verdict(node, sgtin("V3"), "yf-pharmacy") == "not_in_custody"
    # The goods can be shipped again, and the journey says what happened.
    move(node, member, [sgtin("V3")], MAKER, PHARMACY)
    steps = [(s["step"], s["org"]) for s in DrugService(node).journey(sgtin("V3"))]
    assert steps == [("commissioning", "sinopharm-mfg"), ("shipping", "sinopharm-mfg"),
                     ("arriving", "yf-pharmacy"), ("shipping", "sinopharm-mfg"),
                     ("receiving", "yf-pharmacy")]  # fmt: skip
    journey = DrugService(node).journey(sgtin("V1"))
    assert [s["step"] for s in journey][-2:] == ["shipping", "void_shipping"]
    assert journey[-1]["reason"] == "wrong_goods"


def test_ending_a_shipment_is_for_its_parties_while_in_transit(node: Node, member: Member) -> None:
    ok(send(node, member(MAKER), "commission", packs("W1")))
    sid = shipment()
    ok(send(node, member(MAKER), "ship", {"shipment": sid, "to": "jd-logistics",
        "items": [sgtin("W1")]}))  # fmt: skip
    before = contract_state(node)
    for who, method, args, code, words in [
        (CARRIER, "cancel_shipment", {"reason": "other"}, "forbidden", "not sent by"),
        (MAKER, "reject_shipment", {"reason": "other"}, "forbidden", "not sent to"),
        (PHARMACY, "reject_shipment", {"reason": "other"}, "forbidden", "not sent to"),
        (MAKER, "cancel_shipment", {"reason": "whim"}, "contract_error", "not one of"),
        (MAKER, "cancel_shipment", {"reason": "other", "shipment": shipment()},
         "contract_error", "unknown shipment"),
        (MAKER, "cancel_shipment", {"reason": "other", "note": "x"}, "contract_error",
         "unknown argument"),
    ]:  # fmt: skip
        status = send(node, member(who), method, {"shipment": sid, **args})
        assert status.code == code and words in (status.message or ""), (args, status)
    assert contract_state(node) == before
    ok(send(node, member(CARRIER), "receive", {"shipment": sid}))
    done = send(node, member(MAKER), "cancel_shipment", {"shipment": sid, "reason": "other"})
    assert "already received" in (done.message or "")
