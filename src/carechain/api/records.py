"""REST routes for health records, consent, access logs and erasure.

Writes carry a transaction the member signed (``records.add``,
``records.grant_consent``, ``records.revoke_consent``, ``records.erase``);
the route checks that it is the right call for the route, submits it and
waits until it commits. Reads are authorised by the chain: the node records
the reader's signed request in a ``records.access`` event and serves only
what that event granted (see ``node/records.py``).

No ``from __future__ import annotations`` here: FastAPI reads the route
parameters' annotations (``Member``, ``Wait``) from this module at run time.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from carechain.api.signed import commit, signed_call
from carechain.contracts.membership import MemberRecord
from carechain.contracts.records import READ_QUERY
from carechain.crypto.canonical import parse_json
from carechain.errors import InvalidInput, NotFound
from carechain.ledger.transaction import decode_envelope
from carechain.node.node import Node
from carechain.node.records import RecordService, RequestEvidence
from carechain.node.remote import FORWARDED
from carechain.standards.fhir import audit_event, consent_resource

MAX_WAIT_S = 60.0
FHIR_JSON = "application/fhir+json"


def audit_events(event: dict[str, Any]) -> list[dict[str, Any]]:
    """One FHIR AuditEvent per record an access event touched."""
    return [
        audit_event(
            {
                "id": f"{event['id'][:56]}-{index}",
                "time_ms": event["time"],
                "reader": event["reader"],
                "reader_org": event["reader_org"],
                "reader_role": event["reader_role"],
                "patient": event["patient"],
                "record": item["id"],
                "resource_type": item["type"],
                "purpose": event["purpose"],
                "break_glass": item["break_glass"],
                "outcome": item["outcome"],
                # Why it was refused or, for a granted break-glass read, the stated reason.
                "reason": (
                    item["basis"]
                    if item["outcome"] == "refused"
                    else event["reason"]
                    if item["break_glass"]
                    else ""
                ),
                "custodian": item["custodian"],
                "txid": event["id"],
            }
        )
        for index, item in enumerate(event["records"])
    ]


def _searchset(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
    }
    if next_url is not None:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    bundle["entry"] = [{"resource": r} for r in resources]
    return bundle


def _next_key(events: list[dict[str, Any]], limit: int) -> str | None:
    """Where the next page starts (``after``), when this page is full."""
    if len(events) < limit:
        return None
    last = events[-1]
    return f"{last['height']:012d}/{last['id']}"


def _events_page(
    events: list[dict[str, Any]], limit: int, path: str, fmt: str, query: dict[str, str]
) -> dict[str, Any]:
    """A page of access events: JSON with ``next``, or FHIR AuditEvents with a next link."""
    after = _next_key(events, limit)
    if fmt != "fhir":
        return {"events": events, "next": after}
    next_url = None
    if after is not None:
        params = {**query, "after": after, "limit": str(limit), "format": "fhir"}
        next_url = f"{path}?{urlencode(params)}"
    return _searchset([a for e in events for a in audit_events(e)], next_url)


def _consent_fhir(consent: dict[str, Any]) -> dict[str, Any]:
    return consent_resource(
        {
            "id": consent["id"],
            "patient": consent["patient"],
            "grantee": consent["grantee"],
            "grantee_kind": consent["grantee_kind"],
            "purposes": consent["purposes"],
            "types": consent["types"],
            "categories": consent["categories"],
            "records": consent["records"],
            "start_ms": consent["start"],
            "end_ms": consent["end"],
            "status": consent["status"],
            "granted_ms": consent["granted"],
        }
    )


def add_record_routes(
    app: Any,
    node: Node,
    service: RecordService,
    member: Callable[[Request], Awaitable[MemberRecord]],
) -> None:
    router = APIRouter(tags=["records"])
    Member = Annotated[MemberRecord, Depends(member)]
    Wait = Annotated[float, Query(gt=0, le=MAX_WAIT_S, description="seconds to wait for commit")]

    def evidence(request: Request) -> RequestEvidence:
        """The reader's signed request, as the access event will carry it."""
        unknown = sorted(set(request.query_params) - set(READ_QUERY))
        if unknown:  # it would be free text on the chain, in the access event's evidence
            raise InvalidInput(
                f"unknown query parameter(s) {', '.join(unknown)}; a read takes "
                + ", ".join(READ_QUERY)
            )
        found: RequestEvidence = request.state.evidence
        return found

    # -- records -------------------------------------------------------------------------

    @router.post("/v1/records")
    async def add_records(request: Request, author: Member, timeout: Wait = 10.0) -> Any:
        """Add records: ``{"records": [{"resource": "<FHIR JSON text>", "salt": "<hex>"}],
        "transaction": <signed records.add>}``. Answers once the transaction commits."""
        doc = parse_json(await request.body())
        if not isinstance(doc, dict) or set(doc) != {"records", "transaction"}:
            raise InvalidInput('body must be {"records": [...], "transaction": {...}}')
        items = doc["records"]
        if not isinstance(items, list) or not items:
            raise InvalidInput("records must be a non-empty list")
        pairs = []
        for index, item in enumerate(items):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("resource"), str)
                or not isinstance(item.get("salt"), str)
                or set(item) != {"resource", "salt"}
            ):
                raise InvalidInput(
                    f'records[{index}] must be {{"resource": "<FHIR JSON text>", "salt": "<hex>"}}'
                )
            pairs.append((item["resource"], item["salt"]))
        tx = decode_envelope(doc["transaction"], node.suite)
        return await run_in_threadpool(service.add, author, pairs, tx, timeout)

    @router.get("/v1/records/{record_id}")
    async def read_record(
        request: Request,
        record_id: str,
        reader: Member,
        purpose: str = "treatment",
        reason: str = "",
        timeout: Wait = 10.0,
    ) -> Any:
        """Read a record under consent: the access is committed to the chain first.

        A record kept in another organisation's vault is read through that
        organisation's node: this node relays the signed request and checks
        the answer against its own copy of the chain.
        """
        record = service.record(record_id)
        if record["status"] == "active" and not service.vault.hosts(record["custodian"]):
            if request.headers.get(FORWARDED):
                raise NotFound(f"this node does not keep the vault of {record['custodian']}")
            return await run_in_threadpool(
                service.relay_read, reader, evidence(request), record, timeout
            )
        served, event = await run_in_threadpool(
            service.read, reader, evidence(request), record_id, purpose, reason, timeout
        )
        return {
            "record": served.record,
            "resource": served.data.decode("utf-8"),
            "salt": served.salt.hex(),
            "access": {
                "txid": event["id"],
                "height": event["height"],
                "basis": event["records"][0]["basis"],
                "break_glass": event["break_glass"],
            },
        }

    @router.post("/v1/records/{record_id}/erase")
    async def erase_record(
        request: Request, record_id: str, who: Member, timeout: Wait = 10.0
    ) -> Any:
        """Erase a record (body: a signed ``records.erase``); its key is destroyed on commit."""
        tx = await signed_call(node, request, "records", "erase")
        if tx.body.args.get("record") != record_id:
            raise InvalidInput("the transaction erases another record than the path names")
        service.record(record_id)
        status = await commit(node, tx, who, timeout)
        if status.get("code") == "ok":
            service.confirm_erased(record_id)
        return status

    @router.get("/v1/vaults")
    async def vaults(_: Member, challenge: str) -> Any:
        """Which organisations' vaults this node keeps, signed by its peer key over the
        caller's challenge (how peers find a record's custodian; see node/remote.py)."""
        return service.vault_claim(challenge)

    # -- patients ----------------------------------------------------------------------

    @router.get("/v1/patients/{patient}/records")
    async def list_records(patient: str, reader: Member, purpose: str = "treatment") -> Any:
        """The patient's records the caller may read (chain metadata; no health data)."""
        return {"records": service.list_records(reader, patient, purpose)}

    @router.get("/v1/patients/{patient}/export")
    async def export(
        request: Request,
        patient: str,
        reader: Member,
        purpose: str = "treatment",
        reason: str = "",
        timeout: Wait = 10.0,
    ) -> Response:
        """The patient's records the caller may read, as one FHIR Bundle ("download my data").

        Records of other custodians come from their nodes (each decides and
        audits its own); ``X-Carechain-Access-Event`` lists every access event,
        ``X-Carechain-Held-Elsewhere`` the records whose custodian could not be reached.
        """
        if request.headers.get(FORWARDED):
            # Another node relays this reader's request: answer with what it checks
            # each record against (metadata, salt, the access event), never relayed on.
            served, event = await run_in_threadpool(
                service.export_here, reader, evidence(request), patient, purpose, reason, timeout
            )
            return Response(
                orjson.dumps(
                    {
                        "records": [
                            {
                                "record": s.record,
                                "resource": s.data.decode("utf-8"),
                                "salt": s.salt.hex(),
                            }
                            for s in served
                        ],
                        "event": event,
                    }
                ),
                media_type="application/json",
            )
        bundle, events, elsewhere = await run_in_threadpool(
            service.export, reader, evidence(request), patient, purpose, reason, timeout
        )
        headers = {"X-Carechain-Access-Event": ",".join(events)}
        if elsewhere:
            headers["X-Carechain-Held-Elsewhere"] = ",".join(
                f"{r['id']}@{r['custodian']}" for r in elsewhere
            )
        return Response(bundle, media_type=FHIR_JSON, headers=headers)

    @router.get("/v1/patients/{patient}/consents")
    async def consents(patient: str, who: Member, format: str = "json") -> Any:
        found = service.consents(who, patient)
        if format == "fhir":
            return _searchset([_consent_fhir(c) for c in found])
        return {"consents": found}

    @router.get("/v1/patients/{patient}/access-log")
    async def access_log(
        patient: str,
        who: Member,
        after: str = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        format: str = "json",
    ) -> Any:
        """Every access to the patient's records, granted or refused, oldest first.

        A full page names where the next starts: ``next`` (pass it as ``after``),
        or in FHIR form a ``Bundle.link`` with relation ``next``.
        """
        events = service.access_log(who, patient, after, limit)
        return _events_page(events, limit, f"/v1/patients/{patient}/access-log", format, {})

    @router.get("/v1/audit/access")
    async def audit(
        who: Member,
        after: str = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        break_glass: bool = False,
        format: str = "json",
    ) -> Any:
        """Access events across patients (auditors and regulators)."""
        events = service.audit(who, after, limit, break_glass)
        query = {"break_glass": "true"} if break_glass else {}
        return _events_page(events, limit, "/v1/audit/access", format, query)

    # -- consent -----------------------------------------------------------------------

    @router.post("/v1/consents")
    async def grant_consent(request: Request, who: Member, timeout: Wait = 10.0) -> Any:
        """Grant consent (body: a signed ``records.grant_consent``)."""
        tx = await signed_call(node, request, "records", "grant_consent")
        return await commit(node, tx, who, timeout)

    @router.post("/v1/consents/{consent_id}/revoke")
    async def revoke_consent(
        request: Request, consent_id: str, who: Member, timeout: Wait = 10.0
    ) -> Any:
        """Revoke consent (body: a signed ``records.revoke_consent``)."""
        tx = await signed_call(node, request, "records", "revoke_consent")
        if tx.body.args.get("consent") != consent_id:
            raise InvalidInput("the transaction revokes another consent than the path names")
        if node.state.get(f"records/consent/{consent_id}") is None:
            raise NotFound(f"no consent {consent_id} on this chain")
        return await commit(node, tx, who, timeout)

    app.include_router(router)
