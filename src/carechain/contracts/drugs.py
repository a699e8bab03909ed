"""Drugs: serialised packs from factory to patient, in EPCIS 2.0 terms.

A pack is named by a GS1 SGTIN or by China's 20-digit drug traceability code
(``standards.gs1.PackId``: one key per pack whichever form was scanned).
Cases and pallets are logistic units named by an SSCC. Custody lives on the
outermost unit: shipping a pallet moves every pack inside it without touching
them, and a pack's holder is found by walking up from it (at most a pack, a
case and a pallet). Custody changes only when the receiver accepts a
shipment, so nobody can push stock onto another organisation's books.

State (namespace ``drugs``)::

    licence/gs1/<prefix>  a GS1 company prefix (4-12 digits) a regulator licensed to a
                          manufacturer: org, by, time, txid
    licence/cn/<7 digits> the same for a 药品追溯码's product identification code (药品标识码)
    product/<gtin14 | cn:7 digits>   manufacturer org (the licensee that last commissioned or
                          named it), and the name, strength, form and 批准文号 it registered
    pack/<key>            product, lot, expiry (ISO date), manufacturer, status
                          (active | dispensed | decommissioned), parent (SSCC or
                          null), owner, transit (shipment id or null), time, txid
    unit/<sscc>           children (pack keys and SSCCs), parent, owner, transit,
                          status (active | decommissioned), time
    withdrawn/<gs1|cn>/<number>/<height:012d>/<txid>   a licence that ended, and why
    lot/<product>/<lot>   a recall: reason, by, time
    shipment/<id>         from, to, items, status (shipped | received | cancelled by the
                          sender | rejected by the receiver), times, reason
    event/<id>/<height:012d>/<txid>   what happened to a pack or unit (EPCIS-like:
                          action, biz_step, disposition, org, time, parent ...)
    scan/<height:012d>/<txid>   a verification: code key, verdict, who, where

Every change here is made by the organisation holding the goods (or, for
commissioning and recalls, the manufacturer; recalls also a regulator). A
manufacturer commissions only products under a licence a regulator recorded:
the GS1 company prefix its GTINs begin with (GS1 General Specifications
section 1.4.3: the prefix GS1 allocated to the company, 4 to 12 digits of the
GTIN-13 form) or the 药品标识码 of a Chinese product code. So a member cannot
claim another maker's products, and a code under nobody's licence is never
commissioned. SSCCs are not checked: whoever builds a case or pallet names it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from typing import Any

from carechain.contracts.drug_custody import (
    MAX_UNIT_ITEMS,
    OPERATORS,
    SHIPMENT_END_REASONS,
    Custody,
    item_key,
    pack_of,
    sscc_of,
    stored_key,
)
from carechain.contracts.drug_licences import LICENSORS, WITHDRAW_REASONS, licence_of
from carechain.contracts.records import patient_exists
from carechain.contracts.runtime import Args, Context, contract_method
from carechain.errors import ContractError, Forbidden, InvalidInput
from carechain.identity.roles import OrgType, Role
from carechain.standards.gs1 import (
    Gs1Date,
    PackId,
    normalise_gtin,
    parse_pack_code,
)

__all__ = [
    "DECOMMISSION_REASONS",
    "GENUINE",
    "LICENSORS",
    "MAX_ITEMS",
    "RECALL_REASONS",
    "SHIPMENT_END_REASONS",
    "VERDICTS",
    "WITHDRAW_REASONS",
    "Drugs",
    "holder",
    "licence_of",
    "pack_of",
    "verdict",
]

MAX_DEPTH = 2
"""Units inside units: a pack in a case (1) in a pallet (2), no deeper. Custody lives on the
outermost unit, so every unit above a pack must be reachable in a bounded walk."""

MAX_ITEMS = 5000
"""Packs commissioned, aggregated or shipped in one transaction (a transaction is at most
256 KiB: 5,000 codes fit in the ``codes`` form of ``commission``, about 2,500 in ``packs``)."""

MAKERS = {OrgType.MANUFACTURER}
DISPENSERS = {OrgType.PHARMACY, OrgType.HOSPITAL, OrgType.CLINIC}
DECOMMISSION_REASONS = ("damaged", "destroyed", "expired", "sample", "stolen", "recalled")
RECALL_REASONS = ("quality", "safety", "regulatory", "counterfeit", "other")

_LOT = re.compile(r"[!-~]{1,20}")
_PATIENT = re.compile(r"[a-z0-9-]{2,40}:[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

GENUINE = "genuine"
VERDICTS = {
    GENUINE: "genuine and saleable",
    "unknown": "unknown serial: never commissioned (likely counterfeit)",
    "dispensed": "already dispensed to a patient (a copied code)",
    "recalled": "recalled by its manufacturer or a regulator",
    "expired": "past its expiry date",
    "decommissioned": "taken out of the supply chain",
    "in_transit": "in transit: not yet received by anyone",
    "not_in_custody": "not in the custody of whoever is selling it",
}
"""What a scan of a pack can say, in words a pharmacist or patient reads."""


def block_date(time_ms: int) -> date:
    return datetime.fromtimestamp(time_ms // 1000, UTC).date()


def product_of(pack: PackId) -> str:
    return pack.gtin if pack.gtin is not None else f"cn:{pack.product_code}"


def holder(get: Any, key: str) -> tuple[str, dict[str, Any] | None]:
    """The outermost unit holding ``key`` (``pack/...`` or ``unit/...``) and its document."""
    doc = get(key)
    for _ in range(MAX_DEPTH + 1):
        if doc is None or doc.get("parent") is None:
            return key, doc
        key = f"unit/{doc['parent']}"
        doc = get(key)
    raise ContractError(f"{key} is nested deeper than {MAX_DEPTH} units")  # never, by aggregate


def verdict(get: Any, pack: PackId, seller: str | None, time_ms: int) -> str:
    """What a scan of ``pack`` says at ``time_ms``; ``seller`` is the organisation selling it
    (None: a patient or the public checking a pack)."""
    doc = get(f"pack/{pack.key}")
    if doc is None:
        return "unknown"
    if doc["status"] == "dispensed":
        return "dispensed"
    if doc["status"] == "decommissioned":
        return "decommissioned"
    if get(f"lot/{doc['product']}/{doc['lot']}") is not None:
        return "recalled"
    if block_date(time_ms).isoformat() > doc["expiry"]:
        return "expired"
    _, top = holder(get, f"pack/{pack.key}")
    if top is None or top.get("transit") is not None:
        return "in_transit"
    if seller is not None and top["owner"] != seller:
        return "not_in_custody"
    return GENUINE


class Drugs(Custody):
    name = "drugs"

    # -- commissioning -------------------------------------------------------------------

    @contract_method(roles=OPERATORS, org_types=MAKERS)
    def commission(self, ctx: Context, args: Args) -> None:
        """Give serialised packs their identity: ``packs`` = [{code, lot, expiry}] where
        ``code`` is a pack key or any scanned form and ``expiry`` is GS1 ``YYMMDD``; or,
        for a lot at once, ``lot``, ``expiry`` and ``codes`` = [code, ...]."""
        if "codes" in ctx.tx.body.args:
            shared_lot = args.text("lot", pattern=_LOT)
            shared_expiry = args.text("expiry", max_length=6)
            codes = args.items("codes", max_items=MAX_ITEMS)
            if args.unread():
                raise ContractError(f"unknown argument(s): {', '.join(args.unread())}")
            items: list[Any] = [
                {"code": c, "lot": shared_lot, "expiry": shared_expiry} for c in codes
            ]
        else:
            items = args.items("packs", max_items=MAX_ITEMS)
        if not items:
            raise ContractError("no packs to commission")
        maker = ctx.caller.org_id
        today = block_date(ctx.time_ms)
        seen: set[str] = set()
        products: dict[str, str] = {}
        for index, item in enumerate(items):
            where = f"packs[{index}]"
            if not isinstance(item, dict):
                raise ContractError(f"{where} must be an object")
            fields = Args(item)
            code = fields.text("code", max_length=200)
            pack = pack_of(code)
            lot = fields.text("lot", pattern=_LOT)
            raw_expiry = fields.text("expiry", max_length=6)
            if fields.unread():
                raise ContractError(f"{where} has unknown field(s): {', '.join(fields.unread())}")
            printed = None if code.startswith(("sgtin:", "cn-trace:")) else parse_pack_code(code)
            if printed is not None and printed.lot is not None and printed.lot != lot:
                raise ContractError(f"{where}: the code says lot {printed.lot}, not {lot}")
            if (
                printed is not None
                and printed.expiry is not None
                and (printed.expiry.yymmdd != raw_expiry)
            ):
                raise ContractError(
                    f"{where}: the code says expiry {printed.expiry.yymmdd}, not {raw_expiry}"
                )
            try:
                expiry = Gs1Date(raw_expiry).to_date(today)
            except InvalidInput as exc:
                raise ContractError(f"{where}: {exc.message}") from None
            if expiry < today:
                raise ContractError(f"{where}: expiry {expiry.isoformat()} has already passed")
            if pack.key in seen or ctx.get(f"pack/{pack.key}") is not None:
                raise ContractError(f"{where}: pack {pack.key} is already commissioned")
            seen.add(pack.key)
            product = product_of(pack)
            if product not in products:
                owner = ctx.get(f"product/{product}")
                hint = None if owner is None else owner.get("licence")
                licence = self._check_licence(ctx, product, where, hint)
                if owner is None:
                    ctx.put(
                        f"product/{product}",
                        {"manufacturer": maker, "time": ctx.time_ms, "licence": licence},
                    )
                elif owner["manufacturer"] != maker or hint != licence:  # the licence moved
                    ctx.put(f"product/{product}", dict(owner, manufacturer=maker, licence=licence))
                products[product] = maker
            ctx.put(
                f"pack/{pack.key}",
                {
                    "key": pack.key,
                    "product": product,
                    "lot": lot,
                    "expiry": expiry.isoformat(),
                    "manufacturer": maker,
                    "status": "active",
                    "parent": None,
                    "owner": maker,
                    "transit": None,
                    "time": ctx.time_ms,
                    "txid": ctx.txid,
                },
            )
            self._event(ctx, pack.key, "ADD", biz_step="commissioning", disposition="active")

    @contract_method(roles=OPERATORS, org_types=MAKERS)
    def register_product(self, ctx: Context, args: Args) -> None:
        """Name a product for everyone who checks its packs: ``product`` (a GTIN, or
        ``cn:`` and a 药品追溯码's 7-digit product code), ``name`` (the drug's name as on
        the box, e.g. 阿莫西林胶囊), and optionally ``strength``, ``form``, ``approval``
        (the drug's 批准文号). Its manufacturer may correct it later."""
        product = self._product(args.text("product", max_length=20))
        name = args.text("name", max_length=100)
        extra = {
            field: args.text(field, max_length=60, required=False, default="")
            for field in ("strength", "form", "approval")
        }
        if args.unread():
            raise ContractError(f"unknown argument(s): {', '.join(args.unread())}")
        for field, value in {"name": name, **extra}.items():
            if value != value.strip() or any(ord(ch) < 32 for ch in value):
                raise ContractError(f"{field} must be one line without surrounding spaces")
        if not name:
            raise ContractError("name is empty")
        owner = ctx.get(f"product/{product}")
        licence = self._check_licence(
            ctx, product, "product", None if owner is None else owner.get("licence")
        )
        ctx.put(
            f"product/{product}",
            {
                "manufacturer": ctx.caller.org_id,
                "time": ctx.time_ms if owner is None else owner["time"],
                "licence": licence,
                "name": name,
                **{k: v for k, v in extra.items() if v},
            },
        )

    def _product(self, product: str) -> str:
        """A product id: a GTIN of any length as GTIN-14, or ``cn:`` and 7 digits."""
        if product.isdigit():
            try:
                return normalise_gtin(product)
            except InvalidInput as exc:
                raise ContractError(exc.message) from None
        if re.fullmatch(r"cn:\d{7}", product):
            return product
        raise ContractError(f"{product!r} is not a GTIN or cn:<7-digit product code>")

    # -- aggregation ---------------------------------------------------------------------

    @contract_method(roles=OPERATORS)
    def aggregate(self, ctx: Context, args: Args) -> None:
        """Pack ``children`` (pack codes or SSCCs the caller holds loose) into unit ``parent``."""
        parent = sscc_of(args.text("parent", max_length=30))
        children = args.items("children", max_items=MAX_UNIT_ITEMS)
        if not children:
            raise ContractError("argument 'children' is empty")
        if ctx.get(f"unit/{parent}") is not None:
            raise ContractError(f"unit {parent} already exists")
        keys: list[str] = []
        seen: set[str] = set()
        depth = 1
        for index, code in enumerate(children):
            key = item_key(code)
            if key in seen:
                raise ContractError(f"children[{index}] is listed twice")
            seen.add(key)
            doc = self._owned_top(ctx, key, f"children[{index}] ({key.split('/', 1)[1]})")
            depth = max(depth, doc.get("depth", 0) + 1)
            if depth > MAX_DEPTH:
                raise ContractError(
                    f"children[{index}] is a pallet already: units go at most {MAX_DEPTH} deep "
                    "(packs in cases in pallets)"
                )
            ctx.put(key, dict(doc, parent=parent))
            keys.append(key)
        ctx.put(
            f"unit/{parent}",
            {
                "sscc": parent,
                "children": [k.split("/", 1)[1] for k in keys],
                "depth": depth,
                "parent": None,
                "owner": ctx.caller.org_id,
                "transit": None,
                "status": "active",
                "time": ctx.time_ms,
            },
        )
        self._event(ctx, parent, "ADD", biz_step="packing", children=len(keys))
        for key in keys:
            self._event(ctx, key.split("/", 1)[1], "ADD", biz_step="packing", parent=parent)

    @contract_method(roles=OPERATORS)
    def disaggregate(self, ctx: Context, args: Args) -> None:
        """Open unit ``parent``: its children become loose, held by the caller."""
        parent = sscc_of(args.text("parent", max_length=30))
        unit = self._owned_top(ctx, f"unit/{parent}", f"unit {parent}")
        for child in unit["children"]:
            key = stored_key(child)
            doc = self._must(ctx, key)
            ctx.put(key, dict(doc, parent=None, owner=unit["owner"], transit=None))
            self._event(ctx, child, "DELETE", biz_step="unpacking", parent=parent)
        ctx.put(f"unit/{parent}", dict(unit, status="decommissioned", children=[]))
        self._event(ctx, parent, "DELETE", biz_step="unpacking")

    # -- end of the chain ----------------------------------------------------------------

    @contract_method(roles={Role.PHARMACIST, Role.CLINICIAN, Role.STAFF}, org_types=DISPENSERS)
    def dispense(self, ctx: Context, args: Args) -> None:
        """Hand a pack to a patient. A pack inside a case the caller holds is taken out."""
        pack = pack_of(args.text("code", max_length=200))
        patient = args.text("patient", pattern=_PATIENT, required=False, default="")
        if patient and not patient_exists(ctx, patient):
            raise ContractError(f"unknown patient {patient}")
        key = f"pack/{pack.key}"
        found = verdict(ctx.get, pack, ctx.caller.org_id, ctx.time_ms)
        if found != GENUINE:
            raise ContractError(f"pack {pack.key} cannot be dispensed: {VERDICTS[found]}")
        doc = self._must(ctx, key)
        if doc["parent"] is not None:  # the pharmacist opens the case
            unit = self._must(ctx, f"unit/{doc['parent']}")
            ctx.put(
                f"unit/{doc['parent']}",
                dict(unit, children=[c for c in unit["children"] if c != pack.key]),
            )
        ctx.put(
            key,
            dict(
                doc,
                parent=None,
                owner=ctx.caller.org_id,
                status="dispensed",
                dispensed={"time": ctx.time_ms, "txid": ctx.txid, "patient": patient},
            ),
        )
        self._event(
            ctx, pack.key, "DELETE", biz_step="dispensing", disposition="dispensed", patient=patient
        )

    @contract_method(roles=OPERATORS)
    def decommission(self, ctx: Context, args: Args) -> None:
        """Take a loose pack or unit the caller holds out of the supply chain, with a reason."""
        key = item_key(args.text("code", max_length=200))
        reason = args.text("reason", max_length=20)
        if reason not in DECOMMISSION_REASONS:
            raise ContractError(
                f"reason {reason!r} is not one of {', '.join(DECOMMISSION_REASONS)}"
            )
        what = key.split("/", 1)[1]
        doc = self._owned_top(ctx, key, what)
        if key.startswith("unit/") and doc["children"]:
            raise ContractError(f"unit {what} still holds goods: disaggregate it first")
        ctx.put(key, dict(doc, status="decommissioned", reason=reason))
        self._event(ctx, what, "DELETE", biz_step="decommissioning", disposition=reason)

    @contract_method(
        roles={Role.ADMIN, Role.STAFF, Role.AUDITOR},
        org_types={OrgType.MANUFACTURER, OrgType.REGULATOR},
    )
    def recall(self, ctx: Context, args: Args) -> None:
        """Recall a lot: its manufacturer, or a regulator."""
        product = self._product(args.text("product", max_length=20))
        lot = args.text("lot", pattern=_LOT)
        reason = args.text("reason", max_length=20)
        if reason not in RECALL_REASONS:
            raise ContractError(f"reason {reason!r} is not one of {', '.join(RECALL_REASONS)}")
        owner = ctx.get(f"product/{product}")
        if owner is None:
            raise ContractError(f"unknown product {product}: nothing of it was commissioned")
        caller = ctx.caller
        if caller.org_type is not OrgType.REGULATOR and owner["manufacturer"] != caller.org_id:
            raise Forbidden(f"only {owner['manufacturer']} or a regulator may recall {product}")
        if ctx.get(f"lot/{product}/{lot}") is not None:
            raise ContractError(f"lot {lot} of {product} is already recalled")
        ctx.put(
            f"lot/{product}/{lot}",
            {"reason": reason, "by": caller.org_id, "time": ctx.time_ms, "txid": ctx.txid},
        )

    @contract_method()
    def verify(self, ctx: Context, args: Args) -> None:
        """Record a scan of a pack and what it showed, so that a regulator sees where
        suspicious codes turn up. ``seller``: whether the caller is selling it."""
        code = args.text("code", max_length=200)
        selling = args.boolean("selling", default=False)
        public = args.boolean("public", default=False)  # a node's public page, no login
        if public and ctx.caller.role is not Role.PEER:
            raise Forbidden("only a node records scans made on its public page")
        try:
            pack: PackId | None = pack_of(code)
        except ContractError:
            pack = None  # not a pack code at all: a counterfeit's misprint, or a test
        seller = ctx.caller.org_id if selling else None
        found = "unknown" if pack is None else verdict(ctx.get, pack, seller, ctx.time_ms)
        ctx.put(
            f"scan/{ctx.block.height:012d}/{ctx.txid}",
            {
                "pack": pack.key if pack else None,
                # An unreadable code is counted by its fingerprint, never stored as text.
                "unreadable": None if pack else hashlib.sha256(code.encode()).hexdigest(),
                "verdict": found,
                "org": ctx.caller.org_id,
                "by": ctx.caller.fingerprint,
                "selling": selling,
                "public": public,
                "time": ctx.time_ms,
            },
        )
