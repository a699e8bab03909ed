"""Signature checks and transaction decoding in bulk, in a worker process.

libsodium releases Python's global interpreter lock while it verifies, but a
thread that verifies one signature at a time must win the lock back after
each one, and behind a busy committer thread that wait is up to the switch
interval (5 ms) every time. A worker process verifies a whole batch with one
hand-over each way, on the other core. Small batches are checked in place,
where starting or feeding the worker would cost more than it saves.

Decoding a batch of envelopes (strict JSON, the shape of every field, the
canonical bytes and transaction id) is pure Python work of the same size as a
signature check; done in the worker, it leaves the node's one interpreter lock
to executing and committing blocks.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from carechain.crypto.suite import CryptoSuite, SignatureCheck, verify_many
from carechain.errors import InvalidInput
from carechain.ledger.transaction import SignedTransaction, decode_batch

IN_PLACE_BELOW = 48
DECODE_IN_PLACE_BELOW = 16 * 1024
"""Batch bodies smaller than this (about 40 transfers) are decoded in place."""


def exit_with_parent(parent: int) -> None:
    """In a worker: end when the node's process is gone (even after kill -9)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class SpawnedWorkers:
    """A pool of worker processes started on first use, ending with the node.

    Spawned, not forked: the node has threads running, which fork would copy
    half-way through whatever they were doing.
    """

    def __init__(self, workers: int, initializer: Callable[[int], None] = exit_with_parent):
        self.workers = workers
        self._initializer = initializer
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=self._initializer,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None


class BulkVerifier(SpawnedWorkers):
    def __init__(self, suite: CryptoSuite, workers: int = 1) -> None:
        super().__init__(workers)
        self.suite = suite

    def __call__(self, checks: list[SignatureCheck]) -> list[bool]:
        if len(checks) < IN_PLACE_BELOW or self.workers < 1:
            return [self.suite.verify(k, m, s) for k, m, s in checks]
        pool = self.pool()
        size = -(-len(checks) // self.workers)
        futures = [
            pool.submit(verify_many, self.suite.name, checks[i : i + size])
            for i in range(0, len(checks), size)
        ]
        return [ok for future in futures for ok in future.result()]

    def decode(self, body: bytes, max_batch: int) -> list[SignedTransaction | InvalidInput]:
        """``decode_batch`` of a request's body, in the worker when it is large."""
        if len(body) < DECODE_IN_PLACE_BELOW or self.workers < 1:
            return decode_batch(body, max_batch, self.suite)
        return self.pool().submit(decode_batch, body, max_batch, self.suite.name).result()
