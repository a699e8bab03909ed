"""No PHI on the chain: after every kind of records traffic, no byte of the block
store or the state store holds a name, birth date, diagnosis or note from the
records; and the vault holds them only encrypted.

The fixtures are FHIR R4 specification examples (tests/standards/fhir/testdata/
README.md), which name their patients and practitioners and state diagnoses,
plus one with a Chinese name, a birth date and a clinical note added.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from carechain.api.client import NodeClient, new_consent_id
from carechain.identity.wallet import Credentials
from carechain.node.config import load_config
from carechain.node.node import Node
from carechain.standards.fhir.claim import claim_submission, fingerprint_key
from claims_support import TESTDATA as CLAIMS
from claims_support import TODAY, World, new, ok, send
from support import Server

FHIR = Path(__file__).parent.parent / "standards" / "fhir" / "testdata" / "examples"
PATIENT = "pumch:patient-7f3a9c"

EXAMPLES = [
    "observation-example-f001-glucose.json",  # subject "P. van de Heuvel"
    "condition-example-f201-fever.json",  # "Fever"
    "procedure-example-f001-heart.json",  # "Heart valve replacement"
    "medicationrequest0301.json",  # "Donald Duck", "Rib Pain (finding)"
    "allergyintolerance-example.json",  # "Cashew nuts", "Anaphylactic reaction"
    "encounter-example-f201-20130404.json",
]
NOTE = "张伟，出生日期 1974-12-25。诊断：2型糖尿病；家族史：父亲心肌梗死。Chest pain since Tuesday."

PHI = [
    "van de Heuvel",
    "A. Langeveld",
    "Donald Duck",
    "Carla Espinosa",
    "Patrick Pump",
    "Heart valve replacement",
    "Rib Pain",
    "Anaphylactic reaction",
    "Cashew nuts",
    "张伟",
    "1974-12-25",
    "2型糖尿病",
    "心肌梗死",
    "Chest pain since Tuesday",
    "原发性高血压",
    "Essential hypertension",
]
"""Each at least six bytes, so a chance match in signatures or hashes is negligible."""


def with_note() -> bytes:
    """The spec's body-weight Observation, with PHI in ``Observation.note``."""
    doc = json.loads((FHIR / "observation-example.json").read_bytes())
    doc["note"] = [{"text": NOTE}]
    return json.dumps(doc, ensure_ascii=False, indent=2).encode()


def fhir_claim(coverage: str, record: str) -> bytes:
    """FHIR R4's Claim example with a diagnosis in words (Claim.diagnosis, Claim.text)."""
    doc = json.loads((CLAIMS / "claim-100150-carechain.json").read_bytes())
    doc["patient"]["identifier"]["value"] = PATIENT
    doc["insurance"][0]["coverage"]["reference"] = f"Coverage/{coverage}"
    doc["item"][0]["servicedDate"] = TODAY
    doc["item"][0]["encounter"][0]["identifier"]["value"] = record
    doc["diagnosis"][0]["diagnosisCodeableConcept"] = {
        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10",
                    "display": "Essential hypertension"}],
        "text": "原发性高血压",
    }  # fmt: skip
    doc["text"] = {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{NOTE}</div>',
    }
    return json.dumps(doc, ensure_ascii=False).encode()


def forms(text: str) -> list[bytes]:
    """The ways a string could be stored: UTF-8, JSON-escaped, UTF-16."""
    return [
        text.encode(),
        json.dumps(text).strip('"').encode(),
        text.encode("utf-16-le"),
    ]


def found_in(paths: list[Path]) -> list[str]:
    hits = []
    for path in paths:
        data = path.read_bytes()
        for text in PHI:
            if any(form in data for form in forms(text)):
                hits.append(f"{text!r} in {path.name}")
    return hits


def test_no_phi_reaches_the_block_store_or_the_state(
    node_dir: Path, member: Callable[[str], Credentials]
) -> None:
    get = member
    node = Node(load_config(node_dir))
    node.start()
    try:
        with Server(node) as api:
            wang = NodeClient(api.url, get("pumch/dr-wang"))
            zhao = NodeClient(api.url, get("chaoyang-clinic/dr-zhao"))
            patient = NodeClient(api.url, get("pumch/patient-7f3a9c"))
            resources = [(FHIR / name).read_bytes() for name in EXAMPLES] + [with_note()]
            added = wang.add_records(PATIENT, resources)["records"]
            zhao.add_records(PATIENT, [with_note()])
            patient.grant_consent(
                {
                    "consent": new_consent_id(),
                    "grantee": "chaoyang-clinic",
                    "purposes": ["treatment"],
                    "end": int(time.time() * 1000) + 86_400_000,
                }
            )
            assert NOTE in zhao.read_record(added[-1])["resource"]
            exported, _ = patient.export_records(PATIENT)
            assert b"van de Heuvel" in exported
            zhao.read_record(added[0], purpose="emergency", reason="unconscious")
            patient.erase_record(added[1])
            assert patient.access_log(PATIENT, fhir=True)["total"] >= 3
            # A claim for an encounter: its FHIR Claim states the diagnosis in words.
            world = World(node, get)
            desk = get("pumch/admin")
            raw = fhir_claim(world.coverage, world.record())
            args = claim_submission(raw, fingerprint_key(desk.private_key), new("clm"))
            ok(send(node, desk, "claims", "submit", args))
            for c in (wang, zhao, patient):
                c.close()
    finally:
        node.stop()

    # Every file of the node but its vault and keys: block segments, the state store
    # (with any WAL), genesis and configuration.
    chain_files = [
        p
        for p in sorted(node_dir.rglob("*"))
        if p.is_file() and p.relative_to(node_dir).parts[0] not in ("vault", "keys")
    ]
    names = {p.name for p in chain_files}
    assert "state.sqlite" in names and any(n.startswith("blocks-") for n in names)
    assert sum(p.stat().st_size for p in chain_files) > 10_000  # the scan read real blocks
    assert found_in(chain_files) == []
    # The vault holds every record, encrypted: no plaintext there either.
    vault_files = [p for p in (node_dir / "vault").rglob("*") if p.is_file()]
    assert vault_files
    assert found_in(vault_files) == []
    # And the scan does find PHI where it is in the clear (it is not vacuous).
    assert found_in([FHIR / "observation-example-f001-glucose.json"]) != []
