"""The web pages people use, server-rendered, in Chinese and English, under ``/web``.

- Everyone: log in with a password and a one-time code (``logins.py``), log out.
- A patient: their health records (what the chain holds of them: never their
  contents), their consents (grant, revoke) and who read their records, when and why;
  their claims from submission to payment, each claim's lines with the
  rule that decided each one, paying a co-pay; their accounts and recent entries;
  the instalment plans banks offer them (accept or decline), each one's schedule,
  whether it is late or paid off, and paying the next instalment.
- An insurer's claims desk: the review queue with the reasons each claim was
  flagged, approving (paid in the same block) or denying with a note; paying an
  approved claim that waited for money in the insurer's account.
- A provider's billing desk: its claims, newest first, with what flagged them.
- Regulators and auditors, and every desk: any claim they may see, by its id.
- An organisation's admins, staff and auditors: its accounts.

Pages read through the same services as the REST API (``node/claims.py``,
``node/payments.py``), so they show exactly what the API would, to exactly the
same people. A change is a transaction signed with the logged-in person's own
key and committed before the page answers. Bad input and refusals come back as
a page that names the problem; nothing changes.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from carechain.api.web.claim_pages import add_claim_pages
from carechain.api.web.logins import WebLogins
from carechain.api.web.money_pages import add_money_pages
from carechain.api.web.record_pages import add_record_pages
from carechain.api.web.sessions import COOKIE, Sessions
from carechain.api.web.site import (
    HEADERS,
    STATIC,
    LoginNeeded,
    Site,
    claim_id_of,
    lang_of,
    plan_id_of,
    safe_next,
)
from carechain.api.web.text import Words
from carechain.errors import CarechainError
from carechain.node.node import Node


def add_web_routes(app: FastAPI, node: Node, logins: WebLogins, sessions: Sessions) -> None:
    site = Site(node, logins, sessions)

    # -- logging in and out -------------------------------------------------------------

    @site.router.get("/static/site.css")
    async def stylesheet() -> FileResponse:
        return FileResponse(STATIC / "site.css", media_type="text/css")

    @site.router.get("/login")
    async def login_page(request: Request, next: str = "/web/", ended: int = 0) -> Response:
        words = Words(lang_of(request))
        notice = words["session_ended"] if ended == 1 else words["logged_out"] if ended == 2 else ""
        return site.render(
            request, "login.html", words, next=safe_next(next), name="", notice=notice
        )

    @site.router.post("/login")
    async def login(request: Request) -> Response:
        words = Words(lang_of(request))
        name, next_page = "", "/web/"
        try:
            fields = await site.form_of(request, None)
            name, next_page = fields.get("name", "").strip(), safe_next(fields.get("next", ""))
            creds = await run_in_threadpool(
                logins.login, name, fields.get("password", ""), fields.get("code", "").strip()
            )
            site.signing_member(creds.fingerprint)
        except CarechainError as exc:
            return site.render(
                request,
                "login.html",
                words,
                status=exc.http_status,
                error=exc.message,
                next=next_page,
                name=name[:64],
            )
        session = sessions.open(name, creds)
        response = RedirectResponse(next_page, status_code=303, headers=HEADERS)
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", path="/web")
        return response

    @site.router.post("/logout")
    @site.page
    async def logout(request: Request) -> Response:
        try:
            viewer = site.viewer_of(request)
        except LoginNeeded:
            return RedirectResponse("/web/login?ended=2", status_code=303)
        await site.form_of(request, viewer)
        sessions.close(viewer.session.token)
        response = RedirectResponse("/web/login?ended=2", status_code=303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/web")
        return response

    # -- pages ---------------------------------------------------------------------------

    @site.router.get("/")
    @site.page
    async def home(request: Request) -> Response:
        viewer = site.viewer_of(request)
        return site.render(request, "home.html", viewer.words, viewer, finds=viewer.finds_claims)

    @site.router.get("/find")
    @site.page
    async def find(request: Request, claim: str = "", plan: str = "") -> Response:
        site.viewer_of(request)
        if plan:
            return RedirectResponse(f"/web/plans/{plan_id_of(plan.strip())}", status_code=303)
        return RedirectResponse(f"/web/claims/{claim_id_of(claim.strip())}", status_code=303)

    add_claim_pages(site)
    add_money_pages(site)
    add_record_pages(site)
    app.include_router(site.router)

    @app.get("/", include_in_schema=False)
    @app.get("/web", include_in_schema=False)
    async def web_root() -> RedirectResponse:
        return RedirectResponse("/web/", status_code=307)

    @app.exception_handler(LoginNeeded)
    async def login_needed(_: Request, exc: LoginNeeded) -> RedirectResponse:
        ended = "&ended=1" if exc.ended else ""
        return RedirectResponse(
            f"/web/login?next={quote(exc.path)}{ended}", status_code=303, headers=HEADERS
        )
