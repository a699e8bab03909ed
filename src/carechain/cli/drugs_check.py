"""``carechain drugs check``, ``check-image``, ``qr`` and ``scans``: what a scan says.

``check`` prints a pack's verdict in words (coloured on a terminal), its product,
lot, expiry, holder and journey, and exits 1 when it is not genuine, so a script
can act on it; errors exit 2. ``check-image`` reads the code from a photo,
``qr`` draws the code to print on a pack, and ``scans`` lists the scans recorded
on the chain (where codes turn up). The commands are registered in
``cli/drugs.py``; the reading of pack codes here is shared with it.
"""

from __future__ import annotations

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
)
from carechain.cli.drugs_admin import submit
from carechain.cli.records import AfterOption, JsonOption, LimitOption, committed_line, iso
from carechain.contracts.drugs import GENUINE
from carechain.standards.gs1 import InvalidGs1, PackId, parse_pack_code

CodeArgument = Annotated[
    str,
    typer.Argument(
        metavar="CODE",
        help="Pack code in any scanned form: Digital Link, element string, 20-digit 药品追溯码.",
    ),
]
SellingOption = Annotated[
    bool,
    typer.Option("--selling", help="Judge custody as if your organisation were selling the pack."),
]
RecordOption = Annotated[
    bool,
    typer.Option("--record", help="Also record the scan on the chain (a drugs.verify)."),
]


def pack_key(text: str) -> str:
    """The key of the pack a scan or key names; raises ``InvalidGs1``."""
    text = text.strip()
    if text.startswith(("sgtin:", "cn-trace:")):
        return PackId.from_key(text).key
    return parse_pack_code(text).pack.key


# -- talking to the node ------------------------------------------------------------------


def view_of(c: NodeClient, code: str, selling: bool) -> Any:
    return c.request("GET", "/v1/drugs/pack", params={"code": code, "selling": selling})


# -- formatting ---------------------------------------------------------------------------


def verdict_line(view: dict[str, Any]) -> str:
    """The verdict in words: green on a terminal when genuine, amber in transit, else red."""
    found = view["verdict"]
    mark, colour = {GENUINE: ("✔", "green"), "in_transit": ("…", "yellow")}.get(found, ("✘", "red"))
    return typer.style(f"{mark} {view['says']}", fg=colour, bold=True)


def step_words(step: dict[str, Any]) -> str:
    """What happened at one step of a journey, in words."""
    words = str(step.get("says") or step.get("step") or "?")
    if step.get("to"):
        words += f" to {step['to']}"
    if step.get("source"):
        words += f" from {step['source']}"
    if step.get("parent"):
        words += f" ({step['parent']})"
    if step.get("shipment"):
        words += f", shipment {step['shipment']}"
    if step.get("step") == "decommissioning" and step.get("disposition"):
        words += f": {step['disposition']}"
    if step.get("patient"):
        words += f" ({step['patient']})"
    return words


def show_view(view: dict[str, Any], as_json: bool) -> None:
    """A pack's verdict, facts and journey; exit 1 when the verdict is not genuine."""
    if as_json:
        show(view)
    else:
        typer.echo(verdict_line(view))
        holder = view.get("holder")
        if holder and view.get("inside"):
            holder = f"{holder} (inside {view['inside']})"
        recall = view.get("recall")
        rows = [
            ("pack", view["pack"]),
            (
                "drug",
                " ".join(
                    str(v)
                    for v in (
                        view.get("product_name"),
                        *(view.get("product_details") or {}).values(),
                    )
                    if v
                ),
            ),
            ("product", view.get("product")),
            ("maker", view.get("manufacturer")),
            ("lot", view.get("lot")),
            ("expiry", view.get("expiry")),
            ("holder", holder),
            ("status", view.get("status")),
            (
                "recalled",
                recall
                and f"{iso(recall.get('time'))} by {recall.get('by')}: {recall.get('reason')}",
            ),
        ]
        for label, value in rows:
            if value:
                typer.echo(f"{label:<9} {value}")
        journey = view.get("journey") or []
        if journey:
            typer.echo("journey")
        for step in journey:
            typer.echo(f"  {iso(step.get('time'))}  {step.get('org', '-'):<16}  {step_words(step)}")
    if view["verdict"] != GENUINE:
        raise typer.Exit(1)


def record_scan(c: NodeClient, code: str, selling: bool) -> None:
    result = submit(c, "verify", {"code": code, "selling": selling})
    typer.echo(f"scan recorded: {committed_line(result)}", err=True)


# -- commands -------------------------------------------------------------------------


@friendly
def check(
    code: CodeArgument,
    identity: IdentityOption,
    selling: SellingOption = False,
    record: RecordOption = False,
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Is this pack genuine? The verdict, product, lot, expiry, holder and journey.

    Exit status 0 when genuine, 1 when not, 2 on an error.
    """
    try:
        key = pack_key(code)
    except InvalidGs1 as exc:
        fail(f"{exc.code}: {exc.message}")
    with client(node, identity) as c:
        if record:
            record_scan(c, key, selling)
        view = view_of(c, key, selling)
    show_view(view, as_json)


@friendly
def check_image(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="Photo of the pack's QR code or DataMatrix.")
    ],
    identity: IdentityOption,
    selling: SellingOption = False,
    record: RecordOption = False,
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Check a pack from a photo (PNG, JPEG, WebP) of its code: the same as ``check``."""
    data = file.read_bytes()
    with client(node, identity) as c:
        view = c.request("POST", "/v1/drugs/scan-image", raw_body=data, params={"selling": selling})
        if record:
            record_scan(c, view["pack"], selling)
            view = view_of(c, view["pack"], selling)
    show_view(view, as_json)


@friendly
def qr(
    code: CodeArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write the QR code to.")],
    identity: IdentityOption,
    image_format: Annotated[str, typer.Option("--format", help="png or svg.")] = "png",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Draw the QR code (GS1 Digital Link) to print on a pack."""
    if image_format not in ("png", "svg"):
        fail(f"--format must be png or svg, not {image_format!r}")
    try:
        key = pack_key(code)
    except InvalidGs1 as exc:
        fail(f"{exc.code}: {exc.message}")
    with client(node, identity) as c:
        response = c.request_raw(
            "GET", "/v1/drugs/qr", params={"code": key, "format": image_format}
        )
    out.write_bytes(response.content)
    typer.echo(f"QR code of {key} written to {out}")


@friendly
def scans(
    identity: IdentityOption,
    suspicious: Annotated[
        bool, typer.Option("--suspicious", help="Only scans whose verdict was not genuine.")
    ] = False,
    as_json: JsonOption = False,
    after: AfterOption = "",
    limit: LimitOption = 100,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Recorded scans across the chain, oldest first: where codes turn up (regulators, auditors)."""
    with client(node, identity) as c:
        doc = c.request(
            "GET",
            "/v1/drugs/scans",
            params={"suspicious": suspicious or None, "after": after or None, "limit": limit},
        )
    if as_json:
        show(doc)
    elif not doc["scans"]:
        typer.echo("no scans", err=True)
    else:
        for scan in doc["scans"]:
            typer.echo(
                f"{iso(scan.get('time'))}  {scan.get('org', '-'):<16}  "
                f"{scan.get('verdict'):<15}  {scan.get('pack') or '(not a pack code)'}"
                + ("  selling" if scan.get("selling") else "")
            )
    if doc.get("next"):
        typer.echo(f"more may follow: --after {doc['next']}", err=True)
