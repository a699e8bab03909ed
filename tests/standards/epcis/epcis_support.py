"""Helpers for the EPCIS tests: test data under ``testdata/``, and a drugs ledger in memory.

``DrugsLedger`` runs the real drugs contract's methods against a dict, so the
round-trip tests export exactly the event documents the contract writes (the
role and organisation checks of the runtime are not run: they are not what is
tested here).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from carechain.contracts.drugs import Drugs
from carechain.contracts.runtime import Args
from carechain.identity.roles import OrgType
from carechain.standards.epcis import CustodyEvent

TESTDATA = Path(__file__).parent / "testdata"
ORG_TYPES = {
    "sinopharm-mfg": OrgType.MANUFACTURER,
    "jd-logistics": OrgType.DISTRIBUTOR,
    "yf-pharmacy": OrgType.PHARMACY,
}
START_MS = 1767225600000  # 2026-01-01T00:00:00Z


def load(name: str) -> Any:
    return json.loads((TESTDATA / name).read_text(encoding="utf-8"))


class DrugsLedger:
    """The drugs contract over an in-memory state: one transaction per ``call``."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.events: list[str] = []  # event keys in the order written
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.height = 0
        self.contract = Drugs()

    def call(self, org: str, method: str, args: dict[str, Any]) -> None:
        self.height += 1
        values = json.loads(json.dumps(args))
        ctx = SimpleNamespace(
            tx=SimpleNamespace(body=SimpleNamespace(args=values)),
            caller=SimpleNamespace(org_id=org, org_type=ORG_TYPES[org], fingerprint="fp-" + org),
            time_ms=START_MS + self.height * 60_000,
            txid=f"{self.height:064x}",
            block=SimpleNamespace(height=self.height),
            index=0,
            get=self.state.get,
            put=self._put,
            read=lambda contract, key: {"status": "active"} if contract == "governance" else None,
            # governance's member index: every patient named in these tests is registered
            scan_other=lambda contract, prefix: (
                [(f"{prefix}{'0' * 64}", "patient")] if prefix.startswith("who/") else []
            ),
            member=lambda fingerprint: SimpleNamespace(refusal_at=lambda time_ms: None),
        )
        getattr(self.contract, method)(ctx, Args(values))
        self.calls.append((method, args))

    def _put(self, key: str, value: Any) -> None:
        if key.startswith("event/") and key not in self.state:
            self.events.append(key)
        self.state[key] = json.loads(json.dumps(value))

    def custody_events(self) -> list[CustodyEvent]:
        """Every event written, with its pack's document (for lot and expiry)."""
        found = []
        for key in self.events:
            event = CustodyEvent.from_state(key, self.state[key])
            pack = self.state.get(f"pack/{event.subject}")
            found.append(CustodyEvent.from_state(key, self.state[key], pack))
        return found
