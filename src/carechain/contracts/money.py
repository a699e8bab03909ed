"""The double-entry core of the payments contract: accounts, currencies, amounts, and
``_post``, which applies one movement of money whose legs sum to zero per currency.

``contracts/payments.py`` (issuing, transfers, holds, treatment) and
``contracts/payments_credit.py`` (FX quotes, instalment plans) build on it.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal
from decimal import Context as DecimalContext
from typing import Any

from carechain.contracts.consent import patient_id_of
from carechain.contracts.records import patient_exists
from carechain.contracts.runtime import Args, Context, Contract
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

ORG_ID = re.compile(r"[a-z0-9-]{2,40}")
PATIENT_ID = re.compile(r"[a-z0-9-]{2,40}:[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
REFERENCE = re.compile(r"[\x20-\x7e]{0,80}")

DECIMAL = DecimalContext(prec=60, rounding=ROUND_HALF_EVEN)
"""All decimal arithmetic: exact to 60 digits, rounding half to even (banker's rounding)."""


def half_even(value: Decimal) -> int:
    """``value`` rounded to an integer, ties to even (0.5 -> 0, 1.5 -> 2, 2.5 -> 2)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN, context=DECIMAL))


class Money(Contract):
    """Accounts and postings; the payments contract's methods build on these."""

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
            if not PATIENT_ID.fullmatch(owner) or not patient_exists(ctx, owner):
                raise ContractError(f"unknown account owner: no patient {owner[:110]}")
            return
        org = ctx.read("governance", f"org/{owner}") if ORG_ID.fullmatch(owner) else None
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
        return args.text("reference", pattern=REFERENCE, required=False, default="")

    def _done(self, args: Args) -> None:
        if args.unread():
            raise ContractError(f"unknown argument(s): {', '.join(args.unread())}")

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
