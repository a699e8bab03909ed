"""``carechain verify``: re-check every block of a node's data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from carechain.cli.common import fail, friendly
from carechain.errors import VerificationFailed
from carechain.node.verify import verify_ledger, verify_vault


@friendly
def verify(
    data: Annotated[Path, typer.Option("--data", "-d", help="The node's data directory.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Audit the whole ledger (frames, hashes, signatures, Merkle roots, state by replay)
    and every record in the vault against its fingerprint on the chain."""
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("verifying blocks", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = verify_ledger(data, progress)
            bar.update(task, description="opening vault records")
            vault = verify_vault(data)
        except VerificationFailed as exc:
            fail(f"verification failed: {exc.message}", code=1)
            return
    typer.echo(
        f"OK: {report.blocks} blocks, {report.transactions} transactions verified in "
        f"{report.seconds:.2f} s ({report.tx_per_second:,.0f} tx/s)"
    )
    if vault.checked or vault.erased or vault.pending:
        typer.echo(
            f"OK: vault: {vault.checked} records match their fingerprints on the chain"
            f" ({vault.erased} erased, {vault.pending} pending)"
        )
    if report.note:
        typer.echo(f"note: {report.note}")
