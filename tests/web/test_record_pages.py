"""A patient's records page in a real browser: what the chain holds of their records
(never the contents), consents granted and revoked from the page, and who read or tried
to read their records, in the order it happened."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from carechain.api.client import ApiError, NodeClient
from carechain.identity.wallet import Credentials
from carechain.node.node import Node
from web.conftest import Person

Member = Callable[[str], Credentials]
Web = Callable[[str, str], Person]
PATIENT = "pumch:patient-7f3a9c"
# FHIR R4 example observation-example-f001-glucose.json (hl7.org/fhir/R4), as the
# records tests use it (tests/standards/fhir/testdata/README.md).
GLUCOSE = (
    Path(__file__).parent.parent / "standards" / "fhir" / "testdata" / "examples"
    / "observation-example-f001-glucose.json"
)  # fmt: skip


def test_a_patient_grants_and_revokes_consent_and_sees_every_read(
    web: Web, node: Node, as_member: Callable[[str], NodeClient]
) -> None:
    added = as_member("pumch/dr-wang").add_records(PATIENT, [GLUCOSE.read_bytes()])
    record = added["records"][0]
    zhao = as_member("chaoyang-clinic/dr-zhao")
    with pytest.raises(ApiError):
        zhao.read_record(record)  # no consent yet: refused, and recorded
    patient = web("patient", "pumch/patient-7f3a9c")
    patient.log_in("/web/records?lang=en")
    page = patient.page
    expect(page.locator(f"#records tr[data-record='{record}']")).to_contain_text("Observation")
    expect(page.locator(f"#records tr[data-record='{record}']")).to_contain_text("pumch")
    expect(page.locator("#access tbody tr")).to_have_count(1)
    expect(page.locator("#access tbody tr").first).to_contain_text("chaoyang-clinic")
    expect(page.locator("#access tbody tr").first).to_contain_text("refused")
    assert "Glucose" not in page.content()  # the record's contents never reach the page
    # A consent from the page: the clinic may read Observations for treatment.
    before = node.state.scan("records/grant/")
    page.fill("#grantee", "chaoyang-clinic")
    page.fill("#until", (datetime.now(UTC) + timedelta(days=30)).date().isoformat())
    page.click("#grant-submit")  # no purpose ticked: named, nothing signed
    expect(page.locator("#error")).to_have_text("tick at least one purpose")
    assert node.state.scan("records/grant/") == before
    page.go_back()
    page.fill("#grantee", "no-such-org")
    page.check("#purpose-treatment")
    page.fill("#until", (datetime.now(UTC) + timedelta(days=30)).date().isoformat())
    page.click("#grant-submit")
    expect(page.locator("#error")).to_contain_text("the chain refused this")
    assert node.state.scan("records/grant/") == before
    page.goto(patient.url + "/web/records")
    page.fill("#grantee", "chaoyang-clinic")
    page.check("#purpose-treatment")
    page.check("#type-Observation")
    page.fill("#until", (datetime.now(UTC) + timedelta(days=30)).date().isoformat())
    page.click("#grant-submit")
    expect(page.locator("#notice")).to_have_text("Consent granted.")
    row = page.locator("#consents tbody tr").first
    expect(row).to_contain_text("chaoyang-clinic")
    expect(row).to_contain_text("Observation")
    expect(row).to_contain_text("active")
    assert zhao.read_record(record)["access"]["basis"].startswith("consent:con-")
    # Revoked from the page: the next read is refused again.
    row.locator("button").click()
    expect(page.locator("#notice")).to_have_text("Consent revoked.")
    expect(page.locator("#consents tbody tr").first).to_contain_text("revoked")
    with pytest.raises(ApiError):
        zhao.read_record(record)
    page.goto(patient.url + "/web/records")
    outcomes = [
        html.unescape(t) for t in page.locator("#access tbody tr .status").all_inner_texts()
    ]
    assert outcomes == ["refused", "granted", "refused"]
    # Only the patient has this page.
    doctor = web("dr-wang", "pumch/dr-wang")
    doctor.log_in()
    refused = doctor.page.goto(doctor.url + "/web/records")
    assert refused is not None and refused.status == 403
    bad = page.goto(patient.url + "/web/records?after=nowhere")
    assert bad is not None and bad.status == 400
