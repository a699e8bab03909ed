"""``carechain proof``: fetch inclusion and consistency proofs; verify them offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from carechain.cli.common import IdentityOption, NodeOption, client, friendly, show
from carechain.crypto.canonical import parse_json
from carechain.crypto.suite import get_suite
from carechain.node.proofs import verify_consistency_document, verify_inclusion_document

app = typer.Typer(help="Merkle proofs: fetch from a node, verify offline.", no_args_is_help=True)

OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Write the proof here.")]


def _emit(doc: object, out: Path | None) -> None:
    if out is None:
        show(doc)
    else:
        out.write_text(json.dumps(doc, indent=2), "utf-8")
        typer.echo(f"proof written to {out}")


@app.command("inclusion")
@friendly
def inclusion(
    txid: str,
    identity: IdentityOption,
    height: Annotated[
        int | None, typer.Option(help="Prove against the tree after this block.")
    ] = None,
    node: NodeOption = "http://127.0.0.1:8700",
    out: OutOption = None,
) -> None:
    """Fetch the proof that TXID is in the ledger, with the signed tree head."""
    with client(node, identity) as c:
        _emit(c.inclusion_proof(txid, height), out)


@app.command("consistency")
@friendly
def consistency(
    first: int,
    identity: IdentityOption,
    second: Annotated[int | None, typer.Argument(help="Later block (default: latest).")] = None,
    node: NodeOption = "http://127.0.0.1:8700",
    out: OutOption = None,
) -> None:
    """Fetch the proof that the ledger after block SECOND extends the one after FIRST."""
    with client(node, identity) as c:
        _emit(c.consistency_proof(first, second), out)


@app.command("verify")
@friendly
def verify(
    file: Path,
    peer_cert: Annotated[
        Path | None,
        typer.Option("--peer-cert", help="Certificate of the peer that signed the tree head."),
    ] = None,
    suite: Annotated[str, typer.Option(help="Crypto suite of the chain.")] = "intl",
) -> None:
    """Verify a proof file offline: needs only the proof, its tree head and the peer's cert."""
    doc = parse_json(file.read_bytes())
    cert = None if peer_cert is None else peer_cert.read_bytes()
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "carechain/consistency_proof":
        result = verify_consistency_document(doc, get_suite(suite), cert)
        typer.echo(
            f"OK: the tree of {result['second_size']} entries extends the tree of "
            f"{result['first_size']}"
        )
    else:
        result = verify_inclusion_document(doc, get_suite(suite), cert)
        typer.echo(
            f"OK: transaction {result['txid']} (block {result['height']}, status "
            f"{result['code']}) is in the ledger of {result['tree_size']} entries, root "
            f"{result['root']}"
        )
    if cert is None:
        typer.echo("note: no --peer-cert given; the tree head's signature was not checked")
