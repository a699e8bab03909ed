"""What ``carechain up --demo`` adds on its first run, so that a person has something to
use: logins for the web pages, and a short claims history.

The history is made of real signed transactions, committed like any others: the bank
issues money to the insurer and the patient, the insurer publishes a policy and covers
the patient, the hospital records an encounter (its fingerprint only) and submits two
claims. One is paid in its own block with a co-pay for the patient to pay; the other
names no encounter on the chain, so it waits in the insurer's review queue. The bank
offers the patient an instalment plan for a treatment at the hospital.

The demo's passwords and TOTP secrets are written to ``web-logins-demo.json`` (readable
by its owner only), standing in for the phone a real person would hold;
``carechain web demo-code NAME`` prints a login's current code from it.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from carechain.api.client import build_transaction
from carechain.api.web.logins import WebLogins
from carechain.errors import ConfigError
from carechain.identity.wallet import Credentials, load_credentials
from carechain.node.node import Node

DEMO_FILE = "web-logins-demo.json"
DEMO_LOGINS = (
    ("patient", "pumch/patient-7f3a9c", "a patient: their claims and accounts"),
    ("claims", "bj-nhsa/claims-01", "the insurer's claims desk: the review queue"),
    ("billing", "pumch/admin", "the hospital's billing desk: its claims and accounts"),
    ("auditor", "nmpa/auditor-01", "the regulator's auditor: any claim"),
)
PATIENT = "pumch:patient-7f3a9c"
POLICY = {
    "currency": "CNY",
    "copay_bp": 3000,
    "per_claim_limit": 500_000,
    "annual_limit": 5_000_000,
    "waiting_days": 0,
    "services": {"1200": {"max": 20_000}, "330100001": {"preauth": True}},
    "drugs": {},
    "network": [],
    "bundles": {},
    "drug_trace_from": "2025-07-01",
}


def _creds(root: Path, who: str) -> Credentials:
    org, member = who.split("/")
    return load_credentials(root / "orgs" / org / "members" / member)


def create_demo_logins(root: Path, node_dir: Path) -> Path:
    """A login for each of ``DEMO_LOGINS`` with a random password; the file that lists them."""
    logins = WebLogins(node_dir)
    listed = []
    for name, who, what in DEMO_LOGINS:
        password = secrets.token_urlsafe(12)
        added = logins.add(name, _creds(root, who), password)
        listed.append(
            {
                "name": name,
                "member": who,
                "is": what,
                "password": password,
                "totp_secret": added.secret.hex(),
                "otpauth": added.uri,
            }
        )
    path = root / DEMO_FILE
    path.touch(mode=0o600)
    path.write_text(json.dumps({"logins": listed}, indent=2, ensure_ascii=False) + "\n")
    return path


def seed_demo(node: Node, root: Path) -> list[str]:
    """Commit the demo's claims history on ``node``; the two claims' ids."""
    today = datetime.now(UTC).date()

    def send(who: str, contract: str, method: str, args: dict[str, Any]) -> None:
        tx = build_transaction(_creds(root, who), node.chain, contract, method, args)
        status = node.submit_one(tx, wait_s=10)
        if status.code != "ok":
            raise ConfigError(f"demo {contract}.{method} failed: {status.message}")

    coverage = "cov-" + secrets.token_hex(12)
    send("icbc/admin", "payments", "issue", {"to": "bj-nhsa", "currency": "CNY",
         "amount": 100_000_000})  # fmt: skip
    send("icbc/admin", "payments", "issue", {"to": PATIENT, "currency": "CNY", "amount": 200_000})
    send("icbc/admin", "payments", "issue", {"to": "icbc", "currency": "CNY", "amount": 10_000_000})
    send("bj-nhsa/admin", "claims", "publish_policy",
         {"policy": "pol-basic", "effective_from": today.isoformat(), "rules": POLICY})  # fmt: skip
    send("bj-nhsa/admin", "claims", "register_coverage",
         {"coverage": coverage, "patient": PATIENT, "policy": "pol-basic",
          "start": today.isoformat(),
          "end": (today + timedelta(days=365)).isoformat()})  # fmt: skip
    record = "rec-" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(26))
    send("pumch/dr-wang", "records", "add", {"records": [{
        "record": record, "patient": PATIENT, "type": "Encounter", "category": "AMB",
        "fingerprint": secrets.token_hex(32)}]})  # fmt: skip
    claims = []
    for evidence in ({"record": record}, {}):
        claim = "clm-" + secrets.token_hex(12)
        line = {"seq": 1, "kind": "service", "code": "1200", "day": today.isoformat(),
                "quantity": 1, "amount": 13_557, **evidence}  # fmt: skip
        args = {
            "claim": claim,
            "patient": PATIENT,
            "coverage": coverage,
            "fingerprint": secrets.token_hex(32),
            "currency": "CNY",
            "lines": [line],
        }
        send("pumch/admin", "claims", "submit", args)
        claims.append(claim)
    # The bank offers the patient to pay the hospital 3,000.00 now, repaid in 6 monthly
    # instalments at 4.35% a year; the patient accepts or declines it on the web pages.
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    send("icbc/admin", "payments", "offer_plan",
         {"plan": "plan-" + secrets.token_hex(12), "patient": PATIENT, "clinic": "pumch",
          "currency": "CNY", "principal": 300_000, "rate_bp": 435, "instalments": 6,
          "interval_days": 30, "first_due": now_ms + 30 * 86_400_000})  # fmt: skip
    return claims
