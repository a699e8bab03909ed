"""Governance: genesis, organisations, member certificates, revocation, votes.

State (namespace ``governance``)::

    config                  chain, crypto suite, orderer fingerprints, policies
    org/<org_id>            name, type, CA fingerprint and PEM, status, since
    member/<fingerprint>    see ``membership.MemberRecord``
    cert/<fingerprint>      the member's certificate PEM (for auditors)
    who/<org>/<member_id>/<fingerprint>
                            role: every certificate of a member id (renewals keep the id)
    proposal/<id>           admit or remove an organisation: votes, status

Admitting or removing an organisation needs the votes of a majority of the
active organisations, each cast by one of its admins (one vote per
organisation; the proposer's organisation votes yes by proposing). A proposal
is decided the moment a majority is reached either way, and lapses after the
policy's time to live, measured in block time.
"""

from __future__ import annotations

import re
from typing import Any

from carechain.contracts.membership import MemberRecord
from carechain.contracts.runtime import Args, Context, Contract, contract_method
from carechain.errors import CarechainError, ContractError, Forbidden
from carechain.identity.certificates import Member, Organisation, load_member, load_org_ca
from carechain.identity.roles import Role

DEFAULT_PROPOSAL_TTL_MS = 7 * 24 * 3600 * 1000
MAX_PEM = 8192
REVOCATION_REASONS = frozenset(
    # RFC 5280 section 5.3.1 CRLReason names.
    {
        "unspecified",
        "keyCompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "privilegeWithdrawn",
    }
)
_TXID = re.compile(r"[0-9a-f]{64}")


def _org_from_pem(pem: str) -> Organisation:
    try:
        return load_org_ca(pem.encode("utf-8"))
    except CarechainError as exc:
        raise ContractError(f"organisation CA certificate: {exc.message}") from exc


def _member_from_pem(pem: str, org: Organisation) -> Member:
    try:
        return load_member(pem.encode("utf-8"), org)
    except CarechainError as exc:
        raise ContractError(f"member certificate: {exc.message}") from exc


def _org_state(org: Organisation, pem: str, height: int) -> dict[str, Any]:
    return {
        "org_id": org.org_id,
        "name": org.name,
        "type": str(org.org_type),
        "ca_fingerprint": org.ca_fingerprint,
        "ca_cert": pem,
        "status": "active",
        "since": height,
    }


def _member_state(member: Member) -> dict[str, Any]:
    record = MemberRecord(
        fingerprint=member.fingerprint,
        member_id=member.member_id,
        org_id=member.org_id,
        org_type=member.org_type,
        role=member.role,
        public_key=member.public_key,
        not_before_ms=member.not_before_ms,
        not_after_ms=member.not_after_ms,
        revoked=False,
    )
    return record.to_json()


def _put_member(ctx: Context, member: Member, pem: str) -> None:
    ctx.put(f"member/{member.fingerprint}", _member_state(member))
    ctx.put(f"cert/{member.fingerprint}", pem)
    ctx.put(f"who/{member.org_id}/{member.member_id}/{member.fingerprint}", str(member.role))


class Governance(Contract):
    name = "governance"

    # -- genesis -----------------------------------------------------------------------

    def genesis(self, ctx: Context, args: Args) -> None:
        """Create the consortium from the genesis file (block 0 only; see the executor)."""
        chain = args.text("chain")
        if chain != ctx.block.chain:
            raise ContractError(f"genesis names chain {chain!r}, the block {ctx.block.chain!r}")
        suite = args.text("suite")
        orgs: dict[str, Organisation] = {}
        for pem in args.items("orgs"):
            if not isinstance(pem, str):
                raise ContractError("genesis orgs must be CA certificate PEM strings")
            org = _org_from_pem(pem)
            if org.org_id in orgs:
                raise ContractError(f"organisation {org.org_id} appears twice")
            orgs[org.org_id] = org
            ctx.put(f"org/{org.org_id}", _org_state(org, pem, 0))
        if not orgs:
            raise ContractError("genesis needs at least one organisation")
        orderers: list[str] = []
        for pem in args.items("members", max_items=10_000):
            member = self._admit_certificate(ctx, pem, orgs)
            if member.role is Role.ORDERER:
                orderers.append(member.fingerprint)
        if not orderers:
            raise ContractError("genesis needs at least one member with the orderer role")
        policies = args.mapping("policies")
        ttl = policies.get("proposal_ttl_ms", DEFAULT_PROPOSAL_TTL_MS)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise ContractError("policies.proposal_ttl_ms must be a positive integer")
        ctx.put(
            "config",
            {
                "chain": chain,
                "suite": suite,
                "orderers": sorted(orderers),
                "policies": {"proposal_ttl_ms": ttl},
            },
        )

    # -- members -----------------------------------------------------------------------

    def _admit_certificate(self, ctx: Context, pem: Any, orgs: dict[str, Organisation]) -> Member:
        if not isinstance(pem, str) or len(pem) > MAX_PEM:
            raise ContractError("a certificate must be a PEM string of at most 8 KiB")
        # Whichever organisation's CA issued it (each check verifies the signature).
        member: Member | None = None
        for candidate in orgs.values():
            try:
                member = load_member(pem.encode("utf-8"), candidate)
                break
            except CarechainError:
                continue
        if member is None:
            raise ContractError("certificate is not issued by any organisation's CA")
        if ctx.get(f"member/{member.fingerprint}") is not None:
            raise ContractError(f"certificate {member.fingerprint[:12]}... is already registered")
        _put_member(ctx, member, pem)
        return member

    def _org(self, ctx: Context, org_id: str) -> tuple[Organisation, dict[str, Any]]:
        state = ctx.get(f"org/{org_id}")
        if state is None:
            raise ContractError(f"unknown organisation {org_id!r}")
        return _org_from_pem(state["ca_cert"]), state

    @contract_method(roles={Role.ADMIN})
    def register_member(self, ctx: Context, args: Args) -> None:
        """An organisation's admin registers a certificate its CA issued (patients too)."""
        pem = args.text("certificate", max_length=MAX_PEM)
        org, _ = self._org(ctx, ctx.caller.org_id)
        member = _member_from_pem(pem, org)
        if not member.is_valid_at(ctx.time_ms):
            raise ContractError("certificate is not valid at block time")
        if ctx.get(f"member/{member.fingerprint}") is not None:
            raise ContractError(f"certificate {member.fingerprint[:12]}... is already registered")
        _put_member(ctx, member, pem)

    @contract_method()
    def revoke_certificate(self, ctx: Context, args: Args) -> None:
        """Revoke a certificate: its organisation's admin, or the holder itself."""
        fingerprint = args.text("fingerprint", pattern=_TXID)
        reason = args.text("reason", max_length=40)
        if reason not in REVOCATION_REASONS:
            allowed = ", ".join(sorted(REVOCATION_REASONS))
            raise ContractError(f"reason {reason!r} is not an RFC 5280 reason ({allowed})")
        record = ctx.get(f"member/{fingerprint}")
        if record is None:
            raise ContractError(f"unknown certificate {fingerprint[:12]}...")
        caller = ctx.caller
        own_admin = caller.role is Role.ADMIN and caller.org_id == record["org"]
        if not own_admin and caller.fingerprint != fingerprint:
            raise Forbidden("only the certificate's holder or its organisation's admin may revoke")
        if record["revoked"]:
            raise ContractError(f"certificate {fingerprint[:12]}... is already revoked")
        record = dict(record, revoked=True)
        ctx.put(f"member/{fingerprint}", record)
        ctx.put(
            f"revocation/{fingerprint}",
            {
                "by": caller.fingerprint,
                "reason": reason,
                "height": ctx.block.height,
                "time": ctx.time_ms,
            },
        )

    # -- organisations by vote ----------------------------------------------------------

    def _active_orgs(self, ctx: Context) -> list[str]:
        return [v["org_id"] for _, v in ctx.scan("org/") if v["status"] == "active"]

    def _ttl(self, ctx: Context) -> int:
        config = ctx.get("config") or {}
        return int(config.get("policies", {}).get("proposal_ttl_ms", DEFAULT_PROPOSAL_TTL_MS))

    def _open_proposal(self, ctx: Context, action: str, subject: dict[str, Any]) -> None:
        proposal = {
            "id": ctx.txid,
            "action": action,
            "subject": subject,
            "proposer": ctx.caller.fingerprint,
            "created": ctx.time_ms,
            "expires": ctx.time_ms + self._ttl(ctx),
            "votes": {},
            "status": "open",
        }
        self._record_vote(ctx, proposal, True)

    @contract_method(roles={Role.ADMIN})
    def propose_admit_org(self, ctx: Context, args: Args) -> None:
        """Propose admitting an organisation: its CA certificate and its admins' certificates."""
        ca_pem = args.text("ca_certificate", max_length=MAX_PEM)
        org = _org_from_pem(ca_pem)
        existing = ctx.get(f"org/{org.org_id}")
        if existing is not None and existing["status"] == "active":
            raise ContractError(f"organisation {org.org_id} is already a member")
        admins = args.items("admin_certificates", max_items=20)
        if not admins:
            raise ContractError("an admitted organisation needs at least one admin certificate")
        for pem in admins:
            if not isinstance(pem, str):
                raise ContractError("admin certificates must be PEM strings")
            member = _member_from_pem(pem, org)
            if member.role is not Role.ADMIN:
                raise ContractError(f"certificate of {member.member_id} has role {member.role}")
        self._open_proposal(
            ctx, "admit_org", {"org_id": org.org_id, "ca_certificate": ca_pem, "admins": admins}
        )

    @contract_method(roles={Role.ADMIN})
    def propose_remove_org(self, ctx: Context, args: Args) -> None:
        org_id = args.text("org_id", max_length=40)
        _, state = self._org(ctx, org_id)
        if state["status"] != "active":
            raise ContractError(f"organisation {org_id} is not an active member")
        if len(self._active_orgs(ctx)) <= 1:
            raise ContractError("the last organisation cannot be removed")
        self._open_proposal(ctx, "remove_org", {"org_id": org_id})

    @contract_method(roles={Role.ADMIN})
    def vote(self, ctx: Context, args: Args) -> None:
        """An organisation admin votes on an open proposal (one vote per organisation)."""
        proposal_id = args.text("proposal", pattern=_TXID)
        approve = args.boolean("approve")
        proposal = ctx.get(f"proposal/{proposal_id}")
        if proposal is None:
            raise ContractError(f"unknown proposal {proposal_id[:12]}...")
        if proposal["status"] != "open":
            raise ContractError(f"proposal {proposal_id[:12]}... is already {proposal['status']}")
        if ctx.time_ms > proposal["expires"]:
            raise ContractError(f"proposal {proposal_id[:12]}... expired")
        if ctx.caller.org_id in proposal["votes"]:
            raise ContractError(f"organisation {ctx.caller.org_id} has already voted")
        self._record_vote(ctx, dict(proposal, votes=dict(proposal["votes"])), approve)

    def _record_vote(self, ctx: Context, proposal: dict[str, Any], approve: bool) -> None:
        caller = ctx.caller
        active = self._active_orgs(ctx)
        if caller.org_id not in active:
            raise Forbidden(f"organisation {caller.org_id} is not an active member")
        proposal["votes"][caller.org_id] = {
            "approve": approve,
            "by": caller.fingerprint,
            "height": ctx.block.height,
        }
        yes = sum(1 for org in active if proposal["votes"].get(org, {}).get("approve") is True)
        no = sum(1 for org in active if proposal["votes"].get(org, {}).get("approve") is False)
        if 2 * yes > len(active):
            self._enact(ctx, proposal)
            proposal["status"] = "approved"
        elif 2 * no >= len(active):
            proposal["status"] = "rejected"
        proposal["decided"] = ctx.block.height if proposal["status"] != "open" else None
        ctx.put(f"proposal/{proposal['id']}", proposal)

    def _enact(self, ctx: Context, proposal: dict[str, Any]) -> None:
        subject = proposal["subject"]
        if proposal["action"] == "admit_org":
            org = _org_from_pem(subject["ca_certificate"])
            existing = ctx.get(f"org/{org.org_id}")
            if existing is not None and existing["status"] == "active":
                raise ContractError(f"organisation {org.org_id} is already a member")
            ctx.put(
                f"org/{org.org_id}", _org_state(org, subject["ca_certificate"], ctx.block.height)
            )
            for pem in subject["admins"]:
                member = _member_from_pem(pem, org)
                if ctx.get(f"member/{member.fingerprint}") is None:
                    _put_member(ctx, member, pem)
        else:
            _, state = self._org(ctx, subject["org_id"])
            if len(self._active_orgs(ctx)) <= 1:
                raise ContractError("the last organisation cannot be removed")
            ctx.put(
                f"org/{subject['org_id']}", dict(state, status="removed", removed=ctx.block.height)
            )
