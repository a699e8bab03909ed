"""Claim adjudication: coverage rules as data, applied line by line, with fraud flags.

Pure functions over ``Facts`` (what the chain knows: the coverage, the policy in
force on a day, records, packs, earlier claims), so the same claim on the same
state always gets the same answer, on every peer. The claims contract supplies
the facts from its state; tests may supply them from a dict.

Each line ends ``accepted``, ``reduced`` or ``denied`` with the rule that decided
it, and splits its amount exactly into the insurer's and the patient's share
(integers in minor units; the co-pay rounded half to even). Fraud rules do not
decide lines: they flag the claim, with reasons, for the insurer's review queue.
The chain keeps rules and flags as codes; ``RULE_WORDS`` and ``FLAG_WORDS`` say
them in words for readers.

A policy version (``publish_policy``) is data::

    {"currency": "CNY", "copay_bp": 3000,            # patient pays 30% of what is eligible
     "per_claim_limit": 5000000, "annual_limit": 50000000,   # insurer's share, minor units
     "waiting_days": 30,                               # from the coverage's start
     "services": {"<code>": {"max": 20000, "preauth": true}, ...},  # max: per unit
     "drugs": {"<gtin14 | cn:7 digits>": {"max": 8000}, ...},
     "network": ["pumch", ...],                        # empty: every consortium provider
     "bundles": {"<bundle code>": ["<part>", "<part>", ...]},
     "drug_trace_from": "2025-07-01"}                  # NHSA: no traceability code, no pay
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from carechain.contracts.payments import DECIMAL, half_even

ACCEPTED, REDUCED, DENIED = "accepted", "reduced", "denied"

RULE_WORDS = {
    "covered": "covered by the policy",
    "coverage_period": "the service date is outside the coverage period",
    "no_policy": "no version of the policy was in force on the service date",
    "out_of_network": "the provider is not in the policy's network",
    "waiting_period": "the service falls in the coverage's waiting period",
    "not_covered": "the policy does not cover this service or drug",
    "preauthorisation": "the policy needs a pre-authorisation, and there is none",
    "no_trace_code": "a drug line needs the pack's traceability code scanned at dispense",
    "untraced_pack": "the pack was never dispensed to this patient by this provider",
    "after_death": "the service is dated after the patient's recorded death",
    "max_price": "reduced to the policy's maximum price",
    "per_claim_limit": "reduced to the policy's per-claim limit",
    "annual_limit": "reduced to what is left of the policy's annual limit",
    "legacy_stock": "covered as stock bought before the traceability rule",
    "repeated_line": "the same service or pack is on an earlier line of this claim: bill it "
    "once, with its quantity",
}
"""What each rule means, in words shown to the provider, the patient and the insurer."""

FLAG_WORDS = {
    "duplicate": "the same service for the same patient on the same day was claimed before",
    "phantom_encounter": "no record on the chain shows this encounter or procedure",
    "phantom_drug": "the chain shows no dispense of this pack",
    "pack_other_patient": "the pack was dispensed to another patient",
    "after_death": "a service is dated after the patient's recorded death",
    "over_limit": "an amount is above the policy's limits",
    "unbundling": "parts of a bundle are billed separately",
    "code_settled_twice": "this traceability code was already settled (possibly a fake, "
    "resold (回流药) or swapped drug)",
    "pack_mismatch": "the pack was dispensed by another provider, or is another product",
}

EVIDENCE_TYPES = ("Encounter", "Procedure")
"""Records that show a service took place."""
EVIDENCE_DAYS = 30
"""A record shows a service on its day only if added that day or within this many after."""


@dataclass(frozen=True)
class Line:
    seq: int
    kind: str  # "service" | "drug"
    code: str  # a service code, or a drug's product (GTIN-14 or cn:7 digits)
    day: str  # ISO date of service
    quantity: int
    amount: int  # what the provider asks, minor units
    record: str | None = None  # the record id of the encounter or procedure
    pack: str | None = None  # the dispensed pack's key
    lot: str | None = None  # for a drug from stock bought before the trace rule

    def to_json(self) -> dict[str, Any]:
        """As the claim stores it (``dataclasses.asdict`` gives the same, slowly)."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "code": self.code,
            "day": self.day,
            "quantity": self.quantity,
            "amount": self.amount,
            "record": self.record,
            "pack": self.pack,
            "lot": self.lot,
        }


@dataclass
class LineResult:
    seq: int
    outcome: str
    rule: str
    eligible: int
    insurer: int
    patient: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "outcome": self.outcome,
            "rule": self.rule,
            "eligible": self.eligible,
            "insurer": self.insurer,
            "patient": self.patient,
            **({"notes": self.notes} if self.notes else {}),
        }


class Facts(Protocol):
    """What adjudication asks of the chain."""

    def policy_on(self, day: str) -> dict[str, Any] | None: ...
    def record(self, record_id: str) -> dict[str, Any] | None: ...
    def pack(self, key: str) -> dict[str, Any] | None: ...
    def death_day(self) -> str | None: ...
    def preauthorised(self, code: str, day: str) -> bool: ...
    def earlier_claim(self, code: str, day: str) -> str | None: ...
    def record_claimed(self, record_id: str) -> str | None: ...
    def pack_claimed(self, key: str) -> str | None: ...
    def legacy_left(self, product: str, lot: str) -> int: ...
    def used_this_year(self, year: str) -> int: ...


@dataclass
class Adjudication:
    lines: list[LineResult]
    flags: list[dict[str, Any]]
    insurer: int
    patient: int
    years: dict[str, int]
    """Insurer's share by policy year (the coverage's annual limit counts per year)."""
    legacy: dict[str, int] = field(default_factory=dict)
    """Legacy stock settled: ``product/lot`` -> packs."""

    def to_json(self) -> dict[str, Any]:
        return {
            "lines": [r.to_json() for r in self.lines],
            "flags": self.flags,
            "insurer": self.insurer,
            "patient": self.patient,
        }


def copay(eligible: int, copay_bp: int) -> int:
    """The patient's part of ``eligible``: ``copay_bp`` basis points, rounded half to even."""
    return half_even(
        DECIMAL.divide(DECIMAL.multiply(Decimal(eligible), Decimal(copay_bp)), Decimal(10_000))
    )


def _add_days(day: str, days: int) -> str:
    try:
        return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
    except OverflowError:
        return "9999-12-31"


def _record_day(record: dict[str, Any]) -> str:
    return datetime.fromtimestamp(int(record.get("time", 0)) // 1000, UTC).date().isoformat()


def adjudicate(
    lines: list[Line],
    *,
    patient: str,
    provider: str,
    coverage: dict[str, Any],
    facts: Facts,
) -> Adjudication:
    """Decide every line, then apply the claim's limits; collect fraud flags."""
    flags: list[dict[str, Any]] = []

    def raise_flag(name: str, **detail: Any) -> None:
        entry = {"flag": name, **detail}
        if entry not in flags:
            flags.append(entry)

    claim = _Claim(patient, provider, coverage, facts, facts.death_day(), raise_flag)
    results: list[LineResult] = []
    policies: dict[int, dict[str, Any]] = {}
    for line in sorted(lines, key=lambda x: x.seq):
        results.append(claim.decide(line))
        policy = facts.policy_on(line.day)
        if policy is not None:
            policies[line.seq] = policy
    _unbundling(lines, policies, raise_flag)
    # Claim-level limits, in line order: the insurer's share never passes them.
    years: dict[str, int] = {}
    claim_total = 0
    by_seq = {line.seq: line for line in lines}
    for result in results:
        policy = policies.get(result.seq)
        if policy is None or result.insurer == 0:
            continue
        year = by_seq[result.seq].day[:4]
        claim_room = policy["per_claim_limit"] - claim_total
        year_room = policy["annual_limit"] - facts.used_this_year(year) - years.get(year, 0)
        for room, rule in ((claim_room, "per_claim_limit"), (year_room, "annual_limit")):
            if result.insurer > room:
                cut = max(room, 0)
                result.patient += result.insurer - cut
                result.insurer = cut
                result.outcome = REDUCED if cut > 0 else DENIED
                result.rule = rule
                if rule == "per_claim_limit":
                    raise_flag("over_limit", line=result.seq, limit=rule)
        claim_total += result.insurer
        years[year] = years.get(year, 0) + result.insurer
    return Adjudication(
        lines=results,
        flags=flags,
        insurer=sum(r.insurer for r in results),
        patient=sum(r.patient for r in results),
        years=years,
        legacy=claim.legacy_used,
    )


class _Claim:
    """One claim's lines, decided in order: what earlier lines used is remembered."""

    def __init__(
        self,
        patient: str,
        provider: str,
        coverage: dict[str, Any],
        facts: Facts,
        death: str | None,
        raise_flag: Callable[..., None],
    ) -> None:
        self.patient, self.provider, self.coverage = patient, provider, coverage
        self.facts, self.death, self.raise_flag = facts, death, raise_flag
        self.seen: dict[tuple[str, ...], int] = {}
        self.legacy_used: dict[str, int] = {}
        """Legacy stock this claim settles: ``product/lot`` -> packs."""

    def decide(self, line: Line) -> LineResult:
        flag, facts, patient, provider = self.raise_flag, self.facts, self.patient, self.provider

        def deny(rule: str) -> LineResult:
            return LineResult(line.seq, DENIED, rule, 0, 0, line.amount)

        # Fraud checks run on every line, whatever its outcome.
        if self.death is not None and line.day > self.death:
            flag("after_death", line=line.seq, died=self.death)
        same = (line.kind, line.pack or "", line.code if line.pack is None else "", line.day
                if line.pack is None else "", line.lot or "")  # fmt: skip
        repeated = self.seen.get(same)
        if repeated is None:
            self.seen[same] = line.seq
        else:
            flag("duplicate", line=line.seq, same_as_line=repeated)
        if line.kind == "service":
            earlier = facts.earlier_claim(line.code, line.day)
            if earlier is not None:
                flag("duplicate", line=line.seq, earlier=earlier)
            record = facts.record(line.record) if line.record else None
            if (
                record is None
                or record.get("status") != "active"
                or record.get("patient") != patient
                or record.get("custodian") != provider
                or record.get("type") not in EVIDENCE_TYPES
                or not line.day <= _record_day(record) <= _add_days(line.day, EVIDENCE_DAYS)
            ):
                flag("phantom_encounter", line=line.seq, record=line.record)
            elif line.record is not None:
                other = facts.record_claimed(line.record)
                if other is not None:
                    flag("duplicate", line=line.seq, record=line.record, earlier=other)
        traced = False
        if line.kind == "drug" and line.pack is not None:
            pack = facts.pack(line.pack)
            dispensed = (pack or {}).get("dispensed") or {}
            if pack is None or pack.get("status") != "dispensed":
                flag("phantom_drug", line=line.seq, pack=line.pack)
            elif dispensed.get("patient") != patient:
                flag("pack_other_patient", line=line.seq, pack=line.pack)
            elif pack.get("owner") != provider or pack.get("product") != line.code:
                flag("pack_mismatch", line=line.seq, pack=line.pack)
            else:
                traced = True
            first = facts.pack_claimed(line.pack)
            if first is not None:
                flag("code_settled_twice", line=line.seq, pack=line.pack, first=first)

        if repeated is not None:
            return deny("repeated_line")
        if self.death is not None and line.day > self.death:
            return deny("after_death")
        coverage = self.coverage
        if not coverage["start"] <= line.day <= coverage["end"]:
            return deny("coverage_period")
        policy = facts.policy_on(line.day)
        if policy is None:
            return deny("no_policy")
        if policy["network"] and provider not in policy["network"]:
            return deny("out_of_network")
        if line.day < _add_days(coverage["start"], policy["waiting_days"]):
            return deny("waiting_period")
        rules = policy["services"] if line.kind == "service" else policy["drugs"]
        rule = rules.get(line.code)
        if rule is None:
            return deny("not_covered")
        if rule.get("preauth") and not facts.preauthorised(line.code, line.day):
            return deny("preauthorisation")
        decided = "covered"
        if line.kind == "drug":
            if line.pack is not None and not traced:
                return deny("untraced_pack")
            trace_from = policy.get("drug_trace_from")
            if line.pack is None and trace_from is not None and line.day >= trace_from:
                stock = f"{line.code}/{line.lot}"
                used = self.legacy_used.get(stock, 0)
                if (
                    line.lot is None
                    or facts.legacy_left(line.code, line.lot) - used < line.quantity
                ):
                    return deny("no_trace_code")
                self.legacy_used[stock] = used + line.quantity
                decided = "legacy_stock"
        eligible = line.amount
        outcome = ACCEPTED
        cap = rule.get("max")
        if cap is not None and line.amount > cap * line.quantity:
            eligible = cap * line.quantity
            outcome, decided = REDUCED, "max_price"
            flag("over_limit", line=line.seq, limit="max_price")
        patient_part = copay(eligible, policy["copay_bp"])
        insurer = eligible - patient_part
        return LineResult(line.seq, outcome, decided, eligible, insurer, line.amount - insurer)


def _unbundling(
    lines: list[Line], policies: dict[int, dict[str, Any]], raise_flag: Callable[..., None]
) -> None:
    """Two or more parts of one bundle billed on one day, each on its own line."""
    seen: set[tuple[str, str]] = set()
    for line in lines:
        policy = policies.get(line.seq)
        if policy is None:
            continue
        for bundle, parts in sorted(policy.get("bundles", {}).items()):
            if (bundle, line.day) in seen or line.code not in parts:
                continue
            billed = sorted(
                {
                    x.code
                    for x in lines
                    if x.day == line.day and x.code in parts and x.kind == line.kind
                }
            )
            if len(billed) >= 2:
                seen.add((bundle, line.day))
                raise_flag("unbundling", bundle=bundle, codes=billed, day=line.day)
