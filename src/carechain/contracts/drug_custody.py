"""Drug custody: naming packs and units, and moving them between organisations.

The part of the ``drugs`` contract (``contracts.drugs``, which documents its state)
that every other part stands on: reading a scanned code as a pack or an SSCC, the
EPCIS-like event each change leaves, the check that the caller holds what it
moves, and shipments. Custody changes only when the receiver accepts a shipment,
so nobody can push stock onto another organisation's books; a shipment still in
transit can be called back by its sender or refused by its receiver.
"""

from __future__ import annotations

import re
from typing import Any

from carechain.contracts.drug_licences import Licensing
from carechain.contracts.runtime import Args, Context, contract_method
from carechain.errors import ContractError, Forbidden, InvalidInput
from carechain.identity.roles import Role
from carechain.standards.gs1 import PackId, parse_pack_code, validate_sscc

MAX_UNIT_ITEMS = 1500
"""Children of a unit or items of a shipment: their list is one state value (64 KiB)."""

OPERATORS = {Role.ADMIN, Role.STAFF, Role.PHARMACIST, Role.CLINICIAN}
SHIPMENT_END_REASONS = ("damaged", "wrong_goods", "wrong_receiver", "not_ordered", "other")

_SHIPMENT = re.compile(r"shp-[0-9a-f]{24}")
_ORG = re.compile(r"[a-z0-9-]{2,40}")


def pack_of(code: str) -> PackId:
    """A pack from a key (``sgtin:...``, ``cn-trace:...``) or whatever a scanner read."""
    if not isinstance(code, str):
        raise ContractError("a pack code must be text")
    try:
        if code.startswith(("sgtin:", "cn-trace:")):
            return PackId.from_key(code)
        return parse_pack_code(code).pack
    except InvalidInput as exc:
        raise ContractError(exc.message) from None


def sscc_of(code: str) -> str:
    if not isinstance(code, str):
        raise ContractError("an SSCC must be text")
    try:
        return validate_sscc(code.removeprefix("sscc:"))
    except InvalidInput as exc:
        raise ContractError(exc.message) from None


def item_key(code: Any) -> str:
    """``unit/<sscc>`` for an SSCC (18 digits or ``sscc:...``), else ``pack/<key>``."""
    if isinstance(code, str) and (code.startswith("sscc:") or re.fullmatch(r"\d{18}", code)):
        return f"unit/{sscc_of(code)}"
    return f"pack/{pack_of(code).key}"


def stored_key(name: str) -> str:
    """The state key of a unit or pack as state lists them (an SSCC's 18 digits, or a
    pack key): ``unit/<sscc>`` or ``pack/<key>``."""
    return f"unit/{name}" if name.isdigit() else f"pack/{name}"


class Custody(Licensing):
    """Events, custody checks and shipments of the drugs contract."""

    def _event(self, ctx: Context, key: str, action: str, **fields: Any) -> None:
        """An EPCIS-like event on a pack or unit (``key`` without its kind prefix)."""
        doc = {
            "action": action,
            "org": ctx.caller.org_id,
            "time": ctx.time_ms,
            "txid": ctx.txid,
            "seq": [ctx.block.height, ctx.index],  # the order of events, within a block too
        }
        doc.update(fields)
        ctx.put(f"event/{key}/{ctx.block.height:012d}/{ctx.txid}", doc)

    def _must(self, ctx: Context, key: str) -> dict[str, Any]:
        """A document this contract wrote and never deletes."""
        doc = ctx.get(key)
        if doc is None:  # pragma: no cover - a broken invariant, not bad input
            raise ContractError(f"drugs state is missing {key}")
        return dict(doc)

    def _owned_top(self, ctx: Context, key: str, what: str) -> dict[str, Any]:
        """The document at ``key``, which the caller holds, loose and in stock."""
        doc = ctx.get(key)
        if doc is None:
            raise ContractError(f"{what} was never commissioned")
        if doc["status"] != "active":
            raise ContractError(f"{what} is {doc['status']}")
        if doc.get("parent") is not None:
            raise ContractError(f"{what} is inside {doc['parent']}: disaggregate it first")
        if doc["owner"] != ctx.caller.org_id:
            raise Forbidden(f"{what} is not in {ctx.caller.org_id}'s custody")
        if doc.get("transit") is not None:
            raise ContractError(f"{what} is in transit ({doc['transit']})")
        return dict(doc)

    # -- custody -------------------------------------------------------------------------

    @contract_method(roles=OPERATORS)
    def ship(self, ctx: Context, args: Args) -> None:
        """Send loose packs and top-level units to organisation ``to``; custody moves
        only when ``to`` receives shipment ``shipment``."""
        shipment = args.text("shipment", pattern=_SHIPMENT)
        to = args.text("to", pattern=_ORG)
        items = args.items("items", max_items=MAX_UNIT_ITEMS)
        if not items:
            raise ContractError("argument 'items' is empty")
        if ctx.get(f"shipment/{shipment}") is not None:
            raise ContractError(f"shipment {shipment} already exists")
        org = ctx.read("governance", f"org/{to}")
        if org is None or org.get("status") != "active":
            raise ContractError(f"unknown receiver: no active organisation {to!r}")
        if to == ctx.caller.org_id:
            raise ContractError("a shipment goes to another organisation")
        keys: list[str] = []
        listed: set[str] = set()
        for index, code in enumerate(items):
            key = item_key(code)
            if key in listed:
                raise ContractError(f"items[{index}] is listed twice")
            listed.add(key)
            doc = self._owned_top(ctx, key, f"items[{index}] ({key.split('/', 1)[1]})")
            ctx.put(key, dict(doc, transit=shipment))
            keys.append(key)
            self._event(
                ctx,
                key.split("/", 1)[1],
                "OBSERVE",
                biz_step="shipping",
                disposition="in_transit",
                to=to,
                shipment=shipment,
            )
        ctx.put(
            f"shipment/{shipment}",
            {
                "id": shipment,
                "from": ctx.caller.org_id,
                "to": to,
                "items": [k.split("/", 1)[1] for k in keys],
                "status": "shipped",
                "shipped": ctx.time_ms,
                "received": None,
            },
        )

    @contract_method(roles=OPERATORS)
    def receive(self, ctx: Context, args: Args) -> None:
        """Accept shipment ``shipment``: everything in it is now the caller's."""
        shipment_id = args.text("shipment", pattern=_SHIPMENT)
        shipment = ctx.get(f"shipment/{shipment_id}")
        if shipment is None:
            raise ContractError(f"unknown shipment {shipment_id}")
        if shipment["to"] != ctx.caller.org_id:
            raise Forbidden(f"shipment {shipment_id} was not sent to {ctx.caller.org_id}")
        if shipment["status"] != "shipped":
            raise ContractError(f"shipment {shipment_id} is already {shipment['status']}")
        for item in shipment["items"]:
            key = stored_key(item)
            doc = self._must(ctx, key)
            ctx.put(key, dict(doc, owner=ctx.caller.org_id, transit=None))
            self._event(
                ctx,
                item,
                "OBSERVE",
                biz_step="receiving",
                disposition="in_progress",
                source=shipment["from"],
                shipment=shipment_id,
            )
        ctx.put(f"shipment/{shipment_id}", dict(shipment, status="received", received=ctx.time_ms))

    def _end_shipment(
        self, ctx: Context, args: Args, party: str, status: str, biz_step: str, disposition: str
    ) -> None:
        """Close a shipment still in transit without delivery: its goods stay with (or go
        back to) the sender, loose or packed as they were shipped."""
        shipment_id = args.text("shipment", pattern=_SHIPMENT)
        reason = args.text("reason", max_length=20)
        if args.unread():
            raise ContractError(f"unknown argument(s): {', '.join(args.unread())}")
        if reason not in SHIPMENT_END_REASONS:
            raise ContractError(
                f"reason {reason!r} is not one of {', '.join(SHIPMENT_END_REASONS)}"
            )
        shipment = ctx.get(f"shipment/{shipment_id}")
        if shipment is None:
            raise ContractError(f"unknown shipment {shipment_id}")
        if shipment[party] != ctx.caller.org_id:
            role = "sent by" if party == "from" else "sent to"
            raise Forbidden(f"shipment {shipment_id} was not {role} {ctx.caller.org_id}")
        if shipment["status"] != "shipped":
            raise ContractError(f"shipment {shipment_id} is already {shipment['status']}")
        for item in shipment["items"]:
            key = stored_key(item)
            doc = self._must(ctx, key)
            ctx.put(key, dict(doc, transit=None))
            self._event(
                ctx,
                item,
                "OBSERVE",
                biz_step=biz_step,
                disposition=disposition,
                shipment=shipment_id,
                reason=reason,
                source=shipment["from"],
                to=shipment["to"],
            )
        ctx.put(
            f"shipment/{shipment_id}",
            dict(shipment, status=status, ended=ctx.time_ms, reason=reason),
        )

    @contract_method(roles=OPERATORS)
    def cancel_shipment(self, ctx: Context, args: Args) -> None:
        """The sender calls back shipment ``shipment`` before it is received (with a
        ``reason``): its goods stay in the sender's custody."""
        self._end_shipment(ctx, args, "from", "cancelled", "void_shipping", "in_progress")

    @contract_method(roles=OPERATORS)
    def reject_shipment(self, ctx: Context, args: Args) -> None:
        """The receiver refuses shipment ``shipment`` (with a ``reason``): its goods go back
        to the sender's custody, never onto the receiver's books."""
        self._end_shipment(ctx, args, "to", "rejected", "arriving", "returned")
