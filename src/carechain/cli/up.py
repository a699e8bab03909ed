"""``carechain up``: run the embedded node with its REST API on 127.0.0.1."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Annotated

import typer

from carechain.cli.common import friendly
from carechain.cli.demo import DEMO_FILE, create_demo_logins, seed_demo
from carechain.node.consortium import DEMO_CONSORTIUM, create_consortium

COLLECTOR_THRESHOLDS = (50_000, 20, 100)
"""Young collections every 50,000 allocations (Python's default is 700)."""


def tune_collector() -> None:
    """Set the garbage collector for a node that runs for a long time.

    A transaction allocates dozens of short-lived objects. With the default
    thresholds, the collector runs a young collection every few transactions,
    and often a full one, which walks every live object. The objects made while
    starting (modules, the consortium, caches) live as long as the process, so
    they are frozen out of the collector's view. Measured with
    ``benchmarks/finance.py`` (transfers): about 10% less CPU per transaction.
    """
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


@friendly
def up(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            help="Node data directory (with --demo: the demo consortium's directory).",
        ),
    ] = None,
    demo: Annotated[
        bool, typer.Option(help="Create the demo consortium on first run and run its node.")
    ] = False,
    port: Annotated[int | None, typer.Option(help="Override the API port in node.toml.")] = None,
    host: Annotated[
        str | None, typer.Option(help="Override the API host (default 127.0.0.1).")
    ] = None,
) -> None:
    """Run the embedded node: solo ordering, the commit pipeline and the REST API."""
    import uvicorn

    from carechain.api.app import create_app
    from carechain.node.config import load_config
    from carechain.node.node import Node

    fresh = False
    root = data or Path(".carechain")
    if demo:
        node_dir = root / "node"
        if not (node_dir / "node.toml").exists():
            create_consortium(DEMO_CONSORTIUM, root)
            create_demo_logins(root, node_dir)
            fresh = True
            typer.echo(f"created the demo consortium in {root}")
        typer.echo(f"member identities (use with --as): {root / 'orgs'}/<org>/members/<member>")
    else:
        if data is None:
            raise typer.BadParameter("give --data NODE_DIR, or --demo")
        node_dir = data
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_config(node_dir)
    node = Node(config)
    node.start()
    if fresh:
        claims = seed_demo(node, root)
        typer.echo(f"demo claims: {claims[0]} (paid), {claims[1]} (in the insurer's review queue)")
    tune_collector()
    bind_host = host or config.api_host
    bind_port = port or config.api_port
    typer.echo(
        f"carechain node: chain {config.chain!r} at height {node.state.height}; "
        f"REST API on http://{bind_host}:{bind_port} (OpenAPI at /docs); "
        f"web pages on http://{bind_host}:{bind_port}/web/"
    )
    if demo and (root / DEMO_FILE).exists():
        typer.echo(
            f"demo web logins and passwords: {root / DEMO_FILE}; "
            f"a login's one-time code: carechain web demo-code NAME --data {root}"
        )
    try:
        uvicorn.run(create_app(node), host=bind_host, port=bind_port, log_level="warning")
    finally:
        node.stop()
