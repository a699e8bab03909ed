"""Records: fingerprints of health records, patient consent, access events, erasure.

The record itself (a FHIR R4 resource) lives encrypted in its custodian's
vault. The chain holds only what everyone must agree on: that a record exists,
whose it is (a pseudonymous patient id), who holds it, its resource type and
category code, when it was added, and a salted fingerprint a reader can check
the served bytes against. Erasing a record destroys its key and salt in the
vault; the fingerprint on the chain then reveals nothing.

State (namespace ``records``)::

    record/<record>                       patient, custodian, type, category, fingerprint,
                                          author, time, height, txid, status (active|erased)
    patient/<patient>/record/<record>     the same (a patient's records, in id order)
    consent/<consent>                     patient, grantee (where the consent is kept)
    grant/<patient>/<grantee>/<consent>   the consent (FHIR Consent fields; see ``consent``)
    glass/<patient>/<reader>              an open break-glass window: until, reason, txid
    log/<patient>/<height>/<txid>         an access event: each record asked for and its
                                          outcome (granted or refused); the patient's view
    audit/<height>/<txid>                 the same event, auditors' and regulators' view
    request/<sha256(reader, nonce)>       txid: a reader's signed request, used once

Every read of a record goes through ``access``: the custodian's node submits
the reader's signed request as evidence; the contract verifies the reader's
signature, decides on the state at this block (``consent.decide``) and records
the event, granted or refused. The node serves the record only after the
event has committed with the outcome ``granted``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from carechain.contracts.consent import (
    BREAK_GLASS_REASONS,
    BREAK_GLASS_WINDOW_MS,
    PATIENT_ID,
    PURPOSES,
    READ_PURPOSES,
    Decision,
    consent_active,
    decide,
    grants_to,
    is_patient,
    patient_id_of,
)
from carechain.contracts.membership import MemberRecord
from carechain.contracts.runtime import Args, Context, Contract, contract_method
from carechain.crypto.suite import get_suite
from carechain.errors import ContractError, Forbidden
from carechain.identity.requests import statement_for_body_hash
from carechain.identity.roles import OrgType, Role
from carechain.standards.fhir import CATEGORY_PATTERN, RECORD_TYPES

RECORD_ID = re.compile(r"rec-[a-z2-7]{26}")
"""A record id: ``rec-`` and 26 base32 characters of 16 random bytes (``vault.new_record_id``).

Random, never chosen: an id a hospital system made up could carry a medical
record number or a name onto the chain."""

CONSENT_ID = re.compile(r"con-[0-9a-f]{24}")
"""A consent id: ``con-`` and 24 hexadecimal digits of 12 random bytes."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ORG = re.compile(r"[a-z0-9-]{2,40}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")

MAX_RECORDS_PER_TX = 1000
MAX_CONSENT_MS = 10 * 365 * 24 * 3600 * 1000
"""A consent lasts at most ten years; the patient grants again after that."""
ADD_WINDOW_MS = 10 * 60 * 1000
"""A records.add commits within ten minutes of its signing, or never: after that its
custodian node may drop the vault copies it is still holding as pending."""
REQUEST_SKEW_MS = 5 * 60 * 1000
"""A reader's request must be signed within five minutes of the block that records it."""

CUSTODIAN_TYPES = {OrgType.HOSPITAL, OrgType.CLINIC}
AUTHOR_ROLES = {Role.CLINICIAN, Role.STAFF}
READER_ROLES = {Role.CLINICIAN, Role.PHARMACIST, Role.STAFF, Role.PATIENT, Role.AUDITOR}


def patient_exists(ctx: Context, patient: str) -> bool:
    """A patient member with this id holds a certificate valid at block time."""
    org, member_id = patient.split(":", 1)
    for key, role in ctx.scan_other("governance", f"who/{org}/{member_id}/"):
        if role == Role.PATIENT:
            member = ctx.member(key.rsplit("/", 1)[1])
            if member is not None and member.refusal_at(ctx.time_ms) is None:
                return True
    return False


def _patient_arg(args: Args, name: str = "patient") -> str:
    return args.text(name, pattern=PATIENT_ID, max_length=105)


_EMPTY_BODY = hashlib.sha256(b"").hexdigest()
_QUERY_VALUE = re.compile(r"[A-Za-z0-9._-]{1,40}")
READ_QUERY = ("purpose", "reason", "timeout")
"""The query parameters a read of records takes; anything else is refused (it would be
free text on the chain, in the access event's evidence)."""


def _signed_route(path: str) -> tuple[str, dict[str, str]]:
    """The route and query parameters of a reader's signed path, parsed strictly here
    (not with ``urllib``, whose leniency has changed between Python releases)."""
    route, _, query = path.partition("?")
    if not route.startswith("/") or route.startswith("//"):
        raise ContractError("the reader's request path is not an absolute path")
    params: dict[str, str] = {}
    for part in query.split("&") if query else ():
        name, equals, value = part.partition("=")
        if name not in READ_QUERY or not equals or name in params:
            raise ContractError(
                f"the reader's request has a query the records API does not take ({name[:20]!r})"
            )
        if not _QUERY_VALUE.fullmatch(value):
            raise ContractError(f"the reader's request has a malformed {name}")
        params[name] = value
    return route, params


class Records(Contract):
    name = "records"

    # -- records -----------------------------------------------------------------------

    @contract_method(roles=AUTHOR_ROLES, org_types=CUSTODIAN_TYPES)
    def add(self, ctx: Context, args: Args) -> None:
        """Register records the caller's organisation now holds in its vault.

        ``records``: a list of ``{record, patient, type, category, fingerprint}``
        (a whole FHIR Bundle imports in one transaction).
        """
        items = args.items("records", max_items=MAX_RECORDS_PER_TX)
        if not items:
            raise ContractError("argument 'records' is empty")
        if abs(ctx.time_ms - ctx.tx.body.timestamp_ms) > ADD_WINDOW_MS:
            raise ContractError(
                "this records.add was signed over 10 minutes away from the block time; the "
                "custodian may have dropped its records from the vault: add them again"
            )
        caller = ctx.caller
        known: dict[str, bool] = {}
        seen: set[str] = set()
        for index, item in enumerate(items):
            where = f"records[{index}]"
            if not isinstance(item, dict):
                raise ContractError(f"{where} must be an object")
            fields = Args(item)
            record_id = fields.text("record", pattern=RECORD_ID)
            patient = _patient_arg(fields)
            rtype = fields.text("type", max_length=40)
            category = fields.text("category", pattern=CATEGORY_PATTERN)
            digest = fields.text("fingerprint", pattern=_HEX64)
            unread = fields.unread()
            if unread:
                raise ContractError(f"{where} has unknown field(s): {', '.join(unread)}")
            if rtype not in RECORD_TYPES:
                raise ContractError(
                    f"{where}.type {rtype!r} is not a record type ({', '.join(RECORD_TYPES)})"
                )
            if record_id in seen or ctx.get(f"record/{record_id}") is not None:
                raise ContractError(f"{where}: record {record_id} already exists")
            seen.add(record_id)
            if patient not in known:
                known[patient] = patient_exists(ctx, patient)
            if not known[patient]:
                raise ContractError(f"{where}: unknown patient {patient}")
            doc = {
                "id": record_id,
                "patient": patient,
                "custodian": caller.org_id,
                "type": rtype,
                "category": category,
                "fingerprint": digest,
                "author": caller.fingerprint,
                "time": ctx.time_ms,
                "height": ctx.block.height,
                "txid": ctx.txid,
                "status": "active",
            }
            ctx.put(f"record/{record_id}", doc)
            ctx.put(f"patient/{patient}/record/{record_id}", doc)

    @contract_method(roles={Role.PATIENT, Role.CLINICIAN, Role.STAFF, Role.ADMIN})
    def erase(self, ctx: Context, args: Args) -> None:
        """Erase a record (GDPR Art. 17): the patient, or its custodian on their request.

        The custodian's node destroys the record's key when this commits; the
        chain keeps only that the record existed and was erased.
        """
        record_id = args.text("record", pattern=RECORD_ID)
        record = ctx.get(f"record/{record_id}")
        if record is None:
            raise ContractError(f"unknown record {record_id}")
        caller = ctx.caller
        by_patient = is_patient(caller, record["patient"])
        by_custodian = caller.role is not Role.PATIENT and caller.org_id == record["custodian"]
        if not (by_patient or by_custodian):
            raise Forbidden("only the record's patient or its custodian may erase it")
        if record["status"] == "erased":
            raise ContractError(f"record {record_id} is already erased")
        tombstone = {
            "id": record_id,
            "patient": record["patient"],
            "custodian": record["custodian"],
            "status": "erased",
            "erased": ctx.time_ms,
            "erased_by": caller.fingerprint,
            "erase_txid": ctx.txid,
            "height": record["height"],
        }
        ctx.put(f"record/{record_id}", tombstone)
        ctx.put(f"patient/{record['patient']}/record/{record_id}", tombstone)

    # -- consent -----------------------------------------------------------------------

    @contract_method(roles={Role.PATIENT})
    def grant_consent(self, ctx: Context, args: Args) -> None:
        """A patient permits a grantee to read records in a scope, for purposes, in a period."""
        consent_id = args.text("consent", pattern=CONSENT_ID)
        grantee = args.text("grantee", max_length=64)
        purposes = self._codes(args, "purposes", PURPOSES, required=True)
        types = self._codes(args, "types", RECORD_TYPES)
        categories = self._list(args, "categories", CATEGORY_PATTERN, "a category code")
        records = self._list(args, "records", RECORD_ID, "a record id")
        start = args.integer("start", minimum=0, default=ctx.time_ms)
        end = args.integer("end", minimum=0)
        caller = ctx.caller
        patient = patient_id_of(caller)
        if ctx.get(f"consent/{consent_id}") is not None:
            raise ContractError(f"consent {consent_id} already exists")
        kind = self._grantee_kind(ctx, grantee)
        if grantee in (caller.fingerprint, caller.org_id) and kind == "member":
            raise ContractError("a patient cannot grant consent to themselves")
        if end <= start:
            raise ContractError("consent period ends before it starts")
        if end <= ctx.time_ms:
            raise ContractError("consent period has already ended")
        start = max(start, ctx.time_ms)  # consent takes effect from the block that commits it
        if end - start > MAX_CONSENT_MS:
            raise ContractError("consent period is longer than ten years")
        for record_id in records:
            record = ctx.get(f"record/{record_id}")
            if record is None or record["patient"] != patient:
                raise ContractError(f"record {record_id} is not one of {patient}'s records")
        for _key, other in ctx.scan(f"grant/{patient}/{grantee}/"):
            if (
                other.get("revoked") is None
                and other["end"] > ctx.time_ms
                and set(other["purposes"]) & set(purposes)
                and other["start"] < end
                and start < other["end"]
            ):
                raise ContractError(
                    f"overlaps consent {other['id']} to the same grantee for "
                    f"{', '.join(sorted(set(other['purposes']) & set(purposes)))}; "
                    "revoke it first"
                )
        consent = {
            "id": consent_id,
            "patient": patient,
            "grantee": grantee,
            "grantee_kind": kind,
            "purposes": purposes,
            "types": types,
            "categories": categories,
            "records": records,
            "start": start,
            "end": end,
            "granted": ctx.time_ms,
            "by": caller.fingerprint,
            "height": ctx.block.height,
            "txid": ctx.txid,
            "revoked": None,
        }
        ctx.put(f"consent/{consent_id}", {"patient": patient, "grantee": grantee})
        ctx.put(f"grant/{patient}/{grantee}/{consent_id}", consent)

    @contract_method(roles={Role.PATIENT})
    def revoke_consent(self, ctx: Context, args: Args) -> None:
        consent_id = args.text("consent", pattern=CONSENT_ID)
        where = ctx.get(f"consent/{consent_id}")
        if where is None:
            raise ContractError(f"unknown consent {consent_id}")
        if where["patient"] != patient_id_of(ctx.caller):
            raise Forbidden(f"consent {consent_id} was granted by another patient")
        key = f"grant/{where['patient']}/{where['grantee']}/{consent_id}"
        consent = ctx.get(key)
        if consent is None:  # the index and the grant are written together
            raise ContractError(f"consent {consent_id} is missing its grant")
        if consent["revoked"] is not None:
            raise ContractError(f"consent {consent_id} is already revoked")
        if not consent_active(consent, ctx.time_ms) and consent["end"] <= ctx.time_ms:
            raise ContractError(f"consent {consent_id} has already expired")
        ctx.put(key, dict(consent, revoked=ctx.time_ms, revoke_txid=ctx.txid))

    # -- access ------------------------------------------------------------------------

    @contract_method(roles={Role.PEER})
    def access(self, ctx: Context, args: Args) -> None:
        """A custodian's node records a reader's request to read records of a patient.

        ``patient``, ``records`` (the ids asked for: one, or a whole export),
        ``purpose``, ``reason`` (break-glass only), ``reader`` and ``request``:
        the reader's signed API request (method, path, body hash, time, nonce,
        signature), verified here and used once per serving node. Each record
        is decided on the state at this block; the event records every
        outcome, so refused attempts stay on the record for the patient and
        auditors. The node serves only the records granted here.
        """
        patient = _patient_arg(args)
        wanted = args.items("records", max_items=MAX_RECORDS_PER_TX)
        purpose = args.text("purpose", max_length=20)
        reason = args.text("reason", max_length=40, required=False, default="")
        reader_fp = args.text("reader", pattern=_HEX64)
        request = args.mapping("request")
        if not wanted:
            raise ContractError("argument 'records' is empty")
        if purpose not in READ_PURPOSES:
            raise ContractError(f"purpose {purpose!r} is not one of {', '.join(READ_PURPOSES)}")
        if reason and reason not in BREAK_GLASS_REASONS:
            raise ContractError(f"reason {reason!r} is not a break-glass reason")
        if reason and purpose != "emergency":
            raise ContractError("a reason is given only with purpose emergency (break-glass)")
        reader = ctx.member(reader_fp)
        if reader is None:
            raise ContractError(f"unknown reader {reader_fp[:12]}...")
        records: list[dict[str, Any]] = []
        for record_id in wanted:
            found = (
                ctx.get(f"record/{record_id}")
                if isinstance(record_id, str) and RECORD_ID.fullmatch(record_id)
                else None
            )
            if found is None or found["patient"] != patient:
                raise ContractError(f"record {record_id!r} is not one of {patient}'s records")
            records.append(found)
        if len({r["id"] for r in records}) != len(records):
            raise ContractError("argument 'records' lists a record twice")
        single = records[0]["id"] if len(records) == 1 else None
        self._check_request(ctx, reader, request, patient, single, purpose, reason)
        refusal = reader.refusal_at(ctx.time_ms)
        if refusal is None and reader.role not in READER_ROLES:
            refusal = ("forbidden", f"role {reader.role} does not read records")
        if refusal is None and purpose == "self" and not is_patient(reader, patient):
            refusal = ("forbidden", "purpose self is for the patient's own records")
        if refusal is None and purpose == "emergency":
            self._open_window(ctx, reader, patient, reason)
        outcomes = []
        grants = None if refusal is not None else grants_to(ctx.scan, patient, reader)
        for record in records:
            if refusal is not None:
                decision = Decision(False, refusal[1])
            elif record["status"] == "erased":
                decision = Decision(False, "the record was erased")
            else:
                decision = decide(
                    ctx.scan, ctx.get, reader, patient, record, purpose, ctx.time_ms, grants
                )
            outcomes.append(
                {
                    "id": record["id"],
                    "type": record.get("type"),
                    "custodian": record["custodian"],
                    "outcome": "granted" if decision.granted else "refused",
                    "basis": decision.basis,
                    "break_glass": decision.break_glass,
                }
            )
        granted = sum(1 for o in outcomes if o["outcome"] == "granted")
        event = {
            "id": ctx.txid,
            "time": ctx.time_ms,
            "patient": patient,
            "records": outcomes,
            "reader": reader.fingerprint,
            "reader_org": reader.org_id,
            "reader_role": str(reader.role),
            "purpose": purpose,
            "break_glass": any(o["break_glass"] for o in outcomes),
            "reason": reason,
            "outcome": (
                "granted" if granted == len(outcomes) else "partial" if granted else "refused"
            ),
            "served_by": ctx.caller.org_id,
            "height": ctx.block.height,
        }
        suffix = f"{ctx.block.height:012d}/{ctx.txid}"
        ctx.put(f"log/{patient}/{suffix}", event)
        ctx.put(f"audit/{suffix}", event)

    def _check_request(
        self,
        ctx: Context,
        reader: MemberRecord,
        request: dict[str, Any],
        patient: str,
        record_id: str | None,
        purpose: str,
        reason: str,
    ) -> None:
        """The reader really asked for this (this route, purpose and reason), recently, once
        (per serving organisation)."""
        fields = Args(request)
        method = fields.text("method", max_length=8)
        path = fields.text("path", max_length=2048)
        body = fields.text("body", pattern=_HEX64)
        time_ms = fields.integer("time", minimum=0)
        nonce = fields.text("nonce", pattern=_NONCE)
        signature = fields.text("signature", max_length=128)
        if fields.unread():
            raise ContractError(f"request has unknown field(s): {', '.join(fields.unread())}")
        if method != "GET" or body != _EMPTY_BODY:
            raise ContractError("the reader's request is not a read (a GET without a body)")
        if abs(time_ms - ctx.time_ms) > REQUEST_SKEW_MS:
            raise ContractError("the reader's request is stale (signed over 5 minutes away)")
        route, params = _signed_route(path)
        expected = {f"/v1/patients/{patient}/export"}
        if record_id is not None:
            expected.add(f"/v1/records/{record_id}")
        if route not in expected:
            raise ContractError(f"the reader's request was for {route}, not this access")
        if params.get("purpose", "treatment") != purpose:
            raise ContractError("the reader's request names another purpose")
        if params.get("reason", "") != reason:
            raise ContractError("the reader's request names another break-glass reason")
        try:
            raw = base64.b64decode(signature, validate=True)
        except binascii.Error:
            raise ContractError("the reader's request signature is not base64") from None
        config = ctx.read("governance", "config") or {}
        suite = get_suite(config.get("suite", "intl"))
        statement = statement_for_body_hash(method, path, body, time_ms, nonce, reader.fingerprint)
        if not suite.verify(reader.public_key, statement, raw):
            raise ContractError("the reader's request signature does not verify")
        used = hashlib.sha256(
            f"{reader.fingerprint}\0{nonce}\0{ctx.caller.org_id}".encode()
        ).hexdigest()
        if ctx.get(f"request/{used}") is not None:
            raise ContractError("the reader's request was already used for an access")
        ctx.put(f"request/{used}", ctx.txid)

    def _open_window(self, ctx: Context, reader: MemberRecord, patient: str, reason: str) -> None:
        """Break-glass: a clinician with a coded reason opens a short window of access."""
        if reader.role is not Role.CLINICIAN:
            raise ContractError("only a clinician may use break-glass access")
        if not reason:
            raise ContractError("break-glass access needs a reason")
        key = f"glass/{patient}/{reader.fingerprint}"
        window = ctx.get(key)
        if window is None or window["until"] <= ctx.time_ms:
            ctx.put(
                key,
                {
                    "reader": reader.fingerprint,
                    "reason": reason,
                    "opened": ctx.time_ms,
                    "until": ctx.time_ms + BREAK_GLASS_WINDOW_MS,
                    "txid": ctx.txid,
                },
            )

    # -- argument helpers ---------------------------------------------------------------

    def _codes(
        self, args: Args, name: str, allowed: tuple[str, ...], *, required: bool = False
    ) -> list[str]:
        values = args.items(name, max_items=len(allowed), default=[])
        if required and not values:
            raise ContractError(f"argument {name!r} needs at least one of {', '.join(allowed)}")
        for value in values:
            if value not in allowed:
                raise ContractError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        if len(set(values)) != len(values):
            raise ContractError(f"argument {name!r} lists a value twice")
        return sorted(values)

    def _list(self, args: Args, name: str, pattern: re.Pattern[str], what: str) -> list[str]:
        values = args.items(name, max_items=200, default=[])
        for value in values:
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise ContractError(f"{name}: {value!r} is not {what}")
        if len(set(values)) != len(values):
            raise ContractError(f"argument {name!r} lists a value twice")
        return sorted(values)

    def _grantee_kind(self, ctx: Context, grantee: str) -> str:
        if _HEX64.fullmatch(grantee):
            member = ctx.member(grantee)
            if member is None:
                raise ContractError(f"unknown grantee: no certificate {grantee[:12]}...")
            if member.refusal_at(ctx.time_ms) is not None:
                raise ContractError(f"grantee certificate {grantee[:12]}... is revoked or expired")
            return "member"
        if _ORG.fullmatch(grantee):
            org = ctx.read("governance", f"org/{grantee}")
            if org is None or org.get("status") != "active":
                raise ContractError(f"unknown grantee: no active organisation {grantee!r}")
            return "org"
        raise ContractError(
            f"grantee {grantee!r} is neither an organisation id nor a certificate fingerprint"
        )
