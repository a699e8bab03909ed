"""The ledger-wide append-only Merkle tree in the RFC 9162 (CT v2) shape.

* :mod:`.hashing`: leaf and node hashes, RFC 9162 section 2.1.1;
* :mod:`.store`: the two-method :class:`NodeStore` seam for perfect nodes;
* :mod:`.tree`: :class:`MerkleTree`, appends, roots at any size, proofs;
* :mod:`.proof`: pure proof building, RFC 9162 sections 2.1.3.1 and 2.1.4.1;
* :mod:`.verify`: pure proof checking, RFC 9162 sections 2.1.3.2 and 2.1.4.2.

Callers may rely on: roots and proofs are byte-for-byte those of RFC 9162
(and RFC 6962, which has the same tree) for the chosen hash function; building
a proof and checking one share no code; verification never trusts the party
that built the proof.
"""

from carechain.ledger.merkle.hashing import Hasher, HashFunction, sha256
from carechain.ledger.merkle.store import MemoryNodeStore, NodeStore
from carechain.ledger.merkle.tree import MerkleTree
from carechain.ledger.merkle.verify import (
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "HashFunction",
    "Hasher",
    "MemoryNodeStore",
    "MerkleTree",
    "NodeStore",
    "root_from_inclusion_proof",
    "sha256",
    "verify_consistency",
    "verify_inclusion",
]
