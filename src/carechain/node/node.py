"""A peer: ordering -> validate -> execute -> commit; queries; committed-block events.

``Node.open(data_dir)`` recovers before anything else: the block store cuts a
torn tail, and blocks on disk that the state store does not yet reflect are
re-executed and checked against the stored bytes. Then ``start()`` starts the
ordering service and two threads: the committer executes each batch on the
head of the chain, and the persister makes each built block durable, in order.

A transaction is *acknowledged* (``wait`` returns, the REST API answers
``committed``) only after its block is fsynced to the block store and its
state written.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from carechain.contracts import default_contracts
from carechain.contracts.executor import Executor, SignatureCache
from carechain.contracts.membership import MEMBER_PREFIX, ORG_PREFIX, MemberRecord, read_member
from carechain.contracts.records import CUSTODIAN_TYPES
from carechain.contracts.state import Overlay
from carechain.crypto.canonical import parse_json
from carechain.crypto.suite import get_suite
from carechain.errors import Busy, CarechainError, NodeFailure, NotFound
from carechain.identity.certificates import fingerprint_of
from carechain.identity.keys import read_private_key
from carechain.identity.roles import Role
from carechain.ledger.block import (
    Batch,
    Block,
    batch_from_json,
    decode_block,
)
from carechain.ledger.blockstore import BlockStore
from carechain.ledger.statestore import StateStore
from carechain.ledger.transaction import Fingerprint, SignedTransaction
from carechain.node.committer import BatchRejected, Committer, Persister, batch_of
from carechain.node.config import NodeConfig, load_config
from carechain.node.fhircheck import FhirChecker
from carechain.node.mempool import ADMITTED, COMMITTED, Mempool
from carechain.node.peers import Checkpoint, CheckpointBoard, CrossCheck, PeerLink
from carechain.node.records import RecordService
from carechain.node.remote import Custodians
from carechain.node.verifier import BulkVerifier
from carechain.ordering.base import OrderingService
from carechain.ordering.solo import SoloOrderer
from carechain.vault import Vault

log = logging.getLogger(__name__)


class _Latch:
    """One event for all the receipts of one submission, set when the last settles.

    A ``threading.Event`` per transaction costs a condition and a lock each,
    thousands of times per block; a latch per batch costs one.
    """

    __slots__ = ("event", "left", "lock")

    def __init__(self, count: int) -> None:
        self.lock = threading.Lock()
        self.left = count
        self.event = threading.Event()


class Receipt:
    """Settled when its transaction commits; ``status`` then says how (unless it was
    already committed before it was submitted: ask ``Node.tx_status`` then).

    Receipts of one submission share a latch: ``wait`` returns once this receipt
    is settled, at the latest when the whole submission is.
    """

    __slots__ = ("_latch", "_settled", "status", "txid")

    def __init__(self, txid: str, latch: _Latch | None = None) -> None:
        self.txid = txid
        self.status: TxStatus | None = None
        self._settled = False
        self._latch = latch or _Latch(1)

    def settle(self, status: TxStatus | None) -> None:
        latch = self._latch
        with latch.lock:
            if self._settled:
                return
            self.status = status
            self._settled = True
            latch.left -= 1
            last = latch.left == 0
        if last:
            latch.event.set()

    def set(self) -> None:
        """Settle without a status (the index has the answer)."""
        self.settle(None)

    def is_set(self) -> bool:
        return self._settled

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds; whether this receipt is settled."""
        if not self._settled:
            self._latch.event.wait(timeout)
        return self._settled


@dataclass(frozen=True)
class TxStatus:
    txid: str
    status: str
    """``pending``, ``committed`` (applied or rejected: see ``code``) or ``unknown``."""
    height: int | None = None
    index: int | None = None
    code: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"txid": self.txid, "status": self.status}
        if self.status == "committed":
            doc.update(
                height=self.height, index=self.index, code=self.code, message=self.message or ""
            )
        return doc


class Node:
    def __init__(self, config: NodeConfig, *, ordering: OrderingService | None = None) -> None:
        self.config = config
        self.suite = get_suite(config.suite)
        self.chain = config.chain
        self.peer_key = read_private_key(config.peer_key)
        self.peer_fp = Fingerprint(fingerprint_of(config.peer_cert.read_bytes()))
        self.state = StateStore(config.state_path)
        self.blocks = BlockStore.open(
            config.blocks_dir, min_height=self.state.height, fsync=config.fsync
        )
        self.signatures = SignatureCache()
        self.verifier = BulkVerifier(self.suite, workers=config.verify_workers)
        self.executor = Executor(default_contracts(), self.suite, self.signatures, self.verifier)
        self.committer = Committer(
            self.chain,
            self.state,
            self.executor,
            self.suite,
            self.blocks,
            self.peer_fp,
            self.peer_key,
        )
        self._members: dict[str, MemberRecord | None] = {}
        self.mempool = Mempool(
            self.chain,
            self.suite,
            self.member,
            self.state.nonce_txids,
            self.signatures,
            self.verifier,
        )
        self._waiters: dict[str, list[Receipt]] = {}
        self._waiters_lock = threading.Lock()
        self._subscribers: list[Callable[[Block], None]] = []
        self._batches: queue.Queue[Batch | None] = queue.Queue(maxsize=4)
        self._commit_thread: threading.Thread | None = None
        self._persister: Persister | None = None

        self._build_failure: BaseException | None = None
        self._stopping = False
        self.started_at = time.time()
        self.committer.on_commit.append(self._after_commit)
        self._own: OrderedDict[int, Checkpoint] = OrderedDict()
        self._served: dict[int, tuple[str, Block]] = {}
        self.peer_link = (
            PeerLink(config.peers, self.suite, self.peer_fp, self.peer_key)
            if config.peers
            else None
        )
        self.ordering = ordering or self._ordering()
        self.crosscheck = self._crosscheck()
        self._recover()
        self.vault = Vault(config.data_dir / "vault", self.suite)
        custodians = (
            Custodians(config.peers, self.suite, self.peer_fp, self.peer_key, self.member)
            if config.peers
            else None
        )
        self.fhir = FhirChecker(workers=config.verify_workers)
        self.records = RecordService(self, self.vault, self._vault_orgs(), custodians, self.fhir)
        # Before the node's own listener settles waiters: an erasure is answered only
        # once the record's key is destroyed (a crash in between is settled on restart).
        self.committer.on_commit.insert(0, self.records.after_commit)
        settled = self.records.reconcile()
        if any(settled.values()):
            log.info("vault settled against the chain: %s", settled)

    @classmethod
    def open(cls, data_dir: Path | str) -> Node:
        return cls(load_config(data_dir))

    def _vault_orgs(self) -> list[str]:
        """The organisations whose records this node keeps: as configured, else its own
        if that is a hospital or clinic (only they hold records; see contracts/records.py)."""
        if self.config.vault_orgs:
            return list(self.config.vault_orgs)
        own = self.member(self.peer_fp)
        if own is None or own.org_type not in CUSTODIAN_TYPES:
            return []
        return [own.org_id]

    def _ordering(self) -> OrderingService:
        cfg = self.config
        orderer: tuple[Fingerprint, bytes] | None = None
        if cfg.orderer_key is not None and cfg.orderer_cert is not None:
            orderer = (
                Fingerprint(fingerprint_of(cfg.orderer_cert.read_bytes())),
                read_private_key(cfg.orderer_key),
            )
        if cfg.ordering_backend == "etcd":
            from carechain.ordering.etcd import EtcdOrderer

            return EtcdOrderer(  # without an orderer key the peer follows and never cuts
                self.chain,
                cfg.etcd_endpoints,
                self.suite,
                peer_id=cfg.peer_id,
                orderer=None if orderer is None else orderer[0],
                orderer_key=None if orderer is None else orderer[1],
                max_txs=cfg.max_txs,
                max_wait_ms=cfg.max_wait_ms,
                max_txn_ops=cfg.max_txn_ops,
                lease_ttl_s=cfg.lease_ttl_s,
                retain_blocks=cfg.retain_blocks,
                compact_every=cfg.compact_every,
                fetch_blocks=self._fetch_blocks if self.peer_link is not None else None,
            )
        if orderer is None:
            raise NodeFailure("solo ordering needs orderer_key and orderer_cert in node.toml")
        return SoloOrderer(
            self.chain,
            orderer[0],
            orderer[1],
            self.suite,
            max_txs=cfg.max_txs,
            max_wait_ms=cfg.max_wait_ms,
        )

    def _crosscheck(self) -> CrossCheck | None:
        board = self.ordering
        if not isinstance(board, CheckpointBoard):
            return None
        return CrossCheck(
            self.chain,
            self.suite,
            self.peer_fp,
            self.peer_key,
            board,
            self._peer_public_key,
            self.own_checkpoint,
            self.config.data_dir / "forks.jsonl",
            on_fork=self._investigate_fork,
        )

    def _peer_public_key(self, fingerprint: str) -> bytes | None:
        record = self.member(fingerprint)
        if record is None or record.role is not Role.PEER:
            return None
        if record.refusal_at(int(time.time() * 1000)) is not None:
            return None
        return record.public_key

    def own_checkpoint(self, height: int) -> Checkpoint | None:
        """This peer's (unsigned) checkpoint after block ``height``, if it has the block."""
        checkpoint = self._own.get(height)
        if checkpoint is not None:
            return checkpoint
        if not 0 <= height <= self.state.height:
            return None
        return self._checkpoint_of(self.block(height))

    def _checkpoint_of(self, block: Block) -> Checkpoint:
        h = block.header
        return Checkpoint(
            self.chain,
            h.height,
            h.block_hash(self.suite),
            h.state,
            h.tree_size,
            h.tree_root,
            self.peer_fp,
        )

    def _fetch_blocks(self, first: int, last: int) -> list[Batch]:
        """Batches ``first..last`` from other peers (as many as they serve, in order)."""
        assert self.peer_link is not None
        batches = []
        for height in range(first, min(last, first + 31) + 1):
            if self._stopping or self.failure is not None:
                break
            fetched = self.peer_link.fetch_block(height, self._check_served_batch)
            if fetched is None:
                break
            self._served[height] = fetched
            batches.append(batch_of(fetched[1]))
        if batches:
            log.info("fetched blocks %d..%d from peers", first, first + len(batches) - 1)
        return batches

    def _check_served_batch(self, url: str, block: Block) -> bool:
        """Whether a served block carries a batch an orderer of this chain signed.

        A peer that serves anything else is faulty or lying: it is reported, and
        the block is fetched from another peer instead.
        """
        try:
            self.committer.check_signed(batch_of(block), self.state)
            return True
        except BatchRejected as exc:
            problem = exc.message
        log.error("peer %s served block %d that is forged: %s", url, block.height, problem)
        if self.crosscheck is not None:
            self.crosscheck.report_forged(url, block, problem)
        return False

    def _investigate_fork(self, height: int) -> None:
        """After a fork at ``height``: did an orderer sign two batches for it?

        Each peer's block at that height is fetched; one whose batch differs from
        ours yet is validly signed by an orderer of the chain is evidence against
        the orderer(s), kept with both signed batch statements.
        """
        if self.peer_link is None or self.crosscheck is None:
            return
        ours = self.block(height)
        for url in self.peer_link.urls:
            theirs = self.peer_link.fetch_block_from(url, height)
            if theirs is None or theirs.header.statement() == ours.header.statement():
                continue
            if self._check_served_batch(url, theirs):
                self.crosscheck.report_equivocation(url, ours, theirs)

    def _check_served(self, block: Block, ours: Checkpoint) -> None:
        """A block fetched from a peer must come out the same when we execute it."""
        served = self._served.pop(block.height, None)
        if served is None or served[1].header == block.header:
            return
        url, theirs = served
        log.error(
            "peer %s served block %d whose header differs from ours after execution",
            url,
            block.height,
        )
        if self.crosscheck is not None:
            self.crosscheck.report_served(ours.signed(self.suite, self.peer_key), url, theirs)

    # -- recovery ----------------------------------------------------------------------

    def _recover(self) -> None:
        """Commit genesis on first start; re-execute blocks the state does not reflect."""
        self.state.bind_writer()
        if self.blocks.height < 0 and self.state.height < 0:
            genesis = batch_from_json(parse_json(self.config.genesis_path.read_bytes()))
            self.committer.apply(genesis)
        replayed = 0
        for height in range(self.state.height + 1, self.blocks.height + 1):
            data = self.blocks.get(height)
            block = decode_block(data, height)
            rebuilt, writes = self.committer.build(batch_of(block))
            self.committer.commit(rebuilt, writes)
            replayed += 1
        if replayed:
            log.info("replayed %d block(s) into the state store", replayed)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._commit_thread = threading.Thread(
            target=self._commit_loop, name="committer", daemon=True
        )
        self._persister = Persister(self.committer)
        self._commit_thread.start()
        self.ordering.start(self.state.height + 1, self.committer.last_time_ms, self._deliver)
        if self.crosscheck is not None:
            self.crosscheck.start()

    def stop(self) -> None:
        stopped = False
        try:
            stopped = self._stop_threads()
        finally:
            self.verifier.close()
            self.fhir.close()
            self.vault.close()
            if stopped:
                self.blocks.close()
                self.state.close()
            else:
                log.error("commit threads did not stop; leaving the stores open")

    def _deliver(self, batch: Batch) -> None:
        """Hand an ordered batch to the committer (back-pressure: waits while it is busy).

        Once the node has stopped committing (a failure) or is stopping, nothing
        will take the batch: it is dropped rather than blocking the orderer.
        """
        while True:
            try:
                self._batches.put(batch, timeout=0.5)
                return
            except queue.Full:
                if self.failure is not None or self._stopping:
                    return

    def _stop_threads(self) -> bool:
        """Stop ordering, then both commit stages; True once both have ended."""
        self._stopping = True
        if self.crosscheck is not None:
            self.crosscheck.stop()
        self.ordering.stop()
        if self._commit_thread is not None:
            while self._commit_thread.is_alive():
                try:
                    self._batches.put(None, timeout=0.5)
                    break
                except queue.Full:
                    continue  # the committer is draining; a dead one needs no sentinel
            self._commit_thread.join(timeout=60)
            if self._commit_thread.is_alive():
                return False
            self._commit_thread = None
        return self._persister is None or self._persister.finish(timeout=60)

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def failure(self) -> BaseException | None:
        """Why the node stopped committing, if it did (blocks built before a failed
        build are still persisted and acknowledged)."""
        persisted = None if self._persister is None else self._persister.failure
        return persisted or self._build_failure

    def _commit_loop(self) -> None:
        """Stage one: execute each batch on the head and hand the block on."""
        try:
            while True:
                batch = self._batches.get()
                if batch is None or self.failure is not None:
                    return  # after a persist failure nothing more is built
                if batch.height <= self.committer.height:
                    continue  # delivered again after a reconnect
                assert self._persister is not None
                try:
                    self._persister.put(self.committer.build(batch))
                except BaseException as exc:
                    log.exception("batch %d failed; the node stops committing", batch.height)
                    self._build_failure = exc
                    return
        finally:
            if self._persister is not None:
                self._persister.finish(timeout=0)  # it ends after what is queued

    def _after_commit(self, block: Block, writes: list[tuple[str, bytes | None]]) -> None:
        checkpoint = self._checkpoint_of(block)
        self._own[block.height] = checkpoint
        while len(self._own) > 10_000:
            self._own.popitem(last=False)
        if self.crosscheck is not None:
            self.crosscheck.committed(checkpoint)
        if self._served:
            self._check_served(block, checkpoint)
        if any(k.startswith((MEMBER_PREFIX, ORG_PREFIX)) for k, _ in writes):
            self._members = {}
        settled: list[tuple[Receipt, TxStatus | None]] = []
        with self._waiters_lock:
            for index, (tx, result) in enumerate(zip(block.txs, block.results, strict=True)):
                receipts = self._waiters.pop(tx.txid, None)
                if receipts:
                    # A copy recorded as replayed says nothing about how the first one
                    # went: leave the answer to the index, which keeps the first.
                    status = (
                        None
                        if result.code == "replayed"
                        else TxStatus(
                            tx.txid, "committed", block.height, index, result.code, result.message
                        )
                    )
                    settled.extend((receipt, status) for receipt in receipts)
        for receipt, status in settled:
            receipt.settle(status)
        self.mempool.forget(block.txs)
        for subscriber in list(self._subscribers):
            try:
                subscriber(block)
            except Exception:
                log.exception("block subscriber failed")

    # -- submitting --------------------------------------------------------------------

    def member(self, fingerprint: str) -> MemberRecord | None:
        cache = self._members
        if fingerprint in cache:
            return cache[fingerprint]
        record = read_member(Overlay(self.state), fingerprint)
        # Cache only into the cache the record was read for: if a block changed
        # membership meanwhile, the cache was replaced and this record may be stale.
        if cache is self._members:
            if len(cache) > 100_000:
                cache.clear()
            cache[fingerprint] = record
        return record

    def healthy(self) -> None:
        failure = self.failure or getattr(self.ordering, "failure", None)
        if failure is not None:
            raise NodeFailure(f"the node stopped committing: {failure}")

    def submit(self, txs: Sequence[SignedTransaction]) -> list[Receipt | CarechainError]:
        """Admit and order ``txs``: per transaction, a receipt settled once it is
        committed, or the error (an ``InvalidInput`` subclass) that kept it out.
        """
        self.healthy()
        outcomes = self.mempool.admit_many(txs)
        results: list[Receipt | CarechainError] = []
        admitted: list[SignedTransaction] = []
        latch = _Latch(sum(1 for o in outcomes if not isinstance(o, CarechainError)))
        with self._waiters_lock:
            for tx, outcome in zip(txs, outcomes, strict=True):
                if isinstance(outcome, CarechainError):
                    results.append(outcome)
                    continue
                event = Receipt(tx.txid, latch)
                if outcome is COMMITTED:
                    event.set()  # submitting a committed transaction again is harmless
                else:
                    self._waiters.setdefault(tx.txid, []).append(event)
                    if outcome is ADMITTED:
                        admitted.append(tx)
                    elif self.state.tx_location(tx.txid) is not None:
                        event.set()  # pending elsewhere and committed meanwhile
                results.append(event)
        if admitted:
            try:
                self.ordering.submit(admitted)
            except Busy:
                self.mempool.forget(admitted)
                with self._waiters_lock:
                    for tx in admitted:
                        self._waiters.pop(tx.txid, None)
                raise
        return results

    def submit_one(self, tx: SignedTransaction, wait_s: float = 0.0) -> TxStatus:
        """Submit one transaction; raise what is wrong with it; wait up to ``wait_s``."""
        (receipt,) = self.submit([tx])
        if isinstance(receipt, CarechainError):
            raise receipt
        return self.settle([receipt], wait_s)[0]

    def settle(self, receipts: Sequence[Receipt], timeout_s: float) -> list[TxStatus]:
        """Wait up to ``timeout_s`` in all for ``receipts``; then each one's status."""
        deadline = time.monotonic() + timeout_s
        for receipt in receipts:
            if not receipt.wait(max(0.0, deadline - time.monotonic())):
                break
        unsettled = [r.txid for r in receipts if r.status is None]
        found = dict(zip(unsettled, self.tx_statuses(unsettled), strict=True))
        return [r.status or found[r.txid] for r in receipts]

    # -- queries -----------------------------------------------------------------------

    def tx_status(self, txid: str) -> TxStatus:
        location = self.state.tx_location(txid)
        if location is not None:
            height, index, code = location
            message = ""
            if code != "ok":
                block = self.block(height)
                message = block.results[index].message
            return TxStatus(txid, "committed", height, index, code, message)
        with self._waiters_lock:
            pending = txid in self._waiters
        return TxStatus(txid, "pending" if pending else "unknown")

    def tx_statuses(self, txids: Sequence[str]) -> list[TxStatus]:
        """``tx_status`` of many transactions with one index lookup."""
        found = self.state.tx_locations(txids)
        statuses = []
        for txid in txids:
            location = found.get(txid)
            if location is None or location[2] != "ok":
                statuses.append(self.tx_status(txid))  # pending, unknown, or a rejection
            else:
                statuses.append(TxStatus(txid, "committed", location[0], location[1], "ok", ""))
        return statuses

    def block(self, height: int) -> Block:
        if not 0 <= height <= self.state.height:
            raise NotFound(f"no block at height {height}; the chain is at {self.state.height}")
        return decode_block(self.blocks.get(height), height)

    def transaction(self, txid: str) -> tuple[SignedTransaction, TxStatus]:
        status = self.tx_status(txid)
        if status.status != "committed" or status.height is None or status.index is None:
            raise NotFound(f"no committed transaction {txid}")
        return self.block(status.height).txs[status.index], status

    def state_value(self, key: str) -> tuple[Any, int]:
        found = self.state.get_with_height(key)
        if found is None:
            raise NotFound(f"no state at {key!r}")
        return orjson.loads(found[0]), found[1]

    def state_range(self, prefix: str, limit: int, after: str = "") -> list[tuple[str, Any]]:
        return [(k, orjson.loads(v)) for k, v in self.state.scan(prefix, limit, after)]

    def subscribe(self, callback: Callable[[Block], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def status(self) -> dict[str, Any]:
        failure = self.failure or getattr(self.ordering, "failure", None)
        return {
            "chain": self.chain,
            "suite": self.suite.name,
            "height": self.state.height,
            "block_hash": self.state.block_hash,
            "state_digest": self.state.state_digest,
            "tree_size": self.state.tree_size,
            "block_time": self.state.time_ms,
            "pending": len(self.mempool),
            "ordering": self.config.ordering_backend,
            **({"orderer": self.ordering.status()} if hasattr(self.ordering, "status") else {}),
            "peer": self.peer_fp,
            "healthy": failure is None,
            "failure": None if failure is None else str(failure),
            "uptime_s": round(time.time() - self.started_at, 1),
            "forks": 0 if self.crosscheck is None else len(self.crosscheck.forks),
            "vaults": list(self.records.orgs),
        }
