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

Who may move money: an organisation's admin and staff for its accounts; a
patient for their own; nobody else. Two holds in one block against one
account see each other (transactions run in block order on one state), so
they cannot overdraw it together.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from decimal import Context as DecimalContext
from typing import Any

from carechain.contracts.consent import is_patient, patient_id_of
from carechain.contracts.records import patient_exists
from carechain.contracts.runtime import Args, Context, Contract, contract_method
from carechain.errors import ContractError, Forbidden, InvalidInput
from carechain.identity.roles import OrgType, Role
from carechain.standards.iso4217 import currency as iso_currency

MAX_AMOUNT = 10**15
"""The largest amount one operation moves (in minor units: 10 trillion yuan). Totals
stay far inside the canonical-JSON integer range (2**53)."""
MAX_HOLD_MS = 366 * 24 * 3600 * 1000
MAX_QUOTE_MS = 7 * 24 * 3600 * 1000
MAX_INSTALMENTS = 360
MAX_RATE_BP = 10_000  # 100% a year
MONEY_ROLES = {Role.ADMIN, Role.STAFF}
PAYERS = {Role.ADMIN, Role.STAFF, Role.PATIENT}
CARE_ORGS = {OrgType.HOSPITAL, OrgType.CLINIC, OrgType.PHARMACY}
DAY_MS = 24 * 3600 * 1000

_ORG = re.compile(r"[a-z0-9-]{2,40}")
_PATIENT = re.compile(r"[a-z0-9-]{2,40}:[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_NEW_HOLD = re.compile(r"hold-[0-9a-f]{24}")
_HOLD = re.compile(r"(hold|trt)-[0-9a-f]{24}")
"""A hold's id: ``hold-...``, or a treatment's id for its admission hold."""
_QUOTE = re.compile(r"fxq-[0-9a-f]{24}")
_TREATMENT = re.compile(r"trt-[0-9a-f]{24}")
_PLAN = re.compile(r"plan-[0-9a-f]{24}")
_RATE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,12})?")
_REFERENCE = re.compile(r"[\x20-\x7e]{0,80}")

DECIMAL = DecimalContext(prec=60, rounding=ROUND_HALF_EVEN)
"""All decimal arithmetic: exact to 60 digits, rounding half to even (banker's rounding)."""


def half_even(value: Decimal) -> int:
    """``value`` rounded to an integer, ties to even (0.5 -> 0, 1.5 -> 2, 2.5 -> 2)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN, context=DECIMAL))


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


class Payments(Contract):
    name = "payments"

    # -- accounts and the double-entry core ------------------------------------------------

    def _currency(self, args: Args, name: str = "currency") -> str:
        code = args.text(name, max_length=3)
        try:
            return iso_currency(code).code
        except InvalidInput as exc:
            raise ContractError(f"argument {name!r}: {exc.message}") from None

    def _amount(self, args: Args, name: str = "amount") -> int:
        value = args.integer(name)
        if value <= 0:
            raise ContractError(f"argument {name!r} must be a positive amount, got {value}")
        if value > MAX_AMOUNT:
            raise ContractError(f"argument {name!r} is over the limit of {MAX_AMOUNT}")
        return value

    def _owner_exists(self, ctx: Context, owner: str) -> None:
        if ":" in owner:
            if not _PATIENT.fullmatch(owner) or not patient_exists(ctx, owner):
                raise ContractError(f"unknown account owner: no patient {owner[:110]}")
            return
        org = ctx.read("governance", f"org/{owner}") if _ORG.fullmatch(owner) else None
        if org is None or org.get("status") != "active":
            raise ContractError(f"unknown account owner: no active organisation {owner[:40]!r}")

    def _own(self, ctx: Context) -> str:
        """The account owner the caller acts for: the patient, or the caller's organisation."""
        caller = ctx.caller
        if caller.role is Role.PATIENT:
            return patient_id_of(caller)
        if caller.role not in MONEY_ROLES:
            raise Forbidden(f"a {caller.role} may not move {caller.org_id}'s money")
        return caller.org_id

    def _account(self, ctx: Context, owner: str, ccy: str, *, create: bool) -> dict[str, Any]:
        doc = ctx.get(f"account/{owner}/{ccy}")
        if doc is not None:
            return dict(doc)
        if not create:
            raise ContractError(f"insufficient funds: {owner} has no {ccy} account")
        self._owner_exists(ctx, owner)
        return {
            "owner": owner,
            "currency": ccy,
            "balance": 0,
            "held": 0,
            "opened": ctx.time_ms,
            "entries": 0,
        }

    def _post(
        self,
        ctx: Context,
        kind: str,
        legs: list[tuple[str, str, int, int]],
        reference: str = "",
    ) -> None:
        """Apply one movement: ``legs`` of (owner, currency, change of balance, change of
        held), where owner ``@supply`` is the currency's issued-minus-redeemed. The legs
        must sum to zero per currency and leave no balance below zero."""
        totals: dict[str, int] = {}
        for _, ccy, balance, held in legs:
            totals[ccy] = totals.get(ccy, 0) + balance + held
        unbalanced = {c: t for c, t in totals.items() if t != 0}
        if unbalanced:  # pragma: no cover - a bug in this contract, never bad input
            raise ContractError(f"internal: unbalanced posting {unbalanced}")
        accounts: dict[tuple[str, str], dict[str, Any]] = {}
        for owner, ccy, balance, held in legs:
            if owner == "@supply":
                continue
            key = (owner, ccy)
            if key not in accounts:
                accounts[key] = self._account(ctx, owner, ccy, create=balance + held > 0)
            doc = accounts[key]
            doc["balance"] += balance
            doc["held"] += held
            if doc["balance"] < 0:
                raise ContractError(
                    f"insufficient funds: {owner}'s {ccy} account cannot cover this {kind}"
                )
            if doc["held"] < 0:  # pragma: no cover - holds are released once
                raise ContractError(f"internal: negative held amount for {owner}")
        parties = sorted({owner for owner, _, _, _ in legs})
        for (owner, ccy), doc in sorted(accounts.items()):
            delta = sum(b + h for o, c, b, h in legs if (o, c) == (owner, ccy))
            moved = sum(b for o, c, b, _ in legs if (o, c) == (owner, ccy))
            doc["entries"] += 1
            ctx.put(f"account/{owner}/{ccy}", doc)
            ctx.put(
                f"entry/{owner}/{ccy}/{doc['entries']:012d}",
                {
                    "height": ctx.block.height,
                    "index": ctx.index,
                    "txid": ctx.txid,
                    "time": ctx.time_ms,
                    "kind": kind,
                    "delta": delta,
                    "available": moved,
                    "balance": doc["balance"],
                    "held": doc["held"],
                    "counterparty": [p for p in parties if p != owner],
                    "reference": reference,
                },
            )

    def _must(self, ctx: Context, key: str) -> dict[str, Any]:
        doc = ctx.get(key)
        if doc is None:  # pragma: no cover - a broken invariant, not bad input
            raise ContractError(f"payments state is missing {key}")
        return dict(doc)

    def _reference(self, args: Args) -> str:
        return args.text("reference", pattern=_REFERENCE, required=False, default="")

    def _done(self, args: Args) -> None:
        if args.unread():
            raise ContractError(f"unknown argument(s): {', '.join(args.unread())}")

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

    def _supply(
        self, ctx: Context, ccy: str, bank: str, issued: int = 0, redeemed: int = 0
    ) -> None:
        """Move the currency's outstanding supply and the bank's own totals. Only the
        bank's totals grow with turnover, so no bank can exhaust what the chain can
        count for the others."""
        mine = dict(ctx.get(f"issuer/{bank}/{ccy}") or {"issued": 0, "redeemed": 0})
        if mine["redeemed"] + redeemed > mine["issued"] + issued:
            raise ContractError(f"{bank} would redeem more {ccy} than it ever issued")
        mine["issued"] += issued
        mine["redeemed"] += redeemed
        ctx.put(f"issuer/{bank}/{ccy}", mine)
        doc = ctx.get(f"supply/{ccy}") or {"outstanding": 0}
        ctx.put(f"supply/{ccy}", {"outstanding": doc["outstanding"] + issued - redeemed})

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
        purpose = args.text("purpose", pattern=_REFERENCE, required=False, default="")
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
        patient = args.text("patient", pattern=_PATIENT, max_length=105)
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
        patient = args.text("patient", pattern=_PATIENT, max_length=105)
        clinic = args.text("clinic", pattern=_ORG)
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


def post(
    ctx: Context, kind: str, legs: list[tuple[str, str, int, int]], reference: str = ""
) -> None:
    """Move money for another contract under this one's rules (claims pays providers):
    ``ctx`` is the calling transaction's context acting for payments (``acting_for``)."""
    if ctx.contract != Payments.name:
        raise ContractError("internal: payments are posted in the payments namespace")
    Payments()._post(ctx, kind, legs, reference)
