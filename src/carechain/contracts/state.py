"""State views for execution: committed store, block overlay, transaction overlay.

A transaction's writes go to its own overlay; if the contract raises, the
overlay is dropped and nothing it wrote survives. If it returns, the overlay
is folded into the block's overlay, which the committer turns into the
block's write-set: every key written, in key order, with its canonical value
(or None for a delete).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import Any, Protocol

import orjson

from carechain.crypto.canonical import canonical_bytes
from carechain.errors import ContractError, NonCanonical

MAX_KEY_LENGTH = 512
MAX_VALUE_BYTES = 64 * 1024

_MISSING = object()


class CommittedState(Protocol):
    """What execution needs from the state store (``ledger.statestore.StateStore``)."""

    def get(self, key: str) -> bytes | None: ...

    def scan(self, prefix: str, limit: int = -1, after: str = "") -> list[tuple[str, bytes]]: ...


class Overlay:
    """Uncommitted writes over a parent view, kept as canonical bytes."""

    def __init__(self, parent: CommittedState | Overlay) -> None:
        self.parent = parent
        self.writes: dict[str, bytes | None] = {}
        """Key -> canonical value bytes, or None for a delete."""
        self._keys: list[str] = []
        """The keys of ``writes``, sorted: a scan bisects to its prefix instead of
        reading every write of the block (which made a block of n scanning
        transactions cost n squared)."""
        self._read: dict[str, bytes | None] = {}
        self._scanned: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
        """Over committed state (the block's overlay): what was read from it, found or
        not. The committed view holds still while a block executes, and every write
        lands in ``writes``, which is read first, so the block asks the store for each
        key (or prefix) once."""

    def get(self, key: str) -> Any | None:
        entry = self.writes.get(key, _MISSING)
        if entry is not _MISSING:
            # A fresh copy every time: a contract changing what it read cannot
            # change what was written.
            return None if entry is None else orjson.loads(entry)  # type: ignore[arg-type]
        if isinstance(self.parent, Overlay):
            return self.parent.get(key)
        raw = self._read.get(key, _MISSING)
        if raw is _MISSING:
            raw = self._read[key] = self.parent.get(key)
        return None if raw is None else orjson.loads(raw)  # type: ignore[arg-type]

    def prefetch(self, keys: list[str]) -> None:
        """Read ``keys`` of committed state in one go, ahead of the block's transactions.

        Only a cache: a block's overlay reads each committed key once anyway, and the
        committed view holds still while the block executes, so reading early gives
        what reading at the key's turn would. Store views without ``get_many`` (plain
        test stores) are simply read at each key's turn.
        """
        get_many = getattr(self.parent, "get_many", None)
        if get_many is None or isinstance(self.parent, Overlay):
            return
        wanted = sorted({k for k in keys if k not in self._read and k not in self.writes})
        if wanted:
            found = get_many(wanted)
            for key in wanted:
                self._read[key] = found.get(key)

    def put(self, key: str, value: Any) -> None:
        if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise ContractError(f"state key {key[:40]!r} is empty, too long or holds NUL")
        if not key.isascii():
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise ContractError("state key holds a lone surrogate") from None
        try:
            raw = canonical_bytes(value)
        except NonCanonical as exc:
            raise ContractError(f"value for {key!r} is not storable: {exc.message}") from exc
        if len(raw) > MAX_VALUE_BYTES:
            raise ContractError(
                f"value for {key!r} is {len(raw)} bytes; the limit is {MAX_VALUE_BYTES}"
            )
        if key not in self.writes:
            insort(self._keys, key)
        self.writes[key] = raw

    def delete(self, key: str) -> None:
        if key not in self.writes:
            insort(self._keys, key)
        self.writes[key] = None

    def _written(self, prefix: str) -> Iterator[str]:
        """Keys written here that start with ``prefix``, in order."""
        keys = self._keys
        for index in range(bisect_left(keys, prefix), len(keys)):
            key = keys[index]
            if not key.startswith(prefix):
                return
            yield key

    def scan(self, prefix: str, limit: int = -1) -> list[tuple[str, Any]]:
        """Keys with ``prefix`` in key order, merging this overlay over its parents.

        With a ``limit``, the parent is asked for only as many rows as can still be
        among the first ``limit`` once this overlay's deletes are applied.
        """
        own = list(self._written(prefix))
        wanted = -1 if limit < 0 else limit + len(own)
        merged: dict[str, Any] = {}
        if isinstance(self.parent, Overlay):
            merged.update(self.parent.scan(prefix, wanted))
        else:
            rows = self._scanned.get((prefix, wanted))
            if rows is None:
                rows = self._scanned[(prefix, wanted)] = self.parent.scan(prefix, wanted)
            merged.update((k, orjson.loads(v)) for k, v in rows)
        for key in own:
            entry = self.writes[key]
            if entry is None:
                merged.pop(key, None)
            else:
                merged[key] = orjson.loads(entry)
        items = sorted(merged.items())
        return items if limit < 0 else items[:limit]

    def fold_into_parent(self) -> None:
        if not isinstance(self.parent, Overlay):
            raise TypeError("only a nested overlay can be folded")
        parent = self.parent
        for key in self._keys:
            if key not in parent.writes:
                insort(parent._keys, key)
        parent.writes.update(self.writes)
        self.writes = {}
        self._keys = []

    def write_set(self) -> list[tuple[str, bytes | None]]:
        """The block's write-set: (key, canonical value bytes or None), in key order."""
        return sorted(self.writes.items())


def write_set_bytes(writes: list[tuple[str, bytes | None]]) -> bytes:
    """Canonical JSON of ``[[key, value-or-null], ...]``, spliced from canonical parts."""
    parts = [
        b"[" + canonical_bytes(key) + b"," + (b"null" if raw is None else raw) + b"]"
        for key, raw in writes
    ]
    return b"[" + b",".join(parts) + b"]"
