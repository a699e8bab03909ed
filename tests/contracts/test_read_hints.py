"""Read hints: a block's likely reads fetched in one query change nothing but speed.

The executor asks each contract which committed keys a call will read
(``Contract.reads``) and fetches them ahead; the block's overlay then serves them as
it would have served a read at the key's turn. These tests hold that: the same
values, whatever the hints say (wrong, missing, raising), and the claims contract's
hints naming the keys a claim really reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from carechain.contracts.state import Overlay
from carechain.identity.wallet import Credentials
from carechain.ledger.statestore import StateStore
from carechain.node.node import Node
from carechain.node.staged import Layer, LayeredView
from claims_support import HOSPITAL_DESK, World, drug, service
from ledger.test_statestore import writes_at
from support import license_demo_maker

Member = Callable[[str], Credentials]


def store_with(tmp_path: Path, rows: dict[str, Any]) -> StateStore:
    store = StateStore(tmp_path / "state.sqlite")
    store.commit_block(writes_at(0, [(k, orjson.dumps(v)) for k, v in sorted(rows.items())]))
    return store


def test_get_many_reads_what_get_reads_in_chunks(tmp_path: Path) -> None:
    rows = {f"k/{i:05d}": {"n": i} for i in range(1_200)}
    store = store_with(tmp_path, rows)
    asked = [f"k/{i:05d}" for i in range(0, 2_400, 2)]  # half of them missing, over 2 chunks
    found = store.get_many(asked)
    assert found == {k: v for k in asked if (v := store.get(k)) is not None}
    assert len(found) == 600 and store.get_many([]) == {}


def test_staged_layers_win_over_the_store(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"a": 1, "b": 2, "c": 3})
    layer = Layer(height=2, writes={"b": b"20", "c": None, "d": b"4"}, nonces={})
    view = LayeredView(store, (layer,))
    assert view.get_many(["a", "b", "c", "d", "e"]) == {"a": b"1", "b": b"20", "c": None, "d": b"4"}
    assert {k: view.get(k) for k in "abcde"} == {"a": b"1", "b": b"20", "c": None, "d": b"4",
                                                 "e": None}  # fmt: skip


def test_prefetched_keys_read_as_at_their_turn(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"x/1": {"v": 1}, "x/2": {"v": 2}})
    ahead, plain = Overlay(store), Overlay(store)
    ahead.prefetch(["x/1", "x/3", "x/1"])  # found, missing, repeated
    tx = Overlay(ahead)
    tx.put("x/2", {"v": 22})
    tx.fold_into_parent()
    ahead.prefetch(["x/2"])  # written in this block: the write stands
    for key in ("x/1", "x/2", "x/3"):
        expected = {"x/1": {"v": 1}, "x/2": {"v": 22}, "x/3": None}[key]
        assert ahead.get(key) == expected
    assert plain.get("x/1") == {"v": 1} and plain.get("x/3") is None


@pytest.fixture
def world(node: Node, member: Member) -> World:
    license_demo_maker(node, member("nmpa/admin"))
    return World(node, member)


def test_a_claims_hints_name_the_keys_it_reads(
    world: World, node: Node, member: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, pack = world.record(), world.dispensed("HINT-1")
    # The drug line is flagged (the pharmacy dispensed the pack, not pumch): the claim
    # still reads every key a paid one reads, up to the payment.
    hinted: list[str] = []
    read_at_turn: list[str] = []
    real_get_many, real_get = StateStore.get_many, StateStore.get

    def get_many(self: StateStore, keys: Any) -> dict[str, bytes]:
        hinted.extend(keys)
        return real_get_many(self, keys)

    def get(self: StateStore, key: str) -> bytes | None:
        read_at_turn.append(key)
        return real_get(self, key)

    monkeypatch.setattr(StateStore, "get_many", get_many)
    monkeypatch.setattr(StateStore, "get", get)
    _, status = world.claim(HOSPITAL_DESK, [service(record=record), dict(drug(pack), seq=2)])
    assert status.code == "ok"
    claims_keys = {k for k in hinted if not k.startswith("governance/")}
    assert claims_keys and not claims_keys & set(read_at_turn)  # none read twice
    # What is still read at its turn is only the caller's membership (cached across
    # blocks); the claim's own reads all came in the one query.
    assert {k.split("/")[0] for k in claims_keys} == {"claims", "records", "drugs", "payments"}
    assert all(k.startswith("governance/") for k in read_at_turn), read_at_turn


def test_hints_that_fail_or_mislead_change_nothing(
    world: World, node: Node, member: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carechain.contracts.claims import Claims

    calls: list[str] = []

    def wrong(self: Claims, method: str, args: dict[str, Any], caller: Any) -> list[Any]:
        calls.append(method)
        if len(calls) % 2:
            raise KeyError("lines")  # a hint that trips over its input
        return ["claims/nothing-here", 42, "payments/account/nobody/CNY"] * 40  # junk

    monkeypatch.setattr(Claims, "reads", wrong)
    record = world.record()
    ids = []
    for _ in range(4):
        claim_id, status = world.claim(HOSPITAL_DESK, [service(record=record, amount=1_000)])
        ids.append((claim_id, status.code))
        record = world.record()
    assert all(code == "ok" for _, code in ids)
    # Malformed arguments still get the contract's own refusal, not a hint's error.
    bad = world.claim(HOSPITAL_DESK, [])[1]
    assert bad.code == "contract_error" and bad.message == "a claim needs at least one line"
    assert calls.count("submit") >= 5  # both kinds of bad hint ran
    assert all(node.state.get(f"claims/claim/{claim_id}") for claim_id, _ in ids)
