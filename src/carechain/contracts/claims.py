"""Claims: insurers' coverage rules as data, claims adjudicated and paid by the contract.

An insurer publishes versions of a policy (``publish_policy``: rules as data,
``contracts.adjudication``), each in force from a day, and registers a
patient's coverage under one (FHIR Coverage: patient, insurer, policy,
period). A provider submits a claim (the lines of a FHIR R4 Claim, with the
salted fingerprint of the whole resource, which stays with the provider:
diagnoses never reach the chain) whose lines point at on-chain evidence: the
record of the encounter or procedure and, for drugs, the dispensed pack.

The contract adjudicates at once, the same way on every peer, each line
decided by the policy version in force on its service date, so a new version
never touches earlier claims. A claim with no fraud flag is approved and paid
in the same block: the insurer's share moves from the insurer's account to the
provider's through the payments contract's double-entry postings, and the
patient's co-pay is requested from the patient (``pay_copay``). A flagged
claim waits in the insurer's review queue with its reasons until the insurer
approves or denies it, with a note.

China's NHSA rule for drugs (in force since 2025-07-01: no traceability code,
no settlement) is the policy field ``drug_trace_from``: a drug line from that
day is paid only for a pack the chain shows dispensed to this patient by this
provider, or from stock the provider declared bought before the rule
(``declare_legacy_stock``). A code claimed twice, here or elsewhere, is
flagged, pointing to the first claim. Submitting the same claim again (same
fingerprint) changes nothing and is not a duplicate.

State (namespace ``claims``)::

    policy/<insurer>/<policy>/<from>   a policy version (rules, see adjudication.py)
    coverage/<id>                      patient, insurer, policy, start, end, status
    preauth/<coverage>/<code>          from, until, by
    death/<patient>                    day, by (services after it are not paid)
    legacy/<org>/<product>/<lot>       quantity, left, bought, confirmed (by an insurer
                                       or regulator: only then may it be settled)
    claim/<id>                         the claim, its adjudication, status, history
    fingerprint/<provider>/<hex>       claim id (a resubmission is recognised)
    evidence/<record>                  the first claim an encounter record backs
    line/<patient>/<code>/<day>/<height>/<claim>   an earlier claim of this service
                                       (duplicates; the first claimed sorts first)
    pack/<key>                         the first claim of this pack
    usage/<coverage>/<year>            insurer's share committed this year
    queue/<insurer>/<claim>            flagged claims awaiting review
    patient/<patient>/<claim>          a patient's claims
    provider/<provider>/<newest>/<claim>   a provider's claims, newest block first
                                       (<newest> is NEWEST_FIRST minus the height)
"""

from __future__ import annotations

import re
from typing import Any

from carechain.contracts.adjudication import Line, adjudicate
from carechain.contracts.claim_rules import (
    _CODE,
    _HEX64,
    _ID,
    _LOT,
    _NOTE,
    _ORG,
    _PACK,
    _PATIENT,
    _PRODUCT,
    DESK,
    MAX_LEGACY,
    MAX_LINES,
    NHSA_TRACE_RULE_DAY,
    PROVIDER_ROLES,
    PROVIDERS,
    ChainFacts,
    _amount,
    _day,
    _utc_day,
    check_rules,
    provider_key,
    submit_reads,
)
from carechain.contracts.consent import is_patient
from carechain.contracts.membership import MemberRecord
from carechain.contracts.payments import post
from carechain.contracts.records import patient_exists
from carechain.contracts.runtime import Args, Context, Contract, contract_method
from carechain.errors import ContractError, Forbidden, InvalidInput
from carechain.identity.roles import OrgType, Role
from carechain.standards.iso4217 import currency as iso_currency


class Claims(Contract):
    name = "claims"

    def reads(self, method: str, args: dict[str, Any], caller: MemberRecord) -> list[str]:
        return submit_reads(args, caller) if method == "submit" else []

    def _done(self, args: Args) -> None:
        if args.unread():
            raise ContractError(f"unknown argument(s): {', '.join(args.unread())}")

    # -- the insurer's side ----------------------------------------------------------------

    @contract_method(roles=DESK, org_types={OrgType.INSURER})
    def publish_policy(self, ctx: Context, args: Args) -> None:
        """Publish a version of policy ``policy`` in force from ``effective_from`` (a day,
        not before today: earlier claims keep the rules they were decided by)."""
        policy = args.text("policy", pattern=_ID["policy"])
        start = _day(args.text("effective_from", max_length=10), "effective_from")
        rules = check_rules(args.mapping("rules"))
        self._done(args)
        if start < _utc_day(ctx.time_ms):
            raise ContractError(
                f"effective_from {start} is in the past: rules never change backwards"
            )
        key = f"policy/{ctx.caller.org_id}/{policy}/{start}"
        if ctx.get(key) is not None:
            raise ContractError(f"policy {policy} already has a version from {start}")
        ctx.put(key, dict(rules, published=ctx.time_ms, txid=ctx.txid))

    @contract_method(roles=DESK, org_types={OrgType.INSURER})
    def register_coverage(self, ctx: Context, args: Args) -> None:
        """Cover ``patient`` under the caller's ``policy`` from ``start`` to ``end``."""
        coverage_id = args.text("coverage", pattern=_ID["coverage"])
        patient = args.text("patient", pattern=_PATIENT, max_length=105)
        policy = args.text("policy", pattern=_ID["policy"])
        start = _day(args.text("start", max_length=10), "start")
        end = _day(args.text("end", max_length=10), "end")
        self._done(args)
        insurer = ctx.caller.org_id
        if end < start:
            raise ContractError(f"end {end} is before start {start}")
        if ctx.get(f"coverage/{coverage_id}") is not None:
            raise ContractError(f"coverage {coverage_id} already exists")
        if not ctx.scan(f"policy/{insurer}/{policy}/", limit=1):
            raise ContractError(f"{insurer} has published no policy {policy}")
        if not patient_exists(ctx, patient):
            raise ContractError(f"unknown patient {patient}")
        ctx.put(
            f"coverage/{coverage_id}",
            {
                "id": coverage_id,
                "patient": patient,
                "insurer": insurer,
                "policy": policy,
                "start": start,
                "end": end,
                "status": "active",
                "registered": ctx.time_ms,
            },
        )

    @contract_method(roles=DESK, org_types={OrgType.INSURER})
    def preauthorise(self, ctx: Context, args: Args) -> None:
        """Allow service ``code`` under ``coverage`` from ``start`` to ``end``."""
        coverage = self._coverage(ctx, args.text("coverage", pattern=_ID["coverage"]))
        code = args.text("code", pattern=_CODE)
        start = _day(args.text("start", max_length=10), "start")
        end = _day(args.text("end", max_length=10), "end")
        self._done(args)
        if coverage["insurer"] != ctx.caller.org_id:
            raise Forbidden(f"coverage {coverage['id']} is {coverage['insurer']}'s")
        if end < start:
            raise ContractError(f"end {end} is before start {start}")
        ctx.put(
            f"preauth/{coverage['id']}/{code}",
            {"from": start, "until": end, "by": ctx.caller.org_id, "time": ctx.time_ms},
        )

    def _coverage(self, ctx: Context, coverage_id: str) -> dict[str, Any]:
        doc = ctx.get(f"coverage/{coverage_id}")
        if doc is None:
            raise ContractError(f"unknown coverage {coverage_id}")
        return dict(doc)

    # -- facts the providers and regulators record -----------------------------------------

    @contract_method(
        roles={Role.ADMIN, Role.STAFF, Role.CLINICIAN},
        org_types={OrgType.HOSPITAL, OrgType.CLINIC, OrgType.REGULATOR},
    )
    def record_death(self, ctx: Context, args: Args) -> None:
        """Record that ``patient`` died on ``day``: no service after it is paid. The
        patient's own hospital or clinic records it, or a regulator (who may correct it)."""
        patient = args.text("patient", pattern=_PATIENT, max_length=105)
        day = _day(args.text("day", max_length=10), "day")
        self._done(args)
        caller = ctx.caller
        if caller.org_type is not OrgType.REGULATOR and patient.split(":", 1)[0] != caller.org_id:
            raise Forbidden(
                f"{caller.org_id} may not record {patient}'s death: the patient's own "
                "organisation or a regulator does"
            )
        if day > _utc_day(ctx.time_ms):
            raise ContractError(f"day {day} is in the future")
        if not patient_exists(ctx, patient):
            raise ContractError(f"unknown patient {patient}")
        if ctx.get(f"death/{patient}") is not None:
            raise ContractError(f"a death is already recorded for {patient}")
        ctx.put(f"death/{patient}", {"day": day, "by": ctx.caller.org_id, "time": ctx.time_ms})

    @contract_method(roles={Role.ADMIN, Role.STAFF}, org_types={OrgType.REGULATOR})
    def withdraw_death(self, ctx: Context, args: Args) -> None:
        """A regulator removes a death recorded in error; claims decided meanwhile stand
        (the insurer reviews those it flagged)."""
        patient = args.text("patient", pattern=_PATIENT, max_length=105)
        reason = args.text("reason", pattern=_NOTE, max_length=200)
        self._done(args)
        doc = ctx.get(f"death/{patient}")
        if doc is None:
            raise ContractError(f"no death is recorded for {patient}")
        ctx.delete(f"death/{patient}")
        ctx.put(
            f"death-withdrawn/{patient}/{ctx.block.height:012d}",
            dict(doc, reason=reason, withdrawn_by=ctx.caller.org_id, withdrawn=ctx.time_ms),
        )

    @contract_method(roles={Role.ADMIN, Role.STAFF, Role.PHARMACIST}, org_types=PROVIDERS)
    def declare_legacy_stock(self, ctx: Context, args: Args) -> None:
        """List ``quantity`` packs of ``product`` lot ``lot`` bought on ``bought`` (before
        the NHSA trace rule), to be settled without a scanned code once an insurer or a
        regulator confirms the declaration (``confirm_legacy_stock``)."""
        product = args.text("product", pattern=_PRODUCT)
        lot = args.text("lot", pattern=_LOT)
        quantity = args.integer("quantity", minimum=1)
        if quantity > MAX_LEGACY:
            raise ContractError(f"quantity {quantity} is over {MAX_LEGACY} packs of one lot")
        bought = _day(args.text("bought", max_length=10), "bought")
        self._done(args)
        if bought >= NHSA_TRACE_RULE_DAY:
            raise ContractError(
                f"stock bought on {bought} is not legacy: the trace rule applies from "
                f"{NHSA_TRACE_RULE_DAY}"
            )
        key = f"legacy/{ctx.caller.org_id}/{product}/{lot}"
        if ctx.get(key) is not None:
            raise ContractError(f"lot {lot} of {product} is already declared")
        ctx.put(
            key,
            {
                "quantity": quantity,
                "left": quantity,
                "bought": bought,
                "time": ctx.time_ms,
                "confirmed": None,
            },
        )

    @contract_method(roles=DESK, org_types={OrgType.INSURER, OrgType.REGULATOR})
    def confirm_legacy_stock(self, ctx: Context, args: Args) -> None:
        """Confirm a provider's declared legacy stock (checked against its purchase records
        off the chain): from now its packs may be settled without a scanned code."""
        org = args.text("org", pattern=_ORG)
        product = args.text("product", pattern=_PRODUCT)
        lot = args.text("lot", pattern=_LOT)
        self._done(args)
        key = f"legacy/{org}/{product}/{lot}"
        doc = ctx.get(key)
        if doc is None:
            raise ContractError(f"{org} declared no lot {lot} of {product}")
        if doc.get("confirmed"):
            raise ContractError(f"lot {lot} of {product} is already confirmed")
        ctx.put(key, dict(doc, confirmed={"by": ctx.caller.org_id, "time": ctx.time_ms}))

    # -- claims ---------------------------------------------------------------------------

    def _lines(self, raw: list[Any]) -> list[Line]:
        if not raw:
            raise ContractError("a claim needs at least one line")
        lines: list[Line] = []
        seqs: set[int] = set()
        for index, item in enumerate(raw):
            where = f"lines[{index}]"
            if not isinstance(item, dict):
                raise ContractError(f"{where} must be an object")
            fields = Args(item)
            seq = fields.integer("seq", minimum=1)
            kind = fields.text("kind", max_length=7)
            if kind not in ("service", "drug"):
                raise ContractError(f"{where}.kind must be service or drug")
            code = fields.text("code", pattern=_CODE if kind == "service" else _PRODUCT)
            day = _day(fields.text("day", max_length=10), f"{where}.day")
            quantity = fields.integer("quantity", minimum=1)
            amount = _amount(fields.integer("amount", minimum=0), f"{where}.amount")
            record = fields.text("record", pattern=re.compile(r"rec-[a-z2-7]{26}"), required=False)
            pack = fields.text("pack", pattern=_PACK, required=False)
            lot = fields.text("lot", pattern=_LOT, required=False)
            if fields.unread():
                raise ContractError(f"{where} has unknown field(s): {', '.join(fields.unread())}")
            if seq in seqs:
                raise ContractError(f"{where}: seq {seq} appears twice")
            seqs.add(seq)
            if kind == "drug" and pack is not None and lot is not None:
                raise ContractError(f"{where}: a drug line names a pack or a legacy lot, not both")
            if kind == "service" and (pack is not None or lot is not None):
                raise ContractError(f"{where}: a service line has no pack or lot")
            if pack is not None and quantity != 1:
                raise ContractError(f"{where}: a line naming a pack is for quantity 1")
            lines.append(Line(seq, kind, code, day, quantity, amount, record, pack, lot))
        return lines

    @contract_method(roles=PROVIDER_ROLES, org_types=PROVIDERS)
    def submit(self, ctx: Context, args: Args) -> None:
        """Submit a claim: ``claim`` id, ``patient``, ``coverage``, ``fingerprint`` (the
        salted SHA-256 of the FHIR Claim, hex), ``currency`` and ``lines``; it is
        adjudicated at once, and paid at once unless a fraud rule flags it."""
        claim_id = args.text("claim", pattern=_ID["claim"])
        patient = args.text("patient", pattern=_PATIENT, max_length=105)
        coverage = self._coverage(ctx, args.text("coverage", pattern=_ID["coverage"]))
        fingerprint = args.text("fingerprint", pattern=_HEX64)
        ccy = args.text("currency", max_length=3)
        lines = self._lines(args.items("lines", max_items=MAX_LINES))
        self._done(args)
        try:
            iso_currency(ccy)
        except InvalidInput as exc:
            raise ContractError(f"argument 'currency': {exc.message}") from None
        provider = ctx.caller.org_id
        today = _utc_day(ctx.time_ms)
        for line in lines:
            if line.day > today:
                raise ContractError(f"lines[seq {line.seq}].day {line.day} is in the future")
        known = ctx.get(f"fingerprint/{provider}/{fingerprint}")
        if known is not None:
            if known["claim"] != claim_id and ctx.get(f"claim/{claim_id}") is not None:
                raise ContractError(f"claim {claim_id} already exists with other content")
            return  # the same claim again (a resent settlement): already decided, not a duplicate
        if ctx.get(f"claim/{claim_id}") is not None:
            raise ContractError(f"claim {claim_id} already exists with other content")
        if coverage["patient"] != patient:
            raise ContractError(f"coverage {coverage['id']} is not {patient}'s")
        claim: dict[str, Any] = {
            "id": claim_id,
            "patient": patient,
            "provider": provider,
            "insurer": coverage["insurer"],
            "coverage": coverage["id"],
            "fingerprint": fingerprint,
            "currency": ccy,
            "lines": [line.to_json() for line in lines],
            "submitted": ctx.time_ms,
            "height": ctx.block.height,
            "txid": ctx.txid,
            "total": sum(line.amount for line in lines),
        }
        facts = ChainFacts(ctx, claim, coverage)
        for line in lines:
            policy = facts.policy_on(line.day)
            if policy is not None and policy["currency"] != ccy:
                raise ContractError(
                    f"the policy pays in {policy['currency']}; this claim is in {ccy}"
                )
        result = adjudicate(
            lines, patient=patient, provider=provider, coverage=coverage, facts=facts
        )
        claim["adjudication"] = result.to_json()
        claim["years"] = result.years
        claim["legacy"] = result.legacy
        claim["history"] = [{"status": "submitted", "time": ctx.time_ms}]
        # Indexes: later claims of the same service, encounter or pack find this one (only
        # for lines not denied: a line nobody pays settles nothing).
        decided = {r.seq: r.outcome for r in result.lines}
        for line in lines:
            if line.kind == "service":
                ctx.put(
                    f"line/{patient}/{line.code}/{line.day}/{ctx.block.height:012d}/{claim_id}",
                    {"provider": provider, "seq": line.seq},
                )
            if decided[line.seq] == "denied":
                continue
            if line.record is not None and ctx.get(f"evidence/{line.record}") is None:
                ctx.put(f"evidence/{line.record}", {"claim": claim_id})
            if line.pack is not None and ctx.get(f"pack/{line.pack}") is None:
                ctx.put(f"pack/{line.pack}", {"claim": claim_id, "provider": provider})
        self._reserve(ctx, coverage["id"], result.years, +1)
        self._use_legacy(ctx, provider, result.legacy, -1)
        ctx.put(f"fingerprint/{provider}/{fingerprint}", {"claim": claim_id})
        ctx.put(f"patient/{patient}/{claim_id}", {"provider": provider, "time": ctx.time_ms})
        ctx.put(provider_key(provider, ctx.block.height, claim_id), {})
        if result.flags:
            claim["status"] = "review"
            self._history(ctx, claim, "review")
            ctx.put(f"queue/{coverage['insurer']}/{claim_id}", {"flags": len(result.flags)})
            ctx.put(f"claim/{claim_id}", claim)
            return
        claim["status"] = "approved"
        self._history(ctx, claim, "approved")
        self._settle(ctx, claim)

    def _use_legacy(self, ctx: Context, provider: str, used: dict[str, int], sign: int) -> None:
        """Take packs out of (sign -1) or back into (+1) declared legacy stock."""
        for stock, packs in sorted(used.items()):
            key = f"legacy/{provider}/{stock}"
            doc = ctx.get(key)
            if doc is None:  # pragma: no cover - adjudication found it
                raise ContractError(f"claims state is missing {key}")
            ctx.put(key, dict(doc, left=doc["left"] + sign * packs))

    def _reserve(self, ctx: Context, coverage: str, years: dict[str, int], sign: int) -> None:
        for year, amount in sorted(years.items()):
            if amount:
                key = f"usage/{coverage}/{year}"
                doc = ctx.get(key) or {"insurer": 0}
                ctx.put(key, {"insurer": doc["insurer"] + sign * amount})

    def _history(self, ctx: Context, claim: dict[str, Any], status: str, **extra: Any) -> None:
        claim["history"] = [
            *claim["history"],
            {"status": status, "time": ctx.time_ms, "height": ctx.block.height, **extra},
        ]

    def _settle(self, ctx: Context, claim: dict[str, Any]) -> None:
        """Pay the insurer's share now, if the insurer's account holds it, and request the
        patient's co-pay. An insurer short of money leaves the claim approved, unpaid."""
        insurer_share = claim["adjudication"]["insurer"]
        patient_share = claim["adjudication"]["patient"]
        money = ctx.acting_for("payments")
        legs = [
            (claim["insurer"], claim["currency"], -insurer_share, 0),
            (claim["provider"], claim["currency"], insurer_share, 0),
        ]
        try:
            if insurer_share:
                post(money, "claim", legs, claim["id"])
        except ContractError as exc:
            if not exc.message.startswith("insufficient funds"):
                raise
            claim["payment"] = {"status": "awaiting_funds", "reason": exc.message}
            ctx.put(f"claim/{claim['id']}", claim)
            return
        # Nothing the policy pays (every line denied): closed as not covered, not "paid".
        claim["status"] = "paid" if insurer_share else "not_covered"
        claim["payment"] = {"status": "paid", "amount": insurer_share, "time": ctx.time_ms}
        claim["copay"] = {
            "amount": patient_share,
            "status": "requested" if patient_share else "none",
        }
        self._history(ctx, claim, claim["status"])
        ctx.put(f"claim/{claim['id']}", claim)

    def _claim(self, ctx: Context, args: Args) -> dict[str, Any]:
        claim_id = args.text("claim", pattern=_ID["claim"])
        doc = ctx.get(f"claim/{claim_id}")
        if doc is None:
            raise ContractError(f"unknown claim {claim_id}")
        return dict(doc)

    @contract_method(roles=DESK, org_types={OrgType.INSURER})
    def review(self, ctx: Context, args: Args) -> None:
        """Decide a flagged claim: ``decision`` approve (paid at once) or deny, with a
        ``note`` saying why."""
        claim = self._claim(ctx, args)
        decision = args.text("decision", max_length=7)
        note = args.text("note", pattern=_NOTE, max_length=500)
        self._done(args)
        if claim["insurer"] != ctx.caller.org_id:
            raise Forbidden(f"claim {claim['id']} is for {claim['insurer']} to review")
        if claim["status"] != "review":
            raise ContractError(f"claim {claim['id']} is {claim['status']}, not in review")
        if decision not in ("approve", "deny"):
            raise ContractError("decision must be approve or deny")
        if not note.strip():
            raise ContractError("a review needs a note saying why")
        ctx.delete(f"queue/{claim['insurer']}/{claim['id']}")
        claim["review"] = {"decision": decision, "note": note, "by": ctx.caller.fingerprint}
        if decision == "approve":
            claim["status"] = "approved"
            self._history(ctx, claim, "approved", note=note)
            self._settle(ctx, claim)
            return
        claim["status"] = "denied"
        self._history(ctx, claim, "denied", note=note)
        self._reserve(ctx, claim["coverage"], claim["years"], -1)
        self._use_legacy(ctx, claim["provider"], claim.get("legacy", {}), +1)
        for line in claim["lines"]:  # a denied claim no longer counts as an earlier one
            record = line.get("record")
            if record is not None:
                first = ctx.get(f"evidence/{record}")
                if first is not None and first["claim"] == claim["id"]:
                    ctx.delete(f"evidence/{record}")
            if line["kind"] == "service":
                ctx.delete(
                    f"line/{claim['patient']}/{line['code']}/{line['day']}/"
                    f"{claim['height']:012d}/{claim['id']}"
                )
            pack = line.get("pack")
            if pack is not None:
                first = ctx.get(f"pack/{pack}")
                if first is not None and first["claim"] == claim["id"]:
                    ctx.delete(f"pack/{pack}")
        ctx.put(f"claim/{claim['id']}", claim)

    @contract_method(roles=DESK, org_types={OrgType.INSURER})
    def settle(self, ctx: Context, args: Args) -> None:
        """Pay an approved claim that waited for money in the insurer's account."""
        claim = self._claim(ctx, args)
        self._done(args)
        if claim["insurer"] != ctx.caller.org_id:
            raise Forbidden(f"claim {claim['id']} is {claim['insurer']}'s to pay")
        if claim["status"] != "approved":
            raise ContractError(f"claim {claim['id']} is {claim['status']}, not awaiting payment")
        self._settle(ctx, claim)
        if claim["status"] != "paid":
            raise ContractError(claim["payment"]["reason"])

    @contract_method(roles={Role.PATIENT})
    def pay_copay(self, ctx: Context, args: Args) -> None:
        """The patient pays a paid claim's co-pay to the provider."""
        claim = self._claim(ctx, args)
        self._done(args)
        if not is_patient(ctx.caller, claim["patient"]):
            raise Forbidden(f"claim {claim['id']} is not the caller's")
        copay = claim.get("copay") or {}
        if copay.get("status") != "requested":
            raise ContractError(f"claim {claim['id']} has no co-pay to pay")
        legs = [
            (claim["patient"], claim["currency"], -copay["amount"], 0),
            (claim["provider"], claim["currency"], copay["amount"], 0),
        ]
        post(ctx.acting_for("payments"), "copay", legs, claim["id"])
        claim["copay"] = dict(copay, status="paid", time=ctx.time_ms)
        self._history(ctx, claim, "copay_paid")
        ctx.put(f"claim/{claim['id']}", claim)
