"""Ledger throughput: committed tx/s over the REST API, commit latency, pipeline, verify, proofs.

Run from the repository root:

    .venv/bin/python benchmarks/ledger_throughput.py [--txs 40000] [--clients 2]

What it measures (figures as ../shared/BENCHMARKS.md gives them):

* committed_tps: client processes submit pre-signed transactions (notary
  anchors from several members) in batches over HTTP to an embedded node
  running as its own process (``carechain up``), each batch waiting for its
  commit; committed transactions per second from the first submission to the
  last commit. Every transaction's signature is checked, the contract runs and
  each block is fsynced before it counts.
* commit_latency_p50_ms / p99: from submitting one transaction to the answer
  that it committed, one client sending one transaction at a time for 10 s
  after the throughput run (the figure a clinician's screen waits for). The
  latency of whole batches under full load is printed too: under saturation
  it is the backlog divided by the throughput, not a property of the node.
* pipeline_tps: the same work handed to the node in process (no HTTP).
* verify_tps: ``carechain verify`` over the resulting ledger (full replay).
* proof_build_ms / proof_verify_ms: inclusion proofs in a ledger tree of
  1,000,000 transactions kept in the node's SQLite state store (median).

Only 127.0.0.1 is used; every server is stopped before the script ends.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from report import machine, report

ROOT = Path(__file__).resolve().parent.parent
THREADS = int(os.environ.get("CC_BENCH_THREADS", "4"))
SIGNERS = ["pumch/dr-wang", "chaoyang-clinic/dr-zhao", "yf-pharmacy/ph-chen", "nmpa/auditor-01"]


def presign(consortium: Path, count: int) -> list[bytes]:
    """Wire bytes of ``count`` signed notary anchors, spread over several members."""
    from carechain.api.client import build_transaction
    from carechain.identity.wallet import load_credentials

    creds = [
        load_credentials(consortium / "orgs" / s.split("/")[0] / "members" / s.split("/")[1])
        for s in SIGNERS
    ]
    return [
        build_transaction(
            creds[i % len(creds)],
            "demo",
            "notary",
            "anchor",
            {"digest": secrets.token_hex(32), "reference": f"bench-{i}"},
        ).wire_bytes()
        for i in range(count)
    ]


def client_process(url: str, identity: str, batches: list[list[bytes]], out: mp.Queue) -> None:
    """Submit batches (several in flight via threads); report (start, end, n_ok) per batch."""
    from carechain.api.client import NodeClient
    from carechain.identity.wallet import load_credentials

    creds = load_credentials(identity)
    results: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    queue = list(batches)

    def worker() -> None:
        with NodeClient(url, creds, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    batch = queue.pop()
                body = b'{"transactions":[' + b",".join(batch) + b"]}"
                start = time.time()
                doc = client.request(
                    "POST",
                    "/v1/transactions/batch",
                    raw_body=body,
                    params={"wait": True, "timeout": 60},
                )
                end = time.time()
                ok = sum(1 for r in doc["results"] if r.get("code") == "ok")
                with lock:
                    results.append((start, end, ok))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(results)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the node exited during start-up")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the node did not start")


def free_port() -> int:
    """A free port below the ephemeral range (``carechain.node.ports``)."""
    from carechain.node.ports import free_ports

    return free_ports(1)[0]


def light_load_latencies(consortium: Path, url: str, seconds: float) -> list[float]:
    """One client, one transaction at a time, each waiting for its commit (ms)."""
    from carechain.api.client import NodeClient, build_transaction
    from carechain.identity.wallet import load_credentials

    creds = load_credentials(consortium / "orgs" / "pumch" / "members" / "dr-wang")
    latencies = []
    with NodeClient(url, creds, timeout=30) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            tx = build_transaction(
                creds, "demo", "notary", "anchor", {"digest": secrets.token_hex(32)}
            )
            start = time.perf_counter()
            result = client.submit(tx, wait=True, timeout=30)
            latencies.append((time.perf_counter() - start) * 1000)
            if result.get("code") != "ok":
                raise RuntimeError(f"light-load transaction failed: {result}")
    return sorted(latencies)


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))]


def bench_rest(
    consortium: Path, txs: int, clients: int, batch: int, runs: int, latency_seconds: float = 10.0
) -> dict[str, float]:
    node_dir = consortium / "node"
    wires = presign(consortium, txs * runs)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (consortium / "node.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "carechain", "up", "--data", str(node_dir), "--port", str(port)],
        stdout=log,
        stderr=log,
    )
    rates: list[float] = []
    loaded: list[float] = []
    try:
        wait_healthy(url, proc)
        identity = str(consortium / "orgs" / "pumch" / "members" / "admin")
        per_run = len(wires) // runs
        for run in range(runs):
            part = wires[run * per_run : (run + 1) * per_run]
            chunks = [part[i : i + batch] for i in range(0, len(part), batch)]
            out: mp.Queue = mp.Queue()
            procs = [
                mp.Process(target=client_process, args=(url, identity, chunks[i::clients], out))
                for i in range(clients)
            ]
            for p in procs:
                p.start()
            results = [item for _ in procs for item in out.get(timeout=600)]
            for p in procs:
                p.join(timeout=60)
            committed = sum(r[2] for r in results)
            if committed != len(part):
                raise RuntimeError(f"only {committed} of {len(part)} transactions committed ok")
            elapsed = max(r[1] for r in results) - min(r[0] for r in results)
            rates.append(committed / elapsed)
            loaded.extend((end - start) * 1000 for start, end, _ in results)
            print(
                f"  run {run + 1}: {committed} committed in {elapsed:.2f} s = {rates[-1]:.0f} tx/s"
            )
        light = light_load_latencies(consortium, url, seconds=latency_seconds)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    loaded.sort()
    print(
        f"  under full load ({clients * THREADS * batch} transactions in flight), per request: "
        f"p50 {statistics.median(loaded):.0f} ms, p99 {percentile(loaded, 0.99):.0f} ms"
    )
    print(
        f"  light load ({len(light)} transactions one at a time): "
        f"p50 {statistics.median(light):.1f} ms, p99 {percentile(light, 0.99):.1f} ms"
    )
    return {
        "committed_tps": statistics.median(rates),
        "commit_latency_p50_ms": statistics.median(light),
        "commit_latency_p99_ms": percentile(light, 0.99),
    }


def bench_pipeline(consortium: Path, txs: int) -> dict[str, float]:
    from carechain.ledger.transaction import decode_envelope_bytes
    from carechain.node.config import load_config
    from carechain.node.node import Node

    work = Path(tempfile.mkdtemp(prefix="cc-pipeline-"))
    try:
        shutil.copytree(
            consortium / "node",
            work / "node",
            ignore=shutil.ignore_patterns("blocks", "state.sqlite*"),
        )
        decoded = [decode_envelope_bytes(w, canonical=True) for w in presign(consortium, txs)]
        with Node(load_config(work / "node")) as node:
            node.start()
            start = time.perf_counter()
            events = []
            for i in range(0, len(decoded), 1000):
                events.extend(node.submit(decoded[i : i + 1000]))
            for event in events:
                event.wait(120)  # type: ignore[union-attr]
            elapsed = time.perf_counter() - start
            ok = sum(1 for tx in decoded if node.tx_status(tx.txid).code == "ok")
        if ok != txs:
            raise RuntimeError(f"pipeline: only {ok} of {txs} committed ok")
        return {"pipeline_tps": txs / elapsed}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_verify(node_dir: Path) -> dict[str, float]:
    from carechain.node.verify import verify_ledger

    report = verify_ledger(node_dir)
    return {"verify_tps": report.tx_per_second}


def bench_proofs(leaves: int) -> dict[str, float]:
    from carechain.crypto.suite import DEFAULT
    from carechain.ledger.merkle import Hasher, MerkleTree, verify_inclusion
    from carechain.ledger.statestore import SqliteNodeStore, StateStore

    work = Path(tempfile.mkdtemp(prefix="cc-proofs-"))
    try:
        state = StateStore(work / "state.sqlite")
        state.bind_writer()
        hasher = Hasher(DEFAULT.hash)
        store = SqliteNodeStore(state)
        tree = MerkleTree(hasher, store, 0)
        step = 50_000
        for start in range(0, leaves, step):
            tree.append_leaf_hashes(
                [
                    hasher.hash_leaf(i.to_bytes(8, "big"))
                    for i in range(start, min(start + step, leaves))
                ]
            )
            nodes = store.take_pending()
            state._writer.execute("BEGIN")
            state._writer.executemany("INSERT INTO tree_nodes VALUES (?, ?, ?)", nodes)
            state._writer.execute("COMMIT")
        root = tree.root()
        reader = MerkleTree(hasher, SqliteNodeStore(state), leaves)
        rng = __import__("random").Random(1)
        build, check = [], []
        for _ in range(500):
            index = rng.randrange(leaves)
            t0 = time.perf_counter()
            proof = reader.inclusion_proof(index, leaves)
            t1 = time.perf_counter()
            verify_inclusion(
                hasher, index, leaves, hasher.hash_leaf(index.to_bytes(8, "big")), proof, root
            )
            t2 = time.perf_counter()
            build.append((t1 - t0) * 1000)
            check.append((t2 - t1) * 1000)
        state.close()
        return {
            "proof_build_ms": statistics.median(build),
            "proof_verify_ms": statistics.median(check),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


TARGETS = {
    "committed_tps": ("tx/s", ">=5000"),
    "pipeline_tps": ("tx/s", ">=5000"),
    "commit_latency_p50_ms": ("ms", "<100"),
    "commit_latency_p99_ms": ("ms", "<1000"),
    "verify_tps": ("tx/s", ">=5000"),
    "proof_build_ms": ("ms", "<1"),
    "proof_verify_ms": ("ms", "<1"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=30_000, help="transactions per REST run")
    parser.add_argument("--pipeline-txs", type=int, default=40_000)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--batch", type=int, default=250, help="transactions per request")
    parser.add_argument("--runs", type=int, default=3, help="REST runs (the median is reported)")
    parser.add_argument("--proof-leaves", type=int, default=1_000_000)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from carechain.node.consortium import DEMO_CONSORTIUM, create_consortium

    print(machine())
    figures: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="cc-bench-"))
    try:
        consortium = work / "demo"
        create_consortium(DEMO_CONSORTIUM, consortium)
        print(
            f"REST: {args.runs} runs of {args.txs} pre-signed transactions, {args.clients} "
            f"client processes x {THREADS} threads, {args.batch} per request, each request "
            "waiting for its commit"
        )
        figures.update(bench_rest(consortium, args.txs, args.clients, args.batch, args.runs))
        print("verify: full replay of the ledger just written")
        figures.update(bench_verify(consortium / "node"))
        print(f"pipeline: {args.pipeline_txs} transactions handed to the node in process")
        figures.update(bench_pipeline(consortium, args.pipeline_txs))
        print(f"proofs: inclusion proofs in a tree of {args.proof_leaves:,} transactions (SQLite)")
        figures.update(bench_proofs(args.proof_leaves))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report("ledger_throughput", figures, TARGETS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
