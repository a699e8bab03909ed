"""``carechain verify``: re-check a stopped (or running) node's whole ledger.

Steps:

1. Frames: every block record's length and checksum (``scan_integrity``).
2. Blocks, from genesis: each block decodes from canonical bytes; its batch
   is re-checked (height, time, transactions root, orderer signature) and
   re-executed on an empty state, which re-verifies every transaction
   signature and certificate; the block this derives must equal the stored
   block byte for byte: statuses, results hash, previous hash, chained state
   digest, tree size and root.
3. State: the node's state store must hold exactly the replayed state: every
   row, the height, block hash and state digest; a row that differs is named
   with the block that last wrote it.
4. Tree heads: each signed tree head verifies under the peer's certificate
   and matches the replayed tree.

``verify_vault`` then opens every record in the node's vault (decrypt,
authenticate, fingerprint) and matches it with the chain.

Any failure raises ``VerificationFailed`` naming the block.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from carechain.contracts import default_contracts
from carechain.contracts.executor import Executor
from carechain.crypto.suite import get_suite
from carechain.errors import CarechainError, NodeFailure, VerificationFailed
from carechain.ledger.block import Block, decode_block
from carechain.ledger.blockstore import BlockStore, scan_integrity
from carechain.ledger.statestore import StateStore
from carechain.ledger.transaction import Fingerprint
from carechain.node.committer import Committer, Persister, batch_of
from carechain.node.config import load_config
from carechain.node.proofs import verify_tree_head
from carechain.node.verifier import BulkVerifier
from carechain.vault import Vault

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VerifyReport:
    blocks: int
    transactions: int
    seconds: float
    state_checked: bool
    note: str = ""

    @property
    def tx_per_second(self) -> float:
        return self.transactions / self.seconds if self.seconds > 0 else 0.0


def _describe_difference(stored: Block, rebuilt: Block) -> str:
    for index, (a, b) in enumerate(zip(stored.results, rebuilt.results, strict=False)):
        if a != b:
            return (
                f"transaction {index} ({stored.txs[index].txid[:16]}...) was recorded as "
                f"{a.code!r} but re-executes as {b.code!r} {b.message}".rstrip()
            )
    s, r = stored.header.to_json(), rebuilt.header.to_json()
    fields = [k for k in s if s[k] != r.get(k)]
    if fields:
        return "header field(s) differ from re-execution: " + ", ".join(fields)
    return "bytes differ from the canonical re-encoding"


def _merge_rows(
    stored: Iterator[tuple[str, bytes, int]], replayed: Iterator[tuple[str, bytes, int]]
) -> str | None:
    """Compare two key-ordered row streams; describe the first difference."""
    end = ("\U0010ffff" * 2, b"", -1)
    a, b = next(stored, end), next(replayed, end)
    while a is not end or b is not end:
        if a[0] == b[0]:
            if a[1] != b[1] or a[2] != b[2]:
                return (
                    f"state row {a[0]!r} differs from re-execution (last written by block {a[2]})"
                )
            a, b = next(stored, end), next(replayed, end)
        elif a[0] < b[0]:
            return f"state row {a[0]!r} should not exist (claims block {a[2]})"
        else:
            return f"state row {b[0]!r} is missing (written by block {b[2]})"
    return None


def verify_ledger(data_dir: Path | str, progress: Progress | None = None) -> VerifyReport:
    started = time.perf_counter()
    config = load_config(data_dir)
    suite = get_suite(config.suite)
    # 1. frames
    problems = scan_integrity(config.blocks_dir)
    if problems:
        first = problems[0]
        raise VerificationFailed(
            f"block {first.height}: {first.reason} ({first.segment} offset {first.offset})"
            + (
                " (a torn tail: never acknowledged; the node cuts it when it starts)"
                if first.torn_tail
                else ""
            ),
            first.height,
        )
    stored_state = StateStore(config.state_path)
    try:
        blocks = BlockStore.open(
            config.blocks_dir, min_height=stored_state.height, fsync=False, repair=False
        )
    except NodeFailure as exc:
        stored_state.close()
        raise NodeFailure(
            f"{exc.message}: is the node running? Stop it first; verify audits a stopped "
            "node's data directory (or a copy of it)"
        ) from exc
    peer_cert = config.peer_cert.read_bytes()
    transactions = 0
    with tempfile.TemporaryDirectory(prefix="carechain-verify-") as tmp:
        replay = StateStore(Path(tmp) / "replay.sqlite")
        verifier = BulkVerifier(suite, workers=config.verify_workers)
        committer = Committer(
            config.chain,
            replay,
            Executor(default_contracts(), suite, verify_many=verifier),
            suite,
            None,
            Fingerprint(""),
            None,
        )
        persister = Persister(committer, name="verify-persister")
        try:
            total = blocks.height + 1
            # 2. blocks
            for height in range(total):
                data = blocks.get(height)
                try:
                    stored = decode_block(data, height)
                    rebuilt, writes = committer.build(batch_of(stored))
                except CarechainError as exc:
                    raise VerificationFailed(f"block {height}: {exc.message}", height) from exc
                if rebuilt.to_bytes() != data:
                    raise VerificationFailed(
                        f"block {height}: {_describe_difference(stored, rebuilt)}", height
                    )
                if persister.failure is not None:
                    raise persister.failure
                persister.put((rebuilt, writes))
                transactions += len(stored.txs)
                if progress is not None:
                    progress(height + 1, total)
            persister.finish()
            if persister.failure is not None:
                raise persister.failure
            # 3. state
            note = ""
            state_checked = stored_state.height == replay.height
            if stored_state.height > replay.height:
                raise VerificationFailed(
                    f"state store is at block {stored_state.height} but the block store ends "
                    f"at {replay.height}: blocks are missing",
                    replay.height + 1,
                )
            if not state_checked:
                note = (
                    f"state store is at block {stored_state.height}; blocks up to "
                    f"{replay.height} will be replayed when the node starts"
                )
            else:
                for what in ("block_hash", "state_digest"):
                    if getattr(stored_state, what) != getattr(replay, what):
                        raise VerificationFailed(
                            f"state store {what} differs from re-execution at block "
                            f"{replay.height}",
                            replay.height,
                        )
                difference = _merge_rows(stored_state.iter_state(), replay.iter_state())
                if difference is not None:
                    height = int(difference.rsplit("block ", 1)[1].rstrip(")"))
                    raise VerificationFailed(difference, height)
            # 4. tree heads
            for height in range(min(stored_state.height, replay.height) + 1):
                head = stored_state.tree_head(height)
                fresh = replay.tree_head(height)
                if head is None or fresh is None or head[:2] != fresh[:2]:
                    raise VerificationFailed(f"tree head of block {height} differs", height)
                try:
                    verify_tree_head(orjson.loads(head[2]), peer_cert, suite)
                except CarechainError as exc:
                    raise VerificationFailed(
                        f"tree head of block {height}: {exc.message}", height
                    ) from exc
        finally:
            persister.finish(discard=True)
            verifier.close()
            replay.close()
            blocks.close()
            stored_state.close()
    return VerifyReport(
        blocks=total,
        transactions=transactions,
        seconds=time.perf_counter() - started,
        state_checked=state_checked,
        note=note,
    )


@dataclass(frozen=True)
class VaultReport:
    checked: int
    """Committed records decrypted, authenticated and matched with their fingerprint."""
    erased: int
    pending: int
    """Records stored but not (yet) on the chain; the node settles them when it starts."""


def verify_vault(data_dir: Path | str) -> VaultReport:
    """Open every record in the node's vault and match it with the chain.

    Each committed record must decrypt and authenticate under its
    organisation's key and hash to the fingerprint the chain holds for it; a
    record the chain says was erased must be erased in the vault. Raises
    ``VerificationFailed`` naming every record that fails.
    """
    config = load_config(data_dir)
    if not (config.data_dir / "vault").exists():
        return VaultReport(0, 0, 0)
    state = StateStore(config.state_path)
    vault = Vault(config.data_dir / "vault", get_suite(config.suite))
    problems: list[str] = []
    checked = erased = pending = 0
    try:
        for entry in vault.entries():
            raw = state.get(f"records/record/{entry.record_id}")
            on_chain = orjson.loads(raw) if raw is not None else None
            if entry.erased:
                erased += 1
                continue
            if on_chain is not None and on_chain["status"] == "erased":
                problems.append(f"{entry.record_id}: erased on the chain but not in the vault")
                continue
            if entry.status == "pending":
                pending += 1
                continue
            if on_chain is None:
                problems.append(f"{entry.record_id}: committed in the vault but not on the chain")
                continue
            try:
                opened = vault.open(entry.record_id)
            except CarechainError as exc:
                problems.append(f"{entry.record_id}: {exc.message}")
                continue
            if opened.entry.fingerprint != on_chain["fingerprint"]:
                problems.append(f"{entry.record_id}: does not match its fingerprint on the chain")
                continue
            checked += 1
    finally:
        vault.close()
        state.close()
    if problems:
        raise VerificationFailed(
            f"{len(problems)} vault record(s) fail: " + "; ".join(problems[:20]), None
        )
    return VaultReport(checked, erased, pending)
