"""Payments: settlement money in several currencies, escrow holds, FX and instalment plans.

Money is integers in a currency's minor unit (``standards.iso4217``), never
floats. Only a bank issues money (against deposits it holds off the chain)
and redeems it (when it pays out); everything else moves money between
accounts. Every change is double-entry: ``_post`` takes the legs of one
movement, refuses any set whose amounts do not sum to zero per currency, and
applies them. Issuing and redeeming post against the currency's ``supply``,
so at every block, per currency::

    supply.outstanding == sum(balance + held) over all accounts
                       == sum(issued - redeemed) over the issuing banks

(``tests/contracts/test_payments_properties.py`` checks this after random
sequences of operations.)

State (namespace ``payments``)::

    account/<owner>/<CCY>    owner (an organisation id, or a patient id org:member),
                             currency, balance (available), held (in open holds),
                             opened, entries (how many statement lines)
    entry/<owner>/<CCY>/<n:012d>   a statement line: height, index, txid, time, kind,
                             delta, balance after, counterparty, reference
    supply/<CCY>             outstanding: issued minus redeemed, by all banks
    issuer/<bank>/<CCY>      what one bank issued and redeemed
    hold/<id>                payer, payee, currency, amount, status (open | captured |
                             released), captured, expires, purpose, treatment
    quote/<id>               a bank's FX quote: base, quote, rate (decimal text:
                             units of ``quote`` per unit of ``base``), valid from/until
    treatment/<id>           clinic, patient, hold, status (admitted | completed |
                             cancelled), charged
    plan/<id>                an instalment plan: bank, patient, clinic, currency,
                             principal, annual rate (basis points), schedule, paid,
                             status (offered | active | paid_off | declined)
    patient-plan/<patient>/<id>    the patient's plans, for their list: bank, offered

Who may move money: an organisation's admin and staff for its accounts; a
patient for their own; nobody else. Two holds in one block against one
account see each other (transactions run in block order on one state), so
they cannot overdraw it together.
"""

from __future__ import annotations

import re
from typing import Any

from carechain.contracts.consent import is_patient
from carechain.contracts.money import (
    CARE_ORGS,
    DECIMAL,
    MAX_AMOUNT,
    MAX_HOLD_MS,
    MAX_INSTALMENTS,
    MAX_QUOTE_MS,
    MAX_RATE_BP,
    MONEY_ROLES,
    PATIENT_ID,
    PAYERS,
    REFERENCE,
    half_even,
)
from carechain.contracts.payments_credit import Credit, convert, instalment_schedule, plan_state
from carechain.contracts.runtime import Args, Context, contract_method
from carechain.errors import ContractError, Forbidden
from carechain.identity.roles import OrgType, Role

__all__ = [
    "DECIMAL",
    "MAX_AMOUNT",
    "MAX_HOLD_MS",
    "MAX_INSTALMENTS",
    "MAX_QUOTE_MS",
    "MAX_RATE_BP",
    "Payments",
    "convert",
    "half_even",
    "instalment_schedule",
    "plan_state",
    "post",
]

_NEW_HOLD = re.compile(r"hold-[0-9a-f]{24}")
_HOLD = re.compile(r"(hold|trt)-[0-9a-f]{24}")
"""A hold's id: ``hold-...``, or a treatment's id for its admission hold."""
_TREATMENT = re.compile(r"trt-[0-9a-f]{24}")


class Payments(Credit):
    name = "payments"

    # -- issuing and redeeming -------------------------------------------------------------

    @contract_method(roles=MONEY_ROLES, org_types={OrgType.BANK})
    def issue(self, ctx: Context, args: Args) -> None:
        """Credit ``to`` (an organisation or patient id) with ``amount`` of ``currency``
        against a deposit the bank holds."""
        to = args.text("to", max_length=105)
        ccy = self._currency(args)
        amount = self._amount(args)
        reference = self._reference(args)
        self._done(args)
        self._owner_exists(ctx, to)
        bank = ctx.caller.org_id
        self._supply(ctx, ccy, bank, issued=amount)
        self._post(ctx, "issue", [(to, ccy, amount, 0), ("@supply", ccy, -amount, 0)], reference)

    @contract_method(roles=MONEY_ROLES, org_types={OrgType.BANK})
    def redeem(self, ctx: Context, args: Args) -> None:
        """Take ``amount`` out of the bank's own account: money it pays out off the chain
        (a customer first transfers it to the bank)."""
        ccy = self._currency(args)
        amount = self._amount(args)
        reference = self._reference(args)
        self._done(args)
        bank = ctx.caller.org_id
        self._post(ctx, "redeem", [(bank, ccy, -amount, 0), ("@supply", ccy, amount, 0)], reference)
        self._supply(ctx, ccy, bank, redeemed=amount)

    # -- transfers ---------------------------------------------------------------------------

    @contract_method(roles=PAYERS)
    def transfer(self, ctx: Context, args: Args) -> None:
        """Pay ``amount`` of ``currency`` to ``to`` from the caller's account."""
        to = args.text("to", max_length=105)
        ccy = self._currency(args)
        amount = self._amount(args)
        reference = self._reference(args)
        self._done(args)
        payer = self._own(ctx)
        if to == payer:
            raise ContractError("a transfer goes to another account")
        if ctx.get(f"account/{to}/{ccy}") is None:
            self._owner_exists(ctx, to)
        self._post(ctx, "transfer", [(payer, ccy, -amount, 0), (to, ccy, amount, 0)], reference)

    # -- holds (escrow) ----------------------------------------------------------------------

    def _open_hold(
        self,
        ctx: Context,
        hold_id: str,
        payer: str,
        payee: str,
        ccy: str,
        amount: int,
        expires: int,
        purpose: str,
        treatment: str | None = None,
    ) -> None:
        if ctx.get(f"hold/{hold_id}") is not None:
            raise ContractError(f"hold {hold_id} already exists")
        if payer == payee:
            raise ContractError("a hold is for another account")
        if not ctx.time_ms < expires <= ctx.time_ms + MAX_HOLD_MS:
            raise ContractError("expires must be after the block time and within 366 days")
        self._owner_exists(ctx, payee)
        self._post(ctx, "hold", [(payer, ccy, -amount, amount)], purpose)
        ctx.put(
            f"hold/{hold_id}",
            {
                "id": hold_id,
                "payer": payer,
                "payee": payee,
                "currency": ccy,
                "amount": amount,
                "captured": 0,
                "status": "open",
                "opened": ctx.time_ms,
                "expires": expires,
                "purpose": purpose,
                "treatment": treatment,
            },
        )

    @contract_method(roles=PAYERS)
    def hold(self, ctx: Context, args: Args) -> None:
        """Reserve ``amount`` of the caller's ``currency`` for ``payee`` until ``expires``
        (ms since the epoch): the payee may capture it before then, or release it."""
        hold_id = args.text("hold", pattern=_NEW_HOLD)
        payee = args.text("payee", max_length=105)
        ccy = self._currency(args)
        amount = self._amount(args)
        expires = args.integer("expires")
        purpose = args.text("purpose", pattern=REFERENCE, required=False, default="")
        self._done(args)
        self._open_hold(ctx, hold_id, self._own(ctx), payee, ccy, amount, expires, purpose)

    def _hold(self, ctx: Context, hold_id: str) -> dict[str, Any]:
        doc = ctx.get(f"hold/{hold_id}")
        if doc is None:
            raise ContractError(f"unknown hold {hold_id}")
        if doc["status"] != "open":
            raise ContractError(f"hold {hold_id} is already {doc['status']}")
        return dict(doc)

    def _capture(self, ctx: Context, hold: dict[str, Any], amount: int) -> None:
        if ctx.time_ms >= hold["expires"]:
            raise ContractError(f"hold {hold['id']} expired; it can only be released")
        if amount > hold["amount"]:
            raise ContractError(
                f"cannot capture {amount}: hold {hold['id']} is for {hold['amount']}"
            )
        payer, payee, ccy, whole = hold["payer"], hold["payee"], hold["currency"], hold["amount"]
        legs = [(payer, ccy, whole - amount, -whole)]
        if amount:
            legs.append((payee, ccy, amount, 0))
        self._post(ctx, "capture", legs, hold["id"])
        ctx.put(
            f"hold/{hold['id']}",
            dict(hold, status="captured", captured=amount, closed=ctx.time_ms),
        )

    def _release(self, ctx: Context, hold: dict[str, Any]) -> None:
        payer, ccy, whole = hold["payer"], hold["currency"], hold["amount"]
        self._post(ctx, "release", [(payer, ccy, whole, -whole)], hold["id"])
        ctx.put(f"hold/{hold['id']}", dict(hold, status="released", closed=ctx.time_ms))

    @contract_method(roles=PAYERS)
    def capture(self, ctx: Context, args: Args) -> None:
        """The payee takes ``amount`` (at most the hold's) before it expires; the rest
        goes back to the payer."""
        hold = self._hold(ctx, args.text("hold", pattern=_HOLD))
        amount = args.integer("amount", minimum=0, default=hold["amount"])
        self._done(args)
        if self._own(ctx) != hold["payee"]:
            raise Forbidden(f"only {hold['payee']} captures hold {hold['id']}")
        if hold.get("treatment"):
            raise ContractError(
                f"hold {hold['id']} pays treatment {hold['treatment']}: it is captured when "
                "the treatment is completed"
            )
        self._capture(ctx, hold, amount)

    @contract_method(roles=PAYERS)
    def release(self, ctx: Context, args: Args) -> None:
        """Give a hold back to the payer: the payee at any time, the payer once it expired."""
        hold = self._hold(ctx, args.text("hold", pattern=_HOLD))
        self._done(args)
        me = self._own(ctx)
        if me == hold["payer"] and ctx.time_ms < hold["expires"]:
            raise Forbidden(
                f"hold {hold['id']} runs until {hold['expires']}; the payee may release it"
            )
        if me not in (hold["payer"], hold["payee"]):
            raise Forbidden(f"hold {hold['id']} is not {me}'s")
        treatment = hold.get("treatment")
        if treatment and me == hold["payee"]:
            raise ContractError(
                f"hold {hold['id']} is treatment {treatment}'s: cancel the treatment instead"
            )
        self._release(ctx, hold)
        if treatment:  # the patient took an expired admission hold back
            doc = self._must(ctx, f"treatment/{treatment}")
            ctx.put(f"treatment/{treatment}", dict(doc, status="expired", ended=ctx.time_ms))

    # -- automatic payment after treatment ---------------------------------------------------

    @contract_method(roles=MONEY_ROLES | {Role.CLINICIAN}, org_types=CARE_ORGS)
    def admit(self, ctx: Context, args: Args) -> None:
        """At admission, hold ``amount`` of the patient's ``currency`` for the caller's
        organisation until the treatment ends. The patient co-signs."""
        treatment = args.text("treatment", pattern=_TREATMENT)
        patient = args.text("patient", pattern=PATIENT_ID, max_length=105)
        ccy = self._currency(args)
        amount = self._amount(args)
        expires = args.integer("expires")
        self._done(args)
        if not any(is_patient(m, patient) for m in ctx.cosigners.values()):
            raise Forbidden(f"the patient {patient} must co-sign an admission hold")
        if ctx.get(f"treatment/{treatment}") is not None:
            raise ContractError(f"treatment {treatment} already exists")
        clinic = ctx.caller.org_id
        hold_id = treatment  # its own hold: no "hold-..." id can take it first
        self._open_hold(
            ctx, hold_id, patient, clinic, ccy, amount, expires, f"treatment {treatment}", treatment
        )
        ctx.put(
            f"treatment/{treatment}",
            {
                "id": treatment,
                "clinic": clinic,
                "patient": patient,
                "hold": hold_id,
                "status": "admitted",
                "admitted": ctx.time_ms,
                "charged": None,
            },
        )

    def _treatment(self, ctx: Context, args: Args) -> dict[str, Any]:
        treatment_id = args.text("treatment", pattern=_TREATMENT)
        doc = ctx.get(f"treatment/{treatment_id}")
        if doc is None:
            raise ContractError(f"unknown treatment {treatment_id}")
        if doc["clinic"] != ctx.caller.org_id:
            raise Forbidden(f"treatment {treatment_id} is {doc['clinic']}'s")
        if doc["status"] != "admitted":
            raise ContractError(f"treatment {treatment_id} is already {doc['status']}")
        return dict(doc)

    @contract_method(roles=MONEY_ROLES | {Role.CLINICIAN}, org_types=CARE_ORGS)
    def complete_treatment(self, ctx: Context, args: Args) -> None:
        """Record the treatment complete with what it cost (``amount``, at most the hold):
        the contract pays the clinic from the hold and gives the rest back."""
        treatment = self._treatment(ctx, args)
        amount = args.integer("amount", minimum=0)
        self._done(args)
        self._capture(ctx, self._hold(ctx, treatment["hold"]), amount)
        ctx.put(
            f"treatment/{treatment['id']}",
            dict(treatment, status="completed", charged=amount, ended=ctx.time_ms),
        )

    @contract_method(roles=MONEY_ROLES | {Role.CLINICIAN}, org_types=CARE_ORGS)
    def cancel_treatment(self, ctx: Context, args: Args) -> None:
        """The treatment did not take place: the whole hold goes back to the patient."""
        treatment = self._treatment(ctx, args)
        self._done(args)
        self._release(ctx, self._hold(ctx, treatment["hold"]))
        ctx.put(
            f"treatment/{treatment['id']}", dict(treatment, status="cancelled", ended=ctx.time_ms)
        )


def post(
    ctx: Context, kind: str, legs: list[tuple[str, str, int, int]], reference: str = ""
) -> None:
    """Move money for another contract under this one's rules (claims pays providers):
    ``ctx`` is the calling transaction's context acting for payments (``acting_for``)."""
    if ctx.contract != Payments.name:
        raise ContractError("internal: payments are posted in the payments namespace")
    Payments()._post(ctx, kind, legs, reference)
