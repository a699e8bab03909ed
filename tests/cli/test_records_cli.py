"""``carechain records``, ``consent`` and ``audit`` run as real subprocesses against a real
node on 127.0.0.1: add a resource and a Bundle, read them back byte for byte, consent and
its revocation, break-glass, the patient's access log, the auditor's view, erasure, and
one-line errors.

Resources are the FHIR R4 specification's own examples
(tests/standards/fhir/testdata/README.md says where each came from). Each command costs
a Python start (about half a second), so each test walks through a whole story.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from carechain.api.client import bundle_records
from carechain.node.consortium import Consortium
from carechain.standards.fhir import parse_bundle
from support import Server, free_port

pytestmark = pytest.mark.integration

PATIENT = "pumch:patient-7f3a9c"
FHIR = Path(__file__).parent.parent / "standards" / "fhir" / "testdata"
GLUCOSE = FHIR / "examples" / "observation-example-f001-glucose.json"
BLOODEXAM = FHIR / "bundles" / "diagnosticreport-example-f001-bloodexam.json"
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@dataclass(frozen=True)
class Run:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8")


Cli = Callable[..., Run]


def runner(consortium: Consortium, node_url: str) -> Cli:
    def run(who: str, *args: str) -> Run:
        """``carechain ARGS`` signed as ``who`` (``org/member`` of the demo consortium)."""
        org, member_id = who.split("/")
        env = {
            **os.environ,
            "CARECHAIN_NODE": node_url,
            "CARECHAIN_IDENTITY": str(consortium.directory / "orgs" / org / "members" / member_id),
        }
        done = subprocess.run(
            [sys.executable, "-m", "carechain", *args], capture_output=True, env=env, timeout=60
        )
        return Run(done.returncode, done.stdout, done.stderr.decode("utf-8"))

    return run


@pytest.fixture
def cli(api: Server, consortium: Consortium) -> Cli:
    return runner(consortium, api.url)


def one_line_error(run: Run, *words: str) -> None:
    assert run.code == 2, run
    assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1, run.err
    for word in words:
        assert word in run.err, run.err


def test_records_go_in_as_files_and_come_back_byte_for_byte(cli: Cli, tmp_path: Path) -> None:
    wang = "pumch/dr-wang"
    # The bundle holds a ServiceRequest, which is not a record: refused, naming the entry.
    refused = cli(wang, "records", "add", "--patient", PATIENT, str(BLOODEXAM))
    one_line_error(
        refused,
        "invalid_fhir",
        BLOODEXAM.name,
        "Bundle.entry[1].resource.resourceType",
        "--skip-other-types",
    )

    # A resource and a bundle in one transaction; the ServiceRequest is left out.
    added = cli(
        wang,
        "records",
        "add",
        "--patient",
        PATIENT,
        "--skip-other-types",
        str(GLUCOSE),
        str(BLOODEXAM),
    )
    assert added.code == 0, added
    assert "left out Bundle.entry[1]: ServiceRequest" in added.err
    *rows, status = added.text.splitlines()
    assert status.startswith("committed at height ")
    ids = [row.split()[0] for row in rows]
    assert [row.split()[1:] for row in rows] == [
        ["Observation", str(GLUCOSE)],
        ["DiagnosticReport", str(BLOODEXAM)],
    ]
    glucose, report = ids

    read = cli(wang, "records", "read", glucose)
    assert read.code == 0, read
    assert read.out == GLUCOSE.read_bytes()
    assert "custodian" in read.err and "access event" in read.err
    out = tmp_path / "report.json"
    assert cli(wang, "records", "read", report, "--out", str(out)).code == 0
    entries, _ = bundle_records(BLOODEXAM.read_bytes(), skip_other_types=True)
    assert out.read_bytes() == entries[0]

    table = cli(wang, "records", "list", "--patient", PATIENT)
    assert table.code == 0, table
    header, *lines = table.text.splitlines()
    assert header.split() == ["RECORD", "TYPE", "CATEGORY", "CUSTODIAN", "ADDED", "(UTC)", "STATUS"]
    assert sorted(line.split()[0] for line in lines) == sorted(ids)
    for line in lines:
        assert ISO_UTC.search(line) and line.split()[3] == "pumch" and line.endswith("active")
    listed = cli(wang, "records", "list", "--patient", PATIENT, "--json")
    assert sorted(r["id"] for r in json.loads(listed.out)) == sorted(ids)

    broken = tmp_path / "broken-observation.json"
    broken.write_bytes(
        (FHIR / "examples" / "observation-example.json")
        .read_bytes()
        .replace(b'"status": "final"', b'"status": 7')
    )
    one_line_error(
        cli(wang, "records", "add", "--patient", PATIENT, str(broken)),
        "invalid_fhir",
        str(broken),
        "Observation.status",
    )

    # The patient downloads everything held here as one FHIR Bundle.
    bundle = tmp_path / "mine.json"
    export = cli(
        "pumch/patient-7f3a9c", "records", "export", "--patient", PATIENT, "--out", str(bundle)
    )
    assert export.code == 0, export
    assert "2 record(s); access event" in export.err

    def same_json(raw: bytes) -> bytes:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)

    served = {same_json(p.raw) for p in parse_bundle(bundle.read_bytes())}
    assert served == {same_json(GLUCOSE.read_bytes()), same_json(entries[0])}


def test_consent_break_glass_access_log_audit_and_erasure(cli: Cli, consortium: Consortium) -> None:
    patient, zhao = "pumch/patient-7f3a9c", "chaoyang-clinic/dr-zhao"
    added = cli("pumch/dr-wang", "records", "add", "--patient", PATIENT, str(GLUCOSE))
    assert added.code == 0, added
    record = added.text.split()[0]

    # The patient consents to one clinician of another clinic (named by certificate file).
    zhao_cert = consortium.directory / "orgs" / "chaoyang-clinic" / "members" / "dr-zhao.pem"
    granted = cli(
        patient,
        "consent",
        "grant",
        "--grantee",
        str(zhao_cert),
        "--purpose",
        "treatment",
        "--type",
        "Observation",
        "--days",
        "30",
    )
    assert granted.code == 0, granted
    consent, state, *_ = granted.text.split()
    assert consent.startswith("con-") and state == "active"
    assert consortium.members[zhao].fingerprint in granted.text

    read = cli(zhao, "records", "read", record)
    assert read.code == 0, read
    assert read.out == GLUCOSE.read_bytes() and f"consent:{consent}" in read.err

    assert cli(patient, "consent", "revoke", consent).code == 0
    one_line_error(cli(zhao, "records", "read", record), "access_refused", "no active consent")
    listed = cli(patient, "consent", "list", "--patient", PATIENT)
    assert listed.code == 0 and listed.text.split()[:2] == [consent, "revoked"], listed

    # Break-glass: refused without a coded reason; with one, granted and flagged.
    one_line_error(cli(zhao, "records", "read", record, "--purpose", "emergency"), "needs a reason")
    glass = cli(
        zhao, "records", "read", record, "--purpose", "emergency", "--reason", "unconscious"
    )
    assert glass.code == 0 and "BREAK-GLASS" in glass.err, glass
    flagged = cli("nmpa/auditor-01", "audit", "access", "--break-glass")
    assert flagged.code == 0, flagged
    [line] = flagged.text.splitlines()
    assert PATIENT in line and "chaoyang-clinic/clinician" in line and record in line
    assert line.endswith("BREAK-GLASS: unconscious")
    one_line_error(cli("pumch/dr-wang", "audit", "access"), "forbidden")

    # The patient sees every access: granted under consent, refused after, break-glass.
    log = cli(patient, "records", "access-log", "--patient", PATIENT)
    assert log.code == 0, log
    rows = [row.split("  ") for row in log.text.splitlines()]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("chaoyang-clinic/clinician", "treatment", "granted"),
        ("chaoyang-clinic/clinician", "treatment", "refused"),
        ("chaoyang-clinic/clinician", "emergency", "granted"),
    ]
    assert all(ISO_UTC.fullmatch(r[0]) for r in rows)
    assert "BREAK-GLASS" in rows[2][-1] and "BREAK-GLASS" not in rows[1][-1]
    fhir = cli(patient, "records", "access-log", "--patient", PATIENT, "--fhir", "--limit", "2")
    assert fhir.code == 0, fhir
    assert len(parse_bundle(fhir.out, allowed=("AuditEvent",))) == 2
    assert "more may follow: --after " in fhir.err
    after = fhir.err.split("more may follow: --after ")[1].split()[0]
    rest = cli(patient, "records", "access-log", "--patient", PATIENT, "--after", after, "--json")
    assert rest.code == 0, rest
    [last] = json.loads(rest.out)["events"]
    assert last["purpose"] == "emergency" and json.loads(rest.out)["next"] is None
    glass_fhir = cli(patient, "records", "access-log", "--patient", PATIENT, "--fhir")
    stated = [
        purpose
        for entry in json.loads(glass_fhir.out)["entry"]
        for purpose in entry["resource"]["purposeOfEvent"]
        if purpose["coding"][0]["code"] == "BTG"
    ]
    assert [p.get("text") for p in stated] == ["unconscious"]

    erased = cli(patient, "records", "erase", record)
    assert erased.code == 0 and erased.text.startswith(f"erased {record}: committed"), erased
    one_line_error(cli("pumch/dr-wang", "records", "read", record), "record_erased")


@pytest.mark.parametrize(
    ("period", "words"),
    [
        (["--end", "2027-02-30"], "--end '2027-02-30' is not a date (YYYY-MM-DD)"),
        (["--start", "next tuesday", "--days", "3"], "--start 'next tuesday' is not a date"),
        (["--end", "2020-01-31"], "which has already passed"),
        (["--start", "2031-01-02", "--end", "2031-01-01T12:00:00+08:00"], "before it starts"),
        (["--days", "30", "--end", "2031-01-01"], "--end DATE or --days N (one of them)"),
    ],
)
def test_a_bad_consent_period_is_one_line_before_anything_is_signed(
    consortium: Consortium, period: list[str], words: str
) -> None:
    nowhere = runner(consortium, f"http://127.0.0.1:{free_port()}")  # never reached
    args = ["consent", "grant", "--grantee", "chaoyang-clinic", "--purpose", "treatment"]
    one_line_error(nowhere("pumch/patient-7f3a9c", *args, *period), words)
