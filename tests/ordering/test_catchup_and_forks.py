"""Catch-up beyond etcd's window from other peers, and a lying peer caught by the cross-check.

Real etcd members on 127.0.0.1; peers in this process, serving their REST API
on their own ports where other peers fetch blocks from them.
"""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carechain.api.client import NodeClient, build_transaction
from carechain.errors import VerificationFailed
from carechain.node.consortium import Consortium
from carechain.node.etcd_process import EtcdCluster
from carechain.node.node import Node
from carechain.node.peers import verify_fork_evidence
from carechain.node.verify import verify_ledger
from etcd_support import Peers, signer


def forks_cli(network: Consortium, url: str) -> subprocess.CompletedProcess[str]:
    admin = network.directory / "orgs" / "pumch" / "members" / "admin"
    return subprocess.run(
        [sys.executable, "-m", "carechain", "forks", "--as", str(admin), "--node", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def set_ordering(network: Consortium, **options: int) -> None:
    """Add options under [ordering] in every peer's node.toml."""
    lines = "".join(f"{key} = {value}\n" for key, value in options.items())
    for data_dir in network.peer_dirs.values():
        path = data_dir / "node.toml"
        path.write_text(path.read_text().replace("[ordering]\n", "[ordering]\n" + lines))


def test_a_peer_behind_etcds_window_fetches_blocks_from_other_peers(
    network: Consortium, etcd: EtcdCluster
) -> None:
    import pyetcd

    set_ordering(network, retain_blocks=3, compact_every=2)
    make = signer(network)
    peers = Peers(network)
    try:
        a = peers.start("pumch", serve=True)
        peers.start("chaoyang-clinic", serve=True)
        statuses = [a.submit_one(make(i), wait_s=15) for i in range(8)]  # a block each
        assert [s.code for s in statuses] == ["ok"] * 8
        top = statuses[-1].height or 0
        assert top >= 8

        host, _, port = etcd.endpoints[0].rpartition(":")
        client = pyetcd.client(host=host, port=int(port), timeout=5)
        try:
            kept = [
                int(meta.key.rsplit(b"/", 1)[1])
                for _, meta in client.get_prefix(f"/carechain/{network.chain}/blocks/")
            ]
            with pytest.raises(Exception, match="compacted"):
                client.get(f"/carechain/{network.chain}/blocks/{1:012d}", revision=2)
        finally:
            client.close()
        assert 1 not in kept and min(kept) > top - 5  # old blocks are gone from etcd

        late = peers.start("yf-pharmacy")  # starts at height 1: only peers have it
        peers.wait_same_height(top)
        assert late.state.state_digest == a.state.state_digest
        assert late.tx_status(statuses[0].txid).code == "ok"
        assert late.crosscheck is not None and late.crosscheck.forks == []
        clean = forks_cli(network, peers.servers["pumch"].url)
        assert clean.returncode == 0 and "no forks seen" in clean.stdout
    finally:
        peers.stop_all()


def wait_for_forks(node: Node, seconds: float = 15) -> list[dict[str, object]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert node.crosscheck is not None
        if node.crosscheck.forks:
            return node.crosscheck.forks
        time.sleep(0.05)
    raise AssertionError("no fork was reported")


def test_a_peer_whose_state_was_altered_is_caught_with_signed_evidence(
    network: Consortium, tmp_path: Path
) -> None:
    make = signer(network)
    digest = f"{424242:064x}"
    peers = Peers(network)
    try:
        a = peers.start("pumch", serve=True)
        peers.start("chaoyang-clinic")
        peers.start("yf-pharmacy")
        first = a.submit_one(make(424242), wait_s=15)
        assert first.code == "ok"
        peers.wait_same_height(first.height or 0)

        # Someone with access to yf-pharmacy's disk removes the anchor from its state.
        peers.stop("yf-pharmacy")
        conn = sqlite3.connect(network.peer_dirs["yf-pharmacy"] / "state.sqlite")
        with conn:
            conn.execute("DELETE FROM state WHERE key = ?", (f"notary/anchor/{digest}",))
        conn.close()
        liar = peers.start("yf-pharmacy")

        # The same fingerprint again: honest peers refuse it, the altered one accepts it.
        again = build_transaction(
            network.members["chaoyang-clinic/dr-zhao"],
            network.chain,
            "notary",
            "anchor",
            {"digest": digest},
        )
        status = a.submit_one(again, wait_s=15)
        assert status.code != "ok" and "already anchored" in (status.message or "")
        peers.wait_same_height(status.height or 0)
        assert liar.tx_status(again.txid).code == "ok"

        forks = wait_for_forks(a)
        evidence = forks[0]
        assert evidence["peer"] == liar.peer_fp and evidence["height"] == status.height
        keys = {n.peer_fp: n.member(n.peer_fp).public_key for n in peers.nodes.values()}  # type: ignore[union-attr]
        assert verify_fork_evidence(evidence, a.suite, keys)
        assert wait_for_forks(liar)[0]["peer"] in {
            a.peer_fp,
            peers.nodes["chaoyang-clinic"].peer_fp,
        }
        # Every later block differs too; the fork is recorded once per peer.
        more = [a.submit_one(make(900 + i), wait_s=15) for i in range(3)]
        peers.wait_same_height(more[-1].height or 0)
        time.sleep(1.5)  # three cross-check rounds
        assert [f["peer"] for f in a.crosscheck.forks].count(liar.peer_fp) == 1  # type: ignore[union-attr]
        assert (network.peer_dirs["pumch"] / "forks.jsonl").read_text().count("\n") == 1

        # Reported through the API and the status too.
        admin = network.members["pumch/admin"]
        with NodeClient(peers.servers["pumch"].url, admin, timeout=10) as client:
            listed = client.request("GET", "/v1/forks")["forks"]
            node_status = client.request("GET", "/v1/status")
        assert listed[0]["theirs"]["peer"] == liar.peer_fp
        assert node_status["forks"] >= 1
        shown = forks_cli(network, peers.servers["pumch"].url)
        assert shown.returncode == 1 and liar.peer_fp in shown.stdout

        # After a restart the evidence is still there, and not recorded again.
        peers.stop("pumch")
        again = peers.start("pumch")
        time.sleep(1.5)  # three cross-check rounds
        assert again.crosscheck is not None and len(again.crosscheck.forks) == 1
        assert (network.peer_dirs["pumch"] / "forks.jsonl").read_text().count("\n") == 1
    finally:
        peers.stop_all()
    # The altered peer's own audit finds it too.
    with pytest.raises(VerificationFailed):
        verify_ledger(network.peer_dirs["yf-pharmacy"])


def test_an_orderer_signing_two_batches_for_one_height_is_caught(network: Consortium) -> None:
    """An orderer key signs a second batch for a height and slips it to one peer. The
    cross-check finds the fork; fetching the other peers' blocks at that height shows
    two batches, both validly signed: evidence against the orderer."""
    from carechain.identity.wallet import load_credentials
    from carechain.ledger.block import make_batch, ordering_statement
    from carechain.ledger.transaction import Fingerprint

    make = signer(network)
    peers = Peers(network)
    try:
        a = peers.start("pumch", serve=True)
        peers.start("chaoyang-clinic", serve=True)
        peers.start("yf-pharmacy", serve=True)
        first = a.submit_one(make(1), wait_s=15)
        peers.wait_same_height(first.height or 0)
        height = (first.height or 0) + 1

        cutter = next(n for n in peers.nodes.values() if n.ordering.is_cutter)  # type: ignore[attr-defined]
        # The cutter's own orderer key signs a second batch for the next height.
        orderer = load_credentials(cutter.config.data_dir / "keys" / "orderer")
        rogue = make_batch(
            network.chain,
            height,
            int(time.time() * 1000),
            [make(777)],
            Fingerprint(orderer.fingerprint),
            orderer.private_key,
        )
        c = next(n for n in peers.nodes.values() if n is not cutter and n is not a)
        c._batches.put(rogue)  # handed to one peer only, as a lying orderer would
        deadline = time.monotonic() + 10
        while c.state.height < height and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.state.height >= height

        honest = a.submit_one(make(2), wait_s=15)  # etcd's batch for the same height
        assert honest.height == height and honest.code == "ok"

        deadline = time.monotonic() + 20
        found: list[dict[str, object]] = []
        while not found and time.monotonic() < deadline:
            assert a.crosscheck is not None
            found = [f for f in a.crosscheck.forks if f["how"] == "orderer_equivocation"]
            time.sleep(0.05)
        assert found, a.crosscheck.forks if a.crosscheck else None
        evidence = found[0]
        ours, theirs = evidence["ours_batch"], evidence["theirs_batch"]
        assert isinstance(ours, dict) and isinstance(theirs, dict)
        assert ours["height"] == theirs["height"] == height
        assert ours["tx_root"] != theirs["tx_root"]
        assert ours["orderer"] == theirs["orderer"] == orderer.fingerprint
        for batch in (ours, theirs):  # both signatures check out offline
            record = a.member(str(batch["orderer"]))
            assert record is not None
            statement = ordering_statement(
                network.chain,
                height,
                int(batch["time"]),
                int(batch["tx_count"]),
                str(batch["tx_root"]),
            )
            signature = base64.b64decode(str(batch["orderer_sig"]))
            assert a.suite.verify(record.public_key, statement, signature)
    finally:
        peers.stop_all()
