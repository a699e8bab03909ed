"""Fault tests of a consortium: real etcd members and real peer processes on 127.0.0.1.

Each test starts its own etcd cluster (3 members) and peers (``carechain up``
processes), injects one fault with kill -9 or by stopping an etcd member, and
checks what users rely on: everything acknowledged is committed at every peer,
exactly once, and the peers agree on the state digest. Every wait is bounded.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from carechain.api.client import build_transaction
from etcd_support import Load, ProcessNetwork

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ORGS = ["pumch", "chaoyang-clinic", "yf-pharmacy"]


def assert_all_committed_once(net: ProcessNetwork, acknowledged: list[str]) -> None:
    for org, peer in net.peers.items():
        if not peer.running:
            continue
        counts = net.ok_counts(org)
        missing = [t for t in acknowledged if t not in counts]
        assert not missing, f"{org} lacks {len(missing)} acknowledged transactions"
        twice = [t for t, n in counts.items() if n > 1]
        assert not twice, f"{org} committed {len(twice)} transactions twice"


def test_killing_an_etcd_member_under_load_loses_nothing(tmp_path: Path) -> None:
    with ProcessNetwork(tmp_path, ORGS) as net, Load(net, "pumch/dr-wang") as load:
        load.wait_for(100)
        leader = net.etcd.leader()
        victim = next(i for i, s in enumerate(net.etcd.specs) if s.name == leader)
        net.etcd.kill(victim)  # the Raft leader, the worst member to lose
        before = len(load.acknowledged)
        load.wait_for(before + 200, seconds=60)  # writes go on through the other two
        net.etcd.start_member(victim)
        load.wait_for(len(load.acknowledged) + 100, seconds=60)
        load.__exit__()
        health = net.etcd.member_health()
        assert all(m["up"] for m in health), health  # the member rejoined
        top = max(net.status(o)["height"] for o in ORGS)
        net.wait_converged(top)
        assert_all_committed_once(net, load.acknowledged)


def test_killing_the_cutter_hands_cutting_to_another_peer(tmp_path: Path) -> None:
    with ProcessNetwork(tmp_path, ORGS) as net, Load(net, "chaoyang-clinic/dr-zhao") as load:
        load.wait_for(100)
        cutter = net.cutter()
        net.peers[cutter].kill9()
        killed_at = time.monotonic()
        before = len(load.acknowledged)
        load.wait_for(before + 20, seconds=30)
        takeover_s = time.monotonic() - killed_at
        assert takeover_s < 10, f"cutting resumed only after {takeover_s:.1f} s"
        new_cutter = net.cutter()
        assert new_cutter != cutter
        load.wait_for(len(load.acknowledged) + 100)
        load.__exit__()
        net.peers[cutter].start()  # the old cutter comes back and catches up
        top = max(net.status(o)["height"] for o in ORGS if net.peers[o].running)
        net.wait_converged(top)
        assert_all_committed_once(net, load.acknowledged)


def test_a_killed_peer_restarts_and_catches_up(tmp_path: Path) -> None:
    with ProcessNetwork(tmp_path, ORGS) as net, Load(net, "yf-pharmacy/ph-chen") as load:
        load.wait_for(60)
        victim = next(o for o in ORGS if o != net.cutter())
        net.peers[victim].kill9()
        load.wait_for(len(load.acknowledged) + 200)
        load.__exit__()
        net.peers[victim].start()
        top = max(net.status(o)["height"] for o in ORGS)
        statuses = net.wait_converged(top)
        assert len({s["state_digest"] for s in statuses.values()}) == 1
        assert_all_committed_once(net, load.acknowledged)
    verify = subprocess.run(
        [sys.executable, "-m", "carechain", "verify", "--data", str(net.peers[victim].data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_peer_cut_off_from_etcd_catches_up_when_the_cut_ends(tmp_path: Path) -> None:
    # yf-pharmacy talks to etcd member 2 only; stopping that member isolates it.
    with ProcessNetwork(tmp_path, ORGS, endpoints_for={"yf-pharmacy": [2]}) as net:
        doctor = net.network.members["pumch/dr-wang"]

        def anchor(n: int) -> dict[str, object]:
            tx = build_transaction(
                doctor, net.network.chain, "notary", "anchor", {"digest": f"{n:064x}"}
            )
            with net.client("pumch") as c:
                result: dict[str, object] = c.submit(tx, wait=True, timeout=20)
            return result

        assert anchor(1)["code"] == "ok"
        net.etcd.stop_member(2)
        results = [anchor(10 + i) for i in range(5)]
        assert all(r["code"] == "ok" for r in results)
        cut_off = net.status("yf-pharmacy")
        assert cut_off["height"] < results[-1]["height"]  # it could not follow
        net.etcd.start_member(2)
        net.wait_converged(int(results[-1]["height"]))  # type: ignore[call-overload]


def test_duplicate_submission_through_two_peer_processes_commits_once(tmp_path: Path) -> None:
    with ProcessNetwork(tmp_path, ORGS) as net:
        doctor = net.network.members["pumch/dr-wang"]
        tx = build_transaction(doctor, net.network.chain, "notary", "anchor", {"digest": "ee" * 32})
        with net.client("pumch") as a, net.client("yf-pharmacy") as b:
            a.submit(tx)
            b.submit(tx)
            first = a.submit(tx, wait=True, timeout=20)
        assert first["code"] == "ok"
        later = build_transaction(
            doctor, net.network.chain, "notary", "anchor", {"digest": "ef" * 32}
        )
        with net.client("chaoyang-clinic") as c:
            last = c.submit(later, wait=True, timeout=20)
        net.wait_converged(last["height"])
        for org in ORGS:
            assert net.ok_counts(org).get(tx.txid) == 1


def _rewrite_frame(blocks_dir: Path, height: int, edit: bytes, replacement: bytes) -> None:
    """Edit a stored block and fix its frame's checksum, as a careful attacker would."""
    for segment in sorted(blocks_dir.glob("*")):
        data = bytearray(segment.read_bytes())
        pos = 16
        while pos + 20 <= len(data):
            marker, h, length, _ = struct.unpack_from(">4sQII", data, pos)
            start = pos + 20
            payload = bytes(data[start : start + length])
            if h == height and edit in payload:
                new = payload.replace(edit, replacement, 1)
                assert len(new) == len(payload)
                crc = zlib.crc32(new, zlib.crc32(struct.pack(">QI", h, length)))
                struct.pack_into(">4sQII", data, pos, marker, h, length, crc)
                data[start : start + length] = new
                segment.write_bytes(bytes(data))
                return
            pos = start + length
    raise AssertionError(f"block {height} with {edit!r} not found")


def test_a_tampered_peer_is_caught_by_its_own_verify_and_by_the_others(tmp_path: Path) -> None:
    """yf-pharmacy's block file is edited (checksum fixed). Its own verify names the
    block; a new peer that fetches that block from it (etcd no longer keeps it)
    refuses the forged block, reports yf-pharmacy with the block as evidence and
    gets the block from an honest peer instead."""
    orgs = [*ORGS, "sinopharm-mfg"]
    options = {"retain_blocks": 2, "compact_every": 2}
    with ProcessNetwork(tmp_path, orgs, ordering_options=options, start=ORGS) as net:
        doctor = net.network.members["pumch/dr-wang"]
        digest = "ab" * 32

        def anchor(value: str) -> dict[str, int | str]:
            tx = build_transaction(doctor, net.network.chain, "notary", "anchor", {"digest": value})
            with net.client("pumch") as c:
                result: dict[str, int | str] = c.submit(tx, wait=True, timeout=20)
            assert result["code"] == "ok"
            return result

        target = int(anchor(digest)["height"])
        last = int([anchor(f"{n:064x}") for n in range(5)][-1]["height"])
        net.wait_converged(last)

        liar = net.peers["yf-pharmacy"]
        liar.stop()
        _rewrite_frame(liar.data_dir / "blocks", target, digest.encode(), b"cd" * 32)
        audit = subprocess.run(
            [sys.executable, "-m", "carechain", "verify", "--data", str(liar.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert audit.returncode != 0
        assert f"block {target}" in audit.stdout + audit.stderr
        liar.start()  # it runs on, serving what is on its disk

        net.set_peers("sinopharm-mfg", ["yf-pharmacy", "pumch"])  # the liar is asked first
        net.peers["sinopharm-mfg"].start()
        net.wait_converged(last)
        with net.client("sinopharm-mfg") as c:
            forks = c.request("GET", "/v1/forks")["forks"]
        forged = [f for f in forks if f["how"] == "forged_block"]
        assert forged and forged[0]["peer"] == liar.url and forged[0]["height"] == target
        assert "transaction root" in forged[0]["problem"]
