"""An on-chain consent as a FHIR R4 Consent (https://hl7.org/fhir/R4/consent.html).

The mapping, element by element:

==========================  =========================================================
Consent                     from the chain's consent
==========================  =========================================================
id                          ``id`` (must be a FHIR id)
status                      ``active`` -> active; ``revoked``, ``expired`` -> inactive
scope                       consentscope ``patient-privacy``
category                    LOINC 59284-0 "Patient Consent"
patient                     identifier urn:carechain:patient ``patient``
dateTime                    ``granted_ms`` as a UTC instant
policyRule                  v3-ActCode ``OPTIN`` (R4 invariant ppc-1 needs a policy
                            or a policy rule: the patient opted in to this sharing)
provision.type              ``permit``
provision.period            ``start_ms`` .. ``end_ms`` (either may be None: open)
provision.actor             role v3-ParticipationType IRCP (information recipient);
                            reference.identifier urn:carechain:org or
                            urn:carechain:member ``grantee`` (by ``grantee_kind``)
provision.purpose           ``purposes`` as v3-ActReason (TREAT, HPAYMT, HRESCH, ETREAT)
provision.class             ``types`` as http://hl7.org/fhir/resource-types codes
provision.code              ``categories`` as urn:carechain:category codes
provision.data              ``records``: meaning ``instance``, reference.identifier
                            urn:carechain:record
==========================  =========================================================

Empty lists leave their element out (FHIR JSON has no empty arrays). The
result has no extensions and validates with the R4B Consent model (R4B keeps
R4's Consent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from carechain.errors import InvalidFhir
from carechain.standards.fhir._codes import (
    CATEGORY,
    MEMBER,
    ORG,
    PARTICIPATION,
    PATIENT,
    RECIPIENT,
    RECORD,
    coding,
    field,
    identifier,
    purpose,
    resource_id,
)
from carechain.standards.fhir._time import instant
from carechain.standards.fhir.resources import CATEGORY_PATTERN

STATUSES = {"active": "active", "revoked": "inactive", "expired": "inactive"}
GRANTEES = {"org": (ORG, "Organization"), "member": (MEMBER, None)}
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


def consent_resource(consent: Mapping[str, Any]) -> dict[str, Any]:
    """The FHIR R4 Consent (a JSON dict) of one on-chain consent; see the module table."""

    def get(key: str, element: str) -> Any:
        return field(consent, key, f"Consent.{element}")

    status = get("status", "status")
    if not isinstance(status, str) or status not in STATUSES:
        raise InvalidFhir(
            "Consent.status", f"expected one of {', '.join(STATUSES)}, not {status!r}"
        )
    kind = get("grantee_kind", "provision.actor")
    if not isinstance(kind, str) or kind not in GRANTEES:
        raise InvalidFhir(
            "Consent.provision.actor", f"grantee_kind must be org or member, not {kind!r}"
        )
    system, target_type = GRANTEES[kind]
    reference: dict[str, Any] = {
        "identifier": identifier(
            system, get("grantee", "provision.actor"), "Consent.provision.actor"
        )
    }
    if target_type:
        reference["type"] = target_type

    provision: dict[str, Any] = {"type": "permit"}
    period = {}
    for key, end in (("start_ms", "start"), ("end_ms", "end")):
        value = get(key, "provision.period")
        if value is not None:
            period[end] = instant(value, f"Consent.provision.period.{end}")
    if period:
        provision["period"] = period
    provision["actor"] = [
        {"role": {"coding": [coding(PARTICIPATION, RECIPIENT)]}, "reference": reference}
    ]
    purposes = [
        purpose(name, "Consent.provision.purpose")
        for name in _strings(get("purposes", "provision.purpose"), "Consent.provision.purpose")
    ]
    classes = [
        {
            "system": RESOURCE_TYPES,
            "code": _checked(name, _RESOURCE_TYPE, "Consent.provision.class"),
        }
        for name in _strings(get("types", "provision.class"), "Consent.provision.class")
    ]
    codes = [
        {
            "coding": [
                {
                    "system": CATEGORY,
                    "code": _checked(code, CATEGORY_PATTERN, "Consent.provision.code"),
                }
            ]
        }
        for code in _strings(get("categories", "provision.code"), "Consent.provision.code")
    ]
    data = [
        {
            "meaning": "instance",
            "reference": {"identifier": identifier(RECORD, record, "Consent.provision.data")},
        }
        for record in _strings(get("records", "provision.data"), "Consent.provision.data")
    ]
    for element, items in (
        ("purpose", purposes),
        ("class", classes),
        ("code", codes),
        ("data", data),
    ):
        if items:
            provision[element] = items

    return {
        "resourceType": "Consent",
        "id": resource_id(get("id", "id"), "Consent.id"),
        "status": STATUSES[status],
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                    "display": "Privacy Consent",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
                ]
            }
        ],
        "patient": {
            "identifier": identifier(PATIENT, get("patient", "patient"), "Consent.patient")
        },
        "dateTime": instant(get("granted_ms", "dateTime"), "Consent.dateTime"),
        "policyRule": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "OPTIN",
                    "display": "opt-in",
                }
            ]
        },
        "provision": provision,
    }


def _strings(values: Any, path: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise InvalidFhir(path, f"expected a list of strings, not {values!r}")
    for value in values:
        if not isinstance(value, str):
            raise InvalidFhir(path, f"expected a list of strings; {value!r} is not one")
    return list(values)


def _checked(value: str, pattern: re.Pattern[str], path: str) -> str:
    if not pattern.fullmatch(value):
        raise InvalidFhir(path, f"{value[:64]!r} does not match {pattern.pattern}")
    return value
