"""Peers ordering through a real 3-member etcd cluster on 127.0.0.1.

The nodes run in this process (each with its own data directory, block store
and SQLite state); etcd runs as real processes. Every wait is bounded.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from carechain.api.client import build_transaction
from carechain.ledger.transaction import SignedTransaction
from carechain.node.config import load_config
from carechain.node.consortium import DEMO_CONSORTIUM, Consortium, PeerSpec, create_consortium
from carechain.node.etcd_process import EtcdCluster
from carechain.node.node import Node
from carechain.ordering.etcd import EtcdOrderer

PEERS = ["pumch", "chaoyang-clinic", "yf-pharmacy"]
_chains = itertools.count()


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with EtcdCluster(tmp_path_factory.mktemp("etcd"), members=3) as cluster:
        yield cluster


@pytest.fixture
def network(etcd: EtcdCluster, tmp_path: Path) -> Consortium:
    """A fresh consortium (its own chain name, so its own keys in etcd) of three peers."""
    chain = f"net{next(_chains)}-{time.time_ns()}"
    config = DEMO_CONSORTIUM.replace('chain = "demo"', f'chain = "{chain}"')
    return create_consortium(
        config,
        tmp_path / "consortium",
        peers=[PeerSpec(org, 0) for org in PEERS],
        etcd_endpoints=etcd.endpoints,
    )


class Peers:
    def __init__(self, network: Consortium) -> None:
        self.network = network
        self.nodes: dict[str, Node] = {}

    def start(self, org: str) -> Node:
        node = Node(load_config(self.network.peer_dirs[org]))
        node.start()
        self.nodes[org] = node
        return node

    def stop(self, org: str) -> None:
        self.nodes.pop(org).stop()

    def stop_all(self) -> None:
        for org in list(self.nodes):
            self.stop(org)

    def wait_same_height(self, height: int, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if all(n.state.height >= height for n in self.nodes.values()):
                return
            time.sleep(0.02)
        heights = {org: n.state.height for org, n in self.nodes.items()}
        raise AssertionError(f"peers did not reach height {height} in {seconds}s: {heights}")

    def cutters(self) -> list[str]:
        return [
            org
            for org, n in self.nodes.items()
            if isinstance(n.ordering, EtcdOrderer) and n.ordering.is_cutter
        ]


@pytest.fixture
def peers(network: Consortium) -> Iterator[Peers]:
    running = Peers(network)
    try:
        for org in PEERS:
            running.start(org)
        yield running
    finally:
        running.stop_all()


def signer(network: Consortium, name: str = "pumch/dr-wang") -> Callable[[int], SignedTransaction]:
    creds = network.members[name]
    return lambda n: build_transaction(
        creds, network.chain, "notary", "anchor", {"digest": f"{n:064x}"}
    )


def test_every_peer_commits_the_same_blocks(peers: Peers, network: Consortium) -> None:
    make = signer(network)
    a, b, c = (peers.nodes[org] for org in PEERS)
    statuses = [a.submit_one(make(i), wait_s=15) for i in range(5)]
    statuses += [b.submit_one(make(100 + i), wait_s=15) for i in range(5)]
    assert all(s.code == "ok" for s in statuses), statuses
    top = max(s.height or 0 for s in statuses)
    peers.wait_same_height(top)
    for height in range(top + 1):
        hashes = {n.block(height).header.block_hash(n.suite) for n in (a, b, c)}
        assert len(hashes) == 1, f"peers disagree at block {height}"
    assert a.state.state_digest == b.state.state_digest == c.state.state_digest
    assert c.tx_status(statuses[0].txid).code == "ok"  # submitted through a, seen at c
    assert len(peers.cutters()) == 1


def test_a_batch_of_submissions_is_ordered_once_and_in_full(
    peers: Peers, network: Consortium
) -> None:
    make = signer(network, "yf-pharmacy/ph-chen")
    a, b, _ = (peers.nodes[org] for org in PEERS)
    txs = [make(1000 + i) for i in range(600)]
    receipts = a.submit(txs[:300]) + b.submit(txs[300:])
    statuses = a.settle(receipts[:300], 30) + b.settle(receipts[300:], 30)  # type: ignore[arg-type]
    assert [s.code for s in statuses] == ["ok"] * 600
    peers.wait_same_height(max(s.height or 0 for s in statuses))
    anchors = peers.nodes["yf-pharmacy"].state_range("notary/anchor/", 1000)
    assert len(anchors) == 600


def test_the_same_transaction_through_two_peers_commits_once(
    peers: Peers, network: Consortium
) -> None:
    tx = signer(network)(7)
    a, b, c = (peers.nodes[org] for org in PEERS)
    (ra,) = a.submit([tx])
    (rb,) = b.submit([tx])
    first = a.settle([ra], 15)[0]  # type: ignore[list-item]
    b.settle([rb], 15)  # type: ignore[list-item]
    assert first.code == "ok"
    # Let any second copy be ordered, then look at every block of every peer.
    final = c.submit_one(signer(network)(8), wait_s=15)
    peers.wait_same_height(final.height or 0)
    for node in (a, b, c):
        outcomes = [
            r.code
            for h in range(1, node.state.height + 1)
            for t, r in zip(node.block(h).txs, node.block(h).results, strict=True)
            if t.txid == tx.txid
        ]
        assert outcomes.count("ok") == 1, outcomes
        assert set(outcomes) <= {"ok", "replayed"}


def test_another_peer_takes_over_cutting_when_the_cutter_stops(
    peers: Peers, network: Consortium
) -> None:
    make = signer(network)
    deadline = time.monotonic() + 10
    while not peers.cutters() and time.monotonic() < deadline:
        time.sleep(0.05)
    (cutter,) = peers.cutters()
    peers.stop(cutter)
    other = next(iter(peers.nodes.values()))
    started = time.monotonic()
    status = other.submit_one(make(55), wait_s=20)
    assert status.code == "ok"
    assert time.monotonic() - started < 10
    assert len(peers.cutters()) == 1 and cutter not in peers.cutters()


def test_a_restarted_peer_catches_up_from_its_own_store(peers: Peers, network: Consortium) -> None:
    make = signer(network)
    a = peers.nodes["pumch"]
    a.submit_one(make(1), wait_s=15)
    peers.stop("yf-pharmacy")
    last = None
    for i in range(5):
        last = a.submit_one(make(10 + i), wait_s=15)
    assert last is not None and last.code == "ok"
    back = peers.start("yf-pharmacy")
    peers.wait_same_height(last.height or 0)
    assert back.state.state_digest == a.state.state_digest
    assert back.tx_status(last.txid).code == "ok"
