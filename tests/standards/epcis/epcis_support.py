"""Helpers for the EPCIS tests: test data under ``testdata/``, and the drugs contract on a node.

``DrugsChain`` sends each call as a signed transaction from a demo member to a
real ``Node`` (``tests/conftest.py``'s consortium) and reads back what the
contract wrote as the node's own export does (``DrugService.custody_events``,
behind ``GET /v1/drugs/epcis``), so the round trips test the real path from
contract to document. Nothing stands in for the ledger.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from carechain.api.client import build_transaction
from carechain.identity.wallet import Credentials
from carechain.node.config import load_config
from carechain.node.consortium import Consortium
from carechain.node.drugs import PREFIX, DrugService
from carechain.node.node import Node
from carechain.standards.epcis import CustodyEvent
from support import license_demo_maker

TESTDATA = Path(__file__).parent / "testdata"

Member = Callable[[str], Credentials]
MAKER = "sinopharm-mfg/qa-01"
DISTRIBUTOR = "jd-logistics/admin"
PHARMACIST = "yf-pharmacy/ph-chen"
REGULATOR = "nmpa/admin"
PATIENT = "pumch:patient-7f3a9c"
"""A patient the demo chain registers: ``dispense`` refuses a patient it does not know."""

VOLATILE = frozenset({"time", "txid", "shipped", "received", "ended", "dispensed"})
"""Fields of pack, unit and shipment documents that say when (and, for a dispense, to whom),
not who holds what: they differ between a chain and its replay."""


def load(name: str) -> Any:
    return json.loads((TESTDATA / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Call:
    """One call of the drugs contract as it was made: by which demo member, with what."""

    member: str
    method: str
    args: dict[str, Any]


class DrugsChain:
    """The drugs contract on a running node, the demo maker licensed by the regulator."""

    def __init__(self, node: Node, member: Member) -> None:
        self.node = node
        self.member = member
        self.calls: list[Call] = []
        license_demo_maker(node, member(REGULATOR))

    def call(self, member: str, method: str, args: dict[str, Any]) -> None:
        """Sign and submit one call as ``member``; it must be applied."""
        tx = build_transaction(self.member(member), "demo", "drugs", method, args)
        status = self.node.submit_one(tx, wait_s=10)
        assert status.code == "ok", f"{method} by {member}: {status.code} {status.message}"
        self.calls.append(Call(member, method, args))

    def custody_events(self, codes: Iterable[str]) -> list[CustodyEvent]:
        """The packs' journeys, as ``GET /v1/drugs/epcis?code=...`` exports them."""
        return DrugService(self.node).custody_events(list(codes))

    def state_entries(self) -> list[dict[str, Any]]:
        """Every event the contract wrote, as state entries (``key``, ``value`` and, for a
        pack, ``pack``) in ledger order: by block and position, then by key."""
        entries = []
        for key, raw in self.node.state.scan(f"{PREFIX}event/"):
            value = orjson.loads(raw)
            entry: dict[str, Any] = {"key": key[len(PREFIX) :], "value": value}
            subject = CustodyEvent.from_state(entry["key"], value).subject
            pack = self.node.state.get(f"{PREFIX}pack/{subject}")
            if pack is not None:
                entry["pack"] = orjson.loads(pack)
            entries.append(entry)
        return sorted(entries, key=lambda e: (e["value"]["seq"], e["key"]))

    def events_of(self, subject: str) -> list[CustodyEvent]:
        """All events the contract wrote about one pack or unit, oldest first."""
        rows = self.node.state.scan(f"{PREFIX}event/{subject}/")
        return [CustodyEvent.from_state(k[len(PREFIX) :], orjson.loads(v)) for k, v in rows]

    def custody(self) -> dict[str, dict[str, Any]]:
        """Who holds what: every pack, unit and shipment document without its times and
        txids, lists of items in key order."""
        found: dict[str, dict[str, Any]] = {}
        for kind in ("pack/", "unit/", "shipment/"):
            for key, raw in self.node.state.scan(PREFIX + kind):
                doc = {k: v for k, v in orjson.loads(raw).items() if k not in VOLATILE}
                for name in ("children", "items"):
                    if name in doc:
                        doc[name] = sorted(doc[name])
                found[key[len(PREFIX) :]] = doc
        return found


@contextmanager
def running_node(consortium: Consortium, where: Path) -> Iterator[Node]:
    """Another node of the demo consortium, from genesis, in its own data directory."""
    shutil.copytree(consortium.node_dir, where)
    node = Node(load_config(where))
    node.start()
    try:
        yield node
    finally:
        node.stop()
