"""The commit pipeline of a peer: verify a batch, execute it, build the block, commit.

``Committer.apply`` turns an ordered batch into a committed block:

1. Check the batch: the next height, a block time not before the previous
   one, the transactions' Merkle root, and the orderer's signature by a
   certificate that genesis named as an orderer.
2. Execute it (``contracts.executor``): statuses and the write-set.
3. Append every transaction to the ledger-wide tree and sign the tree head.
4. Build the header (results hash, chained state digest, tree head).
5. Durably append the block (fsync), then write the state in one SQLite
   transaction. Only then does the block count as committed.

``carechain verify`` uses the same class on an empty state and compares the
block it derives with the block on disk, byte for byte.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from carechain.contracts.executor import Executor
from carechain.contracts.membership import read_member
from carechain.contracts.runtime import BlockInfo
from carechain.contracts.state import Overlay
from carechain.crypto.canonical import canonical_bytes
from carechain.crypto.suite import CryptoSuite
from carechain.errors import InvalidInput, StorageCorrupt
from carechain.identity.roles import Role
from carechain.ledger.block import (
    Batch,
    Block,
    BlockHeader,
    leaf_entry,
    results_hash,
    transactions_root,
)
from carechain.ledger.blockstore import BlockStore
from carechain.ledger.merkle import Hasher, MerkleTree
from carechain.ledger.statestore import BlockWrites, SqliteNodeStore, StateStore
from carechain.ledger.transaction import Fingerprint
from carechain.node.staged import Layer, LayeredView, StagedState

log = logging.getLogger(__name__)


class BatchRejected(InvalidInput):
    """An ordered batch that no honest orderer would have produced."""

    code = "batch_rejected"


@dataclass(frozen=True)
class SignedTreeHead:
    """A peer's signed statement of the ledger tree after a block (RFC 9162 section 4.10)."""

    chain: str
    height: int
    tree_size: int
    root: str
    time_ms: int
    signer: str
    signature: bytes

    def statement(self) -> dict[str, Any]:
        return tree_head_statement(self.chain, self.height, self.tree_size, self.root, self.time_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.statement(),
            "signer": self.signer,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }


def tree_head_statement(
    chain: str, height: int, tree_size: int, root: str, time_ms: int
) -> dict[str, Any]:
    return {
        "type": "carechain/tree_head",
        "chain": chain,
        "height": height,
        "tree_size": tree_size,
        "root": root,
        "time": time_ms,
    }


def tree_head_from_json(doc: Any) -> SignedTreeHead:
    try:
        if doc["type"] != "carechain/tree_head":
            raise InvalidInput("not a carechain tree head")
        return SignedTreeHead(
            chain=str(doc["chain"]),
            height=int(doc["height"]),
            tree_size=int(doc["tree_size"]),
            root=str(doc["root"]),
            time_ms=int(doc["time"]),
            signer=str(doc["signer"]),
            signature=base64.b64decode(doc["signature"], validate=True),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"tree head is malformed: {exc}") from exc


def state_digest_after(previous: str, writes_hash: bytes, suite: CryptoSuite) -> str:
    """Chain the write-set hash onto the previous digest: H(prev || H(write-set))."""
    return suite.hash(bytes.fromhex(previous) + writes_hash).hex()


class Committer:
    """Owns the state store and the ledger tree; applies batches one at a time."""

    def __init__(
        self,
        chain: str,
        state: StateStore,
        executor: Executor,
        suite: CryptoSuite,
        blocks: BlockStore | None,
        peer: Fingerprint,
        peer_key: bytes | None,
    ) -> None:
        self.chain = chain
        self.state = state
        self.executor = executor
        self.suite = suite
        self.blocks = blocks
        self.peer = peer
        self._peer_key = peer_key
        self.hasher = Hasher(suite.hash)
        self.node_store = SqliteNodeStore(state)
        self.tree = MerkleTree(self.hasher, self.node_store, state.tree_size)
        self.staged = StagedState(state)
        # The head: the last block built (it may not be persisted yet).
        self.height = state.height
        self.block_hash = state.block_hash
        self.state_digest = state.state_digest
        self.last_time_ms = state.time_ms
        self.on_commit: list[Callable[[Block, list[tuple[str, bytes | None]]], None]] = []

    # -- step 1 ------------------------------------------------------------------------

    def check_batch(self, batch: Batch, view: LayeredView) -> None:
        if batch.height != self.height + 1:
            raise BatchRejected(f"batch height {batch.height}; expected {self.height + 1}")
        if batch.time_ms < self.last_time_ms:
            raise BatchRejected(f"batch {batch.height} goes back in time")
        self.check_signed(batch, view)

    def check_signed(self, batch: Batch, view: LayeredView | StateStore) -> None:
        """What makes a batch one an orderer of this chain signed, wherever it sits:
        its chain, its transactions against the signed root, the orderer's role,
        certificate and signature (membership as ``view`` has it)."""
        if batch.chain != self.chain:
            raise BatchRejected(f"batch is for chain {batch.chain!r}, not {self.chain!r}")
        if not batch.txs:
            raise BatchRejected(f"batch {batch.height} is empty")
        root = transactions_root(batch.txs, self.hasher)
        if root != batch.tx_root:
            raise BatchRejected(f"batch {batch.height}: transaction root does not match")
        if batch.height == 0:
            return  # the genesis batch names its orderer; the executor checks it
        config = view.get("governance/config")
        orderers = [] if config is None else orjson.loads(config)["orderers"]
        member = read_member(Overlay(view), batch.orderer)
        if batch.orderer not in orderers or member is None or member.role is not Role.ORDERER:
            raise BatchRejected(
                f"batch {batch.height} signed by {batch.orderer[:12]}..., "
                "who is not an orderer of this chain"
            )
        if member.refusal_at(batch.time_ms) is not None:
            raise BatchRejected(f"batch {batch.height}: orderer certificate not valid")
        if not self.suite.verify(member.public_key, batch.statement(), batch.orderer_sig):
            raise BatchRejected(f"batch {batch.height}: orderer signature does not verify")

    # -- steps 2-5 ---------------------------------------------------------------------

    def build(self, batch: Batch) -> tuple[Block, BlockWrites]:
        """Execute ``batch`` on the head and build its block and state writes.

        Nothing is persisted: the block becomes the head, its writes a staged
        layer that later blocks read through, until ``commit`` persists it.
        """
        view = self.staged.view()
        with self.state.snapshot():
            self.check_batch(batch, view)
            info = BlockInfo(self.chain, batch.height, batch.time_ms)
            run = self.executor.execute(view, info, batch.txs)
        if batch.height == 0:
            self._check_genesis_orderer(batch, run.overlay)
        leaf_hashes = [
            self.hasher.hash_leaf(leaf_entry(batch.height, i, tx.txid, r.code))
            for i, (tx, r) in enumerate(zip(batch.txs, run.results, strict=True))
        ]
        self.node_store.discard_pending()
        self.tree.append_leaf_hashes(leaf_hashes)
        tree_size = self.tree.size
        tree_root = self.tree.root().hex()
        digest = state_digest_after(self.state_digest, run.writes_hash, self.suite)
        header = BlockHeader(
            chain=self.chain,
            height=batch.height,
            prev=self.block_hash,
            time_ms=batch.time_ms,
            tx_count=len(batch.txs),
            tx_root=batch.tx_root,
            orderer=batch.orderer,
            orderer_sig=batch.orderer_sig,
            results=results_hash(run.results, run.writes_hash, self.suite),
            state=digest,
            tree_size=tree_size,
            tree_root=tree_root,
        )
        block = Block(header, batch.txs, tuple(run.results))
        statement = canonical_bytes(
            tree_head_statement(self.chain, batch.height, tree_size, tree_root, batch.time_ms)
        )
        signature = b"" if self._peer_key is None else self.suite.sign(self._peer_key, statement)
        sth = SignedTreeHead(
            self.chain, batch.height, tree_size, tree_root, batch.time_ms, self.peer, signature
        )
        writes = list(run.write_set)
        writes_meta = BlockWrites(
            height=batch.height,
            block_hash=header.block_hash(self.suite),
            state_digest=digest,
            time_ms=batch.time_ms,
            tree_size=tree_size,
            writes=writes,
            txs=[
                (tx.txid, i, r.code)
                for i, (tx, r) in enumerate(zip(batch.txs, run.results, strict=True))
            ],
            nonces=run.nonces,
            tree_head=(bytes.fromhex(tree_root), canonical_bytes(sth.to_json())),
            tree_nodes=self.node_store.take_pending(),
        )
        self.staged.push(Layer(batch.height, dict(writes), {(s, n): t for s, n, t in run.nonces}))
        self.height = batch.height
        self.block_hash = writes_meta.block_hash
        self.state_digest = digest
        self.last_time_ms = batch.time_ms
        return block, writes_meta

    def _check_genesis_orderer(self, batch: Batch, overlay: Overlay) -> None:
        config = overlay.get("governance/config")
        member = read_member(overlay, batch.orderer)
        if (
            config is None
            or batch.orderer not in config["orderers"]
            or member is None
            or not self.suite.verify(member.public_key, batch.statement(), batch.orderer_sig)
        ):
            raise BatchRejected("genesis batch is not signed by an orderer it names")

    def commit(self, block: Block, writes: BlockWrites) -> None:
        """Make a built block durable (block store, fsync), then write its state.

        Blocks are committed in the order they were built. Only after this
        returns does the block count as committed (listeners hear of it).
        """
        self._store_block(block)
        self.state.commit_block(writes)
        self.staged.drop(block.height)
        self.node_store.release(writes.tree_nodes)
        for listener in self.on_commit:
            listener(block, list(writes.writes))

    def _store_block(self, block: Block) -> None:
        if self.blocks is not None:
            data = block.to_bytes()
            if self.blocks.height >= block.height:
                stored = self.blocks.get(block.height)
                if stored != data:
                    raise StorageCorrupt(
                        f"block {block.height} on disk differs from its re-execution",
                        block.height,
                    )
            else:
                self.blocks.append(block.height, data)

    def apply(self, batch: Batch) -> Block:
        block, writes = self.build(batch)
        self.commit(block, writes)
        return block


def batch_of(block: Block) -> Batch:
    """The ordered batch a stored block was built from."""
    h = block.header
    return Batch(h.chain, h.height, h.time_ms, block.txs, h.tx_root, h.orderer, h.orderer_sig)


class Persister:
    """Stage two of the pipeline: commits built blocks on a thread of its own, in order.

    Once a block fails to persist, the blocks queued after it (built on top of
    it) are dropped, never acknowledged; ``failure`` says why. ``finish`` ends
    the thread after what is queued; with ``discard`` it drops the queue.
    """

    def __init__(self, committer: Committer, name: str = "persister") -> None:
        self._committer = committer
        self._queue: queue.Queue[tuple[Block, BlockWrites] | None] = queue.Queue(maxsize=2)
        self._discard = False
        self.failure: BaseException | None = None
        bound = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(bound,), name=name, daemon=True)
        self._thread.start()
        bound.wait()  # from here on, other threads read through connections of their own

    def _run(self, bound: threading.Event) -> None:
        self._committer.state.bind_writer()
        bound.set()
        while (item := self._queue.get()) is not None:
            if self.failure is not None or self._discard:
                continue
            try:
                self._committer.commit(*item)
            except BaseException as exc:
                log.exception("persisting block %d failed", item[0].height)
                self.failure = exc

    def put(self, built: tuple[Block, BlockWrites]) -> None:
        self._queue.put(built)

    def finish(self, *, discard: bool = False, timeout: float | None = None) -> bool:
        """End the thread; True once it has ended."""
        self._discard = self._discard or discard
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)
        return not self._thread.is_alive()
