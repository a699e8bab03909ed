"""Required value-set bindings of FHIR R4, checked because the models do not.

fhir.resources checks that ``Observation.status`` is a code, not that it is
one of ObservationStatus's codes. A *required* binding means "the concept in
this element SHALL be from the specified value set"
(https://hl7.org/fhir/R4/terminologies.html#required). This module holds the
required bindings of the resources carechain handles, copied from each
resource's R4 page (Terminology Bindings table) and the value-set page cited
beside it, and checks a resource against them.

For a ``code`` element the code must be in the set. For a ``CodeableConcept``
bound to a set drawn from one code system, at least one coding must come from
that system, and every coding from that system must carry one of its codes.

Bindings inside data types (Quantity.comparator, Timing units, ...) are not
checked; contained resources are checked by their own type's bindings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from carechain.errors import InvalidFhir

R4 = "https://hl7.org/fhir/R4"


@dataclass(frozen=True)
class ValueSet:
    """A required value set: its name, its codes in the spec's order, and its code system."""

    name: str
    url: str  # the spec page listing the codes
    codes: tuple[str, ...]
    system: str | None = None  # needed where the element is a Coding or CodeableConcept
    members: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", frozenset(self.codes))

    def refuse(self, code: Any) -> str:
        """The problem text for a code outside the set (the code is shown, cut to 40 characters)."""
        listing = f"the required value set {self.name} ({', '.join(self.codes)})"
        if code is None:
            return f"no code given; it must be one of {listing}"
        shown = repr(code[:40]) if isinstance(code, str) else repr(code)
        return f"{shown} is not in {listing}"


def _vs(name: str, page: str, codes: str, system: str | None = None) -> ValueSet:
    return ValueSet(name, f"{R4}/{page}", tuple(codes.split()), system)


TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"

# --- the value sets, each from its R4 page ------------------------------------------
OBSERVATION_STATUS = _vs(
    "ObservationStatus",
    "valueset-observation-status.html",
    "registered preliminary final amended corrected cancelled entered-in-error unknown",
)
CONDITION_CLINICAL = _vs(
    "ConditionClinicalStatusCodes",
    "valueset-condition-clinical.html",
    "active recurrence relapse inactive remission resolved",
    f"{TERMINOLOGY}/condition-clinical",
)
CONDITION_VERIFICATION = _vs(
    "ConditionVerificationStatus",
    "valueset-condition-ver-status.html",
    "unconfirmed provisional differential confirmed refuted entered-in-error",
    f"{TERMINOLOGY}/condition-ver-status",
)
ALLERGY_CLINICAL = _vs(
    "AllergyIntoleranceClinicalStatusCodes",
    "valueset-allergyintolerance-clinical.html",
    "active inactive resolved",
    f"{TERMINOLOGY}/allergyintolerance-clinical",
)
ALLERGY_VERIFICATION = _vs(
    "AllergyIntoleranceVerificationStatusCodes",
    "valueset-allergyintolerance-verification.html",
    "unconfirmed confirmed refuted entered-in-error",
    f"{TERMINOLOGY}/allergyintolerance-verification",
)
ALLERGY_TYPE = _vs(
    "AllergyIntoleranceType", "valueset-allergy-intolerance-type.html", "allergy intolerance"
)
ALLERGY_CATEGORY = _vs(
    "AllergyIntoleranceCategory",
    "valueset-allergy-intolerance-category.html",
    "food medication environment biologic",
)
ALLERGY_CRITICALITY = _vs(
    "AllergyIntoleranceCriticality",
    "valueset-allergy-intolerance-criticality.html",
    "low high unable-to-assess",
)
REACTION_SEVERITY = _vs(
    "AllergyIntoleranceSeverity", "valueset-reaction-event-severity.html", "mild moderate severe"
)
DIAGNOSTIC_REPORT_STATUS = _vs(
    "DiagnosticReportStatus",
    "valueset-diagnostic-report-status.html",
    "registered partial preliminary final amended corrected appended cancelled "
    "entered-in-error unknown",
)
MEDICATION_REQUEST_STATUS = _vs(
    "medicationrequest Status",
    "valueset-medicationrequest-status.html",
    "active on-hold cancelled completed entered-in-error stopped draft unknown",
)
MEDICATION_REQUEST_INTENT = _vs(
    "medicationRequest Intent",
    "valueset-medicationrequest-intent.html",
    "proposal plan order original-order reflex-order filler-order instance-order option",
)
REQUEST_PRIORITY = _vs(
    "RequestPriority", "valueset-request-priority.html", "routine urgent asap stat"
)
IMMUNIZATION_STATUS = _vs(
    "ImmunizationStatusCodes",
    "valueset-immunization-status.html",
    "completed entered-in-error not-done",
)
ENCOUNTER_STATUS = _vs(
    "EncounterStatus",
    "valueset-encounter-status.html",
    "planned arrived triaged in-progress onleave finished cancelled entered-in-error unknown",
)
ENCOUNTER_LOCATION_STATUS = _vs(
    "EncounterLocationStatus",
    "valueset-encounter-location-status.html",
    "planned active reserved completed",
)
EVENT_STATUS = _vs(
    "EventStatus",
    "valueset-event-status.html",
    "preparation in-progress not-done on-hold stopped completed entered-in-error unknown",
)
BUNDLE_TYPE = _vs(
    "BundleType",
    "valueset-bundle-type.html",
    "document message transaction transaction-response batch batch-response history "
    "searchset collection",
)
HTTP_VERB = _vs("HTTPVerb", "valueset-http-verb.html", "GET HEAD POST PUT DELETE PATCH")
SEARCH_ENTRY_MODE = _vs(
    "SearchEntryMode", "valueset-search-entry-mode.html", "match include outcome"
)
CONSENT_STATE = _vs(
    "ConsentState",
    "valueset-consent-state-codes.html",
    "draft proposed active rejected inactive entered-in-error",
)
CONSENT_PROVISION_TYPE = _vs(
    "ConsentProvisionType", "valueset-consent-provision-type.html", "deny permit"
)
CONSENT_DATA_MEANING = _vs(
    "ConsentDataMeaning",
    "valueset-consent-data-meaning.html",
    "instance related dependents authoredby",
)
AUDIT_EVENT_ACTION = _vs("AuditEventAction", "valueset-audit-event-action.html", "C R U D E")
AUDIT_EVENT_OUTCOME = _vs("AuditEventOutcome", "valueset-audit-event-outcome.html", "0 4 8 12")
NETWORK_TYPE = _vs("AuditEventAgentNetworkType", "valueset-network-type.html", "1 2 3 4 5")
NARRATIVE_STATUS = _vs(
    "NarrativeStatus", "valueset-narrative-status.html", "generated extensions additional empty"
)

# --- where they are bound: element path ("[]" marks a repeating element) -> value set.
# Each resource's bindings are listed in the Terminology Bindings table of its page,
# e.g. https://hl7.org/fhir/R4/observation.html#tx.
BINDINGS: dict[str, tuple[tuple[str, ValueSet], ...]] = {
    "Observation": (("status", OBSERVATION_STATUS),),
    "Condition": (
        ("clinicalStatus", CONDITION_CLINICAL),
        ("verificationStatus", CONDITION_VERIFICATION),
    ),
    "AllergyIntolerance": (
        ("clinicalStatus", ALLERGY_CLINICAL),
        ("verificationStatus", ALLERGY_VERIFICATION),
        ("type", ALLERGY_TYPE),
        ("category[]", ALLERGY_CATEGORY),
        ("criticality", ALLERGY_CRITICALITY),
        ("reaction[].severity", REACTION_SEVERITY),
    ),
    "DiagnosticReport": (("status", DIAGNOSTIC_REPORT_STATUS),),
    "MedicationRequest": (
        ("status", MEDICATION_REQUEST_STATUS),
        ("intent", MEDICATION_REQUEST_INTENT),
        ("priority", REQUEST_PRIORITY),
    ),
    "Immunization": (("status", IMMUNIZATION_STATUS),),
    "Encounter": (
        ("status", ENCOUNTER_STATUS),
        ("statusHistory[].status", ENCOUNTER_STATUS),
        ("location[].status", ENCOUNTER_LOCATION_STATUS),
    ),
    "Procedure": (("status", EVENT_STATUS),),
    "Bundle": (
        ("type", BUNDLE_TYPE),
        ("entry[].request.method", HTTP_VERB),
        ("entry[].search.mode", SEARCH_ENTRY_MODE),
    ),
    "Consent": (
        ("status", CONSENT_STATE),
        ("provision.type", CONSENT_PROVISION_TYPE),
        ("provision.data[].meaning", CONSENT_DATA_MEANING),
    ),
    "AuditEvent": (
        ("action", AUDIT_EVENT_ACTION),
        ("outcome", AUDIT_EVENT_OUTCOME),
        ("agent[].network.type", NETWORK_TYPE),
    ),
}
# Narrative.status, on every DomainResource (https://hl7.org/fhir/R4/narrative.html#tx).
COMMON: tuple[tuple[str, ValueSet], ...] = (("text.status", NARRATIVE_STATUS),)


def check_bindings(resource: dict[str, Any], path: str) -> None:
    """Check ``resource`` (already structurally valid) against its required bindings.

    ``path`` names the resource (``Observation``, ``Bundle.entry[2].resource``).
    Contained resources are checked too.
    """
    name = resource.get("resourceType")
    for element, valueset in (*COMMON, *BINDINGS.get(str(name), ())):
        for value, where in _locate(resource, element.split("."), path):
            if isinstance(value, dict):
                _check_concept(value, valueset, where)
            elif value not in valueset.members:
                raise InvalidFhir(where, valueset.refuse(value))
    contained = resource.get("contained")
    if isinstance(contained, list):
        for index, inner in enumerate(contained):
            if isinstance(inner, dict):
                check_bindings(inner, f"{path}.contained[{index}]")


def _locate(node: Any, steps: list[str], path: str) -> Iterator[tuple[Any, str]]:
    if not steps:
        yield node, path
        return
    if not isinstance(node, dict):
        return
    step, rest = steps[0], steps[1:]
    name = step.removesuffix("[]")
    value = node.get(name)
    if value is None:
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _locate(item, rest, f"{path}.{name}[{index}]")
    else:
        yield from _locate(value, rest, f"{path}.{name}")


def _check_concept(concept: dict[str, Any], valueset: ValueSet, path: str) -> None:
    """A Coding (has ``code``) or a CodeableConcept (has ``coding``) under a required binding."""
    if "coding" not in concept and ("code" in concept or "system" in concept):
        codings = [(concept, path)]
    else:
        codings = [
            (coding, f"{path}.coding[{index}]")
            for index, coding in enumerate(concept.get("coding") or ())
        ]
    found = False
    for coding, where in codings:
        if coding.get("system") != valueset.system:
            continue
        code = coding.get("code")
        if code not in valueset.members:
            raise InvalidFhir(f"{where}.code", valueset.refuse(code))
        found = True
    if not found:
        raise InvalidFhir(
            path,
            f"has no coding from {valueset.system}, as the required value set "
            f"{valueset.name} needs ({', '.join(valueset.codes)})",
        )
