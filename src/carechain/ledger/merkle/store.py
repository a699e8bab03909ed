"""Where the Merkle tree keeps its nodes: a two-method seam.

The tree stores only *perfect* subtrees. Node ``(level, index)`` is the root
of the perfect subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``;
level 0 holds the leaf hashes. A perfect node never changes once the tree has
all of its leaves, so an append-only tree only ever adds nodes, and the root
of the tree at any size is a fold of at most ``log2(size) + 1`` of them
(RFC 9162 section 2.1.1 splits every tree into perfect left subtrees).

What a :class:`NodeStore` must guarantee, and so what the tree relies on:

* ``get_node`` returns exactly the bytes that ``put_nodes`` stored at that
  position, or ``None`` if nothing was stored there;
* ``put_nodes`` stores the whole batch or nothing: the tree calls it once per
  append, and an implementation backed by a database writes the batch in the
  same transaction as the block that carries the leaves;
* a position is written with one value only; writing the same value again is
  harmless (a tree reopened at an older size rewrites identical nodes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class NodeStore(Protocol):
    """Storage of perfect-subtree nodes, keyed by ``(level, index)``."""

    def get_node(self, level: int, index: int) -> bytes | None:
        """The hash of node ``(level, index)``, or ``None`` if it is not stored."""
        ...

    def put_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        """Store every ``(level, index, hash)`` of one append, all or nothing."""
        ...


class MemoryNodeStore:
    """A :class:`NodeStore` in a dict: for tests, tools and short-lived trees."""

    __slots__ = ("_nodes",)

    def __init__(self) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}

    def get_node(self, level: int, index: int) -> bytes | None:
        return self._nodes.get((level, index))

    def put_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        batch = {(level, index): node for level, index, node in nodes}
        self._nodes.update(batch)

    def __len__(self) -> int:
        return len(self._nodes)
