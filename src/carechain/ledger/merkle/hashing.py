"""The hash functions of the ledger-wide Merkle tree, RFC 9162 section 2.1.1.

RFC 9162 defines the Merkle Tree Hash (MTH) over an ordered list of entries
with domain-separated leaf and node hashes, which gives second-preimage
resistance (a node can never be passed off as a leaf, or the reverse):

    MTH({})     = HASH()
    MTH({d[0]}) = HASH(0x00 || d[0])                          leaf hash
    MTH(D_n)    = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))    node hash

``HASH`` is the consortium's hash function: SHA-256 for the ``intl`` crypto
suite, SM3 for the future ``gm`` suite. :class:`Hasher` takes any
``Callable[[bytes], bytes]``, so ``Hasher(suite.hash)`` works for either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

HashFunction = Callable[[bytes], bytes]
"""A collision-resistant hash: bytes in, a fixed-size digest out."""

LEAF_PREFIX: Final = b"\x00"
"""Prefix of a leaf hash input, RFC 9162 section 2.1.1."""

NODE_PREFIX: Final = b"\x01"
"""Prefix of an interior node hash input, RFC 9162 section 2.1.1."""


def sha256(data: bytes) -> bytes:
    """SHA-256 digest of ``data``: the ``intl`` suite's hash and the default."""
    return hashlib.sha256(data).digest()


class Hasher:
    """RFC 9162 section 2.1.1 leaf, node and empty-tree hashes over one hash function.

    ``digest_size`` is measured from the function (the length of ``HASH()``),
    so any fixed-size hash works without further configuration.
    """

    __slots__ = ("_empty_root", "digest_size", "hash_function")

    def __init__(self, hash_function: HashFunction = sha256) -> None:
        self.hash_function: Final[HashFunction] = hash_function
        self._empty_root: Final[bytes] = hash_function(b"")
        self.digest_size: Final[int] = len(self._empty_root)

    def hash_leaf(self, data: bytes) -> bytes:
        """``MTH({d[0]}) = HASH(0x00 || d[0])``: the hash of one entry."""
        return self.hash_function(LEAF_PREFIX + data)

    def hash_children(self, left: bytes, right: bytes) -> bytes:
        """``HASH(0x01 || left || right)``: the hash of an interior node."""
        return self.hash_function(NODE_PREFIX + left + right)

    def empty_root(self) -> bytes:
        """``MTH({}) = HASH()``: the root of the tree with no entries."""
        return self._empty_root
