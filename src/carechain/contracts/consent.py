"""Who may read a patient's record: the consent decision, as a pure function of state.

The records contract decides every access with ``decide`` at the block that
records it, and a custodian's node filters listings with the same function on
the same committed state, so the chain and the node never disagree.

A reader may read a record when one of these holds, checked in this order:

1. the reader is the patient (a patient member whose id is the record's patient);
2. the reader is a clinician or staff member of the record's custodian
   organisation (it holds the data); never a patient of that organisation;
3. an active consent of the patient names the reader's certificate, or the
   reader's organisation and the reader is one of its care roles (clinician,
   pharmacist, staff: never its patients or auditors), lists the purpose, is
   within its period at block time, and its scope covers the record (its
   resource type, its category or the record itself; an empty scope covers
   every record);
4. the purpose is ``emergency`` and the reader opened a break-glass window for
   this patient that is still open at block time.

Consents follow FHIR R4 Consent (a ``permit`` provision with actor, purpose,
class, code, data and period); ``standards.fhir.consent_resource`` renders one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from carechain.contracts.membership import MemberRecord
from carechain.identity.roles import Role

PURPOSES = ("treatment", "payment", "research")
"""What a patient may consent to (FHIR v3-ActReason TREAT, HPAYMT, HRESCH)."""

READ_PURPOSES = (*PURPOSES, "emergency", "self")
"""Why a reader reads: a consented purpose, break-glass (ETREAT) or the patient's own (PATRQT)."""

BREAK_GLASS_REASONS = {
    "unconscious": "the patient is unconscious",
    "life-threatening": "a life-threatening condition needs immediate treatment",
    "cannot-communicate": "the patient cannot communicate consent",
    "guardian-unreachable": "the patient's guardian cannot be reached",
}
"""Coded reasons only: free text is where health information leaks onto a chain."""

BREAK_GLASS_WINDOW_MS = 60 * 60 * 1000
"""How long emergency access lasts once opened (one hour of block time)."""

PATIENT_ID = re.compile(r"[a-z0-9-]{2,40}:[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""A patient's pseudonymous id on the chain: ``<organisation>:<member id>``."""


CUSTODIAN_READERS = frozenset({Role.CLINICIAN, Role.STAFF})
"""Who of a record's custodian organisation reads its records without consent."""

ORG_GRANT_READERS = frozenset({Role.CLINICIAN, Role.PHARMACIST, Role.STAFF})
"""Who of an organisation a consent to that organisation covers."""


def patient_id_of(member: MemberRecord) -> str:
    return f"{member.org_id}:{member.member_id}"


def is_patient(member: MemberRecord, patient: str) -> bool:
    """``member`` is the patient ``patient`` names (not a staff member with that id)."""
    return member.role is Role.PATIENT and patient_id_of(member) == patient


@dataclass(frozen=True)
class Decision:
    granted: bool
    basis: str
    """What decided it: ``self``, ``custodian``, ``consent:<id>``, ``break-glass``, or why not."""
    break_glass: bool = False


Scan = Callable[[str], Iterable[tuple[str, Any]]]
"""A sorted prefix scan of the records contract's own keys (without its prefix)."""
Get = Callable[[str], Any]


def consent_active(consent: Mapping[str, Any], time_ms: int) -> bool:
    return consent.get("revoked") is None and consent["start"] <= time_ms < consent["end"]


def consent_covers(consent: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    types, categories, records = consent["types"], consent["categories"], consent["records"]
    if not (types or categories or records):
        return True
    return (
        record.get("type") in types
        or record.get("category") in categories
        or record.get("id") in records
    )


def consent_status(consent: Mapping[str, Any], time_ms: int) -> str:
    if consent.get("revoked") is not None:
        return "revoked"
    if time_ms >= consent["end"]:
        return "expired"
    if time_ms < consent["start"]:
        return "pending"
    return "active"


def grants_to(scan: Scan, patient: str, reader: MemberRecord) -> list[dict[str, Any]]:
    """The patient's consents naming the reader's certificate or organisation."""
    found: list[dict[str, Any]] = []
    grantees = [reader.fingerprint]
    if reader.role in ORG_GRANT_READERS:
        grantees.append(reader.org_id)
    for grantee in grantees:
        found.extend(value for _, value in scan(f"grant/{patient}/{grantee}/"))
    return found


def decide(
    scan: Scan,
    get: Get,
    reader: MemberRecord,
    patient: str,
    record: Mapping[str, Any],
    purpose: str,
    time_ms: int,
    grants: list[dict[str, Any]] | None = None,
) -> Decision:
    """May ``reader`` read ``record`` of ``patient`` for ``purpose`` at ``time_ms``?"""
    if is_patient(reader, patient):
        return Decision(True, "self")
    if record.get("custodian") == reader.org_id and reader.role in CUSTODIAN_READERS:
        return Decision(True, "custodian")
    if purpose == "emergency":
        window = get(f"glass/{patient}/{reader.fingerprint}")
        if window is not None and time_ms < window["until"]:
            return Decision(True, "break-glass", break_glass=True)
        return Decision(False, "no open break-glass window")
    if grants is None:
        grants = grants_to(scan, patient, reader)
    for consent in grants:
        if (
            purpose in consent["purposes"]
            and consent_active(consent, time_ms)
            and consent_covers(consent, record)
        ):
            return Decision(True, f"consent:{consent['id']}")
    return Decision(False, f"no active consent of {patient} covers this record for {purpose}")


def readable(
    scan: Scan,
    get: Get,
    reader: MemberRecord,
    patient: str,
    records: Iterable[Mapping[str, Any]],
    purpose: str,
    time_ms: int,
) -> list[Mapping[str, Any]]:
    """The patient's (not erased) records ``reader`` may read, in the order given."""
    grants = grants_to(scan, patient, reader)
    return [
        record
        for record in records
        if record.get("status") == "active"
        and decide(scan, get, reader, patient, record, purpose, time_ms, grants).granted
    ]
