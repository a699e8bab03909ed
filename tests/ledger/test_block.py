"""Block-level hashing: the transactions root is the RFC 9162 tree hash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from carechain.ledger.block import merkle_root
from carechain.ledger.merkle import Hasher, MemoryNodeStore, MerkleTree


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=70))
def test_bottom_up_root_matches_the_ledger_tree(leaves: list[bytes]) -> None:
    hasher = Hasher()
    hashes = [hasher.hash_leaf(leaf) for leaf in leaves]
    tree = MerkleTree(hasher, MemoryNodeStore())
    if hashes:
        tree.append_leaf_hashes(hashes)
    assert merkle_root(hasher, hashes) == tree.root()


def test_empty_root_is_the_hash_of_nothing() -> None:
    # RFC 9162 section 2.1.1: MTH({}) = SHA-256() (the well-known e3b0c442... digest).
    assert merkle_root(Hasher(), []).hex().startswith("e3b0c44298fc1c149afbf4c8996fb924")
