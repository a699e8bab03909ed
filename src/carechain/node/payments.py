"""What a node tells about payments: accounts and statements, holds, treatments, plans,
FX quotes and the money supply.

Everything here reads committed state; changes go through the payments contract
(``contracts/payments.py``, whose docstring draws the state layout). Who may read
what is decided here, so that the REST routes stay thin:

- an account and its statement: its owner (a patient their own; an organisation's
  admin, staff and auditors its organisation's), banks, and regulators and auditors;
- a hold, a treatment, a plan: the parties it names, and regulators and auditors;
- the supply (issued, redeemed, what the accounts hold): banks, regulators, auditors;
- quotes: every member.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import orjson

from carechain.contracts.consent import is_patient, patient_id_of
from carechain.contracts.membership import MemberRecord
from carechain.contracts.payments import plan_state
from carechain.errors import Forbidden, InvalidInput, NotFound
from carechain.identity.roles import OrgType, Role
from carechain.standards.iso4217 import currency, format_amount

if TYPE_CHECKING:
    from carechain.node.node import Node

PREFIX = "payments/"
ORG_READERS = {Role.ADMIN, Role.STAFF, Role.AUDITOR}
"""Who of an organisation sees its own accounts."""
_LINE = re.compile(r"[0-9]{1,12}")
_OWNER = re.compile(r"[a-z0-9-]{2,40}(:[A-Za-z0-9][A-Za-z0-9._@-]{0,63})?")


def overseer(who: MemberRecord) -> bool:
    """A regulator's member or an auditor (never a patient one of them registered): reads
    payments and claims across the chain."""
    if who.role is Role.PATIENT:
        return False
    return who.org_type is OrgType.REGULATOR or who.role is Role.AUDITOR


def settlement_bank(who: MemberRecord) -> bool:
    """A bank's own people (not a patient the bank registered): see accounts they settle."""
    return who.org_type is OrgType.BANK and who.role in ORG_READERS


def check_account_reader(who: MemberRecord, owner: str) -> None:
    """Raise ``Forbidden`` (naming why) unless ``who`` may see ``owner``'s accounts."""
    if settlement_bank(who) or overseer(who):
        return
    if ":" in owner:
        if is_patient(who, owner):
            return
        raise Forbidden(
            f"{owner}'s accounts are the patient's own: {who.org_id}'s {who.role}s may not "
            "see them (banks, regulators and auditors may)"
        )
    if who.org_id == owner and who.role in ORG_READERS:
        return
    if who.org_id == owner:
        raise Forbidden(
            f"{owner}'s {who.role}s may not see its accounts: only its admins, staff and "
            "auditors (and banks, regulators and auditors)"
        )
    raise Forbidden(
        f"{owner}'s accounts are not {who.org_id}'s to see: only {owner}'s admins, staff and "
        "auditors, banks, regulators and auditors see them"
    )


def is_party(who: MemberRecord, party: str) -> bool:
    """``who`` acts for ``party``: the patient themself, or a member (not a patient) of the
    organisation."""
    if ":" in party:
        return is_patient(who, party)
    return who.org_id == party and who.role is not Role.PATIENT


def check_party(who: MemberRecord, what: str, parties: dict[str, str]) -> None:
    """Raise ``Forbidden`` unless ``who`` is one of ``parties`` (role -> owner) or oversees."""
    if overseer(who) or any(is_party(who, p) for p in parties.values()):
        return
    raise Forbidden(f"{what} is seen by its parties and by regulators and auditors only")


def own_owner(who: MemberRecord) -> str:
    """The account owner a member acts for: a patient's id, else the organisation."""
    return patient_id_of(who) if who.role is Role.PATIENT else who.org_id


def formatted(doc: dict[str, Any], ccy: str, *fields: str) -> dict[str, Any]:
    """``doc`` with ``formatted``: each of ``fields`` (minor units) as text, "123.45 CNY"."""
    return {**doc, "formatted": {f: format_amount(doc[f], ccy) for f in fields if f in doc}}


class PaymentService:
    def __init__(self, node: Node) -> None:
        self.node = node

    def _get(self, key: str) -> Any | None:
        raw = self.node.state.get(PREFIX + key)
        return None if raw is None else orjson.loads(raw)

    def now_ms(self) -> int:
        """The later of the last block's time and the wall clock (as drug views do)."""
        return max(self.node.state.time_ms, int(time.time() * 1000))

    # -- accounts ------------------------------------------------------------------------

    def accounts(self, who: MemberRecord, owner: str) -> dict[str, Any]:
        """Every account of ``owner`` (one a currency), with amounts also as text."""
        check_account_reader(who, owner)
        found = []
        if _OWNER.fullmatch(owner):
            for _, raw in self.node.state.scan(f"{PREFIX}account/{owner}/"):
                doc = orjson.loads(raw)
                doc["total"] = doc["balance"] + doc["held"]
                found.append(formatted(doc, doc["currency"], "balance", "held", "total"))
        if not found:
            raise NotFound(f"{owner[:110]} has no account")
        return {"owner": owner, "accounts": found}

    def entries(
        self, who: MemberRecord, owner: str, ccy: str, after: str = "", limit: int = 100
    ) -> dict[str, Any]:
        """Statement lines of one account, oldest first; ``next`` is the ``after`` of the
        next page, or None on the last."""
        check_account_reader(who, owner)
        code = currency(ccy).code
        if self._get(f"account/{owner}/{code}") is None:
            raise NotFound(f"{owner[:110]} has no {code} account")
        if after and not _LINE.fullmatch(after):
            raise InvalidInput(f"after {after[:20]!r} is not a statement line number")
        prefix = f"{PREFIX}entry/{owner}/{code}/"
        start = prefix + after.zfill(12) if after else ""
        rows = self.node.state.scan(prefix, limit + 1, start)
        lines = []
        for key, raw in rows[:limit]:
            doc = orjson.loads(raw)
            doc["line"] = int(key[len(prefix) :])
            lines.append(formatted(doc, code, "delta", "available", "balance", "held"))
        more = len(rows) > limit
        return {
            "owner": owner,
            "currency": code,
            "entries": lines,
            "next": f"{lines[-1]['line']:012d}" if more else None,
        }

    # -- holds, treatments, plans -------------------------------------------------------

    def hold(self, who: MemberRecord, hold_id: str) -> dict[str, Any]:
        doc = self._get(f"hold/{hold_id}") if hold_id.startswith(("hold-", "trt-")) else None
        if doc is None:
            raise NotFound(f"no hold {hold_id[:40]}")
        check_party(who, f"hold {hold_id}", {"payer": doc["payer"], "payee": doc["payee"]})
        return formatted(doc, doc["currency"], "amount", "captured")

    def treatment(self, who: MemberRecord, treatment_id: str) -> dict[str, Any]:
        doc = self._get(f"treatment/{treatment_id}") if treatment_id.startswith("trt-") else None
        if doc is None:
            raise NotFound(f"no treatment {treatment_id[:40]}")
        parties = {"clinic": doc["clinic"], "patient": doc["patient"]}
        check_party(who, f"treatment {treatment_id}", parties)
        return dict(doc)

    def plan(self, who: MemberRecord, plan_id: str) -> dict[str, Any]:
        """A plan as it stands now: state (``late`` when an instalment is overdue), how many
        are overdue, the next instalment and what remains to pay."""
        doc = self._get(f"plan/{plan_id}") if plan_id.startswith("plan-") else None
        if doc is None:
            raise NotFound(f"no plan {plan_id[:40]}")
        parties = {"bank": doc["bank"], "patient": doc["patient"], "clinic": doc["clinic"]}
        check_party(who, f"plan {plan_id}", parties)
        return plan_state(doc, self.now_ms())

    def patient_plans(self, who: MemberRecord, patient: str) -> list[dict[str, Any]]:
        """A patient's instalment plans as they stand now, newest offer first: for the
        patient, the banks, and regulators and auditors."""
        if not _OWNER.fullmatch(patient) or ":" not in patient:
            raise InvalidInput(f"{patient[:110]!r} is not a patient id (org:member)")
        if not (is_patient(who, patient) or settlement_bank(who) or overseer(who)):
            raise Forbidden("only the patient (or a bank, regulator or auditor) lists their plans")
        now = self.now_ms()
        found = []
        for key, _ in self.node.state.scan(f"{PREFIX}patient-plan/{patient}/"):
            doc = self._get(f"plan/{key.rsplit('/', 1)[1]}")
            if doc is not None and (is_patient(who, patient) or overseer(who) or
                                    doc["bank"] == who.org_id):  # fmt: skip
                found.append(plan_state(doc, now))
        return sorted(found, key=lambda p: (-p["offered"], p["id"]))

    # -- quotes ----------------------------------------------------------------------------

    def quote(self, quote_id: str) -> dict[str, Any]:
        doc = self._get(f"quote/{quote_id}") if quote_id.startswith("fxq-") else None
        if doc is None:
            raise NotFound(f"no quote {quote_id[:40]}")
        now = self.now_ms()
        return {**doc, "valid": doc["valid_from"] <= now < doc["valid_until"]}

    def quotes(self, base: str = "", counter: str = "") -> dict[str, Any]:
        """Quotes valid now, oldest posted first; ``base`` and ``counter`` narrow them."""
        base = currency(base).code if base else ""
        counter = currency(counter).code if counter else ""
        now = self.now_ms()
        found = []
        for _, raw in self.node.state.scan(f"{PREFIX}quote/"):
            doc = orjson.loads(raw)
            if (base and doc["base"] != base) or (counter and doc["counter"] != counter):
                continue
            if doc["valid_from"] <= now < doc["valid_until"]:
                found.append(doc)
        found.sort(key=lambda q: (q["posted"], q["id"]))
        return {"quotes": found, "time": now}

    # -- supply ----------------------------------------------------------------------------

    def supply(self, who: MemberRecord) -> dict[str, Any]:
        """Per currency: issued, redeemed, outstanding (issued - redeemed), what the accounts
        hold (balances and holds) and whether the two agree; read from one snapshot."""
        if not settlement_bank(who) and not overseer(who):
            raise Forbidden("only banks, regulators and auditors see the money supply")
        with self.node.state.snapshot():
            supply = self.node.state.scan(f"{PREFIX}supply/")
            issuers = self.node.state.scan(f"{PREFIX}issuer/")
            accounts = self.node.state.scan(f"{PREFIX}account/")
        banks: dict[str, dict[str, Any]] = {}
        for key, raw in issuers:
            bank, ccy = key[len(PREFIX) + len("issuer/") :].split("/")
            banks.setdefault(ccy, {})[bank] = orjson.loads(raw)
        held: dict[str, list[int]] = {}
        for _, raw in accounts:
            doc = orjson.loads(raw)
            sums = held.setdefault(doc["currency"], [0, 0, 0])
            sums[0] += doc["balance"]
            sums[1] += doc["held"]
            sums[2] += 1
        out: dict[str, Any] = {}
        for key, raw in supply:
            doc = orjson.loads(raw)
            out[key.rsplit("/", 1)[1]] = doc
        for ccy in sorted(set(out) | set(held)):
            doc = out.get(ccy, {"outstanding": 0})
            balances, holds, count = held.get(ccy, [0, 0, 0])
            outstanding = doc["outstanding"]
            by_bank = banks.get(ccy, {})
            issued = sum(b["issued"] for b in by_bank.values())
            redeemed = sum(b["redeemed"] for b in by_bank.values())
            row = {
                "issued": issued,
                "redeemed": redeemed,
                "outstanding": outstanding,
                "balances": balances,
                "held": holds,
                "in_accounts": balances + holds,
                "accounts": count,
                "conserved": outstanding == balances + holds == issued - redeemed,
                "banks": by_bank,
            }
            out[ccy] = formatted(
                row, ccy, "issued", "redeemed", "outstanding", "balances", "held", "in_accounts"
            )
        currencies = {ccy: out[ccy] for ccy in sorted(out)}
        return {
            "currencies": currencies,
            "conserved": all(row["conserved"] for row in currencies.values()),
        }
