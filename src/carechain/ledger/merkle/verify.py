"""Checking Merkle proofs, following RFC 9162 sections 2.1.3.2 and 2.1.4.2.

Pure functions: they trust nothing but the hasher and the roots the caller
already holds (for example from signed tree heads). A proof that is malformed
(wrong number of hashes, a hash of the wrong size, an index outside the tree,
sizes that go backwards) raises :class:`~carechain.errors.InvalidProof`; a
well-formed proof that leads to a different root raises its subclass
:class:`~carechain.errors.RootMismatch` with the ``expected`` root (the one the
caller trusts) and the ``calculated`` one.

Each function lists the RFC's numbered steps in its docstring and labels the
code that performs each. Checks the RFC leaves to the caller (hash sizes,
equal sizes, the empty tree) come first, labelled "Preconditions".
"""

from __future__ import annotations

from collections.abc import Sequence

from carechain.errors import InvalidProof, RootMismatch
from carechain.ledger.merkle.hashing import Hasher


def _check_hash_size(hasher: Hasher, what: str, value: bytes) -> None:
    if len(value) != hasher.digest_size:
        raise InvalidProof(f"{what} is {len(value)} bytes, not {hasher.digest_size}")


def _check_proof_hash_sizes(hasher: Hasher, proof: Sequence[bytes]) -> None:
    for position, node in enumerate(proof):
        _check_hash_size(hasher, f"proof hash {position}", node)


def root_from_inclusion_proof(
    hasher: Hasher, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` places ``leaf_hash`` under, as leaf ``index`` of ``size``.

    RFC 9162 section 2.1.3.2, "Verifying an Inclusion Proof", with
    ``leaf_index = index``, ``tree_size = size``, ``hash = leaf_hash`` and
    ``inclusion_path = proof``:

    1. If ``leaf_index`` >= ``tree_size``, fail.
    2. Set ``fn`` to ``leaf_index`` and ``sn`` to ``tree_size - 1``.
    3. Set ``r`` to ``hash``.
    4. For each ``p`` in ``inclusion_path``: if ``sn`` is 0, fail. If
       ``LSB(fn)`` is set or ``fn == sn``: set ``r`` to
       ``HASH(0x01 || p || r)``, then, if ``LSB(fn)`` is not set, right-shift
       ``fn`` and ``sn`` until ``LSB(fn)`` is set or ``fn`` is 0. Otherwise
       set ``r`` to ``HASH(0x01 || r || p)``. Finally right-shift ``fn`` and
       ``sn`` once.
    5. Compare ``sn`` to 0 and ``r`` to ``root_hash``. This function does the
       first half (``sn`` must be 0, else the proof is too short) and returns
       ``r``; :func:`verify_inclusion` does the second.

    Raises :class:`~carechain.errors.InvalidProof` if the proof is malformed.
    """
    # Preconditions: every hash is HASH_SIZE bytes, the index is not negative.
    _check_hash_size(hasher, "leaf hash", leaf_hash)
    _check_proof_hash_sizes(hasher, proof)
    if index < 0:
        raise InvalidProof(f"leaf index {index} is negative")

    # Step 1: the leaf must be inside the tree.
    if index >= size:
        raise InvalidProof(f"leaf index {index} is not in a tree of size {size}")

    # Step 2.
    fn, sn = index, size - 1

    # Step 3.
    r = leaf_hash

    # Step 4.
    for p in proof:
        if sn == 0:
            raise InvalidProof(f"inclusion proof has too many hashes ({len(proof)})")
        if fn & 1 or fn == sn:
            r = hasher.hash_children(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hasher.hash_children(r, p)
        fn >>= 1
        sn >>= 1

    # Step 5, first half: a proof that stops below the root is too short.
    if sn != 0:
        raise InvalidProof(f"inclusion proof has too few hashes ({len(proof)})")
    return r


def verify_inclusion(
    hasher: Hasher,
    index: int,
    size: int,
    leaf_hash: bytes,
    proof: Sequence[bytes],
    root: bytes,
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 section 2.1.3.2: steps 1 to 5 run in
    :func:`root_from_inclusion_proof`; step 5's comparison of ``r`` with
    ``root_hash`` is here.

    Raises :class:`~carechain.errors.InvalidProof` if the proof is malformed
    and :class:`~carechain.errors.RootMismatch` if it leads to another root.
    """
    # Preconditions: the trusted root is HASH_SIZE bytes.
    _check_hash_size(hasher, "root", root)

    # Steps 1 to 5 (first half).
    calculated = root_from_inclusion_proof(hasher, index, size, leaf_hash, proof)

    # Step 5, second half: r must equal root_hash.
    if calculated != root:
        raise RootMismatch(root, calculated)


def verify_consistency(
    hasher: Hasher,
    size1: int,
    size2: int,
    proof: Sequence[bytes],
    root1: bytes,
    root2: bytes,
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the one of ``size1``.

    RFC 9162 section 2.1.4.2, "Verifying Consistency between Two Tree Heads",
    with ``first = size1``, ``second = size2``, ``first_hash = root1``,
    ``second_hash = root2`` and ``consistency_path = proof``. The RFC covers
    ``0 < first < second``; the preconditions settle the other cases: equal
    sizes need an empty proof and equal roots, and a proof from the empty tree
    is refused as meaningless (as transparency-dev/merkle does).

    1. If ``consistency_path`` is empty, fail.
    2. If ``first`` is an exact power of 2, prepend ``first_hash`` to
       ``consistency_path``.
    3. Set ``fn`` to ``first - 1`` and ``sn`` to ``second - 1``.
    4. If ``LSB(fn)`` is set, right-shift ``fn`` and ``sn`` until ``LSB(fn)``
       is not set.
    5. Set both ``fr`` and ``sr`` to the first value of ``consistency_path``.
    6. For each subsequent value ``c``: if ``sn`` is 0, fail. If ``LSB(fn)``
       is set or ``fn == sn``: set ``fr`` to ``HASH(0x01 || c || fr)`` and
       ``sr`` to ``HASH(0x01 || c || sr)``, then, if ``LSB(fn)`` is not set,
       right-shift ``fn`` and ``sn`` until ``LSB(fn)`` is set or ``fn`` is 0.
       Otherwise set ``sr`` to ``HASH(0x01 || sr || c)``. Finally right-shift
       ``fn`` and ``sn`` once.
    7. Check that ``sn`` is 0 (else the proof is too short), that ``fr``
       equals ``first_hash`` and that ``sr`` equals ``second_hash``.

    Raises :class:`~carechain.errors.InvalidProof` if the proof is malformed
    and :class:`~carechain.errors.RootMismatch` if a computed root differs
    from the one given.
    """
    # Preconditions: every hash is HASH_SIZE bytes; sizes do not go backwards.
    _check_hash_size(hasher, "root1", root1)
    _check_hash_size(hasher, "root2", root2)
    _check_proof_hash_sizes(hasher, proof)
    if size1 < 0:
        raise InvalidProof(f"tree size {size1} is negative")
    if size1 > size2:
        raise InvalidProof(f"tree size {size1} is larger than the later size {size2}")
    # Preconditions: equal sizes are consistent exactly when the roots are equal.
    if size1 == size2:
        if proof:
            raise InvalidProof("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise RootMismatch(root2, root1)
        return
    # Preconditions: every tree extends the empty one; a proof of it proves nothing.
    if size1 == 0:
        raise InvalidProof("a consistency proof from the empty tree is meaningless")

    # Step 1.
    if not proof:
        raise InvalidProof("consistency proof is empty")

    # Step 2.
    consistency_path = list(proof)
    if size1 & (size1 - 1) == 0:
        consistency_path.insert(0, root1)

    # Step 3.
    fn, sn = size1 - 1, size2 - 1

    # Step 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1

    # Step 5.
    fr = sr = consistency_path[0]

    # Step 6.
    for c in consistency_path[1:]:
        if sn == 0:
            raise InvalidProof(f"consistency proof has too many hashes ({len(proof)})")
        if fn & 1 or fn == sn:
            fr = hasher.hash_children(c, fr)
            sr = hasher.hash_children(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hasher.hash_children(sr, c)
        fn >>= 1
        sn >>= 1

    # Step 7.
    if sn != 0:
        raise InvalidProof(f"consistency proof has too few hashes ({len(proof)})")
    if fr != root1:
        raise RootMismatch(root1, fr)
    if sr != root2:
        raise RootMismatch(root2, sr)
