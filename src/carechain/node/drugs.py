"""What a node tells about drug packs: a pack's verdict and journey, shipments, scans.

Everything here reads committed state; changes go through the drugs contract.
The journey of a pack is its own events plus those of every case or pallet it
travelled in, for the time it was inside (a pallet's shipping is the pack's).
The public view leaves out who a pack was dispensed to.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from carechain.contracts.consent import patient_id_of
from carechain.contracts.drugs import VERDICTS, holder, pack_of, verdict
from carechain.contracts.membership import MemberRecord
from carechain.errors import CarechainError, ContractError, InvalidInput, NotFound
from carechain.ledger.transaction import Transaction, new_nonce, sign_transaction
from carechain.standards.epcis import CustodyEvent
from carechain.standards.gs1 import PackId

if TYPE_CHECKING:
    from carechain.node.node import Node

log = logging.getLogger(__name__)

Order = tuple[int, int, int]
"""Where an event stands: block time, height, position in the block."""
_FIRST: Order = (-1, -1, -1)
_LAST: Order = (2**62, 0, 0)


def _order(event: Mapping[str, Any]) -> Order:
    height, index = event.get("seq", (0, 0))
    return (int(event["time"]), int(height), int(index))


_EVENT_TAIL = re.compile(r"\d{12}/[0-9a-f]{64}")

PREFIX = "drugs/"
STEP_WORDS = {
    "commissioning": "made and serialised",
    "packing": "packed into a case or pallet",
    "unpacking": "unpacked",
    "shipping": "shipped",
    "receiving": "received",
    "void_shipping": "shipment called back by its sender",
    "arriving": "shipment refused by its receiver and returned",
    "dispensing": "dispensed to a patient",
    "decommissioning": "taken out of the supply chain",
}


PUBLIC_SCAN_EVERY_MS = 60_000
"""A suspicious code scanned on the public page is recorded at most once a minute."""
PUBLIC_SCANS_PER_MINUTE = 600
"""And at most this many public scans a minute in all: the page needs no login."""
PUBLIC_SCANS_PER_CLIENT = 10
"""And at most this many a minute from one client address, so that one cannot use up
the budget (or fill the chain) with made-up codes."""


class DrugService:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._public_seen: dict[str, int] = {}
        self._by_client: dict[str, list[int]] = {}
        self._public_lock = threading.Lock()

    def record_public_scan(self, pack: str, found: str, client: str = "") -> bool:
        """Put a public-page scan whose verdict is not genuine on the chain (signed by this
        node, not waited for), so that regulators see where suspicious codes turn up.
        Throttled; True if submitted."""
        if found == "genuine":
            return False
        now = int(time.time() * 1000)
        with self._public_lock:
            recent = {k: t for k, t in self._public_seen.items() if now - t < PUBLIC_SCAN_EVERY_MS}
            mine = [t for t in self._by_client.get(client, []) if now - t < PUBLIC_SCAN_EVERY_MS]
            self._by_client = {
                c: kept
                for c, times in self._by_client.items()
                if (kept := [t for t in times if now - t < PUBLIC_SCAN_EVERY_MS])
            }
            self._public_seen = recent
            if (
                pack in recent
                or len(recent) >= PUBLIC_SCANS_PER_MINUTE
                or len(mine) >= PUBLIC_SCANS_PER_CLIENT
            ):
                return False
            recent[pack] = now
            self._by_client[client] = [*mine, now]
        body = Transaction(
            chain=self.node.chain,
            contract="drugs",
            method="verify",
            args={"code": pack, "public": True},
            signer=self.node.peer_fp,
            nonce=new_nonce("scan-"),
            timestamp_ms=now,
        )
        tx = sign_transaction(body, {self.node.peer_fp: self.node.peer_key}, self.node.suite)
        try:
            self.node.submit_one(tx, 0.0)
        except CarechainError:
            log.warning("could not record a public scan of %s", pack, exc_info=True)
            return False
        return True

    def _get(self, key: str) -> Any | None:
        raw = self.node.state.get(PREFIX + key)
        return None if raw is None else orjson.loads(raw)

    def _events(self, item: str) -> list[dict[str, Any]]:
        """The item's own events: a serial may hold ``/``, so ``event/AB/`` also starts the
        keys of pack ``AB/1``; only ``<height>/<txid>`` right after the prefix is ours."""
        prefix = f"{PREFIX}event/{item}/"
        rows = self.node.state.scan(prefix)
        return [orjson.loads(v) for k, v in rows if _EVENT_TAIL.fullmatch(k[len(prefix) :])]

    def pack(self, code: str) -> PackId:
        try:
            return pack_of(code)
        except ContractError as exc:
            raise InvalidInput(exc.message) from None

    def view(
        self,
        code: str,
        seller: str | None = None,
        *,
        public: bool = False,
        viewer: MemberRecord | None = None,
    ) -> dict[str, Any]:
        """A pack: its verdict (in words), product, lot, expiry, holder and journey."""
        pack = self.pack(code)
        now = max(self.node.state.time_ms, int(time.time() * 1000))
        found = verdict(self._get, pack, seller, now)
        doc = self._get(f"pack/{pack.key}")
        view: dict[str, Any] = {
            "pack": pack.key,
            "gtin": pack.gtin,
            "serial": pack.serial,
            "verdict": found,
            "says": VERDICTS[found],
        }
        if doc is None:
            return view
        top_key, top = holder(self._get, f"pack/{pack.key}")
        product = self._get(f"product/{doc['product']}") or {}
        view.update(
            product=doc["product"],
            lot=doc["lot"],
            expiry=doc["expiry"],
            manufacturer=doc["manufacturer"],
            status=doc["status"],
            holder=None if top is None else top["owner"],
            inside=None if top_key == f"pack/{pack.key}" else top_key.split("/", 1)[1],
            recall=self._get(f"lot/{doc['product']}/{doc['lot']}"),
            product_name=product.get("name"),
            product_details={
                k: v for k, v in product.items() if k in ("strength", "form", "approval")
            },
            journey=self.journey(pack.key, public=public, viewer=viewer),
        )
        return view

    def journey(
        self, item: str, *, public: bool = False, viewer: MemberRecord | None = None
    ) -> list[dict[str, Any]]:
        """The pack's events and its containers' while it was inside, oldest first."""
        steps = self._journey(item, _FIRST, _LAST, 0)
        steps.sort(key=_order)
        out = []
        for event in steps:
            shown = {
                "time": event["time"],
                "org": event["org"],
                "step": event.get("biz_step"),
                "says": STEP_WORDS.get(event.get("biz_step", ""), event.get("biz_step")),
                "disposition": event.get("disposition"),
            }
            for field in ("to", "source", "parent", "shipment", "reason"):
                if event.get(field):
                    shown[field] = event[field]
            if (
                not public
                and event.get("patient")
                and viewer is not None
                and (viewer.org_id == event["org"] or patient_id_of(viewer) == event["patient"])
            ):  # who a pack went to: for the dispensing organisation and the patient only
                shown["patient"] = event["patient"]
            out.append(shown)
        return out

    def _journey(self, item: str, start: Order, end: Order, depth: int) -> list[dict[str, Any]]:
        events = sorted((dict(e, subject=item) for e in self._events(item)), key=_order)
        events = [e for e in events if start <= _order(e) <= end]
        found = list(events)
        if depth >= 3:
            return found
        inside: str | None = None
        since = start
        for event in events:
            step = event.get("biz_step")
            if step == "packing" and event.get("parent"):
                inside, since = event["parent"], _order(event)
            elif step in ("unpacking", "dispensing") and inside is not None:
                found += self._container(inside, since, _order(event), depth)
                inside = None
        if inside is not None:
            found += self._container(inside, since, end, depth)
        return found

    def _container(self, sscc: str, start: Order, end: Order, depth: int) -> list[dict[str, Any]]:
        return [
            e
            for e in self._journey(sscc, start, end, depth + 1)
            if e.get("biz_step") not in ("packing", "unpacking") or e.get("parent")
        ]

    def custody_events(self, codes: list[str]) -> list[CustodyEvent]:
        """The events of packs' journeys, for an EPCIS document: each pack's own (with its
        lot and expiry) and its cases' and pallets' shipping and receiving while inside."""
        out: dict[tuple[str, str], CustodyEvent] = {}
        for code in codes:
            pack = self.pack(code)
            doc = self._get(f"pack/{pack.key}")
            if doc is None:
                raise NotFound(f"pack {pack.key} was never commissioned")
            for event in self._journey(pack.key, _FIRST, _LAST, 0):
                subject = event.pop("subject")
                if subject != pack.key and event.get("biz_step") in ("packing", "unpacking"):
                    continue  # the pack's own packing events say it
                mine = subject == pack.key
                out[(subject, event["txid"])] = CustodyEvent(
                    subject,
                    event,
                    doc["lot"] if mine else None,
                    doc["expiry"] if mine else None,
                )
        return sorted(out.values(), key=lambda e: (_order(e.event), e.subject))

    def shipment(self, shipment_id: str) -> dict[str, Any]:
        found = self._get(f"shipment/{shipment_id}")
        if found is None:
            raise NotFound(f"no shipment {shipment_id}")
        return dict(found)

    def licences(self, org: str = "") -> list[dict[str, Any]]:
        """The GS1 company prefixes and Chinese product codes licensed to manufacturers
        (``org``: one manufacturer's), in key order."""
        out = []
        for key, raw in self.node.state.scan(f"{PREFIX}licence/"):
            doc = orjson.loads(raw)
            if org and doc["org"] != org:
                continue
            kind, number = key[len(PREFIX) + len("licence/") :].split("/")
            field = "gs1_prefix" if kind == "gs1" else "cn_product"
            out.append({field: number, **doc})
        return out

    def scans(self, after: str = "", limit: int = 100, suspicious: bool = False) -> dict[str, Any]:
        """Verification scans, oldest first; ``suspicious``: only verdicts other than genuine."""
        prefix = f"{PREFIX}scan/"
        start = prefix + after if after else ""
        scans: list[dict[str, Any]] = []
        last = ""
        while True:
            rows = self.node.state.scan(prefix, limit, start)
            for row_key, value in rows:
                scan = orjson.loads(value)
                if not suspicious or scan["verdict"] != "genuine":
                    scans.append(scan)
                    last = row_key
                    if len(scans) == limit:
                        break
            if len(scans) == limit or len(rows) < limit:
                break
            start = rows[-1][0]
        next_key = last[len(prefix) :] if len(scans) == limit else None
        return {"scans": scans, "next": next_key}
