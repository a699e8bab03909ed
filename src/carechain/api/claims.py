"""REST routes for insurance claims: the insurer's policies and coverages, providers'
claims, the review queue, and the FHIR R4 ClaimResponse.

Changes are signed ``claims.*`` transactions, one route a method; the route
checks it is the right call, submits it and waits until it commits (the
contract adjudicates, and pays, in that same block). A provider builds
``claims.submit`` from its FHIR R4 Claim on its own side
(``standards.fhir.claim.claim_submission``), so the Claim itself, with its
diagnoses, never leaves the provider. Reads are for the claim's parties only
(``node/claims.py``).
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from carechain.api.signed import commit, signed_call
from carechain.contracts.membership import MemberRecord
from carechain.node.claims import ClaimService
from carechain.node.node import Node

MAX_WAIT_S = 60.0
METHODS = (
    "publish_policy",
    "register_coverage",
    "preauthorise",
    "record_death",
    "declare_legacy_stock",
    "confirm_legacy_stock",
    "withdraw_death",
    "submit",
    "review",
    "settle",
    "pay_copay",
)


def add_claim_routes(
    app: Any, node: Node, member: Callable[[Request], Awaitable[MemberRecord]]
) -> None:
    router = APIRouter(tags=["claims"])
    Member = Annotated[MemberRecord, Depends(member)]
    Wait = Annotated[float, Query(gt=0, le=MAX_WAIT_S, description="seconds to wait for commit")]
    service = ClaimService(node)

    def route_for(method: str) -> None:
        async def call(request: Request, who: Member, timeout: Wait = 10.0) -> Any:
            tx = await signed_call(node, request, "claims", method)
            return await commit(node, tx, who, timeout)

        call.__name__ = f"claims_{method}"
        call.__doc__ = f"Body: a signed ``claims.{method}`` transaction; answers once it commits."
        router.post(f"/v1/claims/{method}")(call)

    for method in METHODS:
        route_for(method)

    @router.get("/v1/claims/queue/{insurer}")
    async def queue(
        insurer: str, who: Member, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> Any:
        """Flagged claims waiting for the insurer's review, oldest id first, with reasons."""
        found = await run_in_threadpool(service.queue, insurer, who, limit)
        return {"claims": found}

    @router.get("/v1/claims/{claim_id}")
    async def claim(claim_id: str, who: Member) -> Any:
        """A claim: its lines, each line's outcome and the rule that decided it, flags,
        the insurer's and the patient's shares, and its status from submission to payment."""
        return await run_in_threadpool(service.claim, claim_id, who)

    @router.get("/v1/claims/{claim_id}/fhir")
    async def claim_response(claim_id: str, who: Member) -> Response:
        """The claim's FHIR R4 ClaimResponse."""
        import orjson

        doc = await run_in_threadpool(service.claim_response, claim_id, who)
        return Response(orjson.dumps(doc), media_type="application/fhir+json")

    @router.get("/v1/providers/{provider}/claims")
    async def provider_claims(
        provider: str,
        who: Member,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: str = "",
    ) -> Any:
        """A provider's claims, newest first, with their flags: for its billing desk,
        regulators and auditors. ``next`` is the ``after`` of the next page."""
        return await run_in_threadpool(service.provider_claims, provider, who, limit, after)

    @router.get("/v1/patients/{patient}/claims")
    async def patient_claims(patient: str, who: Member) -> Any:
        return {"claims": await run_in_threadpool(service.patient_claims, patient, who)}

    @router.get("/v1/policies/{insurer}/{policy}")
    async def policy(insurer: str, policy: str, _: Member) -> Any:
        """Every version of an insurer's policy, with the day each applies from."""
        return {"versions": await run_in_threadpool(service.policy, insurer, policy)}

    @router.get("/v1/coverages/{coverage_id}")
    async def coverage(coverage_id: str, who: Member) -> Any:
        return await run_in_threadpool(functools.partial(service.coverage, coverage_id, who))

    app.include_router(router)
