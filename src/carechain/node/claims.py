"""What a node tells about claims: a claim and its ClaimResponse, lists, the review queue.

Everything here reads committed state; changes go through the claims contract.
A claim, its status and its ClaimResponse are for the patient, the provider
and the insurer only (and regulators and auditors, who audit the whole
chain); a coverage for the patient and the insurer; policies are published
to every member, since providers check what a policy covers before treating.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from carechain.contracts.adjudication import FLAG_WORDS, RULE_WORDS
from carechain.contracts.consent import patient_id_of
from carechain.contracts.membership import MemberRecord
from carechain.errors import Forbidden, InvalidInput, NotFound
from carechain.identity.roles import OrgType, Role
from carechain.node.payments import overseer
from carechain.standards.fhir.claim import claim_response
from carechain.standards.iso4217 import format_amount

if TYPE_CHECKING:
    from carechain.node.node import Node

PREFIX = "claims/"
MAX_PAGE = 1000
_CURSOR = re.compile(r"[0-9]{12}/clm-[0-9a-f]{24}")


DESK_ROLES = {Role.ADMIN, Role.STAFF, Role.AUDITOR, Role.PHARMACIST}
"""Who reads an organisation's claims: its billing desk (admins and staff; at a pharmacy
its pharmacists, who settle at the counter) and its auditors, not its clinicians or
patients."""


def sees_org(who: MemberRecord, org: str) -> bool:
    """``who`` works at ``org``'s billing desk."""
    return who.org_id == org and who.role in DESK_ROLES


class ClaimService:
    def __init__(self, node: Node) -> None:
        self.node = node

    def _get(self, key: str) -> Any | None:
        raw = self.node.state.get(PREFIX + key)
        return None if raw is None else orjson.loads(raw)

    # -- one claim ------------------------------------------------------------------------

    def claim(self, claim_id: str, viewer: MemberRecord) -> dict[str, Any]:
        """The claim with its adjudication and status history, for its parties."""
        doc = self._get(f"claim/{claim_id}")
        if doc is None:
            raise NotFound(f"no claim {claim_id}")
        if not (
            (patient_id_of(viewer) == doc["patient"] and viewer.role is Role.PATIENT)
            or sees_org(viewer, doc["provider"])
            or sees_org(viewer, doc["insurer"])
            or overseer(viewer)
        ):
            raise Forbidden(
                f"claim {claim_id} is for its patient, its provider and its insurer only"
            )
        return self._shown(doc)

    def _shown(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The claim with each rule and flag in words, and amounts as text."""
        ccy = doc["currency"]
        adjudication = dict(doc["adjudication"])
        adjudication["lines"] = [dict(r, says=RULE_WORDS[r["rule"]]) for r in adjudication["lines"]]
        adjudication["flags"] = [dict(f, says=FLAG_WORDS[f["flag"]]) for f in adjudication["flags"]]
        return {
            **doc,
            "adjudication": adjudication,
            "shown": {
                "total": format_amount(doc["total"], ccy),
                "insurer": format_amount(adjudication["insurer"], ccy),
                "patient": format_amount(adjudication["patient"], ccy),
            },
        }

    def claim_response(self, claim_id: str, viewer: MemberRecord) -> dict[str, Any]:
        """The FHIR R4 ClaimResponse of a claim, for the same readers as the claim."""
        doc = self.claim(claim_id, viewer)
        created = datetime.fromtimestamp(doc["submitted"] / 1000, UTC).date().isoformat()
        return claim_response(doc, created, RULE_WORDS, FLAG_WORDS)

    # -- lists ----------------------------------------------------------------------------

    def patient_claims(self, patient: str, viewer: MemberRecord) -> list[dict[str, Any]]:
        """A patient's claims, oldest first: for the patient, and overseers."""
        if not (
            (viewer.role is Role.PATIENT and patient_id_of(viewer) == patient) or overseer(viewer)
        ):
            raise Forbidden("only the patient (or a regulator or auditor) lists their claims")
        out = []
        for key, _ in self.node.state.scan(f"{PREFIX}patient/{patient}/"):
            doc = self._get(f"claim/{key.rsplit('/', 1)[1]}")
            if doc is not None:
                out.append(self._summary(doc))
        return sorted(out, key=lambda c: (c["submitted"], c["id"]))

    def provider_claims(
        self, provider: str, viewer: MemberRecord, limit: int = 100, after: str = ""
    ) -> dict[str, Any]:
        """A provider's claims, newest first, with their flags, for its billing desk and
        overseers; ``next`` is the ``after`` of the next page, or None on the last."""
        if not (sees_org(viewer, provider) or overseer(viewer)):
            raise Forbidden(f"{provider}'s claims are for its billing desk (and overseers)")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1 to {MAX_PAGE}")
        if after and not _CURSOR.fullmatch(after):
            raise InvalidInput(f"after {after[:40]!r} is not a cursor this list gave")
        prefix = f"{PREFIX}provider/{provider}/"
        rows = self.node.state.scan(prefix, limit + 1, prefix + after if after else "")
        out = []
        for key, _ in rows[:limit]:
            doc = self._get(f"claim/{key.rsplit('/', 1)[1]}")
            if doc is not None:
                flags = [dict(f, says=FLAG_WORDS[f["flag"]]) for f in doc["adjudication"]["flags"]]
                out.append(dict(self._summary(doc), flags=flags))
        more = len(rows) > limit
        return {"claims": out, "next": rows[limit - 1][0][len(prefix) :] if more else None}

    def queue(self, insurer: str, viewer: MemberRecord, limit: int = 100) -> list[dict[str, Any]]:
        """An insurer's flagged claims awaiting review, with their reasons."""
        if not (sees_org(viewer, insurer) or overseer(viewer)):
            raise Forbidden(f"the review queue is {insurer}'s")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1 to {MAX_PAGE}")
        out = []
        for key, _ in self.node.state.scan(f"{PREFIX}queue/{insurer}/", limit):
            doc = self._get(f"claim/{key.rsplit('/', 1)[1]}")
            if doc is not None:
                flags = [dict(f, says=FLAG_WORDS[f["flag"]]) for f in doc["adjudication"]["flags"]]
                out.append(dict(self._summary(doc), flags=flags))
        return out

    def _summary(self, doc: dict[str, Any]) -> dict[str, Any]:
        ccy = doc["currency"]
        return {
            "id": doc["id"],
            "status": doc["status"],
            "patient": doc["patient"],
            "provider": doc["provider"],
            "insurer": doc["insurer"],
            "submitted": doc["submitted"],
            "total": format_amount(doc["total"], ccy),
            "insurer_share": format_amount(doc["adjudication"]["insurer"], ccy),
            "patient_share": format_amount(doc["adjudication"]["patient"], ccy),
            "copay": (doc.get("copay") or {}).get("status", "none"),
        }

    # -- policies and coverages -----------------------------------------------------------

    def policy(self, insurer: str, policy: str) -> list[dict[str, Any]]:
        """Every version of a policy, oldest first (each with the day it applies from)."""
        prefix = f"{PREFIX}policy/{insurer}/{policy}/"
        versions = [
            {"effective_from": key[len(prefix) :], **orjson.loads(raw)}
            for key, raw in self.node.state.scan(prefix)
        ]
        if not versions:
            raise NotFound(f"{insurer} has published no policy {policy}")
        return versions

    def coverage(self, coverage_id: str, viewer: MemberRecord) -> dict[str, Any]:
        doc = self._get(f"coverage/{coverage_id}")
        if doc is None:
            raise NotFound(f"no coverage {coverage_id}")
        if not (
            (viewer.role is Role.PATIENT and patient_id_of(viewer) == doc["patient"])
            or sees_org(viewer, doc["insurer"])
            or (
                viewer.org_type in (OrgType.HOSPITAL, OrgType.CLINIC, OrgType.PHARMACY)
                and viewer.role is not Role.PATIENT
            )
            or overseer(viewer)
        ):
            raise Forbidden(f"coverage {coverage_id} is for its patient, insurer and providers")
        return dict(doc)
