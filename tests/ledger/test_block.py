"""Block-level hashing: the transactions root is the RFC 9162 tree hash; the bytes
spliced for speed (statuses, tree leaves) are the canonical bytes exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from carechain.crypto.canonical import MAX_SAFE_INTEGER, canonical_bytes
from carechain.crypto.suite import DEFAULT
from carechain.ledger.block import TxResult, leaf_entry, merkle_root, results_bytes, results_hash
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


_codes = st.one_of(
    st.sampled_from(["ok", "replayed", "contract_fault", "insufficient_funds", "x" * 65]),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.builds(TxResult, _codes, st.one_of(st.just(""), st.text(max_size=20)))))
def test_spliced_statuses_are_their_canonical_bytes(results: list[TxResult]) -> None:
    expected = canonical_bytes([r.to_json() for r in results])
    assert results_bytes(results) == expected
    writes = b"\x07" * 32
    doc = canonical_bytes({"statuses": [r.to_json() for r in results], "writes": writes.hex()})
    assert results_hash(results, writes) == DEFAULT.hash(doc).hex()


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, MAX_SAFE_INTEGER),
    st.integers(0, MAX_SAFE_INTEGER),
    st.one_of(st.just("ab" * 32), st.text(max_size=70)),
    _codes,
)
def test_spliced_leaf_is_its_canonical_bytes(height: int, index: int, txid: str, code: str) -> None:
    doc = {"code": code, "height": height, "index": index, "txid": txid}
    assert leaf_entry(height, index, txid, code) == canonical_bytes(doc)  # type: ignore[arg-type]
