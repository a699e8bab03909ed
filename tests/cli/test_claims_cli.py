"""``carechain claims`` end to end, as the insurer's desk, the hospital's billing office
and the patient use it: real CLI processes, a real node on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from carechain.api.client import build_transaction
from carechain.identity.wallet import Credentials
from carechain.node.consortium import Consortium
from carechain.node.node import Node
from claims_support import PATIENT, RULES, TESTDATA, TODAY, World, service
from support import Server, license_demo_maker

pytestmark = pytest.mark.integration
Member = Callable[[str], Credentials]
Run = subprocess.CompletedProcess[str]


@pytest.fixture
def cli(api: Server, consortium: Consortium) -> Callable[..., Run]:
    def run(who: str, *args: str) -> Run:
        org, member_id = who.split("/")
        env = {
            **os.environ,
            "CARECHAIN_NODE": api.url,
            "CARECHAIN_IDENTITY": str(consortium.directory / "orgs" / org / "members" / member_id),
        }
        return subprocess.run(
            [sys.executable, "-m", "carechain", "claims", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    return run


def one_line_error(run: Run, *words: str) -> None:
    assert run.returncode == 2, run
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    for word in words:
        assert word in run.stderr, run.stderr


def test_from_the_policy_to_the_patients_co_pay(
    cli: Callable[..., Run], node: Node, member: Member, tmp_path: Path
) -> None:
    license_demo_maker(node, member("nmpa/admin"))
    world = World(node, member)  # funds the insurer (and publishes pol-basic)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(dict(RULES, copay_bp=2000)), encoding="utf-8")
    published = cli("bj-nhsa/admin", "publish-policy", "--policy", "pol-gold", "--from", TODAY,
                    "--rules", str(rules))  # fmt: skip
    assert published.returncode == 0, published
    coverage_file = tmp_path / "coverage.json"
    coverage_file.write_text(json.dumps({
        "resourceType": "Coverage", "status": "active",
        "beneficiary": {"identifier": {"system": "urn:carechain:patient", "value": PATIENT}},
        "payor": [{"identifier": {"system": "urn:carechain:org", "value": "bj-nhsa"}}],
        "class": [{"type": {"coding": [{"system":
                   "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "plan"}]},
                   "value": "pol-gold"}],
        "period": {"start": "2025-01-01", "end": "2030-12-31"}}), encoding="utf-8")  # fmt: skip
    covered = cli("bj-nhsa/admin", "cover", "--fhir", str(coverage_file))
    assert covered.returncode == 0, covered
    coverage = covered.stdout.strip()
    # The hospital's billing office submits its FHIR Claim file.
    claim = json.loads((TESTDATA / "claim-100150-carechain.json").read_text("utf-8"))
    claim["patient"]["identifier"]["value"] = PATIENT
    claim["insurance"][0]["coverage"]["reference"] = f"Coverage/{coverage}"
    claim["item"][0]["servicedDate"] = TODAY
    claim["item"][0]["encounter"][0]["identifier"]["value"] = world.record()
    claim_file = tmp_path / "claim.json"
    claim_file.write_text(json.dumps(claim), encoding="utf-8")
    submitted = cli("pumch/admin", "submit", str(claim_file))
    assert submitted.returncode == 0, submitted
    claim_id = submitted.stdout.splitlines()[0]
    assert "paid" in submitted.stdout and "insurer 108.46 CNY" in submitted.stdout
    again = cli("pumch/admin", "submit", str(claim_file))
    assert again.returncode == 0 and "submitted before" in again.stderr
    # The patient follows it and pays the co-pay.
    funds = {"to": PATIENT, "currency": "CNY", "amount": 5_000}
    issue = build_transaction(member("icbc/admin"), "demo", "payments", "issue", funds)
    assert node.submit_one(issue, wait_s=10).code == "ok"
    listed = cli("pumch/patient-7f3a9c", "list")
    assert claim_id in listed.stdout and "co-pay requested" in listed.stdout
    paid = cli("pumch/patient-7f3a9c", "pay-copay", claim_id)
    assert paid.returncode == 0, paid
    shown = cli("pumch/patient-7f3a9c", "show", claim_id)
    assert "copay_paid" in shown.stdout
    fhir = cli("bj-nhsa/admin", "show", "--fhir", claim_id)
    assert json.loads(fhir.stdout)["resourceType"] == "ClaimResponse"
    # Others may not read it; bad input is refused before anything is signed.
    one_line_error(cli("chaoyang-clinic/admin", "show", claim_id), "forbidden")
    height = node.state.height
    claim["item"][0]["net"]["value"] = 135.575
    claim_file.write_text(json.dumps(claim), encoding="utf-8")
    one_line_error(cli("pumch/admin", "submit", str(claim_file)), "decimal places")
    one_line_error(cli("pumch/admin", "submit", str(tmp_path / "none.json")), "cannot read")
    bad_rules = tmp_path / "bad.json"
    bad_rules.write_text(json.dumps(dict(RULES, copay_bp=-1)), encoding="utf-8")
    one_line_error(cli("bj-nhsa/admin", "publish-policy", "--policy", "pol-x", "--from", TODAY,
                       "--rules", str(bad_rules)), "copay_bp")  # fmt: skip
    one_line_error(cli("bj-nhsa/admin", "review", claim_id, "--note", " "), "--note")
    assert node.state.height == height


def test_the_insurer_reviews_its_queue(cli: Callable[..., Run], node: Node, member: Member) -> None:
    license_demo_maker(node, member("nmpa/admin"))
    world = World(node, member)
    claim_id, status = world.claim("pumch/admin", [service()])  # no encounter on record
    assert status.code == "ok"
    queue = cli("bj-nhsa/admin", "queue")
    assert claim_id in queue.stdout and "phantom_encounter" in queue.stdout
    one_line_error(cli("pumch/admin", "queue"), "forbidden")
    decided = cli("bj-nhsa/admin", "review", claim_id, "--deny", "--note", "no encounter")
    assert decided.returncode == 0 and "now denied" in decided.stdout, decided
    assert "no claims to review" in cli("bj-nhsa/admin", "queue").stderr
    # The hospital's billing desk sees its claims, newest first, with what flagged them.
    paid_id, paid = world.claim("pumch/admin", [service(record=world.record())])
    assert paid.code == "ok"
    ours = cli("pumch/admin", "list", "--provider", "pumch").stdout.splitlines()
    assert [line.split()[1] for line in ours] == [paid_id, claim_id]
    assert "paid" in ours[0] and "denied" in ours[1] and "flagged: phantom_encounter" in ours[1]
    one_line_error(cli("chaoyang-clinic/admin", "list", "--provider", "pumch"), "billing desk")
    one_line_error(cli("pumch/admin", "list", "--provider", "pumch", "--patient", PATIENT),
                   "not both")  # fmt: skip


def test_legacy_stock_and_a_death_from_the_command_line(
    cli: Callable[..., Run], node: Node, member: Member
) -> None:
    declared = cli("yf-pharmacy/ph-chen", "declare-legacy-stock", "--product", "09506000134352",
                   "--lot", "OLD1", "--quantity", "20", "--bought", "2025-03-02")  # fmt: skip
    assert declared.returncode == 0, declared
    confirm = ["confirm-legacy-stock", "--org", "yf-pharmacy", "--product", "09506000134352",
               "--lot", "OLD1"]  # fmt: skip
    one_line_error(cli("yf-pharmacy/ph-chen", *confirm), "forbidden")
    confirmed = cli("bj-nhsa/admin", *confirm)
    assert confirmed.returncode == 0 and "confirmed yf-pharmacy's lot OLD1" in confirmed.stdout
    dead = cli("pumch/dr-wang", "record-death", "--patient", PATIENT, "--day", "2026-01-02")
    assert dead.returncode == 0, dead
    one_line_error(cli("pumch/admin", "withdraw-death", "--patient", PATIENT, "--reason", "x"),
                   "forbidden")  # fmt: skip
    undone = cli("nmpa/admin", "withdraw-death", "--patient", PATIENT, "--reason", "wrong person")
    assert undone.returncode == 0, undone
    assert node.state.get(f"claims/death/{PATIENT}") is None
