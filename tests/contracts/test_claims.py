"""The claims contract on a real node: coverage rules as data, claims adjudicated and paid
in the block that receives them, each fraud pattern flagged with its reason, and
China's NHSA rule for drugs (no traceability code, no settlement).

The claims follow FHIR R4's Claim example (hl7.org/fhir/R4/claim-example.json,
Claim/100150: one item, productOrService "1200", servicedDate, unitPrice and net),
with carechain's identifiers; see testdata/claim-100150-carechain.json.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from carechain.api.client import build_transaction
from carechain.contracts.adjudication import FLAG_WORDS, RULE_WORDS, Line
from carechain.errors import CertificateRevoked, UnknownSigner
from carechain.identity.roles import Role
from carechain.node.consortium import Consortium
from carechain.node.node import Node
from carechain.standards.fhir.claim import claim_response, claim_submission, fingerprint_key
from carechain.standards.fhir.resources import validate
from carechain.standards.gs1 import PackId
from claims_support import (
    BANK,
    GTIN,
    HOSPITAL_DESK,
    INSURER,
    PATIENT,
    PATIENT_MEMBER,
    PHARMACIST,
    RULES,
    TESTDATA,
    TODAY,
    Member,
    World,
    balance,
    claim_doc,
    drug,
    new,
    ok,
    send,
    service,
)
from support import license_demo_maker, new_member


@pytest.fixture
def world(node: Node, member: Member) -> World:
    license_demo_maker(node, member("nmpa/admin"))
    return World(node, member)


# -- from submission to payment, without a person -----------------------------------------


def test_a_line_is_stored_with_every_field() -> None:
    line = Line(2, "drug", "06901234567892", "2026-11-01", 1, 4590, None, "pk", "lot-9")
    assert line.to_json() == dataclasses.asdict(line)


def test_a_fhir_claim_goes_from_submission_to_payment(
    node: Node, member: Member, world: World
) -> None:
    desk = member(HOSPITAL_DESK)
    fhir = json.loads((TESTDATA / "claim-100150-carechain.json").read_text("utf-8"))
    fhir["patient"]["identifier"]["value"] = PATIENT
    fhir["insurance"][0]["coverage"]["reference"] = f"Coverage/{world.coverage}"
    fhir["item"][0]["servicedDate"] = TODAY
    fhir["item"][0]["encounter"][0]["identifier"]["value"] = world.record()
    raw = json.dumps(fhir).encode()
    args = claim_submission(raw, fingerprint_key(desk.private_key), new("clm"))
    # No diagnosis or free text goes to the chain: only what adjudication needs.
    assert "diagnosis" not in json.dumps(args) and "123456" not in json.dumps(args)
    assert args["lines"][0]["amount"] == 13_557  # 135.57 CNY in fen, exactly
    before = (balance(node, "bj-nhsa"), balance(node, "pumch"))
    ok(send(node, desk, "claims", "submit", args))
    claim = claim_doc(node, args["claim"])
    # 135.57 eligible, 30% co-pay = 40.671 -> 40.67 (half to even), the insurer pays 94.90.
    assert claim["status"] == "paid" and claim["adjudication"]["flags"] == []
    line = claim["adjudication"]["lines"][0]
    assert (line["outcome"], line["rule"], line["insurer"], line["patient"]) == (
        "accepted", "covered", 9_490, 4_067)  # fmt: skip
    assert (balance(node, "bj-nhsa"), balance(node, "pumch")) == (
        before[0] - 9_490, before[1] + 9_490)  # fmt: skip
    assert [h["status"] for h in claim["history"]] == ["submitted", "approved", "paid"]
    # The co-pay is requested from the patient, who pays it.
    ok(send(node, member(BANK), "payments", "issue",
            {"to": PATIENT, "currency": "CNY", "amount": 10_000}))  # fmt: skip
    ok(send(node, member(PATIENT_MEMBER), "claims", "pay_copay", {"claim": args["claim"]}))
    paid = claim_doc(node, args["claim"])
    assert paid["copay"]["status"] == "paid" and balance(node, PATIENT) == 10_000 - 4_067
    # The FHIR ClaimResponse validates against the R4B model.
    response = claim_response(paid, TODAY, RULE_WORDS, FLAG_WORDS)
    validate(response, "ClaimResponse")
    assert response["outcome"] == "complete" and response["payment"]["amount"]["value"] == 94.9
    # Sent again (the same FHIR Claim): recognised, nothing changes, not a duplicate.
    state = node.state.scan("claims/")
    again = claim_submission(raw, fingerprint_key(desk.private_key), new("clm"))
    ok(send(node, desk, "claims", "submit", again))
    assert node.state.scan("claims/") == state


def test_lines_are_decided_by_the_rules_in_force(node: Node, member: Member, world: World) -> None:
    record = world.record()
    lines = [
        service("1200", 25_000, record=record),  # over max 200.00: reduced (and flagged)
        dict(service("999999", 1_000, record=record), seq=2),  # not covered
        dict(service("330100001", 5_000, record=record), seq=3),  # needs pre-authorisation
    ]
    claim_id, status = world.claim(HOSPITAL_DESK, lines)
    ok(status)
    results = {r["seq"]: r for r in claim_doc(node, claim_id)["adjudication"]["lines"]}
    assert (results[1]["outcome"], results[1]["rule"], results[1]["eligible"]) == (
        "reduced", "max_price", 20_000)  # fmt: skip
    assert (results[2]["outcome"], results[2]["rule"], results[2]["patient"]) == (
        "denied", "not_covered", 1_000)  # fmt: skip
    assert (results[3]["outcome"], results[3]["rule"]) == ("denied", "preauthorisation")
    # With a pre-authorisation the same service is covered.
    allow = {"coverage": world.coverage, "code": "330100001", "start": TODAY, "end": TODAY}
    ok(send(node, member(INSURER), "claims", "preauthorise", allow))
    claim_id, status = world.claim(HOSPITAL_DESK, [service("330100001", 5_000,
                                                             record=world.record())])  # fmt: skip
    ok(status)
    assert claim_doc(node, claim_id)["adjudication"]["lines"][0]["rule"] == "covered"


def test_a_new_policy_version_applies_from_its_day_only(
    node: Node, member: Member, world: World
) -> None:
    later = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    ok(send(node, member(INSURER), "claims", "publish_policy", {"policy": "pol-basic",
        "effective_from": later, "rules": dict(RULES, copay_bp=5000)}))  # fmt: skip
    claim_id, status = world.claim(HOSPITAL_DESK, [service(record=world.record())])
    ok(status)  # today's service: the version in force today (30%)
    assert claim_doc(node, claim_id)["adjudication"]["lines"][0]["patient"] == 4_067
    past = send(node, member(INSURER), "claims", "publish_policy", {"policy": "pol-basic",
        "effective_from": "2020-01-01", "rules": RULES})  # fmt: skip
    assert "never change backwards" in (past.message or "")


def test_limits_cap_what_the_insurer_pays(node: Node, member: Member, world: World) -> None:
    # Per claim 5,000.00: three services of 2,000.00 (insurer 1,400.00 each) -> the
    # third is cut to what is left (700.00), and the claim is flagged over the limit.
    ok(send(node, member(INSURER), "claims", "publish_policy", {"policy": "pol-big",
        "effective_from": TODAY, "rules": dict(RULES, services={"1200": {}, "1201": {},
        "1202": {}}, per_claim_limit=350_000)}))  # fmt: skip
    coverage = new("cov")
    covered = {"coverage": coverage, "patient": PATIENT, "policy": "pol-big",
               "start": "2025-01-01", "end": "2030-12-31"}  # fmt: skip
    ok(send(node, member(INSURER), "claims", "register_coverage", covered))
    record = world.record()
    lines = [dict(service(f"120{n}", 200_000, record=record), seq=n + 1) for n in (0, 1, 2)]
    claim_id, status = world.claim(HOSPITAL_DESK, lines, coverage=coverage)
    ok(status)
    doc = claim_doc(node, claim_id)
    assert [r["insurer"] for r in doc["adjudication"]["lines"]] == [140_000, 140_000, 70_000]
    assert doc["adjudication"]["lines"][2]["rule"] == "per_claim_limit"
    assert {f["flag"] for f in doc["adjudication"]["flags"]} == {"over_limit"}


# -- fraud rules, each with its reason --------------------------------------------------------


def flags_of(node: Node, claim_id: str) -> dict[str, dict[str, Any]]:
    doc = claim_doc(node, claim_id)
    assert doc["status"] == "review", doc["status"]
    return {f["flag"]: f for f in doc["adjudication"]["flags"]}


def test_a_duplicate_claim_across_providers_is_flagged(
    node: Node, member: Member, world: World
) -> None:
    first, status = world.claim(HOSPITAL_DESK, [service(record=world.record())])
    ok(status)
    record = world.record(by="chaoyang-clinic/dr-zhao")
    second, status = world.claim("chaoyang-clinic/admin", [service(record=record)])
    ok(status)
    assert flags_of(node, second)["duplicate"]["earlier"] == first
    queue = node.state.scan("claims/queue/bj-nhsa/")
    assert [k.rsplit("/", 1)[1] for k, _ in queue] == [second]


def test_phantom_billing_is_flagged(node: Node, member: Member, world: World) -> None:
    no_record, status = world.claim(HOSPITAL_DESK, [service()])
    ok(status)
    assert "phantom_encounter" in flags_of(node, no_record)
    # A record of another hospital's, or of nobody on the chain, is no evidence either.
    other = world.record(by="chaoyang-clinic/dr-zhao")
    wrong_custodian, status = world.claim(HOSPITAL_DESK, [service("A1", record=other)])
    ok(status)
    assert "phantom_encounter" in flags_of(node, wrong_custodian)
    never = PackId.sgtin(GTIN, "NEVER1").key
    phantom_drug, status = world.claim(PHARMACIST, [drug(never)])
    ok(status)
    found = flags_of(node, phantom_drug)
    assert "phantom_drug" in found
    assert claim_doc(node, phantom_drug)["adjudication"]["lines"][0]["rule"] == "untraced_pack"


def test_a_pack_dispensed_to_someone_else_is_flagged(
    node: Node, member: Member, world: World, consortium: Consortium
) -> None:
    other = new_member(consortium, "pumch", "patient-0b77e1", Role.PATIENT)
    ok(send(node, member("pumch/admin"), "governance", "register_member",
            {"certificate": other.certificate_pem.decode()}))  # fmt: skip
    pack = world.dispensed("OTHER1", patient="pumch:patient-0b77e1")
    claim_id, status = world.claim(PHARMACIST, [drug(pack)])
    ok(status)
    assert flags_of(node, claim_id)["pack_other_patient"]["pack"] == pack


def test_services_after_a_recorded_death_are_flagged_and_not_paid(
    node: Node, member: Member, world: World
) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    ok(send(node, member("pumch/dr-wang"), "claims", "record_death",
            {"patient": PATIENT, "day": yesterday}))  # fmt: skip
    claim_id, status = world.claim(HOSPITAL_DESK, [service(record=world.record())])
    ok(status)
    assert flags_of(node, claim_id)["after_death"]["died"] == yesterday
    assert claim_doc(node, claim_id)["adjudication"]["lines"][0]["rule"] == "after_death"


def test_unbundled_codes_are_flagged(node: Node, member: Member, world: World) -> None:
    record = world.record()
    lines = [service("A1", 1_000, record=record), dict(service("A2", 1_000, record=record), seq=2)]
    claim_id, status = world.claim(HOSPITAL_DESK, lines)
    ok(status)
    assert flags_of(node, claim_id)["unbundling"]["codes"] == ["A1", "A2"]


def test_a_provider_outside_the_consortium_or_revoked_cannot_claim(
    node: Node, member: Member, world: World, consortium: Consortium
) -> None:
    clerk = new_member(consortium, "pumch", "billing-2", Role.STAFF)
    ok(send(node, member("pumch/admin"), "governance", "register_member",
            {"certificate": clerk.certificate_pem.decode()}))  # fmt: skip
    ok(send(node, member("pumch/admin"), "governance", "revoke_certificate",
            {"fingerprint": clerk.fingerprint, "reason": "keyCompromise"}))  # fmt: skip
    before = node.state.scan("claims/")
    args = {"claim": new("clm"), "patient": PATIENT, "coverage": world.coverage,
            "fingerprint": secrets.token_hex(32), "currency": "CNY",
            "lines": [service()]}  # fmt: skip
    with pytest.raises(CertificateRevoked, match="is revoked"):
        node.submit_one(build_transaction(clerk, "demo", "claims", "submit", args), 10)
    # An insurer or a bank is not a provider; nor is anyone outside the consortium able to sign.
    assert send(node, member(INSURER), "claims", "submit", args).code == "forbidden"
    outsider = new_member(consortium, "pumch", "not-registered", Role.STAFF)
    with pytest.raises(UnknownSigner, match="no certificate"):
        node.submit_one(build_transaction(outsider, "demo", "claims", "submit", args), 10)
    assert node.state.scan("claims/") == before


# -- China's NHSA rule for drugs ----------------------------------------------------------------


def test_no_traceability_code_no_settlement_and_one_code_one_sale(
    node: Node, member: Member, world: World
) -> None:
    pack = world.dispensed("NHSA1")
    first, status = world.claim(PHARMACIST, [drug(pack)])
    ok(status)
    doc = claim_doc(node, first)
    assert doc["status"] == "paid" and doc["adjudication"]["lines"][0]["insurer"] == 2_800
    # The same code settled again (another claim): a possible fake, resold or swapped drug.
    second, status = world.claim(PHARMACIST, [drug(pack)])
    ok(status)
    assert flags_of(node, second)["code_settled_twice"]["first"] == first
    # No code scanned at dispense: not settled.
    untraced, status = world.claim(PHARMACIST, [drug(None)])
    ok(status)
    line = claim_doc(node, untraced)["adjudication"]["lines"][0]
    assert (line["outcome"], line["rule"]) == ("denied", "no_trace_code")
    # Except stock the pharmacy declared as bought before the rule (2025-07-01).
    stock = {"product": GTIN, "lot": "OLD1", "quantity": 2, "bought": "2025-07-01"}
    late = send(node, member(PHARMACIST), "claims", "declare_legacy_stock", stock)
    assert "not legacy" in (late.message or "")
    ok(send(node, member(PHARMACIST), "claims", "declare_legacy_stock",
            {"product": GTIN, "lot": "OLD1", "quantity": 1, "bought": "2025-03-02"}))  # fmt: skip
    # Declared is not enough: an insurer (or a regulator) confirms it against purchase records.
    unconfirmed, status = world.claim(PHARMACIST, [drug(None, lot="OLD1")])
    ok(status)
    assert claim_doc(node, unconfirmed)["adjudication"]["lines"][0]["rule"] == "no_trace_code"
    confirm = {"org": "yf-pharmacy", "product": GTIN, "lot": "OLD1"}
    assert send(node, member(PHARMACIST), "claims", "confirm_legacy_stock", confirm).code == (
        "forbidden"
    )
    ok(send(node, member(INSURER), "claims", "confirm_legacy_stock", confirm))
    # One pack left: a claim of two such lines is paid for one.
    two = [drug(None, lot="OLD1"), dict(drug(None, lot="OLD1"), seq=2, day=TODAY)]
    legacy, status = world.claim(PHARMACIST, two)
    ok(status)
    rules = [r["rule"] for r in claim_doc(node, legacy)["adjudication"]["lines"]]
    assert rules == ["legacy_stock", "repeated_line"]
    used_up, status = world.claim(PHARMACIST, [drug(None, lot="OLD1")])
    ok(status)
    assert claim_doc(node, used_up)["adjudication"]["lines"][0]["rule"] == "no_trace_code"
    huge = dict(stock, lot="OLD2", quantity=10**9, bought="2025-03-02")
    refused = send(node, member(PHARMACIST), "claims", "declare_legacy_stock", huge)
    assert "packs of one lot" in (refused.message or "")


def test_a_line_repeated_in_one_claim_is_paid_once(
    node: Node, member: Member, world: World
) -> None:
    record = world.record()
    twice, status = world.claim(HOSPITAL_DESK, [service(record=record),
                                                dict(service(record=record), seq=2)])  # fmt: skip
    ok(status)
    doc = claim_doc(node, twice)
    assert [r["rule"] for r in doc["adjudication"]["lines"]] == ["covered", "repeated_line"]
    assert flags_of(node, twice)["duplicate"]["same_as_line"] == 1
    pack = world.dispensed("TWICE1")
    packs, status = world.claim(PHARMACIST, [drug(pack), dict(drug(pack), seq=2)])
    ok(status)
    assert claim_doc(node, packs)["adjudication"]["insurer"] == 2_800  # one pack's share


def test_a_service_dated_in_the_future_is_refused(node: Node, member: Member, world: World) -> None:
    later = (datetime.now(UTC) + timedelta(days=300)).date().isoformat()
    before = node.state.scan("claims/")
    _, status = world.claim(HOSPITAL_DESK, [service(day=later, record=world.record())])
    assert status.code == "contract_error" and "in the future" in (status.message or "")
    assert node.state.scan("claims/") == before


def test_another_dispensers_pack_is_flagged_and_not_paid(
    node: Node, member: Member, world: World
) -> None:
    pack = world.dispensed("ELSE1")  # dispensed by yf-pharmacy
    stolen, status = world.claim(HOSPITAL_DESK, [drug(pack)])
    ok(status)
    assert "pack_mismatch" in flags_of(node, stolen)
    assert claim_doc(node, stolen)["adjudication"]["lines"][0]["rule"] == "untraced_pack"
    # The real dispenser's claim is not blocked by it: the denied line settled nothing.
    own, status = world.claim(PHARMACIST, [drug(pack)])
    ok(status)
    assert claim_doc(node, own)["status"] == "paid"


def test_evidence_is_an_encounter_of_that_day_used_by_one_claim(
    node: Node, member: Member, world: World
) -> None:
    observation = "rec-" + "a" * 26
    ok(send(node, member("pumch/dr-wang"), "records", "add", {"records": [{
        "record": observation, "patient": PATIENT, "type": "Observation",
        "category": "vital-signs", "fingerprint": "cd" * 32}]}))  # fmt: skip
    not_a_visit, status = world.claim(HOSPITAL_DESK, [service(record=observation)])
    ok(status)
    assert "phantom_encounter" in flags_of(node, not_a_visit)
    record = world.record()
    first, status = world.claim(HOSPITAL_DESK, [service("A1", record=record)])
    ok(status)
    assert claim_doc(node, first)["status"] == "paid"
    # The same encounter backs a second claim: flagged, pointing to the first.
    again, status = world.claim(HOSPITAL_DESK, [service("A2", record=record)])
    ok(status)
    assert flags_of(node, again)["duplicate"]["earlier"] == first
    # Only lines the record was added for (that day, or within 30 days after) count.
    last_year = (datetime.now(UTC) - timedelta(days=60)).date().isoformat()
    assert "phantom_encounter" in flags_of(node, world.claim(HOSPITAL_DESK, [
        service("1200", day=last_year, record=world.record())])[0])  # fmt: skip


def test_a_death_is_recorded_by_the_patients_organisation_or_a_regulator(
    node: Node, member: Member, world: World
) -> None:
    death = {"patient": PATIENT, "day": "2001-01-01"}
    other = send(node, member("chaoyang-clinic/dr-zhao"), "claims", "record_death", death)
    assert other.code == "forbidden" and "patient's own organisation" in (other.message or "")
    ok(send(node, member("nmpa/admin"), "claims", "record_death", death))
    assert send(node, member("pumch/admin"), "claims", "withdraw_death",
                {"patient": PATIENT, "reason": "wrong patient"}).code == "forbidden"  # fmt: skip
    ok(send(node, member("nmpa/admin"), "claims", "withdraw_death",
            {"patient": PATIENT, "reason": "recorded for the wrong patient"}))  # fmt: skip
    claim_id, status = world.claim(HOSPITAL_DESK, [service(record=world.record())])
    ok(status)
    assert claim_doc(node, claim_id)["status"] == "paid"


# -- the insurer's review queue -------------------------------------------------------------


def test_the_insurer_approves_or_denies_a_flagged_claim_with_a_note(
    node: Node, member: Member, world: World
) -> None:
    insurer = member(INSURER)
    flagged, status = world.claim(HOSPITAL_DESK, [service()])  # no record: phantom
    ok(status)
    before = node.state.scan("claims/")
    for args, words in [
        ({"decision": "approve", "note": " "}, "needs a note"),
        ({"decision": "maybe", "note": "x"}, "approve or deny"),
    ]:
        refused = send(node, insurer, "claims", "review", {"claim": flagged, **args})
        assert words in (refused.message or "")
    approve = {"claim": flagged, "decision": "approve", "note": "x"}
    assert send(node, member(BANK), "claims", "review", approve).code == "forbidden"
    assert node.state.scan("claims/") == before
    ok(send(node, insurer, "claims", "review",
            {"claim": flagged, "decision": "deny", "note": "no encounter on record"}))  # fmt: skip
    denied = claim_doc(node, flagged)
    assert denied["status"] == "denied" and denied["review"]["note"] == "no encounter on record"
    assert node.state.scan("claims/queue/") == []
    # Denied, it no longer counts as an earlier claim: a proper claim is paid at once.
    proper, status = world.claim(HOSPITAL_DESK, [service(record=world.record())])
    ok(status)
    assert claim_doc(node, proper)["status"] == "paid"
    again = send(node, insurer, "claims", "review",
                 {"claim": flagged, "decision": "approve", "note": "x"})  # fmt: skip
    assert "not in review" in (again.message or "")
    # An approved flagged claim is paid at once.
    other, status = world.claim(HOSPITAL_DESK, [service("A1", 1_000)])
    ok(status)
    ok(send(node, insurer, "claims", "review",
            {"claim": other, "decision": "approve", "note": "paper record seen"}))  # fmt: skip
    assert claim_doc(node, other)["status"] == "paid"


def test_an_insurer_without_money_pays_when_it_has_it(
    node: Node, member: Member, world: World
) -> None:
    record = world.record()
    ok(send(node, member(INSURER), "payments", "transfer",
            {"to": "icbc", "currency": "CNY", "amount": 10_000_000}))  # fmt: skip
    claim_id, status = world.claim(HOSPITAL_DESK, [service(record=record)])
    ok(status)
    doc = claim_doc(node, claim_id)
    assert doc["status"] == "approved" and doc["payment"]["status"] == "awaiting_funds"
    short = send(node, member(INSURER), "claims", "settle", {"claim": claim_id})
    assert "insufficient funds" in (short.message or "")
    ok(send(node, member(BANK), "payments", "issue",
            {"to": "bj-nhsa", "currency": "CNY", "amount": 100_000}))  # fmt: skip
    ok(send(node, member(INSURER), "claims", "settle", {"claim": claim_id}))
    assert claim_doc(node, claim_id)["status"] == "paid"


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"lines": []}, "at least one line"),
        ({"lines": [service(kind="other")]}, "service or drug"),
        ({"lines": [service(day="2026-02-30")]}, "not a calendar date"),
        ({"lines": [service(amount=-1)]}, "at least 0"),
        ({"lines": [service(quantity=0)]}, "at least 1"),
        ({"lines": [service(), service()]}, "appears twice"),
        ({"lines": [service(pack="sgtin:09506000134352.X")]}, "no pack or lot"),
        ({"lines": [drug(None, code="12345")]}, "wrong form"),
        ({"lines": [service(colour="red")]}, "unknown field"),
        ({"currency": "USD"}, "pays in CNY"),
        ({"currency": "ZZZ"}, "not an ISO 4217 currency"),
        ({"lines": [service(day="9999-12-31")]}, "years 1900 to 2199"),
        ({"patient": "pumch:someone-else"}, "is not pumch:someone-else's"),
        ({"coverage": "cov-" + "0" * 24}, "unknown coverage"),
        ({"fingerprint": "xyz"}, "wrong form"),
        ({"claim": "claim-1"}, "wrong form"),
        ({"note": "x"}, "unknown argument"),
    ],
)
def test_bad_claims_are_refused_and_change_nothing(
    node: Node, member: Member, world: World, change: dict[str, Any], words: str
) -> None:
    before = node.state.scan("claims/")
    args = {"claim": new("clm"), "patient": PATIENT, "coverage": world.coverage,
            "fingerprint": secrets.token_hex(32), "currency": "CNY", "lines": [service()],
            **change}  # fmt: skip
    status = send(node, member(HOSPITAL_DESK), "claims", "submit", args)
    assert status.code == "contract_error" and words in (status.message or ""), status.message
    assert node.state.scan("claims/") == before


def test_bad_policies_and_coverages_are_refused(node: Node, member: Member, world: World) -> None:
    insurer = member(INSURER)
    before = node.state.scan("claims/")
    for rules, words in [
        (dict(RULES, copay_bp=10_001), "copay_bp"),
        (dict(RULES, currency="ABC"), "ISO 4217"),
        (dict(RULES, services={"bad code!": {}}), "not a service code"),
        (dict(RULES, drugs={"123": {}}), "not a drug code"),
        (dict(RULES, bundles={"B": ["A1"]}), "two or more"),
        (dict(RULES, colour="red"), "unknown field"),
        (dict(RULES, per_claim_limit=-5), "between 0"),
    ]:
        status = send(node, insurer, "claims", "publish_policy",
                      {"policy": "pol-x", "effective_from": TODAY, "rules": rules})  # fmt: skip
        assert words in (status.message or ""), (words, status.message)
    for args, words in [
        ({"policy": "pol-none"}, "no policy pol-none"),
        ({"patient": "pumch:ghost"}, "unknown patient"),
        ({"start": "2027-01-01", "end": "2026-01-01"}, "before start"),
    ]:
        coverage = {"coverage": new("cov"), "patient": PATIENT, "policy": "pol-basic",
                    "start": "2026-01-01", "end": "2026-12-31", **args}  # fmt: skip
        status = send(node, insurer, "claims", "register_coverage", coverage)
        assert words in (status.message or ""), (words, status.message)
    policy = {"policy": "pol-x", "effective_from": TODAY, "rules": RULES}
    assert send(node, member(HOSPITAL_DESK), "claims", "publish_policy", policy).code == (
        "forbidden"
    )
    assert node.state.scan("claims/") == before


def test_payments_are_conserved_through_claims(node: Node, member: Member, world: World) -> None:
    world.claim(HOSPITAL_DESK, [service(record=world.record())])
    world.claim(PHARMACIST, [drug(world.dispensed("CONS1"))])
    totals = 0
    for _, raw in node.state.scan("payments/account/"):
        doc = orjson.loads(raw)
        totals += doc["balance"] + doc["held"]
    supply = orjson.loads(node.state.get("payments/supply/CNY"))
    assert supply["outstanding"] == totals


def test_a_replay_of_the_ledger_reaches_the_same_state(node_dir: Path, member: Member) -> None:
    """Determinism: ``carechain verify`` rebuilds every block of claims and payments
    traffic from genesis and finds the same blocks, results and state digest."""
    from carechain.node.config import load_config
    from carechain.node.verify import verify_ledger

    node = Node(load_config(node_dir))
    node.start()
    try:
        license_demo_maker(node, member("nmpa/admin"))
        world = World(node, member)
        world.claim(HOSPITAL_DESK, [service(record=world.record())])
        world.claim(PHARMACIST, [drug(world.dispensed("REPLAY1"))])
        flagged, _ = world.claim(HOSPITAL_DESK, [service("A1", 1_000)])
        ok(send(node, member(INSURER), "claims", "review",
                {"claim": flagged, "decision": "approve", "note": "seen"}))  # fmt: skip
        ok(send(node, member(BANK), "payments", "post_quote", {"quote": new("fxq"),
            "base": "USD", "counter": "CNY", "rate": "7.1", "valid_from": 0,
            "valid_until": int(datetime.now(UTC).timestamp() * 1000) + 60_000}))  # fmt: skip
        height = node.state.height
    finally:
        node.stop()
    report = verify_ledger(node_dir)
    assert report.state_checked and report.blocks == height + 1
