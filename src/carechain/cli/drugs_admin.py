"""``carechain drugs`` commands for licences and for shipments that do not arrive.

``license`` / ``withdraw-licence`` / ``licences``: a regulator records which
manufacturer may commission which GS1 company prefix or 药品标识码 (the
first 7 digits of a 药品追溯码), so that no member can commission another
maker's products. ``cancel-shipment`` (the sender) and ``reject-shipment``
(the receiver) close a shipment that was never received: its goods stay with,
or go back to, the sender.

``submit`` is shared with the other ``drugs`` commands (``cli/drugs.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from carechain.api.client import NodeClient
from carechain.cli.common import (
    DEFAULT_NODE,
    IdentityOption,
    NodeOption,
    client,
    fail,
    friendly,
    show,
    submit_call,
)
from carechain.cli.records import JsonOption, committed_line, iso
from carechain.contracts.drugs import SHIPMENT_END_REASONS, WITHDRAW_REASONS

_GS1_PREFIX = re.compile(r"\d{4,12}")
_CN_PRODUCT = re.compile(r"\d{7}")
_SHIPMENT = re.compile(r"shp-[0-9a-f]{24}")

Gs1PrefixOption = Annotated[
    str,
    typer.Option(
        "--gs1-prefix", help="GS1 company prefix, 4-12 digits, as GS1 allocated it (e.g. 6901234)."
    ),
]
CnProductOption = Annotated[
    str,
    typer.Option("--cn-product", help="药品标识码: the first 7 digits of its 药品追溯码."),
]
ShipmentArgument = Annotated[
    str, typer.Argument(metavar="SHIPMENT", help="Shipment id (from drugs ship).")
]


def submit(c: NodeClient, method: str, args: dict[str, Any], wait_s: float = 10.0) -> Any:
    """Sign ``drugs.<method>`` with ``args``, send it to its route and wait for the commit."""
    return submit_call(c, "drugs", method, args, wait_s)


def licence_args(gs1_prefix: str, cn_product: str) -> dict[str, str]:
    """``{"gs1_prefix": ...}`` or ``{"cn_product": ...}``, checked before anything is signed."""
    gs1_prefix, cn_product = gs1_prefix.strip(), cn_product.strip().removeprefix("cn:")
    if bool(gs1_prefix) == bool(cn_product):
        fail("give exactly one of --gs1-prefix and --cn-product")
    if gs1_prefix and not _GS1_PREFIX.fullmatch(gs1_prefix):
        fail(f"--gs1-prefix {gs1_prefix!r} is not a GS1 company prefix (4 to 12 digits)")
    if cn_product and not _CN_PRODUCT.fullmatch(cn_product):
        fail(f"--cn-product {cn_product!r} is not a 7-digit 药品标识码")
    return {"gs1_prefix": gs1_prefix} if gs1_prefix else {"cn_product": cn_product}


@friendly
def license_cmd(
    org: Annotated[str, typer.Option("--org", help="The manufacturer's organisation id.")],
    identity: IdentityOption,
    gs1_prefix: Gs1PrefixOption = "",
    cn_product: CnProductOption = "",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Let a manufacturer commission the products of a GS1 company prefix or a
    药品标识码 (regulators only)."""
    args = licence_args(gs1_prefix, cn_product)
    with client(node, identity) as c:
        result = submit(c, "license", {"org": org, **args})
    (number,) = args.values()
    typer.echo(f"licensed {number} to {org}: {committed_line(result)}")


@friendly
def withdraw_licence(
    reason: Annotated[str, typer.Option("--reason", help=", ".join(WITHDRAW_REASONS))],
    identity: IdentityOption,
    gs1_prefix: Gs1PrefixOption = "",
    cn_product: CnProductOption = "",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """End a licence: no more packs are commissioned under it (regulators only)."""
    if reason not in WITHDRAW_REASONS:
        fail(f"--reason {reason!r} is not one of {', '.join(WITHDRAW_REASONS)}")
    args = licence_args(gs1_prefix, cn_product)
    with client(node, identity) as c:
        result = submit(c, "withdraw_licence", {**args, "reason": reason})
    (number,) = args.values()
    typer.echo(f"withdrew the licence of {number} ({reason}): {committed_line(result)}")


@friendly
def licences(
    identity: IdentityOption,
    org: Annotated[str, typer.Option("--org", help="Only this manufacturer's.")] = "",
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Which manufacturer may commission which GS1 company prefix or 药品标识码."""
    with client(node, identity) as c:
        doc = c.request("GET", "/v1/drugs/licences", params={"org": org or None})
    if as_json:
        show(doc)
        return
    if not doc["licences"]:
        typer.echo("no licences", err=True)
    for licence in doc["licences"]:
        number = licence.get("gs1_prefix") or f"cn:{licence.get('cn_product')}"
        typer.echo(f"{number:<14}  {licence['org']:<20}  by {licence['by']} {iso(licence['time'])}")


def _end_shipment(
    method: str, shipment: str, reason: str, identity: Path, node: str
) -> tuple[Any, Any]:
    if not _SHIPMENT.fullmatch(shipment.strip()):
        fail(f"{shipment!r} is not a shipment id (shp- and 24 hex digits, from drugs ship)")
    if reason not in SHIPMENT_END_REASONS:
        fail(f"--reason {reason!r} is not one of {', '.join(SHIPMENT_END_REASONS)}")
    with client(node, identity) as c:
        result = submit(c, method, {"shipment": shipment.strip(), "reason": reason})
        found = c.request("GET", f"/v1/drugs/shipments/{shipment.strip()}")
    return result, found


ReasonOption = Annotated[str, typer.Option("--reason", help=", ".join(SHIPMENT_END_REASONS))]


@friendly
def cancel_shipment(
    shipment: ShipmentArgument,
    reason: ReasonOption,
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Call back a shipment you sent that is not received yet: its goods stay yours."""
    result, found = _end_shipment("cancel_shipment", shipment, reason, identity, node)
    typer.echo(
        f"cancelled {found['id']} to {found['to']} ({reason}): {len(found['items'])} item(s) "
        f"stay with {found['from']}: {committed_line(result)}"
    )


@friendly
def reject_shipment(
    shipment: ShipmentArgument,
    reason: ReasonOption,
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Refuse a shipment sent to you: its goods go back to the sender's custody."""
    result, found = _end_shipment("reject_shipment", shipment, reason, identity, node)
    typer.echo(
        f"rejected {found['id']} from {found['from']} ({reason}): {len(found['items'])} item(s) "
        f"back with {found['from']}: {committed_line(result)}"
    )
