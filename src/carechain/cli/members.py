"""``carechain identity`` and ``carechain org``: keys, certificates, registration, votes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from carechain.api.client import build_transaction
from carechain.cli.common import IdentityOption, NodeOption, client, friendly, show
from carechain.crypto.suite import DEFAULT
from carechain.identity.certificates import fingerprint_of, issue_member_certificate
from carechain.identity.keys import (
    public_key_from_pem,
    public_key_to_pem,
    read_private_key,
    write_private_key,
)
from carechain.identity.roles import Role

identity_app = typer.Typer(help="Member keys and certificates.", no_args_is_help=True)
org_app = typer.Typer(help="Organisations: admit or remove by vote.", no_args_is_help=True)


def _send(node: str, identity: Path, contract: str, method: str, args: dict[str, object]) -> None:
    with client(node, identity) as c:
        chain = str(c.status()["chain"])
        result = c.submit(build_transaction(c.creds, chain, contract, method, args), wait=True)
    show(result)
    if result.get("status") == "committed" and result.get("code") != "ok":
        raise typer.Exit(1)


@identity_app.command("new-key")
@friendly
def new_key(
    out: Annotated[Path, typer.Argument(help="Writes OUT.key (private) and OUT.pub.pem.")],
) -> None:
    """Generate a key pair (a patient does this on their own device)."""
    seed = DEFAULT.generate_private_key()
    write_private_key(out.with_suffix(".key"), seed)
    out.with_suffix(".pub.pem").write_bytes(public_key_to_pem(DEFAULT.public_key(seed)))
    typer.echo(
        f"private key {out.with_suffix('.key')} (keep it), public key "
        f"{out.with_suffix('.pub.pem')} (give it to your organisation)"
    )


@identity_app.command("issue")
@friendly
def issue(
    ca_dir: Annotated[Path, typer.Option(help="The organisation's directory (ca.pem, ca.key).")],
    member_id: Annotated[str, typer.Option(help="Member id (pseudonymous for patients).")],
    role: Annotated[Role, typer.Option(help="The member's role.")],
    public_key: Annotated[Path, typer.Option(help="The member's public key (PEM).")],
    out: Annotated[Path, typer.Option(help="Where to write the certificate (PEM).")],
    days: Annotated[int, typer.Option(min=1, max=3650)] = 365,
) -> None:
    """Issue a member certificate with the organisation's CA over a public key."""
    ca_pem = (ca_dir / "ca.pem").read_bytes()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    pem = issue_member_certificate(
        ca_pem,
        read_private_key(ca_dir / "ca.key"),
        member_id,
        role,
        public_key_from_pem(public_key.read_bytes()),
        start,
        start + timedelta(days=days),
    )
    out.write_bytes(pem)
    typer.echo(f"certificate {fingerprint_of(pem)} written to {out}")


@identity_app.command("register")
@friendly
def register(
    certificate: Path, identity: IdentityOption, node: NodeOption = "http://127.0.0.1:8700"
) -> None:
    """Register a certificate your organisation issued (you must be its admin)."""
    _send(
        node,
        identity,
        "governance",
        "register_member",
        {"certificate": certificate.read_text("ascii")},
    )


@identity_app.command("revoke")
@friendly
def revoke(
    fingerprint: str,
    identity: IdentityOption,
    reason: Annotated[str, typer.Option(help="RFC 5280 reason, e.g. keyCompromise.")] = (
        "unspecified"
    ),
    node: NodeOption = "http://127.0.0.1:8700",
) -> None:
    """Revoke a certificate (its organisation's admin, or its holder)."""
    _send(
        node,
        identity,
        "governance",
        "revoke_certificate",
        {"fingerprint": fingerprint, "reason": reason},
    )


@identity_app.command("show")
@friendly
def show_member(
    fingerprint: str, identity: IdentityOption, node: NodeOption = "http://127.0.0.1:8700"
) -> None:
    """Show a member's on-chain record."""
    with client(node, identity) as c:
        show(c.state("governance", f"member/{fingerprint}"))


@org_app.command("list")
@friendly
def list_orgs(identity: IdentityOption, node: NodeOption = "http://127.0.0.1:8700") -> None:
    """List the consortium's organisations."""
    with client(node, identity) as c:
        items = c.state_list("governance", "org/", 1000)["items"]
    for item in items:
        v = item["value"]
        typer.echo(f"{v['org_id']:<20} {v['type']:<13} {v['status']:<8} {v['name']}")


@org_app.command("propose-admit")
@friendly
def propose_admit(
    ca_certificate: Annotated[Path, typer.Option(help="The new organisation's CA (PEM).")],
    admin: Annotated[list[Path], typer.Option(help="Its admins' certificates (PEM).")],
    identity: IdentityOption,
    node: NodeOption = "http://127.0.0.1:8700",
) -> None:
    """Propose admitting an organisation; your organisation votes yes by proposing."""
    _send(
        node,
        identity,
        "governance",
        "propose_admit_org",
        {
            "ca_certificate": ca_certificate.read_text("ascii"),
            "admin_certificates": [p.read_text("ascii") for p in admin],
        },
    )


@org_app.command("propose-remove")
@friendly
def propose_remove(
    org_id: str, identity: IdentityOption, node: NodeOption = "http://127.0.0.1:8700"
) -> None:
    """Propose removing an organisation."""
    _send(node, identity, "governance", "propose_remove_org", {"org_id": org_id})


@org_app.command("vote")
@friendly
def vote(
    proposal: str,
    identity: IdentityOption,
    approve: Annotated[bool, typer.Option("--approve/--reject")] = True,
    node: NodeOption = "http://127.0.0.1:8700",
) -> None:
    """Vote on a proposal for your organisation (admins only; one vote per organisation)."""
    _send(node, identity, "governance", "vote", {"proposal": proposal, "approve": approve})
