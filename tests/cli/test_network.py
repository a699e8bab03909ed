"""``carechain network up/status/down`` as a newcomer runs them: real processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carechain.api.client import NodeClient, build_transaction
from carechain.identity.wallet import load_credentials


def carechain(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carechain", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def processes_under(root: Path) -> list[int]:
    """Live processes whose command line names a path in ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(root).encode() in argv and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.timeout(240)
def test_network_up_status_down_and_resume(tmp_path: Path) -> None:
    root = tmp_path / "net"
    try:
        started = carechain("network", "up", "--dir", str(root), "--peers", "3")
        assert started.returncode == 0, started.stderr
        assert "cutter" in started.stdout and "leader" in started.stdout
        assert len(processes_under(root)) >= 6  # 3 etcd members and 3 peers
        state = json.loads((root / "network.json").read_text())
        peers = state["peers"]
        assert [p["org"] for p in peers] == ["pumch", "chaoyang-clinic", "yf-pharmacy"]

        doctor = load_credentials(root / "consortium/orgs/pumch/members/dr-wang")
        tx = build_transaction(doctor, "demo", "notary", "anchor", {"digest": "cd" * 32})
        with NodeClient(peers[2]["url"], doctor, timeout=30) as client:  # through a third peer
            result = client.submit(tx, wait=True, timeout=20)
        assert result["code"] == "ok"

        status = carechain("network", "status", "--dir", str(root), "--json")
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["agree"] is True
        assert sum(1 for m in doc["etcd"] if m["leader"]) == 1
        assert sum(1 for p in doc["peers"] if p.get("cutter")) == 1
        heights = {p["org"]: p["height"] for p in doc["peers"]}
        assert heights["yf-pharmacy"] >= result["height"], heights  # the peer it went through

        stopped = carechain("network", "down", "--dir", str(root))
        assert stopped.returncode == 0, stopped.stderr
        pids = [p["pid"] for p in peers] + [m["pid"] for m in state["etcd"]["members"]]
        assert not any(alive(pid) for pid in pids)
        assert not processes_under(root)

        again = carechain("network", "up", "--dir", str(root), "--peers", "2")
        assert again.returncode == 0, again.stderr
        assert "resuming the network" in again.stderr and "3 peers" in again.stderr
        status = json.loads(carechain("network", "status", "--dir", str(root), "--json").stdout)
        assert {p["height"] for p in status["peers"]} == {result["height"]}
    finally:
        carechain("network", "down", "--dir", str(root))
        state_file = root / "network.json"
        if state_file.exists():
            state = json.loads(state_file.read_text())
            for pid in [p["pid"] for p in state["peers"]] + [
                m["pid"] for m in state["etcd"]["members"]
            ]:
                if alive(pid):
                    os.kill(pid, 9)


def test_network_status_without_a_network_says_how_to_start_one(tmp_path: Path) -> None:
    result = carechain("network", "status", "--dir", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "carechain network up" in result.stderr


def test_network_up_refuses_an_even_number_of_etcd_members(tmp_path: Path) -> None:
    result = carechain("network", "up", "--dir", str(tmp_path / "n"), "--etcd-members", "2")
    assert result.returncode == 2
    assert "odd number" in result.stderr


@pytest.mark.timeout(240)
def test_a_peer_that_cannot_start_leaves_nothing_running(tmp_path: Path) -> None:
    import socket

    root = tmp_path / "net"
    try:
        assert carechain("network", "up", "--dir", str(root), "--peers", "2").returncode == 0
        assert carechain("network", "down", "--dir", str(root)).returncode == 0
        state = json.loads((root / "network.json").read_text())
        port = int(state["peers"][1]["url"].rsplit(":", 1)[1])
        with socket.socket() as blocker:  # someone else now holds a peer's port
            blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            blocker.bind(("127.0.0.1", port))
            blocker.listen()
            failed = carechain("network", "up", "--dir", str(root), "--timeout", "30")
        assert failed.returncode == 2
        assert "chaoyang-clinic" in failed.stderr
        assert not processes_under(root)  # no etcd member or peer of this network runs
    finally:
        carechain("network", "down", "--dir", str(root))
