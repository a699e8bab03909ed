"""``carechain``: the command line. This module only wires the command groups."""

from __future__ import annotations

import typer

from carechain.cli import (
    audit,
    claims,
    consent,
    drugs,
    init,
    network,
    payments,
    proof,
    query,
    tx,
    up,
    verify,
    web,
)
from carechain.cli.members import identity_app, org_app
from carechain.cli.records import records_app

app = typer.Typer(
    help="carechain: a permissioned blockchain for healthcare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("init")(init.init)
app.command("up")(up.up)
app.add_typer(tx.app, name="tx")
app.command("query")(query.query)
app.command("block")(query.block)
app.command("status")(query.status)
app.command("forks")(query.forks)
app.add_typer(proof.app, name="proof")
app.command("verify")(verify.verify)
app.add_typer(identity_app, name="identity")
app.add_typer(org_app, name="org")
app.add_typer(network.app, name="network")
app.add_typer(records_app, name="records")
app.add_typer(consent.app, name="consent")
app.add_typer(audit.app, name="audit")
app.add_typer(drugs.app, name="drugs")
app.add_typer(payments.app, name="pay")
app.add_typer(claims.app, name="claims")
app.add_typer(web.app, name="web")


def main() -> None:
    app()
