"""Shared by the claims tests: an insurer with money, a policy and a covered patient, and
the on-chain evidence claims point at (records, dispensed packs)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from carechain.api.client import build_transaction
from carechain.identity.wallet import Credentials
from carechain.node.node import Node, TxStatus
from carechain.standards.gs1 import PackId

Member = Callable[[str], Credentials]
INSURER, BANK = "bj-nhsa/admin", "icbc/admin"
HOSPITAL_DESK, PHARMACIST = "pumch/admin", "yf-pharmacy/ph-chen"
PATIENT_MEMBER, PATIENT = "pumch/patient-7f3a9c", "pumch:patient-7f3a9c"
GTIN = "09506000134352"  # GS1's example GTIN (tests/standards/gs1/testdata/README.md)
TESTDATA = Path(__file__).parent / "contracts" / "testdata"
TODAY = datetime.now(UTC).date().isoformat()
RULES = {
    "currency": "CNY",
    "copay_bp": 3000,
    "per_claim_limit": 500_000,
    "annual_limit": 2_000_000,
    "waiting_days": 0,
    "services": {"1200": {"max": 20_000}, "330100001": {"preauth": True},
                 "A1": {}, "A2": {}},
    "drugs": {GTIN: {"max": 5_000}},
    "bundles": {"B1": ["A1", "A2"]},
    "drug_trace_from": "2025-07-01",
}  # fmt: skip


def new(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(12)}"


def send(node: Node, creds: Credentials, contract: str, method: str, args: Any) -> TxStatus:
    return node.submit_one(build_transaction(creds, "demo", contract, method, args), wait_s=10)


def ok(status: TxStatus) -> None:
    assert status.code == "ok", status.message


def claim_doc(node: Node, claim_id: str) -> Any:
    raw = node.state.get(f"claims/claim/{claim_id}")
    return None if raw is None else orjson.loads(raw)


def balance(node: Node, owner: str) -> int:
    raw = node.state.get(f"payments/account/{owner}/CNY")
    return 0 if raw is None else int(orjson.loads(raw)["balance"])


class World:
    """An insurer with money and a policy, the patient covered under it, and helpers for
    the evidence a claim points at (records, dispensed packs)."""

    def __init__(self, node: Node, member: Member) -> None:
        self.node, self.member = node, member
        self.coverage = new("cov")
        ok(send(node, member(BANK), "payments", "issue",
                {"to": "bj-nhsa", "currency": "CNY", "amount": 10_000_000}))  # fmt: skip
        ok(send(node, member(INSURER), "claims", "publish_policy",
                {"policy": "pol-basic", "effective_from": TODAY, "rules": RULES}))  # fmt: skip
        start = (datetime.now(UTC) - timedelta(days=400)).date().isoformat()
        end = (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
        ok(send(node, member(INSURER), "claims", "register_coverage",
                {"coverage": self.coverage, "patient": PATIENT, "policy": "pol-basic",
                 "start": start, "end": end}))  # fmt: skip

    def record(self, patient: str = PATIENT, by: str = "pumch/dr-wang") -> str:
        """An encounter record on the chain (its content would be in the hospital's vault)."""
        record_id = "rec-" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567")
                                     for _ in range(26))  # fmt: skip
        ok(send(self.node, self.member(by), "records", "add", {"records": [{
            "record": record_id, "patient": patient, "type": "Encounter", "category": "AMB",
            "fingerprint": secrets.token_hex(32)}]}))  # fmt: skip
        return record_id

    def dispensed(self, serial: str, patient: str = PATIENT) -> str:
        """A pack made, shipped to the pharmacy, received and dispensed to ``patient``."""
        key = PackId.sgtin(GTIN, serial).key
        maker, pharmacy = self.member("sinopharm-mfg/qa-01"), self.member(PHARMACIST)
        ok(send(self.node, maker, "drugs", "commission",
                {"packs": [{"code": key, "lot": "L1", "expiry": "291231"}]}))  # fmt: skip
        shipment = "shp-" + secrets.token_hex(12)
        ok(send(self.node, maker, "drugs", "ship",
                {"shipment": shipment, "to": "yf-pharmacy", "items": [key]}))  # fmt: skip
        ok(send(self.node, pharmacy, "drugs", "receive", {"shipment": shipment}))
        ok(send(self.node, pharmacy, "drugs", "dispense", {"code": key, "patient": patient}))
        return key

    def claim(self, who: str, lines: list[dict[str, Any]], **extra: Any) -> tuple[str, TxStatus]:
        claim_id = new("clm")
        args = {"claim": claim_id, "patient": PATIENT, "coverage": self.coverage,
                "fingerprint": secrets.token_hex(32), "currency": "CNY", "lines": lines,
                **extra}  # fmt: skip
        return claim_id, send(self.node, self.member(who), "claims", "submit", args)


def service(code: str = "1200", amount: int = 13_557, **extra: Any) -> dict[str, Any]:
    return {"seq": 1, "kind": "service", "code": code, "day": TODAY, "quantity": 1,
            "amount": amount, **extra}  # fmt: skip


def drug(pack: str | None, amount: int = 4_000, **extra: Any) -> dict[str, Any]:
    line = {"seq": 1, "kind": "drug", "code": GTIN, "day": TODAY, "quantity": 1,
            "amount": amount, **extra}  # fmt: skip
    if pack is not None:
        line["pack"] = pack
    return line
