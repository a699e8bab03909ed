"""``carechain drugs export-epcis`` and ``import-epcis``: packs' journeys as GS1 EPCIS 2.0.

Export asks the node for the journeys of packs as one EPCIS 2.0 JSON-LD
document. Import reads a partner's document with the pure codec
(``standards/epcis``), checks all of it before anything is signed, then
signs each drugs-contract call it describes as the member given with ``--as``
and submits them in document order, stopping at the first refusal with the
path of the event that caused it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import orjson
import typer

from carechain.api.client import build_transaction
from carechain.cli.common import DEFAULT_NODE, IdentityOption, NodeOption, client, fail, friendly
from carechain.cli.records import committed_line
from carechain.crypto.canonical import parse_json
from carechain.errors import CarechainError
from carechain.standards.epcis import import_document


@friendly
def export_epcis(
    codes: Annotated[list[str], typer.Argument(metavar="CODE", help="Pack codes, any form.")],
    identity: IdentityOption,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
    zone: Annotated[str, typer.Option("--zone", help="Time zone of event times.")] = "+00:00",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Packs' journeys as one GS1 EPCIS 2.0 JSON-LD document (no patient data)."""
    with client(node, identity) as c:
        query = urlencode([("code", code) for code in codes] + [("zone", zone)])
        doc = c.request("GET", f"/v1/drugs/epcis?{query}")
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    if out is None:
        typer.echo(data.decode("utf-8"))
    else:
        out.write_bytes(data)
        events = len(doc["epcisBody"]["eventList"])
        typer.echo(f"{events} EPCIS event(s) written to {out}", err=True)


@friendly
def import_epcis(
    file: Annotated[Path, typer.Argument(help="An EPCIS 2.0 JSON-LD document.")],
    identity: IdentityOption,
    parties: Annotated[
        Path | None,
        typer.Option("--parties", help="JSON object: party URI (PGLN, SGLN) -> organisation id."),
    ] = None,
    skip_unsupported: Annotated[
        bool,
        typer.Option("--skip-unsupported", help="Skip events carechain has no call for."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the calls the document describes.")
    ] = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Record a partner's EPCIS events on the chain, signed by you, in document order."""
    document = parse_json(file.read_bytes())
    mapping = None
    if parties is not None:
        mapping = parse_json(parties.read_bytes())
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            fail(f"{parties}: must be a JSON object of party URI -> organisation id")
    commands = import_document(document, parties=mapping, skip_unsupported=skip_unsupported)
    if not commands:
        fail(f"{file}: the document describes nothing to record")
    if dry_run:
        for command in commands:
            typer.echo(
                f"{command.source}  drugs.{command.method}  {orjson.dumps(command.args).decode()}"
            )
        return
    with client(node, identity) as c:
        chain = c.chain()
        for done, command in enumerate(commands):
            tx = build_transaction(c.creds, chain, "drugs", command.method, command.args)
            try:
                result = c.request("POST", f"/v1/drugs/{command.method}", raw_body=tx.wire_bytes())
            except CarechainError as exc:
                exc.message = (
                    f"{command.source} (drugs.{command.method}): {exc.message}; "
                    f"{done} of {len(commands)} call(s) before it are recorded"
                )
                raise
            typer.echo(f"{command.source}  drugs.{command.method}: {committed_line(result)}")
