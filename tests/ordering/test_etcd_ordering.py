"""Peers ordering through a real 3-member etcd cluster on 127.0.0.1.

The nodes run in this process (each with its own data directory, block store
and SQLite state); etcd runs as real processes. Every wait is bounded.
"""

from __future__ import annotations

import time

from carechain.node.consortium import Consortium
from etcd_support import PEERS, Peers, signer


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


def test_a_cutter_that_stops_hands_over_without_waiting_out_its_lease(
    network: Consortium,
) -> None:
    for data_dir in network.peer_dirs.values():  # a long lease: waiting it out takes 7-10 s
        path = data_dir / "node.toml"
        path.write_text(path.read_text().replace("[ordering]\n", "[ordering]\nlease_ttl_s = 10\n"))
    peers = Peers(network)
    try:
        for org in PEERS:
            peers.start(org)
        deadline = time.monotonic() + 15
        while not peers.cutters() and time.monotonic() < deadline:
            time.sleep(0.05)
        (cutter,) = peers.cutters()
        peers.stop(cutter)
        stopped = time.monotonic()
        while not peers.cutters() and time.monotonic() < stopped + 15:
            time.sleep(0.05)
        handed_over_s = time.monotonic() - stopped
        assert peers.cutters(), "nobody took over"
        assert handed_over_s < 5, f"took {handed_over_s:.1f} s: the lease was waited out"
    finally:
        peers.stop_all()
