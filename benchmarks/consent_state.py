"""The consent-check part of benchmarks/records.py: a records state of many patients
and consents, written straight into a real state store, and ``consent.decide`` timed on it.

The state is written as synthetic blocks of state writes through
``StateStore.commit_block`` (no transactions: a million ``grant_consent``
transactions would take longer than the benchmark may), with exactly the keys
and canonical JSON values the records contract writes.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

DAY_MS = 24 * 3600 * 1000
ORGS = [f"hosp-{i:02d}" for i in range(10)] + [f"clinic-{i:02d}" for i in range(10)]
CLINICIANS_PER_ORG = 20


def _readers() -> list[Any]:
    import hashlib

    from carechain.contracts.membership import MemberRecord
    from carechain.identity.roles import OrgType, Role

    return [
        MemberRecord(
            fingerprint=hashlib.sha256(f"{org}/dr-{i}".encode()).hexdigest(),
            member_id=f"dr-{i}",
            org_id=org,
            org_type=OrgType.HOSPITAL if org.startswith("hosp") else OrgType.CLINIC,
            role=Role.CLINICIAN,
            public_key=b"\0" * 32,
            not_before_ms=0,
            not_after_ms=2**53 - 1,
            revoked=False,
        )
        for org in ORGS
        for i in range(CLINICIANS_PER_ORG)
    ]


def build_consent_state(
    path: Path, patients: int, consents: int, now_ms: int, seed: int = 7
) -> dict[str, list[tuple[Any, str]]]:
    """Write the records contract's state for ``patients`` and ``consents`` into a store.

    Each patient has two records held by its hospital and about
    consents/patients consents to other organisations or their clinicians
    (half each), with random purposes, scopes and periods (most active; some
    expired, pending or revoked). Returns each patient's consents as
    (grantee member or org, purpose) pairs to pick likely-granted lookups from.
    """
    import orjson

    from carechain.crypto.canonical import canonical_bytes
    from carechain.ledger.statestore import BlockWrites, StateStore
    from carechain.standards.fhir import RECORD_TYPES

    rng = random.Random(seed)
    readers = _readers()
    state = StateStore(path)
    state.bind_writer()
    height = [0]

    def commit(writes: list[tuple[str, bytes | None]]) -> None:
        writes.sort()
        state.commit_block(
            BlockWrites(
                height=height[0],
                block_hash=f"{height[0]:064x}",
                state_digest="0" * 64,
                time_ms=now_ms,
                tree_size=0,
                writes=writes,
                txs=[],
                nonces=[],
                tree_head=(b"", b""),
            )
        )
        height[0] += 1

    def encode(value: dict[str, Any]) -> bytes:
        # canonical_bytes is what the contract's overlay writes; orjson with sorted keys
        # gives the same bytes for these ASCII-only values (checked on a sample below).
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)

    scopes: list[tuple[list[str], list[str]]] = [
        ([], []),
        ([], []),
        (["Observation"], []),
        (["Observation", "Condition"], []),
        ([], ["vital-signs"]),
        ([rng.choice(RECORD_TYPES)], []),
    ]
    per_patient = consents // patients
    extra = consents - per_patient * patients
    sample: list[tuple[dict[str, Any], bytes]] = []
    index: dict[str, list[tuple[Any, str]]] = {}
    writes: list[tuple[str, bytes | None]] = []
    consent_rows: list[tuple[str, bytes | None]] = []
    made = 0
    for p in range(patients):
        org = ORGS[p % 10]  # a hospital
        patient = f"{org}:patient-{p:07d}"
        for r in range(2):
            record_id = f"rec-{rng.getrandbits(80):020x}"
            record = {
                "id": record_id,
                "patient": patient,
                "custodian": org,
                "type": "Observation" if r == 0 else "Condition",
                "category": "vital-signs" if r == 0 else "problem-list-item",
                "fingerprint": f"{rng.getrandbits(256):064x}",
                "author": readers[ORGS.index(org) * CLINICIANS_PER_ORG].fingerprint,
                "time": now_ms - DAY_MS,
                "height": 1,
                "txid": f"{rng.getrandbits(256):064x}",
                "status": "active",
            }
            value = encode(record)
            writes.append((f"records/record/{record_id}", value))
            writes.append((f"records/patient/{patient}/record/{record_id}", value))
            index.setdefault(patient, []).append((record, ""))
        count = per_patient + (1 if p < extra else 0)
        grants = []
        for _ in range(count):
            member = rng.choice(readers)
            while member.org_id == org:
                member = rng.choice(readers)
            by_org = rng.random() < 0.5
            grantee = member.org_id if by_org else member.fingerprint
            purposes = sorted(rng.sample(["treatment", "payment", "research"], rng.randint(1, 2)))
            types, categories = rng.choice(scopes)
            kind = rng.random()
            start = now_ms - 10 * DAY_MS if kind > 0.05 else now_ms + DAY_MS  # 5 % pending
            end = now_ms + 300 * DAY_MS if kind > 0.15 else now_ms - DAY_MS  # 10 % expired
            consent_id = f"con-{rng.getrandbits(96):024x}"
            consent = {
                "id": consent_id,
                "patient": patient,
                "grantee": grantee,
                "grantee_kind": "org" if by_org else "member",
                "purposes": purposes,
                "types": types,
                "categories": categories,
                "records": [],
                "start": min(start, end - 1),
                "end": end,
                "granted": now_ms - 10 * DAY_MS,
                "by": f"{rng.getrandbits(256):064x}",
                "height": 1,
                "txid": f"{rng.getrandbits(256):064x}",
                "revoked": now_ms - DAY_MS if rng.random() < 0.05 else None,
            }
            value = encode(consent)
            if len(sample) < 200:
                sample.append((consent, value))
            grants.append((f"records/grant/{patient}/{grantee}/{consent_id}", value))
            consent_rows.append(
                (f"records/consent/{consent_id}", encode({"grantee": grantee, "patient": patient}))
            )
            index[patient].append((member, purposes[0]))
        made += count
        writes.extend(grants)
        if len(writes) >= 200_000:
            commit(writes)
            writes = []
    if writes:
        commit(writes)
    consent_rows.sort()
    for start in range(0, len(consent_rows), 200_000):
        commit(consent_rows[start : start + 200_000])
    for consent, value in sample:
        if canonical_bytes(consent) != value:
            raise RuntimeError("the synthetic consent is not in canonical JSON")
    state.close()
    if made != consents:
        raise RuntimeError(f"built {made} consents, not {consents}")
    return index


def bench_consent_checks(patients: int, consents: int, checks: int, runs: int) -> dict[str, float]:
    import orjson

    from carechain.contracts.consent import PURPOSES, decide
    from carechain.ledger.statestore import StateStore

    now_ms = int(time.time() * 1000)
    work = Path(tempfile.mkdtemp(prefix="cc-consents-"))
    try:
        path = work / "state.sqlite"
        start = time.perf_counter()
        index = build_consent_state(path, patients, consents, now_ms)
        built = time.perf_counter() - start
        state = StateStore(path)
        rows = state._reader().execute("SELECT count(*) FROM state").fetchone()[0]
        size = sum(f.stat().st_size for f in work.iterdir()) / 2**20
        print(
            f"  state built in {built:.1f} s: {rows:,} rows ({size:,.0f} MiB) at height "
            f"{state.height}, in a fresh temporary directory"
        )
        prefix = "records/"
        cut = len(prefix)

        def get(key: str) -> Any:  # as RecordService._get
            raw = state.get(prefix + key)
            return None if raw is None else orjson.loads(raw)

        def scan(key: str) -> list[tuple[str, Any]]:  # as RecordService._scan
            return [(k[cut:], orjson.loads(v)) for k, v in state.scan(prefix + key, -1)]

        readers = _readers()
        rng = random.Random(11)
        patient_ids = list(index)
        rates, granted_share = [], []
        for run in range(runs + 1):  # the first run warms the page cache, not counted
            lookups = []
            for _ in range(checks):
                patient = rng.choice(patient_ids)
                entries = index[patient]
                record = rng.choice(entries[:2])[0]
                if rng.random() < 0.5 and len(entries) > 2:
                    reader, purpose = rng.choice(entries[2:])  # a grantee: mostly granted
                else:
                    reader, purpose = rng.choice(readers), rng.choice(PURPOSES)
                    while reader.org_id == record["custodian"]:
                        reader = rng.choice(readers)
                lookups.append((reader, patient, record, purpose))
            granted = 0
            t0 = time.perf_counter()
            for reader, patient, record, purpose in lookups:
                granted += decide(scan, get, reader, patient, record, purpose, now_ms).granted
            elapsed = time.perf_counter() - t0
            if run:
                rates.append(checks / elapsed)
                granted_share.append(granted / checks)
                print(
                    f"  run {run}: {checks:,} checks in {elapsed:.2f} s = {rates[-1]:,.0f}/s, "
                    f"{granted:,} granted"
                )
        t0 = time.perf_counter()
        for reader, patient, record, purpose in lookups:
            found = get(f"record/{record['id']}")
            decide(scan, get, reader, patient, found, purpose, now_ms)
        with_fetch = checks / (time.perf_counter() - t0)
        state.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    share = statistics.median(granted_share)
    print(
        f"  granted {share:.0%} of lookups; {with_fetch:,.0f}/s when each check also reads "
        "the record's metadata from the state"
    )
    if not 0.1 < share < 0.9:
        raise RuntimeError(f"the lookups are not a mix of granted and refused ({share:.0%})")
    return {"consent_checks_per_s": statistics.median(rates)}
