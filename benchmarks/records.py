"""Records: consented reads, record writes and consent checks.

Run from the repository root:

    .venv/bin/python benchmarks/records.py [--quick] [--patients 100000 --consents 1000000]

What it measures (figures as ../shared/BENCHMARKS.md gives them):

* consented_read_p50_ms / p99: dr-zhao (a clinician of chaoyang-clinic) reads
  records that pumch holds for its patient, under the patient's consent to
  the clinic, over the REST API, one read at a time. Each read is a signed
  GET; the node commits a ``records.access`` event (the contract checks the
  reader's signature and the consent) before it opens the record from its
  vault and serves it; the client then checks the served bytes against the
  fingerprint on the chain. The node runs with the solo cutter's default
  bounds (a block is cut after at most 50 ms), which a read waits for.
* record_writes_per_s: dr-wang (pumch) adds 2 KB FHIR R4 Observations over
  the REST API, 50 records per request: a FHIR Bundle import, one
  ``records.add`` transaction each, 2 client processes x 4 threads (8
  Bundles in flight). Batched as ledger_throughput.py's committed_tps is.
  Requests (resources, salts, signed transaction and signed HTTP headers)
  are made before the timed section: that is the clinic's machine's work.
  Timed from the first send to the last commit answer. The node validates
  every FHIR resource (in its worker process for a large request), checks
  each fingerprint, stores the records encrypted in the vault (fsynced),
  commits the transaction and marks the vault entries committed (fsynced)
  before it answers.
* record_writes_single_per_s (not in BENCHMARKS.md's table; same target):
  the same with ONE record per request, its own transaction, from 2 processes
  x 20 threads (40 requests in flight: the node runs at most 40 at once, on
  anyio's worker threads, each held until its transaction commits): what a
  clinician's system adding records one by one gets. Afterwards every record
  of both runs is checked to be on the chain and committed in the vault.
* consent_checks_per_s: ``consent.decide`` (what the records contract and
  the node both call) for random (reader, patient, record, purpose) lookups,
  a mix of granted and refused, reading a real SQLite state store that holds
  ``--patients`` patients and ``--consents`` consents. The state is written
  straight into the store as synthetic blocks of state writes through
  ``StateStore.commit_block`` (no transactions: a million ``grant_consent``
  transactions would take longer than the benchmark may), with exactly the
  keys and canonical JSON values the records contract writes. One thread.
  (benchmarks/consent_state.py builds the state and times the checks.)

The node runs as its own process (``carechain up``), as in
ledger_throughput.py, so that the clients do not share its interpreter; only
127.0.0.1 is used, and the node is stopped before the script ends.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from consent_state import bench_consent_checks  # noqa: E402
from ledger_throughput import free_port, percentile, wait_healthy  # noqa: E402
from report import machine, report  # noqa: E402

PATIENT = "pumch:patient-7f3a9c"
WRITER = "pumch/dr-wang"
READER = "chaoyang-clinic/dr-zhao"
PATIENT_MEMBER = "pumch/patient-7f3a9c"
# The FHIR R4 specification's own Observation example (Body Weight), stored byte for byte:
# https://hl7.org/fhir/R4/observation-example.json.html (tests/standards/fhir/testdata/README.md).
EXAMPLE = (
    ROOT / "tests" / "standards" / "fhir" / "testdata" / "examples" / "observation-example.json"
)
RECORD_BYTES = 2048
DAY_MS = 24 * 3600 * 1000

# -- 2 KB FHIR Observations ----------------------------------------------------------------


def _compact(doc: dict[str, Any]) -> bytes:
    """Compact JSON, as ``parse_bundle`` re-encodes a Bundle's entries (so a record's
    bytes are the same whether it arrives alone or in a Bundle)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def observations(count: int, tag: str) -> list[bytes]:
    """``count`` different Observations of exactly ``RECORD_BYTES`` bytes each.

    Each is the specification's example with its own id, weight and effective
    date, and a note padded so that the whole resource is 2,048 bytes; all
    stay valid FHIR R4 (``parse_resource`` checks every one when prepared).
    """
    base = json.loads(EXAMPLE.read_bytes())
    made = []
    for i in range(count):
        doc = dict(base)
        doc["id"] = f"bench-{tag}-{i}"
        doc["effectiveDateTime"] = f"2016-{1 + i % 12:02d}-{1 + i % 28:02d}"
        doc["valueQuantity"] = dict(base["valueQuantity"], value=120 + i % 97)
        doc["note"] = [{"text": ""}]
        short = len(_compact(doc))
        filler = f"Weighed at the ward, sample {tag}-{i}. " * 40
        doc["note"] = [{"text": filler[: RECORD_BYTES - short]}]
        raw = _compact(doc)
        if len(raw) != RECORD_BYTES:
            raise RuntimeError(f"observation {i} is {len(raw)} bytes, not {RECORD_BYTES}")
        made.append(raw)
    return made


# -- the node ------------------------------------------------------------------------------


class NodeProcess:
    """The embedded node and its REST API (``carechain up``) on a free 127.0.0.1 port."""

    def __init__(self, node_dir: Path, log: Path) -> None:
        self.node_dir = node_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        command = ["-m", "carechain", "up", "--data", str(node_dir), "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [sys.executable, *command],
            stdout=self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )

    def __enter__(self) -> NodeProcess:
        try:
            wait_healthy(self.url, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def cpu_seconds(self) -> float:
        from consortium import cpu_seconds

        return cpu_seconds(self.proc.pid)


# -- consented reads -----------------------------------------------------------------------


def bench_reads(consortium: Any, url: str, reads: int, records: int) -> dict[str, float]:
    """dr-zhao reads pumch's records one at a time under the patient's consent (ms)."""
    from carechain.api.client import NodeClient, new_consent_id

    members = consortium.members
    with (
        NodeClient(url, members[WRITER]) as wang,
        NodeClient(url, members[PATIENT_MEMBER]) as patient,
        NodeClient(url, members[READER]) as zhao,
    ):
        added = wang.add_records(PATIENT, observations(records, "read"))
        if added.get("code") != "ok":
            raise RuntimeError(f"adding the records to read failed: {added}")
        consent = new_consent_id()
        granted = patient.grant_consent(
            {
                "consent": consent,
                "grantee": "chaoyang-clinic",
                "purposes": ["treatment"],
                "types": ["Observation"],
                "end": int(time.time() * 1000) + 30 * DAY_MS,
            }
        )
        if granted.get("code") != "ok":
            raise RuntimeError(f"granting consent failed: {granted}")
        ids = added["records"]
        for record_id in ids[:5]:  # warm-up, not counted
            zhao.read_record(record_id)
        latencies = []
        for i in range(reads):
            start = time.perf_counter()
            doc = zhao.read_record(ids[i % len(ids)])  # checks the fingerprint
            latencies.append((time.perf_counter() - start) * 1000)
            if doc["access"]["basis"] != f"consent:{consent}":
                raise RuntimeError(f"read {i} was granted on {doc['access']['basis']!r}")
        log = patient.access_log(PATIENT, limit=1000)["events"]
    ok = sum(1 for e in log if e["reader_org"] == "chaoyang-clinic" and e["outcome"] == "granted")
    if ok < min(reads + 5, 1000):
        raise RuntimeError(f"only {ok} granted access events on the chain for {reads + 5} reads")
    latencies.sort()
    print(
        f"  {reads} reads of {len(ids)} records: p50 {statistics.median(latencies):.1f} ms, "
        f"p90 {percentile(latencies, 0.90):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
        f"max {latencies[-1]:.1f} ms; every read has its access event on the chain"
    )
    return {
        "consented_read_p50_ms": statistics.median(latencies),
        "consented_read_p99_ms": percentile(latencies, 0.99),
    }


# -- record writes -------------------------------------------------------------------------

Request = tuple[bytes, dict[str, str]]
"""A POST /v1/records body and its signed headers."""


def prepare_writes(
    consortium: Any, count: int, per_request: int, tag: str
) -> tuple[list[Request], list[str]]:
    """Signed requests adding ``count`` records, ``per_request`` in each; their record ids."""
    import orjson

    from carechain.api.auth import sign_request
    from carechain.api.client import bundle_records, prepare_records
    from carechain.crypto.suite import DEFAULT

    creds = consortium.members[WRITER]
    resources = observations(count, tag)
    requests: list[Request] = []
    ids: list[str] = []
    path = "/v1/records?timeout=60"
    for start in range(0, count, per_request):
        group = resources[start : start + per_request]
        if per_request > 1:  # arrives as a FHIR Bundle; the client splits it into records
            bundle = {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": json.loads(r)} for r in group],
            }
            entries, skipped = bundle_records(_compact(bundle))
            if skipped or entries != group:
                raise RuntimeError("the Bundle's entries are not the records put in it")
        items, tx = prepare_records(creds, "demo", PATIENT, group)
        body = orjson.dumps({"records": items, "transaction": tx.to_json()})
        headers = sign_request(DEFAULT, creds.private_key, creds.fingerprint, "POST", path, body)
        headers["content-type"] = "application/json"
        requests.append((body, headers))
        ids.extend(r["record"] for r in tx.body.args["records"])
    return requests, ids


def write_client(port: int, requests: list[Request], threads: int, out: Any) -> None:
    """Send ``requests`` from ``threads`` threads (keep-alive, stdlib HTTP: a lean client).

    Puts (first send, last answer, records committed ok, failures, latencies) on ``out``.
    """
    import orjson

    queue = list(reversed(requests))
    lock = threading.Lock()
    marks: list[float] = []
    latencies: list[float] = []
    ok = [0]
    failures: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    body, headers = queue.pop()
                start = time.time()
                conn.request("POST", "/v1/records?timeout=60", body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                end = time.time()
                doc = orjson.loads(answer) if answer else {}
                with lock:
                    marks.extend((start, end))
                    latencies.append((end - start) * 1000)
                    if response.status == 200 and doc.get("code") == "ok":
                        ok[0] += len(doc["records"])
                    else:
                        failures.append(f"HTTP {response.status}: {answer[:300]!r}")
        except Exception as exc:  # reported, and the run fails
            with lock:
                failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((min(marks, default=0.0), max(marks, default=0.0), ok[0], failures, latencies))


def write_run(
    node: NodeProcess, requests: list[Request], records: int, clients: int, threads: int
) -> tuple[float, float, float]:
    """One timed run; (records per second, node CPU seconds per record, request p50 ms)."""
    out: mp.Queue[Any] = mp.Queue()
    procs = [
        mp.Process(
            target=write_client, args=(node.port, requests[i::clients], threads, out), daemon=True
        )
        for i in range(clients)
    ]
    cpu_before = node.cpu_seconds()
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    cpu = node.cpu_seconds() - cpu_before
    failures = [f for r in results for f in r[3]]
    if failures:
        raise RuntimeError(f"{len(failures)} write request(s) failed, first: {failures[0]}")
    committed = sum(r[2] for r in results)
    if committed != records:
        raise RuntimeError(f"only {committed} of {records} records committed ok")
    elapsed = max(r[1] for r in results) - min(r[0] for r in results if r[0])
    latency = statistics.median(x for r in results for x in r[4])
    return committed / elapsed, cpu / committed, latency


def bench_writes(
    consortium: Any,
    node: NodeProcess,
    name: str,
    count: int,
    per_request: int,
    runs: int,
    clients: int,
    threads: int,
) -> tuple[float, list[str]]:
    rates, written = [], []
    for run in range(runs):
        requests, ids = prepare_writes(consortium, count, per_request, f"{name}{run}")
        rate, cpu, latency = write_run(node, requests, count, clients, threads)
        rates.append(rate)
        written.extend(ids)
        print(
            f"  run {run + 1}: {count} records in {len(requests)} requests, {rate:.0f} "
            f"records/s; request p50 {latency:.0f} ms; the node used {cpu * 1e6:.0f} us CPU "
            "per record"
        )
    return statistics.median(rates), written


def check_written(node_dir: Path, ids: list[str]) -> None:
    """Every record written is on the chain and committed in the vault (node stopped)."""
    import orjson

    from carechain.crypto.suite import DEFAULT
    from carechain.ledger.statestore import StateStore
    from carechain.vault import Vault

    state = StateStore(node_dir / "state.sqlite")
    vault = Vault(node_dir / "vault", DEFAULT)
    try:
        on_chain = in_vault = 0
        for record_id in ids:
            raw = state.get(f"records/record/{record_id}")
            doc = None if raw is None else orjson.loads(raw)
            entry = vault.entry(record_id)
            if doc is not None and doc["status"] == "active" and doc["patient"] == PATIENT:
                on_chain += 1
                if entry is not None and entry.status == "committed":
                    in_vault += entry.fingerprint == doc["fingerprint"]
    finally:
        vault.close()
        state.close()
    print(f"  check: {on_chain} of {len(ids)} records on the chain, {in_vault} in the vault")
    if on_chain != len(ids) or in_vault != len(ids):
        raise RuntimeError(
            f"of {len(ids)} records written, {on_chain} are on the chain and {in_vault} "
            "committed in the vault with the chain's fingerprint"
        )


TARGETS = {
    "consented_read_p50_ms": ("ms", "<60"),
    "consented_read_p99_ms": ("ms", "<150"),
    "record_writes_per_s": ("1/s", ">=2000"),
    "record_writes_single_per_s": ("1/s", ">=2000"),
    "consent_checks_per_s": ("1/s", ">=50000"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (small numbers)")
    parser.add_argument("--reads", type=int, default=300, help="consented reads timed")
    parser.add_argument("--writes", type=int, default=4000, help="records per write run")
    parser.add_argument("--bundled-writes", type=int, default=15000, help="per bundled run")
    parser.add_argument("--runs", type=int, default=3, help="runs (the median is reported)")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=20,
        help="threads per client process (the default puts 40 requests in flight: the node "
        "runs at most 40 at once, on anyio's default worker threads; more only queue)",
    )
    parser.add_argument(
        "--bundle-threads", type=int, default=4, help="threads per client, bundled writes"
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--consents", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=50_000, help="consent checks per run")
    args = parser.parse_args()
    if args.quick:
        args.reads, args.writes, args.bundled_writes, args.runs = 40, 500, 1000, 2
        args.patients, args.consents, args.checks = 2000, 20_000, 5000

    from carechain.node.consortium import DEMO_CONSORTIUM, create_consortium

    print(machine())
    figures: dict[str, float] = {}
    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="cc-records-"))
    try:
        consortium = create_consortium(DEMO_CONSORTIUM, work / "demo")
        written: list[str] = []
        with NodeProcess(consortium.node_dir, work / "node.log") as node:
            print(f"consented reads: {args.reads} reads by {READER}, one at a time, REST")
            figures.update(bench_reads(consortium, node.url, args.reads, 20))
            print(
                f"record writes: {args.runs} runs of {args.writes} 2 KB Observations, one per "
                f"request, {args.clients} client processes x {args.threads} threads, REST"
            )
            rate, ids = bench_writes(
                consortium, node, "w", args.writes, 1, args.runs, args.clients, args.threads
            )
            figures["record_writes_single_per_s"] = rate
            written.extend(ids)
            print(
                f"bundled writes: {args.runs} runs of {args.bundled_writes} records, 50 per "
                f"request (a Bundle import, one transaction each), {args.clients} client "
                f"processes x {args.bundle_threads} threads"
            )
            rate, ids = bench_writes(
                consortium,
                node,
                "b",
                args.bundled_writes,
                50,
                args.runs,
                args.clients,
                args.bundle_threads,
            )
            figures["record_writes_per_s"] = rate
            written.extend(ids)
        check_written(consortium.node_dir, written)
        print(
            f"consent checks: {args.patients:,} patients, {args.consents:,} consents, "
            f"{args.runs} runs of {args.checks:,} lookups"
        )
        figures.update(bench_consent_checks(args.patients, args.consents, args.checks, args.runs))
    except RuntimeError as exc:  # a failed run or check: say so, exit non-zero
        log = work / "node.log"
        if log.exists():
            print("the node's log ends:", *log.read_text().splitlines()[-20:], sep="\n  ")
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"total time {time.perf_counter() - began:.0f} s")
    report("records", figures, TARGETS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
