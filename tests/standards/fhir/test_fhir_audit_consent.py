"""audit_event and consent_resource build R4 resources that pass the R4B models and our checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from carechain.errors import InvalidFhir
from carechain.standards.fhir import audit_event, consent_resource, parse_resource

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def access(**changes: Any) -> dict[str, Any]:
    event = {
        "id": "2b1f9c0e.3",
        "time_ms": 1_700_000_000_123,
        "reader": "ab12cd34ef56",
        "reader_org": "shanghai-renji",
        "reader_role": "clinician",
        "patient": "pt-7f3a",
        "record": "rec-0042",
        "resource_type": "Observation",
        "purpose": "treatment",
        "break_glass": False,
        "outcome": "granted",
        "reason": "",
        "custodian": "beijing-union",
        "txid": "9f" * 32,
    }
    event.update(changes)
    return event


def consent(**changes: Any) -> dict[str, Any]:
    grant = {
        "id": "consent-17",
        "patient": "pt-7f3a",
        "grantee": "shanghai-renji",
        "grantee_kind": "org",
        "purposes": ["treatment", "emergency"],
        "types": ["Observation", "DiagnosticReport"],
        "categories": ["laboratory", "vital-signs"],
        "records": ["rec-0042"],
        "start_ms": 1_700_000_000_000,
        "end_ms": 1_731_536_000_000,
        "status": "active",
        "granted_ms": 1_699_999_999_999,
    }
    grant.update(changes)
    return grant


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource passes the R4B model and carechain's own FHIR checks; returns it."""
    from fhir.resources.R4B.auditevent import AuditEvent
    from fhir.resources.R4B.consent import Consent

    model = {"AuditEvent": AuditEvent, "Consent": Consent}[resource["resourceType"]]
    model.model_validate(resource)
    assert "extension" not in json.dumps(resource)
    parsed = parse_resource(json.dumps(resource), allowed=(resource["resourceType"],))
    assert parsed.resource == resource
    return resource


# --- AuditEvent ---------------------------------------------------------------------


def test_granted_read() -> None:
    event = valid(audit_event(access()))
    assert event["id"] == "2b1f9c0e.3"
    assert event["type"] == {
        "system": "http://dicom.nema.org/resources/ontology/DCM",
        "code": "110110",
        "display": "Patient Record",
    }
    assert event["action"] == "R"
    assert event["recorded"] == "2023-11-14T22:13:20.123Z"
    assert event["outcome"] == "0" and "outcomeDesc" not in event
    assert event["subtype"][0]["code"] == "read"
    assert event["purposeOfEvent"] == [
        {"coding": [{"system": ACT_REASON, "code": "TREAT", "display": "treatment"}]}
    ]
    reader, custodian = event["agent"]
    assert reader["requestor"] is True and custodian["requestor"] is False
    assert reader["who"]["identifier"]["system"] == "urn:carechain:member"
    assert reader["who"]["identifier"]["value"] == "ab12cd34ef56"
    assert reader["who"]["identifier"]["assigner"]["identifier"] == {
        "system": "urn:carechain:org",
        "value": "shanghai-renji",
    }
    assert reader["role"] == [{"text": "clinician"}]
    assert custodian["who"]["identifier"] == {
        "system": "urn:carechain:org",
        "value": "beijing-union",
    }
    assert event["source"]["observer"]["identifier"] == {
        "system": "urn:carechain:org",
        "value": "beijing-union",
    }
    record, patient, transaction = event["entity"]
    assert record["what"] == {
        "identifier": {"system": "urn:carechain:record", "value": "rec-0042"},
        "type": "Observation",
    }
    assert patient["what"]["identifier"] == {"system": "urn:carechain:patient", "value": "pt-7f3a"}
    assert transaction["what"]["identifier"] == {"system": "urn:carechain:tx", "value": "9f" * 32}


def test_refused_break_glass() -> None:
    event = valid(
        audit_event(
            access(
                purpose="emergency", break_glass=True, outcome="refused", reason="no active duty"
            )
        )
    )
    assert event["outcome"] == "4"
    assert event["outcomeDesc"] == "no active duty"
    codes = [concept["coding"][0]["code"] for concept in event["purposeOfEvent"]]
    assert codes == ["ETREAT", "BTG"]
    assert event["purposeOfEvent"][1]["text"] == "no active duty"


def test_granted_break_glass_keeps_the_stated_reason() -> None:
    event = valid(audit_event(access(purpose="emergency", break_glass=True, reason="unconscious")))
    assert event["outcome"] == "0"
    assert event["outcomeDesc"] == "unconscious"
    assert event["purposeOfEvent"][1] == {
        "coding": [{"system": ACT_REASON, "code": "BTG", "display": "break the glass"}],
        "text": "unconscious",
    }


def test_listing_of_one_type() -> None:
    event = valid(audit_event(access(record=None)))
    assert event["subtype"][0]["code"] == "search-type"
    patient, transaction = event["entity"]
    assert patient["detail"] == [{"type": "resourceType", "valueString": "Observation"}]
    assert transaction["what"]["identifier"]["system"] == "urn:carechain:tx"


def test_listing_of_every_type() -> None:
    event = valid(audit_event(access(record=None, resource_type=None, reader_role="")))
    assert event["subtype"][0]["code"] == "search"
    assert "detail" not in event["entity"][0]
    assert "role" not in event["agent"][0]


@pytest.mark.parametrize(
    ("purpose", "code"),
    [
        ("treatment", "TREAT"),
        ("payment", "HPAYMT"),
        ("research", "HRESCH"),
        ("emergency", "ETREAT"),
        ("self", "PATRQT"),  # a patient reading their own records
    ],
)
def test_purpose_codes(purpose: str, code: str) -> None:
    event = valid(audit_event(access(purpose=purpose)))
    assert event["purposeOfEvent"][0]["coding"][0] == {
        "system": ACT_REASON,
        "code": code,
        "display": event["purposeOfEvent"][0]["coding"][0]["display"],
    }


def test_recorded_keeps_milliseconds_of_the_epoch() -> None:
    assert audit_event(access(time_ms=0))["recorded"] == "1970-01-01T00:00:00.000Z"
    assert audit_event(access(time_ms=1))["recorded"] == "1970-01-01T00:00:00.001Z"


@pytest.mark.parametrize(
    ("changes", "path", "problem"),
    [
        ({"purpose": "marketing"}, "AuditEvent.purposeOfEvent", "unknown purpose 'marketing'"),
        ({"outcome": "maybe"}, "AuditEvent.outcome", "expected granted or refused"),
        ({"id": "tx:3"}, "AuditEvent.id", "is not a FHIR id"),
        ({"time_ms": 1.5}, "AuditEvent.recorded", "integer milliseconds"),
        ({"break_glass": "yes"}, "AuditEvent.purposeOfEvent", "true or false"),
        ({"reader": ""}, "AuditEvent.agent[0].who", "non-empty string"),
        ({"custodian": None}, "AuditEvent.source.observer", "non-empty string"),
    ],
)
def test_audit_event_refuses(changes: dict[str, Any], path: str, problem: str) -> None:
    with pytest.raises(InvalidFhir) as caught:
        audit_event(access(**changes))
    assert caught.value.path == path
    assert problem in caught.value.problem


def test_audit_event_names_a_missing_key() -> None:
    event = access()
    del event["txid"]
    with pytest.raises(InvalidFhir, match="lacks 'txid'"):
        audit_event(event)


# --- Consent ------------------------------------------------------------------------


def test_active_consent_for_an_organisation() -> None:
    resource = valid(consent_resource(consent()))
    assert resource["id"] == "consent-17"
    assert resource["status"] == "active"
    assert resource["scope"]["coding"][0]["code"] == "patient-privacy"
    assert (
        resource["scope"]["coding"][0]["system"]
        == "http://terminology.hl7.org/CodeSystem/consentscope"
    )
    assert resource["category"][0]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "59284-0",
        "display": "Patient Consent",
    }
    assert resource["patient"] == {
        "identifier": {"system": "urn:carechain:patient", "value": "pt-7f3a"}
    }
    assert resource["dateTime"] == "2023-11-14T22:13:19.999Z"
    assert "policyRule" in resource  # R4 invariant ppc-1: a policy or a policy rule
    provision = resource["provision"]
    assert provision["type"] == "permit"
    assert provision["period"] == {
        "start": "2023-11-14T22:13:20.000Z",
        "end": "2024-11-13T22:13:20.000Z",
    }
    [actor] = provision["actor"]
    assert actor["role"]["coding"][0]["code"] == "IRCP"
    assert actor["role"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
    )
    assert actor["reference"] == {
        "identifier": {"system": "urn:carechain:org", "value": "shanghai-renji"},
        "type": "Organization",
    }
    assert [coding["code"] for coding in provision["purpose"]] == ["TREAT", "ETREAT"]
    assert provision["class"] == [
        {"system": "http://hl7.org/fhir/resource-types", "code": "Observation"},
        {"system": "http://hl7.org/fhir/resource-types", "code": "DiagnosticReport"},
    ]
    assert [concept["coding"][0]["code"] for concept in provision["code"]] == [
        "laboratory",
        "vital-signs",
    ]
    assert provision["data"] == [
        {
            "meaning": "instance",
            "reference": {"identifier": {"system": "urn:carechain:record", "value": "rec-0042"}},
        }
    ]


@pytest.mark.parametrize(
    ("status", "fhir_status"), [("revoked", "inactive"), ("expired", "inactive")]
)
def test_ended_consent_is_inactive(status: str, fhir_status: str) -> None:
    assert valid(consent_resource(consent(status=status)))["status"] == fhir_status


def test_consent_for_a_member_with_open_period_and_no_lists() -> None:
    resource = valid(
        consent_resource(
            consent(
                grantee="ab12cd34ef56",
                grantee_kind="member",
                purposes=[],
                types=[],
                categories=[],
                records=[],
                end_ms=None,
            )
        )
    )
    provision = resource["provision"]
    assert provision["actor"][0]["reference"] == {
        "identifier": {"system": "urn:carechain:member", "value": "ab12cd34ef56"}
    }
    assert provision["period"] == {"start": "2023-11-14T22:13:20.000Z"}
    for element in ("purpose", "class", "code", "data"):
        assert element not in provision  # FHIR JSON has no empty arrays


@pytest.mark.parametrize(
    ("changes", "path", "problem"),
    [
        ({"status": "paused"}, "Consent.status", "expected one of active, revoked, expired"),
        ({"grantee_kind": "group"}, "Consent.provision.actor", "org or member"),
        ({"purposes": ["marketing"]}, "Consent.provision.purpose", "unknown purpose"),
        ({"purposes": ["self"]}, "Consent.provision.purpose", "unknown purpose 'self'"),
        ({"types": ["observation"]}, "Consent.provision.class", "does not match"),
        ({"categories": ["vital signs"]}, "Consent.provision.code", "does not match"),
        ({"records": "rec-0042"}, "Consent.provision.data", "a list of strings"),
        ({"id": "consent 17"}, "Consent.id", "is not a FHIR id"),
        ({"start_ms": -5}, "Consent.provision.period.start", "integer milliseconds"),
    ],
)
def test_consent_refuses(changes: dict[str, Any], path: str, problem: str) -> None:
    with pytest.raises(InvalidFhir) as caught:
        consent_resource(consent(**changes))
    assert caught.value.path == path
    assert problem in caught.value.problem
