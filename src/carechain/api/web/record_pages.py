"""A patient's records page: what the chain holds of their records (never the
contents), their consents, granted and revoked here, and who read their records."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from carechain.api.web.site import Site
from carechain.contracts.consent import PURPOSES, patient_id_of
from carechain.contracts.records import CONSENT_ID
from carechain.errors import Forbidden, InvalidInput
from carechain.standards.fhir import RECORD_TYPES

EVENTS = 50
"""Access events on one page."""
_EVENT_CURSOR = re.compile(r"[0-9]{12}/[0-9a-f]{64}")


def add_record_pages(site: Site) -> None:
    records = site.records

    @site.router.get("/records")
    @site.page
    async def my_records(request: Request, after: str = "", done: str = "") -> Response:
        viewer = site.viewer_of(request)
        if not viewer.is_patient:
            raise Forbidden("this page is a patient's own records, consents and access log")
        m, t = viewer.member, viewer.words
        patient = patient_id_of(m)
        if after and not _EVENT_CURSOR.fullmatch(after):
            raise InvalidInput(f"after {after[:40]!r} is not a place in the access log")
        found = await run_in_threadpool(records.list_records, m, patient, "self")
        consents = await run_in_threadpool(records.consents, m, patient)
        events = await run_in_threadpool(records.access_log, m, patient, after, EVENTS + 1)
        last = events[EVENTS - 1] if len(events) > EVENTS else None
        notices = {"granted": "done_granted", "revoked": "done_revoked"}
        return site.render(
            request,
            "records.html",
            t,
            viewer,
            patient=patient,
            records=found,
            consents=sorted(consents, key=lambda c: -c["granted"]),
            events=events[:EVENTS],
            more=f"{last['height']:012d}/{last['id']}" if last else None,
            purposes=PURPOSES,
            types=RECORD_TYPES,
            notice=t[notices[done]] if done in notices else "",
        )

    @site.router.post("/records/consents")
    @site.page
    async def grant_consent(request: Request) -> Response:
        viewer = site.viewer_of(request)
        fields = await site.form_of(request, viewer)
        grantee = fields.get("grantee", "").strip()
        if not grantee:
            raise InvalidInput("name who may read: an organisation id such as chaoyang-clinic")
        purposes = [p for p in PURPOSES if fields.get(f"purpose-{p}")]
        if not purposes:
            raise InvalidInput("tick at least one purpose")
        types = [rt for rt in RECORD_TYPES if fields.get(f"type-{rt}")]
        until = fields.get("until", "")
        try:
            day = datetime.strptime(until, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise InvalidInput(f"valid until {until[:20]!r} is not a date (YYYY-MM-DD)") from None
        end_ms = int(day.timestamp() * 1000) + 86_400_000  # to the end of that day (UTC)
        args: dict[str, Any] = {
            "consent": "con-" + secrets.token_hex(12),
            "grantee": grantee,
            "purposes": purposes,
            "end": end_ms,
        }
        if types:
            args["types"] = types
        await site.sign_and_commit(viewer, "records", "grant_consent", args)
        return RedirectResponse("/web/records?done=granted", status_code=303)

    @site.router.post("/records/consents/{consent_id}/revoke")
    @site.page
    async def revoke_consent(request: Request, consent_id: str) -> Response:
        viewer = site.viewer_of(request)
        await site.form_of(request, viewer)
        if not CONSENT_ID.fullmatch(consent_id):
            raise InvalidInput(f"{consent_id[:40]!r} is not a consent id")
        await site.sign_and_commit(viewer, "records", "revoke_consent", {"consent": consent_id})
        return RedirectResponse("/web/records?done=revoked", status_code=303)
