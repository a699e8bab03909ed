"""Signed tree heads and Merkle proofs as the API serves them.

Proofs are built on a fresh read-only view of the tree at a committed size,
never on the committer's live tree, so a proof request cannot race a commit.
An inclusion proof document carries everything an offline verifier needs
besides the peer's certificate: the leaf entry (whose canonical bytes are the
leaf input), its index, the proof and the signed tree head it leads to.
"""

from __future__ import annotations

from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from carechain.crypto.canonical import canonical_bytes
from carechain.crypto.suite import CryptoSuite
from carechain.errors import InvalidInput, NotFound
from carechain.identity.certificates import fingerprint_of
from carechain.ledger.merkle import Hasher, MerkleTree, verify_consistency, verify_inclusion
from carechain.ledger.statestore import SqliteNodeStore, StateStore
from carechain.node.committer import tree_head_from_json


def signed_tree_head(state: StateStore, height: int) -> dict[str, Any]:
    head = state.tree_head(height)
    if head is None:
        raise NotFound(f"no tree head for block {height}; the chain is at {state.height}")
    doc: dict[str, Any] = orjson.loads(head[2])
    return doc


def _tree_at(state: StateStore, tree: MerkleTree, size: int) -> MerkleTree:
    return MerkleTree(tree.hasher, SqliteNodeStore(state), size)


def inclusion_proof(
    state: StateStore, tree: MerkleTree, txid: str, height: int | None = None
) -> dict[str, Any]:
    location = state.tx_location(txid)
    if location is None:
        raise NotFound(f"no committed transaction {txid}")
    tx_height, index, code = location
    at = state.height if height is None else height
    if at < tx_height:
        raise InvalidInput(f"transaction {txid} was committed at block {tx_height}, after {at}")
    head = signed_tree_head(state, at)
    before = 0 if tx_height == 0 else signed_tree_head(state, tx_height - 1)["tree_size"]
    leaf_index = before + index
    view = _tree_at(state, tree, head["tree_size"])
    proof = view.inclusion_proof(leaf_index, head["tree_size"])
    return {
        "type": "carechain/inclusion_proof",
        "leaf": {"code": code, "height": tx_height, "index": index, "txid": txid},
        "leaf_index": leaf_index,
        "tree_size": head["tree_size"],
        "proof": [node.hex() for node in proof],
        "tree_head": head,
    }


def consistency_proof(
    state: StateStore, tree: MerkleTree, first: int, second: int | None = None
) -> dict[str, Any]:
    second = state.height if second is None else second
    if first > second:
        raise InvalidInput(f"first height {first} is after second height {second}")
    old = signed_tree_head(state, first)
    new = signed_tree_head(state, second)
    view = _tree_at(state, tree, new["tree_size"])
    proof = view.consistency_proof(old["tree_size"], new["tree_size"])
    return {
        "type": "carechain/consistency_proof",
        "first": old,
        "second": new,
        "proof": [node.hex() for node in proof],
    }


# -- offline verification ----------------------------------------------------------------


def _public_key_of(certificate_pem: bytes) -> bytes:
    try:
        key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    except ValueError as exc:
        raise InvalidInput(f"not a PEM certificate: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("the certificate's key is not Ed25519")
    return key.public_bytes_raw()


def verify_tree_head(head: dict[str, Any], certificate_pem: bytes, suite: CryptoSuite) -> None:
    """Check a signed tree head's signature with the signing peer's certificate."""
    sth = tree_head_from_json(head)
    if fingerprint_of(certificate_pem) != sth.signer:
        raise InvalidInput("the tree head was signed by another certificate than the one given")
    statement = canonical_bytes(sth.statement())
    if not suite.verify(_public_key_of(certificate_pem), statement, sth.signature):
        raise InvalidInput("the tree head's signature does not verify")


def verify_inclusion_document(
    doc: Any, suite: CryptoSuite, certificate_pem: bytes | None = None
) -> dict[str, Any]:
    """Verify an inclusion proof document offline; return what it proves.

    Checks the proof leads from the leaf entry to the tree head's root (RFC
    9162 section 2.1.3.2) and, given the peer's certificate, the tree head's
    signature. Raises ``InvalidProof``/``RootMismatch``/``InvalidInput``.
    """
    try:
        if doc["type"] != "carechain/inclusion_proof":
            raise InvalidInput("not a carechain inclusion proof")
        leaf = doc["leaf"]
        head = doc["tree_head"]
        proof = [bytes.fromhex(h) for h in doc["proof"]]
        leaf_index, tree_size = int(doc["leaf_index"]), int(doc["tree_size"])
        root = bytes.fromhex(head["root"])
        leaf_bytes = canonical_bytes({k: leaf[k] for k in ("code", "height", "index", "txid")})
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"proof document is malformed: {exc}") from exc
    if int(head["tree_size"]) != tree_size:
        raise InvalidInput("the proof's tree size differs from its tree head's")
    hasher = Hasher(suite.hash)
    verify_inclusion(hasher, leaf_index, tree_size, hasher.hash_leaf(leaf_bytes), proof, root)
    if certificate_pem is not None:
        verify_tree_head(head, certificate_pem, suite)
    return {
        "txid": leaf["txid"],
        "height": leaf["height"],
        "code": leaf["code"],
        "tree_size": tree_size,
        "root": head["root"],
        "signed": certificate_pem is not None,
    }


def verify_consistency_document(
    doc: Any, suite: CryptoSuite, certificate_pem: bytes | None = None
) -> dict[str, Any]:
    """Verify a consistency proof document offline (RFC 9162 section 2.1.4.2)."""
    try:
        if doc["type"] != "carechain/consistency_proof":
            raise InvalidInput("not a carechain consistency proof")
        first, second = doc["first"], doc["second"]
        proof = [bytes.fromhex(h) for h in doc["proof"]]
        size1, size2 = int(first["tree_size"]), int(second["tree_size"])
        root1, root2 = bytes.fromhex(first["root"]), bytes.fromhex(second["root"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"proof document is malformed: {exc}") from exc
    verify_consistency(Hasher(suite.hash), size1, size2, proof, root1, root2)
    if certificate_pem is not None:
        verify_tree_head(first, certificate_pem, suite)
        verify_tree_head(second, certificate_pem, suite)
    return {"first_size": size1, "second_size": size2, "signed": certificate_pem is not None}
