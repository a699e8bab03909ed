"""Solo ordering: an in-process block cutter for one node (the embedded default).

A batch is cut when ``max_txs`` transactions are pending or the oldest pending
one has waited ``max_wait_ms``, whichever comes first. The cutter signs each
batch with the orderer's key and hands it to ``deliver`` on its own thread;
``deliver`` may block (back-pressure), and while it does the next batch fills.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from carechain.crypto.suite import CryptoSuite
from carechain.errors import Busy
from carechain.ledger.block import make_batch
from carechain.ledger.transaction import Fingerprint, SignedTransaction
from carechain.ordering.base import Deliver

log = logging.getLogger(__name__)


class SoloOrderer:
    def __init__(
        self,
        chain: str,
        orderer: Fingerprint,
        orderer_key: bytes,
        suite: CryptoSuite,
        *,
        max_txs: int = 1000,
        max_wait_ms: int = 50,
        max_pending: int = 200_000,
    ) -> None:
        self.chain = chain
        self.orderer = orderer
        self._key = orderer_key
        self.suite = suite
        self.max_txs = max_txs
        self.max_wait_ms = max_wait_ms
        self.max_pending = max_pending
        self._queue: list[SignedTransaction] = []
        self._queued: set[str] = set()
        self._first_at = 0.0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.failure: BaseException | None = None

    def start(self, next_height: int, last_time_ms: int, deliver: Deliver) -> None:
        self._height = next_height
        self._last_time = last_time_ms
        self._deliver = deliver
        self._thread = threading.Thread(target=self._run, name="solo-cutter", daemon=True)
        self._thread.start()

    def submit(self, txs: Sequence[SignedTransaction]) -> None:
        with self._cond:
            if self._stopping:
                raise Busy("the orderer is stopping")
            if len(self._queue) + len(txs) > self.max_pending:
                raise Busy(f"{len(self._queue)} transactions are waiting to be ordered; retry")
            if not self._queue:
                self._first_at = time.monotonic()
            for tx in txs:
                if tx.txid not in self._queued:
                    self._queued.add(tx.txid)
                    self._queue.append(tx)
            if len(self._queue) >= self.max_txs or len(self._queue) == len(txs):
                self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _take(self) -> list[SignedTransaction] | None:
        """Wait until a batch is due; return its transactions (None when stopping)."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                if self._queue:
                    due = self._first_at + self.max_wait_ms / 1000.0
                    now = time.monotonic()
                    if len(self._queue) >= self.max_txs or now >= due:
                        cut = self._queue[: self.max_txs]
                        self._queue = self._queue[self.max_txs :]
                        for tx in cut:
                            self._queued.discard(tx.txid)
                        self._first_at = now
                        return cut
                    self._cond.wait(due - now)
                else:
                    self._cond.wait(1.0)

    def _run(self) -> None:
        try:
            while True:
                txs = self._take()
                if txs is None:
                    return
                self._last_time = max(self._last_time, int(time.time() * 1000))
                batch = make_batch(
                    self.chain,
                    self._height,
                    self._last_time,
                    txs,
                    self.orderer,
                    self._key,
                    self.suite,
                )
                self._deliver(batch)
                self._height += 1
        except BaseException as exc:  # surfaced through node status, never silent
            log.exception("solo orderer stopped")
            self.failure = exc
