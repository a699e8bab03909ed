"""Two processes that both believe they are the cutter never fork the chain.

This happens when an operator starts a peer twice from copies of one data
directory: both hold the same peer id and orderer key, so the cutter key and
its lease say "you" to both. Only the compare-and-swap on each height (and on
the submissions taken) keeps the order single. Real etcd members; the two
orderers run in this process and cut concurrently from one shared lease.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pyetcd

from carechain.crypto.suite import DEFAULT
from carechain.identity.keys import read_private_key
from carechain.identity.wallet import load_credentials
from carechain.ledger.block import Batch
from carechain.ledger.transaction import Fingerprint
from carechain.node.consortium import Consortium
from carechain.node.etcd_process import EtcdCluster
from carechain.ordering.etcd import EtcdConnection, EtcdOrderer
from etcd_support import signer


def pumch_orderer(network: Consortium, etcd: EtcdCluster, **options: int) -> EtcdOrderer:
    """An orderer with pumch's peer id and orderer key: every call makes one more copy."""
    peer_dir = network.peer_dirs["pumch"]
    orderer = load_credentials(peer_dir / "keys" / "orderer")
    return EtcdOrderer(
        network.chain,
        etcd.endpoints,
        DEFAULT,
        peer_id="pumch",
        orderer=Fingerprint(orderer.fingerprint),
        orderer_key=read_private_key(peer_dir / "keys" / "orderer.key"),
        max_wait_ms=5,
        **options,  # type: ignore[arg-type]
    )


def test_two_cutters_with_one_identity_write_each_height_once(
    network: Consortium, etcd: EtcdCluster
) -> None:
    first, second = (
        pumch_orderer(network, etcd, max_txs=40),
        pumch_orderer(network, etcd, max_txs=40),
    )
    delivered: dict[str, list[Batch]] = {"first": [], "second": []}
    first.start(1, 0, delivered["first"].append)
    deadline = time.monotonic() + 10
    while not first.is_cutter and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.is_cutter

    # The second copy reads the same lease and starts cutting as well.
    prefix = f"/carechain/{network.chain}/"
    host, _, port = etcd.endpoints[0].rpartition(":")
    client = pyetcd.client(host=host, port=int(port), timeout=5)
    try:
        value, meta = client.get(prefix + "cutter")
        assert value == b"pumch"
        lease = SimpleNamespace(id=meta.lease_id)
        second.start(1, 0, delivered["second"].append)
        second_conn = EtcdConnection(etcd.endpoints)
        rogue = threading.Thread(
            target=second._cut_while_leading, args=(second_conn, lease), daemon=True
        )
        rogue.start()

        make = signer(network)
        txs = [make(50_000 + i) for i in range(600)]
        for i in range(0, 600, 10):  # over about 1.5 s, through both
            (first if i % 20 else second).submit(txs[i : i + 10])
            time.sleep(0.025)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ordered = {tx.txid for b in delivered["first"] for tx in b.txs}
            if len(ordered) >= 600:
                break
            time.sleep(0.05)
        # Both really cut (about 30 blocks each here), and lost compares to each other.
        assert first.blocks_cut > 0 and second.blocks_cut > 0
        assert first.writes_refused + second.writes_refused > 0

        blocks = list(client.get_prefix(prefix + "blocks/"))
        assert all(meta.version == 1 for _, meta in blocks), "a height was written twice"
    finally:
        first.stop()
        second.stop()
        client.close()

    heights = [b.height for b in delivered["first"]]
    assert heights == list(range(1, len(heights) + 1))
    assert [b.statement() for b in delivered["second"][: len(heights)]] == [
        b.statement() for b in delivered["first"][: len(delivered["second"])]
    ]
    txids = [tx.txid for b in delivered["first"] for tx in b.txs]
    assert len(txids) == len(set(txids)) == 600  # every transaction ordered, none twice


def test_a_stale_cutter_cannot_rewrite_a_height_etcd_has_let_go(
    network: Consortium, etcd: EtcdCluster
) -> None:
    """A cutter paused past the retained window wakes up believing the chain is at an
    old height: with blocks/<h> long deleted, only the tip compare stops it."""
    live = pumch_orderer(network, etcd, max_txs=5, retain_blocks=3)
    stale = pumch_orderer(network, etcd, max_txs=5, retain_blocks=3)
    delivered: list[Batch] = []
    live.start(1, 0, delivered.append)
    make = signer(network)
    try:
        for i in range(8):  # eight blocks, one at a time
            live.submit([make(60_000 + i)])
            deadline = time.monotonic() + 10
            while len(delivered) <= i and time.monotonic() < deadline:
                time.sleep(0.01)
        assert [b.height for b in delivered] == list(range(1, 9))
        conn = EtcdConnection(etcd.endpoints)
        for believed_tip in (None, f"{0:012d}".encode()):
            assert not stale._write_block(
                conn, 1, int(time.time() * 1000), [], [make(1)], believed_tip
            )
        conn.close()
        prefix = f"/carechain/{network.chain}/blocks/"
        host, _, port = etcd.endpoints[0].rpartition(":")
        client = pyetcd.client(host=host, port=int(port), timeout=5)
        try:
            kept = sorted(int(meta.key.rsplit(b"/", 1)[1]) for _, meta in client.get_prefix(prefix))
        finally:
            client.close()
        assert 1 not in kept and kept[-1] == 8
    finally:
        live.stop()


def test_a_submission_that_does_not_decode_is_dropped_and_the_chain_goes_on(
    network: Consortium, etcd: EtcdCluster
) -> None:
    from etcd_support import PEERS, Peers

    peers = Peers(network)
    host, _, port = etcd.endpoints[0].rpartition(":")
    client = pyetcd.client(host=host, port=int(port), timeout=5)
    try:
        for org in PEERS:
            peers.start(org)
        bad_key = f"/carechain/{network.chain}/sub/evil/1"
        client.put(bad_key, b"not a transaction\n{also not}")
        status = peers.nodes["pumch"].submit_one(signer(network)(70_000), wait_s=15)
        assert status.code == "ok"
        peers.wait_same_height(status.height or 0)
        assert all(n.failure is None for n in peers.nodes.values())
        value, _ = client.get(bad_key)
        assert value is None  # dropped, not cut into an empty block
    finally:
        client.close()
        peers.stop_all()
