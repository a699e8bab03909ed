"""Helpers for tests of peers ordering through etcd (fixtures in tests/ordering/conftest.py)."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from carechain.api.client import ApiError, NodeClient, build_transaction
from carechain.ledger.transaction import SignedTransaction
from carechain.node.config import load_config
from carechain.node.consortium import DEMO_CONSORTIUM, Consortium, PeerSpec, create_consortium
from carechain.node.etcd_process import EtcdCluster
from carechain.node.node import Node
from carechain.ordering.etcd import EtcdOrderer
from support import Server, free_port

PEERS = ["pumch", "chaoyang-clinic", "yf-pharmacy"]


class Peers:
    def __init__(self, network: Consortium) -> None:
        self.network = network
        self.nodes: dict[str, Node] = {}
        self.servers: dict[str, Server] = {}

    def start(self, org: str, *, serve: bool = False) -> Node:
        """Start a peer in this process; with ``serve``, its REST API on its own port."""
        config = load_config(self.network.peer_dirs[org])
        node = Node(config)
        node.start()
        self.nodes[org] = node
        if serve:
            self.servers[org] = Server(node, config.api_port).__enter__()
        return node

    def stop(self, org: str) -> None:
        server = self.servers.pop(org, None)
        if server is not None:
            server.__exit__()
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


def signer(network: Consortium, name: str = "pumch/dr-wang") -> Callable[[int], SignedTransaction]:
    creds = network.members[name]
    return lambda n: build_transaction(
        creds, network.chain, "notary", "anchor", {"digest": f"{n:064x}"}
    )


# -- peers as real processes ------------------------------------------------------------


class PeerProcess:
    """``carechain up`` for one peer, as its own process (kill -9 means kill -9)."""

    def __init__(self, org: str, data_dir: Path, url: str, log_dir: Path) -> None:
        self.org = org
        self.data_dir = data_dir
        self.url = url
        self.log = log_dir / f"{org}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "carechain", "up", "--data", str(self.data_dir)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"peer {self.org} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"peer {self.org} did not answer:\n{self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ProcessNetwork:
    """etcd members and peer processes on 127.0.0.1, each peer with its own directory."""

    def __init__(
        self,
        base: Path,
        orgs: list[str],
        *,
        etcd_members: int = 3,
        endpoints_for: dict[str, list[int]] | None = None,
        ordering_options: dict[str, int] | None = None,
        start: list[str] | None = None,
    ) -> None:
        self.base = base
        self.etcd = EtcdCluster(base / "etcd", members=etcd_members)
        specs = [PeerSpec(org, free_port()) for org in orgs]
        chain = f"faults-{time.time_ns()}"
        self.network = create_consortium(
            DEMO_CONSORTIUM.replace('chain = "demo"', f'chain = "{chain}"'),
            base / "consortium",
            peers=specs,
            etcd_endpoints=self.etcd.endpoints,
        )
        for org, members in (endpoints_for or {}).items():
            path = self.network.peer_dirs[org] / "node.toml"
            only = ", ".join(f'"{self.etcd.endpoints[i]}"' for i in members)
            text = path.read_text()
            begin = text.index("endpoints = [")
            end = text.index("]", begin) + 1
            path.write_text(text[:begin] + f"endpoints = [{only}]" + text[end:])
        options = "".join(f"{k} = {v}\n" for k, v in (ordering_options or {}).items())
        for data_dir in self.network.peer_dirs.values():
            path = data_dir / "node.toml"
            path.write_text(path.read_text().replace("[ordering]\n", "[ordering]\n" + options))
        self.start_first = start if start is not None else orgs
        (base / "logs").mkdir(exist_ok=True)
        self.peers = {
            spec.org: PeerProcess(
                spec.org,
                self.network.peer_dirs[spec.org],
                f"http://127.0.0.1:{spec.api_port}",
                base / "logs",
            )
            for spec in specs
        }
        self.admin = self.network.members[f"{orgs[0]}/admin"]

    def __enter__(self) -> ProcessNetwork:
        self.etcd.start()
        try:
            for org in self.start_first:
                self.peers[org].start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for peer in self.peers.values():
            peer.stop()
        self.etcd.stop()

    def set_peers(self, org: str, others: list[str]) -> None:
        """Point ``org``'s catch-up at these peers only, in this order."""
        path = self.network.peer_dirs[org] / "node.toml"
        text = path.read_text()
        start = text.index("peers = [")
        end = text.index("]", start) + 1
        urls = ", ".join(f'"{self.peers[o].url}"' for o in others)
        path.write_text(text[:start] + f"peers = [{urls}]" + text[end:])

    def client(self, org: str, timeout: float = 30) -> NodeClient:
        return NodeClient(self.peers[org].url, self.admin, timeout=timeout)

    def status(self, org: str) -> dict[str, Any]:
        with self.client(org, timeout=5) as c:
            doc: dict[str, Any] = c.request("GET", "/v1/status")
            return doc

    def cutter(self, seconds: float = 10) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for org, peer in self.peers.items():
                if peer.running and self.status(org).get("orderer", {}).get("cutter"):
                    return org
            time.sleep(0.1)
        raise AssertionError("no peer is cutting blocks")

    def wait_converged(self, height: int, seconds: float = 30) -> dict[str, dict[str, Any]]:
        """Wait until every running peer is at ``height`` or above with one state digest."""
        deadline = time.monotonic() + seconds
        statuses: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            statuses = {o: self.status(o) for o, p in self.peers.items() if p.running}
            heights = {s["height"] for s in statuses.values()}
            digests = {s["state_digest"] for s in statuses.values()}
            if min(heights) >= height and len(heights) == 1 and len(digests) == 1:
                return statuses
            time.sleep(0.1)
        raise AssertionError(f"peers did not converge at {height}: {statuses}")

    def ok_counts(self, org: str) -> dict[str, int]:
        """txid -> how many times it is in a block with code ok, at one peer."""
        counts: dict[str, int] = {}
        with self.client(org) as c:
            top = c.request("GET", "/v1/status")["height"]
            for height in range(1, top + 1):
                block = c.request("GET", f"/v1/blocks/{height}")
                for tx, result in zip(block["txs"], block["results"], strict=True):
                    if result["code"] == "ok":
                        txid = transaction_id(tx)
                        counts[txid] = counts.get(txid, 0) + 1
        return counts


def transaction_id(envelope: dict[str, Any]) -> str:
    from carechain.ledger.transaction import decode_envelope

    return decode_envelope(envelope).txid


class Load:
    """Pre-signed transactions submitted in batches, round robin over the running peers,
    each batch retried (safely: same transactions) until it is acknowledged."""

    def __init__(self, net: ProcessNetwork, signer_name: str, batch: int = 20) -> None:
        self.net = net
        creds = net.network.members[signer_name]
        self.make = lambda n: build_transaction(
            creds, net.network.chain, "notary", "anchor", {"digest": f"{n:064x}"}
        )
        self.batch = batch
        self.acknowledged: list[str] = []
        self.retries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._counter = itertools.count(1)
        self.failure: BaseException | None = None

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                txs = [self.make(next(self._counter)) for _ in range(self.batch)]
                self._submit_until_acknowledged(txs)
        except BaseException as exc:
            self.failure = exc

    def _submit_until_acknowledged(self, txs: list[SignedTransaction]) -> None:
        body = b'{"transactions":[' + b",".join(t.wire_bytes() for t in txs) + b"]}"
        deadline = time.monotonic() + 60
        attempt = 0
        while time.monotonic() < deadline:
            running = [o for o, p in self.net.peers.items() if p.running]
            org = running[attempt % len(running)]
            attempt += 1
            try:
                with self.net.client(org, timeout=15) as c:
                    doc = c.request(
                        "POST",
                        "/v1/transactions/batch",
                        raw_body=body,
                        params={"wait": True, "timeout": 10},
                    )
            except ApiError:
                self.retries += 1
                time.sleep(0.2)
                continue
            codes = [r.get("code") for r in doc["results"]]
            if codes == ["ok"] * len(txs):
                self.acknowledged.extend(t.txid for t in txs)
                return
            self.retries += 1
            time.sleep(0.2)
        raise AssertionError("a batch was not acknowledged within 60 s")

    def wait_for(self, count: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while len(self.acknowledged) < count and time.monotonic() < deadline:
            if self.failure is not None:
                raise self.failure
            time.sleep(0.05)
        assert len(self.acknowledged) >= count, f"only {len(self.acknowledged)} acknowledged"
