"""A block's overlay answers reads and scans exactly as a plain dict of its writes would.

Scans bisect a sorted index of the keys written (a block of thousands of
transactions that each scan must not cost thousands of passes over every
write). Hypothesis drives random puts, deletes, nested transaction overlays
that are folded in or dropped, over a real SQLite state store holding some
committed rows, and compares every read and scan with the reference. The block's
overlay keeps what it read from committed state (a block asks the store for each
key or prefix once), so these checks also hold that cache to the reference.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carechain.contracts.state import Overlay
from carechain.ledger.statestore import BlockWrites, StateStore
from carechain.node.staged import Layer, LayeredView

KEYS = [f"c/{a}/{b}" for a in ("a", "ab", "b") for b in ("1", "2", "10")] + ["c/", "d/x"]
PREFIXES = ["c/", "c/a", "c/ab/", "c/b/1", "d/", "e/", ""]

op = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KEYS), st.integers(0, 9)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(st.just("tx"), st.booleans()),  # end a transaction: fold it in, or drop it
)


def committed_store(tmp: Path) -> StateStore:
    store = StateStore(tmp / "state.sqlite")
    rows = [("c/a/1", b"100"), ("c/b/2", b"200"), ("d/x", b"300")]
    store.commit_block(
        BlockWrites(
            height=0,
            writes=rows,
            txs=[],
            nonces=[],
            tree_nodes=[],
            tree_size=0,
            tree_head=(b"\x00" * 32, b""),
            block_hash="00" * 32,
            state_digest="00" * 32,
            time_ms=0,
        )
    )
    return store


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(op, max_size=40))
def test_scans_agree_with_a_plain_dict(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[object, ...]]
) -> None:
    store = committed_store(tmp_path_factory.mktemp("state"))
    reference = {"c/a/1": 100, "c/b/2": 200, "d/x": 300}
    block = Overlay(LayeredView(store, (Layer(1, {"c/ab/1": b"7", "c/b/2": None}, {}),)))
    reference["c/ab/1"] = 7
    del reference["c/b/2"]
    tx = Overlay(block)
    pending = dict(reference)
    for item in ops:
        if item[0] == "put":
            tx.put(item[1], item[2])
            pending[item[1]] = item[2]
        elif item[0] == "delete":
            tx.delete(item[1])
            pending.pop(item[1], None)
        else:
            if item[1]:
                tx.fold_into_parent()
                reference = dict(pending)
            else:
                pending = dict(reference)
            tx = Overlay(block)
        for prefix in PREFIXES:
            want = sorted((k, v) for k, v in pending.items() if k.startswith(prefix))
            assert tx.scan(prefix) == want, (prefix, item)
            assert tx.scan(prefix, limit=1) == want[:1]
            committed = sorted((k, v) for k, v in reference.items() if k.startswith(prefix))
            assert block.scan(prefix) == committed
        for key in [*KEYS, "c/none"]:
            assert tx.get(key) == pending.get(key), (key, item)
            assert block.get(key) == reference.get(key), (key, item)
    store.close()


class CountingStore:
    """A committed view that counts how often each key and prefix is asked for."""

    def __init__(self, view: LayeredView) -> None:
        self.view = view
        self.asked: dict[str, int] = {}

    def get(self, key: str) -> bytes | None:
        self.asked[key] = self.asked.get(key, 0) + 1
        return self.view.get(key)

    def scan(self, prefix: str, limit: int = -1, after: str = "") -> list[tuple[str, bytes]]:
        self.asked["scan " + prefix] = self.asked.get("scan " + prefix, 0) + 1
        return self.view.scan(prefix, limit, after)


def test_a_block_asks_committed_state_for_each_key_once(tmp_path: Path) -> None:
    store = committed_store(tmp_path)
    counting = CountingStore(LayeredView(store, ()))
    block = Overlay(counting)
    for _ in range(3):  # three transactions reading the same keys, one writing them
        tx = Overlay(block)
        assert tx.get("c/a/1") == 100 and tx.get("c/none") is None
        assert [k for k, _ in tx.scan("c/")] == ["c/a/1", "c/b/2"]
        tx.fold_into_parent()
    tx = Overlay(block)
    tx.put("c/none", 5)
    tx.delete("c/a/1")
    tx.fold_into_parent()
    assert block.get("c/none") == 5 and block.get("c/a/1") is None
    assert [k for k, _ in Overlay(block).scan("c/")] == ["c/b/2", "c/none"]
    assert counting.asked == {"c/a/1": 1, "c/none": 1, "scan c/": 1}
    store.close()
