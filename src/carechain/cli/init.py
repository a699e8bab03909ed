"""``carechain init``: make a consortium's keys, certificates and genesis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from carechain.cli.common import friendly
from carechain.node.consortium import DEMO_CONSORTIUM, create_consortium


@friendly
def init(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Consortium file (TOML). Omit for the demo one."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory to write into.")] = Path(
        "consortium"
    ),
    port: Annotated[int | None, typer.Option(help="REST API port of the node.")] = None,
) -> None:
    """Create a consortium: organisation CAs, member keys and certificates, genesis."""
    text = DEMO_CONSORTIUM if config is None else config.read_text("utf-8")
    made = create_consortium(text, out, api_port=port)
    typer.echo(f"consortium {made.chain!r} written to {made.directory}")
    typer.echo(f"  node data directory: {made.node_dir}")
    typer.echo(f"  {len(made.members)} member identities under {made.directory / 'orgs'}")
    typer.echo(f"start it with: carechain up --data {made.node_dir}")
