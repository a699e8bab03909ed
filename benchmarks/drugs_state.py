"""The verification-lookup part of benchmarks/drugs.py: the rows the drugs contract writes
for a pack's journey, millions of such packs written straight into a node's state store,
and lookups of packs' verdicts timed on it.

Building a million serials through transactions would take longer than the
benchmark may, so ``add_synthetic_packs`` writes the rows themselves into the
``state`` table of a stopped node's SQLite store, with exactly the keys and
canonical JSON values ``carechain.contracts.drugs`` writes (``journey_rows``
builds them; ``check_rows`` compares them byte for byte with rows a real node
wrote for packs that went through real transactions). The store's height,
block hash and state digest are left alone, so the node starts on it as usual;
these rows are not on the chain (a replay or ``carechain verify`` would not
make them), which is why the node's directory is a temporary one.
"""

from __future__ import annotations

import http.client
import random
import secrets
import statistics
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ledger_throughput import percentile

GTIN = "09506000134352"
"""GS1's example GTIN (tests/standards/gs1/testdata/README.md, source "Resolver CE")."""
MAKER, DISTRIBUTOR, PHARMACY = "sinopharm-mfg", "jd-logistics", "yf-pharmacy"
PREFIX = "drugs/"
DAY_MS = 24 * 3600 * 1000
GROUP = 5000
"""Packs commissioned (and shipped) together in one synthetic transaction: MAX_ITEMS."""

# -- the rows the contract writes -------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One committed step of a pack's journey: its block height, block time and txid."""

    height: int
    time: int
    txid: str
    index: int = 0
    """The transaction's position in its block."""


@dataclass(frozen=True)
class Journey:
    """What a pack went through: ``steps`` holds 1 to 6 of commission, ship (to the
    distributor), receive, ship (to the pharmacy), receive, dispense."""

    key: str
    lot: str
    expiry: str  # ISO date, as the contract stores it
    steps: tuple[Step, ...]
    shipments: tuple[str, str]
    patient: str


def encode(value: dict[str, Any]) -> bytes:
    """Canonical JSON (RFC 8785) for these values: ASCII text, integers and null, keys
    sorted (``check_rows`` compares the result with ``canonical_bytes``)."""
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _event(key: str, step: Step, action: str, org: str, **fields: Any) -> tuple[str, bytes]:
    """``Drugs._event``: ``event/<item>/<height:012d>/<txid>``."""
    doc = {
        "action": action,
        "org": org,
        "time": step.time,
        "txid": step.txid,
        "seq": [step.height, step.index],
    }
    doc.update(fields)
    return f"event/{key}/{step.height:012d}/{step.txid}", encode(doc)


def journey_rows(j: Journey) -> list[tuple[str, bytes]]:
    """The pack row and event rows (keys without ``drugs/``) the contract leaves for ``j``."""
    first, steps = j.steps[0], j.steps
    pack: dict[str, Any] = {
        "key": j.key,
        "product": j.key.removeprefix("sgtin:")[:14],
        "lot": j.lot,
        "expiry": j.expiry,
        "manufacturer": MAKER,
        "status": "active",
        "parent": None,
        "owner": MAKER,
        "transit": None,
        "time": first.time,
        "txid": first.txid,
    }
    events = [_event(j.key, first, "ADD", MAKER, biz_step="commissioning", disposition="active")]
    legs = ((MAKER, DISTRIBUTOR, j.shipments[0]), (DISTRIBUTOR, PHARMACY, j.shipments[1]))
    for n, (sender, to, shipment) in enumerate(legs):
        if len(steps) > 1 + 2 * n:  # shipped
            pack["transit"] = shipment
            events.append(
                _event(
                    j.key,
                    steps[1 + 2 * n],
                    "OBSERVE",
                    sender,
                    biz_step="shipping",
                    disposition="in_transit",
                    to=to,
                    shipment=shipment,
                )
            )
        if len(steps) > 2 + 2 * n:  # received
            pack.update(owner=to, transit=None)
            events.append(
                _event(
                    j.key,
                    steps[2 + 2 * n],
                    "OBSERVE",
                    to,
                    biz_step="receiving",
                    disposition="in_progress",
                    source=sender,
                    shipment=shipment,
                )
            )
    if len(steps) > 5:
        done = steps[5]
        pack.update(
            status="dispensed",
            dispensed={"time": done.time, "txid": done.txid, "patient": j.patient},
        )
        events.append(
            _event(
                j.key,
                done,
                "DELETE",
                PHARMACY,
                biz_step="dispensing",
                disposition="dispensed",
                patient=j.patient,
            )
        )
    return [(f"pack/{j.key}", encode(pack)), *events]


def shipment_row(
    shipment: str, sender: str, to: str, items: list[str], shipped: int, received: int
) -> tuple[str, bytes]:
    """``shipment/<id>`` once received."""
    doc = {
        "id": shipment,
        "from": sender,
        "to": to,
        "items": items,
        "status": "received",
        "shipped": shipped,
        "received": received,
    }
    return f"shipment/{shipment}", encode(doc)


def check_rows(state: Any, j: Journey) -> None:
    """The rows ``journey_rows`` makes for ``j`` are byte for byte the ones a node wrote
    for it (a pack that went through real transactions), and are canonical JSON."""
    import orjson

    from carechain.crypto.canonical import canonical_bytes

    made = journey_rows(j)
    stored = [(f"pack/{j.key}", state.get(f"{PREFIX}pack/{j.key}"))]
    stored += [(k[len(PREFIX) :], v) for k, v in state.scan(f"{PREFIX}event/{j.key}/")]
    for n, (sender, to) in enumerate(((MAKER, DISTRIBUTOR), (DISTRIBUTOR, PHARMACY))):
        if len(j.steps) > 2 + 2 * n:  # a shipment of this pack alone, received
            times = j.steps[1 + 2 * n].time, j.steps[2 + 2 * n].time
            made.append(shipment_row(j.shipments[n], sender, to, [j.key], *times))
            stored.append((made[-1][0], state.get(PREFIX + made[-1][0])))
    for mine, theirs in zip(sorted(made), sorted(stored), strict=False):
        if mine != theirs or len(made) != len(stored):
            raise RuntimeError(
                f"the synthetic rows of {j.key} differ from the node's ({len(made)} rows, "
                f"{len(stored)} stored):\n  {mine!r}\n  {theirs!r}"
            )
    for _, value in made:
        if canonical_bytes(orjson.loads(value)) != value:
            raise RuntimeError(f"a synthetic row of {j.key} is not canonical JSON")


def real_journey(state: Any, key: str, shipments: tuple[str, str], patient: str) -> Journey:
    """A real pack's journey, its heights, times and txids read from its events."""
    import orjson

    pack = orjson.loads(state.get(f"{PREFIX}pack/{key}"))
    steps = []
    for row_key, value in state.scan(f"{PREFIX}event/{key}/"):
        doc = orjson.loads(value)
        steps.append(Step(int(row_key.split("/")[-2]), doc["time"], doc["txid"], doc["seq"][1]))
    steps.sort(key=lambda s: (s.height, s.index))
    return Journey(key, pack["lot"], pack["expiry"], tuple(steps), shipments, patient)


def pack_key(serial: str) -> str:
    return f"sgtin:{GTIN}.{serial}"


def signed(creds: Any, path: str, body: bytes, method: str = "POST") -> dict[str, str]:
    from carechain.api.auth import sign_request
    from carechain.crypto.suite import DEFAULT

    headers = sign_request(DEFAULT, creds.private_key, creds.fingerprint, method, path, body)
    if body:
        headers["content-type"] = "application/json"
    return headers


# -- many packs --------------------------------------------------------------------------------

STAGES = (1, 3, 5, 6)
"""Steps taken by a synthetic group: at the maker, the distributor, the pharmacy; and
groups at the pharmacy of which half the packs are dispensed (6 steps)."""
STAGE_WEIGHTS = (0.4, 0.3, 0.15, 0.15)


def synthetic_serial(index: int) -> str:
    return f"S{index:08d}"


def _txid(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def synthetic_groups(count: int, now_ms: int, expiry: str, seed: int) -> Iterator[list[Journey]]:
    """``count`` packs in groups of ``GROUP``: each group commissioned in one transaction
    and shipped and received together; packs of a dispensing group alternate between
    dispensed (each by its own transaction) and on the pharmacy's shelf."""
    rng = random.Random(seed)
    for start in range(0, count, GROUP):
        size = min(GROUP, count - start)
        depth = rng.choices(STAGES, STAGE_WEIGHTS)[0]
        lot = f"L{start // GROUP:06d}"
        shared = tuple(
            Step(1 + n, now_ms - (30 - 5 * n) * DAY_MS, _txid(rng), 0) for n in range(min(depth, 5))
        )
        shipments = (f"shp-{rng.getrandbits(96):024x}", f"shp-{rng.getrandbits(96):024x}")
        group = []
        for i in range(start, start + size):
            steps = shared
            if depth == 6 and i % 2 == 0:
                steps = (*shared, Step(6, now_ms - DAY_MS + i % 1000, _txid(rng)))
            key = f"sgtin:{GTIN}.{synthetic_serial(i)}"
            patient = f"pumch:patient-{i:07x}"
            group.append(Journey(key, lot, expiry, steps, shipments, patient))
        yield group


def add_synthetic_packs(node_dir: Path, count: int, expiry: str, seed: int = 5) -> dict[str, Any]:
    """Write ``count`` synthetic packs' rows into the stopped node's state store.

    Returns the serial indexes of genuine and of dispensed packs (to pick lookups
    from), the rows written and the ``drugs/pack/`` rows now in the store.
    """
    from carechain.ledger.statestore import StateStore

    state = StateStore(node_dir / "state.sqlite")
    height = state.height
    now_ms = int(time.time() * 1000)
    genuine = array("l")  # serial indexes of packs still in the supply chain
    dispensed = array("l")
    rows = 0
    conn = state._writer  # rows without a block: see the module docstring
    insert = "INSERT INTO state (key, value, height) VALUES (?, ?, ?)"
    try:
        for group in synthetic_groups(count, now_ms, expiry, seed):
            packs: list[tuple[str, bytes, int]] = []
            events: list[tuple[str, bytes, int]] = []
            for j in group:
                (pack_key, pack_value), *journey = journey_rows(j)
                packs.append((PREFIX + pack_key, pack_value, height))
                events.extend((PREFIX + k, v, height) for k, v in journey)
                index = int(j.key.rsplit(".S", 1)[1])
                (dispensed if len(j.steps) == 6 else genuine).append(index)
            depth = len(group[0].steps)
            extra = []
            items = [j.key for j in group]
            for n, (sender, to) in enumerate(((MAKER, DISTRIBUTOR), (DISTRIBUTOR, PHARMACY))):
                if depth >= 3 + 2 * n:
                    steps = group[0].steps
                    key, value = shipment_row(
                        group[0].shipments[n],
                        sender,
                        to,
                        items,
                        steps[1 + 2 * n].time,
                        steps[2 + 2 * n].time,
                    )
                    extra.append((PREFIX + key, value, height))
            conn.execute("BEGIN")
            conn.executemany(insert, packs)
            conn.executemany(insert, events)
            conn.executemany(insert, extra)
            conn.execute("COMMIT")
            rows += len(packs) + len(events) + len(extra)
        total = conn.execute(
            "SELECT count(*) FROM state WHERE key >= ? AND key < ?",
            (f"{PREFIX}pack/", f"{PREFIX}pack0"),
        ).fetchone()[0]
    finally:
        state.close()
    return {"genuine": genuine, "dispensed": dispensed, "rows": rows, "packs": total}


def new_shipment() -> str:
    return "shp-" + secrets.token_hex(12)


def time_verdicts(node_dir: Path, lookups: list[tuple[str, str]]) -> list[float]:
    """``verdict()`` on the node's state store in process, one lookup at a time (ms);
    ``lookups`` holds (pack key, expected verdict)."""
    import orjson

    from carechain.contracts.drugs import verdict
    from carechain.ledger.statestore import StateStore
    from carechain.standards.gs1 import PackId

    state = StateStore(node_dir / "state.sqlite")
    try:

        def get(key: str) -> Any:  # as DrugService._get
            raw = state.get(PREFIX + key)
            return None if raw is None else orjson.loads(raw)

        now = int(time.time() * 1000)
        latencies = []
        for key, expected in lookups:
            start = time.perf_counter()
            found = verdict(get, PackId.from_key(key), None, now)
            latencies.append((time.perf_counter() - start) * 1000)
            if found != expected:
                raise RuntimeError(f"verdict() says {found} of {key}, expected {expected}")
    finally:
        state.close()
    return sorted(latencies)


# -- verification lookups ----------------------------------------------------------------------


class Pool:
    """Pack keys to pick lookups from: real ones, and synthetic ones by serial index
    (ten million keys as strings would take gigabytes)."""

    def __init__(self, keys: list[str], synthetic: Any) -> None:
        self.keys, self.synthetic = keys, synthetic

    def __len__(self) -> int:
        return len(self.keys) + len(self.synthetic)

    def __getitem__(self, i: int) -> str:
        if i < len(self.keys):
            return self.keys[i]
        return pack_key(synthetic_serial(self.synthetic[i - len(self.keys)]))


def plan_lookups(
    count: int, genuine: Pool, dispensed: Pool, seed: int
) -> list[tuple[str, str, str]]:
    """(code as scanned, pack key, expected verdict): a third of each verdict."""
    rng = random.Random(seed)
    lookups = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            key, expected = genuine[rng.randrange(len(genuine))], "genuine"
        elif kind == 1:
            key, expected = dispensed[rng.randrange(len(dispensed))], "dispensed"
        else:
            key, expected = pack_key(f"U{rng.getrandbits(40):012x}"), "unknown"
        serial = key.rsplit(".", 1)[1]
        code = f"https://id.gs1.org/01/{GTIN}/21/{serial}" if rng.random() < 0.5 else key
        lookups.append((code, key, expected))
    rng.shuffle(lookups)
    return lookups


def lookup_run(node: Any, creds: Any, lookups: list[tuple[str, str, str]]) -> list[float]:
    """One pharmacist's GETs, one at a time; latencies (ms), sorted. Verdicts checked."""
    import orjson

    prepared = []
    for code, key, expected in lookups:
        path = f"/v1/drugs/pack?code={quote(code, safe='')}"
        prepared.append((path, signed(creds, path, b"", "GET"), key, expected))
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    latencies = []
    try:
        for path, headers, key, expected in prepared:
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            latencies.append((time.perf_counter() - start) * 1000)
            doc = orjson.loads(answer)
            if response.status != 200 or doc.get("verdict") != expected or doc["pack"] != key:
                raise RuntimeError(f"lookup of {key}: HTTP {response.status}, {answer[:300]!r}")
    finally:
        conn.close()
    return sorted(latencies)


def bench_lookups(
    node: Any, creds: Any, genuine: Pool, dispensed: Pool, count: int, runs: int
) -> dict[str, float]:
    p50s, p99s, pooled = [], [], []
    for run in range(runs + 1):  # the first run warms up, not counted
        latencies = lookup_run(node, creds, plan_lookups(count, genuine, dispensed, run))
        if run:
            p50s.append(statistics.median(latencies))
            p99s.append(percentile(latencies, 0.99))
            pooled.extend(latencies)
            print(
                f"    run {run}: {count:,} lookups, p50 {p50s[-1]:.2f} ms, p99 {p99s[-1]:.2f} ms, "
                f"max {latencies[-1]:.1f} ms"
            )
    pooled.sort()
    print(
        f"    all {len(pooled):,}: p50 {statistics.median(pooled):.2f} ms, "
        f"p99 {percentile(pooled, 0.99):.2f} ms; every verdict as expected"
    )
    return {
        "verify_lookup_p50_ms": statistics.median(p50s),
        "verify_lookup_p99_ms": statistics.median(p99s),
    }
