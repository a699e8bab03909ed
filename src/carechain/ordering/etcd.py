"""Ordering on an etcd (Raft) cluster: one cutter at a time, blocks written by compare-and-swap.

Every peer runs this service. Keys, under ``/carechain/<chain>/``::

    sub/<peer>/<seq>    transactions a peer handed over, newline-separated envelopes
    blocks/<height>     each ordered batch (canonical JSON), height zero-padded
    cutter              the peer cutting blocks now, bound to its lease
    tip                 the height of the newest block, written with every block
    heads/<peer>        each peer's latest signed checkpoint, for the cross-check

Submitting: a peer gathers the transactions its clients submit for a few
milliseconds and writes them as one ``sub/`` key (one Raft round per batch,
not per transaction). A write retried after a timeout that had in fact
succeeded, and had meanwhile been ordered, orders its transactions again;
every peer records such copies as ``replayed`` and applies them once.

Cutting: a peer holding an orderer key campaigns for ``cutter`` with a
put-if-absent bound to a short lease, and keeps the lease alive while it cuts.
It reads the oldest submissions, cuts a batch at ``max_txs`` transactions or
when the oldest has waited ``max_wait_ms``, signs it, and writes it in one etcd
transaction that succeeds only if ``tip`` still names the height before it,
``blocks/<height>`` does not exist yet and every submission it took still
exists; the same transaction deletes those submissions and moves ``tip``. So
two processes that both believe they are the cutter can never write two blocks
at one height, nor take one submission twice. A cutter that loses its lease,
or a compare, steps back and reads the chain again. Submissions in which no
transaction decodes are deleted, never cut into an (invalid) empty block.

Following: every peer, cutter or not, reads ``blocks/`` in height order from
the height it needs, woken by a watch and polling as a fallback, and hands
each batch to the node, which verifies the orderer's signature and every
transaction itself. Blocks older than ``retain_blocks`` are deleted from etcd;
a peer further behind than that fetches the blocks it needs from another peer
(``fetch_blocks``).

etcd is reached through any of its members; a call that fails moves to the
next member and is retried, so losing a minority of members, or the member a
peer talks to, delays ordering by about a leader election and loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from carechain.crypto.canonical import canonical_bytes, parse_canonical
from carechain.crypto.suite import CryptoSuite
from carechain.errors import Busy, CarechainError, NodeFailure
from carechain.ledger.block import Batch, batch_from_json, batch_to_json, make_batch
from carechain.ledger.transaction import (
    MAX_ENVELOPE_BYTES,
    Fingerprint,
    SignedTransaction,
    decode_envelope_bytes,
)
from carechain.ordering.base import Deliver

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024 * 1024
BLOCKS_PER_READ = 16
"""Blocks read per etcd range request (each at most ``max_block_bytes``)."""

FetchBlocks = Callable[[int, int], list[Batch]]
"""``fetch_blocks(first, last)``: batches of those heights from another peer (may be fewer)."""


class EtcdUnavailable(NodeFailure):
    code = "etcd_unavailable"
    http_status = 503


class EtcdConnection:
    """A client for one of several etcd members; a failed call moves to the next one."""

    def __init__(self, endpoints: Sequence[str], timeout_s: float = 2.0) -> None:
        if not endpoints:
            raise NodeFailure("etcd ordering needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.timeout_s = timeout_s
        self._index = 0
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.endpoints[self._index]

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import pyetcd

                host, _, port = self.endpoint.rpartition(":")
                self._client = pyetcd.client(
                    host=host,
                    port=int(port),
                    timeout=self.timeout_s,
                    # gRPC refuses answers over 4 MiB by default; a range of blocks can be more.
                    grpc_options=[("grpc.max_receive_message_length", MAX_ANSWER_BYTES)],
                )
            return self._client

    def fail_over(self) -> None:
        with self._lock:
            self._drop_client()
            self._index = (self._index + 1) % len(self.endpoints)

    def call(self, what: str, op: Callable[[Any], Any], *, attempts: int | None = None) -> Any:
        """Run ``op(client)``; on failure try the next member, up to ``attempts`` tries."""
        tries = attempts if attempts is not None else 2 * len(self.endpoints)
        last: BaseException | None = None
        for attempt in range(tries):
            try:
                return op(self.client())
            except Exception as exc:  # grpc and pyetcd raise many kinds
                last = exc
                log.debug("etcd %s via %s failed: %r", what, self.endpoint, exc)
                self.fail_over()
                if attempt + 1 < tries:
                    time.sleep(min(0.05 * (attempt + 1), 0.5))
        raise EtcdUnavailable(f"etcd {what} failed on every member: {last!r}") from last

    def close(self) -> None:
        with self._lock:
            self._drop_client()

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # a broken channel may fail to close
                self._client.close()
            self._client = None


def _prefix_end(prefix: bytes) -> bytes:
    """The range end that covers every key starting with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


class EtcdOrderer:
    def __init__(
        self,
        chain: str,
        endpoints: Sequence[str],
        suite: CryptoSuite,
        *,
        peer_id: str,
        orderer: Fingerprint | None = None,
        orderer_key: bytes | None = None,
        max_txs: int = 1000,
        max_wait_ms: int = 50,
        max_block_bytes: int = 1_000_000,
        max_txn_ops: int = 128,
        submit_wait_ms: int = 2,
        lease_ttl_s: int = 2,
        retain_blocks: int = 10_000,
        compact_every: int = 1000,
        max_pending: int = 200_000,
        fetch_blocks: FetchBlocks | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        if "/" in peer_id or not peer_id:
            raise NodeFailure(f"peer id {peer_id!r} must be non-empty and without '/'")
        self.chain = chain
        self.suite = suite
        self.peer_id = peer_id
        self.orderer = orderer
        self._key = orderer_key
        self.max_txs = max_txs
        self.max_wait_ms = max_wait_ms
        self.max_block_bytes = max_block_bytes
        self.max_subs_per_block = max(1, max_txn_ops - 2)
        self.submit_wait_ms = submit_wait_ms
        self.lease_ttl_s = lease_ttl_s
        self.retain_blocks = retain_blocks
        self.compact_every = compact_every
        self.max_pending = max_pending
        self.fetch_blocks = fetch_blocks
        self.endpoints = list(endpoints)
        self._timeout_s = timeout_s
        base = f"/carechain/{chain}/".encode()
        self._sub_prefix = base + b"sub/"
        self._own_sub_prefix = base + b"sub/" + peer_id.encode() + b"/"
        self._block_prefix = base + b"blocks/"
        self._cutter_key = base + b"cutter"
        self._tip_key = base + b"tip"
        self._heads_prefix = base + b"heads/"
        self._board: EtcdConnection | None = None
        self._cond = threading.Condition()
        self._outbox: list[SignedTransaction] = []
        self._seq = time.time_ns()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._blocks_changed = threading.Event()
        self._subs_changed = threading.Event()
        self._watch_conns: list[EtcdConnection] = []
        self.failure: BaseException | None = None
        self.is_cutter = False
        self.blocks_cut = 0
        self._cut_here: dict[bytes, Batch] = {}
        """Blocks this peer wrote, by their exact bytes, until its follower reads them."""
        self.writes_refused = 0
        """Block writes whose compare failed: another cutter had the height or submissions."""
        self.delivered_height = -1

    # -- the OrderingService interface ---------------------------------------------------

    def start(self, next_height: int, last_time_ms: int, deliver: Deliver) -> None:
        self._next = next_height
        self._last_time = last_time_ms
        self._deliver = deliver
        roles: list[tuple[str, Callable[[], None]]] = [
            ("etcd-submitter", self._submit_loop),
            ("etcd-follower", self._follow_loop),
        ]
        if self._key is not None and self.orderer is not None:
            roles.append(("etcd-cutter", self._cut_loop))
        for name, target in roles:
            thread = threading.Thread(target=self._guard(target), name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def submit(self, txs: Sequence[SignedTransaction]) -> None:
        with self._cond:
            if self._stopping:
                raise Busy("the orderer is stopping")
            if len(self._outbox) + len(txs) > self.max_pending:
                raise Busy(f"{len(self._outbox)} transactions are waiting for etcd; retry")
            self._outbox.extend(txs)
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._outbox)

    def publish_checkpoint(self, value: bytes) -> None:
        """Post this peer's signed checkpoint where the other peers read it."""
        key = self._heads_prefix + self.peer_id.encode()
        self._board_connection().call("publish checkpoint", lambda c: c.put(key, value))

    def checkpoints(self) -> dict[str, bytes]:
        """Every peer's latest checkpoint, by peer id."""
        prefix = self._heads_prefix
        rows = self._board_connection().call(
            "read checkpoints", lambda c: list(c.get_range(prefix, _prefix_end(prefix)))
        )
        return {bytes(meta.key)[len(prefix) :].decode(): bytes(value) for value, meta in rows}

    def _board_connection(self) -> EtcdConnection:
        if self._board is None:
            self._board = EtcdConnection(self.endpoints, self._timeout_s)
            self._watch_conns.append(self._board)
        return self._board

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._blocks_changed.set()
        self._subs_changed.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for conn in self._watch_conns:
            conn.close()

    def status(self) -> dict[str, Any]:
        return {
            "backend": "etcd",
            "endpoints": self.endpoints,
            "cutter": self.is_cutter,
            "blocks_cut": self.blocks_cut,
            "writes_refused": self.writes_refused,
            "delivered_height": self.delivered_height,
            "outbox": self.pending(),
        }

    # -- threads -------------------------------------------------------------------------

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # surfaced through node status, never silent
                log.exception("etcd ordering stopped")
                self.failure = exc

        return run

    def _submit_loop(self) -> None:
        """Write what clients submitted as one ``sub/`` key per few milliseconds."""
        conn = EtcdConnection(self.endpoints, self._timeout_s)
        try:
            while True:
                with self._cond:
                    while not self._outbox and not self._stopping:
                        self._cond.wait(1.0)
                    if self._stopping:
                        return
                # Let concurrent submissions join this write.
                time.sleep(self.submit_wait_ms / 1000.0)
                with self._cond:
                    take = self._take_outbox()
                self._write_submission(conn, take)
        finally:
            conn.close()

    def _take_outbox(self) -> list[SignedTransaction]:
        size = 0
        for count, tx in enumerate(self._outbox):
            size += len(tx.wire_bytes()) + 1
            if count >= self.max_txs or size > self.max_block_bytes:
                break
        else:
            count = len(self._outbox)
        count = max(count, 1)
        take, self._outbox = self._outbox[:count], self._outbox[count:]
        return take

    def _write_submission(self, conn: EtcdConnection, txs: list[SignedTransaction]) -> None:
        self._seq += 1
        key = self._own_sub_prefix + f"{self._seq:020d}".encode()
        value = b"\n".join(tx.wire_bytes() for tx in txs)
        while True:
            try:
                conn.call("put submission", lambda c: c.put(key, value))
                return
            except EtcdUnavailable:
                with self._cond:
                    if self._stopping:
                        return
                log.warning("etcd unreachable; %d transactions wait to be ordered", len(txs))
                time.sleep(0.5)

    # -- following -------------------------------------------------------------------------

    def _watch(self, conn: EtcdConnection, prefix: bytes, event: threading.Event) -> None:
        """Set ``event`` whenever a key under ``prefix`` changes (best effort)."""

        def callback(_: Any) -> None:
            event.set()

        try:
            conn.client().add_watch_prefix_callback(prefix, callback)
        except Exception as exc:  # polling still runs
            log.debug("etcd watch on %r failed: %r", prefix, exc)

    def _follow_loop(self) -> None:
        conn = EtcdConnection(self.endpoints, self._timeout_s)
        watch = EtcdConnection(self.endpoints, self._timeout_s)
        self._watch_conns.append(watch)
        self._watch(watch, self._block_prefix, self._blocks_changed)
        woken = True
        try:
            while not self._stopping:
                self._blocks_changed.clear()
                try:
                    batches = self._read_blocks(conn, self._next)
                except EtcdUnavailable as exc:
                    log.warning("cannot read blocks from etcd: %s", exc)
                    batches = []
                    watch.fail_over()
                    self._watch(watch, self._block_prefix, self._blocks_changed)
                if batches and not woken:
                    # Polling found blocks the watch never announced: its member is
                    # gone. Watch again through another one.
                    watch.fail_over()
                    self._watch(watch, self._block_prefix, self._blocks_changed)
                woken = True
                for batch in batches:
                    if self._stopping:
                        return
                    self._deliver(batch)
                    self._next = batch.height + 1
                    self.delivered_height = batch.height
                if not batches:
                    woken = self._blocks_changed.wait(0.2)
        finally:
            conn.close()

    def _read_blocks(self, conn: EtcdConnection, first: int) -> list[Batch]:
        start = self._block_key(first)
        end = _prefix_end(self._block_prefix)
        rows = conn.call(
            "read blocks",
            lambda c: list(c.get_range(start, end, limit=BLOCKS_PER_READ, sort_order="ascend")),
        )
        if not rows:
            return []
        batches = [self._own_or_decoded(bytes(value)) for value, _ in rows]
        if batches[0].height != first:
            # Older blocks are gone from etcd: fetch them from another peer.
            return self._fetch_from_peers(first, batches[0].height - 1)
        expected = first
        contiguous = []
        for batch in batches:
            if batch.height != expected:
                break
            contiguous.append(batch)
            expected += 1
        return contiguous

    def _fetch_from_peers(self, first: int, last: int) -> list[Batch]:
        if self.fetch_blocks is None:
            raise NodeFailure(
                f"blocks {first}..{last} are no longer kept in etcd and no peer is "
                "configured to fetch them from"
            )
        batches = self.fetch_blocks(first, min(last, first + 255))
        contiguous = []
        for expected, batch in enumerate(batches, start=first):
            if batch.height != expected:
                break
            contiguous.append(batch)
        if not contiguous:
            log.warning("no peer could serve blocks %d..%d; retrying", first, last)
            time.sleep(1.0)
        return contiguous

    def _own_or_decoded(self, value: bytes) -> Batch:
        """The batch in a block's bytes; one this peer cut itself is not decoded again."""
        with self._cond:
            own = self._cut_here.pop(value, None)
        return own if own is not None else self._decode_block(value)

    def _decode_block(self, value: bytes) -> Batch:
        try:
            batch = batch_from_json(parse_canonical(value))
        except CarechainError as exc:
            raise NodeFailure(f"etcd holds a block that does not decode: {exc}") from exc
        if batch.chain != self.chain:
            raise NodeFailure(f"etcd holds a block of chain {batch.chain!r}, not {self.chain!r}")
        return batch

    def _block_key(self, height: int) -> bytes:
        return self._block_prefix + f"{height:012d}".encode()

    # -- cutting ---------------------------------------------------------------------------

    def _cut_loop(self) -> None:
        conn = EtcdConnection(self.endpoints, self._timeout_s)
        watch = EtcdConnection(self.endpoints, self._timeout_s)
        self._watch_conns.append(watch)
        self._watch(watch, self._sub_prefix, self._subs_changed)
        try:
            while not self._stopping:
                try:
                    lease = self._campaign(conn)
                    if lease is None:
                        time.sleep(self.lease_ttl_s / 4)
                        continue
                    self._cut_while_leading(conn, lease)
                except EtcdUnavailable as exc:
                    log.warning("cutter lost etcd: %s", exc)
                    self.is_cutter = False
                    watch.fail_over()
                    self._watch(watch, self._sub_prefix, self._subs_changed)
                    time.sleep(0.2)
        finally:
            self.is_cutter = False
            conn.close()

    def _campaign(self, conn: EtcdConnection) -> Any:
        """Try to become the cutter; the lease when this peer now holds ``cutter``."""
        lease = conn.call("grant lease", lambda c: c.lease(self.lease_ttl_s))
        key, me = self._cutter_key, self.peer_id.encode()

        def put_if_absent(c: Any) -> bool:
            ok, _ = c.transaction(
                compare=[c.transactions.create(key) == 0],
                success=[c.transactions.put(key, me, lease=lease)],
                failure=[],
            )
            return bool(ok)

        if conn.call("campaign", put_if_absent):
            log.info("peer %s is now the block cutter", self.peer_id)
            self.is_cutter = True
            return lease
        conn.call("revoke unused lease", lambda c: c.revoke_lease(lease.id), attempts=1)
        return None

    def _cut_while_leading(self, conn: EtcdConnection, lease: Any) -> None:
        renewed = time.monotonic()
        height, last_time, tip = self._chain_tip(conn)
        first_seen: dict[bytes, float] = {}
        try:
            while not self._stopping:
                now = time.monotonic()
                if now - renewed > self.lease_ttl_s / 3:
                    if not self._renew(conn, lease):
                        return
                    renewed = now
                subs = self._read_submissions(conn)
                # Forget submissions another cutter took; note when new ones were seen.
                first_seen = {key: first_seen.get(key, now) for key, _ in subs}
                if not subs:
                    self._subs_changed.clear()
                    self._subs_changed.wait(self.lease_ttl_s / 4)
                    continue
                take, txs = self._choose(subs)
                if not txs:
                    self._discard(conn, take)  # nothing in them decodes: never an empty block
                    continue
                oldest = min(first_seen[k] for k, _ in subs)
                due = oldest + self.max_wait_ms / 1000.0
                if len(txs) < self.max_txs and len(take) == len(subs) and now < due:
                    self._subs_changed.clear()
                    self._subs_changed.wait(due - now)
                    continue
                last_time = max(last_time, int(time.time() * 1000))
                written = self._write_block(conn, height, last_time, take, txs, tip)
                if written:
                    for key in take:
                        first_seen.pop(key, None)
                    tip = f"{height:012d}".encode()
                    height += 1
                    self.blocks_cut += 1
                else:
                    # Someone else wrote this height (or took these submissions).
                    self.writes_refused += 1
                    height, last_time, tip = self._chain_tip(conn)
                    if not self._still_cutter(conn):
                        return
        finally:
            self.is_cutter = False
            if self._stopping:
                # Hand over at once rather than when the lease runs out.
                with contextlib.suppress(EtcdUnavailable):
                    conn.call("revoke lease", lambda c: c.revoke_lease(lease.id), attempts=1)

    def _renew(self, conn: EtcdConnection, lease: Any) -> bool:
        try:
            answers = conn.call(
                "renew lease", lambda c: list(c.refresh_lease(lease.id)), attempts=2
            )
        except EtcdUnavailable:
            log.warning("peer %s could not renew its cutter lease; stepping back", self.peer_id)
            return False
        if not answers or any(getattr(a, "TTL", 1) <= 0 for a in answers):
            log.warning("peer %s's cutter lease has expired; stepping back", self.peer_id)
            return False
        if not self._still_cutter(conn):
            log.warning("peer %s lost the cutter lease", self.peer_id)
            return False
        return True

    def _still_cutter(self, conn: EtcdConnection) -> bool:
        value, _ = conn.call("read cutter", lambda c: c.get(self._cutter_key))
        return bool(value == self.peer_id.encode())

    def _chain_tip(self, conn: EtcdConnection) -> tuple[int, int, bytes | None]:
        """(next height, time of the last block, ``tip`` value) as etcd has them."""
        tip, _ = conn.call("read tip", lambda c: c.get(self._tip_key))
        if tip is not None:
            height = int(tip)
            value, _ = conn.call("read tip block", lambda c: c.get(self._block_key(height)))
            last = self._last_time if value is None else self._decode_block(value).time_ms
            return height + 1, max(last, self._last_time), bytes(tip)
        rows = conn.call(
            "read chain tip",
            lambda c: list(
                c.get_range(
                    self._block_prefix,
                    _prefix_end(self._block_prefix),
                    limit=1,
                    sort_order="descend",
                    sort_target="key",
                )
            ),
        )
        if not rows:
            return max(self._next, 1), self._last_time, None
        batch = self._decode_block(rows[0][0])
        return batch.height + 1, max(batch.time_ms, self._last_time), None

    def _read_submissions(self, conn: EtcdConnection) -> list[tuple[bytes, bytes]]:
        rows = conn.call(
            "read submissions",
            lambda c: list(
                c.get_range(
                    self._sub_prefix,
                    _prefix_end(self._sub_prefix),
                    limit=self.max_subs_per_block,
                    sort_order="ascend",
                    sort_target="create",
                )
            ),
        )
        return [(bytes(meta.key), bytes(value)) for value, meta in rows]

    def _choose(
        self, subs: list[tuple[bytes, bytes]]
    ) -> tuple[list[bytes], list[SignedTransaction]]:
        """Whole submissions, oldest first, up to the block's size; duplicates once."""
        take: list[bytes] = []
        txs: list[SignedTransaction] = []
        seen: set[str] = set()
        size = 0
        for key, value in subs:
            parsed = self._parse_submission(key, value)
            if take and (
                len(txs) + len(parsed) > self.max_txs or size + len(value) > self.max_block_bytes
            ):
                break
            take.append(key)
            size += len(value)
            for tx in parsed:
                if tx.txid not in seen:
                    seen.add(tx.txid)
                    txs.append(tx)
        return take, txs

    def _parse_submission(self, key: bytes, value: bytes) -> list[SignedTransaction]:
        """The transactions of a submission; a line that does not decode is dropped.

        Peers check transactions before they submit them, so a bad line means a
        faulty peer: it is logged and left out, and every peer would reject it anyway.
        """
        txs = []
        for line in value.split(b"\n") if value else []:
            if len(line) > MAX_ENVELOPE_BYTES:
                log.warning("submission %r holds an oversize transaction; left out", key)
                continue
            try:
                txs.append(decode_envelope_bytes(line, canonical=True))
            except CarechainError as exc:
                log.warning("submission %r holds a bad transaction (%s); left out", key, exc)
        return txs

    def _discard(self, conn: EtcdConnection, take: list[bytes]) -> None:
        """Delete submissions with nothing orderable in them (if they are still there)."""
        log.warning("dropping %d submission(s) in which no transaction decodes", len(take))

        def drop(c: Any) -> bool:
            t = c.transactions
            ok, _ = c.transaction(
                compare=[t.version(key) > 0 for key in take],
                success=[t.delete(key) for key in take],
                failure=[],
            )
            return bool(ok)

        conn.call("drop submissions", drop)

    def _write_block(
        self,
        conn: EtcdConnection,
        height: int,
        time_ms: int,
        take: list[bytes],
        txs: list[SignedTransaction],
        tip: bytes | None,
    ) -> bool:
        assert self._key is not None and self.orderer is not None
        batch = make_batch(self.chain, height, time_ms, txs, self.orderer, self._key, self.suite)
        value = canonical_bytes(batch_to_json(batch))
        block_key = self._block_key(height)
        old_end = self._block_key(max(0, height - self.retain_blocks))

        def write(c: Any) -> bool:
            t = c.transactions
            compare = [
                t.version(block_key) == 0,
                t.value(self._cutter_key) == self.peer_id,
                # The chain's newest block must still be the one this block follows:
                # a stale cutter cannot write a height again once etcd has let it go.
                t.version(self._tip_key) == 0 if tip is None else t.value(self._tip_key) == tip,
            ]
            compare += [t.version(key) > 0 for key in take]
            success = [t.put(block_key, value), t.put(self._tip_key, f"{height:012d}")]
            success += [t.delete(key) for key in take]
            if height > self.retain_blocks:
                success.append(t.delete(self._block_prefix, range_end=old_end))
            ok, responses = c.transaction(compare=compare, success=success, failure=[])
            if ok and height % self.compact_every == 0:
                # etcd keeps every revision until compacted: drop the history, keep the keys.
                revision = responses[0].response_put.header.revision
                c.compact(revision)
            return bool(ok)

        # Safe to repeat: after a timeout the first attempt either wrote the block
        # (the retry's compare fails, and the tip is read again) or did not.
        written = bool(conn.call(f"write block {height}", write))
        if written:
            with self._cond:
                if len(self._cut_here) > 64:  # the follower is far behind: let it decode
                    self._cut_here.clear()
                self._cut_here[value] = batch
        return written
