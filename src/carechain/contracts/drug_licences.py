"""Licences to commission drugs: which manufacturer holds which GS1 company prefix or
药品标识码, recorded by a regulator (the drugs contract's ``licence/`` state; see
contracts/drugs.py). Prefixes never nest, so each product has one licensee.
"""

from __future__ import annotations

import re
from typing import Any

from carechain.contracts.runtime import Args, Context, Contract, contract_method
from carechain.errors import ContractError, Forbidden
from carechain.identity.roles import OrgType, Role

LICENSORS = {OrgType.REGULATOR}
WITHDRAW_REASONS = ("transferred", "expired", "revoked", "error")

_ORG = re.compile(r"[a-z0-9-]{2,40}")
_GS1_PREFIX = re.compile(r"\d{4,12}")
_CN_PRODUCT = re.compile(r"\d{7}")


def licence_of(get: Any, product: str) -> tuple[str, dict[str, Any]] | None:
    """The licence a product falls under: (its state key, its document), or None.

    A GTIN's company prefix is found in its GTIN-13 form (GTIN-14 without the
    indicator digit), longest first; a Chinese product code's is the code itself.
    """
    if product.startswith("cn:"):
        key = f"licence/cn/{product[3:]}"
        doc = get(key)
        return None if doc is None else (key, doc)
    digits = product[1:]
    for length in range(12, 3, -1):
        key = f"licence/gs1/{digits[:length]}"
        doc = get(key)
        if doc is not None:
            return key, doc
    return None


class Licensing(Contract):
    """The drugs contract's licence methods, and the check commissioning makes."""

    def _check_licence(
        self, ctx: Context, product: str, where: str, hint: str | None = None
    ) -> str:
        """The key of the licence ``product`` falls under, which the caller's organisation
        must hold. ``hint``: the key it fell under before (the product remembers it), read
        first; licences never nest, so if it still exists it is the one."""
        maker = ctx.caller.org_id
        if hint is not None:
            held = ctx.get(hint)
            if held is not None and held["org"] == maker:
                return hint
        found = licence_of(ctx.get, product)
        if found is None:
            kind = "drug product code" if product.startswith("cn:") else "GS1 company prefix"
            raise Forbidden(
                f"{where}: no {kind} of {product} is licensed to anyone; a regulator "
                "records licences with drugs.license"
            )
        key, doc = found
        if doc["org"] != maker:
            raise Forbidden(
                f"{where}: {product} falls under {key.split('/', 1)[1]}, licensed to "
                f"{doc['org']}, not {maker}"
            )
        return key

    # -- licences ------------------------------------------------------------------------

    def _licence_key(self, args: Args) -> str:
        """``licence/gs1/<prefix>`` or ``licence/cn/<code>`` from exactly one argument."""
        prefix = args.text("gs1_prefix", pattern=_GS1_PREFIX, required=False, default="")
        code = args.text("cn_product", pattern=_CN_PRODUCT, required=False, default="")
        if bool(prefix) == bool(code):
            raise ContractError(
                "give exactly one of gs1_prefix (a GS1 company prefix, 4-12 digits) and "
                "cn_product (a 药品追溯码's 7-digit product code)"
            )
        return f"licence/gs1/{prefix}" if prefix else f"licence/cn/{code}"

    @contract_method(roles={Role.ADMIN, Role.STAFF}, org_types=LICENSORS)
    def license(self, ctx: Context, args: Args) -> None:
        """Record that manufacturer ``org`` may commission the products of a GS1 company
        prefix (``gs1_prefix``) or a Chinese drug product code (``cn_product``)."""
        org_id = args.text("org", pattern=_ORG)
        key = self._licence_key(args)
        if args.unread():
            raise ContractError(f"unknown argument(s): {', '.join(args.unread())}")
        org = ctx.read("governance", f"org/{org_id}")
        if org is None or org.get("status") != "active":
            raise ContractError(f"unknown organisation: no active organisation {org_id!r}")
        if org.get("type") != OrgType.MANUFACTURER.value:
            raise ContractError(f"{org_id} is a {org.get('type')}, not a manufacturer")
        held = ctx.get(key)
        if held is not None:
            raise ContractError(f"{key.split('/', 1)[1]} is already licensed to {held['org']}")
        if key.startswith("licence/gs1/"):
            # Company prefixes never nest: a GTIN must fall under one licence only.
            prefix = key.rsplit("/", 1)[1]
            for length in range(4, len(prefix)):
                shorter = ctx.get(f"licence/gs1/{prefix[:length]}")
                if shorter is not None:
                    raise ContractError(
                        f"gs1 prefix {prefix} lies inside {prefix[:length]}, licensed to "
                        f"{shorter['org']}"
                    )
            longer = ctx.scan(key, limit=1)
            if longer:
                inner = longer[0][0].rsplit("/", 1)[1]
                raise ContractError(f"gs1 prefix {prefix} would cover {inner}, licensed apart")
        ctx.put(
            key, {"org": org_id, "by": ctx.caller.org_id, "time": ctx.time_ms, "txid": ctx.txid}
        )

    @contract_method(roles={Role.ADMIN, Role.STAFF}, org_types=LICENSORS)
    def withdraw_licence(self, ctx: Context, args: Args) -> None:
        """End a licence (``gs1_prefix`` or ``cn_product``) with a ``reason``: no more packs
        are commissioned under it; packs already made keep their history."""
        key = self._licence_key(args)
        reason = args.text("reason", max_length=20)
        if args.unread():
            raise ContractError(f"unknown argument(s): {', '.join(args.unread())}")
        if reason not in WITHDRAW_REASONS:
            raise ContractError(f"reason {reason!r} is not one of {', '.join(WITHDRAW_REASONS)}")
        held = ctx.get(key)
        if held is None:
            raise ContractError(f"{key.split('/', 1)[1]} is not licensed to anyone")
        ctx.delete(key)
        kind, number = key.split("/")[1:]
        ctx.put(
            f"withdrawn/{kind}/{number}/{ctx.block.height:012d}/{ctx.txid}",
            dict(held, reason=reason, withdrawn_by=ctx.caller.org_id, withdrawn=ctx.time_ms),
        )
