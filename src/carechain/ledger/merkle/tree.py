"""The ledger-wide append-only Merkle tree, RFC 9162 section 2.1.

Every committed transaction is a leaf. The tree keeps, in memory, only its
*frontier*: the roots of the perfect subtrees that make up the current tree,
one per set bit of ``size``, largest (leftmost) first. Appending runs the
stack algorithm of RFC 9162 section 2.1.2 on that frontier and hands every
new perfect node to the :class:`~.store.NodeStore` in one ``put_nodes`` call.

Everything else is read back from perfect nodes: the root at any earlier size
is a fold of at most ``log2(size) + 1`` of them, and proofs
(:mod:`~.proof`) ask for subtree hashes that are such folds too. Nodes on the
current frontier come from memory, so the root and the inclusion proofs of
the current tree cost at most one store lookup per proof hash.

Reopening a tree over an existing store with ``size=n`` reads the
``popcount(n)`` frontier nodes back, never the leaves. If the transaction
that wrote an append is rolled back, discard the :class:`MerkleTree` and
reopen it at the committed size: the in-memory frontier has moved on.
"""

from __future__ import annotations

from collections.abc import Sequence

from carechain.errors import InvalidInput, NotFound, StorageCorrupt
from carechain.ledger.merkle import proof
from carechain.ledger.merkle.hashing import NODE_PREFIX, Hasher
from carechain.ledger.merkle.store import NodeStore


class MerkleTree:
    """An append-only RFC 9162 Merkle tree whose perfect nodes live in a store.

    ``size`` is the number of leaves already in ``store`` (0 for a new tree);
    every perfect node of the tree of that size must be there.

    Queries about sizes beyond the tree raise :class:`~carechain.errors.NotFound`;
    other impossible requests (a negative size, an index outside the tree
    asked about, sizes that go backwards) raise
    :class:`~carechain.errors.InvalidInput`. A node missing from the store
    raises :class:`~carechain.errors.StorageCorrupt`.
    """

    __slots__ = ("_frontier", "_hasher", "_root", "_size", "_store")

    def __init__(self, hasher: Hasher, store: NodeStore, size: int = 0) -> None:
        if size < 0:
            raise InvalidInput(f"tree size {size} is negative")
        self._hasher = hasher
        self._store = store
        self._size = size
        self._root: bytes | None = None
        self._frontier: list[bytes] = self._load_frontier(size)

    @property
    def hasher(self) -> Hasher:
        """The hasher every node of this tree was made with."""
        return self._hasher

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._size

    def append(self, data: bytes) -> int:
        """Append one entry (hashed as ``HASH(0x00 || data)``); return its leaf index."""
        index = self._size
        self.append_leaf_hashes([self._hasher.hash_leaf(data)])
        return index

    def append_leaf_hashes(self, hashes: Sequence[bytes]) -> None:
        """Append leaves given by their leaf hashes, in order.

        Runs RFC 9162 section 2.1.2's stack algorithm on the frontier: leaf
        ``i`` is merged with the frontier once per trailing 1 bit of ``i``.
        Every new perfect node goes to the store in a single ``put_nodes``
        call (none for an empty batch); the tree changes only after that call
        returns, so a failed write leaves it as it was. Raises ``ValueError``
        (a caller's bug) before writing anything if a hash is not
        ``digest_size`` bytes.
        """
        digest_size = self._hasher.digest_size
        hash_function = self._hasher.hash_function
        frontier = list(self._frontier)
        nodes: list[tuple[int, int, bytes]] = []
        put = nodes.append
        size = self._size
        for leaf in hashes:
            if len(leaf) != digest_size:
                raise ValueError(f"leaf hash is {len(leaf)} bytes, not {digest_size}")
            put((0, size, leaf))
            node, level, index = leaf, 0, size
            while index & 1:
                node = hash_function(NODE_PREFIX + frontier.pop() + node)
                level += 1
                index >>= 1
                put((level, index, node))
            frontier.append(node)
            size += 1
        if not nodes:
            return
        self._store.put_nodes(nodes)
        self._frontier = frontier
        self._size = size
        self._root = None

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        if index < 0:
            raise InvalidInput(f"leaf index {index} is negative")
        if index >= self._size:
            raise NotFound(f"leaf index {index} is not in the tree of size {self._size}")
        return self._node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """``MTH(D[0:size])``: the root at ``size`` (default: the current size).

        RFC 9162 section 2.1.1. The current root is folded from the frontier
        in memory; an earlier root from at most ``popcount(size)`` stored
        nodes.
        """
        size = self._check_size(size)
        if size != self._size:
            return self.subtree_hash(0, size)
        if self._root is None:
            self._root = self._fold(self._frontier) if self._frontier else self._hasher.empty_root()
        return self._root

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """``PATH(index, D[0:size])``, RFC 9162 section 2.1.3.1 (default: current size)."""
        size = self._check_size(size)
        if not 0 <= index < size:
            raise InvalidInput(f"leaf index {index} is not in a tree of size {size}")
        return proof.inclusion_proof(index, size, self.subtree_hash)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """``PROOF(old_size, D[0:new_size])``, RFC 9162 section 2.1.4.1.

        Empty when the sizes are equal. ``new_size`` defaults to the current
        size. ``old_size`` must be positive unless both sizes are 0: the RFC
        defines no proof from the empty tree.
        """
        new_size = self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise InvalidInput(f"no consistency proof from size {old_size} to size {new_size}")
        if old_size == 0 and new_size > 0:
            raise InvalidInput("a consistency proof from the empty tree is meaningless")
        return proof.consistency_proof(old_size, new_size, self.subtree_hash)

    def subtree_hash(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])`` for a range that RFC 9162's recursion produces.

        Preconditions: ``0 <= start < end <= size`` and ``start`` is a
        multiple of the largest power of two not above ``end - start`` (true
        of every range in ``PATH`` and ``SUBPROOF``), or ``start == end == 0``
        for the empty tree. The range is then the perfect subtrees given by
        the bits of ``end - start``, largest first, folded right to left as
        MTH's recursion does.
        """
        n = end - start
        if start == end == 0:
            return self._hasher.empty_root()
        if start < 0 or n <= 0 or end > self._size:
            raise ValueError(f"no subtree [{start}, {end}) in a tree of size {self._size}")
        top = 1 << (n.bit_length() - 1)
        if start % top:
            raise ValueError(f"subtree [{start}, {end}) is not aligned to perfect subtrees")
        pieces: list[bytes] = []
        while n:
            level = n.bit_length() - 1
            pieces.append(self._node(level, start >> level))
            start += 1 << level
            n -= 1 << level
        return self._fold(pieces)

    def _fold(self, pieces: list[bytes]) -> bytes:
        """``HASH(0x01 || p0 || HASH(0x01 || p1 || ...))``: perfect subtrees into one root."""
        hash_children = self._hasher.hash_children
        root = pieces[-1]
        for piece in reversed(pieces[:-1]):
            root = hash_children(piece, root)
        return root

    def _node(self, level: int, index: int) -> bytes:
        """Perfect node ``(level, index)``: from the frontier if it is there, else the store."""
        above = self._size >> level
        if above & 1 and index == above - 1:
            return self._frontier[(above >> 1).bit_count()]
        return self._stored_node(level, index)

    def _stored_node(self, level: int, index: int) -> bytes:
        """Perfect node ``(level, index)`` read from the store and checked for size."""
        node = self._store.get_node(level, index)
        if node is None:
            raise StorageCorrupt(f"Merkle tree node ({level}, {index}) is missing from the store")
        if len(node) != self._hasher.digest_size:
            raise StorageCorrupt(f"Merkle tree node ({level}, {index}) is {len(node)} bytes")
        return node

    def _load_frontier(self, size: int) -> list[bytes]:
        """Read the ``popcount(size)`` perfect nodes that make up the tree of ``size``."""
        frontier: list[bytes] = []
        start = 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                frontier.append(self._stored_node(level, start >> level))
                start += 1 << level
        return frontier

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        if size < 0:
            raise InvalidInput(f"tree size {size} is negative")
        if size > self._size:
            raise NotFound(f"tree size {size} is beyond the current size {self._size}")
        return size
