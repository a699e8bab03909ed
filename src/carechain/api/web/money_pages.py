"""The money pages: an account holder's accounts and recent entries, a patient's
instalment plans, one plan with its schedule, and answering and paying it."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from carechain.api.web.site import Site, plan_id_of
from carechain.contracts.consent import patient_id_of
from carechain.errors import InvalidInput, NotFound
from carechain.standards.iso4217 import format_amount

STATEMENT_LINES = 10
"""Recent entries shown of each account."""


def add_money_pages(site: Site) -> None:
    payments = site.payments

    @site.router.get("/accounts")
    @site.page
    async def accounts(request: Request) -> Response:
        viewer = site.viewer_of(request)
        m = viewer.member
        owner = patient_id_of(m) if viewer.is_patient else m.org_id
        try:
            found = await run_in_threadpool(payments.accounts, m, owner)
        except NotFound:
            found = {"accounts": []}
        for account in found["accounts"]:
            after = max(0, account["entries"] - STATEMENT_LINES)
            lines = await run_in_threadpool(
                payments.entries, m, owner, account["currency"], str(after) if after else ""
            )
            account["entries"] = list(reversed(lines["entries"]))
        plans = []
        if viewer.is_patient:
            plans = await run_in_threadpool(payments.patient_plans, m, owner)
        return site.render(
            request,
            "accounts.html",
            viewer.words,
            viewer,
            owner=owner,
            accounts=found["accounts"],
            is_patient=viewer.is_patient,
            plans=plans,
            fmt=format_amount,
        )

    @site.router.get("/plans/{plan_id}")
    @site.page
    async def plan(request: Request, plan_id: str, done: str = "") -> Response:
        viewer = site.viewer_of(request)
        doc = await run_in_threadpool(payments.plan, viewer.member, plan_id_of(plan_id))
        t, ccy = viewer.words, doc["currency"]
        notices = {
            "accept": "done_accept",
            "decline": "done_decline",
            "pay_instalment": "done_instalment",
        }
        return site.render(
            request,
            "plan.html",
            t,
            viewer,
            p=doc,
            money=lambda minor: format_amount(minor, ccy),
            now=payments.now_ms(),
            is_patient=viewer.is_patient,
            notice=t[notices[done]] if done in notices else "",
        )

    @site.router.post("/plans/{plan_id}/answer")
    @site.page
    async def answer_plan(request: Request, plan_id: str) -> Response:
        viewer = site.viewer_of(request)
        answer = (await site.form_of(request, viewer)).get("answer", "")
        if answer not in ("accept", "decline"):
            raise InvalidInput("answer accept or decline")
        args = {"plan": plan_id_of(plan_id)}
        await site.sign_and_commit(viewer, "payments", f"{answer}_plan", args)
        return RedirectResponse(f"/web/plans/{plan_id}?done={answer}", status_code=303)

    site.button("/plans/{item_id}/pay", "payments", "pay_instalment", plan_id_of)
