"""Published known-answer vectors for the Merkle tree, loaded from ``testdata/*.json``.

Each file names its kind, its source and its encoding; each case has an id, a
description, a source and an ``expect``: ``"ok"`` or the exact error class
(``InvalidProof`` for a malformed proof, ``RootMismatch`` for a well-formed
one that computes another root).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carechain.errors import InvalidProof, RootMismatch
from carechain.ledger.merkle import (
    Hasher,
    MemoryNodeStore,
    MerkleTree,
    verify_consistency,
    verify_inclusion,
)

TESTDATA = Path(__file__).parent / "testdata"
HASHER = Hasher()
ERRORS: dict[str, type[InvalidProof]] = {"InvalidProof": InvalidProof, "RootMismatch": RootMismatch}

Doc = dict[str, Any]
Case = dict[str, Any]


def load_cases() -> list[Any]:
    params = []
    for path in sorted(TESTDATA.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            params.append(pytest.param(doc, case, id=f"{path.stem}:{case['id']}"))
    return params


def decoder(doc: Doc) -> Callable[[str], bytes]:
    if doc["encoding"] == "base64":
        return base64.b64decode
    assert doc["encoding"] == "hex"
    return bytes.fromhex


def reference_tree(doc: Doc) -> MerkleTree:
    tree = MerkleTree(HASHER, MemoryNodeStore())
    for leaf in doc["leaves"]:
        tree.append(bytes.fromhex(leaf))
    return tree


def expect_outcome(case: Case, check: Callable[[], None], decode: Callable[[str], bytes]) -> None:
    """Run ``check`` and hold it to the case's ``expect``: no error, or exactly that class."""
    if case["expect"] == "ok":
        check()
        return
    with pytest.raises(InvalidProof) as caught:
        check()
    assert type(caught.value) is ERRORS[case["expect"]], caught.value
    if "mismatch" in case:
        assert isinstance(caught.value, RootMismatch)
        assert caught.value.expected == decode(case["mismatch"]["expected"])
        assert caught.value.calculated == decode(case["mismatch"]["calculated"])


def check_hasher(doc: Doc, case: Case) -> None:
    function = case["function"]
    if function == "empty_root":
        got = HASHER.empty_root()
    elif function == "hash_leaf":
        got = HASHER.hash_leaf(bytes.fromhex(case["data"]))
    else:
        got = HASHER.hash_children(bytes.fromhex(case["left"]), bytes.fromhex(case["right"]))
    assert got.hex() == case["want"]


def check_roots(doc: Doc, case: Case) -> None:
    size, want = case["size"], case["root"]
    built_in_one_batch = MerkleTree(HASHER, MemoryNodeStore())
    built_in_one_batch.append_leaf_hashes(
        [HASHER.hash_leaf(bytes.fromhex(leaf)) for leaf in doc["leaves"][:size]]
    )
    assert built_in_one_batch.root().hex() == want
    assert reference_tree(doc).root(size).hex() == want


def check_tree_proofs(doc: Doc, case: Case) -> None:
    tree = reference_tree(doc)
    want = [bytes.fromhex(node) for node in case["proof"]]
    if case["proof_type"] == "inclusion":
        index, size = case["index"], case["size"]
        assert tree.inclusion_proof(index, size) == want
        leaf_hash = HASHER.hash_leaf(bytes.fromhex(doc["leaves"][index]))
        verify_inclusion(HASHER, index, size, leaf_hash, want, tree.root(size))
    else:
        size1, size2 = case["size1"], case["size2"]
        assert tree.consistency_proof(size1, size2) == want
        verify_consistency(HASHER, size1, size2, want, tree.root(size1), tree.root(size2))


def check_rfc_example(doc: Doc, case: Case) -> None:
    leaves = doc["leaves"]
    tree = reference_tree(doc)
    # The example's nodes, computed from scratch (not by the tree) for the named ranges.
    nodes = {}
    for name, (start, end) in doc["nodes"].items():
        part = MerkleTree(HASHER, MemoryNodeStore())
        for leaf in leaves[start:end]:
            part.append(bytes.fromhex(leaf))
        nodes[name] = part.root()
    want = [nodes[name] for name in case["nodes"]]
    if case["proof_type"] == "inclusion":
        index, size = case["index"], case["size"]
        assert tree.inclusion_proof(index, size) == want
        leaf_hash = HASHER.hash_leaf(bytes.fromhex(leaves[index]))
        verify_inclusion(HASHER, index, size, leaf_hash, want, tree.root(size))
    else:
        size1, size2 = case["size1"], case["size2"]
        assert tree.consistency_proof(size1, size2) == want
        verify_consistency(HASHER, size1, size2, want, tree.root(size1), tree.root(size2))


def check_inclusion(doc: Doc, case: Case) -> None:
    decode = decoder(doc)
    proof = [decode(node) for node in case["proof"]]

    def check() -> None:
        verify_inclusion(
            HASHER,
            case["index"],
            case["size"],
            decode(case["leaf_hash"]),
            proof,
            decode(case["root"]),
        )

    expect_outcome(case, check, decode)


def check_consistency(doc: Doc, case: Case) -> None:
    decode = decoder(doc)
    proof = [decode(node) for node in case["proof"]]

    def check() -> None:
        verify_consistency(
            HASHER,
            case["size1"],
            case["size2"],
            proof,
            decode(case["root1"]),
            decode(case["root2"]),
        )

    expect_outcome(case, check, decode)


CHECKS: dict[str, Callable[[Doc, Case], None]] = {
    "hasher": check_hasher,
    "roots": check_roots,
    "tree_proofs": check_tree_proofs,
    "rfc_example": check_rfc_example,
    "inclusion": check_inclusion,
    "consistency": check_consistency,
}


@pytest.mark.parametrize(("doc", "case"), load_cases())
def test_vector(doc: Doc, case: Case) -> None:
    assert doc["hash"] == "sha256"
    assert case["description"] and case["source"]
    CHECKS[doc["kind"]](doc, case)
