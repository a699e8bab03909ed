"""Drugs: commissioning serials, packs' journeys from factory to patient, verification lookups.

Run from the repository root:

    .venv/bin/python benchmarks/drugs.py [--quick] [--serials 10000000]

What it measures (figures as ../shared/BENCHMARKS.md gives them). Packs are
SGTINs of GTIN 09506000134352, GS1's example GTIN
(tests/standards/gs1/testdata/README.md), with a different serial each.

* commission_serials_per_s: sinopharm-mfg/qa-01 commissions serials over the
  REST API, a lot of 5,000 packs (the contract's MAX_ITEMS, in the ``codes``
  form) per signed ``drugs.commission`` transaction, one transaction per POST
  /v1/drugs/commission, ``--commission-threads`` requests in flight, each
  answered once its transaction commits. Serials committed per second from
  the first send to the last answer. Afterwards (node stopped) every serial
  is looked for among the state's ``drugs/pack/`` rows.
* journeys_per_s: packs that go the whole way, each by its own
  transactions: commission (sinopharm-mfg) -> ship to jd-logistics ->
  receive (jd-logistics) -> ship to yf-pharmacy -> receive (yf-pharmacy) ->
  dispense (ph-chen) to the demo's registered patient (a dispense names a
  patient the chain knows; which one does not change the work): 6
  transactions a pack. The regulator first licenses GS1's example company
  prefix to the maker. A step needs the
  one before it committed, so packs travel in waves of ``--wave`` packs:
  for each step the organisation that acts sends one POST
  /v1/transactions/batch?wait=true holding one transaction per pack of the
  wave (what a maker's, wholesaler's or pharmacy chain's system does with
  the day's scans: it sends them in bulk, not pack by pack), and the next
  step's batch goes once the answer says all committed. ``--journey-threads``
  waves are under way at once, each a few steps ahead of or behind the
  others, so at any moment the maker commissions one wave while the
  distributor receives another and the pharmacy dispenses a third, as in a
  supply chain. A journey counts when its dispense has committed ok; every
  pack is then checked to be dispensed at yf-pharmacy.
* verify_lookup_p99_ms: a pharmacist (yf-pharmacy/ph-chen) checks packs over
  the REST API, one signed GET /v1/drugs/pack?code=... at a time, on a node
  holding ``--serials`` commissioned serials (1,000,000 by default): a third
  genuine packs, a third dispensed ones (a copied code), a third serials
  never commissioned (a counterfeit), half scanned as the GS1 Digital Link
  URI their QR code holds, half as the pack key. The answer is what the
  pharmacy's screen shows: the verdict, product, lot, expiry, holder and
  journey; every verdict is checked. Most of these serials are written
  straight into the node's state store while it is stopped (see
  drugs_state.py: exactly the contract's keys and canonical JSON values,
  checked byte for byte against packs that went through real transactions;
  not on the chain), then the node is started on it again. The same lookups
  through ``verdict()`` on the store in process are printed too.

Requests (transactions and the signed HTTP headers) are made before each
timed section: that is the members' machines' work. The node runs as its own
process (``carechain up``) with the solo cutter's default bounds, as in
ledger_throughput.py; only 127.0.0.1 is used and the node is stopped before
the script ends. Figures are medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from drugs_state import (  # noqa: E402
    DISTRIBUTOR,
    PHARMACY,
    PREFIX,
    Pool,
    add_synthetic_packs,
    bench_lookups,
    check_rows,
    new_shipment,
    pack_key,
    plan_lookups,
    real_journey,
    signed,
    time_verdicts,
)
from ledger_throughput import percentile  # noqa: E402
from records import NodeProcess  # noqa: E402
from report import machine, report  # noqa: E402

MAKER_MEMBER = "sinopharm-mfg/qa-01"
DISTRIBUTOR_MEMBER = "jd-logistics/admin"
PHARMACIST = "yf-pharmacy/ph-chen"
PER_COMMISSION = 5000
COMMISSION_PATH = "/v1/drugs/commission?timeout=60"
BATCH_PATH = "/v1/transactions/batch?wait=true&timeout=60"

Request = tuple[str, bytes, dict[str, str]]
"""A POST's path, body and signed headers."""


def expiry_in(days: int) -> tuple[str, str]:
    """A GS1 expiry ``YYMMDD`` ``days`` from today, and the ISO date the contract stores."""
    day = datetime.now(UTC).date() + timedelta(days=days)
    return day.strftime("%y%m%d"), day.isoformat()


def send(conn: http.client.HTTPConnection, request: Request) -> tuple[int, Any]:
    import orjson

    path, body, headers = request
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    answer = response.read()
    try:
        doc = orjson.loads(answer) if answer else {}
    except orjson.JSONDecodeError:
        doc = {"raw": answer[:300]}
    return response.status, doc


def run_threads(threads: int, work: Any) -> None:
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


# -- commissioning -----------------------------------------------------------------------------


def prepare_commission(
    consortium: Any, serials: int, tag: str, expiry: str
) -> list[tuple[Request, int]]:
    """Signed ``drugs.commission`` requests for ``serials`` packs, a lot of 5,000 in each
    (``lot``, ``expiry`` and ``codes``: 5,000 packs as ``packs`` objects would pass the
    256 KiB a transaction may take), and how many each holds."""
    from carechain.api.client import build_transaction

    creds = consortium.members[MAKER_MEMBER]
    requests = []
    for start in range(0, serials, PER_COMMISSION):
        codes = [
            pack_key(f"{tag}{i:08d}") for i in range(start, min(serials, start + PER_COMMISSION))
        ]
        lot = {"lot": f"{tag}{start // PER_COMMISSION}", "expiry": expiry, "codes": codes}
        wire = build_transaction(creds, "demo", "drugs", "commission", lot).wire_bytes()
        requests.append(((COMMISSION_PATH, wire, signed(creds, COMMISSION_PATH, wire)), len(codes)))
    return requests


PATIENT = "pumch:patient-7f3a9c"
"""The demo consortium's patient member: ``drugs.dispense`` refuses a patient not on the chain."""


def license_maker(node: NodeProcess, consortium: Any) -> None:
    """The regulator licenses GS1's example company prefix to the maker (commissioning
    needs it: contracts/drugs.py)."""
    from carechain.api.client import NodeClient, build_transaction

    with NodeClient(node.url, consortium.members["nmpa/admin"]) as c:
        tx = build_transaction(
            c.creds, "demo", "drugs", "license", {"org": "sinopharm-mfg", "gs1_prefix": "9506000"}
        )
        c.request("POST", "/v1/drugs/license", raw_body=tx.wire_bytes())


def commission_run(node: NodeProcess, requests: list[tuple[Request, int]], threads: int) -> float:
    """Send every request, ``threads`` in flight; serials committed per second."""
    queue = [request for request, _ in reversed(requests)]
    counts = {request[1]: n for request, n in requests}  # body -> serials in it
    lock = threading.Lock()
    marks: list[float] = []
    ok = [0]
    failures: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    request = queue.pop()
                start = time.perf_counter()
                status, doc = send(conn, request)
                end = time.perf_counter()
                with lock:
                    marks.extend((start, end))
                    if status == 200 and doc.get("code") == "ok":
                        ok[0] += counts[request[1]]
                    else:
                        failures.append(f"HTTP {status}: {str(doc)[:300]}")
        except Exception as exc:  # reported, and the run fails
            with lock:
                failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    cpu = node.cpu_seconds()
    run_threads(threads, worker)
    cpu = node.cpu_seconds() - cpu
    if failures:
        raise RuntimeError(f"{len(failures)} commission request(s) failed, first: {failures[0]}")
    elapsed = max(marks) - min(marks)
    print(
        f"    {ok[0]:,} serials in {len(requests)} transactions, {elapsed:.2f} s: "
        f"{ok[0] / elapsed:,.0f} serials/s; the node used {cpu / ok[0] * 1e6:.0f} us CPU a serial"
    )
    return ok[0] / elapsed


# -- journeys ----------------------------------------------------------------------------------


class Wave:
    """The six signed batch requests that take ``keys`` from the maker to patients."""

    def __init__(self, consortium: Any, tag: str, count: int, expiry: str) -> None:
        from carechain.api.client import build_transaction

        m = consortium.members
        maker, dist, pharm = m[MAKER_MEMBER], m[DISTRIBUTOR_MEMBER], m[PHARMACIST]
        self.keys = [pack_key(f"{tag}{i:06d}") for i in range(count)]
        self.shipments = [(new_shipment(), new_shipment()) for _ in self.keys]
        self.patients = [PATIENT] * count
        plan: list[tuple[Any, str, list[dict[str, Any]]]] = [
            (maker, "commission", [{"packs": [{"code": k, "lot": tag, "expiry": expiry}]}
                                   for k in self.keys]),
            (maker, "ship", [{"shipment": s[0], "to": DISTRIBUTOR, "items": [k]}
                             for k, s in zip(self.keys, self.shipments, strict=True)]),
            (dist, "receive", [{"shipment": s[0]} for s in self.shipments]),
            (dist, "ship", [{"shipment": s[1], "to": PHARMACY, "items": [k]}
                            for k, s in zip(self.keys, self.shipments, strict=True)]),
            (pharm, "receive", [{"shipment": s[1]} for s in self.shipments]),
            (pharm, "dispense", [{"code": k, "patient": p}
                                 for k, p in zip(self.keys, self.patients, strict=True)]),
        ]  # fmt: skip
        self.steps: list[Request] = []
        for creds, method, args in plan:
            wires = [
                build_transaction(creds, "demo", "drugs", method, a).wire_bytes() for a in args
            ]
            body = b'{"transactions":[' + b",".join(wires) + b"]}"
            self.steps.append((BATCH_PATH, body, signed(creds, BATCH_PATH, body)))


def journey_run(node: NodeProcess, waves: list[Wave], threads: int) -> tuple[float, float]:
    """Walk every wave through its six steps, ``threads`` waves at once; (journeys per
    second, median seconds from a wave's commission to its last dispense)."""
    queue = list(reversed(waves))
    lock = threading.Lock()
    marks: list[float] = []
    spans: list[float] = []
    done = [0]
    failures: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    wave = queue.pop()
                start = time.perf_counter()
                for step, request in enumerate(wave.steps):
                    status, doc = send(conn, request)
                    results = doc.get("results", []) if status == 200 else []
                    bad = [r for r in results if r.get("code") != "ok"]
                    if status != 200 or bad or len(results) != len(wave.keys):
                        raise RuntimeError(
                            f"step {step + 1} of a wave: HTTP {status}, {len(bad)} not ok: "
                            f"{str(bad[:1] or doc)[:300]}"
                        )
                end = time.perf_counter()
                with lock:
                    marks.extend((start, end))
                    spans.append(end - start)
                    done[0] += len(wave.keys)  # every dispense committed ok
        except Exception as exc:  # reported, and the run fails
            with lock:
                failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    cpu = node.cpu_seconds()
    run_threads(threads, worker)
    cpu = node.cpu_seconds() - cpu
    if failures:
        raise RuntimeError(f"{len(failures)} journey wave(s) failed, first: {failures[0]}")
    elapsed = max(marks) - min(marks)
    rate = done[0] / elapsed
    print(
        f"    {done[0]:,} journeys ({6 * done[0]:,} transactions) in {elapsed:.2f} s: "
        f"{rate:,.0f} journeys/s = {6 * rate:,.0f} tx/s; a wave took "
        f"{statistics.median(spans):.2f} s; the node used {cpu / done[0] * 1e6:.0f} us CPU "
        "a journey"
    )
    return rate, statistics.median(spans)


# -- checks (node stopped) ---------------------------------------------------------------------


def check_chain(node_dir: Path, commissioned: list[str], waves: list[Wave]) -> int:
    """Every serial commissioned is on the chain; every journey ended dispensed at the
    pharmacy; the synthetic rows match the node's byte for byte. Returns the pack rows."""
    import orjson

    from carechain.ledger.statestore import StateStore

    state = StateStore(node_dir / "state.sqlite")
    try:
        conn = state._reader()
        on_chain = {
            k[len(PREFIX) + 5 :]
            for (k,) in conn.execute(
                "SELECT key FROM state WHERE key >= ? AND key < ?",
                (f"{PREFIX}pack/", f"{PREFIX}pack0"),
            )
        }
        missing = [k for k in commissioned if k not in on_chain]
        print(
            f"  check: {len(on_chain):,} drugs/pack/ rows; {len(commissioned) - len(missing):,} "
            f"of {len(commissioned):,} serials commissioned are among them"
        )
        if missing:
            raise RuntimeError(
                f"{len(missing)} commissioned serials are missing, e.g. {missing[0]}"
            )
        journeys = dispensed = 0
        for wave in waves:
            for key in wave.keys:
                journeys += 1
                raw = state.get(f"{PREFIX}pack/{key}")
                doc = orjson.loads(raw) if raw else {}
                dispensed += doc.get("status") == "dispensed" and doc.get("owner") == PHARMACY
        print(f"  check: {dispensed:,} of {journeys:,} journeys' packs are dispensed at {PHARMACY}")
        if dispensed != journeys:
            raise RuntimeError(f"only {dispensed} of {journeys} journeys ended dispensed")
        wave = waves[0]
        for i in (0, len(wave.keys) - 1):
            journey = real_journey(state, wave.keys[i], wave.shipments[i], wave.patients[i])
            check_rows(state, journey)
        if commissioned:
            only = real_journey(state, commissioned[0], ("", ""), "")
            check_rows(state, only)
        print("  check: synthetic rows equal the node's for real packs, byte for byte")
        return len(on_chain)
    finally:
        state.close()


TARGETS = {
    "commission_serials_per_s": ("1/s", ">=20000"),
    "journeys_per_s": ("1/s", ">=1000"),
    "verify_lookup_p99_ms": ("ms", "<5"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (under 30 s)")
    parser.add_argument("--runs", type=int, default=3, help="runs (the median is reported)")
    parser.add_argument("--commission", type=int, default=200_000, help="serials per run")
    parser.add_argument("--commission-threads", type=int, default=4, help="requests in flight")
    parser.add_argument("--journeys", type=int, default=8000, help="journeys per run")
    parser.add_argument("--wave", type=int, default=250, help="packs per wave (batch size)")
    parser.add_argument("--journey-threads", type=int, default=8, help="waves under way at once")
    parser.add_argument("--serials", type=int, default=1_000_000, help="serials for lookups")
    parser.add_argument("--lookups", type=int, default=2000, help="lookups per run")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.commission, args.journeys = 3, 15_000, 600
        args.wave, args.journey_threads, args.serials, args.lookups = 100, 4, 50_000, 400

    from carechain.node.consortium import DEMO_CONSORTIUM, create_consortium

    print(machine())
    figures: dict[str, float] = {}
    began = time.perf_counter()
    gs1_expiry, iso_expiry = expiry_in(730)
    work = Path(tempfile.mkdtemp(prefix="cc-drugs-"))
    log = work / "node.log"
    try:
        consortium = create_consortium(DEMO_CONSORTIUM, work / "demo")
        commissioned: list[str] = []
        waves: list[Wave] = []
        with NodeProcess(consortium.node_dir, log) as node:
            license_maker(node, consortium)
            print(
                f"commissioning: {args.runs} runs of {args.commission:,} serials, "
                f"{PER_COMMISSION:,} per transaction, {args.commission_threads} in flight, REST"
            )
            rates = []
            for run in range(args.runs):
                tag = f"C{run}"
                requests = prepare_commission(consortium, args.commission, tag, gs1_expiry)
                rates.append(commission_run(node, requests, args.commission_threads))
                commissioned.extend(pack_key(f"{tag}{i:08d}") for i in range(args.commission))
            figures["commission_serials_per_s"] = statistics.median(rates)
            print(
                f"journeys: {args.runs} runs of {args.journeys:,} packs, 6 transactions each, in "
                f"waves of {args.wave} (one batch a step), {args.journey_threads} waves at once"
            )
            rates = []
            for run in range(args.runs):
                part = [
                    Wave(consortium, f"J{run}W{w:03d}x", args.wave, gs1_expiry)
                    for w in range(args.journeys // args.wave)
                ]
                rate, _ = journey_run(node, part, args.journey_threads)
                rates.append(rate)
                waves.extend(part)
            figures["journeys_per_s"] = statistics.median(rates)
        rows = check_chain(consortium.node_dir, commissioned, waves)
        synthetic = max(0, args.serials - rows)
        print(f"verification lookups: {rows + synthetic:,} serials commissioned in all")
        start = time.perf_counter()
        made = add_synthetic_packs(consortium.node_dir, synthetic, iso_expiry)
        size = sum(f.stat().st_size for f in consortium.node_dir.glob("state.sqlite*")) / 2**20
        print(
            f"  {synthetic:,} synthetic packs written in {time.perf_counter() - start:.1f} s "
            f"({made['rows']:,} rows; the store is {size:,.0f} MiB): {made['packs']:,} "
            "drugs/pack/ rows in all"
        )
        if made["packs"] != rows + synthetic:
            raise RuntimeError(f"{made['packs']} pack rows, expected {rows + synthetic}")
        genuine = Pool(commissioned, made["genuine"])
        dispensed = Pool([k for w in waves for k in w.keys], made["dispensed"])
        with NodeProcess(consortium.node_dir, log) as node:
            print(
                f"  {args.runs} runs of {args.lookups:,} lookups by {PHARMACIST}: GET "
                "/v1/drugs/pack, one at a time, REST"
            )
            lookups = bench_lookups(
                node, consortium.members[PHARMACIST], genuine, dispensed, args.lookups, args.runs
            )
            figures.update(lookups)
        local = time_verdicts(
            consortium.node_dir,
            [(key, want) for _, key, want in plan_lookups(args.lookups, genuine, dispensed, 99)],
        )
        print(
            f"  in process, verdict() on the state store: p50 {statistics.median(local):.3f} ms, "
            f"p99 {percentile(local, 0.99):.3f} ms"
        )
    except RuntimeError as exc:  # a failed run or check: say so, exit non-zero
        if log.exists():
            print("the node's log ends:", *log.read_text().splitlines()[-20:], sep="\n  ")
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"total time {time.perf_counter() - began:.0f} s")
    report("drugs", figures, TARGETS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
