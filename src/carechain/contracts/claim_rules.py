"""What the claims contract checks and reads: policy rules as data, dates and amounts,
and ``ChainFacts``, the facts adjudication asks of the chain (contracts/claims.py).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from carechain.contracts.membership import MemberRecord
from carechain.contracts.payments import MAX_AMOUNT
from carechain.contracts.runtime import Context
from carechain.errors import ContractError, InvalidInput
from carechain.identity.roles import OrgType, Role
from carechain.standards.iso4217 import currency as iso_currency

NHSA_TRACE_RULE_DAY = "2025-07-01"
"""NHSA: drug settlement needs the pack's traceability code from this day (医保药品追溯码)."""
MAX_LINES = 200
MAX_LEGACY = 100_000
MAX_CODES = 5000
DESK = {Role.ADMIN, Role.STAFF}
PROVIDER_ROLES = {Role.ADMIN, Role.STAFF, Role.CLINICIAN, Role.PHARMACIST}
PROVIDERS = {OrgType.HOSPITAL, OrgType.CLINIC, OrgType.PHARMACY}

_ID = {
    "claim": re.compile(r"clm-[0-9a-f]{24}"),
    "coverage": re.compile(r"cov-[0-9a-f]{24}"),
    "policy": re.compile(r"pol-[a-z0-9-]{1,40}"),
}
_PATIENT = re.compile(r"[a-z0-9-]{2,40}:[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_ORG = re.compile(r"[a-z0-9-]{2,40}")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,31}")
_PRODUCT = re.compile(r"\d{14}|cn:\d{7}")
_PACK = re.compile(r"(sgtin:\d{14}\.[!-~]{1,20}|cn-trace:\d{20})")
_LOT = re.compile(r"[!-~]{1,20}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NOTE = re.compile(r"[^\x00-\x1f\x7f]{0,500}")


def _day(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise ContractError(f"{where} must be a date YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ContractError(f"{where} {value} is not a calendar date") from None
    if not "1900" <= value[:4] <= "2199":
        raise ContractError(f"{where} {value} is outside the years 1900 to 2199")
    return value


def _utc_day(time_ms: int) -> str:
    """The block's day (UTC)."""
    return datetime.fromtimestamp(time_ms // 1000, UTC).date().isoformat()


def _amount(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"{where} must be an integer amount in minor units")
    if not 0 <= value <= MAX_AMOUNT:
        raise ContractError(f"{where} must be between 0 and {MAX_AMOUNT}")
    return value


def check_rules(rules: Any) -> dict[str, Any]:
    """A policy version's rules, checked field by field (errors name the field)."""
    if not isinstance(rules, dict):
        raise ContractError("rules must be an object")
    known = {
        "currency", "copay_bp", "per_claim_limit", "annual_limit", "waiting_days", "services",
        "drugs", "network", "bundles", "drug_trace_from",
    }  # fmt: skip
    unknown = sorted(set(rules) - known)
    if unknown:
        raise ContractError(f"rules has unknown field(s): {', '.join(unknown)}")
    try:
        ccy = iso_currency(rules.get("currency")).code
    except InvalidInput as exc:
        raise ContractError(f"rules.currency: {exc.message}") from None
    copay_bp = rules.get("copay_bp")
    if isinstance(copay_bp, bool) or not isinstance(copay_bp, int) or not 0 <= copay_bp <= 10_000:
        raise ContractError("rules.copay_bp must be 0 to 10000 (basis points)")
    waiting = rules.get("waiting_days", 0)
    if isinstance(waiting, bool) or not isinstance(waiting, int) or not 0 <= waiting <= 3650:
        raise ContractError("rules.waiting_days must be 0 to 3650")
    out: dict[str, Any] = {
        "currency": ccy,
        "copay_bp": copay_bp,
        "per_claim_limit": _amount(rules.get("per_claim_limit"), "rules.per_claim_limit"),
        "annual_limit": _amount(rules.get("annual_limit"), "rules.annual_limit"),
        "waiting_days": waiting,
    }
    for name, pattern in (("services", _CODE), ("drugs", _PRODUCT)):
        table = rules.get(name, {})
        if not isinstance(table, dict) or len(table) > MAX_CODES:
            raise ContractError(f"rules.{name} must be an object of at most {MAX_CODES} codes")
        checked = {}
        for code, rule in sorted(table.items()):
            where = f"rules.{name}[{code!r}]"
            if not pattern.fullmatch(code):
                raise ContractError(f"{where}: {code[:40]!r} is not a {name[:-1]} code")
            if not isinstance(rule, dict) or set(rule) - {"max", "preauth"}:
                raise ContractError(f"{where} must be an object with max and/or preauth")
            entry: dict[str, Any] = {}
            if "max" in rule:
                entry["max"] = _amount(rule["max"], f"{where}.max")
            if "preauth" in rule:
                if not isinstance(rule["preauth"], bool):
                    raise ContractError(f"{where}.preauth must be true or false")
                entry["preauth"] = rule["preauth"]
            checked[code] = entry
        out[name] = checked
    network = rules.get("network", [])
    if not isinstance(network, list) or not all(
        isinstance(o, str) and _ORG.fullmatch(o) for o in network
    ):
        raise ContractError("rules.network must be a list of organisation ids")
    out["network"] = sorted(set(network))
    bundles = rules.get("bundles", {})
    if not isinstance(bundles, dict):
        raise ContractError("rules.bundles must be an object: bundle code -> its part codes")
    out["bundles"] = {}
    for bundle, parts in sorted(bundles.items()):
        if not _CODE.fullmatch(bundle) or not isinstance(parts, list) or len(parts) < 2:
            raise ContractError(f"rules.bundles[{bundle[:40]!r}] must list two or more codes")
        if not all(isinstance(p, str) and _CODE.fullmatch(p) for p in parts):
            raise ContractError(f"rules.bundles[{bundle[:40]!r}] holds a bad code")
        out["bundles"][bundle] = sorted(set(parts))
    trace_from = rules.get("drug_trace_from")
    out["drug_trace_from"] = (
        None if trace_from is None else _day(trace_from, "rules.drug_trace_from")
    )
    return out


class ChainFacts:
    """``adjudication.Facts`` from the claims contract's state and the others'."""

    def __init__(self, ctx: Context, claim: dict[str, Any], coverage: dict[str, Any]) -> None:
        self.ctx = ctx
        self.claim = claim
        self.coverage = coverage
        self._versions: list[tuple[str, dict[str, Any]]] | None = None

    def policy_on(self, day: str) -> dict[str, Any] | None:
        if self._versions is None:
            prefix = f"policy/{self.coverage['insurer']}/{self.coverage['policy']}/"
            self._versions = [(k[len(prefix) :], v) for k, v in self.ctx.scan(prefix)]
        found = None
        for start, version in self._versions:  # key order is date order
            if start <= day:
                found = version
        return found

    def record(self, record_id: str) -> dict[str, Any] | None:
        return self.ctx.read("records", f"record/{record_id}")

    def pack(self, key: str) -> dict[str, Any] | None:
        return self.ctx.read("drugs", f"pack/{key}")

    def death_day(self) -> str | None:
        doc = self.ctx.get(f"death/{self.claim['patient']}")
        return None if doc is None else str(doc["day"])

    def preauthorised(self, code: str, day: str) -> bool:
        doc = self.ctx.get(f"preauth/{self.coverage['id']}/{code}")
        return doc is not None and doc["from"] <= day <= doc["until"]

    def earlier_claim(self, code: str, day: str) -> str | None:
        found = self.ctx.scan(f"line/{self.claim['patient']}/{code}/{day}/", limit=1)  # first
        return found[0][0].rsplit("/", 1)[1] if found else None

    def record_claimed(self, record_id: str) -> str | None:
        doc = self.ctx.get(f"evidence/{record_id}")
        return None if doc is None else str(doc["claim"])

    def pack_claimed(self, key: str) -> str | None:
        doc = self.ctx.get(f"pack/{key}")
        return None if doc is None else str(doc["claim"])

    def legacy_left(self, product: str, lot: str) -> int:
        doc = self.ctx.get(f"legacy/{self.claim['provider']}/{product}/{lot}")
        return 0 if doc is None or not doc.get("confirmed") else int(doc["left"])

    def used_this_year(self, year: str) -> int:
        doc = self.ctx.get(f"usage/{self.coverage['id']}/{year}")
        return 0 if doc is None else int(doc["insurer"])


NEWEST_FIRST = 10**12 - 1
"""A provider's claims are keyed by ``NEWEST_FIRST`` minus the block height, so that a
scan, which goes in key order, meets the newest first."""


def provider_key(provider: str, height: int, claim_id: str) -> str:
    return f"provider/{provider}/{NEWEST_FIRST - height:012d}/{claim_id}"


def submit_reads(args: dict[str, Any], caller: MemberRecord) -> list[str]:
    """The keys ``claims.submit`` reads, from its raw arguments (``Contract.reads``): the
    claim, its coverage and the insurer's use of it this year, the patient's death, the
    provider's fingerprint and account, and each line's record or pack on the chain and
    in claims."""
    coverage, patient = args["coverage"], args["patient"]
    keys = [
        f"claims/claim/{args['claim']}",
        f"claims/coverage/{coverage}",
        f"claims/death/{patient}",
        f"claims/fingerprint/{caller.org_id}/{args['fingerprint']}",
        f"payments/account/{caller.org_id}/{args['currency']}",
    ]
    for line in args["lines"][:MAX_LINES]:
        keys.append(f"claims/usage/{coverage}/{line['day'][:4]}")
        if line.get("record"):
            keys += [f"records/record/{line['record']}", f"claims/evidence/{line['record']}"]
        if line.get("pack"):
            keys += [f"drugs/pack/{line['pack']}", f"claims/pack/{line['pack']}"]
    return keys
