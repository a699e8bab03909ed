"""Finance: transfers between organisations, claims adjudicated and settled, money conserved.

Run from the repository root:

    .venv/bin/python benchmarks/finance.py [--quick] [--patients 100000 --prior-claims 1000000]

What it measures (figures as ../shared/BENCHMARKS.md gives them):

* transfers_per_s: icbc (the demo's bank) first issues CNY to eight organisations
  (hospital, clinic, pharmacy, distributor, insurer, sponsor, maker, regulator) by
  real ``payments.issue`` transactions; then client processes (``--clients`` x
  ``--threads``) submit pre-signed ``payments.transfer`` transactions, each from one of
  them (its admin signs) to another, 0.01 to 9.97 yuan (never enough to overdraw), in
  POSTs /v1/transactions/batch?wait=true of ``--batch``, each answered once its
  transactions commit. Transfers committed ok per second from the first send to the
  last answer; every one must commit with code ok.
* claims_per_s: claims adjudicated and settled per second. The state holds
  ``--patients`` covered patients (100,000) and ``--prior-claims`` earlier claims
  (1,000,000) of theirs, written straight into the stopped node's state store
  (finance_state.py: the prior claims made by the claims contract's own ``submit`` on
  a state held in memory; these and the other rows checked byte for byte against rows
  a node wrote for real claims; not on the chain). The insurer
  (bj-nhsa) published its policy and was funded by real transactions. pumch and
  chaoyang-clinic (admins) submit pre-signed ``claims.submit`` transactions over
  REST as for transfers. Each claim has a service line pointing at its encounter
  record and a drug line pointing at a pack the provider dispensed to the patient
  (that evidence is written with the state), so that every fraud rule runs on every
  claim: duplicate service (the patient's line index), phantom encounter (the
  record), phantom drug or another patient's pack (the pack), after death, a code
  settled twice (the claims' pack index), unbundling (the policy's bundle) and over
  limit (maximum prices, per-claim and annual limits on the coverage's use this
  year). One claim in ``--flag-every`` (4%) is planned to trip one of six rules (a
  duplicate of a claim made earlier today elsewhere, a record that does not exist,
  a pack dispensed to someone else, a service after the patient's recorded death, a
  pack already claimed, a price over the maximum) and goes to the insurer's review
  queue; the others are paid at once (the insurer's share moves to the provider).
  Afterwards (node stopped) every claim's status and flags are read from the state
  and compared with the plan.
* money_conserved: after all runs (node stopped), per currency, what the banks
  issued minus what they redeemed (``payments/supply/``, and ``payments/issuer/``
  where the contract keeps each bank's totals there) equals the sum of balance and
  held over every ``payments/account/`` row: 1 if it holds, else 0 (and the script
  fails).

``--only transfers`` or ``--only claims`` measures one figure (and conservation), and
leaves results/finance.json as the last full run wrote it.

Transactions and the signed HTTP headers are made before each timed section (the
members' machines' work). The node runs as its own process (``carechain up``) with
the solo cutter's default bounds, as in ledger_throughput.py; only 127.0.0.1 is used
and the node is stopped before the script ends. Figures are medians of ``--runs``
runs; the node's CPU time per transfer and per claim is printed.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import queue
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from drugs import BATCH_PATH, Request, send  # noqa: E402
from drugs_state import (  # noqa: E402
    DISTRIBUTOR,
    GTIN,
    MAKER,
    Step,
    new_shipment,
    shipment_row,
    signed,
)
from finance_state import (  # noqa: E402
    CLINIC,
    CURRENCY,
    DRUG_AMOUNT,
    HOSPITAL,
    INSURER,
    PHARMACY,
    POLICY,
    RULES,
    History,
    Prior,
    RealClaims,
    World,
    check_real,
    day_start_ms,
    death_row,
    drug_line,
    insert_rows,
    pack_doc,
    pack_rows,
    patient_id,
    policy_doc,
    policy_row,
    record_doc,
    record_id,
    record_rows,
    service_line,
    write_history,
)
from records import NodeProcess  # noqa: E402
from report import machine, report  # noqa: E402

BANK = "icbc/admin"
PAYERS = (
    "pumch/admin", "chaoyang-clinic/admin", "yf-pharmacy/admin", "jd-logistics/admin",
    "bj-nhsa/admin", "cr-sponsor/admin", "sinopharm-mfg/admin", "nmpa/admin",
)  # fmt: skip
FUNDS = 10**11
"""Minor units (fen) issued to each payer: a billion yuan, far more than the runs move."""
SUBMITTERS = {HOSPITAL: "pumch/admin", CLINIC: "chaoyang-clinic/admin"}
AUTHORS = {
    HOSPITAL: "pumch/dr-wang",
    CLINIC: "chaoyang-clinic/dr-zhao",
    PHARMACY: "yf-pharmacy/ph-chen",
}
"""Who adds each provider's records (the pharmacy's claims have none: a drug line only)."""
PATIENT = "pumch:patient-7f3a9c"
"""The demo's registered patient: the real claims checked against are theirs."""
SERVICE_AMOUNT = 13_557  # FHIR's Claim example: 135.57
OVER_MAX = 25_000  # above the policy's maximum of 200.00 for service 1200
PAID_SHARE = 9_490 + 2_800
"""The insurer's share of a clean claim: 70% of 135.57 (co-pay 40.671 -> 40.67, half to
even) and 70% of 40.00."""
FLAGS = (
    "duplicate", "phantom_encounter", "pack_other_patient", "after_death",
    "code_settled_twice", "over_limit",
)  # fmt: skip


# -- submitting batches ------------------------------------------------------------------------


def batch_request(creds: Any, wires: list[bytes]) -> tuple[Request, int]:
    body = b'{"transactions":[' + b",".join(wires) + b"]}"
    return (BATCH_PATH, body, signed(creds, BATCH_PATH, body)), len(wires)


def client_process(port: int, requests: list[tuple[Request, int]], threads: int, out: Any) -> None:
    """Send ``requests`` from ``threads`` threads; put (start, end, ok, failure, the
    heights of the blocks its transactions went into) of each."""
    queue = list(reversed(requests))
    lock = threading.Lock()
    done: list[tuple[float, float, int, str | None, set[int]]] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    request, count = queue.pop()
                start = time.time()
                status, doc = send(conn, request)
                end = time.time()
                results = doc.get("results", []) if status == 200 else []
                ok = sum(1 for r in results if r.get("code") == "ok")
                failure = None
                if ok != count:
                    bad = [r for r in results if r.get("code") != "ok"]
                    failure = (
                        f"HTTP {status}, {count - ok} of {count} not ok: {(bad or doc)!s:.300}"
                    )
                heights = {r["height"] for r in results if r.get("height") is not None}
                with lock:
                    done.append((start, end, ok, failure, heights))
        except Exception as exc:  # reported, and the run fails
            with lock:
                done.append((time.time(), time.time(), 0, f"{type(exc).__name__}: {exc}", set()))
        finally:
            conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(done)


def submit_run(
    node: NodeProcess, requests: list[tuple[Request, int]], clients: int, threads: int
) -> tuple[int, float, float, list[float], int]:
    """Send every request from ``clients`` processes; (committed ok, seconds from the
    first send to the last answer, node CPU seconds, request latencies in ms, blocks)."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=client_process, args=(node.port, requests[i::clients], threads, out))
        for i in range(clients)
    ]
    cpu = node.cpu_seconds()
    for p in procs:
        p.start()
    try:
        done = [item for _ in procs for item in out.get(timeout=900)]
    except queue.Empty:
        raise RuntimeError("a client process gave no answer within 15 minutes") from None
    finally:
        cpu = node.cpu_seconds() - cpu
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
    failures = [d[3] for d in done if d[3]]
    if failures:
        raise RuntimeError(f"{len(failures)} batch request(s) failed, first: {failures[0]}")
    expected = sum(n for _, n in requests)
    ok = sum(d[2] for d in done)
    if ok != expected or len(done) != len(requests):
        raise RuntimeError(f"only {ok} of {expected} transactions committed ok")
    elapsed = max(d[1] for d in done) - min(d[0] for d in done)
    blocks = len(set().union(*(d[4] for d in done)))
    return ok, elapsed, cpu, sorted((d[1] - d[0]) * 1000 for d in done), blocks


def commit_steps(node: NodeProcess, consortium: Any, steps: list[tuple[str, str, str, Any]]) -> Any:
    """One batch of (member, contract, method, args), each committed ok (else fail)."""
    from carechain.api.client import build_transaction

    m = consortium.members
    wires = [build_transaction(m[w], "demo", c, f, a).wire_bytes() for w, c, f, a in steps]
    request, _ = batch_request(m["pumch/admin"], wires)
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120)
    try:
        status, doc = send(conn, request)
    finally:
        conn.close()
    results = doc.get("results", []) if status == 200 else []
    for (who, contract, method, _), result in zip(steps, results, strict=False):
        if result.get("code") != "ok":
            raise RuntimeError(f"{who} {contract}.{method}: {result.get('code')} {result}")
    if len(results) != len(steps):
        raise RuntimeError(f"set-up batch: HTTP {status}: {str(doc)[:300]}")
    return results


# -- set-up by real transactions ---------------------------------------------------------------


def set_up(node: NodeProcess, consortium: Any, today: date) -> RealClaims:
    """Money for every payer and the insurer, the insurer's policy, and real claims (with a
    coverage, records, a pack's whole journey and a death) to check synthetic rows against."""
    from carechain.vault.records import new_record_id

    day = today.isoformat()
    coverage = "cov-" + secrets.token_hex(12)
    records = {new_record_id(): secrets.token_hex(32) for _ in range(2)}
    pack = f"sgtin:{GTIN}.F{secrets.token_hex(6)}"
    shipments = (new_shipment(), new_shipment())
    m = consortium.members
    first = [("nmpa/admin", "drugs", "license", {"org": "sinopharm-mfg", "gs1_prefix": "9506000"})]
    first += [(BANK, "payments", "issue", {"to": p.split("/")[0], "currency": CURRENCY,
                                           "amount": FUNDS}) for p in PAYERS]  # fmt: skip
    first += [(INSURER + "/admin", "claims", "publish_policy",
               {"policy": POLICY, "effective_from": day, "rules": RULES})]  # fmt: skip
    first += [("pumch/dr-wang", "records", "add", {"records": [
        {"record": r, "patient": PATIENT, "type": "Encounter", "category": "AMB",
         "fingerprint": f} for r, f in records.items()]})]  # fmt: skip
    maker = "sinopharm-mfg/qa-01"
    steps = [
        first,
        [(INSURER + "/admin", "claims", "register_coverage", {
            "coverage": coverage, "patient": PATIENT, "policy": POLICY,
            "start": (today - timedelta(days=730)).isoformat(),
            "end": (today + timedelta(days=365)).isoformat()}),
         (maker, "drugs", "commission", {"packs": [{"code": pack, "lot": "F1",
                                                    "expiry": "291231"}]})],
        [(maker, "drugs", "ship", {"shipment": shipments[0], "to": DISTRIBUTOR, "items": [pack]})],
        [("jd-logistics/admin", "drugs", "receive", {"shipment": shipments[0]})],
        [("jd-logistics/admin", "drugs", "ship",
          {"shipment": shipments[1], "to": HOSPITAL, "items": [pack]})],
        [("pumch/admin", "drugs", "receive", {"shipment": shipments[1]})],
        [("pumch/dr-wang", "drugs", "dispense", {"code": pack, "patient": PATIENT})],
    ]  # fmt: skip
    for batch in steps:
        commit_steps(node, consortium, batch)
    claims = []
    for record in records:  # the second is a duplicate of the first, with the same pack
        lines = claim_lines(day, SERVICE_AMOUNT, record, pack)
        args = {"claim": "clm-" + secrets.token_hex(12), "patient": PATIENT,
                "coverage": coverage, "fingerprint": secrets.token_hex(32),
                "currency": CURRENCY, "lines": lines}  # fmt: skip
        commit_steps(node, consortium, [("pumch/admin", "claims", "submit", args)])
        claims.append(args)
    death = ((today - timedelta(days=1)).isoformat(), HOSPITAL)
    commit_steps(node, consortium, [("pumch/dr-wang", "claims", "record_death",
                                     {"patient": PATIENT, "day": death[0]})])  # fmt: skip
    authors = {r: (f, m["pumch/dr-wang"].fingerprint) for r, f in records.items()}
    return RealClaims(coverage, PATIENT, authors, pack, shipments, claims, death, day)


def claim_lines(day: str, amount: int, record: str, pack: str) -> list[dict[str, Any]]:
    """A measured claim's lines: the encounter (service 1200) and a dispensed pack."""
    return [service_line(1, "1200", day, amount, record), drug_line(2, day, DRUG_AMOUNT, pack)]


# -- transfers ---------------------------------------------------------------------------------


def transfer_requests(
    consortium: Any, count: int, batch: int, tag: str
) -> list[tuple[Request, int]]:
    """Signed batches of ``count`` transfers, each payer in turn paying another."""
    from carechain.api.client import build_transaction

    m = consortium.members
    wires = []
    for i in range(count):
        payer = PAYERS[i % len(PAYERS)]
        payee = PAYERS[(i + 1 + (i // len(PAYERS)) % (len(PAYERS) - 1)) % len(PAYERS)]
        args = {"to": payee.split("/")[0], "currency": CURRENCY, "amount": 1 + i % 997,
                "reference": f"{tag}-{i}"}  # fmt: skip
        wires.append(build_transaction(m[payer], "demo", "payments", "transfer", args).wire_bytes())
    http_signer = m["pumch/admin"]
    return [batch_request(http_signer, wires[i : i + batch]) for i in range(0, count, batch)]


def bench_transfers(node: NodeProcess, consortium: Any, args: argparse.Namespace) -> float:
    print(
        f"transfers: {args.runs} runs of {args.transfers:,} pre-signed payments.transfer from "
        f"{len(PAYERS)} payers, {args.batch} per request, {args.clients} client processes x "
        f"{args.threads} threads, REST"
    )
    rates = []
    for run in range(args.runs):
        requests = transfer_requests(consortium, args.transfers, args.batch, f"T{run}")
        ok, elapsed, cpu, latencies, blocks = submit_run(node, requests, args.clients, args.threads)
        rates.append(ok / elapsed)
        print(
            f"    run {run + 1}: {ok:,} transfers committed ok in {elapsed:.2f} s: "
            f"{rates[-1]:,.0f}/s, in {blocks} blocks; a request took p50 "
            f"{statistics.median(latencies):.0f} ms; the node used {cpu / ok * 1e6:.0f} us CPU "
            "a transfer"
        )
    return statistics.median(rates)


# -- claims ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A claim of the measured runs and what it is planned to trip (None: paid)."""

    claim: str
    patient: int
    coverage: str
    provider: str
    fingerprint: str
    record: str
    pack: str
    flag: str | None

    def args(self, day: str) -> dict[str, Any]:
        amount = OVER_MAX if self.flag == "over_limit" else SERVICE_AMOUNT
        return {
            "claim": self.claim,
            "patient": patient_id(self.patient),
            "coverage": self.coverage,
            "fingerprint": self.fingerprint,
            "currency": CURRENCY,
            "lines": claim_lines(day, amount, self.record, self.pack),
        }


def plan_claims(world: World, runs: int, per_run: int, every: int) -> list[list[Measured]]:
    """Claims of distinct patients, providers alternating; one in ``every`` planned to trip
    a fraud rule, the rules in turn."""
    rng = random.Random(7)
    chosen = rng.sample(range(world.patients), runs * per_run)
    plan: list[list[Measured]] = []
    for run in range(runs):
        part = []
        for i in range(per_run):
            n = run * per_run + i
            flag = FLAGS[(n // every) % len(FLAGS)] if n % every == every - 1 else None
            index = chosen[n]
            part.append(
                Measured(
                    "clm-" + secrets.token_hex(12),
                    index,
                    world.coverages[index],
                    (HOSPITAL, CLINIC)[n % 2],
                    secrets.token_hex(32),
                    record_id(rng),
                    f"sgtin:{GTIN}.M{n:08d}",
                    flag,
                )
            )
        plan.append(part)
    return plan


def evidence(
    world: World, claims: list[Measured], consortium: Any, height: int
) -> tuple[list[tuple[str, bytes]], list[Prior]]:
    """The rows the measured claims point at (records, packs that went from the maker to
    the provider and to the patient, deaths) and the earlier claims some of them repeat."""
    rng = random.Random(8)
    now = int(time.time() * 1000)
    today = world.today.isoformat()
    yesterday = world.today - timedelta(days=1)
    rows: list[tuple[str, bytes]] = []
    priors: list[Prior] = []
    expiry = (world.today + timedelta(days=700)).isoformat()

    def step(t: int) -> Step:
        return Step(height, t, secrets.token_hex(32))

    for provider in (HOSPITAL, CLINIC):
        mine = [c for c in claims if c.provider == provider]
        for start in range(0, len(mine), 500):  # a lot shipped together
            group = mine[start : start + 500]
            shared = tuple(step(now - (5 - n) * 3_600_000) for n in range(5))
            shipments = (new_shipment(), new_shipment())
            for n, c in enumerate(group):
                patient = patient_id(c.patient)
                if c.flag == "pack_other_patient":
                    patient = patient_id((c.patient + 1) % world.patients)
                steps = (*shared, step(now - 600_000 + n))
                doc = pack_doc(c.pack, f"M{start:06d}", expiry, steps, provider, patient)
                rows += pack_rows(doc, steps, shipments)
            keys = [c.pack for c in group]
            legs = ((shipments[0], MAKER, DISTRIBUTOR, 1), (shipments[1], DISTRIBUTOR, provider, 3))
            for shipment, sender, to, n in legs:
                k, v = shipment_row(shipment, sender, to, keys, shared[n].time, shared[n + 1].time)
                rows.append((f"drugs/{k}", v))
    for c in claims:
        patient = patient_id(c.patient)
        if c.flag != "phantom_encounter":
            author = consortium.members[AUTHORS[c.provider]].fingerprint
            added = step(max(day_start_ms(world.today), now - 900_000))
            doc = record_doc(c.record, patient, c.provider, secrets.token_hex(32), author, added)
            rows += record_rows(doc)
        if c.flag == "after_death":
            t = day_start_ms(yesterday) + 20 * 3_600_000
            rows.append(death_row(patient, yesterday.isoformat(), HOSPITAL, t))
        elif c.flag == "duplicate":  # the same service claimed at the other provider today
            other = CLINIC if c.provider == HOSPITAL else HOSPITAL
            line = service_line(1, "1200", today, SERVICE_AMOUNT, record_id(rng))
            priors.append(Prior(c.patient, other, (line,)))
        elif c.flag == "code_settled_twice":  # the pack claimed alone earlier today
            line = drug_line(1, today, DRUG_AMOUNT, c.pack)
            priors.append(Prior(c.patient, c.provider, (line,)))
    return rows, priors


def claim_requests(
    consortium: Any, claims: list[Measured], day: str, batch: int
) -> list[tuple[Request, int]]:
    from carechain.api.client import build_transaction

    requests = []
    for provider, who in SUBMITTERS.items():
        creds = consortium.members[who]
        wires = [
            build_transaction(creds, "demo", "claims", "submit", c.args(day)).wire_bytes()
            for c in claims
            if c.provider == provider
        ]
        requests += [
            batch_request(creds, wires[i : i + batch]) for i in range(0, len(wires), batch)
        ]
    random.Random(9).shuffle(requests)
    return requests


def bench_claims(
    node: NodeProcess, consortium: Any, plan: list[list[Measured]], day: str, args: Any
) -> float:
    rates = []
    for run, claims in enumerate(plan):
        requests = claim_requests(consortium, claims, day, args.batch)
        ok, elapsed, cpu, latencies, blocks = submit_run(node, requests, args.clients, args.threads)
        rates.append(ok / elapsed)
        flagged = sum(1 for c in claims if c.flag)
        print(
            f"    run {run + 1}: {ok:,} claims committed ok in {elapsed:.2f} s: "
            f"{rates[-1]:,.0f}/s ({ok - flagged:,} to be paid, {flagged} to be flagged), in "
            f"{blocks} blocks; a request took p50 {statistics.median(latencies):.0f} ms; the "
            "node used "
            f"{cpu / ok * 1e3:.2f} ms CPU a claim"
        )
    return statistics.median(rates)


# -- checks (node stopped) ---------------------------------------------------------------------


def check_claims(state: Any, plan: list[list[Measured]]) -> None:
    """Every measured claim is paid (the insurer's share) or in review with exactly the
    flag planned for it."""
    import orjson

    paid = 0
    flagged: dict[str, int] = dict.fromkeys(FLAGS, 0)
    for claims in plan:
        for c in claims:
            raw = state.get(f"claims/claim/{c.claim}")
            doc = orjson.loads(raw) if raw else {}
            found = {f["flag"] for f in doc.get("adjudication", {}).get("flags", [])}
            status = doc.get("status")
            if c.flag is None and status == "paid" and not found:
                if doc["payment"]["amount"] != PAID_SHARE:
                    raise RuntimeError(f"claim {c.claim} paid {doc['payment']}, not {PAID_SHARE}")
                paid += 1
            elif c.flag is not None and status == "review" and found == {c.flag}:
                flagged[c.flag] += 1
            else:
                raise RuntimeError(
                    f"claim {c.claim} (planned: {c.flag or 'paid'}) is {status} with flags "
                    f"{sorted(found)}"
                )
    planned = sum(len(claims) for claims in plan)
    print(
        f"  check: {planned:,} claims as planned: {paid:,} paid ({PAID_SHARE / 100:.2f} yuan "
        f"each from {INSURER}), {sum(flagged.values())} in review: "
        + ", ".join(f"{n} {flag}" for flag, n in flagged.items())
    )


def check_money(state: Any) -> bool:
    """Per currency, what the banks issued minus what they redeemed equals the sum of
    balance + held over every account. The supply figures are read in whichever layout
    the payments contract keeps (``supply/<CCY>``: issued, redeemed and per bank; or
    outstanding, with ``issuer/<bank>/<CCY>``: issued, redeemed): every one present must
    agree with the accounts, and there must be one."""
    import orjson

    held: dict[str, int] = {}
    accounts = 0
    for key, raw in state.scan("payments/account/"):
        doc = orjson.loads(raw)
        if key.rsplit("/", 1)[1] != doc["currency"]:
            raise RuntimeError(f"{key} holds {doc['currency']}")
        held[doc["currency"]] = held.get(doc["currency"], 0) + doc["balance"] + doc["held"]
        accounts += 1
    figures: dict[str, dict[str, int]] = {}  # currency -> what says how much is out
    for key, raw in state.scan("payments/supply/"):
        doc, ccy = orjson.loads(raw), key.rsplit("/", 1)[1]
        mine = figures.setdefault(ccy, {})
        if "issued" in doc:
            mine["supply issued - redeemed"] = doc["issued"] - doc["redeemed"]
        if "outstanding" in doc:
            mine["supply outstanding"] = doc["outstanding"]
        if "banks" in doc:
            mine["banks' issued - redeemed"] = sum(
                b["issued"] - b["redeemed"] for b in doc["banks"].values()
            )
    for key, raw in state.scan("payments/issuer/"):
        doc, ccy = orjson.loads(raw), key.rsplit("/", 1)[1]
        mine = figures.setdefault(ccy, {})
        name = "issuers' issued - redeemed"
        mine[name] = mine.get(name, 0) + doc["issued"] - doc["redeemed"]
    conserved = True
    for ccy in sorted(set(held) | set(figures)):
        total = held.get(ccy, 0)
        said = figures.get(ccy, {})
        holds = bool(said) and all(v == total for v in said.values())
        conserved = conserved and holds
        print(
            f"  money {ccy}: sum of balance + held over accounts {total:,}; "
            + ("; ".join(f"{name} {v:,}" for name, v in said.items()) or "no supply figures")
            + (": conserved" if holds else ": NOT CONSERVED")
        )
    print(f"  {accounts} accounts, {len(figures)} currencies")
    return conserved


def build_state(
    node_dir: Path, consortium: Any, real: RealClaims, args: Any
) -> list[list[Measured]]:
    """Check the synthetic rows against the real claims' rows, then write the history
    and the measured claims' evidence into the stopped node's store; returns the plan."""
    from carechain.contracts.membership import read_member
    from carechain.contracts.state import Overlay
    from carechain.ledger.statestore import StateStore

    m = consortium.members
    today_key = f"claims/policy/{INSURER}/{POLICY}/{real.today}"
    state = StateStore(node_dir / "state.sqlite")
    try:
        view = Overlay(state)
        members = {org: read_member(view, m[f"{org}/admin"].fingerprint) for org in AUTHORS}
        compared = check_real(state, real, members)
        version = state.get(today_key)
        height = state.height
    finally:
        state.close()
    print(
        f"claims: the synthetic rows equal a node's for real claims, byte for byte ({compared} "
        "rows: policy, coverage, records, a pack's journey, 2 claims and their indexes, death)"
    )
    today = date.fromisoformat(real.today)
    earlier = today - timedelta(days=730)  # the version the prior claims were decided by
    old = policy_doc(day_start_ms(earlier) + 8 * 3_600_000, secrets.token_hex(32))
    versions = [policy_row(earlier.isoformat(), old), (today_key, version)]
    authors = {org: m[who].fingerprint for org, who in AUTHORS.items()}
    world = World(args.patients, today, versions, members, authors)
    plan = plan_claims(world, args.runs, args.claims, args.flag_every)
    rows, priors = evidence(world, [c for run in plan for c in run], consortium, height)
    rows.append(versions[0])
    start = time.perf_counter()
    planned_ms = max(day_start_ms(today) + 60_000, int(time.time() * 1000) - 300_000)
    made = write_history(node_dir, History(world, args.prior_claims, priors, planned_ms, 3))
    written = made.pop("rows") + insert_rows(node_dir, iter([sorted(rows)]))
    if sum(made.values()) != args.prior_claims:
        raise RuntimeError(f"{sum(made.values())} prior claims made, not {args.prior_claims}")
    size = sum(f.stat().st_size for f in node_dir.glob("state.sqlite*")) / 2**20
    print(
        f"  state written in {time.perf_counter() - start:.0f} s: {args.patients:,} "
        f"coverages, {args.prior_claims:,} prior claims ("
        + ", ".join(
            f"{n:,} {status.replace('review', 'in review')}" for status, n in sorted(made.items())
        )
        + f"), the measured claims' records and packs; {written:,} rows, the store is "
        f"{size:,.0f} MiB"
    )
    return plan


TARGETS = {
    "transfers_per_s": ("1/s", ">=8000"),
    "claims_per_s": ("1/s", ">=2000"),
    "money_conserved": ("bool", "==1"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (under 60 s)")
    parser.add_argument("--runs", type=int, default=3, help="runs (the median is reported)")
    parser.add_argument("--transfers", type=int, default=60_000, help="transfers per run")
    parser.add_argument("--claims", type=int, default=10_000, help="claims per run")
    parser.add_argument("--flag-every", type=int, default=25, help="one claim in N is flagged")
    parser.add_argument("--patients", type=int, default=100_000, help="covered patients")
    parser.add_argument("--prior-claims", type=int, default=1_000_000, help="claims before")
    parser.add_argument("--batch", type=int, default=250, help="transactions per request")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=4, help="requests in flight per client")
    parser.add_argument(
        "--only", choices=("transfers", "claims"), help="measure one figure (and conservation)"
    )
    args = parser.parse_args()
    if args.quick:
        args.transfers, args.claims = 10_000, 2_000
        args.patients, args.prior_claims = 10_000, 100_000
    if args.runs * args.claims > args.patients:
        parser.error("each measured claim is of another patient: runs x claims > patients")

    from carechain.ledger.statestore import StateStore
    from carechain.node.consortium import DEMO_CONSORTIUM, create_consortium

    print(machine())
    began = time.perf_counter()
    figures: dict[str, float] = {}
    today = datetime.now(UTC).date()
    work = Path(tempfile.mkdtemp(prefix="cc-finance-"))
    log = work / "node.log"
    try:
        consortium = create_consortium(DEMO_CONSORTIUM, work / "demo")
        node_dir = consortium.node_dir
        with NodeProcess(node_dir, log) as node:
            real = set_up(node, consortium, today)
            if args.only != "claims":
                figures["transfers_per_s"] = bench_transfers(node, consortium, args)
        plan = []
        if args.only != "transfers":
            plan = build_state(node_dir, consortium, real, args)
            print(
                f"  {args.runs} runs of {args.claims:,} pre-signed claims.submit (a service "
                f"and a drug line each) from {len(SUBMITTERS)} providers, {args.batch} per "
                f"request, {args.clients} client processes x {args.threads} threads, REST"
            )
            with NodeProcess(node_dir, log) as node:
                figures["claims_per_s"] = bench_claims(node, consortium, plan, real.today, args)
        state = StateStore(node_dir / "state.sqlite")
        try:
            if plan:
                check_claims(state, plan)
            conserved = check_money(state)
        finally:
            state.close()
        figures["money_conserved"] = 1.0 if conserved else 0.0
    except RuntimeError as exc:  # a failed run or check: say so, exit non-zero
        if log.exists():
            print("the node's log ends:", *log.read_text().splitlines()[-20:], sep="\n  ")
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"total time {time.perf_counter() - began:.0f} s")
    report("finance", figures, TARGETS)
    if not conserved:
        print("FAILED: money is not conserved (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
