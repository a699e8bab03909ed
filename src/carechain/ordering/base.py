"""The ordering service: one total order of transactions, cut into signed batches.

Order, then execute: the ordering service decides which transactions go in
which block and at what block time, and signs that statement; it never
executes anything. Every peer validates and executes every batch itself.

Callers may rely on:

* ``submit`` is safe to repeat: the same transaction (same txid) submitted
  twice, or through two peers, is ordered at most once per batch, and a copy
  ordered again later is recorded by every peer as ``replayed``, never applied
  twice. Returning means the service holds the transaction for ordering, not
  that it is ordered; ``Busy`` means try again later.
* ``deliver`` is called with batches in height order, starting at the height
  given to ``start``, each signed by an orderer; it may see a height again
  (after a reconnect) and must ignore heights it already has.
* Batch times never decrease.

Two backends implement this: ``solo`` (in-process, the embedded default) and,
later, ``etcd`` (a Raft cluster, one cutter elected by lease, each batch
written with a compare-and-swap on its height).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from carechain.ledger.block import Batch
from carechain.ledger.transaction import SignedTransaction

Deliver = Callable[[Batch], None]


class OrderingService(Protocol):
    def start(self, next_height: int, last_time_ms: int, deliver: Deliver) -> None:
        """Begin cutting batches from ``next_height``; call ``deliver`` with each."""

    def submit(self, txs: Sequence[SignedTransaction]) -> None:
        """Hand transactions over for ordering (idempotent per txid)."""

    def pending(self) -> int:
        """Transactions accepted but not yet in a delivered batch."""

    def stop(self) -> None:
        """Stop cutting; pending transactions are dropped (clients resubmit safely)."""
