"""Claims over REST on 127.0.0.1: a FHIR claim submitted by the provider, paid in the same
block, read by its patient, provider and insurer only, as JSON and as a FHIR R4
ClaimResponse; the review queue; refusals with clear errors and no state change."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from carechain.api.client import ApiError, NodeClient, build_transaction
from carechain.identity.wallet import Credentials
from carechain.node.node import Node
from carechain.standards.fhir.claim import claim_submission, fingerprint_key
from carechain.standards.fhir.resources import validate
from claims_support import (
    HOSPITAL_DESK,
    INSURER,
    PATIENT,
    PATIENT_MEMBER,
    TESTDATA,
    TODAY,
    World,
    new,
    service,
)
from support import license_demo_maker

Member = Callable[[str], Credentials]


def call(c: NodeClient, method: str, args: dict[str, Any]) -> Any:
    tx = build_transaction(c.creds, "demo", "claims", method, args)
    return c.request("POST", f"/v1/claims/{method}", raw_body=tx.wire_bytes())


@pytest.fixture
def world(node: Node, member: Member) -> World:
    license_demo_maker(node, member("nmpa/admin"))
    return World(node, member)


def fhir_claim(world: World, record: str | None) -> bytes:
    doc = json.loads((TESTDATA / "claim-100150-carechain.json").read_text("utf-8"))
    doc["patient"]["identifier"]["value"] = PATIENT
    doc["insurance"][0]["coverage"]["reference"] = f"Coverage/{world.coverage}"
    doc["item"][0]["servicedDate"] = TODAY
    if record is None:
        del doc["item"][0]["encounter"]
    else:
        doc["item"][0]["encounter"][0]["identifier"]["value"] = record
    return json.dumps(doc).encode()


def test_a_claim_is_paid_and_read_by_its_parties_only(
    as_member: Callable[[str], NodeClient], world: World
) -> None:
    desk = as_member(HOSPITAL_DESK)
    args = claim_submission(
        fhir_claim(world, world.record()), fingerprint_key(desk.creds.private_key), new("clm")
    )
    assert call(desk, "submit", args)["code"] == "ok"
    claim_id = args["claim"]
    for who in (HOSPITAL_DESK, INSURER, PATIENT_MEMBER, "nmpa/auditor-01"):
        seen = as_member(who).request("GET", f"/v1/claims/{claim_id}")
        assert seen["status"] == "paid" and seen["shown"]["insurer"] == "94.90 CNY"
    for who in ("chaoyang-clinic/admin", "icbc/admin", "pumch/dr-wang"):
        with pytest.raises(ApiError) as refused:
            as_member(who).request("GET", f"/v1/claims/{claim_id}")
        assert refused.value.http_status == 403 and "its patient" in refused.value.message
    response = as_member(PATIENT_MEMBER).request("GET", f"/v1/claims/{claim_id}/fhir")
    validate(response, "ClaimResponse")
    assert response["outcome"] == "complete"
    listed = as_member(PATIENT_MEMBER).request("GET", f"/v1/patients/{PATIENT}/claims")
    assert [c["id"] for c in listed["claims"]] == [claim_id]
    assert listed["claims"][0]["copay"] == "requested"
    with pytest.raises(ApiError) as other:
        as_member(HOSPITAL_DESK).request("GET", f"/v1/patients/{PATIENT}/claims")
    assert other.value.http_status == 403
    with pytest.raises(ApiError) as missing:
        desk.request("GET", f"/v1/claims/{new('clm')}")
    assert missing.value.http_status == 404


def test_the_review_queue_over_rest(
    as_member: Callable[[str], NodeClient], world: World, node: Node
) -> None:
    desk, insurer = as_member(HOSPITAL_DESK), as_member(INSURER)
    args = claim_submission(
        fhir_claim(world, None), fingerprint_key(desk.creds.private_key), new("clm")
    )
    assert call(desk, "submit", args)["code"] == "ok"
    queue = insurer.request("GET", "/v1/claims/queue/bj-nhsa")["claims"]
    assert [c["id"] for c in queue] == [args["claim"]]
    assert queue[0]["flags"][0]["flag"] == "phantom_encounter"
    with pytest.raises(ApiError) as not_yours:
        desk.request("GET", "/v1/claims/queue/bj-nhsa")
    assert not_yours.value.http_status == 403
    before = node.state.scan("claims/")
    with pytest.raises(ApiError) as bad:
        call(insurer, "review", {"claim": args["claim"], "decision": "approve", "note": ""})
    assert bad.value.http_status == 422 and "needs a note" in bad.value.message
    with pytest.raises(ApiError) as wrong_route:
        tx = build_transaction(insurer.creds, "demo", "claims", "settle", {"claim": args["claim"]})
        insurer.request("POST", "/v1/claims/review", raw_body=tx.wire_bytes())
    assert "takes a signed claims.review" in wrong_route.value.message
    assert node.state.scan("claims/") == before
    decided = {"claim": args["claim"], "decision": "deny", "note": "no encounter"}
    assert call(insurer, "review", decided)["code"] == "ok"
    assert insurer.request("GET", "/v1/claims/queue/bj-nhsa")["claims"] == []


def test_policies_and_coverages_are_read_by_who_needs_them(
    as_member: Callable[[str], NodeClient], world: World
) -> None:
    versions = as_member("yf-pharmacy/ph-chen").request("GET", "/v1/policies/bj-nhsa/pol-basic")[
        "versions"
    ]
    assert [v["effective_from"] for v in versions] == [TODAY] and versions[0]["copay_bp"] == 3000
    coverage = as_member(PATIENT_MEMBER).request("GET", f"/v1/coverages/{world.coverage}")
    assert coverage["patient"] == PATIENT
    with pytest.raises(ApiError) as refused:
        as_member("icbc/admin").request("GET", f"/v1/coverages/{world.coverage}")
    assert refused.value.http_status == 403
    with pytest.raises(ApiError) as unknown:
        as_member(INSURER).request("GET", "/v1/policies/bj-nhsa/pol-none")
    assert unknown.value.http_status == 404


def test_a_providers_claims_page_newest_first(
    as_member: Callable[[str], NodeClient], world: World
) -> None:
    made = []
    for record in (world.record(), None, world.record()):
        claim_id, status = world.claim(HOSPITAL_DESK, [service(record=record)] if record
                                       else [service()])  # fmt: skip
        assert status.code == "ok"
        made.append(claim_id)
    desk = as_member(HOSPITAL_DESK)
    everything = desk.request("GET", "/v1/providers/pumch/claims")
    assert [c["id"] for c in everything["claims"]] == made[::-1]
    assert everything["next"] is None
    # The same service on the same day again is flagged as a duplicate of the first.
    assert [c["status"] for c in everything["claims"]] == ["review", "review", "paid"]
    assert {f["flag"] for f in everything["claims"][0]["flags"]} == {"duplicate"}
    assert {f["flag"] for f in everything["claims"][1]["flags"]} >= {"phantom_encounter"}
    pages, after = [], ""
    while True:
        page = desk.request("GET", "/v1/providers/pumch/claims",
                            params={"limit": 1, **({"after": after} if after else {})})  # fmt: skip
        pages += [c["id"] for c in page["claims"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert pages == made[::-1]
    assert as_member("nmpa/auditor-01").request("GET", "/v1/providers/pumch/claims")["claims"]
    for who in ("chaoyang-clinic/admin", "pumch/dr-wang", PATIENT_MEMBER, INSURER):
        with pytest.raises(ApiError) as refused:
            as_member(who).request("GET", "/v1/providers/pumch/claims")
        assert refused.value.http_status == 403 and "billing desk" in refused.value.message
    with pytest.raises(ApiError) as bad:
        desk.request("GET", "/v1/providers/pumch/claims", params={"after": "../x"})
    assert bad.value.http_status == 400 and "not a cursor" in bad.value.message
