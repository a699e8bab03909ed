"""FHIR R4 records: a pure codec and validator (no storage, no network).

carechain speaks FHIR R4 (ARCHITECTURE.md, "China first, standards
everywhere"). Resources are validated with the **R4B** models of the
``fhir.resources`` library (``fhir.resources.R4B``, FHIR 4.3.0): the library
ships R4B and R5 but not R4, and R4B keeps R4's shape for every resource used
here (Observation, Condition, AllergyIntolerance, DiagnosticReport,
MedicationRequest, Immunization, Encounter, Procedure, Bundle, AuditEvent,
Consent). On top of the models this package enforces what they let through:
the FHIR JSON rules (``shape``) and the required value-set bindings of R4
(``valuesets``). Model modules are imported on first use of their type.

What callers may rely on:

* ``parse_resource`` and ``parse_bundle`` either return ``ParsedResource``
  values or raise ``carechain.errors.InvalidFhir(path, problem)``, where
  ``path`` is a FHIR element path (``Observation.code.coding[0].system``,
  ``Bundle.entry[2].resource.status``; ``resourceType`` for the type itself;
  empty for input that is not one JSON object). Problems never echo free text
  from the resource; value-set errors show the offending code.
* ``ParsedResource.raw`` of ``parse_resource`` is the given bytes exactly;
  ``parse_bundle`` re-encodes each entry compactly but keeps every number's
  digits, and ``make_bundle`` splices bytes without re-encoding them.
* ``ParsedResource.category`` always matches ``CATEGORY_PATTERN``: the first
  ``category[].coding[].code`` (for AllergyIntolerance, whose categories are
  codes, the first ``category[]``); else, for an Encounter, ``class.code``;
  kept only if it is one of the coarse standard classes in
  ``resources.CHAIN_CATEGORIES`` for its type; else the resource type in lower
  case (``"immunization"``), so that no clinical code reaches the chain.
* ``ParsedResource.subject`` is ``subject.reference`` or, for resources that
  name a ``patient`` instead (AllergyIntolerance, Immunization),
  ``patient.reference``; else None.
* ``audit_event`` and ``consent_resource`` build R4 AuditEvent and Consent
  dicts that pass ``parse_resource(..., allowed=("AuditEvent",))`` (and
  ``"Consent"``) and the R4B models.
"""

from __future__ import annotations

from carechain.standards.fhir.audit import audit_event
from carechain.standards.fhir.consent import consent_resource
from carechain.standards.fhir.resources import (
    CATEGORY_PATTERN,
    RECORD_TYPES,
    ParsedResource,
    make_bundle,
    parse_bundle,
    parse_resource,
)

__all__ = [
    "CATEGORY_PATTERN",
    "RECORD_TYPES",
    "ParsedResource",
    "audit_event",
    "consent_resource",
    "make_bundle",
    "parse_bundle",
    "parse_resource",
]
