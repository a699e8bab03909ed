"""Governance on a real node: registering members, revocation, admitting and removing
organisations by majority vote of organisation admins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carechain.api.client import build_transaction
from carechain.crypto.suite import DEFAULT
from carechain.errors import CertificateRevoked
from carechain.identity.certificates import (
    create_org_ca,
    fingerprint_of,
    issue_member_certificate,
)
from carechain.identity.roles import OrgType, Role
from carechain.identity.wallet import Credentials
from carechain.node.consortium import Consortium
from carechain.node.node import Node, TxStatus
from support import new_member

Member = Callable[[str], Credentials]
NOW = datetime.now(UTC).replace(microsecond=0)


def send(node: Node, creds: Credentials, method: str, args: dict[str, Any]) -> TxStatus:
    tx = build_transaction(creds, "demo", "governance", method, args)
    return node.submit_one(tx, wait_s=10)


def test_admin_registers_a_patient_who_can_then_sign(
    node: Node, consortium: Consortium, member: Member
) -> None:
    patient = new_member(consortium, "pumch", "patient-0c4e2b", Role.PATIENT)
    status = send(
        node,
        member("pumch/admin"),
        "register_member",
        {"certificate": patient.certificate_pem.decode()},
    )
    assert status.code == "ok", status.message
    record = node.member(patient.fingerprint)
    assert record is not None and record.role == "patient" and record.org_id == "pumch"
    anchor = build_transaction(patient, "demo", "notary", "anchor", {"digest": "ee" * 32})
    assert node.submit_one(anchor, wait_s=10).code == "ok"


def test_admin_cannot_register_another_organisations_certificate(
    node: Node, consortium: Consortium, member: Member
) -> None:
    foreign = new_member(consortium, "icbc", "teller-9", Role.STAFF)
    status = send(
        node,
        member("pumch/admin"),
        "register_member",
        {"certificate": foreign.certificate_pem.decode()},
    )
    assert status.code == "contract_error"
    assert "member certificate" in (status.message or "")
    assert node.member(foreign.fingerprint) is None


def test_registering_twice_and_garbage_are_refused(
    node: Node, consortium: Consortium, member: Member
) -> None:
    admin = member("pumch/admin")
    nurse = new_member(consortium, "pumch", "nurse-3", Role.STAFF)
    assert (
        send(node, admin, "register_member", {"certificate": nurse.certificate_pem.decode()}).code
        == "ok"
    )
    again = send(node, admin, "register_member", {"certificate": nurse.certificate_pem.decode()})
    assert again.code == "contract_error" and "already registered" in (again.message or "")
    garbage = send(node, admin, "register_member", {"certificate": "-----BEGIN nonsense"})
    assert garbage.code == "contract_error"
    missing = send(node, admin, "register_member", {})
    assert missing.code == "contract_error" and "'certificate' is missing" in (
        missing.message or ""
    )


def test_revocation_rules(node: Node, member: Member) -> None:
    doctor, other_admin = member("pumch/dr-wang"), member("icbc/admin")
    refused = send(
        node,
        other_admin,
        "revoke_certificate",
        {"fingerprint": doctor.fingerprint, "reason": "keyCompromise"},
    )
    assert refused.code == "forbidden"
    bad_reason = send(
        node,
        member("pumch/admin"),
        "revoke_certificate",
        {"fingerprint": doctor.fingerprint, "reason": "because"},
    )
    assert bad_reason.code == "contract_error" and "RFC 5280" in (bad_reason.message or "")
    # The holder may revoke their own certificate (a lost phone).
    own = send(
        node,
        doctor,
        "revoke_certificate",
        {"fingerprint": doctor.fingerprint, "reason": "keyCompromise"},
    )
    assert own.code == "ok"
    with pytest.raises(CertificateRevoked):
        send(
            node,
            doctor,
            "revoke_certificate",
            {"fingerprint": doctor.fingerprint, "reason": "keyCompromise"},
        )


def _new_org(tmp: Path, org_id: str) -> tuple[str, list[str], Credentials]:
    ca_key = DEFAULT.generate_private_key()
    ca_pem = create_org_ca(
        org_id,
        "Shanghai Ruijin Hospital",
        OrgType.HOSPITAL,
        ca_key,
        NOW - timedelta(days=1),
        NOW + timedelta(days=400),
    )
    admin_key = DEFAULT.generate_private_key()
    admin_pem = issue_member_certificate(
        ca_pem,
        ca_key,
        "admin",
        Role.ADMIN,
        DEFAULT.public_key(admin_key),
        NOW - timedelta(minutes=1),
        NOW + timedelta(days=365),
    )
    creds = Credentials(fingerprint_of(admin_pem), admin_pem, admin_key)
    return ca_pem.decode(), [admin_pem.decode()], creds


ORGS = [
    "pumch",
    "chaoyang-clinic",
    "yf-pharmacy",
    "sinopharm-mfg",
    "jd-logistics",
    "bj-nhsa",
    "icbc",
    "cr-sponsor",
    "nmpa",
]


def test_admitting_an_organisation_needs_a_majority_of_organisations(
    node: Node, member: Member, tmp_path: Path
) -> None:
    ca_pem, admins, new_admin = _new_org(tmp_path, "ruijin")
    proposed = send(
        node,
        member("pumch/admin"),
        "propose_admit_org",
        {"ca_certificate": ca_pem, "admin_certificates": admins},
    )
    assert proposed.code == "ok", proposed.message
    proposal = proposed.txid
    # A clinician cannot vote; an organisation cannot vote twice.
    assert (
        send(node, member("pumch/dr-wang"), "vote", {"proposal": proposal, "approve": True}).code
        == "forbidden"
    )
    twice = send(node, member("pumch/admin"), "vote", {"proposal": proposal, "approve": True})
    assert "already voted" in (twice.message or "")
    # 9 organisations: 5 yes votes are a majority; the 4th yes leaves it open.
    for org in ORGS[1:4]:
        assert (
            send(node, member(f"{org}/admin"), "vote", {"proposal": proposal, "approve": True}).code
            == "ok"
        )
    value, _ = node.state_value(f"governance/proposal/{proposal}")
    assert value["status"] == "open"
    assert node.member(new_admin.fingerprint) is None
    assert (
        send(
            node, member("jd-logistics/admin"), "vote", {"proposal": proposal, "approve": True}
        ).code
        == "ok"
    )
    value, _ = node.state_value(f"governance/proposal/{proposal}")
    assert value["status"] == "approved"
    org, _ = node.state_value("governance/org/ruijin")
    assert org["status"] == "active"
    # The new organisation's admin can act at once, and votes count ten organisations now.
    admitted = node.member(new_admin.fingerprint)
    assert admitted is not None and admitted.role == "admin"
    late = send(node, member("icbc/admin"), "vote", {"proposal": proposal, "approve": False})
    assert "already approved" in (late.message or "")


def test_removing_an_organisation_stops_its_members_signing(node: Node, member: Member) -> None:
    proposed = send(node, member("pumch/admin"), "propose_remove_org", {"org_id": "jd-logistics"})
    assert proposed.code == "ok"
    for org in ORGS[1:4]:
        send(node, member(f"{org}/admin"), "vote", {"proposal": proposed.txid, "approve": True})
    # A vote against does not block a majority that forms later: 5 of 9 say yes.
    send(node, member("bj-nhsa/admin"), "vote", {"proposal": proposed.txid, "approve": False})
    final = send(node, member("icbc/admin"), "vote", {"proposal": proposed.txid, "approve": True})
    assert final.code == "ok"
    state, _ = node.state_value("governance/org/jd-logistics")
    assert state["status"] == "removed"
    with pytest.raises(CertificateRevoked, match="removed from the consortium"):
        send(
            node, member("jd-logistics/admin"), "vote", {"proposal": proposed.txid, "approve": True}
        )


def test_a_majority_against_rejects_the_proposal(node: Node, member: Member) -> None:
    proposed = send(node, member("pumch/admin"), "propose_remove_org", {"org_id": "icbc"})
    for org in ORGS[2:7]:
        send(node, member(f"{org}/admin"), "vote", {"proposal": proposed.txid, "approve": False})
    value, _ = node.state_value(f"governance/proposal/{proposed.txid}")
    assert value["status"] == "rejected"
    state, _ = node.state_value("governance/org/icbc")
    assert state["status"] == "active"


def test_proposals_for_unknown_or_bad_subjects_are_refused(node: Node, member: Member) -> None:
    admin = member("pumch/admin")
    unknown = send(node, admin, "propose_remove_org", {"org_id": "no-such-org"})
    assert unknown.code == "contract_error" and "unknown organisation" in (unknown.message or "")
    not_ca = send(
        node,
        admin,
        "propose_admit_org",
        {"ca_certificate": admin.certificate_pem.decode(), "admin_certificates": []},
    )
    assert not_ca.code == "contract_error"
    vote = send(node, admin, "vote", {"proposal": "ab" * 32, "approve": True})
    assert vote.code == "contract_error" and "unknown proposal" in (vote.message or "")
    wrong_type = send(node, admin, "vote", {"proposal": "ab" * 32, "approve": "yes"})
    assert wrong_type.code == "contract_error"
