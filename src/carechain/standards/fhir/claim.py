"""FHIR R4 Claim, Coverage and ClaimResponse for the claims contract.

A provider's FHIR R4 Claim is validated like any record (R4B models, R4 JSON
rules, required bindings) and turned into the arguments of ``claims.submit``:
only what adjudication needs reaches the chain (the patient's pseudonymous id,
the coverage, each item's code, day, quantity and net amount in minor units,
and its evidence), never ``diagnosis``, ``supportingInfo`` or notes. The whole
resource is fingerprinted with a key only its provider holds (HMAC-SHA256), so
the fingerprint proves which Claim was submitted without revealing it, and the
same Claim always gives the same fingerprint (a resubmission is recognised).

How a Claim names what carechain needs (identifiers, since carechain's ids do
not fit FHIR's ``id`` type):

* ``patient.identifier``: system ``urn:carechain:patient``, value ``org:member``;
* ``insurance[focal].coverage``: ``identifier`` system ``urn:carechain:coverage``
  or ``reference`` ``Coverage/cov-...``;
* ``item.productOrService.coding``: a GS1 GTIN (system
  ``https://www.gs1.org/gtin``) or a 药品标识码 (system ``urn:carechain:cn-drug``)
  makes a drug line; any other coding is a service code;
* ``item.encounter[].identifier``: system ``urn:carechain:record``, the record of
  the encounter or procedure;
* ``item.extension``: ``urn:carechain:fhir:dispensed-pack`` (valueIdentifier:
  the pack key or any scanned code) or ``urn:carechain:fhir:legacy-lot``
  (valueString: a lot of stock bought before the NHSA trace rule);
* ``item.net`` (or ``unitPrice`` x ``quantity``): ``Money`` in one currency.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from carechain.errors import InvalidFhir, InvalidInput
from carechain.standards.fhir._json import load_object
from carechain.standards.fhir.resources import MAX_RESOURCE_BYTES, validate
from carechain.standards.gs1 import normalise_gtin, parse_pack_code
from carechain.standards.iso4217 import currency as iso_currency
from carechain.standards.iso4217 import parse_amount

PATIENT_SYSTEM = "urn:carechain:patient"
COVERAGE_SYSTEM = "urn:carechain:coverage"
RECORD_SYSTEM = "urn:carechain:record"
GTIN_SYSTEM = "https://www.gs1.org/gtin"
CN_DRUG_SYSTEM = "urn:carechain:cn-drug"
PACK_EXTENSION = "urn:carechain:fhir:dispensed-pack"
LEGACY_EXTENSION = "urn:carechain:fhir:legacy-lot"
ORG_SYSTEM = "urn:carechain:org"


def fingerprint_key(private_key: bytes) -> bytes:
    """The provider's fingerprint key, derived from its member key (never leaves it)."""
    return hashlib.sha256(b"carechain/claim-fingerprint/v1\x00" + private_key).digest()


def _identifier(value: Any, system: str, path: str) -> str | None:
    if not isinstance(value, dict):
        return None
    ident = value.get("identifier")
    if isinstance(ident, dict) and ident.get("system") == system:
        text = ident.get("value")
        if not isinstance(text, str):
            raise InvalidFhir(f"{path}.identifier.value", "must be text")
        return text
    return None


def _money(money: Any, path: str) -> tuple[Decimal, str]:
    if not isinstance(money, dict) or "value" not in money or "currency" not in money:
        raise InvalidFhir(path, "needs a value and a currency")
    try:
        code = iso_currency(money["currency"]).code
    except InvalidInput as exc:
        raise InvalidFhir(f"{path}.currency", exc.message) from None
    return Decimal(str(money["value"])), code


def claim_submission(data: bytes | str, key: bytes, claim_id: str) -> dict[str, Any]:
    """The ``claims.submit`` arguments for a FHIR R4 Claim, or ``InvalidFhir`` naming the
    element that is wrong."""
    raw, resource = load_object(data, max_bytes=MAX_RESOURCE_BYTES, exact_decimals=True)
    if resource.get("resourceType") != "Claim":
        raise InvalidFhir("resourceType", f"expected a Claim, not {resource.get('resourceType')!r}")
    _, plain = load_object(raw, max_bytes=MAX_RESOURCE_BYTES)
    validate(plain, "Claim")
    if resource.get("status") != "active":
        raise InvalidFhir("Claim.status", "only an active claim is submitted")
    if resource.get("use") != "claim":
        raise InvalidFhir("Claim.use", f"{resource.get('use')!r}: only use 'claim' is paid")
    patient = _identifier(resource.get("patient"), PATIENT_SYSTEM, "Claim.patient")
    if patient is None:
        raise InvalidFhir("Claim.patient", f"needs an identifier of system {PATIENT_SYSTEM}")
    coverage = None
    for index, insurance in enumerate(resource.get("insurance", [])):
        if insurance.get("focal"):
            where = f"Claim.insurance[{index}].coverage"
            ref = insurance.get("coverage", {})
            coverage = _identifier(ref, COVERAGE_SYSTEM, where)
            reference = ref.get("reference", "")
            if coverage is None and reference.startswith("Coverage/"):
                coverage = reference.removeprefix("Coverage/")
            if coverage is None:
                raise InvalidFhir(
                    where, f"needs Coverage/cov-... or a {COVERAGE_SYSTEM} identifier"
                )
    if coverage is None:
        raise InvalidFhir("Claim.insurance", "no focal insurance names the coverage")
    currencies: set[str] = set()
    lines = []
    for index, item in enumerate(resource.get("item", [])):
        path = f"Claim.item[{index}]"
        codings = item.get("productOrService", {}).get("coding", [])
        if not codings or "code" not in codings[0]:
            raise InvalidFhir(f"{path}.productOrService", "needs a coding with a code")
        coding = codings[0]
        system, code = coding.get("system"), coding["code"]
        line: dict[str, Any] = {"seq": item["sequence"]}
        if system == GTIN_SYSTEM:
            try:
                line.update(kind="drug", code=normalise_gtin(code))
            except InvalidInput as exc:
                raise InvalidFhir(f"{path}.productOrService.coding[0].code", exc.message) from None
        elif system == CN_DRUG_SYSTEM:
            line.update(kind="drug", code=f"cn:{code}")
        else:
            line.update(kind="service", code=code)
        day = item.get("servicedDate")
        if not isinstance(day, str) or len(day) != 10:
            raise InvalidFhir(f"{path}.servicedDate", "each item needs a servicedDate (a day)")
        line["day"] = day
        quantity = item.get("quantity", {}).get("value", 1)
        if not isinstance(quantity, int) or quantity < 1:
            raise InvalidFhir(f"{path}.quantity.value", "must be a whole number of units")
        line["quantity"] = quantity
        if "net" in item:
            value, ccy = _money(item["net"], f"{path}.net")
        else:
            value, ccy = _money(item.get("unitPrice"), f"{path}.unitPrice")
            value *= quantity
        currencies.add(ccy)
        try:
            line["amount"] = parse_amount(str(value), ccy)
        except InvalidInput as exc:
            raise InvalidFhir(f"{path}.net.value", exc.message) from None
        for ref in item.get("encounter", []):
            record = _identifier(ref, RECORD_SYSTEM, f"{path}.encounter")
            if record is not None:
                line["record"] = record
        for ext in item.get("extension", []):
            if ext.get("url") == PACK_EXTENSION:
                text = ext.get("valueIdentifier", {}).get("value", "")
                try:
                    line["pack"] = (
                        text if text.startswith(("sgtin:", "cn-trace:"))
                        else parse_pack_code(text).pack.key
                    )  # fmt: skip
                except InvalidInput as exc:
                    raise InvalidFhir(f"{path}.extension", exc.message) from None
            elif ext.get("url") == LEGACY_EXTENSION:
                line["lot"] = ext.get("valueString")
        lines.append(line)
    if not lines:
        raise InvalidFhir("Claim.item", "a claim needs at least one item")
    if len(currencies) != 1:
        raise InvalidFhir("Claim.item", f"items are in several currencies: {sorted(currencies)}")
    return {
        "claim": claim_id,
        "patient": patient,
        "coverage": coverage,
        "fingerprint": hmac.new(key, raw, hashlib.sha256).hexdigest(),
        "currency": currencies.pop(),
        "lines": lines,
    }


def coverage_args(data: bytes | str, coverage_id: str) -> dict[str, Any]:
    """The ``claims.register_coverage`` arguments for a FHIR R4 Coverage: its
    ``beneficiary`` (a ``urn:carechain:patient`` identifier), ``class`` of type ``plan``
    (the policy id) and ``period``."""
    _raw, resource = load_object(data, max_bytes=MAX_RESOURCE_BYTES)
    if resource.get("resourceType") != "Coverage":
        raise InvalidFhir(
            "resourceType", f"expected a Coverage, not {resource.get('resourceType')!r}"
        )
    validate(resource, "Coverage")
    patient = _identifier(resource.get("beneficiary"), PATIENT_SYSTEM, "Coverage.beneficiary")
    if patient is None:
        raise InvalidFhir("Coverage.beneficiary", f"needs an identifier of system {PATIENT_SYSTEM}")
    policy = None
    for entry in resource.get("class", []):
        codings = entry.get("type", {}).get("coding", [])
        if any(c.get("code") == "plan" for c in codings):
            policy = entry.get("value")
    if policy is None:
        raise InvalidFhir("Coverage.class", "needs a class of type plan whose value is the policy")
    period = resource.get("period", {})
    if "start" not in period or "end" not in period:
        raise InvalidFhir("Coverage.period", "needs a start and an end")
    return {
        "coverage": coverage_id,
        "patient": patient,
        "policy": policy,
        "start": period["start"][:10],
        "end": period["end"][:10],
    }


def _money_out(minor: int, ccy: str) -> dict[str, Any]:
    exponent = iso_currency(ccy).exponent
    return {"value": float(Decimal(minor).scaleb(-exponent)), "currency": ccy}


_OUTCOME = {
    "review": "queued",
    "approved": "complete",
    "paid": "complete",
    "not_covered": "complete",
    "denied": "error",
}


def claim_response(
    claim: dict[str, Any],
    created: str,
    rule_words: Mapping[str, str],
    flag_words: Mapping[str, str],
) -> dict[str, Any]:
    """The FHIR R4 ClaimResponse for an adjudicated claim (the chain's ``claim/<id>``).

    Each item's adjudication gives the submitted, eligible, benefit (insurer) and
    copay (patient) amounts, and the reason: the rule that decided the line, in the
    words ``rule_words`` gives it (``flag_words`` for the flags of one held for review).
    """
    ccy = claim["currency"]
    adjudication = claim["adjudication"]
    items = []
    for line, result in zip(claim["lines"], adjudication["lines"], strict=True):
        items.append(
            {
                "itemSequence": line["seq"],
                "adjudication": [
                    {
                        "category": {"coding": [{"system": _ADJ, "code": category}]},
                        **(
                            {
                                "reason": {
                                    "coding": [
                                        {
                                            "system": _REASON,
                                            "code": result["rule"],
                                            "display": rule_words[result["rule"]],
                                        }
                                    ]
                                }
                            }
                            if category == "eligible"
                            else {}
                        ),
                        "amount": _money_out(amount, ccy),
                    }
                    for category, amount in (
                        ("submitted", line["amount"]),
                        ("eligible", result["eligible"]),
                        ("benefit", result["insurer"]),
                        ("copay", result["patient"]),
                    )
                ],
            }
        )
    status = claim["status"]
    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": claim["id"],
        "status": "active",
        "type": {"coding": [{"system": _TYPE, "code": "institutional"}]},
        "use": "claim",
        "patient": {"identifier": {"system": PATIENT_SYSTEM, "value": claim["patient"]}},
        "created": created,
        "insurer": {"identifier": {"system": ORG_SYSTEM, "value": claim["insurer"]}},
        "requestor": {"identifier": {"system": ORG_SYSTEM, "value": claim["provider"]}},
        "outcome": _OUTCOME.get(status, "partial"),
        "disposition": _disposition(claim, flag_words),
        "item": items,
        "total": [
            {
                "category": {"coding": [{"system": _ADJ, "code": "submitted"}]},
                "amount": _money_out(claim["total"], ccy),
            },
            {
                "category": {"coding": [{"system": _ADJ, "code": "benefit"}]},
                "amount": _money_out(adjudication["insurer"], ccy),
            },
        ],
    }
    if status == "paid":
        response["payment"] = {
            "type": {"coding": [{"system": _PAYMENT, "code": "complete"}]},
            "amount": _money_out(claim["payment"]["amount"], ccy),
        }
    return response


_ADJ = "http://terminology.hl7.org/CodeSystem/adjudication"
_REASON = "urn:carechain:claims:rule"
_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
_PAYMENT = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"


def _disposition(claim: dict[str, Any], flag_words: Mapping[str, str]) -> str:
    flags = claim["adjudication"]["flags"]
    if claim["status"] == "review":
        return "Held for review: " + "; ".join(flag_words[f["flag"]] for f in flags)
    if claim["status"] == "denied":
        return "Denied on review: " + str(claim.get("review", {}).get("note", ""))
    if claim["status"] == "approved":
        return "Approved; payment awaits funds in the insurer's account"
    if claim["status"] == "not_covered":
        return "Not covered: every line was denied by the policy"
    return "Paid as adjudicated"
