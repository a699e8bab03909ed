"""The records contract on a real node: adding records, consent, access decisions,
break-glass and erasure, with every bad input refused and no state changed.

Transactions go through ``Node.submit_one`` and commit in real blocks; the
access evidence is a request really signed with the reader's key.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from carechain.api.client import build_transaction
from carechain.crypto.suite import DEFAULT
from carechain.identity.certificates import fingerprint_of, issue_member_certificate
from carechain.identity.keys import read_private_key
from carechain.identity.requests import request_statement
from carechain.identity.roles import Role
from carechain.identity.wallet import Credentials
from carechain.ledger.transaction import Transaction, sign_transaction
from carechain.node.consortium import Consortium
from carechain.node.node import Node, TxStatus

Member = Callable[[str], Credentials]
PATIENT = "pumch:patient-7f3a9c"
DAY_MS = 24 * 3600 * 1000


def rid(name: str) -> str:
    """A well-formed record id (``rec-`` and 26 base32 characters) named after ``name``."""
    digest = hashlib.sha256(name.encode()).digest()[:16]
    return "rec-" + base64.b32encode(digest).decode().rstrip("=").lower()


def cid(name: str) -> str:
    """A well-formed consent id (``con-`` and 24 hexadecimal digits) named after ``name``."""
    return "con-" + hashlib.sha256(name.encode()).hexdigest()[:24]


def send(node: Node, creds: Credentials, method: str, args: dict[str, Any]) -> TxStatus:
    return node.submit_one(build_transaction(creds, "demo", "records", method, args), wait_s=10)


def state(node: Node, key: str) -> Any:
    raw = node.state.get("records/" + key)
    return None if raw is None else orjson.loads(raw)


def contract_state(node: Node) -> list[tuple[str, bytes]]:
    """Everything the contract holds (a rejected transaction still leaves its txid)."""
    return node.state.scan("records/")


def record_args(record_id: str, patient: str = PATIENT, **extra: Any) -> dict[str, Any]:
    item = {
        "record": record_id,
        "patient": patient,
        "type": "Observation",
        "category": "vital-signs",
        "fingerprint": hashlib.sha256(record_id.encode()).hexdigest(),
    }
    item.update(extra)
    return {"records": [item]}


def signed_request(
    reader: Credentials, path: str, *, time_ms: int | None = None, nonce: str | None = None
) -> dict[str, Any]:
    """What the API keeps of a reader's signed GET: the contract's evidence."""
    time_ms = int(time.time() * 1000) if time_ms is None else time_ms
    nonce = nonce or secrets.token_urlsafe(16)
    statement = request_statement("GET", path, b"", time_ms, nonce, reader.fingerprint)
    return {
        "method": "GET",
        "path": path,
        "body": hashlib.sha256(b"").hexdigest(),
        "time": time_ms,
        "nonce": nonce,
        "signature": base64.b64encode(DEFAULT.sign(reader.private_key, statement)).decode(),
    }


def access(
    node: Node,
    reader: Credentials,
    records: list[str],
    purpose: str = "treatment",
    *,
    patient: str = PATIENT,
    reason: str = "",
    request: dict[str, Any] | None = None,
) -> TxStatus:
    """The custodian's node records an access (as ``RecordService`` does)."""
    if request is None:
        path = (
            f"/v1/records/{records[0]}" if len(records) == 1 else f"/v1/patients/{patient}/export"
        )
        query = f"purpose={purpose}" + (f"&reason={reason}" if reason else "")
        request = signed_request(reader, f"{path}?{query}")
    args: dict[str, Any] = {
        "patient": patient,
        "records": records,
        "purpose": purpose,
        "reader": reader.fingerprint,
        "request": request,
    }
    if reason:
        args["reason"] = reason
    body = Transaction(
        chain="demo",
        contract="records",
        method="access",
        args=args,
        signer=node.peer_fp,
        nonce=secrets.token_hex(12),
        timestamp_ms=int(time.time() * 1000),
    )
    tx = sign_transaction(body, {node.peer_fp: node.peer_key}, node.suite)
    return node.submit_one(tx, wait_s=10)


def event_of(node: Node, status: TxStatus, patient: str = PATIENT) -> dict[str, Any]:
    found = state(node, f"log/{patient}/{status.height:012d}/{status.txid}")
    assert found is not None
    assert state(node, f"audit/{status.height:012d}/{status.txid}") == found
    return dict(found)


def new_patient(node: Node, consortium: Consortium, member: Member, member_id: str) -> Credentials:
    """A second patient of pumch, with a key of their own, registered by pumch's admin."""
    base = consortium.directory / "orgs" / "pumch"
    key = DEFAULT.generate_private_key()
    now = datetime.now(UTC)
    pem = issue_member_certificate(
        (base / "ca.pem").read_bytes(),
        read_private_key(base / "ca.key"),
        member_id,
        Role.PATIENT,
        DEFAULT.public_key(key),
        now - timedelta(minutes=1),
        now + timedelta(days=30),
    )
    tx = build_transaction(
        member("pumch/admin"),
        "demo",
        "governance",
        "register_member",
        {"certificate": pem.decode()},
    )
    assert node.submit_one(tx, wait_s=10).code == "ok"
    return Credentials(fingerprint_of(pem), pem, key)


@pytest.fixture
def added(node: Node, member: Member) -> list[str]:
    """Two records of the patient: an Observation at pumch, a Condition at the clinic."""
    ok = send(node, member("pumch/dr-wang"), "add", record_args(rid("rec-pumch-0001")))
    assert ok.code == "ok", ok.message
    ok = send(
        node,
        member("chaoyang-clinic/dr-zhao"),
        "add",
        record_args(rid("rec-clinic-0001"), type="Condition", category="encounter-diagnosis"),
    )
    assert ok.code == "ok", ok.message
    return [rid("rec-pumch-0001"), rid("rec-clinic-0001")]


# -- adding -------------------------------------------------------------------------------


def test_a_clinician_adds_a_record_of_a_known_patient(node: Node, member: Member) -> None:
    doctor = member("pumch/dr-wang")
    status = send(node, doctor, "add", record_args(rid("rec-aaaa-0001")))
    assert status.code == "ok", status.message
    record = state(node, f"record/{rid('rec-aaaa-0001')}")
    assert record["patient"] == PATIENT and record["custodian"] == "pumch"
    assert record["author"] == doctor.fingerprint and record["status"] == "active"
    assert record["height"] == status.height and record["txid"] == status.txid
    assert state(node, f"patient/{PATIENT}/record/{rid('rec-aaaa-0001')}") == record


@pytest.mark.parametrize(
    ("who", "args", "code", "message"),
    [
        ("pumch/dr-wang", record_args(rid("rec-bbbb-0001"), "pumch:nobody"), "contract_error",
         "unknown patient pumch:nobody"),
        ("pumch/dr-wang", record_args(rid("rec-bbbb-0001"), "pumch:dr-wang"), "contract_error",
         "unknown patient pumch:dr-wang"),
        ("pumch/dr-wang", record_args(rid("rec-bbbb-0001"), "no colon"), "contract_error",
         "patient"),
        ("pumch/dr-wang", record_args(rid("rec-bbbb-0001"), type="Patient"), "contract_error",
         "'Patient' is not a record type"),
        ("pumch/dr-wang", record_args("short"), "contract_error", "record"),
        ("pumch/dr-wang", record_args(rid("rec-bbbb-0001"), fingerprint="zz"), "contract_error",
         "fingerprint"),
        ("pumch/dr-wang", record_args(rid("rec-bbbb-0001"), note="Fever"), "contract_error",
         "unknown field(s): note"),
        ("pumch/dr-wang", {"records": []}, "contract_error", "'records' is empty"),
        ("pumch/dr-wang", {"records": "x"}, "contract_error", "records"),
        ("yf-pharmacy/ph-chen", record_args(rid("rec-bbbb-0001")), "forbidden", ""),
        ("pumch/patient-7f3a9c", record_args(rid("rec-bbbb-0001")), "forbidden", ""),
        ("pumch/admin", record_args(rid("rec-bbbb-0001")), "forbidden", ""),
    ],
)  # fmt: skip
def test_bad_additions_are_refused_and_change_nothing(
    node: Node, member: Member, who: str, args: dict[str, Any], code: str, message: str
) -> None:
    before = contract_state(node)
    status = send(node, member(who), "add", args)
    assert status.code == code, status.message
    assert message in (status.message or "")
    assert state(node, f"record/{rid('rec-bbbb-0001')}") is None
    assert contract_state(node) == before


def test_a_record_id_is_used_once(node: Node, member: Member, added: list[str]) -> None:
    again = send(node, member("pumch/dr-wang"), "add", record_args(added[0]))
    assert again.code == "contract_error" and "already exists" in (again.message or "")
    twice = {"records": record_args(rid("rec-cccc-0001"))["records"] * 2}
    status = send(node, member("pumch/dr-wang"), "add", twice)
    assert status.code == "contract_error" and "already exists" in (status.message or "")
    assert state(node, f"record/{rid('rec-cccc-0001')}") is None


# -- consent ------------------------------------------------------------------------------


def grant(node: Node, patient: Credentials, consent: str, grantee: str, **extra: Any) -> TxStatus:
    args: dict[str, Any] = {
        "consent": consent,
        "grantee": grantee,
        "purposes": ["treatment"],
        "end": int(time.time() * 1000) + 30 * DAY_MS,
    }
    args.update(extra)
    return send(node, patient, "grant_consent", args)


def test_consent_lets_another_hospital_read_until_revoked(
    node: Node, member: Member, added: list[str]
) -> None:
    patient, zhao = member("pumch/patient-7f3a9c"), member("chaoyang-clinic/dr-zhao")
    # dr-zhao's clinic holds the Condition; pumch's Observation needs consent.
    refused = event_of(node, access(node, zhao, [added[0]]))
    assert refused["outcome"] == "refused"
    assert "no active consent" in refused["records"][0]["basis"]
    assert grant(node, patient, cid("con-zhao-0001"), "chaoyang-clinic").code == "ok"
    granted = event_of(node, access(node, zhao, [added[0]]))
    assert granted["outcome"] == "granted"
    assert granted["records"][0]["basis"] == f"consent:{cid('con-zhao-0001')}"
    assert granted["reader"] == zhao.fingerprint and granted["reader_org"] == "chaoyang-clinic"
    assert granted["served_by"] == "pumch" and granted["break_glass"] is False
    revoked = send(node, patient, "revoke_consent", {"consent": cid("con-zhao-0001")})
    assert revoked.code == "ok", revoked.message
    after = event_of(node, access(node, zhao, [added[0]]))
    assert after["outcome"] == "refused"


def test_consent_scope_purpose_and_member_grantee(
    node: Node, member: Member, added: list[str]
) -> None:
    patient, zhao = member("pumch/patient-7f3a9c"), member("chaoyang-clinic/dr-zhao")
    # Only Conditions, only for research, only dr-zhao's certificate.
    status = grant(
        node,
        patient,
        cid("con-zhao-0002"),
        zhao.fingerprint,
        purposes=["research"],
        types=["Condition"],
    )
    assert status.code == "ok", status.message
    assert event_of(node, access(node, zhao, [added[0]], "research"))["outcome"] == "refused"
    assert event_of(node, access(node, zhao, [added[0]], "treatment"))["outcome"] == "refused"
    pharmacist = member("yf-pharmacy/ph-chen")
    assert event_of(node, access(node, pharmacist, [added[0]], "research"))["outcome"] == "refused"
    ok = grant(node, patient, cid("con-zhao-0003"), zhao.fingerprint, records=[added[0]])
    assert ok.code == "ok", ok.message
    assert event_of(node, access(node, zhao, [added[0]]))["outcome"] == "granted"


def test_a_consent_that_starts_later_is_not_yet_in_force(
    node: Node, member: Member, added: list[str]
) -> None:
    patient, zhao = member("pumch/patient-7f3a9c"), member("chaoyang-clinic/dr-zhao")
    start = int(time.time() * 1000) + DAY_MS
    assert grant(node, patient, cid("con-late-0001"), "chaoyang-clinic", start=start).code == "ok"
    assert event_of(node, access(node, zhao, [added[0]]))["outcome"] == "refused"
    consent = state(node, f"grant/pumch:patient-7f3a9c/chaoyang-clinic/{cid('con-late-0001')}")
    assert consent["start"] == start


@pytest.mark.parametrize(
    ("grantee", "extra", "message"),
    [
        ("no-such-org", {}, "unknown grantee: no active organisation 'no-such-org'"),
        ("ab" * 32, {}, "unknown grantee: no certificate abababababab"),
        ("Not An Id!", {}, "neither an organisation id nor a certificate fingerprint"),
        ("chaoyang-clinic", {"end": 1_000}, "consent period"),
        ("chaoyang-clinic", {"start": 5_000_000_000_000, "end": 4_000_000_000_000},
         "ends before it starts"),
        ("chaoyang-clinic", {"end": int(time.time() * 1000) + 11 * 365 * DAY_MS},
         "longer than ten years"),
        ("chaoyang-clinic", {"purposes": []}, "needs at least one of treatment"),
        ("chaoyang-clinic", {"purposes": ["marketing"]}, "'marketing' is not one of"),
        ("chaoyang-clinic", {"types": ["Patient"]}, "'Patient' is not one of"),
        ("chaoyang-clinic", {"records": [rid("rec-nope-0001")]},
         f"{rid('rec-nope-0001')} is not one of"),
        ("chaoyang-clinic", {"categories": ["has space"]}, "is not a category code"),
    ],
)  # fmt: skip
def test_bad_consents_are_refused_and_change_nothing(
    node: Node, member: Member, grantee: str, extra: dict[str, Any], message: str
) -> None:
    before = contract_state(node)
    status = grant(node, member("pumch/patient-7f3a9c"), cid("con-bad-00001"), grantee, **extra)
    assert status.code == "contract_error", status.message
    assert message in (status.message or "")
    assert contract_state(node) == before


def test_overlapping_and_self_consents_are_refused(node: Node, member: Member) -> None:
    patient = member("pumch/patient-7f3a9c")
    assert grant(node, patient, cid("con-first-001"), "chaoyang-clinic").code == "ok"
    before = contract_state(node)
    overlap = grant(node, patient, cid("con-second-01"), "chaoyang-clinic")
    assert overlap.code == "contract_error"
    assert f"overlaps consent {cid('con-first-001')}" in (overlap.message or "")
    duplicate = grant(node, patient, cid("con-first-001"), "yf-pharmacy")
    assert "already exists" in (duplicate.message or "")
    to_self = grant(node, patient, cid("con-self-0001"), patient.fingerprint)
    assert "to themselves" in (to_self.message or "")
    assert contract_state(node) == before
    # Another purpose for the same grantee does not overlap.
    assert grant(
        node, patient, cid("con-third-01"), "chaoyang-clinic", purposes=["payment"]
    ).code == ("ok")


def test_only_patients_grant_and_only_their_own_consents_are_revoked(
    node: Node, consortium: Consortium, member: Member
) -> None:
    patient = member("pumch/patient-7f3a9c")
    doctor = grant(node, member("pumch/dr-wang"), cid("con-doc-00001"), "chaoyang-clinic")
    assert doctor.code == "forbidden"
    assert grant(node, patient, cid("con-mine-0001"), "chaoyang-clinic").code == "ok"
    other = new_patient(node, consortium, member, "patient-1b2c3d")
    before = contract_state(node)
    stolen = send(node, other, "revoke_consent", {"consent": cid("con-mine-0001")})
    assert stolen.code == "forbidden"
    assert "granted by another patient" in (stolen.message or "")
    unknown = send(node, patient, "revoke_consent", {"consent": cid("con-none-0001")})
    assert f"unknown consent {cid('con-none-0001')}" in (unknown.message or "")
    assert contract_state(node) == before
    assert send(node, patient, "revoke_consent", {"consent": cid("con-mine-0001")}).code == "ok"
    twice = send(node, patient, "revoke_consent", {"consent": cid("con-mine-0001")})
    assert "already revoked" in (twice.message or "")


# -- access -------------------------------------------------------------------------------


def test_the_custodian_and_the_patient_read_without_consent(
    node: Node, member: Member, added: list[str]
) -> None:
    wang, patient = member("pumch/dr-wang"), member("pumch/patient-7f3a9c")
    custodian = event_of(node, access(node, wang, [added[0]]))
    assert custodian["records"][0]["basis"] == "custodian"
    # dr-wang is not the clinic's custodian: refused there, in the same event.
    both = event_of(node, access(node, wang, added))
    assert [r["outcome"] for r in both["records"]] == ["granted", "refused"]
    assert both["outcome"] == "partial"
    mine = event_of(node, access(node, patient, added, "self"))
    assert mine["outcome"] == "granted"
    assert {r["basis"] for r in mine["records"]} == {"self"}
    not_yours = event_of(node, access(node, wang, [added[0]], "self"))
    assert not_yours["outcome"] == "refused"


def test_break_glass_needs_a_clinician_and_a_coded_reason(
    node: Node, member: Member, added: list[str]
) -> None:
    zhao = member("chaoyang-clinic/dr-zhao")
    before = contract_state(node)
    no_reason = access(node, zhao, [added[0]], "emergency")
    assert no_reason.code == "contract_error" and "needs a reason" in (no_reason.message or "")
    free_text = access(node, zhao, [added[0]], "emergency", reason="he looked unwell")
    assert "not a break-glass reason" in (free_text.message or "")
    pharmacist = access(node, member("yf-pharmacy/ph-chen"), [added[0]], "emergency",
                        reason="unconscious")  # fmt: skip
    assert "only a clinician" in (pharmacist.message or "")
    assert contract_state(node) == before
    opened = access(node, zhao, [added[0]], "emergency", reason="unconscious")
    event = event_of(node, opened)
    assert event["outcome"] == "granted" and event["break_glass"] is True
    assert event["reason"] == "unconscious"
    window = state(node, f"glass/{PATIENT}/{zhao.fingerprint}")
    assert window["until"] - window["opened"] == 3600 * 1000


def test_the_reader_request_is_verified_and_used_once(
    node: Node, member: Member, added: list[str]
) -> None:
    wang = member("pumch/dr-wang")
    path = f"/v1/records/{added[0]}?purpose=treatment"
    request = signed_request(wang, path)
    assert access(node, wang, [added[0]], request=request).code == "ok"
    before = contract_state(node)
    replay = access(node, wang, [added[0]], request=request)
    assert "already used" in (replay.message or "")
    forged = dict(signed_request(wang, path), signature=signed_request(wang, path)["signature"])
    assert "does not verify" in (access(node, wang, [added[0]], request=forged).message or "")
    someone_else = signed_request(member("chaoyang-clinic/dr-zhao"), path)
    assert "does not verify" in (access(node, wang, [added[0]], request=someone_else).message or "")
    stale = signed_request(wang, path, time_ms=int(time.time() * 1000) - 10 * 60 * 1000)
    assert "stale" in (access(node, wang, [added[0]], request=stale).message or "")
    other_path = signed_request(wang, f"/v1/records/{added[1]}?purpose=treatment")
    assert "not this access" in (access(node, wang, [added[0]], request=other_path).message or "")
    other_purpose = signed_request(wang, f"/v1/records/{added[0]}?purpose=research")
    assert "another purpose" in (
        access(node, wang, [added[0]], request=other_purpose).message or ""
    )
    assert contract_state(node) == before


def test_only_a_peer_records_accesses(node: Node, member: Member, added: list[str]) -> None:
    wang = member("pumch/dr-wang")
    args = {
        "patient": PATIENT,
        "records": [added[0]],
        "purpose": "treatment",
        "reader": wang.fingerprint,
        "request": signed_request(wang, f"/v1/records/{added[0]}"),
    }
    assert send(node, wang, "access", args).code == "forbidden"


# -- erasure ------------------------------------------------------------------------------


def test_erasure_leaves_a_tombstone_and_refuses_later_reads(
    node: Node, consortium: Consortium, member: Member, added: list[str]
) -> None:
    patient, zhao = member("pumch/patient-7f3a9c"), member("chaoyang-clinic/dr-zhao")
    other = new_patient(node, consortium, member, "patient-9e8d7c")
    before = contract_state(node)
    assert send(node, zhao, "erase", {"record": added[0]}).code == "forbidden"
    assert send(node, other, "erase", {"record": added[0]}).code == "forbidden"
    unknown = send(node, patient, "erase", {"record": rid("rec-none-0001")})
    assert f"unknown record {rid('rec-none-0001')}" in (unknown.message or "")
    assert contract_state(node) == before
    # The clinic erases its own record on the patient's request; the patient erases the other.
    assert send(node, zhao, "erase", {"record": added[1]}).code == "ok"
    assert send(node, patient, "erase", {"record": added[0]}).code == "ok"
    tomb = state(node, f"record/{added[0]}")
    assert tomb["status"] == "erased" and "fingerprint" not in tomb and "type" not in tomb
    again = send(node, patient, "erase", {"record": added[0]})
    assert "already erased" in (again.message or "")
    event = event_of(node, access(node, patient, [added[0]], "self"))
    assert event["outcome"] == "refused" and event["records"][0]["basis"] == "the record was erased"


# -- who may read: found in review ---------------------------------------------------------


def test_another_patient_of_the_custodian_hospital_reads_nothing(
    node: Node, consortium: Consortium, member: Member, added: list[str]
) -> None:
    """A patient is a member of their hospital, but not one of its care roles."""
    bob = new_patient(node, consortium, member, "patient-b0b0b0")
    event = event_of(node, access(node, bob, [added[0]]))
    assert event["outcome"] == "refused"
    assert "no active consent" in event["records"][0]["basis"]
    mine = event_of(node, access(node, bob, [added[0]], "self"))
    assert mine["outcome"] == "refused"


def test_a_consent_to_an_organisation_covers_its_care_roles_only(
    node: Node, consortium: Consortium, member: Member, added: list[str]
) -> None:
    patient = member("pumch/patient-7f3a9c")
    assert grant(node, patient, cid("con-org-0001"), "nmpa").code == "ok"
    # The regulator's auditor is not a care role: an organisation grant does not reach them.
    auditor = event_of(node, access(node, member("nmpa/auditor-01"), [added[0]]))
    assert auditor["outcome"] == "refused"
    assert grant(node, patient, cid("con-org-0002"), "pumch").code == "ok"
    bob = new_patient(node, consortium, member, "patient-c4c4c4")
    assert event_of(node, access(node, bob, [added[0]]))["outcome"] == "refused"
    assert grant(node, patient, cid("con-org-0003"), "yf-pharmacy").code == "ok"
    chen = event_of(node, access(node, member("yf-pharmacy/ph-chen"), [added[0]]))
    assert chen["outcome"] == "granted"


def test_the_signed_request_binds_route_query_purpose_and_reason(
    node: Node, member: Member, added: list[str]
) -> None:
    zhao = member("chaoyang-clinic/dr-zhao")
    path = f"/v1/records/{added[0]}"
    before = contract_state(node)
    cases = [
        (f"{path}?purpose=treatment&note=Zhang-San", "treatment", "", "does not take"),
        (f"{path}?purpose=emergency&reason=unconscious", "emergency", "guardian-unreachable",
         "another break-glass reason"),
        (f"{path}?purpose=treatment&reason=unconscious", "treatment", "unconscious",
         "only with purpose emergency"),
        (f"{path}?purpose=treatment&purpose=treatment", "treatment", "", "does not take"),
        (f"/{path}?purpose=treatment", "treatment", "", "not an absolute path"),
    ]  # fmt: skip
    for signed, purpose, reason, words in cases:
        status = access(
            node, zhao, [added[0]], purpose, reason=reason, request=signed_request(zhao, signed)
        )
        assert status.code == "contract_error" and words in (status.message or ""), (signed, status)
    posted = dict(signed_request(zhao, path), method="POST")
    assert "not a read" in (access(node, zhao, [added[0]], request=posted).message or "")
    assert contract_state(node) == before


def test_a_records_add_must_commit_within_ten_minutes_of_signing(
    node: Node, member: Member
) -> None:
    doctor = member("pumch/dr-wang")
    body = Transaction(
        chain="demo",
        contract="records",
        method="add",
        args=record_args(rid("rec-late-0001")),
        signer=doctor.fingerprint,
        nonce=secrets.token_hex(12),
        timestamp_ms=int(time.time() * 1000) - 11 * 60 * 1000,
    )
    tx = sign_transaction(body, {doctor.fingerprint: doctor.private_key}, node.suite)
    status = node.submit_one(tx, wait_s=10)
    assert status.code == "contract_error" and "over 10 minutes" in (status.message or "")
    assert state(node, f"record/{rid('rec-late-0001')}") is None
