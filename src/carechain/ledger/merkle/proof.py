"""Building Merkle proofs, ported from RFC 9162 sections 2.1.3.1 and 2.1.4.1.

The functions are pure. They see the tree only through ``mth(start, end)``,
which returns ``MTH(D[start:end])``, the Merkle Tree Hash of the leaves with
indices ``start <= i < end`` (RFC 9162 section 2.1.1). They ask only for
ranges that the RFC's recursion produces: ``start`` is always a multiple of
the largest power of two not above ``end - start``, so every range asked for
is a fold of perfect subtrees, which is what :class:`~.tree.MerkleTree`
stores.

The RFC's names are kept so the code reads against the text line by line:
``PATH``, ``PROOF`` and ``SUBPROOF`` become :func:`path`, :func:`proof` and
:func:`subproof`; ``m`` is the index (or old size) relative to the start of
the list ``D_n`` being recursed on; ``k`` is the largest power of two smaller
than ``n``; ``b`` says whether ``MTH(D[0:m])`` is already known. The list
``D_n`` is passed as the pair ``start, end`` (so ``n = end - start``).
"""

from __future__ import annotations

from collections.abc import Callable

SubtreeHash = Callable[[int, int], bytes]
"""``mth(start, end)``: ``MTH(D[start:end])`` of the tree the proof is about."""


def largest_power_of_two_smaller_than(n: int) -> int:
    """``k`` of RFC 9162 section 2.1.1: the largest power of two ``< n``, for ``n > 1``."""
    return 1 << ((n - 1).bit_length() - 1)


def path(m: int, start: int, end: int, mth: SubtreeHash) -> list[bytes]:
    """``PATH(m, D_n)``, RFC 9162 section 2.1.3.1, with ``D_n = D[start:end]``.

    Precondition: ``0 <= m < n``. The result lists the sibling hashes from the
    leaf up to the root.
    """
    n = end - start
    # PATH(0, {d[0]}) = {}
    if n == 1:
        return []
    k = largest_power_of_two_smaller_than(n)
    # PATH(m, D_n) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k
    if m < k:
        return [*path(m, start, start + k, mth), mth(start + k, end)]
    # PATH(m, D_n) = PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k
    return [*path(m - k, start + k, end, mth), mth(start, start + k)]


def proof(m: int, n: int, mth: SubtreeHash) -> list[bytes]:
    """``PROOF(m, D_n) = SUBPROOF(m, D_n, true)``, RFC 9162 section 2.1.4.1.

    Precondition: ``0 < m <= n`` (the RFC states ``0 < m < n``; for ``m = n``
    its definition gives the empty proof).
    """
    return subproof(m, 0, n, True, mth)


def subproof(m: int, start: int, end: int, b: bool, mth: SubtreeHash) -> list[bytes]:
    """``SUBPROOF(m, D_n, b)``, RFC 9162 section 2.1.4.1, with ``D_n = D[start:end]``.

    Precondition: ``0 < m <= n``.
    """
    n = end - start
    if m == n:
        # SUBPROOF(m, D_m, true) = {}
        if b:
            return []
        # SUBPROOF(m, D_m, false) = {MTH(D_m)}
        return [mth(start, end)]
    k = largest_power_of_two_smaller_than(n)
    # If m <= k: SUBPROOF(m, D_n, b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
    if m <= k:
        return [*subproof(m, start, start + k, b, mth), mth(start + k, end)]
    # If m > k: SUBPROOF(m, D_n, b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
    return [*subproof(m - k, start + k, end, False, mth), mth(start, start + k)]


def inclusion_proof(index: int, size: int, mth: SubtreeHash) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

    ``PATH(index, D[0:size])`` of RFC 9162 section 2.1.3.1. Raises
    ``ValueError`` unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    return path(index, 0, size, mth)


def consistency_proof(size1: int, size2: int, mth: SubtreeHash) -> list[bytes]:
    """The proof that the tree of ``size2`` leaves extends the one of ``size1``.

    ``PROOF(size1, D[0:size2])`` of RFC 9162 section 2.1.4.1, and the empty
    proof when ``size1 == size2`` (including ``0 == 0``). Raises ``ValueError``
    if ``size1 > size2``, or if ``size1 == 0 < size2``: every tree extends the
    empty one, so the RFC defines no proof for it (``0 < m``) and
    :func:`~.verify.verify_consistency` accepts none.
    """
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == size2:
        return []
    if size1 == 0:
        raise ValueError("a consistency proof from the empty tree is meaningless")
    return proof(size1, size2, mth)
