"""The claims part of benchmarks/finance.py: a history of prior claims (1,000,000 of
100,000 covered patients by default) written straight into a node's state store, and the
evidence the measured claims point at.

Building that history through transactions would take longer than the benchmark may, so
``write_history`` (two processes make the rows while this one inserts them) and
``insert_rows`` put the rows themselves into the ``state`` table of a stopped node's
SQLite store, as drugs_state.py does for packs, with exactly the keys and canonical JSON
values the contracts write:

* claims are made by the contract itself: ``run_submit`` runs ``Claims.submit`` (the
  adjudication, fraud flags, settlement and every index row it keeps) on a state held in
  memory (``MemoryState``) that holds what the chain held for that patient: the policy
  versions, the coverage, the patient's earlier claims and this year's use, and the
  records and packs the claim's lines point at. Its ``claims/`` rows are kept.
* coverages (``coverage_row``), an earlier version of the insurer's policy
  (``policy_row``: a version cannot be published for a past day, and the prior claims
  were decided by the one in force then) and recorded deaths (``death_row``).
* evidence of the measured claims: encounter records (``record_rows``) and packs that
  went from the maker through the distributor to the hospital or clinic that dispensed
  them (``pack_rows``: the pack, its EPCIS events; ``shipment_row`` from drugs_state.py).

Ids (claims, coverages, fingerprints) are random but made in key order (``spread_hex``),
so that rows go in at the end of their part of the table.

``check_real`` compares these with the rows a node wrote for real claims, a coverage, a
policy, records, a pack's journey and a death made through real transactions, byte for
byte. The store's height, block hash and state digest are left alone, so the node starts
on it as usual; these rows are not on the chain (a replay or ``carechain verify`` would
not make them), which is why the node's directory is a temporary one. The prior claims'
own evidence (their records and packs) and their payments (the insurer's share moved
to the provider, statement lines) stay in memory: no measured claim reads them, and the
accounts hold only money that real transactions moved, which is what the
money-conservation check adds up.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from drugs_state import DISTRIBUTOR, GTIN, MAKER, Step, _event, encode, shipment_row

INSURER = "bj-nhsa"
POLICY = "pol-bench"
HOSPITAL, CLINIC, PHARMACY = "pumch", "chaoyang-clinic", "yf-pharmacy"
CURRENCY = "CNY"
CHAIN = "demo"
RULES: dict[str, Any] = {
    "currency": CURRENCY,
    "copay_bp": 3000,
    "per_claim_limit": 500_000,
    "annual_limit": 50_000_000,
    "waiting_days": 30,
    "services": {
        "1200": {"max": 20_000},  # FHIR's Claim example's service (claim-example.json)
        "110200001": {"max": 3_000},
        "A1": {"max": 8_000},
        "A2": {"max": 8_000},
        "330100001": {"max": 50_000, "preauth": True},
    },
    "drugs": {GTIN: {"max": 5_000}},
    "network": [],
    "bundles": {"B1": ["A1", "A2"]},
    "drug_trace_from": "2025-07-01",
}
"""The insurer's policy: 30% co-pay, maximum prices, limits, a bundle, NHSA's trace rule."""

PRIOR_SERVICES = (("1200", 13_557), ("1200", 9_000), ("110200001", 2_500), ("A1", 6_000))
DRUG_AMOUNT = 4_000


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


# -- claims: the contract's own submit, on a state in memory -----------------------------------


class MemoryState:
    """``contracts.state.CommittedState`` over a dict: key -> canonical JSON bytes."""

    def __init__(self, rows: dict[str, bytes]) -> None:
        self.rows = rows

    def get(self, key: str) -> bytes | None:
        return self.rows.get(key)

    def scan(self, prefix: str, limit: int = -1, after: str = "") -> list[tuple[str, bytes]]:
        found = sorted((k, v) for k, v in self.rows.items() if k.startswith(prefix) and k > after)
        return found if limit < 0 else found[:limit]


def run_submit(rows: dict[str, bytes], member: Any, args: dict[str, Any], step: Step) -> Any:
    """Run ``Claims.submit`` (authorised as the executor does) for ``member`` with ``args``
    on ``rows``, as the transaction ``step`` (its block height, time, txid and index)
    would run on a node holding them; apply its writes to ``rows`` and return them.

    The transaction is not signed and has no body bytes (the rows never depend on them).
    """
    from carechain.contracts.claims import Claims
    from carechain.contracts.runtime import Args, BlockInfo, Context, authorise
    from carechain.contracts.state import Overlay
    from carechain.errors import ContractError
    from carechain.ledger.transaction import Fingerprint, SignedTransaction, Transaction, TxId

    contract = Claims()
    found = contract.policy("submit")
    if found is None:
        raise RuntimeError("the claims contract has no method submit")
    method, policy = found
    body = Transaction(CHAIN, contract.name, "submit", args, Fingerprint(member.fingerprint),
                       step.txid[:24], step.time)  # fmt: skip
    tx = SignedTransaction(body, b"", TxId(step.txid), {})
    overlay = Overlay(MemoryState(rows))
    values = Args(args)
    ctx = Context(contract.name, overlay, tx, member, {}, BlockInfo(CHAIN, step.height, step.time),
                  step.index)  # fmt: skip
    try:
        authorise(policy, member, {}, values)
        method(ctx, values)
    except ContractError as exc:
        raise RuntimeError(f"claims.submit of {args['claim']} refused: {exc.message}") from exc
    if values.unread():
        raise RuntimeError(f"claims.submit left arguments unread: {values.unread()}")
    for key, value in overlay.writes.items():
        if value is None:
            rows.pop(key, None)
        else:
            rows[key] = value
    return overlay.writes


def account_row(owner: str, balance: int) -> tuple[str, bytes]:
    """An open account (the claims contract pays the insurer's share through it)."""
    doc = {"owner": owner, "currency": CURRENCY, "balance": balance, "held": 0, "opened": 0,
           "entries": 0}  # fmt: skip
    return f"payments/account/{owner}/{CURRENCY}", encode(doc)


# -- the rows the contracts write -------------------------------------------------------------


def coverage_doc(
    coverage: str, patient: str, start: str, end: str, registered: int
) -> dict[str, Any]:
    return {
        "id": coverage,
        "patient": patient,
        "insurer": INSURER,
        "policy": POLICY,
        "start": start,
        "end": end,
        "status": "active",
        "registered": registered,
    }


def coverage_row(doc: dict[str, Any]) -> tuple[str, bytes]:
    return f"claims/coverage/{doc['id']}", encode(doc)


def policy_doc(published: int, txid: str) -> dict[str, Any]:
    from carechain.contracts.claim_rules import check_rules

    return dict(check_rules(RULES), published=published, txid=txid)


def policy_row(start: str, doc: dict[str, Any]) -> tuple[str, bytes]:
    return f"claims/policy/{INSURER}/{POLICY}/{start}", encode(doc)


def death_row(patient: str, day: str, by: str, time_ms: int) -> tuple[str, bytes]:
    return f"claims/death/{patient}", encode({"day": day, "by": by, "time": time_ms})


def record_doc(
    record: str, patient: str, custodian: str, fingerprint: str, author: str, step: Step
) -> dict[str, Any]:
    """``Records.add``'s document of an encounter record."""
    return {
        "id": record,
        "patient": patient,
        "custodian": custodian,
        "type": "Encounter",
        "category": "AMB",
        "fingerprint": fingerprint,
        "author": author,
        "time": step.time,
        "height": step.height,
        "txid": step.txid,
        "status": "active",
    }


def record_rows(doc: dict[str, Any]) -> list[tuple[str, bytes]]:
    value = encode(doc)
    return [
        (f"records/record/{doc['id']}", value),
        (f"records/patient/{doc['patient']}/record/{doc['id']}", value),
    ]


def pack_doc(
    key: str, lot: str, expiry: str, steps: tuple[Step, ...], dispenser: str, patient: str
) -> dict[str, Any]:
    """A pack commissioned, shipped to the distributor, on to ``dispenser`` (a hospital or
    clinic), received there and dispensed to ``patient``: ``steps`` holds those six."""
    return {
        "key": key,
        "product": key.removeprefix("sgtin:")[:14],
        "lot": lot,
        "expiry": expiry,
        "manufacturer": MAKER,
        "status": "dispensed",
        "parent": None,
        "owner": dispenser,
        "transit": None,
        "time": steps[0].time,
        "txid": steps[0].txid,
        "dispensed": {"time": steps[5].time, "txid": steps[5].txid, "patient": patient},
    }


def pack_rows(
    doc: dict[str, Any], steps: tuple[Step, ...], shipments: tuple[str, str]
) -> list[tuple[str, bytes]]:
    """The pack row and its six events (full keys)."""
    key, owner, patient = doc["key"], doc["owner"], doc["dispensed"]["patient"]
    events = [
        _event(key, steps[0], "ADD", MAKER, biz_step="commissioning", disposition="active"),
        _event(key, steps[1], "OBSERVE", MAKER, biz_step="shipping", disposition="in_transit",
               to=DISTRIBUTOR, shipment=shipments[0]),
        _event(key, steps[2], "OBSERVE", DISTRIBUTOR, biz_step="receiving",
               disposition="in_progress", source=MAKER, shipment=shipments[0]),
        _event(key, steps[3], "OBSERVE", DISTRIBUTOR, biz_step="shipping",
               disposition="in_transit", to=owner, shipment=shipments[1]),
        _event(key, steps[4], "OBSERVE", owner, biz_step="receiving", disposition="in_progress",
               source=DISTRIBUTOR, shipment=shipments[1]),
        _event(key, steps[5], "DELETE", owner, biz_step="dispensing", disposition="dispensed",
               patient=patient),
    ]  # fmt: skip
    return [(f"drugs/pack/{key}", encode(doc))] + [(f"drugs/{k}", v) for k, v in events]


# -- checked against a real node --------------------------------------------------------------


def same_rows(what: str, made: list[tuple[str, bytes]], state: Any) -> int:
    """Each made row is byte for byte the node's row of that key, and canonical JSON."""
    import orjson

    from carechain.crypto.canonical import canonical_bytes

    for key, value in made:
        stored = state.get(key)
        if stored != value:
            raise RuntimeError(
                f"the synthetic {what} row {key} differs from the node's:\n  {value!r}\n"
                f"  {stored!r}"
            )
        if canonical_bytes(orjson.loads(value)) != value:
            raise RuntimeError(f"the synthetic {what} row {key} is not canonical JSON")
    return len(made)


@dataclass
class RealClaims:
    """What the real transactions of ``finance.py``'s set-up submitted, to check against."""

    coverage: str
    patient: str
    records: dict[str, tuple[str, str]]  # record id -> (its fingerprint, author)
    pack: str
    shipments: tuple[str, str]
    claims: list[dict[str, Any]]  # the claims.submit arguments, in order
    death: tuple[str, str]  # (day, by)
    today: str


def check_real(state: Any, real: RealClaims, members: dict[str, Any]) -> int:
    """The rows this module makes for ``real`` equal the node's, byte for byte: the
    policy version, the coverage, records, the pack's journey, the claims and their
    indexes (``run_submit`` on the node's own rows of the policy, coverage and evidence),
    the death; and the node wrote no other row in the claims and records namespaces or
    among the pack's events. Heights, times and txids are the node's (read from its rows,
    as drugs_state.real_journey does). ``members``: provider -> its submitter's record.
    Returns the rows compared."""
    import orjson

    made: list[tuple[str, bytes]] = []

    def doc(key: str) -> Any:
        raw = state.get(key)
        if raw is None:
            raise RuntimeError(f"the node has no row {key}")
        return orjson.loads(raw)

    def same(what: str, rows: list[tuple[str, bytes]]) -> None:
        same_rows(what, rows, state)
        made.extend(rows)

    version = doc(f"claims/policy/{INSURER}/{POLICY}/{real.today}")
    same("policy", [policy_row(real.today, policy_doc(version["published"], version["txid"]))])
    stored = doc(f"claims/coverage/{real.coverage}")
    coverage = coverage_doc(
        real.coverage, real.patient, stored["start"], stored["end"], stored["registered"]
    )
    same("coverage", [coverage_row(coverage)])
    for record, (fingerprint, author) in real.records.items():
        stored = doc(f"records/record/{record}")
        step = Step(stored["height"], stored["time"], stored["txid"])
        same("record", record_rows(record_doc(record, real.patient, HOSPITAL, fingerprint,
                                              author, step)))  # fmt: skip
    events = state.scan(f"drugs/event/{real.pack}/")
    steps = tuple(
        Step(int(k.split("/")[-2]), d["time"], d["txid"], d["seq"][1])
        for k, d in ((k, orjson.loads(v)) for k, v in events)
    )
    if len(steps) != 6:
        raise RuntimeError(f"pack {real.pack} has {len(steps)} events, not 6")
    stored = doc(f"drugs/pack/{real.pack}")
    pack = pack_doc(real.pack, stored["lot"], stored["expiry"], steps, HOSPITAL, real.patient)
    shipped = [
        shipment_row(real.shipments[0], MAKER, DISTRIBUTOR, [real.pack], steps[1].time,
                     steps[2].time),
        shipment_row(real.shipments[1], DISTRIBUTOR, HOSPITAL, [real.pack], steps[3].time,
                     steps[4].time),
    ]  # fmt: skip
    same("pack", pack_rows(pack, steps, real.shipments) + [(f"drugs/{k}", v) for k, v in shipped])
    # The claims, run through the contract on the node's rows (checked just above).
    rows = dict(made)
    rows.update([account_row(INSURER, 10**15), account_row(HOSPITAL, 0)])
    written: set[str] = set()
    for args in real.claims:
        stored = doc(f"claims/claim/{args['claim']}")
        height, index, _ = state.tx_location(stored["txid"])
        step = Step(height, stored["submitted"], stored["txid"], index)
        written.update(run_submit(rows, members[HOSPITAL], args, step))
    same("claim", [(k, rows[k]) for k in sorted(written) if k.startswith("claims/") and k in rows])
    stored = doc(f"claims/death/{real.patient}")
    same("death", [death_row(real.patient, real.death[0], real.death[1], stored["time"])])
    keys = {key for key, _ in made}
    extra = [
        key
        for prefix in ("claims/", "records/", f"drugs/event/{real.pack}/")
        for key, _ in state.scan(prefix)
        if key not in keys
    ]
    if extra:
        raise RuntimeError(f"the node wrote {len(extra)} row(s) not made here, e.g. {extra[0]}")
    return len(made)


# -- the history: coverages and prior claims ---------------------------------------------------


def patient_id(index: int) -> str:
    return f"pumch:patient-s{index:06d}"


def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def spread_hex(rng: random.Random, bits: int, index: int, count: int) -> str:
    """A random ``bits``-bit id (hex) in the ``index``-th of ``count`` equal slices: as
    random as any to a lookup, but made in key order, so that the rows go in at the end
    of their part of the table (several times faster than at random places)."""
    width = (1 << bits) // count
    return f"{index * width + rng.randrange(width):0{bits // 4}x}"


def record_id(rng: random.Random) -> str:
    """As ``vault.new_record_id``: 26 lowercase base32 characters of 16 bytes."""
    raw = rng.getrandbits(128).to_bytes(16, "big")
    return "rec-" + base64.b32encode(raw).decode().rstrip("=").lower()


@dataclass
class World:
    """The covered population, what every claim's state holds (``base``: the policy
    versions, open accounts) and who submits and authors for each provider."""

    patients: int
    today: date
    policies: list[tuple[str, bytes]]  # rows: the synthetic earlier version, today's
    members: dict[str, Any]  # provider -> its submitter's MemberRecord
    authors: dict[str, str]  # provider -> fingerprint of the clinician adding its records
    coverages: list[str] = field(default_factory=list)
    base: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rng = random.Random(11)
        self.coverages = [
            f"cov-{spread_hex(rng, 96, i, self.patients)}" for i in range(self.patients)
        ]
        self.start = (self.today - timedelta(days=730)).isoformat()
        self.end = (self.today + timedelta(days=365)).isoformat()
        self.expiry = (self.today + timedelta(days=700)).isoformat()
        self.base = dict(self.policies)
        self.base.update(account_row(owner, 0) for owner in (HOSPITAL, CLINIC, PHARMACY))
        self.base.update([account_row(INSURER, 10**15)])

    def coverage(self, index: int) -> dict[str, Any]:
        registered = day_start_ms(self.today - timedelta(days=731)) + 9 * 3600_000 + index
        return coverage_doc(
            self.coverages[index], patient_id(index), self.start, self.end, registered
        )

    def evidence(self, rows: dict[str, bytes], claim: dict[str, Any], provider: str) -> None:
        """Put the records and packs ``claim``'s lines point at into ``rows`` (in memory
        only: see the module docstring), made just before the claim."""
        step = Step(0, claim["time"] - 30_000, "0" * 64)
        patient = claim["patient"]
        for line in claim["lines"]:
            if "record" in line:
                doc = record_doc(line["record"], patient, provider, "0" * 64,
                                 self.authors[provider], step)  # fmt: skip
                rows[f"records/record/{line['record']}"] = encode(doc)
            if "pack" in line:
                doc = pack_doc(line["pack"], "H1", self.expiry, (step,) * 6, provider, patient)
                rows[f"drugs/pack/{line['pack']}"] = encode(doc)


def service_line(seq: int, code: str, day: str, amount: int, record: str) -> dict[str, Any]:
    return {"seq": seq, "kind": "service", "code": code, "day": day, "quantity": 1,
            "amount": amount, "record": record}  # fmt: skip


def drug_line(seq: int, day: str, amount: int, pack: str) -> dict[str, Any]:
    return {"seq": seq, "kind": "drug", "code": GTIN, "day": day, "quantity": 1,
            "amount": amount, "pack": pack}  # fmt: skip


@dataclass(frozen=True)
class Prior:
    """A claim planned before the measured ones (a duplicate's or a reused pack's first)."""

    patient: int
    provider: str
    lines: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class History:
    """``claims`` prior claims of ``world``'s patients: ``planned`` ones submitted today
    (at ``planned_ms``), the rest on a day of the past year (each patient's in day
    order)."""

    world: World
    claims: int
    planned: list[Prior]
    planned_ms: int
    seed: int

    def counts(self) -> list[int]:
        rng = random.Random(self.seed)
        counts = [0] * self.world.patients
        for _ in range(self.claims - len(self.planned)):
            counts[rng.randrange(self.world.patients)] += 1
        for prior in self.planned:
            counts[prior.patient] += 1
        return counts


def prior_rows(
    history: History, part: int, parts: int
) -> Iterator[tuple[list[tuple[str, bytes]], dict[str, int]]]:
    """Rows of the coverages and prior claims of part ``part`` of ``parts`` of the
    patients, in chunks sorted by key: (rows, counts of the chunk's claims by status).
    Each claim is submitted through ``run_submit`` on its patient's rows."""
    import orjson

    world, total = history.world, history.claims
    counts = history.counts()
    lo, hi = world.patients * part // parts, world.patients * (part + 1) // parts
    number = sum(counts[:lo])  # the first claim's number in the whole history
    rng = random.Random(history.seed * 1000 + part + 1)
    planned: dict[int, list[Prior]] = {}
    for prior in history.planned:
        planned.setdefault(prior.patient, []).append(prior)
    days = [world.today - timedelta(days=ago) for ago in range(366)]
    iso = [d.isoformat() for d in days]
    starts = [day_start_ms(d) for d in days]
    chunk: list[tuple[str, bytes]] = []
    status = {"paid": 0, "review": 0}
    for index in range(lo, hi):
        patient = patient_id(index)
        rows = dict(world.base)
        rows.update([coverage_row(world.coverage(index))])
        mine = planned.get(index, [])
        agos = sorted(
            (rng.randrange(1, 366) for _ in range(counts[index] - len(mine))), reverse=True
        )
        plan: list[tuple[int, Prior | None]] = [(ago, None) for ago in agos]
        plan += [(0, prior) for prior in mine]
        for ago, prior in plan:
            day = iso[ago]
            if prior is None:
                t = starts[ago] + rng.randrange(8 * 3600_000, 20 * 3600_000)
                provider = rng.choice((HOSPITAL, HOSPITAL, CLINIC, PHARMACY))
                lines: list[dict[str, Any]] = []
                if provider != PHARMACY:
                    code, amount = rng.choice(PRIOR_SERVICES)
                    lines.append(service_line(1, code, day, amount, record_id(rng)))
                if provider == PHARMACY or rng.random() < 0.3:
                    pack = f"sgtin:{GTIN}.H{number:09d}"
                    lines.append(drug_line(len(lines) + 1, day, DRUG_AMOUNT, pack))
            else:
                t, provider, lines = history.planned_ms, prior.provider, list(prior.lines)
            claim_id = f"clm-{spread_hex(rng, 96, number, total)}"
            args = {"claim": claim_id, "patient": patient, "coverage": world.coverages[index],
                    "fingerprint": spread_hex(rng, 256, number, total), "currency": CURRENCY,
                    "lines": lines}  # fmt: skip
            number += 1
            world.evidence(rows, {"time": t, "patient": patient, "lines": lines}, provider)
            writes = run_submit(rows, world.members[provider], args, Step(0, t, _hex(rng, 256)))
            decided = orjson.loads(writes[f"claims/claim/{claim_id}"])["status"]
            status[decided] = status.get(decided, 0) + 1
            for key in writes:  # statement lines: not kept (see the module docstring)
                if key.startswith("payments/entry/"):
                    del rows[key]
        chunk.extend(
            (k, v) for k, v in rows.items() if k.startswith("claims/") and k not in world.base
        )
        if len(chunk) >= 100_000:
            chunk.sort()
            yield chunk, status
            chunk, status = [], {"paid": 0, "review": 0}
    chunk.sort()
    yield chunk, status


def _produce(history: History, part: int, parts: int, out: Any) -> None:
    try:
        for chunk, status in prior_rows(history, part, parts):
            out.put((chunk, status))
        out.put(None)
    except BaseException as exc:  # the parent reports it
        out.put(RuntimeError(f"history part {part}: {type(exc).__name__}: {exc}"))
        raise


def write_history(node_dir: Path, history: History, workers: int = 2) -> dict[str, int]:
    """Write ``history`` into the stopped node's state store: ``workers`` processes make the
    rows while this one inserts them. Returns the rows (``rows``) and the prior claims by
    status."""
    import multiprocessing as mp

    out: Any = mp.get_context("fork").Queue(maxsize=2 * workers)
    procs = [
        mp.get_context("fork").Process(target=_produce, args=(history, p, workers, out))
        for p in range(workers)
    ]
    for proc in procs:
        proc.start()
    totals = {"rows": 0}

    def chunks() -> Iterator[list[tuple[str, bytes]]]:
        running = workers
        while running:
            item = out.get(timeout=600)
            if item is None:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                chunk, status = item
                for decided, n in status.items():
                    totals[decided] = totals.get(decided, 0) + n
                yield chunk

    try:
        totals["rows"] = insert_rows(node_dir, chunks())
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.terminate()
    return totals


def insert_rows(node_dir: Path, chunks: Iterator[list[tuple[str, bytes]]]) -> int:
    """Insert rows (full keys, values) into the stopped node's state store, a chunk per
    SQLite transaction (see the module docstring: rows without a block)."""
    import sqlite3

    from carechain.ledger.statestore import StateStore

    state = StateStore(node_dir / "state.sqlite")
    height = state.height
    conn = state._writer
    conn.execute("PRAGMA cache_size=-262144")  # 256 MiB for the load
    written = 0
    try:
        for chunk in chunks:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO state (key, value, height) VALUES (?, ?, ?)",
                [(k, v, height) for k, v in chunk],
            )
            conn.execute("COMMIT")
            written += len(chunk)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.IntegrityError as exc:
        raise RuntimeError(f"a synthetic row's key is in the store already: {exc}") from exc
    finally:
        state.close()
    return written
