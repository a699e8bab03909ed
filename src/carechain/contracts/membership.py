"""Member and organisation records as the governance contract keeps them in state.

Keys (under the ``governance`` contract's namespace)::

    governance/org/<org_id>          organisation: name, type, CA fingerprint and PEM, status
    governance/member/<fingerprint>  member: id, organisation, role, public key, validity, revoked

Only certificate-derived, non-personal facts are stored: a patient is known by a
pseudonymous member id, never by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from carechain.identity.roles import OrgType, Role

ORG_PREFIX = "governance/org/"
MEMBER_PREFIX = "governance/member/"


class StateReader(Protocol):
    def get(self, key: str) -> Any | None: ...


@dataclass(frozen=True)
class MemberRecord:
    fingerprint: str
    member_id: str
    org_id: str
    org_type: OrgType
    role: Role
    public_key: bytes
    not_before_ms: int
    not_after_ms: int
    revoked: bool
    org_active: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "member_id": self.member_id,
            "org": self.org_id,
            "org_type": str(self.org_type),
            "role": str(self.role),
            "public_key": self.public_key.hex(),
            "not_before": self.not_before_ms,
            "not_after": self.not_after_ms,
            "revoked": self.revoked,
        }

    def refusal_at(self, time_ms: int) -> tuple[str, str] | None:
        """Why this member cannot sign at ``time_ms``: (error code, message), or None."""
        if self.revoked:
            return "certificate_revoked", f"certificate {self.fingerprint[:12]}... is revoked"
        if not self.org_active:
            return (
                "certificate_revoked",
                f"organisation {self.org_id} has been removed from the consortium",
            )
        if time_ms < self.not_before_ms:
            return "certificate_expired", f"certificate {self.fingerprint[:12]}... is not yet valid"
        if time_ms > self.not_after_ms:
            return "certificate_expired", f"certificate {self.fingerprint[:12]}... has expired"
        return None


def member_from_json(doc: dict[str, Any], org_active: bool = True) -> MemberRecord:
    return MemberRecord(
        fingerprint=doc["fingerprint"],
        member_id=doc["member_id"],
        org_id=doc["org"],
        org_type=OrgType(doc["org_type"]),
        role=Role(doc["role"]),
        public_key=bytes.fromhex(doc["public_key"]),
        not_before_ms=int(doc["not_before"]),
        not_after_ms=int(doc["not_after"]),
        revoked=bool(doc["revoked"]),
        org_active=org_active,
    )


def read_member(state: StateReader, fingerprint: str) -> MemberRecord | None:
    doc = state.get(MEMBER_PREFIX + fingerprint)
    if doc is None:
        return None
    org = state.get(ORG_PREFIX + doc["org"])
    return member_from_json(doc, org_active=org is not None and org.get("status") == "active")
