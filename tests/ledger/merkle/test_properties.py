"""The fast Merkle tree against a slow, obviously correct reference, with hypothesis.

:class:`Reference` transcribes RFC 9162's recursive definitions (MTH of
section 2.1.1, PATH of 2.1.3.1, PROOF and SUBPROOF of 2.1.4.1) over a plain
list of entries, hashing with hashlib directly: it shares no code with the
package under test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carechain.errors import InvalidInput, InvalidProof, NotFound, RootMismatch, StorageCorrupt
from carechain.ledger.merkle import (
    Hasher,
    MemoryNodeStore,
    MerkleTree,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

HashFunction = Callable[[bytes], bytes]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha3_256(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


def blake2b_512(data: bytes) -> bytes:
    return hashlib.blake2b(data).digest()


HASH_FUNCTIONS = [sha256, sha3_256, blake2b_512]


class Reference:
    """RFC 9162 sections 2.1.1, 2.1.3.1 and 2.1.4.1, word for word, over a list of entries."""

    def __init__(self, entries: list[bytes], hash_function: HashFunction = sha256) -> None:
        self.entries = entries
        self.hash = hash_function
        self._mth: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def k(n: int) -> int:
        """The largest power of two smaller than n (n > 1)."""
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def mth(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]), memoised only to keep the tests quick."""
        if (start, end) not in self._mth:
            n = end - start
            if n == 0:
                value = self.hash(b"")
            elif n == 1:
                value = self.hash(b"\x00" + self.entries[start])
            else:
                k = self.k(n)
                value = self.hash(b"\x01" + self.mth(start, start + k) + self.mth(start + k, end))
            self._mth[start, end] = value
        return self._mth[start, end]

    def leaf_hash(self, index: int) -> bytes:
        return self.mth(index, index + 1)

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = self.k(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = self.k(n)
        if m <= k:
            return [*self.subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self.path(index, 0, size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return self.subproof(size1, 0, size2, True)


class RecordingStore(MemoryNodeStore):
    """A memory store that counts calls and can be told to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[list[tuple[int, int, bytes]]] = []
        self.gets = 0
        self.fail_puts = False

    def get_node(self, level: int, index: int) -> bytes | None:
        self.gets += 1
        return super().get_node(level, index)

    def put_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        if self.fail_puts:
            raise OSError("disk full")
        batch = list(nodes)
        self.puts.append(batch)
        super().put_nodes(batch)


def build(entries: list[bytes], batches: list[int] | None = None, **kwargs: object) -> MerkleTree:
    """A tree of ``entries``, appended in batches of the given sizes (then one by one)."""
    hash_function = kwargs.get("hash_function", sha256)
    assert callable(hash_function)
    store = kwargs.get("store", MemoryNodeStore())
    assert isinstance(store, MemoryNodeStore)
    hasher = Hasher(hash_function)
    tree = MerkleTree(hasher, store)
    position = 0
    for batch in batches or []:
        chunk = entries[position : position + batch]
        tree.append_leaf_hashes([hasher.hash_leaf(entry) for entry in chunk])
        position += len(chunk)
    for entry in entries[position:]:
        tree.append(entry)
    return tree


def numbered_entries(count: int, salt: bytes) -> list[bytes]:
    return [salt + index.to_bytes(2, "big") for index in range(count)]


# Lists that hypothesis draws are mostly short; numbered entries spread sizes evenly up to 70,
# across the 32 and 64 boundaries, while drawn lists bring duplicates and empty entries.
entries_st = st.one_of(
    st.lists(st.binary(max_size=6), max_size=40),
    st.builds(numbered_entries, st.integers(min_value=0, max_value=70), st.binary(max_size=4)),
)
distinct_entries_st = st.one_of(
    st.lists(st.binary(max_size=6), min_size=2, max_size=40, unique=True),
    st.builds(numbered_entries, st.integers(min_value=2, max_value=70), st.binary(max_size=4)),
)
batches_st = st.lists(st.integers(min_value=0, max_value=12), max_size=8)


# Roots.


@given(entries_st, batches_st, st.sampled_from(HASH_FUNCTIONS))
def test_root_at_every_size_matches_reference_mth(
    entries: list[bytes], batches: list[int], hash_function: HashFunction
) -> None:
    reference = Reference(entries, hash_function)
    tree = build(entries, batches, hash_function=hash_function)
    assert tree.size == len(entries)
    assert tree.root() == reference.mth(0, len(entries))
    for size in range(len(entries) + 1):
        assert tree.root(size) == reference.mth(0, size)
    for index in range(len(entries)):
        assert tree.leaf_hash(index) == reference.leaf_hash(index)


@given(entries_st, batches_st)
def test_root_after_each_batch_matches_reference(entries: list[bytes], batches: list[int]) -> None:
    reference = Reference(entries)
    hasher = Hasher()
    tree = MerkleTree(hasher, MemoryNodeStore())
    position = 0
    for batch in [*batches, len(entries)]:
        chunk = entries[position : position + batch]
        tree.append_leaf_hashes([hasher.hash_leaf(entry) for entry in chunk])
        position += len(chunk)
        assert tree.root() == reference.mth(0, position)


# Inclusion proofs.


@settings(deadline=None)
@given(entries_st, st.sampled_from(HASH_FUNCTIONS))
def test_inclusion_proof_for_every_index_and_size_matches_reference_and_verifies(
    entries: list[bytes], hash_function: HashFunction
) -> None:
    reference = Reference(entries, hash_function)
    tree = build(entries, hash_function=hash_function)
    hasher = tree.hasher
    for size in range(1, len(entries) + 1):
        root = reference.mth(0, size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == reference.inclusion_proof(index, size)
            leaf_hash = reference.leaf_hash(index)
            assert root_from_inclusion_proof(hasher, index, size, leaf_hash, proof) == root
            verify_inclusion(hasher, index, size, leaf_hash, proof, root)


@given(distinct_entries_st, st.data())
def test_tampered_inclusion_proof_fails(entries: list[bytes], data: st.DataObject) -> None:
    reference = Reference(entries)
    tree = build(entries)
    hasher = tree.hasher
    size = data.draw(st.integers(min_value=2, max_value=len(entries)), label="size")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = tree.inclusion_proof(index, size)
    root, leaf_hash = reference.mth(0, size), reference.leaf_hash(index)
    assert proof, "a tree of two or more leaves has a non-empty path"

    # A flipped bit in any hash leads to another root.
    position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="position")
    bit = data.draw(st.integers(min_value=0, max_value=8 * hasher.digest_size - 1), label="bit")
    flipped = list(proof)
    flipped[position] = flip_bit(flipped[position], bit)
    with pytest.raises(RootMismatch):
        verify_inclusion(hasher, index, size, leaf_hash, flipped, root)
    with pytest.raises(RootMismatch):
        verify_inclusion(hasher, index, size, flip_bit(leaf_hash, bit), proof, root)
    with pytest.raises(RootMismatch) as caught:
        verify_inclusion(hasher, index, size, leaf_hash, proof, flip_bit(root, bit))
    assert caught.value.expected == flip_bit(root, bit)
    assert caught.value.calculated == root

    # A truncated proof, or one with an extra hash at either end, is malformed.
    for wrong_length in (proof[:-1], [*proof, root], [root, *proof]):
        with pytest.raises(InvalidProof) as malformed:
            verify_inclusion(hasher, index, size, leaf_hash, wrong_length, root)
        assert type(malformed.value) is InvalidProof

    # The same proof does not place the leaf at any other index.
    for other in range(size):
        if other != index:
            with pytest.raises(InvalidProof):
                verify_inclusion(hasher, other, size, leaf_hash, proof, root)


# Consistency proofs.


@settings(deadline=None)
@given(entries_st, st.sampled_from(HASH_FUNCTIONS))
def test_consistency_proof_for_every_pair_matches_reference_and_verifies(
    entries: list[bytes], hash_function: HashFunction
) -> None:
    reference = Reference(entries, hash_function)
    tree = build(entries, hash_function=hash_function)
    hasher = tree.hasher
    for size2 in range(len(entries) + 1):
        root2 = reference.mth(0, size2)
        for size1 in range(1 if size2 else 0, size2 + 1):
            proof = tree.consistency_proof(size1, size2)
            if size1 < size2:
                assert proof == reference.consistency_proof(size1, size2)
            else:
                assert proof == []
            verify_consistency(hasher, size1, size2, proof, reference.mth(0, size1), root2)


@given(distinct_entries_st, st.data())
def test_tampered_consistency_proof_fails(entries: list[bytes], data: st.DataObject) -> None:
    reference = Reference(entries)
    tree = build(entries)
    hasher = tree.hasher
    size2 = data.draw(st.integers(min_value=2, max_value=len(entries)), label="size2")
    size1 = data.draw(st.integers(min_value=1, max_value=size2 - 1), label="size1")
    proof = tree.consistency_proof(size1, size2)
    root1, root2 = reference.mth(0, size1), reference.mth(0, size2)

    position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="position")
    bit = data.draw(st.integers(min_value=0, max_value=8 * hasher.digest_size - 1), label="bit")
    flipped = list(proof)
    flipped[position] = flip_bit(flipped[position], bit)
    with pytest.raises(RootMismatch):
        verify_consistency(hasher, size1, size2, flipped, root1, root2)
    with pytest.raises(RootMismatch):
        verify_consistency(hasher, size1, size2, proof, root2, root1)
    with pytest.raises(RootMismatch):
        verify_consistency(hasher, size1, size2, proof, root1, flip_bit(root2, bit))

    for wrong_length in (proof[:-1], [*proof, root2], [root1, *proof]):
        with pytest.raises(InvalidProof) as malformed:
            verify_consistency(hasher, size1, size2, wrong_length, root1, root2)
        assert type(malformed.value) is InvalidProof

    # Sizes that go backwards are malformed whatever the proof.
    with pytest.raises(InvalidProof) as backwards:
        verify_consistency(hasher, size2, size1, proof, root2, root1)
    assert type(backwards.value) is InvalidProof

    # The same proof does not make the old root that of any other old size.
    for other in range(size2 + 1):
        if other != size1:
            with pytest.raises(InvalidProof):
                verify_consistency(hasher, other, size2, proof, root1, root2)


# Storage: one put per append, reopening, failures.


@given(entries_st, batches_st)
def test_append_puts_every_perfect_node_once_in_one_call_per_append(
    entries: list[bytes], batches: list[int]
) -> None:
    reference = Reference(entries)
    store = RecordingStore()
    tree = build(entries, batches, store=store)
    appends_with_leaves = sum(1 for batch in store.puts if batch)
    assert len(store.puts) == appends_with_leaves
    written = [(level, index) for batch in store.puts for level, index, _ in batch]
    assert len(written) == len(set(written)), "no node is written twice"
    n = tree.size
    perfect = {
        (level, index)
        for level in range(n.bit_length())
        for index in range(n >> level)
        if (index + 1) << level <= n
    }
    assert set(written) == perfect
    for batch in store.puts:
        for level, index, node in batch:
            assert node == reference.mth(index << level, (index + 1) << level)


@given(entries_st, st.data())
def test_reopening_from_the_store_gives_the_same_roots_and_proofs(
    entries: list[bytes], data: st.DataObject
) -> None:
    reference = Reference(entries)
    store = MemoryNodeStore()
    full = build(entries, store=store)
    hasher = full.hasher
    # Reopen at any committed size, as after a restart or a rolled-back block.
    size = data.draw(st.integers(min_value=0, max_value=len(entries)), label="reopen at")
    reopened = MerkleTree(hasher, store, size=size)
    assert reopened.size == size
    for earlier in range(size + 1):
        assert reopened.root(earlier) == full.root(earlier) == reference.mth(0, earlier)
    for index in range(size):
        assert reopened.inclusion_proof(index) == full.inclusion_proof(index, size)
    for old in range(1, size + 1):
        assert reopened.consistency_proof(old) == full.consistency_proof(old, size)
    # Appending the rest again rewrites identical nodes and reaches the same tree.
    for entry in entries[size:]:
        reopened.append(entry)
    assert reopened.root() == full.root() == reference.mth(0, len(entries))


def test_reopening_reads_only_the_frontier() -> None:
    store = RecordingStore()
    hasher = Hasher()
    size = 1_000_003
    # A frontier needs only the perfect nodes on the right border; write just those.
    nodes, start = [], 0
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            nodes.append((level, start >> level, sha256(b"%d" % level)))
            start += 1 << level
    store.put_nodes(nodes)
    store.gets = 0
    tree = MerkleTree(hasher, store, size=size)
    assert store.gets == size.bit_count()
    tree.root()
    assert store.gets == size.bit_count(), "the current root comes from memory"


def test_proofs_use_few_store_lookups() -> None:
    store = RecordingStore()
    hasher = Hasher()
    tree = MerkleTree(hasher, store)
    size = 5_000
    tree.append_leaf_hashes([sha256(b"%d" % i) for i in range(size)])
    depth = (size - 1).bit_length()
    for index in (0, 1, 2_047, 4_095, 4_096, size - 2, size - 1):
        store.gets = 0
        proof = tree.inclusion_proof(index)
        assert store.gets <= len(proof) <= depth
        store.gets = 0
        tree.inclusion_proof(min(index, size - 8), size - 7)
        assert store.gets <= depth * depth
    for old in (1, 7, 1_024, 3_000, size - 1):
        store.gets = 0
        proof = tree.consistency_proof(old)
        assert store.gets <= 2 * (depth + 1)
    store.gets = 0
    tree.root(3_333)
    assert store.gets == (3_333).bit_count()


@given(entries_st, st.lists(st.binary(max_size=6), min_size=1, max_size=10))
def test_failed_put_leaves_the_tree_unchanged(entries: list[bytes], more: list[bytes]) -> None:
    store = RecordingStore()
    tree = build(entries, store=store)
    size, root = tree.size, tree.root()
    store.fail_puts = True
    with pytest.raises(OSError):
        tree.append_leaf_hashes([tree.hasher.hash_leaf(entry) for entry in more])
    assert (tree.size, tree.root()) == (size, root)
    store.fail_puts = False
    for entry in more:
        tree.append(entry)
    assert tree.root() == Reference(entries + more).mth(0, len(entries) + len(more))


def test_missing_node_is_storage_corruption() -> None:
    store = MemoryNodeStore()
    build([b"a", b"b", b"c"], store=store)
    with pytest.raises(StorageCorrupt):
        MerkleTree(Hasher(), store, size=4)
    tree = MerkleTree(Hasher(), MemoryNodeStore(), size=0)
    with pytest.raises(StorageCorrupt):
        MerkleTree(tree.hasher, MemoryNodeStore(), size=1)


# The tree's contract for impossible requests.


def test_requests_outside_the_tree_are_refused() -> None:
    tree = build([b"a", b"b", b"c"])
    with pytest.raises(NotFound):
        tree.root(4)
    with pytest.raises(NotFound):
        tree.leaf_hash(3)
    with pytest.raises(NotFound):
        tree.inclusion_proof(0, 4)
    with pytest.raises(NotFound):
        tree.consistency_proof(1, 4)
    for bad in (
        lambda: tree.root(-1),
        lambda: tree.leaf_hash(-1),
        lambda: tree.inclusion_proof(3, 3),
        lambda: tree.inclusion_proof(-1, 3),
        lambda: tree.consistency_proof(3, 2),
        lambda: tree.consistency_proof(0, 3),
        lambda: MerkleTree(Hasher(), MemoryNodeStore(), size=-1),
    ):
        with pytest.raises(InvalidInput):
            bad()
    assert tree.consistency_proof(3) == []
    assert build([]).consistency_proof(0, 0) == []
    assert build([]).root() == sha256(b"")


def test_subtree_hash_only_serves_ranges_of_perfect_subtrees() -> None:
    entries = numbered_entries(13, b"")
    reference = Reference(entries)
    tree = build(entries)
    assert tree.subtree_hash(8, 13) == reference.mth(8, 13)
    assert tree.subtree_hash(0, 0) == reference.mth(0, 0)
    assert tree.subtree_hash(2, 5) == reference.mth(2, 5)
    for start, end in ((1, 3), (2, 6), (4, 12), (3, 3), (5, 4), (-1, 1), (8, 14)):
        with pytest.raises(ValueError):
            tree.subtree_hash(start, end)


def test_leaf_hash_of_the_wrong_size_is_refused_before_any_write() -> None:
    store = RecordingStore()
    tree = MerkleTree(Hasher(), store)
    with pytest.raises(ValueError):
        tree.append_leaf_hashes([sha256(b"ok"), b"short"])
    assert tree.size == 0
    assert store.puts == []


def test_verification_refuses_hashes_of_the_wrong_size() -> None:
    hasher = Hasher()
    tree = build([b"a", b"b", b"c"])
    proof, root, leaf = tree.inclusion_proof(1), tree.root(), tree.leaf_hash(1)
    for args in (
        (leaf[:-1], proof, root),
        (leaf, [proof[0] + b"\x00", *proof[1:]], root),
        (leaf, proof, root[:-1]),
    ):
        with pytest.raises(InvalidProof) as caught:
            verify_inclusion(hasher, 1, 3, *args)
        assert type(caught.value) is InvalidProof
    with pytest.raises(InvalidProof):
        verify_inclusion(hasher, -1, 3, leaf, proof, root)


def flip_bit(value: bytes, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[bit // 8 % len(value)] ^= 1 << (bit % 8)
    return bytes(flipped)
