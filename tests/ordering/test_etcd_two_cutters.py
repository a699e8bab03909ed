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


def test_two_cutters_with_one_identity_write_each_height_once(
    network: Consortium, etcd: EtcdCluster
) -> None:
    peer_dir = network.peer_dirs["pumch"]
    orderer = load_credentials(peer_dir / "keys" / "orderer")
    key = read_private_key(peer_dir / "keys" / "orderer.key")

    def make_orderer() -> EtcdOrderer:
        return EtcdOrderer(
            network.chain,
            etcd.endpoints,
            DEFAULT,
            peer_id="pumch",
            orderer=Fingerprint(orderer.fingerprint),
            orderer_key=key,
            max_txs=40,
            max_wait_ms=5,
        )

    first, second = make_orderer(), make_orderer()
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
