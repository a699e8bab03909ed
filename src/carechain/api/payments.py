"""REST routes for payments: one route a contract method, and reads of accounts,
statements, holds, treatments, instalment plans, FX quotes and the money supply.

Changes are signed ``payments.*`` transactions, one route a method
(``/v1/payments/<method>``); the route checks it is the right call, submits it
and waits until it commits. The rules are the payments contract's
(``contracts/payments.py``); who may read what is ``node/payments.py``'s.
Amounts are integers in the currency's minor unit, each also given as text
(``formatted``: "123.45 CNY").
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from carechain.api.signed import commit, signed_call
from carechain.contracts.membership import MemberRecord
from carechain.node.node import Node
from carechain.node.payments import PaymentService

MAX_WAIT_S = 60.0
METHODS = (
    "issue",
    "redeem",
    "transfer",
    "hold",
    "capture",
    "release",
    "admit",
    "complete_treatment",
    "cancel_treatment",
    "post_quote",
    "transfer_fx",
    "withdraw_quote",
    "offer_plan",
    "accept_plan",
    "decline_plan",
    "pay_instalment",
)


def add_payment_routes(
    app: Any, node: Node, member: Callable[[Request], Awaitable[MemberRecord]]
) -> None:
    router = APIRouter(tags=["payments"])
    Member = Annotated[MemberRecord, Depends(member)]
    Wait = Annotated[float, Query(gt=0, le=MAX_WAIT_S, description="seconds to wait for commit")]
    service = PaymentService(node)

    def route_for(method: str) -> None:
        async def call(request: Request, who: Member, timeout: Wait = 10.0) -> Any:
            tx = await signed_call(node, request, "payments", method)
            return await commit(node, tx, who, timeout)

        call.__name__ = f"payments_{method}"
        call.__doc__ = f"Body: a signed ``payments.{method}`` transaction; answers once it commits."
        router.post(f"/v1/payments/{method}")(call)

    for method in METHODS:
        route_for(method)

    @router.get("/v1/payments/accounts/{owner}")
    async def accounts(owner: str, who: Member) -> Any:
        """An owner's accounts, one a currency: balance (available), held, total. Seen by
        the owner, banks, regulators and auditors."""
        return await run_in_threadpool(service.accounts, who, owner)

    @router.get("/v1/payments/accounts/{owner}/{currency}/entries")
    async def entries(
        owner: str,
        currency: str,
        who: Member,
        after: str = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Any:
        """An account's statement, oldest first; ``next`` continues it (as ``after``)."""
        return await run_in_threadpool(
            functools.partial(service.entries, who, owner, currency, after, limit)
        )

    @router.get("/v1/payments/holds/{hold_id}")
    async def hold(hold_id: str, who: Member) -> Any:
        """A hold (escrow): seen by its payer and payee, regulators and auditors."""
        return await run_in_threadpool(service.hold, who, hold_id)

    @router.get("/v1/payments/treatments/{treatment_id}")
    async def treatment(treatment_id: str, who: Member) -> Any:
        """A treatment paid from a hold: seen by the clinic, the patient, regulators and
        auditors."""
        return await run_in_threadpool(service.treatment, who, treatment_id)

    @router.get("/v1/payments/plans/{plan_id}")
    async def plan(plan_id: str, who: Member) -> Any:
        """An instalment plan as it stands now (state ``late`` when one is overdue): seen
        by its bank, patient and clinic, regulators and auditors."""
        return await run_in_threadpool(service.plan, who, plan_id)

    @router.get("/v1/patients/{patient}/plans")
    async def patient_plans(patient: str, who: Member) -> Any:
        """A patient's instalment plans as they stand now, newest offer first: for the
        patient, the banks (their own plans), regulators and auditors."""
        return {"plans": await run_in_threadpool(service.patient_plans, who, patient)}

    @router.get("/v1/payments/quotes")
    async def quotes(_: Member, base: str = "", counter: str = "") -> Any:
        """FX quotes valid now (``base`` and ``counter`` narrow them)."""
        return await run_in_threadpool(service.quotes, base, counter)

    @router.get("/v1/payments/quotes/{quote_id}")
    async def quote(quote_id: str, _: Member) -> Any:
        """One quote, and whether it is valid now."""
        return await run_in_threadpool(service.quote, quote_id)

    @router.get("/v1/payments/supply")
    async def supply(who: Member) -> Any:
        """Per currency: issued, redeemed, outstanding, what all accounts hold, and whether
        money is conserved (banks, regulators and auditors)."""
        return await run_in_threadpool(service.supply, who)

    app.include_router(router)
