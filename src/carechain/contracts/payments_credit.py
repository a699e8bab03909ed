"""Payments across currencies (a bank's FX quotes) and instalment plans: the methods
of the payments contract that exchange or lend (state layout: contracts/payments.py)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from carechain.contracts.consent import is_patient
from carechain.contracts.money import (
    DAY_MS,
    DECIMAL,
    MAX_INSTALMENTS,
    MAX_QUOTE_MS,
    MAX_RATE_BP,
    MONEY_ROLES,
    ORG_ID,
    PATIENT_ID,
    PAYERS,
    Money,
    half_even,
)
from carechain.contracts.runtime import Args, Context, contract_method
from carechain.errors import ContractError, Forbidden
from carechain.identity.roles import OrgType, Role
from carechain.standards.iso4217 import currency as iso_currency

_QUOTE = re.compile(r"fxq-[0-9a-f]{24}")
_PLAN = re.compile(r"plan-[0-9a-f]{24}")
_RATE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,12})?")


def convert(amount: int, rate: str, exponent_from: int, exponent_to: int, inverse: bool) -> int:
    """``amount`` minor units at ``rate`` (units of the quote currency per unit of the base)
    in the other currency's minor units, rounded half to even. ``inverse``: from the
    quote currency into the base."""
    scaled = DECIMAL.scaleb(Decimal(amount), exponent_to - exponent_from)
    if inverse:
        return half_even(DECIMAL.divide(scaled, Decimal(rate)))
    return half_even(DECIMAL.multiply(scaled, Decimal(rate)))


def instalment_schedule(
    principal: int, rate_bp: int, count: int, interval_days: int, first_due_ms: int
) -> list[dict[str, int]]:
    """Equal instalments (an annuity) that repay ``principal`` with interest at
    ``rate_bp`` a year (simple per period: rate x interval / 365), each rounded half to
    even to a minor unit; the last one settles what is left exactly."""
    period = DECIMAL.divide(
        DECIMAL.multiply(Decimal(rate_bp), Decimal(interval_days)), Decimal(10_000 * 365)
    )
    if period == 0:
        payment = DECIMAL.divide(Decimal(principal), Decimal(count))
    else:
        growth = DECIMAL.power(DECIMAL.add(Decimal(1), period), count)
        payment = DECIMAL.divide(
            DECIMAL.multiply(DECIMAL.multiply(Decimal(principal), period), growth),
            DECIMAL.subtract(growth, Decimal(1)),
        )
    each = half_even(payment)
    left = principal
    schedule = []
    for n in range(count):
        interest = half_even(DECIMAL.multiply(Decimal(left), period))
        repaid = left if n == count - 1 else min(left, each - interest)
        schedule.append(
            {
                "due": first_due_ms + n * interval_days * DAY_MS,
                "amount": repaid + interest,
                "principal": repaid,
                "interest": interest,
            }
        )
        left -= repaid
    return schedule


def plan_state(plan: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """What a plan looks like at ``now_ms``: the next instalment, how many are overdue,
    and ``late`` when one is unpaid past its due time."""
    paid = plan["paid"]
    schedule = plan["schedule"]
    overdue = [i for i in schedule[paid:] if i["due"] < now_ms]
    status = plan["status"]
    if status == "active" and overdue:
        status = "late"
    remaining = sum(i["amount"] for i in schedule[paid:])
    return {
        **plan,
        "state": status,
        "overdue": len(overdue),
        "next": schedule[paid] if paid < len(schedule) and plan["status"] == "active" else None,
        "remaining": remaining if plan["status"] in ("active", "offered") else 0,
    }


class Credit(Money):
    """FX quotes and instalment plans."""

    # -- cross-border ----------------------------------------------------------------------

    @contract_method(roles=MONEY_ROLES, org_types={OrgType.BANK})
    def post_quote(self, ctx: Context, args: Args) -> None:
        """Offer to pay ``counter`` for ``base`` at ``rate`` (decimal text: units of
        ``counter`` for one of ``base``, e.g. "7.1234") from ``valid_from`` until
        ``valid_until`` (ms since the epoch, at most 7 days), paying out at most ``limit``
        of ``counter`` in all if given. One direction only: the other way is another quote
        (at the bank's other rate), so no round trip earns on one rate's rounding."""
        quote_id = args.text("quote", pattern=_QUOTE)
        base = self._currency(args, "base")
        counter = self._currency(args, "counter")
        rate = args.text("rate", pattern=_RATE, max_length=22)
        valid_from = args.integer("valid_from", minimum=0)
        valid_until = args.integer("valid_until", minimum=0)
        limit = self._amount(args, "limit") if "limit" in ctx.tx.body.args else None
        self._done(args)
        if base == counter:
            raise ContractError("a quote exchanges two different currencies")
        try:
            if Decimal(rate) <= 0:
                raise ContractError("rate must be above zero")
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            raise ContractError(f"rate {rate!r} is not a decimal number") from None
        if not valid_from < valid_until <= max(valid_from, ctx.time_ms) + MAX_QUOTE_MS:
            raise ContractError("a quote's window must end after it starts, within 7 days")
        if valid_until <= ctx.time_ms:
            raise ContractError("this quote's window has already ended")
        if ctx.get(f"quote/{quote_id}") is not None:
            raise ContractError(f"quote {quote_id} already exists")
        ctx.put(
            f"quote/{quote_id}",
            {
                "id": quote_id,
                "provider": ctx.caller.org_id,
                "base": base,
                "counter": counter,
                "rate": rate,
                "valid_from": valid_from,
                "valid_until": valid_until,
                "limit": limit,
                "paid_out": 0,
                "posted": ctx.time_ms,
            },
        )

    @contract_method(roles=MONEY_ROLES, org_types={OrgType.BANK})
    def withdraw_quote(self, ctx: Context, args: Args) -> None:
        """End one of the caller's quotes now (rates moved)."""
        quote_id = args.text("quote", pattern=_QUOTE)
        self._done(args)
        quote = ctx.get(f"quote/{quote_id}")
        if quote is None:
            raise ContractError(f"unknown quote {quote_id}")
        if quote["provider"] != ctx.caller.org_id:
            raise Forbidden(f"quote {quote_id} is {quote['provider']}'s")
        if quote["valid_until"] <= ctx.time_ms:
            raise ContractError(f"quote {quote_id} has already ended")
        ctx.put(f"quote/{quote_id}", dict(quote, valid_until=ctx.time_ms, withdrawn=True))

    @contract_method(roles=PAYERS)
    def transfer_fx(self, ctx: Context, args: Args) -> None:
        """Pay ``to`` in another currency: ``amount`` of ``currency`` leaves the caller's
        account, is exchanged by quote ``quote``'s bank at its rate (rounded half to even to
        a minor unit) and arrives in ``to``'s account in the other currency."""
        to = args.text("to", max_length=105)
        ccy = self._currency(args)
        amount = self._amount(args)
        quote_id = args.text("quote", pattern=_QUOTE)
        # What the payer was shown: refused if the quote would give anything else.
        expect = args.integer("expect", minimum=1) if "expect" in ctx.tx.body.args else None
        reference = self._reference(args)
        self._done(args)
        quote = ctx.get(f"quote/{quote_id}")
        if quote is None:
            raise ContractError(f"unknown quote {quote_id}")
        if not quote["valid_from"] <= ctx.time_ms < quote["valid_until"]:
            raise ContractError(
                f"quote {quote_id} is not valid at this block's time "
                f"(valid {quote['valid_from']} to {quote['valid_until']})"
            )
        if ccy != quote["base"]:
            raise ContractError(
                f"quote {quote_id} pays {quote['counter']} for {quote['base']}, not for {ccy}"
            )
        other = quote["counter"]
        received = convert(
            amount, quote["rate"], iso_currency(ccy).exponent, iso_currency(other).exponent, False
        )
        if received <= 0:
            raise ContractError(f"{amount} {ccy} is less than one minor unit of {other}")
        if expect is not None and expect != received:
            raise ContractError(f"the quote gives {received}, not the {expect} expected")
        if quote.get("limit") is not None and quote["paid_out"] + received > quote["limit"]:
            raise ContractError(f"quote {quote_id} has not enough of its limit left for this")
        ctx.put(f"quote/{quote_id}", dict(quote, paid_out=quote.get("paid_out", 0) + received))
        payer, bank = self._own(ctx), quote["provider"]
        if to == payer:
            raise ContractError("a transfer goes to another account")
        if ctx.get(f"account/{to}/{other}") is None:
            self._owner_exists(ctx, to)
        legs = [
            (payer, ccy, -amount, 0),
            (bank, ccy, amount, 0),
            (bank, other, -received, 0),
            (to, other, received, 0),
        ]
        self._post(ctx, "fx", legs, reference or quote_id)

    # -- instalment plans ------------------------------------------------------------------

    @contract_method(roles=MONEY_ROLES, org_types={OrgType.BANK})
    def offer_plan(self, ctx: Context, args: Args) -> None:
        """Offer ``patient`` to pay ``clinic`` ``principal`` now and be repaid in
        ``instalments`` every ``interval_days`` at ``rate_bp`` a year, the first due at
        ``first_due`` (ms since the epoch)."""
        plan_id = args.text("plan", pattern=_PLAN)
        patient = args.text("patient", pattern=PATIENT_ID, max_length=105)
        clinic = args.text("clinic", pattern=ORG_ID)
        ccy = self._currency(args)
        principal = self._amount(args, "principal")
        rate_bp = args.integer("rate_bp", minimum=0)
        count = args.integer("instalments", minimum=1)
        interval = args.integer("interval_days", minimum=1)
        first_due = args.integer("first_due", minimum=0)
        self._done(args)
        if principal < count:
            raise ContractError("each instalment must repay at least one minor unit")
        if rate_bp > MAX_RATE_BP:
            raise ContractError(f"rate_bp {rate_bp} is over {MAX_RATE_BP} (100% a year)")
        if count > MAX_INSTALMENTS or interval > 366:
            raise ContractError(f"at most {MAX_INSTALMENTS} instalments, at most 366 days apart")
        if not ctx.time_ms < first_due <= ctx.time_ms + 366 * DAY_MS:
            raise ContractError("the first instalment falls due after today, within a year")
        if ctx.get(f"plan/{plan_id}") is not None:
            raise ContractError(f"plan {plan_id} already exists")
        self._owner_exists(ctx, patient)
        self._owner_exists(ctx, clinic)
        ctx.put(
            f"plan/{plan_id}",
            {
                "id": plan_id,
                "bank": ctx.caller.org_id,
                "patient": patient,
                "clinic": clinic,
                "currency": ccy,
                "principal": principal,
                "rate_bp": rate_bp,
                "interval_days": interval,
                "schedule": instalment_schedule(principal, rate_bp, count, interval, first_due),
                "paid": 0,
                "status": "offered",
                "offered": ctx.time_ms,
            },
        )
        ctx.put(
            f"patient-plan/{patient}/{plan_id}", {"bank": ctx.caller.org_id, "offered": ctx.time_ms}
        )

    def _plan(self, ctx: Context, args: Args, status: str) -> dict[str, Any]:
        plan_id = args.text("plan", pattern=_PLAN)
        self._done(args)
        doc = ctx.get(f"plan/{plan_id}")
        if doc is None:
            raise ContractError(f"unknown plan {plan_id}")
        if not is_patient(ctx.caller, doc["patient"]):
            raise Forbidden(f"plan {plan_id} is {doc['patient']}'s to answer and pay")
        if doc["status"] != status:
            raise ContractError(f"plan {plan_id} is {doc['status']}, not {status}")
        return dict(doc)

    @contract_method(roles={Role.PATIENT})
    def accept_plan(self, ctx: Context, args: Args) -> None:
        """The patient takes the plan: the bank pays the clinic the principal at once."""
        plan = self._plan(ctx, args, "offered")
        if ctx.time_ms >= plan["schedule"][0]["due"]:
            raise ContractError(
                f"plan {plan['id']}'s offer ended when its first instalment fell due"
            )
        bank, clinic, ccy, principal = (
            plan["bank"],
            plan["clinic"],
            plan["currency"],
            plan["principal"],
        )
        self._post(
            ctx, "financing", [(bank, ccy, -principal, 0), (clinic, ccy, principal, 0)], plan["id"]
        )
        ctx.put(f"plan/{plan['id']}", dict(plan, status="active", accepted=ctx.time_ms))

    @contract_method(roles={Role.PATIENT})
    def decline_plan(self, ctx: Context, args: Args) -> None:
        plan = self._plan(ctx, args, "offered")
        ctx.put(f"plan/{plan['id']}", dict(plan, status="declined", declined=ctx.time_ms))

    @contract_method(roles={Role.PATIENT})
    def pay_instalment(self, ctx: Context, args: Args) -> None:
        """Pay the next instalment of an active plan to its bank."""
        plan = self._plan(ctx, args, "active")
        due = plan["schedule"][plan["paid"]]
        self._post(
            ctx,
            "instalment",
            [
                (plan["patient"], plan["currency"], -due["amount"], 0),
                (plan["bank"], plan["currency"], due["amount"], 0),
            ],
            plan["id"],
        )
        paid = plan["paid"] + 1
        payments = [*plan.get("payments", []), {"time": ctx.time_ms, "txid": ctx.txid}]
        status = "paid_off" if paid == len(plan["schedule"]) else "active"
        ctx.put(f"plan/{plan['id']}", dict(plan, paid=paid, payments=payments, status=status))
