"""``carechain query``, ``block`` and ``status``: read from a running node."""

from __future__ import annotations

from typing import Annotated

import typer

from carechain.cli.common import IdentityOption, NodeOption, client, friendly, show


@friendly
def query(
    contract: str,
    identity: IdentityOption,
    key: Annotated[str | None, typer.Argument(help="State key; omit to list.")] = None,
    prefix: Annotated[str, typer.Option(help="List keys starting with this.")] = "",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    node: NodeOption = "http://127.0.0.1:8700",
) -> None:
    """Read a contract's state: one KEY, or the keys under --prefix."""
    with client(node, identity) as c:
        show(c.state(contract, key) if key else c.state_list(contract, prefix, limit))


@friendly
def block(
    height: Annotated[str, typer.Argument(help="Block height, or 'latest'.")],
    identity: IdentityOption,
    node: NodeOption = "http://127.0.0.1:8700",
    header_only: Annotated[bool, typer.Option("--header", help="Only the header.")] = False,
) -> None:
    """Show a block: header, transactions and their statuses."""
    with client(node, identity) as c:
        h = int(c.status()["height"]) if height == "latest" else int(height)
        doc = c.block(h)
    show({"hash": doc["hash"], "header": doc["header"]} if header_only else doc)


@friendly
def status(identity: IdentityOption, node: NodeOption = "http://127.0.0.1:8700") -> None:
    """Show the node's height, hashes, pending transactions and health."""
    with client(node, identity) as c:
        show(c.status())


@friendly
def forks(identity: IdentityOption, node: NodeOption = "http://127.0.0.1:8700") -> None:
    """Show the fork evidence this peer holds (both signed statements each); exit 1 if any."""
    with client(node, identity) as c:
        found = c.request("GET", "/v1/forks")["forks"]
    if not found:
        typer.echo("no forks seen")
        return
    show(found)
    typer.echo(f"{len(found)} fork(s) seen: the peers named disagree with this one", err=True)
    raise typer.Exit(1)
