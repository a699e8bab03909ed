"""Clinical records as FHIR resources: parse and validate one, a Bundle of them, or build a Bundle.

Validating a resource runs four checks, each naming the first failing element:

1. JSON: one UTF-8 JSON object, no duplicate keys, within the size limit
   (``_json.load_object``);
2. FHIR JSON form: primitive kinds, arrays, no nulls or empty values, known
   elements (``shape.check_shape``);
3. the R4B model of its type: cardinality, required elements, choice types,
   formats of dates, ids, uris (``models.validate_model``);
4. required value-set bindings (``valuesets.check_bindings``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from carechain.errors import InvalidFhir
from carechain.standards.fhir._json import dump_compact, load_object
from carechain.standards.fhir._time import instant
from carechain.standards.fhir.models import resource_class, validate_model
from carechain.standards.fhir.shape import check_shape
from carechain.standards.fhir.valuesets import check_bindings

RECORD_TYPES: tuple[str, ...] = (
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "DiagnosticReport",
    "MedicationRequest",
    "Immunization",
    "Encounter",
    "Procedure",
)
"""The resource types a clinician may add as one record."""

CATEGORY_PATTERN: re.Pattern[str] = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""What a category code on the chain may look like (use ``fullmatch``)."""

MAX_RESOURCE_BYTES = 1_048_576
"""Default size limit of one resource, and the limit of each record taken from a Bundle."""

MAX_BUNDLE_BYTES = 64 * 1_048_576
"""Size limit of a whole Bundle given to ``parse_bundle``."""

BUNDLE_TYPES_PARSED = ("collection", "transaction", "batch", "document", "searchset")
"""Bundle types whose entries ``parse_bundle`` takes as records."""

BUNDLE_TYPES_MADE = ("collection", "searchset")
"""Bundle types ``make_bundle`` writes."""


@dataclass(frozen=True)
class ParsedResource:
    """A validated FHIR resource and what the chain records about it."""

    resource_type: str  # e.g. "Observation"
    category: str  # one code for the chain; always matches CATEGORY_PATTERN
    raw: bytes  # the exact UTF-8 bytes (of a Bundle entry: its compact re-encoding)
    resource: dict[str, Any]  # the parsed JSON (decimals as float)
    resource_id: str | None  # resource.id, if present
    subject: str | None  # subject.reference or patient.reference, if any


def parse_resource(
    data: bytes | str,
    *,
    allowed: Iterable[str] = RECORD_TYPES,
    max_bytes: int = MAX_RESOURCE_BYTES,
) -> ParsedResource:
    """Parse and validate one FHIR R4 resource (validated with the R4B models).

    ``raw`` of the result is ``data`` exactly (UTF-8 encoded if given as text),
    never re-serialised. Raises ``InvalidFhir`` naming the failing element path,
    e.g. ``Observation.code.coding[0].system``.
    """
    raw, resource = load_object(data, max_bytes=max_bytes)
    name = _resource_type(resource, _names(allowed), "")
    validate(resource, name)
    return _parsed(name, raw, resource)


def parse_bundle(
    data: bytes | str,
    *,
    allowed: Iterable[str] = RECORD_TYPES,
    max_entries: int = 1000,
) -> list[ParsedResource]:
    """Parse a Bundle of records; one ``ParsedResource`` per ``entry[].resource``, in order.

    The Bundle's type must be one of ``BUNDLE_TYPES_PARSED``; every entry must
    carry a resource of an ``allowed`` type; it must hold 1 to ``max_entries``
    entries. Each entry's ``raw`` is its resource re-encoded as compact JSON
    (``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` in UTF-8)
    with every number written exactly as it was given (``1.50`` stays ``1.50``),
    and must fit ``MAX_RESOURCE_BYTES``. Errors name the path inside the bundle,
    e.g. ``Bundle.entry[2].resource.status``.
    """
    _, bundle = load_object(data, max_bytes=MAX_BUNDLE_BYTES, exact_decimals=True)
    kind = bundle.get("resourceType")
    if kind != "Bundle":
        raise InvalidFhir("resourceType", f"expected a Bundle, not {_shown(kind)}")
    bundle_type = bundle.get("type")
    if bundle_type is None:
        raise InvalidFhir("Bundle.type", "required element is missing")
    if bundle_type not in BUNDLE_TYPES_PARSED:
        raise InvalidFhir(
            "Bundle.type",
            f"{_shown(bundle_type)} bundles do not carry records here; "
            f"expected one of {', '.join(BUNDLE_TYPES_PARSED)}",
        )
    entries = bundle.get("entry")
    if not entries:
        raise InvalidFhir("Bundle.entry", "the bundle holds no entries; at least one is needed")
    if not isinstance(entries, list):
        raise InvalidFhir("Bundle.entry", "repeats, so it must be a JSON array")
    if len(entries) > max_entries:
        raise InvalidFhir("Bundle.entry", f"{len(entries):,} entries; the limit is {max_entries:,}")

    names = _names(allowed)
    kinds = []
    for index, entry in enumerate(entries):
        where = f"Bundle.entry[{index}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise InvalidFhir(f"{where}.resource", "required element is missing (a record)")
        kinds.append(_resource_type(resource, names, f"{where}.resource"))

    validate(bundle, "Bundle")  # the whole bundle, entries included, in one model pass

    parsed = []
    for index, (entry, name) in enumerate(zip(entries, kinds, strict=True)):
        where = f"Bundle.entry[{index}].resource"
        check_bindings(entry["resource"], where)
        raw = dump_compact(entry["resource"])
        if len(raw) > MAX_RESOURCE_BYTES:
            raise InvalidFhir(
                where, f"record is {len(raw):,} bytes; the limit is {MAX_RESOURCE_BYTES:,}"
            )
        parsed.append(_parsed(name, raw, load_object(raw, max_bytes=None)[1]))  # as parse_resource
    return parsed


def make_bundle(
    resources: Sequence[bytes],
    bundle_type: str = "collection",
    timestamp_ms: int | None = None,
) -> bytes:
    """A FHIR Bundle (UTF-8 JSON bytes) whose entries are ``resources``' bytes spliced in.

    The resources are not re-encoded, so every digit survives; each must be one
    JSON object naming its ``resourceType`` (they are not validated again: pass
    records that ``parse_resource`` accepted). ``bundle_type`` is ``collection``
    or ``searchset`` (which adds ``total`` and ``search.mode = match``);
    ``timestamp_ms`` becomes ``Bundle.timestamp``. Any non-empty result parses
    back with ``parse_bundle`` given the same resource types.
    """
    if bundle_type not in BUNDLE_TYPES_MADE:
        raise InvalidFhir(
            "Bundle.type", f"{_shown(bundle_type)}: expected one of {', '.join(BUNDLE_TYPES_MADE)}"
        )
    head: dict[str, Any] = {"resourceType": "Bundle", "type": bundle_type}
    if timestamp_ms is not None:
        head["timestamp"] = instant(timestamp_ms, "Bundle.timestamp")
    if bundle_type == "searchset":
        head["total"] = len(resources)
    tail = b',"search":{"mode":"match"}}' if bundle_type == "searchset" else b"}"
    parts = [dump_compact(head)[:-1]]
    if resources:
        parts.append(b',"entry":[')
        for index, resource in enumerate(resources):
            if index:
                parts.append(b",")
            parts += (b'{"resource":', _spliceable(resource, index), tail)
        parts.append(b"]")
    parts.append(b"}")
    return b"".join(parts)


def validate(resource: dict[str, Any], name: str, root: str | None = None) -> None:
    """Run checks 2 to 4 on a parsed resource of type ``name``; ``root`` names it in errors."""
    model = resource_class(name)
    if model is None:
        where = f"{root}.resourceType" if root else "resourceType"
        raise InvalidFhir(where, f"{_shown(name)} is not an R4 resource type")
    path = root or name
    check_shape(resource, model, path)
    validate_model(model, resource, path)
    check_bindings(resource, path)


CHAIN_CATEGORIES: dict[str, frozenset[str]] = {
    # http://hl7.org/fhir/R4/valueset-observation-category.html
    "Observation": frozenset(
        {
            "social-history",
            "vital-signs",
            "imaging",
            "laboratory",
            "procedure",
            "survey",
            "exam",
            "therapy",
            "activity",
        }
    ),
    # http://hl7.org/fhir/R4/valueset-condition-category.html
    "Condition": frozenset({"problem-list-item", "encounter-diagnosis"}),
    # http://hl7.org/fhir/R4/valueset-allergy-intolerance-category.html
    "AllergyIntolerance": frozenset({"food", "medication", "environment", "biologic"}),
    # http://hl7.org/fhir/R4/v2/0074/index.html: the two broad service sections only
    "DiagnosticReport": frozenset({"LAB", "RAD"}),
    # http://hl7.org/fhir/R4/valueset-medicationrequest-category.html
    "MedicationRequest": frozenset({"inpatient", "outpatient", "community", "discharge"}),
    # http://hl7.org/fhir/R4/v3/ActEncounterCode/vs.html
    "Encounter": frozenset(
        {"AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR"}
    ),
    # http://hl7.org/fhir/R4/valueset-procedure-category.html: surgical, diagnostic
    "Procedure": frozenset({"387713003", "103693007"}),
}
"""The category codes the chain may carry, per resource type: coarse, standard
classes only. Any other code (an ICD-10 chapter, a SNOMED finding, a
psychiatry procedure class) would tell the chain what the record says."""


def chain_category(resource_type: str, resource: dict[str, Any]) -> str:
    """The one category code the chain records for a resource.

    The first ``category[].coding[].code`` (``category[]`` itself where the
    categories are codes, as in AllergyIntolerance); else, for an Encounter,
    ``class.code``; kept only if it is one of ``CHAIN_CATEGORIES`` for the
    type, else the resource type in lower case (``"condition"``).
    """
    code = _first_category_code(resource.get("category"))
    if code is None and resource_type == "Encounter":
        klass = resource.get("class")
        code = klass.get("code") if isinstance(klass, dict) else None
    if isinstance(code, str) and code in CHAIN_CATEGORIES.get(resource_type, ()):
        return code
    return resource_type.lower()


def _first_category_code(category: Any) -> Any:
    items = category if isinstance(category, list) else [category] if category else []
    for item in items:
        if isinstance(item, str):
            return item
        if isinstance(item, dict):
            for coding in item.get("coding") or ():
                if isinstance(coding, dict) and "code" in coding:
                    return coding["code"]
    return None


def _subject(resource: dict[str, Any]) -> str | None:
    for name in ("subject", "patient"):
        reference = resource.get(name)
        if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
            return str(reference["reference"])
    return None


def _parsed(name: str, raw: bytes, resource: dict[str, Any]) -> ParsedResource:
    resource_id = resource.get("id")
    return ParsedResource(
        resource_type=name,
        category=chain_category(name, resource),
        raw=raw,
        resource=resource,
        resource_id=resource_id if isinstance(resource_id, str) else None,
        subject=_subject(resource),
    )


def _names(allowed: Iterable[str]) -> tuple[str, ...]:
    return (allowed,) if isinstance(allowed, str) else tuple(allowed)


def _resource_type(resource: dict[str, Any], allowed: tuple[str, ...], where: str) -> str:
    path = f"{where}.resourceType" if where else "resourceType"
    name = resource.get("resourceType")
    if not isinstance(name, str):
        raise InvalidFhir(path, "required element is missing (a resource names its type)")
    if name not in allowed:
        raise InvalidFhir(
            path, f"{_shown(name)} is not allowed here; allowed: {', '.join(allowed) or 'none'}"
        )
    return name


def _spliceable(resource: bytes, index: int) -> bytes:
    if not isinstance(resource, bytes | bytearray | memoryview):
        raise InvalidFhir(f"Bundle.entry[{index}].resource", "must be JSON bytes")
    try:
        raw, parsed = load_object(resource, max_bytes=None)
    except InvalidFhir as exc:
        raise InvalidFhir(f"Bundle.entry[{index}].resource", exc.problem) from exc
    if not isinstance(parsed.get("resourceType"), str):
        raise InvalidFhir(
            f"Bundle.entry[{index}].resource.resourceType", "required element is missing"
        )
    return raw


def _shown(value: Any) -> str:
    return repr(value[:64]) if isinstance(value, str) else repr(value)
