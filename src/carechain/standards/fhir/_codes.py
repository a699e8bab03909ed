"""Codes and identifier systems shared by the AuditEvent and Consent mappings."""

from __future__ import annotations

import re
from typing import Any

from carechain.errors import InvalidFhir

# Identifier systems for carechain's own names (URNs: no registry to resolve them).
MEMBER = "urn:carechain:member"  # a member's certificate fingerprint
ORG = "urn:carechain:org"  # an organisation id
PATIENT = "urn:carechain:patient"  # a pseudonymous patient id
RECORD = "urn:carechain:record"  # a record id
TRANSACTION = "urn:carechain:tx"  # a transaction id
CATEGORY = "urn:carechain:category"  # a chain category code (CATEGORY_PATTERN)

# http://terminology.hl7.org/CodeSystem/v3-ActReason (purpose of use;
# https://terminology.hl7.org/CodeSystem-v3-ActReason.html).
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PURPOSES: dict[str, tuple[str, str]] = {
    "treatment": ("TREAT", "treatment"),
    "payment": ("HPAYMT", "healthcare payment"),
    "research": ("HRESCH", "healthcare research"),
    "emergency": ("ETREAT", "Emergency Treatment"),
}
# A patient reading their own records (the chain's read purpose "self"): audit only.
READ_PURPOSES: dict[str, tuple[str, str]] = {**PURPOSES, "self": ("PATRQT", "patient requested")}
BREAK_THE_GLASS = ("BTG", "break the glass")

# http://terminology.hl7.org/CodeSystem/v3-ParticipationType
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
RECIPIENT = ("IRCP", "information recipient")
CUSTODIAN = ("CST", "custodian")


def coding(system: str, code_display: tuple[str, str]) -> dict[str, str]:
    code, display = code_display
    return {"system": system, "code": code, "display": display}


def identifier(system: str, value: Any, path: str) -> dict[str, str]:
    """``{"system": ..., "value": ...}``; FHIR strings are never empty."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidFhir(path, f"must be a non-empty string, not {value!r}")
    return {"system": system, "value": value}


def purpose(name: Any, path: str, *, read: bool = False) -> dict[str, str]:
    """A carechain purpose as a v3-ActReason Coding.

    treatment, payment, research and emergency; for a read (``read=True``) also
    ``self``, a patient reading their own records.
    """
    known = READ_PURPOSES if read else PURPOSES
    if not isinstance(name, str) or name not in known:
        raise InvalidFhir(path, f"unknown purpose {name!r}; expected one of {', '.join(known)}")
    return coding(ACT_REASON, known[name])


_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def resource_id(value: Any, path: str) -> str:
    """A FHIR id (https://hl7.org/fhir/R4/datatypes.html#id): 1 to 64 of A-Z a-z 0-9 - ."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidFhir(path, f"{value!r} is not a FHIR id (1 to 64 of A-Z, a-z, 0-9, '-', '.')")
    return value


def field(mapping: Any, key: str, path: str) -> Any:
    """``mapping[key]``, or ``InvalidFhir`` naming the missing key."""
    try:
        return mapping[key]
    except (KeyError, TypeError) as exc:
        raise InvalidFhir(path, f"the chain's {path.split('.')[0]} mapping lacks {key!r}") from exc
