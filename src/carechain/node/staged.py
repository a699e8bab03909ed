"""Blocks built but not yet persisted, layered over the state store.

The commit pipeline has two stages: the committer thread executes block
``N+1`` while the persister thread fsyncs block ``N`` and writes its state.
Execution of ``N+1`` must see ``N``'s writes, so each built block's write-set
stays here as a layer until its state is committed; ``view()`` gives reads
through every layer (newest first) and then the state store.

A view copies the list of layers when it is made, so a layer dropped by the
persister during an execution is still seen by that execution: whatever the
state store answers for a key the copied layers do not hold is the same
before and after the dropped block, because that block did not write it.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from carechain.ledger.statestore import StateStore


@dataclass(frozen=True)
class Layer:
    height: int
    writes: dict[str, bytes | None]
    nonces: dict[tuple[str, str], str]

    @cached_property
    def keys(self) -> list[str]:
        """The keys written, sorted once: scans bisect to their prefix."""
        return sorted(self.writes)

    def written(self, prefix: str, after: str = "") -> list[str]:
        """Keys written that start with ``prefix`` and sort after ``after``, in order."""
        keys = self.keys
        out = []
        for index in range(bisect_left(keys, max(prefix, after)), len(keys)):
            key = keys[index]
            if not key.startswith(prefix):
                break
            if key > after:
                out.append(key)
        return out


class StagedState:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._layers: tuple[Layer, ...] = ()
        self._lock = threading.Lock()

    def push(self, layer: Layer) -> None:
        with self._lock:
            self._layers = (*self._layers, layer)

    def drop(self, height: int) -> None:
        """Forget the layer of block ``height`` once its state is committed."""
        with self._lock:
            self._layers = tuple(layer for layer in self._layers if layer.height != height)

    def view(self) -> LayeredView:
        with self._lock:
            return LayeredView(self.store, self._layers)


class LayeredView:
    """Reads through staged layers, then the state store (``CommittedLedgerState``)."""

    def __init__(self, store: StateStore, layers: tuple[Layer, ...]) -> None:
        self._store = store
        self._layers = layers

    def get(self, key: str) -> bytes | None:
        for layer in reversed(self._layers):
            if key in layer.writes:
                return layer.writes[key]
        return self._store.get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes | None]:
        """What ``get`` gives for each of ``keys`` (absent: not found), in one store query."""
        found: dict[str, bytes | None] = {}
        rest = []
        for key in keys:
            for layer in reversed(self._layers):
                if key in layer.writes:
                    found[key] = layer.writes[key]
                    break
            else:
                rest.append(key)
        found.update(self._store.get_many(rest))
        return found

    def scan(self, prefix: str, limit: int = -1, after: str = "") -> list[tuple[str, bytes]]:
        if not self._layers:
            return self._store.scan(prefix, limit, after)
        written = [(layer, layer.written(prefix, after)) for layer in self._layers]
        # Enough stored rows to fill ``limit`` however many of them the layers delete.
        wanted = -1 if limit < 0 else limit + sum(len(keys) for _, keys in written)
        merged: dict[str, bytes | None] = dict(self._store.scan(prefix, wanted, after))
        for layer, keys in written:
            for key in keys:
                merged[key] = layer.writes[key]
        items = sorted((k, v) for k, v in merged.items() if v is not None)
        return items if limit < 0 else items[:limit]

    def nonce_txids(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        found = self._store.nonce_txids(pairs)
        for layer in self._layers:
            for pair in pairs:
                txid = layer.nonces.get(pair)
                if txid is not None:
                    found[pair] = txid
        return found
