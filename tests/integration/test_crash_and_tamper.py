"""Committed means durable; tampering is caught. Real node processes, real files.

* kill -9 of a running node in the middle of a stream of writes, at many
  points: after restart every acknowledged transaction is there and
  ``carechain verify`` passes.
* A flipped byte anywhere in a block file, or a block edited with its
  checksum recomputed, or an edited state row: ``carechain verify`` fails and
  names the block.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from carechain.api.client import ApiError, NodeClient, build_transaction
from carechain.identity.wallet import Credentials
from carechain.node.config import load_config
from carechain.node.node import Node
from support import free_port, run_verify, start_node

pytestmark = pytest.mark.integration

Member = Callable[[str], Credentials]


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split()
        found.update(int(child) for child in children)
    return found


def writer(
    url: str, creds: Credentials, acked: list[str], stop: threading.Event, seed: int
) -> None:
    """Submit batches and wait for commit; record every acknowledged txid."""
    rng = random.Random(seed)
    with NodeClient(url, creds, timeout=5) as client:
        while not stop.is_set():
            txs = [
                build_transaction(
                    creds, "demo", "notary", "anchor", {"digest": f"{rng.getrandbits(256):064x}"}
                )
                for _ in range(rng.randint(1, 120))
            ]
            try:
                result = client.submit_batch(txs, wait=True, timeout=5)
            except ApiError:
                return  # the node died under us: nothing more is acknowledged
            for item in result["results"]:
                if item.get("status") == "committed":
                    acked.append(item["txid"])


def test_kill_9_at_many_points_loses_nothing_acknowledged(node_dir: Path, member: Member) -> None:
    rng = random.Random(20261122)
    creds = [member("pumch/dr-wang"), member("yf-pharmacy/ph-chen")]
    acked: list[str] = []
    orphans: set[int] = set()
    for round_ in range(6):
        port = free_port()
        proc = start_node(node_dir, port)
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=writer,
                args=(f"http://127.0.0.1:{port}", c, acked, stop, round_ * 10 + i),
            )
            for i, c in enumerate(creds)
        ]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.5))
        workers = children_of(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        orphans.update(workers)
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert len(acked) > 50, "the writers should have had many transactions acknowledged"
    # The node's signature-checking workers end with it, even after kill -9.
    assert orphans, "batches of 48 or more should have started a signature worker"
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in orphans) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in orphans if Path(f"/proc/{pid}").exists()]
    # Every acknowledged transaction survived all the kills.
    with Node(load_config(node_dir)) as node:
        missing = [txid for txid in acked if node.tx_status(txid).status != "committed"]
        assert not missing, f"{len(missing)} acknowledged transactions lost"
    result = run_verify(node_dir)
    assert result.returncode == 0, result.stderr
    assert "OK:" in result.stdout


def _make_blocks(node_dir: Path, member: Member, count: int) -> list[str]:
    doctor = member("pumch/dr-wang")
    txids = []
    with Node(load_config(node_dir)) as node:
        node.start()
        for i in range(count):
            tx = build_transaction(doctor, "demo", "notary", "anchor", {"digest": f"{i + 1:064x}"})
            assert node.submit_one(tx, wait_s=10).code == "ok"
            txids.append(tx.txid)
    return txids


def _segment(node_dir: Path) -> Path:
    (segment,) = sorted((node_dir / "blocks").glob("blocks-*.seg"))
    return segment


def _record_offsets(data: bytes) -> dict[int, tuple[int, int]]:
    """height -> (payload offset, length), walking the documented frame format."""
    offsets, pos = {}, 16
    while pos + 20 <= len(data):
        assert data[pos : pos + 4] == b"CCBK"
        height, length = struct.unpack(">QI", data[pos + 4 : pos + 16])
        offsets[height] = (pos + 20, length)
        pos += 20 + length
    return offsets


def test_flipped_byte_in_any_block_is_named_by_verify(node_dir: Path, member: Member) -> None:
    _make_blocks(node_dir, member, 4)
    segment = _segment(node_dir)
    pristine = segment.read_bytes()
    offsets = _record_offsets(pristine)
    assert run_verify(node_dir).returncode == 0
    rng = random.Random(7)
    for height in sorted(offsets):
        start, length = offsets[height]
        for position in (start - 20 + 5, start + rng.randrange(length)):  # frame and payload
            damaged = bytearray(pristine)
            damaged[position] ^= 0x01
            segment.write_bytes(bytes(damaged))
            result = run_verify(node_dir)
            assert result.returncode != 0
            assert f"block {height}" in result.stderr, (height, position, result.stderr)
    segment.write_bytes(pristine)
    assert run_verify(node_dir).returncode == 0


def test_edited_block_with_recomputed_checksum_is_named(node_dir: Path, member: Member) -> None:
    """A forger who rewrites the frame checksum is still caught by signatures and hashes."""
    _make_blocks(node_dir, member, 3)
    segment = _segment(node_dir)
    data = bytearray(segment.read_bytes())
    start, length = _record_offsets(bytes(data))[2]
    payload = bytes(data[start : start + length])
    forged = payload.replace(f'"digest":"{2:064x}"'.encode(), f'"digest":"{9:064x}"'.encode())
    assert forged != payload and len(forged) == length
    data[start : start + length] = forged
    crc = zlib.crc32(bytes(data[start - 16 : start - 4]) + forged)
    data[start - 4 : start] = struct.pack(">I", crc)
    segment.write_bytes(bytes(data))
    result = run_verify(node_dir)
    assert result.returncode != 0
    assert "block 2" in result.stderr


def test_edited_state_row_is_named_by_verify(node_dir: Path, member: Member) -> None:
    _make_blocks(node_dir, member, 3)
    key = f"notary/anchor/{2:064x}"
    with sqlite3.connect(node_dir / "state.sqlite") as db:
        (value, height) = db.execute(
            "SELECT value, height FROM state WHERE key = ?", (key,)
        ).fetchone()
        tampered = bytearray(value)
        tampered[10] ^= 0x01
        db.execute("UPDATE state SET value = ? WHERE key = ?", (bytes(tampered), key))
    result = run_verify(node_dir)
    assert result.returncode != 0
    assert f"block {height}" in result.stderr and key in result.stderr
