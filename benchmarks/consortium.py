"""Consortium: 3 etcd members and 3 peer processes on this machine, ordering through etcd.

Run from the repository root:

    .venv/bin/python benchmarks/consortium.py [--txs 20000] [--catchup-txs 100000]

What it measures (figures as ../shared/BENCHMARKS.md gives them):

* consortium_committed_tps: client processes submit pre-signed transactions
  (notary anchors from several members) in batches over HTTP, spread over
  the three peers, each batch waiting for its commit at the peer it went to;
  transactions per second from the first submission until *every* peer has
  committed the last block (each peer verifies and executes every block).
* consortium_latency_p50_ms / p99: one transaction at a time, from submitting
  it to one peer until all three peers have committed it (10 s of them).
* catchup_tps: one peer is stopped while ``--catchup-txs`` transactions are
  committed by the others, then started again: transactions per second it
  catches up, from its start until it has the others' height.

All processes listen on 127.0.0.1 and are stopped before the script ends.

To see where a peer's CPU goes, set ``CARECHAIN_BENCH_PYSPY`` to a folder
holding a ``py-spy`` binary (``pip install py-spy``): each peer then runs
under ``py-spy record`` and leaves its samples (collapsed stacks) there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ledger_throughput import THREADS, client_process, percentile, presign  # noqa: E402
from report import machine, report  # noqa: E402

ORGS = ["pumch", "chaoyang-clinic", "yf-pharmacy"]


class Peer:
    def __init__(self, org: str, data_dir: Path, port: int, logs: Path) -> None:
        self.org = org
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{port}"
        self.log = logs / f"{org}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._http: Any = None

    def start(self) -> None:
        command = [sys.executable, "-m", "carechain", "up", "--data", str(self.data_dir)]
        profile_dir = os.environ.get("CARECHAIN_BENCH_PYSPY")
        if profile_dir:  # a py-spy binary's folder: each peer records a flame profile
            out = Path(profile_dir) / f"{self.org}-{time.time_ns()}.txt"
            command = [
                str(Path(profile_dir) / "py-spy"),
                "record",
                "--format",
                "raw",
                "--nonblocking",
                "--rate",
                "100",
                "--subprocesses",
                "-o",
                str(out),
                "--",
                *command,
            ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

    def wait_healthy(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"peer {self.org} exited; see {self.log}")
            if self.height() is not None:
                return
            time.sleep(0.05)
        raise RuntimeError(f"peer {self.org} did not start")

    def height(self) -> int | None:
        """The peer's committed height (one kept-alive connection: a new one per poll
        would cost more than the latency being measured)."""
        import httpx

        if self._http is None:
            self._http = httpx.Client(timeout=2)
        try:
            doc = self._http.get(self.url + "/health").json()
        except (httpx.HTTPError, ValueError):
            return None
        return int(doc["height"])

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.proc is None:
            return
        profiled = (
            _descendants(self.proc.pid)[1:] if os.environ.get("CARECHAIN_BENCH_PYSPY") else []
        )
        if profiled:
            import signal

            self.proc.send_signal(signal.SIGINT)  # py-spy writes its profile on Ctrl-C
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for pid in profiled:  # py-spy leaves the peer it ran: stop it too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)
        self.proc = None


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (a peer's signature-checking worker too)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its running descendants (seconds)."""
    total = 0.0
    for p in _descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_by_group(peers: list[Peer], etcd_pids: list[int]) -> dict[str, float]:
    groups = {p.org: cpu_seconds(p.proc.pid) for p in peers if p.proc is not None}
    groups["etcd (all members)"] = sum(cpu_seconds(pid) for pid in etcd_pids)
    return groups


def wait_all_at(peers: list[Peer], height: int, seconds: float = 300) -> float:
    """Poll until every peer is at ``height``; the time.time() when it was seen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        heights = [p.height() or -1 for p in peers]
        if min(heights) >= height:
            return time.time()
        time.sleep(0.005)
    raise RuntimeError(f"peers did not reach height {height}: {heights}")


def top_height(peers: list[Peer]) -> int:
    return max(p.height() or -1 for p in peers)


def bench_throughput(
    peers: list[Peer],
    consortium: Path,
    wires: list[bytes],
    clients: int,
    batch: int,
    runs: int,
    etcd_pids: list[int],
) -> float:
    identity = str(consortium / "orgs" / "pumch" / "members" / "admin")
    per_run = len(wires) // runs
    rates = []
    first_height = top_height(peers)
    cpu_before = cpu_by_group(peers, etcd_pids)
    for run in range(runs):
        part = wires[run * per_run : (run + 1) * per_run]
        chunks = [part[i : i + batch] for i in range(0, len(part), batch)]
        out: mp.Queue = mp.Queue()
        # Each client process talks to its own peer (round robin over the three).
        procs = [
            mp.Process(
                target=client_process,
                args=(peers[i % len(peers)].url, identity, chunks[i::clients], out),
            )
            for i in range(clients)
        ]
        for p in procs:
            p.start()
        results = [item for _ in procs for item in out.get(timeout=900)]
        for p in procs:
            p.join(timeout=60)
        committed = sum(r[2] for r in results)
        if committed != len(part):
            raise RuntimeError(f"only {committed} of {len(part)} transactions committed ok")
        everywhere = wait_all_at(peers, top_height(peers))
        elapsed = everywhere - min(r[0] for r in results)
        rates.append(committed / elapsed)
        print(
            f"  run {run + 1}: {committed} committed at all {len(peers)} peers in "
            f"{elapsed:.2f} s = {rates[-1]:.0f} tx/s"
        )
    cpu_after = cpu_by_group(peers, etcd_pids)
    total = len(part) * runs
    blocks = top_height(peers) - first_height
    print(f"  {blocks} blocks, {total / max(blocks, 1):.0f} transactions per block on average")
    print("  CPU per transaction (all runs), where the two cores went:")
    for name, after in cpu_after.items():
        used = after - cpu_before.get(name, 0.0)
        print(f"    {name:<20} {used * 1e6 / total:7.0f} us")
    return statistics.median(rates)


def bench_latency(peers: list[Peer], consortium: Path, seconds: float) -> list[float]:
    import secrets

    from carechain.api.client import NodeClient, build_transaction
    from carechain.identity.wallet import load_credentials

    creds = load_credentials(consortium / "orgs" / "pumch" / "members" / "dr-wang")
    chain = json.loads((peers[0].data_dir / "genesis.json").read_text())["chain"]
    latencies = []
    with NodeClient(peers[0].url, creds, timeout=30) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            tx = build_transaction(
                creds, chain, "notary", "anchor", {"digest": secrets.token_hex(32)}
            )
            start = time.time()
            result = client.submit(tx, wait=True, timeout=30)
            if result.get("code") != "ok":
                raise RuntimeError(f"latency transaction failed: {result}")
            done = wait_all_at(peers, int(result["height"]), seconds=30)
            latencies.append((done - start) * 1000)
    return sorted(latencies)


def bench_catchup(peers: list[Peer], consortium: Path, wires: list[bytes], batch: int) -> float:
    late = peers[-1]
    late.stop()
    identity = str(consortium / "orgs" / "pumch" / "members" / "admin")
    chunks = [wires[i : i + batch] for i in range(0, len(wires), batch)]
    out: mp.Queue = mp.Queue()
    procs = [
        mp.Process(target=client_process, args=(peers[i].url, identity, chunks[i::2], out))
        for i in range(2)
    ]
    for p in procs:
        p.start()
    results = [item for _ in procs for item in out.get(timeout=900)]
    for p in procs:
        p.join(timeout=60)
    if sum(r[2] for r in results) != len(wires):
        raise RuntimeError("catch-up load did not commit in full")
    target = top_height(peers[:-1])
    started = time.time()
    late.start()
    late.wait_healthy()
    done = wait_all_at([late], target, seconds=600)
    elapsed = done - started
    print(
        f"  {len(wires)} transactions ({target} blocks in all) caught up in {elapsed:.2f} s, "
        "counting the peer's start"
    )
    return len(wires) / elapsed


TARGETS = {
    "consortium_committed_tps": ("tx/s", ">=3000"),
    "consortium_latency_p50_ms": ("ms", "<250"),
    "consortium_latency_p99_ms": ("ms", "<1000"),
    "catchup_tps": ("tx/s", ">=3000"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=20_000, help="transactions per run")
    parser.add_argument("--runs", type=int, default=3, help="runs (the median is reported)")
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--batch", type=int, default=250, help="transactions per request")
    parser.add_argument("--catchup-txs", type=int, default=100_000)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    args = parser.parse_args()

    from carechain.node.consortium import DEMO_CONSORTIUM, PeerSpec, create_consortium
    from carechain.node.etcd_process import EtcdCluster
    from carechain.node.peers import Checkpoint  # noqa: F401 - fail early if the tree is broken

    print(machine("; 3 etcd members and 3 peers share it"))
    work = Path(tempfile.mkdtemp(prefix="cc-consortium-"))
    figures: dict[str, float] = {}
    cluster = EtcdCluster(work / "etcd", members=3)
    peers: list[Peer] = []
    try:
        from carechain.node.ports import free_ports

        ports = free_ports(len(ORGS))
        consortium = create_consortium(
            DEMO_CONSORTIUM,
            work / "demo",
            peers=[PeerSpec(org, port) for org, port in zip(ORGS, ports, strict=True)],
            etcd_endpoints=cluster.endpoints,
            max_txn_ops=cluster.max_txn_ops,
        )
        (work / "logs").mkdir()
        peers = [
            Peer(org, consortium.peer_dirs[org], port, work / "logs")
            for org, port in zip(ORGS, ports, strict=True)
        ]
        print(f"signing {args.txs * args.runs + args.catchup_txs:,} transactions")
        wires = presign(consortium.directory, args.txs * args.runs + args.catchup_txs)
        cluster.start()
        for peer in peers:
            peer.start()
        for peer in peers:
            peer.wait_healthy()
        print(
            f"throughput: {args.runs} runs of {args.txs} transactions, {args.clients} client "
            f"processes x {THREADS} threads, {args.batch} per request, spread over the peers"
        )
        figures["consortium_committed_tps"] = bench_throughput(
            peers,
            consortium.directory,
            wires[: args.txs * args.runs],
            args.clients,
            args.batch,
            args.runs,
            list(cluster.pids.values()),
        )
        light = bench_latency(peers, consortium.directory, args.latency_seconds)
        print(
            f"latency: {len(light)} transactions one at a time, submit to committed at all "
            f"peers: p50 {statistics.median(light):.1f} ms, p99 {percentile(light, 0.99):.1f} ms"
        )
        figures["consortium_latency_p50_ms"] = statistics.median(light)
        figures["consortium_latency_p99_ms"] = percentile(light, 0.99)
        print(f"catch-up: {args.catchup_txs} transactions while one peer is stopped")
        figures["catchup_tps"] = bench_catchup(
            peers, consortium.directory, wires[args.txs * args.runs :], args.batch
        )
    finally:
        for peer in peers:
            peer.stop()
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    report("consortium", figures, TARGETS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
