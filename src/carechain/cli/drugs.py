"""``carechain drugs``: serialised drug packs from the factory to the patient.

Each change is a signed ``drugs.*`` transaction sent to its own route
(``api/drugs.py``), which answers once it commits; the rules are the drugs
contract's (``contracts/drugs.py``). Every pack code is read here first with
``standards.gs1.parse_pack_code``, in whatever form it was scanned (GS1
Digital Link, element string, 20-digit 药品追溯码, or a pack key), so that a
typo is a one-line error naming it before anything is signed; what goes on
the chain is the pack's key.

Checking packs (``check``, ``check-image``, ``qr``, ``scans``) is in
``cli/drugs_check.py``; licences and shipments that do not arrive in
``cli/drugs_admin.py``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from carechain.api.client import NodeClient
from carechain.cli import drugs_admin, drugs_check, epcis
from carechain.cli.common import (
    DEFAULT_NODE,
    IdentityOption,
    NodeOption,
    client,
    fail,
    friendly,
)
from carechain.cli.drugs_admin import submit
from carechain.cli.drugs_check import CodeArgument, pack_key, verdict_line, view_of
from carechain.cli.records import committed_line
from carechain.contracts.drugs import DECOMMISSION_REASONS, GENUINE, MAX_ITEMS, RECALL_REASONS
from carechain.errors import CarechainError
from carechain.identity.wallet import load_credentials
from carechain.ledger.transaction import MAX_ENVELOPE_BYTES
from carechain.standards.gs1 import (
    Gs1Date,
    InvalidGs1,
    PackId,
    normalise_gtin,
    parse_digital_link,
    parse_element_string,
    parse_pack_code,
    validate_sscc,
)

app = typer.Typer(
    help="Drug traceability: commission, pack, ship, receive, dispense, recall and check packs.",
    no_args_is_help=True,
)

ENVELOPE_BUDGET = MAX_ENVELOPE_BYTES - 4096
"""Bytes of pack entries per transaction: a node refuses an envelope over
``MAX_ENVELOPE_BYTES``, and 5,000 packs with lots would pass it."""
BIG_WAIT_S = 60.0
"""How long a large commissioning waits for its commit (the routes' limit)."""
_PACK_INDEX = re.compile(r"\bpacks\[(\d+)\]")  # how the contract names a pack it refuses
_LOT = re.compile(r"[!-~]{1,20}")  # contracts/drugs.py: printable ASCII, 1 to 20 characters

ItemsArgument = Annotated[
    list[str],
    typer.Argument(metavar="ITEM", help="Pack codes, and SSCCs (18 digits) of cases and pallets."),
]
SsccArgument = Annotated[str, typer.Argument(metavar="SSCC", help="SSCC of a case or pallet.")]
# -- reading codes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Commissioned:
    """One pack to commission and where it was read (``FILE:LINE`` or ``argument N``)."""

    code: str
    lot: str
    expiry: str
    where: str

    def entry(self) -> dict[str, str]:
        return {"code": self.code, "lot": self.lot, "expiry": self.expiry}


def item_code(text: str) -> str:
    """An SSCC (18 digits) for a case or pallet, else the pack's key; raises ``InvalidGs1``."""
    text = text.strip()
    if text.startswith("sscc:") or (len(text) == 18 and text.isdigit()):
        return validate_sscc(text.removeprefix("sscc:"))
    try:
        return pack_key(text)
    except InvalidGs1:
        try:  # an SSCC label scanned as an element string or a Digital Link
            if text.lower().startswith(("http://", "https://")):
                data = parse_digital_link(text).data
            else:
                data = parse_element_string(text)
        except InvalidGs1:
            data = None
        if data is not None and data.sscc is not None and data.gtin is None:
            return data.sscc
        raise


def item_codes(texts: Iterable[str]) -> list[str]:
    codes = []
    for index, text in enumerate(texts, start=1):
        try:
            codes.append(item_code(text))
        except InvalidGs1 as exc:
            fail(f"{exc.code}: argument {index}: {exc.message}")
    return codes


def read_sscc(text: str) -> str:
    try:
        return validate_sscc(text.strip().removeprefix("sscc:"))
    except InvalidGs1 as exc:
        fail(f"{exc.code}: {exc.message}")


def check_lot_and_expiry(lot: str | None, expiry: str | None) -> None:
    if lot is not None and not _LOT.fullmatch(lot):
        fail(f"--lot {lot!r}: 1 to 20 printable ASCII characters, no spaces")
    if expiry is not None:
        try:
            when = Gs1Date(expiry).to_date(date.today())
        except InvalidGs1 as exc:
            fail(f"{exc.code}: --expiry: {exc.message}")
        if when < date.today():
            fail(f"--expiry {expiry} ({when.isoformat()}) has already passed")


def commissioned(
    sources: Iterable[tuple[str, str]], lot: str | None, expiry: str | None
) -> list[Commissioned]:
    """Every pack to commission from (where, text) pairs, all read before anything is signed.

    A code that carries its own lot (AI 10) or expiry (AI 17) must agree with
    ``--lot`` and ``--expiry``, or stands in for them. A pack listed twice is
    refused with both places, since the contract would refuse it only in a
    later transaction, after earlier ones had committed.
    """
    packs: list[Commissioned] = []
    first: dict[str, str] = {}
    for where, text in sources:
        try:
            scanned = (
                parse_pack_code(text) if not text.startswith(("sgtin:", "cn-trace:")) else None
            )
            key = scanned.pack.key if scanned else PackId.from_key(text).key
        except InvalidGs1 as exc:
            fail(f"{exc.code}: {where}: {exc.message}")
        own_lot = scanned.lot if scanned else None
        own_expiry = scanned.expiry.yymmdd if scanned and scanned.expiry else None
        for own, given, option in ((own_lot, lot, "--lot"), (own_expiry, expiry, "--expiry")):
            if own is not None and given is not None and own != given:
                fail(f"{where}: the code says {option[2:]} {own}, but {option} is {given}")
        pack_lot, pack_expiry = own_lot or lot, own_expiry or expiry
        if pack_lot is None or pack_expiry is None:
            missing = "--lot" if pack_lot is None else "--expiry"
            fail(f"{where}: the code carries no {missing[2:]}: give {missing}")
        if key in first:
            fail(f"{where}: pack {key} is already listed at {first[key]}")
        first[key] = where
        packs.append(Commissioned(key, pack_lot, pack_expiry, where))
    return packs


def file_lines(file: Path) -> Iterator[tuple[str, str]]:
    """(``FILE:LINE``, code) for each line of ``file`` that is not blank or a ``#`` comment."""
    for number, raw in enumerate(file.read_bytes().splitlines(), start=1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            fail(f"{file}:{number}: not UTF-8 text")
        if text and not text.startswith("#"):
            yield f"{file}:{number}", text


def batches(packs: list[Commissioned], compact: bool) -> Iterator[list[Commissioned]]:
    """Consecutive runs of at most ``MAX_ITEMS`` packs that fit in one transaction
    (``compact``: as bare codes sharing one lot and expiry)."""
    batch: list[Commissioned] = []
    size = 0
    for pack in packs:
        entry_size = len(pack.code) + 3 if compact else len(orjson.dumps(pack.entry())) + 1
        if batch and (len(batch) == MAX_ITEMS or size + entry_size > ENVELOPE_BUDGET):
            yield batch
            batch, size = [], 0
        batch.append(pack)
        size += entry_size
    if batch:
        yield batch


def located(message: str, batch: list[Commissioned]) -> str:
    """``message`` with the contract's ``packs[i]`` (of ``batch``) named by where it was read."""

    def where(found: re.Match[str]) -> str:
        index = int(found[1])
        return batch[index].where if index < len(batch) else found[0]

    return _PACK_INDEX.sub(where, message)


# -- commands -----------------------------------------------------------------------------


@app.command("commission")
@friendly
def commission(
    identity: IdentityOption,
    codes: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="CODE",
            help="Pack codes in any scanned form (Digital Link, element string, "
            "20-digit 药品追溯码).",
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="Codes, one a line (blank lines and # comments skipped)."),
    ] = None,
    lot: Annotated[
        str | None, typer.Option("--lot", help="Lot (batch) number, unless the codes carry it.")
    ] = None,
    expiry: Annotated[
        str | None,
        typer.Option("--expiry", help="Expiry date YYMMDD (GS1 AI 17), unless the codes carry it."),
    ] = None,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Give serialised packs their identity on the chain (a manufacturer).

    Every code is read first; a bad one is named by its line and nothing is
    signed. Large files go in transactions of at most 5,000 packs.
    """
    check_lot_and_expiry(lot, expiry)
    sources = [(f"argument {i}", text.strip()) for i, text in enumerate(codes or [], start=1)]
    if from_file is not None:
        sources += list(file_lines(from_file))
    if not sources:
        fail("no pack codes: give CODE... or --from-file FILE")
    packs = commissioned(sources, lot, expiry)
    # One lot at once (the usual case) goes as bare codes: 5,000 fit in a transaction.
    compact = len({(p.lot, p.expiry) for p in packs}) == 1
    parts = list(batches(packs, compact))
    done = 0
    with NodeClient(node, load_credentials(identity), timeout=BIG_WAIT_S + 15) as c:
        for batch in parts:
            try:
                args: dict[str, Any] = (
                    {
                        "lot": batch[0].lot,
                        "expiry": batch[0].expiry,
                        "codes": [p.code for p in batch],
                    }
                    if compact
                    else {"packs": [p.entry() for p in batch]}
                )
                result = submit(c, "commission", args, BIG_WAIT_S)
            except CarechainError as exc:
                exc.message = located(exc.message, batch)
                if done:  # say what is on the chain, and where to start again
                    exc.message += (
                        f" (the first {done:,} packs are commissioned; "
                        f"from {batch[0].where} on, not)"
                    )
                raise
            line = committed_line(result)
            done += len(batch)
            if len(parts) > 1:
                typer.echo(f"{done:,} of {len(packs):,} packs: {line}", err=True)
    typer.echo(f"commissioned {len(packs):,} pack(s): {line}")


@app.command("aggregate")
@friendly
def aggregate(
    into: Annotated[str, typer.Option("--into", help="SSCC of the case or pallet (18 digits).")],
    items: ItemsArgument,
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Pack loose packs (or cases) you hold into a case or pallet named by an SSCC."""
    parent = read_sscc(into)
    children = item_codes(items)
    with client(node, identity) as c:
        result = submit(c, "aggregate", {"parent": parent, "children": children})
    typer.echo(f"packed {len(children)} item(s) into {parent}: {committed_line(result)}")


@app.command("disaggregate")
@friendly
def disaggregate(
    sscc: SsccArgument, identity: IdentityOption, node: NodeOption = DEFAULT_NODE
) -> None:
    """Open a case or pallet you hold: what it held is loose again."""
    parent = read_sscc(sscc)
    with client(node, identity) as c:
        result = submit(c, "disaggregate", {"parent": parent})
    typer.echo(f"unpacked {parent}: {committed_line(result)}")


@app.command("ship")
@friendly
def ship(
    to: Annotated[str, typer.Option("--to", help="Receiving organisation's id.")],
    items: ItemsArgument,
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Send packs and cases you hold to another organisation; prints the shipment id.

    Custody moves only when the receiver runs ``drugs receive`` with that id.
    """
    codes = item_codes(items)
    shipment = "shp-" + secrets.token_hex(12)
    with client(node, identity) as c:
        result = submit(c, "ship", {"shipment": shipment, "to": to, "items": codes})
    line = committed_line(result)
    typer.echo(shipment)
    typer.echo(f"shipped {len(codes)} item(s) to {to}: {line}", err=True)


@app.command("receive")
@friendly
def receive(
    shipment: Annotated[str, typer.Argument(metavar="SHIPMENT", help="Id from drugs ship.")],
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Accept a shipment sent to your organisation: its goods are now in your custody."""
    with client(node, identity) as c:
        line = committed_line(submit(c, "receive", {"shipment": shipment}))
        found = c.request("GET", f"/v1/drugs/shipments/{shipment}")
    typer.echo(f"received {shipment} from {found['from']}: {len(found['items'])} item(s): {line}")


@app.command("dispense")
@friendly
def dispense(
    code: CodeArgument,
    identity: IdentityOption,
    patient: Annotated[
        str | None, typer.Option("--patient", help="Patient id, <organisation>:<member id>.")
    ] = None,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Hand a pack to a patient (a pharmacy, hospital or clinic). A copied code is refused."""
    try:
        key = pack_key(code)
    except InvalidGs1 as exc:
        fail(f"{exc.code}: {exc.message}")
    args = {"code": key, **({"patient": patient} if patient else {})}
    with client(node, identity) as c:
        view = view_of(c, key, selling=True)
        if view["verdict"] != GENUINE:
            typer.echo(verdict_line(view))  # the node refuses it below, and says why
        result = submit(c, "dispense", args)
    typer.echo(f"dispensed {key}: {committed_line(result)}")


@app.command("decommission")
@friendly
def decommission(
    code: Annotated[
        str, typer.Argument(metavar="ITEM", help="Pack code, or SSCC of an empty case.")
    ],
    reason: Annotated[str, typer.Option("--reason", help=", ".join(DECOMMISSION_REASONS))],
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Take a loose pack (or an empty case) you hold out of the supply chain."""
    if reason not in DECOMMISSION_REASONS:
        fail(f"--reason {reason!r} is not one of {', '.join(DECOMMISSION_REASONS)}")
    (item,) = item_codes([code])
    with client(node, identity) as c:
        result = submit(c, "decommission", {"code": item, "reason": reason})
    typer.echo(f"decommissioned {item} ({reason}): {committed_line(result)}")


@app.command("register-product")
@friendly
def register_product(
    product: Annotated[
        str, typer.Option("--product", help="GTIN, or cn: and the 7-digit 药品标识码.")
    ],
    name: Annotated[str, typer.Option("--name", help="The drug's name as on the box.")],
    identity: IdentityOption,
    strength: Annotated[str, typer.Option("--strength", help="e.g. 0.25 g")] = "",
    form: Annotated[str, typer.Option("--form", help="e.g. capsule, 胶囊")] = "",
    approval: Annotated[str, typer.Option("--approval", help="批准文号")] = "",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Name a product (its manufacturer): shown to everyone who checks its packs."""
    args = {"product": product.strip(), "name": name.strip()}
    args.update({k: v.strip() for k, v in (("strength", strength), ("form", form),
                 ("approval", approval)) if v.strip()})  # fmt: skip
    with client(node, identity) as c:
        result = submit(c, "register_product", args)
    typer.echo(f"product {args['product']} is {args['name']}: {committed_line(result)}")


@app.command("recall")
@friendly
def recall(
    product: Annotated[
        str, typer.Option("--product", help="GTIN, or the 7-digit 药品标识码 of 药品追溯码s.")
    ],
    lot: Annotated[str, typer.Option("--lot", help="Lot (batch) number.")],
    reason: Annotated[str, typer.Option("--reason", help=", ".join(RECALL_REASONS))],
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Recall a lot: its manufacturer or a regulator. Its packs then check as recalled."""
    if reason not in RECALL_REASONS:
        fail(f"--reason {reason!r} is not one of {', '.join(RECALL_REASONS)}")
    check_lot_and_expiry(lot, None)
    text = product.strip().removeprefix("cn:")
    if len(text) == 7 and text.isdigit():
        name = f"cn:{text}"
    else:
        try:
            name = normalise_gtin(text)
        except InvalidGs1 as exc:
            fail(f"{exc.code}: --product: {exc.message}")
    with client(node, identity) as c:
        result = submit(c, "recall", {"product": name, "lot": lot, "reason": reason})
    typer.echo(f"recalled lot {lot} of {name} ({reason}): {committed_line(result)}")


app.command("check")(drugs_check.check)
app.command("check-image")(drugs_check.check_image)
app.command("qr")(drugs_check.qr)
app.command("scans")(drugs_check.scans)
app.command("export-epcis")(epcis.export_epcis)
app.command("import-epcis")(epcis.import_epcis)
app.command("license")(drugs_admin.license_cmd)
app.command("withdraw-licence")(drugs_admin.withdraw_licence)
app.command("licences")(drugs_admin.licences)
app.command("cancel-shipment")(drugs_admin.cancel_shipment)
app.command("reject-shipment")(drugs_admin.reject_shipment)
