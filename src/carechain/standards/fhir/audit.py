"""An on-chain access event as a FHIR R4 AuditEvent (https://hl7.org/fhir/R4/auditevent.html).

Every read of a record, granted or refused, is recorded on the chain; this
module exports such an event in the form audit repositories and regulators
read. The mapping, element by element:

============================  ====================================================
AuditEvent                    from the access event
============================  ====================================================
id                            ``id`` (must be a FHIR id)
type                          DICOM 110110 "Patient Record"
subtype                       restful-interaction ``read`` (a record), else
                              ``search-type`` (a listing of one type) or ``search``
action                        ``R`` (read)
recorded                      ``time_ms`` as a UTC instant, milliseconds, ``Z``
outcome, outcomeDesc          ``granted`` -> ``0``; ``refused`` -> ``4`` (minor
                              failure); ``reason`` when not empty
purposeOfEvent                ``purpose`` as v3-ActReason: treatment TREAT, payment
                              HPAYMT, research HRESCH, emergency ETREAT, and self
                              (a patient reading their own records) PATRQT;
                              ``BTG`` added for ``break_glass``, with the reason
                              as its text
agent[0]                      the reader: who.identifier = urn:carechain:member
                              ``reader``, assigned by urn:carechain:org
                              ``reader_org``; role text ``reader_role``; type
                              IRCP (information recipient); requestor true
agent[1]                      the custodian organisation: type CST (custodian);
                              who.identifier = urn:carechain:org ``custodian``
source.observer               urn:carechain:org ``custodian``
entity                        the record (urn:carechain:record ``record``, its
                              type ``resource_type``) unless a listing; the
                              patient (urn:carechain:patient ``patient``); the
                              transaction that recorded it (urn:carechain:tx
                              ``txid``)
============================  ====================================================

The result has no extensions and validates with the R4B AuditEvent model
(R4B keeps R4's AuditEvent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carechain.errors import InvalidFhir
from carechain.standards.fhir._codes import (
    ACT_REASON,
    BREAK_THE_GLASS,
    CUSTODIAN,
    MEMBER,
    ORG,
    PARTICIPATION,
    PATIENT,
    RECIPIENT,
    RECORD,
    TRANSACTION,
    coding,
    field,
    identifier,
    purpose,
    resource_id,
)
from carechain.standards.fhir._time import instant

DCM = "http://dicom.nema.org/resources/ontology/DCM"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
OUTCOMES = {"granted": "0", "refused": "4"}  # audit-event-outcome: success, minor failure


def audit_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The FHIR R4 AuditEvent (a JSON dict) of one on-chain access event; see the module table."""

    def get(key: str, element: str) -> Any:
        return field(event, key, f"AuditEvent.{element}")

    record = get("record", "entity")
    resource_type = get("resource_type", "entity")
    reason = get("reason", "outcomeDesc")
    if not isinstance(reason, str):
        raise InvalidFhir("AuditEvent.outcomeDesc", f"reason must be a string, not {reason!r}")
    outcome = get("outcome", "outcome")
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise InvalidFhir("AuditEvent.outcome", f"expected granted or refused, not {outcome!r}")
    break_glass = get("break_glass", "purposeOfEvent")
    if not isinstance(break_glass, bool):
        raise InvalidFhir("AuditEvent.purposeOfEvent", "break_glass must be true or false")

    purposes: list[dict[str, Any]] = [
        {
            "coding": [
                purpose(get("purpose", "purposeOfEvent"), "AuditEvent.purposeOfEvent", read=True)
            ]
        }
    ]
    if break_glass:
        stated: dict[str, Any] = {"coding": [coding(ACT_REASON, BREAK_THE_GLASS)]}
        if reason.strip():
            stated["text"] = reason
        purposes.append(stated)

    if record is not None:
        interaction = ("read", "read")
    elif resource_type is not None:
        interaction = ("search-type", "search-type")
    else:
        interaction = ("search", "search")

    reader: dict[str, Any] = {
        "type": {"coding": [coding(PARTICIPATION, RECIPIENT)]},
        "who": {
            "identifier": {
                **identifier(MEMBER, get("reader", "agent"), "AuditEvent.agent[0].who"),
                "assigner": {
                    "identifier": identifier(
                        ORG, get("reader_org", "agent"), "AuditEvent.agent[0].who"
                    )
                },
            }
        },
        "requestor": True,
    }
    role = get("reader_role", "agent")
    if isinstance(role, str) and role.strip():
        reader["role"] = [{"text": role}]
    custodian = identifier(ORG, get("custodian", "source"), "AuditEvent.source.observer")

    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": resource_id(get("id", "id"), "AuditEvent.id"),
        "type": {"system": DCM, "code": "110110", "display": "Patient Record"},
        "subtype": [coding(RESTFUL, interaction)],
        "action": "R",
        "recorded": instant(get("time_ms", "recorded"), "AuditEvent.recorded"),
        "outcome": OUTCOMES[outcome],
    }
    if reason.strip():
        resource["outcomeDesc"] = reason
    resource["purposeOfEvent"] = purposes
    resource["agent"] = [
        reader,
        {
            "type": {"coding": [coding(PARTICIPATION, CUSTODIAN)]},
            "who": {"identifier": dict(custodian)},
            "requestor": False,
        },
    ]
    resource["source"] = {
        "observer": {"identifier": dict(custodian)},
        "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
    }
    resource["entity"] = _entities(event, record, resource_type)
    return resource


def _entities(event: Mapping[str, Any], record: Any, resource_type: Any) -> list[dict[str, Any]]:
    if resource_type is not None and not isinstance(resource_type, str):
        raise InvalidFhir(
            "AuditEvent.entity", f"resource_type must be a string, not {resource_type!r}"
        )
    entities: list[dict[str, Any]] = []
    if record is not None:
        what: dict[str, Any] = {"identifier": identifier(RECORD, record, "AuditEvent.entity")}
        if resource_type:
            what["type"] = resource_type
        entities.append(
            {
                "what": what,
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            }
        )
    patient: dict[str, Any] = {
        "what": {
            "type": "Patient",
            "identifier": identifier(
                PATIENT, field(event, "patient", "AuditEvent.entity"), "AuditEvent.entity"
            ),
        },
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    }
    if record is None and resource_type:
        patient["detail"] = [{"type": "resourceType", "valueString": resource_type}]
    entities.append(patient)
    txid = field(event, "txid", "AuditEvent.entity")
    entities.append(
        {
            "what": {"identifier": identifier(TRANSACTION, txid, "AuditEvent.entity")},
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "description": "the carechain transaction that recorded this access",
        }
    )
    return entities
