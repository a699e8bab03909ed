"""Health records over the REST API on 127.0.0.1, with a real node, real vault files
and real encryption: add, consented cross-custodian reads, refusals, break-glass,
access logs as FHIR AuditEvents, erasure, tampering, import and export.

Resources are the FHIR R4 specification's own examples
(tests/standards/fhir/testdata/README.md says where each came from).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from carechain.api.client import (
    ApiError,
    NodeClient,
    bundle_records,
    new_consent_id,
    prepare_records,
)
from carechain.errors import InvalidFhir, VaultTampered
from carechain.identity.wallet import Credentials
from carechain.node.node import Node
from carechain.standards.fhir import parse_bundle
from carechain.vault import new_record_id
from support import Server

Member = Callable[[str], Credentials]
PATIENT = "pumch:patient-7f3a9c"
FHIR = Path(__file__).parent.parent / "standards" / "fhir" / "testdata"
DAY_MS = 24 * 3600 * 1000


def example(name: str) -> bytes:
    return (FHIR / "examples" / name).read_bytes()


@pytest.fixture
def records(as_member: Callable[[str], NodeClient]) -> dict[str, str]:
    """A glucose Observation at pumch and a fever Condition at the clinic, one patient."""
    at_pumch = as_member("pumch/dr-wang").add_records(
        PATIENT, [example("observation-example-f001-glucose.json")]
    )
    at_clinic = as_member("chaoyang-clinic/dr-zhao").add_records(
        PATIENT, [example("condition-example-f201-fever.json")]
    )
    assert at_pumch["code"] == "ok" and at_clinic["code"] == "ok"
    return {"pumch": at_pumch["records"][0], "clinic": at_clinic["records"][0]}


def grant(patient: NodeClient, grantee: str, **extra: object) -> str:
    consent = new_consent_id()
    args = {
        "consent": consent,
        "grantee": grantee,
        "purposes": ["treatment"],
        "end": int(time.time() * 1000) + 30 * DAY_MS,
        **extra,
    }
    assert patient.grant_consent(args)["code"] == "ok"
    return consent


def test_a_record_is_added_read_back_and_matches_its_fingerprint(
    as_member: Callable[[str], NodeClient], records: dict[str, str]
) -> None:
    doc = as_member("pumch/dr-wang").read_record(records["pumch"])
    assert doc["resource"].encode() == example("observation-example-f001-glucose.json")
    assert doc["record"]["type"] == "Observation" and doc["record"]["custodian"] == "pumch"
    assert doc["access"]["basis"] == "custodian" and doc["access"]["break_glass"] is False


def test_cross_custodian_reads_follow_consent(
    as_member: Callable[[str], NodeClient], records: dict[str, str]
) -> None:
    zhao, patient = as_member("chaoyang-clinic/dr-zhao"), as_member("pumch/patient-7f3a9c")
    listed = zhao.patient_records(PATIENT)["records"]
    assert [r["id"] for r in listed] == [records["clinic"]]  # its own only
    with pytest.raises(ApiError) as refused:
        zhao.read_record(records["pumch"])
    assert refused.value.http_status == 403 and refused.value.code == "access_refused"
    assert "no active consent" in refused.value.message
    consent = grant(patient, "chaoyang-clinic", types=["Observation"])
    listed = zhao.patient_records(PATIENT)["records"]
    assert sorted(r["id"] for r in listed) == sorted(records.values())
    doc = zhao.read_record(records["pumch"])
    assert doc["access"]["basis"] == f"consent:{consent}"
    patient.revoke_consent(consent)
    with pytest.raises(ApiError):
        zhao.read_record(records["pumch"])
    # The patient sees all four attempts, the refused ones too.
    log = patient.access_log(PATIENT)["events"]
    assert [(e["reader_org"], e["outcome"]) for e in log] == [
        ("chaoyang-clinic", "refused"),
        ("chaoyang-clinic", "granted"),
        ("chaoyang-clinic", "refused"),
    ]


def test_the_access_log_exports_as_fhir_audit_events(
    as_member: Callable[[str], NodeClient], records: dict[str, str]
) -> None:
    as_member("pumch/dr-wang").read_record(records["pumch"])
    patient = as_member("pumch/patient-7f3a9c")
    bundle = patient.access_log(PATIENT, fhir=True)
    assert bundle["resourceType"] == "Bundle" and bundle["total"] == 1
    event = bundle["entry"][0]["resource"]
    assert event["resourceType"] == "AuditEvent" and event["outcome"] == "0"
    parse_bundle(orjson.dumps(bundle), allowed=("AuditEvent",))  # valid FHIR R4
    auditor = as_member("nmpa/auditor-01")
    assert len(auditor.audit()["events"]) == 1
    assert auditor.audit(fhir=True)["total"] == 1
    with pytest.raises(ApiError) as refused:
        as_member("chaoyang-clinic/dr-zhao").access_log(PATIENT)
    assert refused.value.http_status == 403
    with pytest.raises(ApiError):
        as_member("pumch/dr-wang").audit()


def test_break_glass_is_granted_briefly_and_flagged(
    as_member: Callable[[str], NodeClient], records: dict[str, str]
) -> None:
    zhao = as_member("chaoyang-clinic/dr-zhao")
    with pytest.raises(ApiError) as no_reason:
        zhao.read_record(records["pumch"], purpose="emergency")
    assert no_reason.value.http_status == 400 and "needs a reason" in no_reason.value.message
    with pytest.raises(ApiError):
        as_member("yf-pharmacy/ph-chen").read_record(
            records["pumch"], purpose="emergency", reason="unconscious"
        )
    doc = zhao.read_record(records["pumch"], purpose="emergency", reason="unconscious")
    assert doc["access"]["break_glass"] is True and doc["access"]["basis"] == "break-glass"
    flagged = as_member("nmpa/auditor-01").audit(break_glass=True)["events"]
    assert [e["reason"] for e in flagged] == ["unconscious"]
    mine = as_member("pumch/patient-7f3a9c").access_log(PATIENT)["events"]
    assert mine[-1]["break_glass"] is True and mine[-1]["reader_org"] == "chaoyang-clinic"


def test_erasure_destroys_the_record(
    as_member: Callable[[str], NodeClient], records: dict[str, str], node: Node
) -> None:
    patient = as_member("pumch/patient-7f3a9c")
    with pytest.raises(ApiError) as stranger:
        as_member("yf-pharmacy/ph-chen").erase_record(records["pumch"])
    assert stranger.value.http_status == 403
    assert patient.erase_record(records["pumch"])["code"] == "ok"
    entry = node.vault.entry(records["pumch"])
    assert entry is not None and entry.erased
    with pytest.raises(ApiError) as gone:
        as_member("pumch/dr-wang").read_record(records["pumch"])
    assert gone.value.http_status == 410 and gone.value.code == "record_erased"
    with pytest.raises(ApiError) as unknown:
        patient.erase_record(new_record_id())
    assert unknown.value.http_status == 404


def test_a_tampered_vault_entry_is_reported_and_not_served(
    as_member: Callable[[str], NodeClient],
    records: dict[str, str],
    node: Node,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = node.config.data_dir / "vault"
    files = sorted(path.glob("*.sqlite"))
    assert files, list(path.iterdir())
    with sqlite3.connect(files[0]) as db:
        cipher = db.execute(
            "SELECT ciphertext FROM records WHERE record_id = ?", (records["pumch"],)
        ).fetchone()[0]
        flipped = bytes([cipher[0] ^ 1]) + bytes(cipher[1:])
        db.execute(
            "UPDATE records SET ciphertext = ? WHERE record_id = ?", (flipped, records["pumch"])
        )
    with pytest.raises(ApiError) as tampered:
        as_member("pumch/dr-wang").read_record(records["pumch"])
    assert tampered.value.http_status == 500 and tampered.value.code == "vault_tampered"
    assert "fails authentication" in tampered.value.message
    # Nothing was read, so no access event claims it was; the custodian's log says why.
    assert as_member("pumch/patient-7f3a9c").access_log(PATIENT)["events"] == []
    assert "failed its integrity check" in caplog.text


def test_the_client_refuses_a_resource_that_does_not_match_its_fingerprint(
    as_member: Callable[[str], NodeClient], records: dict[str, str], api: Server
) -> None:
    from carechain.api.client import check_served_record

    doc = as_member("pumch/dr-wang").read_record(records["pumch"])
    doc["resource"] = doc["resource"].replace("6.3", "3.6")
    with pytest.raises(VaultTampered):
        check_served_record(doc)


def test_a_bundle_goes_in_and_the_patient_downloads_everything(
    as_member: Callable[[str], NodeClient], records: dict[str, str]
) -> None:
    raw = (FHIR / "bundles" / "diagnosticreport-example-f001-bloodexam.json").read_bytes()
    with pytest.raises(InvalidFhir) as other_type:
        bundle_records(raw)
    assert other_type.value.path == "Bundle.entry[1].resource.resourceType"
    entries, skipped = bundle_records(raw, skip_other_types=True)
    assert skipped == ["Bundle.entry[1]: ServiceRequest"]
    added = as_member("pumch/dr-wang").add_records(PATIENT, entries)
    assert added["code"] == "ok" and len(added["records"]) == len(entries)
    bundle, headers = as_member("pumch/patient-7f3a9c").export_records(PATIENT)
    assert headers["content-type"].startswith("application/fhir+json")
    out = parse_bundle(bundle)
    assert len(out) == len(entries) + 2
    assert set(entries) <= {o.raw for o in out}
    assert headers["x-carechain-access-event"]


def test_bad_input_names_the_problem(
    as_member: Callable[[str], NodeClient], records: dict[str, str], api: Server, node: Node
) -> None:
    wang = as_member("pumch/dr-wang")
    good = example("observation-example.json")
    broken = good.replace(b'"status": "final"', b'"status": 7')
    with pytest.raises(InvalidFhir) as local:  # the client validates before signing
        wang.add_records(PATIENT, [broken])
    assert local.value.path == "Observation.status"
    # A client that does not: the node names the element too, and stores nothing.
    items, tx = prepare_records(wang.creds, "demo", PATIENT, [good])
    items[0]["resource"] = broken.decode()
    body = {"records": items, "transaction": tx.to_json()}
    with pytest.raises(ApiError) as invalid:
        wang.request("POST", "/v1/records", body=body)
    assert invalid.value.code == "invalid_fhir" and "Observation.status" in invalid.value.message
    assert all(e.record_id != tx.body.args["records"][0]["record"] for e in node.vault.entries())
    items, tx = prepare_records(wang.creds, "demo", PATIENT, [good])
    items[0]["salt"] = "00" * 32
    with pytest.raises(ApiError) as mismatch:
        wang.request("POST", "/v1/records", body={"records": items, "transaction": tx.to_json()})
    assert "fingerprint does not match" in mismatch.value.message
    with pytest.raises(ApiError) as unknown_patient:
        wang.add_records("pumch:nobody", [example("observation-example.json")])
    assert "unknown patient pumch:nobody" in unknown_patient.value.message
    with pytest.raises(ApiError) as unknown_record:
        wang.read_record(new_record_id())
    assert unknown_record.value.http_status == 404
    with pytest.raises(ApiError) as malformed_id:
        wang.read_record("MRN-0012345")
    assert (
        malformed_id.value.http_status == 400 and "is not a record id" in malformed_id.value.message
    )
    with pytest.raises(ApiError) as free_text:
        wang.request("GET", f"/v1/records/{records['pumch']}", params={"note": "Zhang San"})
    assert (
        free_text.value.http_status == 400 and "unknown query parameter" in free_text.value.message
    )
    with pytest.raises(ApiError) as purpose:
        wang.read_record(records["pumch"], purpose="curiosity")
    assert purpose.value.http_status == 400 and "purpose" in purpose.value.message
    with pytest.raises(ApiError) as malformed:
        wang.request("POST", "/v1/records", raw_body=b"{not json")
    assert malformed.value.http_status == 400
    with pytest.raises(ApiError) as wrong_shape:
        wang.request("POST", "/v1/records", body={"records": []})
    assert wrong_shape.value.http_status == 400
    unsigned = httpx.get(f"{api.url}/v1/records/{records['pumch']}")
    assert unsigned.status_code == 401


def test_a_replayed_add_stores_nothing_twice(
    as_member: Callable[[str], NodeClient], node: Node
) -> None:
    wang = as_member("pumch/dr-wang")
    items, tx = prepare_records(wang.creds, "demo", PATIENT, [example("observation-example.json")])
    body = {"records": items, "transaction": tx.to_json()}
    assert wang.request("POST", "/v1/records", body=body)["code"] == "ok"
    before = (node.state.height, node.vault.entries())
    with pytest.raises(ApiError) as replayed:
        wang.request("POST", "/v1/records", body=body)
    assert replayed.value.http_status == 400 and "already" in replayed.value.message
    assert (node.state.height, node.vault.entries()) == before
    assert node.vault.open(tx.body.args["records"][0]["record"]).data == example(
        "observation-example.json"
    )


def test_a_large_import_is_validated_in_the_worker_and_a_bad_entry_is_named(
    as_member: Callable[[str], NodeClient], node: Node
) -> None:
    wang = as_member("pumch/dr-wang")
    good = example("observation-example.json")
    items, tx = prepare_records(wang.creds, "demo", PATIENT, [good] * 12)
    items[7]["resource"] = good.replace(b'"status": "final"', b'"status": "done"').decode()
    with pytest.raises(ApiError) as invalid:
        wang.request("POST", "/v1/records", body={"records": items, "transaction": tx.to_json()})
    assert invalid.value.code == "invalid_fhir"
    assert "Observation.status" in invalid.value.message and "records[7]" in invalid.value.message
    assert node.vault.entries() == []
    added = wang.add_records(PATIENT, [good] * 12)
    assert added["code"] == "ok" and len(added["records"]) == 12
    assert all(node.vault.open(r).data == good for r in added["records"])
