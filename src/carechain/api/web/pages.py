"""The web pages people use, server-rendered, in Chinese and English, under ``/web``.

- Everyone: log in with a password and a one-time code (``logins.py``), log out.
- A patient: their claims from submission to payment, each claim's lines with the
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

import functools
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from carechain.api.client import build_transaction
from carechain.api.web.logins import WebLogins
from carechain.api.web.sessions import COOKIE, Sessions, WebSession
from carechain.api.web.text import LANGS, Words
from carechain.contracts.claim_rules import DESK, PROVIDERS
from carechain.contracts.consent import patient_id_of
from carechain.contracts.membership import MemberRecord
from carechain.errors import CarechainError, Forbidden, InvalidInput, NotFound, Oversize
from carechain.identity.roles import OrgType, Role
from carechain.node.claims import DESK_ROLES, ClaimService, sees_org
from carechain.node.node import Node
from carechain.node.payments import ORG_READERS, PaymentService, overseer
from carechain.standards.iso4217 import format_amount

MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 20
STATEMENT_LINES = 10
LANG_COOKIE = "cc_lang"
_CLAIM_ID = re.compile(r"clm-[0-9a-f]{24}")
_PLAN_ID = re.compile(r"plan-[0-9a-f]{24}")
_STATIC = Path(__file__).parent / "static"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=PackageLoader("carechain.api.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class LoginNeeded(Exception):
    """The page needs a live session; the person is sent to the login page."""

    def __init__(self, path: str, ended: bool) -> None:
        super().__init__(path)
        self.path, self.ended = path, ended


@dataclass
class Viewer:
    session: WebSession
    member: MemberRecord
    words: Words

    @property
    def is_patient(self) -> bool:
        return self.member.role is Role.PATIENT

    @property
    def insurer_desk(self) -> bool:
        return self.member.org_type is OrgType.INSURER and self.member.role in DESK

    @property
    def provider_desk(self) -> bool:
        """A hospital's, clinic's or pharmacy's billing desk (or its auditors)."""
        return self.member.org_type in PROVIDERS and sees_org(self.member, self.member.org_id)

    def nav(self) -> list[tuple[str, str]]:
        """The pages this person has, as (address, label)."""
        t, m = self.words, self.member
        if self.is_patient:
            return [("/web/claims", t["my_claims"]), ("/web/accounts", t["my_accounts"])]
        found = []
        if self.provider_desk:
            found.append(("/web/claims", t["our_claims"]))
        if self.insurer_desk:
            found.append(("/web/queue", t["queue"]))
        if m.role in ORG_READERS:
            found.append(("/web/accounts", t["accounts"]))
        return found

    @property
    def finds_claims(self) -> bool:
        """May open a claim by its id: an insurer's or provider's desk, or an overseer."""
        m = self.member
        desk = m.org_type in (PROVIDERS | {OrgType.INSURER}) and m.role in DESK_ROLES
        return not self.is_patient and (desk or overseer(m))


def lang_of(request: Request) -> str:
    """The page's language: ``?lang=``, else the cookie, else the browser's wish (zh first)."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    if kept in LANGS:
        return kept
    wish = request.headers.get("accept-language", "").strip().lower()
    return "en" if wish.startswith("en") else "zh"


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def ref(value: object) -> Markup:
    """A value from the chain as code; a claim or plan id as a link to its page."""
    text = str(value)
    if _CLAIM_ID.fullmatch(text):
        return Markup('<a href="/web/claims/{0}"><code>{0}</code></a>').format(text)
    if _PLAN_ID.fullmatch(text):
        return Markup('<a href="/web/plans/{0}"><code>{0}</code></a>').format(text)
    return Markup("<code>{0}</code>").format(text)


def add_web_routes(app: FastAPI, node: Node, logins: WebLogins, sessions: Sessions) -> None:
    router = APIRouter(prefix="/web", include_in_schema=False)
    claims, payments = ClaimService(node), PaymentService(node)

    def render(
        request: Request,
        template: str,
        words: Words,
        viewer: Viewer | None = None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        who = None
        if viewer is not None:
            m = viewer.member
            who = {"name": viewer.session.name, "org": m.org_id, "role": str(m.role)}
        html = _env.get_template(template).render(
            t=words,
            who=who,
            csrf=viewer.session.csrf if viewer else "",
            nav=viewer.nav() if viewer else [],
            when=when,
            ref=ref,
            # The language links reload this page; after a form, the home page.
            here=request.url.path if request.method == "GET" else "/web/",
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=HEADERS)
        asked = request.query_params.get("lang")
        if asked in LANGS:
            response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, samesite="strict")
        return response

    def viewer_of(request: Request) -> Viewer:
        token = request.cookies.get(COOKIE)
        session = sessions.get(token)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if session is None:
            raise LoginNeeded(path, ended=bool(token))
        member = node.member(session.creds.fingerprint)
        if (
            member is None
            or member.refusal_at(int(time.time() * 1000)) is not None
            or logins.fingerprint(session.name) != session.creds.fingerprint
        ):
            sessions.close(token)
            raise LoginNeeded(path, ended=True)
        return Viewer(session, member, Words(lang_of(request)))

    def page(
        handler: Callable[..., Awaitable[Response]],
    ) -> Callable[..., Awaitable[Response]]:
        """Run a page; a refusal or bad input becomes an error page naming it."""

        @functools.wraps(handler)
        async def run(request: Request, **kwargs: Any) -> Response:
            try:
                return await handler(request, **kwargs)
            except CarechainError as exc:
                words = Words(lang_of(request))
                try:
                    viewer: Viewer | None = viewer_of(request)
                except LoginNeeded:
                    viewer = None
                return render(
                    request,
                    "error.html",
                    words,
                    viewer,
                    status=exc.http_status,
                    message=exc.message,
                )

        return run

    async def form_of(request: Request, viewer: Viewer | None) -> dict[str, str]:
        """The posted form's fields; the session's CSRF token must be among them."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise InvalidInput("send the form as application/x-www-form-urlencoded")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise Oversize(f"the form is {len(body)} bytes; the limit is {MAX_FORM_BYTES}")
        try:
            text = body.decode("utf-8")
            fields = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except UnicodeDecodeError:
            raise InvalidInput("the form is not UTF-8") from None
        except ValueError:
            raise InvalidInput(f"the form has more than {MAX_FIELDS} fields") from None
        repeated = sorted(k for k, v in fields.items() if len(v) > 1)
        if repeated:
            raise InvalidInput(f"the form sends {repeated[0]!r} more than once")
        found = {k: v[0] for k, v in fields.items()}
        if viewer is not None and not hmac.compare_digest(
            found.get("csrf", "").encode(), viewer.session.csrf.encode()
        ):
            raise Forbidden(
                "this form is out of date (it belongs to another session); reload the page"
            )
        return found

    def claim_id_of(text: str) -> str:
        if not _CLAIM_ID.fullmatch(text):
            raise InvalidInput(f"{text[:40]!r} is not a claim id (clm- and 24 hex digits)")
        return text

    def plan_id_of(text: str) -> str:
        if not _PLAN_ID.fullmatch(text):
            raise InvalidInput(f"{text[:40]!r} is not a plan id (plan- and 24 hex digits)")
        return text

    async def sign_and_commit(
        viewer: Viewer, contract: str, method: str, args: dict[str, Any]
    ) -> None:
        """Commit ``contract.method`` signed by the logged-in person; a refusal is raised."""
        tx = build_transaction(viewer.session.creds, node.chain, contract, method, args)
        status = await run_in_threadpool(node.submit_one, tx, 10.0)
        if status.status != "committed":
            error = CarechainError("the chain did not commit this within 10 s; look again soon")
            error.code, error.http_status = "pending", 503
            raise error
        if status.code != "ok":
            error = CarechainError(f"the chain refused this: {status.message}")
            error.code = status.code or "rejected"
            error.http_status = 403 if status.code == "forbidden" else 422
            raise error

    # -- logging in and out -------------------------------------------------------------

    @router.get("/static/site.css")
    async def stylesheet() -> FileResponse:
        return FileResponse(_STATIC / "site.css", media_type="text/css")

    @router.get("/login")
    async def login_page(request: Request, next: str = "/web/", ended: int = 0) -> Response:
        words = Words(lang_of(request))
        notice = words["session_ended"] if ended == 1 else words["logged_out"] if ended == 2 else ""
        return render(request, "login.html", words, next=safe_next(next), name="", notice=notice)

    @router.post("/login")
    async def login(request: Request) -> Response:
        words = Words(lang_of(request))
        name, next_page = "", "/web/"
        try:
            fields = await form_of(request, None)
            name, next_page = fields.get("name", "").strip(), safe_next(fields.get("next", ""))
            creds = await run_in_threadpool(
                logins.login, name, fields.get("password", ""), fields.get("code", "").strip()
            )
            member = node.member(creds.fingerprint)
            if member is None:
                raise Forbidden("this login's member is not on the chain")
            refusal = member.refusal_at(int(time.time() * 1000))
            if refusal is not None:
                raise Forbidden(f"this login's member may not sign: {refusal[1]}")
        except CarechainError as exc:
            return render(
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

    @router.post("/logout")
    @page
    async def logout(request: Request) -> Response:
        try:
            viewer = viewer_of(request)
        except LoginNeeded:
            return RedirectResponse("/web/login?ended=2", status_code=303)
        await form_of(request, viewer)
        sessions.close(viewer.session.token)
        response = RedirectResponse("/web/login?ended=2", status_code=303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/web")
        return response

    # -- pages ---------------------------------------------------------------------------

    @router.get("/")
    @page
    async def home(request: Request) -> Response:
        viewer = viewer_of(request)
        return render(request, "home.html", viewer.words, viewer, finds=viewer.finds_claims)

    @router.get("/find")
    @page
    async def find(request: Request, claim: str = "", plan: str = "") -> Response:
        viewer_of(request)
        if plan:
            return RedirectResponse(f"/web/plans/{plan_id_of(plan.strip())}", status_code=303)
        return RedirectResponse(f"/web/claims/{claim_id_of(claim.strip())}", status_code=303)

    @router.get("/claims")
    @page
    async def claims_list(request: Request, after: str = "") -> Response:
        viewer = viewer_of(request)
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
        return render(
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

    @router.get("/queue")
    @page
    async def queue(request: Request) -> Response:
        viewer = viewer_of(request)
        found = await run_in_threadpool(claims.queue, viewer.member.org_id, viewer.member, 200)
        t = viewer.words
        return render(
            request,
            "claims.html",
            t,
            viewer,
            claims=found,
            heading=t["queue"],
            empty=t["queue_empty"],
            desk=True,
        )

    @router.get("/claims/{claim_id}")
    @page
    async def claim(request: Request, claim_id: str, done: str = "") -> Response:
        viewer = viewer_of(request)
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
        return render(
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

    @router.get("/claims/{claim_id}/fhir")
    @page
    async def claim_fhir(request: Request, claim_id: str) -> Response:
        viewer = viewer_of(request)
        doc = await run_in_threadpool(claims.claim_response, claim_id_of(claim_id), viewer.member)
        return Response(orjson.dumps(doc), media_type="application/fhir+json", headers=HEADERS)

    @router.post("/claims/{claim_id}/review")
    @page
    async def review(request: Request, claim_id: str) -> Response:
        viewer = viewer_of(request)
        fields = await form_of(request, viewer)
        decision = fields.get("decision", "")
        if decision not in ("approve", "deny"):
            raise InvalidInput("choose approve or deny")
        note = " ".join(fields.get("note", "").split())
        if not note:
            raise InvalidInput("a review needs a note saying why")
        if len(note) > 500:
            raise InvalidInput(f"the note is {len(note)} characters; at most 500")
        args = {"claim": claim_id_of(claim_id), "decision": decision, "note": note}
        await sign_and_commit(viewer, "claims", "review", args)
        done = "approved" if decision == "approve" else "denied"
        return RedirectResponse(f"/web/claims/{claim_id}?done={done}", status_code=303)

    def button(path: str, contract: str, method: str, check: Callable[[str], str]) -> None:
        """A route for a button that signs ``contract.method`` of the item the page shows
        (``{"claim": id}`` or ``{"plan": id}``), then shows that page again, saying so."""
        kind = path.split("/")[1]  # claims, plans

        async def press(request: Request, item_id: str) -> Response:
            viewer = viewer_of(request)
            await form_of(request, viewer)
            await sign_and_commit(viewer, contract, method, {kind[:-1]: check(item_id)})
            return RedirectResponse(f"/web/{kind}/{item_id}?done={method}", status_code=303)

        press.__name__ = f"press_{method}"
        router.post(path)(page(press))

    button("/claims/{item_id}/settle", "claims", "settle", claim_id_of)
    button("/claims/{item_id}/copay", "claims", "pay_copay", claim_id_of)
    button("/plans/{item_id}/pay", "payments", "pay_instalment", plan_id_of)

    @router.get("/accounts")
    @page
    async def accounts(request: Request) -> Response:
        viewer = viewer_of(request)
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
        return render(
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

    @router.get("/plans/{plan_id}")
    @page
    async def plan(request: Request, plan_id: str, done: str = "") -> Response:
        viewer = viewer_of(request)
        doc = await run_in_threadpool(payments.plan, viewer.member, plan_id_of(plan_id))
        t, ccy = viewer.words, doc["currency"]
        notices = {
            "accept": "done_accept",
            "decline": "done_decline",
            "pay_instalment": "done_instalment",
        }
        return render(
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

    @router.post("/plans/{plan_id}/answer")
    @page
    async def answer_plan(request: Request, plan_id: str) -> Response:
        viewer = viewer_of(request)
        answer = (await form_of(request, viewer)).get("answer", "")
        if answer not in ("accept", "decline"):
            raise InvalidInput("answer accept or decline")
        args = {"plan": plan_id_of(plan_id)}
        await sign_and_commit(viewer, "payments", f"{answer}_plan", args)
        return RedirectResponse(f"/web/plans/{plan_id}?done={answer}", status_code=303)

    app.include_router(router)

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


def plain_error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error page with no session details (an unknown address under /web, say)."""
    html = _env.get_template("error.html").render(
        t=Words(lang_of(request)), who=None, csrf="", nav=[], here="/web/", message=message
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def safe_next(path: str) -> str:
    """Where to go after logging in: a page of this site, never another site."""
    if path.startswith("/web/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/web/"
