"""The claims pages: a patient's claims, a provider's, the insurer's review queue, one
claim with its lines, flags and progress, and the buttons that act on it."""

from __future__ import annotations

import orjson
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from carechain.api.web.site import HEADERS, Site, claim_id_of
from carechain.contracts.claim_rules import DESK
from carechain.contracts.consent import patient_id_of
from carechain.errors import Forbidden, InvalidInput
from carechain.node.claims import sees_org
from carechain.standards.iso4217 import format_amount


def add_claim_pages(site: Site) -> None:
    claims = site.claims

    @site.router.get("/claims")
    @site.page
    async def claims_list(request: Request, after: str = "") -> Response:
        viewer = site.viewer_of(request)
        t, m = viewer.words, viewer.member
        if viewer.is_patient:
            found = await run_in_threadpool(claims.patient_claims, patient_id_of(m), m)
            listed, heading, more = list(reversed(found)), t["my_claims"], None
        elif viewer.provider_desk:
            page_ = await run_in_threadpool(claims.provider_claims, m.org_id, m, 50, after)
            listed, heading, more = page_["claims"], t["our_claims"], page_["next"]
        else:
            raise Forbidden(
                "this page lists a patient's own claims, or a provider's for its billing desk; "
                "open a claim by its id"
            )
        return site.render(
            request,
            "claims.html",
            t,
            viewer,
            claims=listed,
            heading=heading,
            empty=t["no_claims"],
            desk=not viewer.is_patient,
            more=more,
        )

    @site.router.get("/queue")
    @site.page
    async def queue(request: Request) -> Response:
        viewer = site.viewer_of(request)
        found = await run_in_threadpool(claims.queue, viewer.member.org_id, viewer.member, 200)
        t = viewer.words
        return site.render(
            request,
            "claims.html",
            t,
            viewer,
            claims=found,
            heading=t["queue"],
            empty=t["queue_empty"],
            desk=True,
        )

    @site.router.get("/claims/{claim_id}")
    @site.page
    async def claim(request: Request, claim_id: str, done: str = "") -> Response:
        viewer = site.viewer_of(request)
        doc = await run_in_threadpool(claims.claim, claim_id_of(claim_id), viewer.member)
        t, ccy = viewer.words, doc["currency"]
        results = {r["seq"]: r for r in doc["adjudication"]["lines"]}
        copay = doc.get("copay") or {}
        notices = {
            "approved": "done_approved",
            "denied": "done_denied",
            "pay_copay": "done_copay",
            "settle": "done_settled",
        }
        desk = viewer.member.role in DESK and sees_org(viewer.member, doc["insurer"])
        return site.render(
            request,
            "claim.html",
            t,
            viewer,
            c=doc,
            lines=[(line, results[line["seq"]]) for line in doc["lines"]],
            money=lambda minor: format_amount(minor, ccy),
            is_patient=viewer.is_patient,
            can_pay=viewer.is_patient and copay.get("status") == "requested",
            copay_due=format_amount(copay.get("amount", 0), ccy),
            can_review=desk and doc["status"] == "review",
            can_settle=desk
            and doc["status"] == "approved"
            and (doc.get("payment") or {}).get("status") == "awaiting_funds",
            notice=t[notices[done]] if done in notices else "",
        )

    @site.router.get("/claims/{claim_id}/fhir")
    @site.page
    async def claim_fhir(request: Request, claim_id: str) -> Response:
        viewer = site.viewer_of(request)
        doc = await run_in_threadpool(claims.claim_response, claim_id_of(claim_id), viewer.member)
        return Response(orjson.dumps(doc), media_type="application/fhir+json", headers=HEADERS)

    @site.router.post("/claims/{claim_id}/review")
    @site.page
    async def review(request: Request, claim_id: str) -> Response:
        viewer = site.viewer_of(request)
        fields = await site.form_of(request, viewer)
        decision = fields.get("decision", "")
        if decision not in ("approve", "deny"):
            raise InvalidInput("choose approve or deny")
        note = " ".join(fields.get("note", "").split())
        if not note:
            raise InvalidInput("a review needs a note saying why")
        if len(note) > 500:
            raise InvalidInput(f"the note is {len(note)} characters; at most 500")
        args = {"claim": claim_id_of(claim_id), "decision": decision, "note": note}
        await site.sign_and_commit(viewer, "claims", "review", args)
        done = "approved" if decision == "approve" else "denied"
        return RedirectResponse(f"/web/claims/{claim_id}?done={done}", status_code=303)

    site.button("/claims/{item_id}/settle", "claims", "settle", claim_id_of)
    site.button("/claims/{item_id}/copay", "claims", "pay_copay", claim_id_of)
