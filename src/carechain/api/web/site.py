"""What every web page shares: sessions, rendering, forms, signing, and the words.

``Site`` holds the node, its services and the router. A page is an ``async`` route
wrapped in ``Site.page``, so that bad input and refusals come back as an error page
naming the problem; ``Site.viewer_of`` gives the logged-in person (or sends them to
the login page); ``Site.form_of`` reads a posted form and checks its CSRF token;
``Site.sign_and_commit`` signs a transaction with the person's own key and waits for
its commit.
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
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from carechain.api.client import build_transaction
from carechain.api.web.logins import WebLogins
from carechain.api.web.sessions import COOKIE, Sessions, WebSession
from carechain.api.web.text import LANGS, Words
from carechain.contracts.claim_rules import DESK, PROVIDERS
from carechain.contracts.membership import MemberRecord
from carechain.errors import CarechainError, Forbidden, InvalidInput, Oversize
from carechain.identity.roles import OrgType, Role
from carechain.node.claims import DESK_ROLES, ClaimService, sees_org
from carechain.node.node import Node
from carechain.node.payments import ORG_READERS, PaymentService, overseer

MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 20
LANG_COOKIE = "cc_lang"
_CLAIM_ID = re.compile(r"clm-[0-9a-f]{24}")
_PLAN_ID = re.compile(r"plan-[0-9a-f]{24}")
STATIC = Path(__file__).parent / "static"
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
            return [
                ("/web/claims", t["my_claims"]),
                ("/web/accounts", t["my_accounts"]),
                ("/web/records", t["my_records"]),
            ]
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


class Site:
    """What every page shares: the node and its services, the logins and sessions, the
    router, and rendering, sessions, forms and signing."""

    def __init__(self, node: Node, logins: WebLogins, sessions: Sessions) -> None:
        self.node, self.logins, self.sessions = node, logins, sessions
        self.router = APIRouter(prefix="/web", include_in_schema=False)
        self.claims, self.payments = ClaimService(node), PaymentService(node)
        self.records = node.records

    def render(
        self,
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

    def viewer_of(self, request: Request) -> Viewer:
        token = request.cookies.get(COOKIE)
        session = self.sessions.get(token)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if session is None:
            raise LoginNeeded(path, ended=bool(token))
        try:
            member = self.signing_member(session.creds.fingerprint)
        except Forbidden:
            member = None
        if member is None or self.logins.fingerprint(session.name) != session.creds.fingerprint:
            self.sessions.close(token)
            raise LoginNeeded(path, ended=True)
        return Viewer(session, member, Words(lang_of(request)))

    def signing_member(self, fingerprint: str) -> MemberRecord:
        """The member a login signs as, if the chain lets it sign now; else ``Forbidden``
        saying why (unknown, revoked, expired, its organisation removed)."""
        member = self.node.member(fingerprint)
        if member is None:
            raise Forbidden("this login's member is not on the chain")
        refusal = member.refusal_at(int(time.time() * 1000))
        if refusal is not None:
            raise Forbidden(f"this login's member may not sign: {refusal[1]}")
        return member

    def page(
        self, handler: Callable[..., Awaitable[Response]]
    ) -> Callable[..., Awaitable[Response]]:
        """Run a page; a refusal or bad input becomes an error page naming it."""

        @functools.wraps(handler)
        async def run(request: Request, **kwargs: Any) -> Response:
            try:
                return await handler(request, **kwargs)
            except CarechainError as exc:
                words = Words(lang_of(request))
                try:
                    viewer: Viewer | None = self.viewer_of(request)
                except LoginNeeded:
                    viewer = None
                return self.render(
                    request,
                    "error.html",
                    words,
                    viewer,
                    status=exc.http_status,
                    message=exc.message,
                )

        return run

    async def form_of(self, request: Request, viewer: Viewer | None) -> dict[str, str]:
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

    async def sign_and_commit(
        self, viewer: Viewer, contract: str, method: str, args: dict[str, Any]
    ) -> None:
        """Commit ``contract.method`` signed by the logged-in person; a refusal is raised."""
        tx = build_transaction(viewer.session.creds, self.node.chain, contract, method, args)
        status = await run_in_threadpool(self.node.submit_one, tx, 10.0)
        if status.status != "committed":
            error = CarechainError("the chain did not commit this within 10 s; look again soon")
            error.code, error.http_status = "pending", 503
            raise error
        if status.code != "ok":
            error = CarechainError(f"the chain refused this: {status.message}")
            error.code = status.code or "rejected"
            error.http_status = 403 if status.code == "forbidden" else 422
            raise error

    def button(self, path: str, contract: str, method: str, check: Callable[[str], str]) -> None:
        """A route for a button that signs ``contract.method`` of the item the page shows
        (``{"claim": id}`` or ``{"plan": id}``), then shows that page again, saying so."""
        kind = path.split("/")[1]  # claims, plans

        async def press(request: Request, item_id: str) -> Response:
            viewer = self.viewer_of(request)
            await self.form_of(request, viewer)
            await self.sign_and_commit(viewer, contract, method, {kind[:-1]: check(item_id)})
            return RedirectResponse(f"/web/{kind}/{item_id}?done={method}", status_code=303)

        press.__name__ = f"press_{method}"
        self.router.post(path)(self.page(press))


def claim_id_of(text: str) -> str:
    if not _CLAIM_ID.fullmatch(text):
        raise InvalidInput(f"{text[:40]!r} is not a claim id (clm- and 24 hex digits)")
    return text


def plan_id_of(text: str) -> str:
    if not _PLAN_ID.fullmatch(text):
        raise InvalidInput(f"{text[:40]!r} is not a plan id (plan- and 24 hex digits)")
    return text


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
