"""``carechain tx``: build, co-sign and submit transactions; follow their status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from carechain.api.client import build_transaction
from carechain.cli.common import (
    IdentityOption,
    NodeOption,
    client,
    fail,
    friendly,
    read_json_arg,
    show,
)
from carechain.crypto.canonical import canonical_bytes
from carechain.identity.wallet import load_credentials
from carechain.ledger.transaction import Fingerprint, add_signature, decode_envelope_bytes

app = typer.Typer(
    help="Build, co-sign and submit transactions; follow their status.", no_args_is_help=True
)

ArgsOption = Annotated[str | None, typer.Option("--args", "-a", help="Arguments as a JSON object.")]
ArgsFileOption = Annotated[
    Path | None, typer.Option("--args-file", help="Arguments from a JSON file ('-' for stdin).")
]


def _chain(node: str, identity: Path) -> str:
    with client(node, identity) as c:
        return str(c.status()["chain"])


@app.command("send")
@friendly
def send(
    contract: str,
    method: str,
    identity: IdentityOption,
    node: NodeOption = "http://127.0.0.1:8700",
    args: ArgsOption = None,
    args_file: ArgsFileOption = None,
    wait: Annotated[bool, typer.Option(help="Wait until the transaction commits.")] = True,
) -> None:
    """Sign and submit CONTRACT.METHOD with --args; print its status."""
    values = read_json_arg(args, args_file, "--args")
    if not isinstance(values, dict):
        fail("--args must be a JSON object")
    with client(node, identity) as c:
        chain = str(c.status()["chain"])
        tx = build_transaction(c.creds, chain, contract, method, values)
        result = c.submit(tx, wait=wait)
    show(result)
    if result.get("status") == "committed" and result.get("code") != "ok":
        raise typer.Exit(1)


@app.command("build")
@friendly
def build(
    contract: str,
    method: str,
    identity: IdentityOption,
    chain: Annotated[str, typer.Option(help="Chain name (as in the consortium file).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the envelope.")],
    args: ArgsOption = None,
    args_file: ArgsFileOption = None,
    cosigner: Annotated[
        list[str] | None, typer.Option("--cosigner", help="Fingerprint that must co-sign.")
    ] = None,
) -> None:
    """Sign a transaction offline into a file, for co-signers to add their signatures."""
    values = read_json_arg(args, args_file, "--args")
    if not isinstance(values, dict):
        fail("--args must be a JSON object")
    tx = build_transaction(
        load_credentials(identity), chain, contract, method, values, cosigners=cosigner or []
    )
    out.write_bytes(canonical_bytes(tx.to_json()))
    typer.echo(f"{tx.txid} written to {out}")


@app.command("cosign")
@friendly
def cosign(
    file: Path,
    identity: IdentityOption,
) -> None:
    """Add your signature to a transaction file (you must be named as a co-signer)."""
    tx = decode_envelope_bytes(file.read_bytes(), canonical=True, partial=True)
    creds = load_credentials(identity)
    if creds.fingerprint not in tx.body.cosigners:
        fail(f"{creds.fingerprint[:12]}... is not a co-signer of this transaction")
    signed = add_signature(tx, Fingerprint(creds.fingerprint), creds.private_key)
    file.write_bytes(canonical_bytes(signed.to_json()))
    typer.echo(f"signed {signed.txid}")


@app.command("submit")
@friendly
def submit(
    file: Path,
    identity: IdentityOption,
    node: NodeOption = "http://127.0.0.1:8700",
    wait: Annotated[bool, typer.Option(help="Wait until the transaction commits.")] = True,
) -> None:
    """Submit a signed transaction file (canonical JSON envelope)."""
    tx = decode_envelope_bytes(file.read_bytes(), canonical=True)
    with client(node, identity) as c:
        result = c.submit(tx, wait=wait)
    show(result)
    if result.get("status") == "committed" and result.get("code") != "ok":
        raise typer.Exit(1)


@app.command("status")
@friendly
def status(
    txid: str,
    identity: IdentityOption,
    node: NodeOption = "http://127.0.0.1:8700",
) -> None:
    """Show a transaction's status (pending, or committed with its code) and envelope."""
    with client(node, identity) as c:
        show(c.transaction(txid))
