"""The vault and the chain agree after crashes.

* kill -9 of a node process while clinicians add records: after restart every
  acknowledged record is on the chain and opens from the vault with its
  fingerprint, no entry is left pending, and ``carechain verify`` passes.
* Each window between the vault and the chain, settled on restart: a record
  stored but whose transaction committed unseen (committed), one whose
  transaction never came (dropped once stale), an erasure committed before the
  key was destroyed (destroyed).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from carechain.api.client import ApiError, NodeClient, build_transaction, prepare_records
from carechain.identity.wallet import Credentials
from carechain.node.config import load_config
from carechain.node.node import Node
from carechain.vault import NewRecord, new_record_id, new_salt
from support import free_port, run_verify, start_node

pytestmark = pytest.mark.integration

Member = Callable[[str], Credentials]
PATIENT = "pumch:patient-7f3a9c"
EXAMPLE = (
    Path(__file__).parent.parent / "standards/fhir/testdata/examples/observation-example.json"
).read_bytes()  # FHIR R4 specification example (see that directory's README)


def adder(url: str, creds: Credentials, acked: list[str], stop: threading.Event) -> None:
    with NodeClient(url, creds, timeout=5) as client:
        while not stop.is_set():
            try:
                result = client.add_records(PATIENT, [EXAMPLE] * random.randint(1, 5), timeout=5)
            except ApiError:
                return  # the node died under us
            if result.get("code") == "ok":
                acked.extend(result["records"])


def test_kill_9_while_adding_records_loses_no_acknowledged_record(
    node_dir: Path, member: Member
) -> None:
    acked: list[str] = []
    for round_ in range(3):
        port = free_port()
        proc = start_node(node_dir, port)
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=adder, args=(f"http://127.0.0.1:{port}", member(name), acked, stop)
            )
            for name in ("pumch/dr-wang", "chaoyang-clinic/dr-zhao")
        ]
        for t in threads:
            t.start()
        time.sleep(0.6 + 0.4 * round_)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert len(acked) > 10
    with Node(load_config(node_dir)) as node:
        for record_id in acked:
            on_chain = orjson.loads(node.state.get(f"records/record/{record_id}") or b"null")
            assert on_chain is not None, f"acknowledged record {record_id} lost"
            opened = node.vault.open(record_id)
            assert opened.data == EXAMPLE
            assert opened.entry.fingerprint == on_chain["fingerprint"]
        # What is still pending never reached the chain (a request cut off by the kill).
        pending = [e.record_id for e in node.vault.entries() if e.status == "pending"]
        assert not [r for r in pending if node.state.get(f"records/record/{r}") is not None]
    result = run_verify(node_dir)
    assert result.returncode == 0, result.stderr


def test_restart_settles_each_window_between_vault_and_chain(
    node_dir: Path, member: Member
) -> None:
    doctor, patient = member("pumch/dr-wang"), member("pumch/patient-7f3a9c")
    with Node(load_config(node_dir)) as node:
        node.start()
        # 1. Stored, and its transaction committed, but the node died before marking it.
        items, tx = prepare_records(doctor, "demo", PATIENT, [EXAMPLE])
        meta = tx.body.args["records"][0]
        salt = bytes.fromhex(items[0]["salt"])
        node.vault.put(
            "pumch", meta["record"], PATIENT, "Observation", "vital-signs", EXAMPLE, salt,
            now_ms=int(time.time() * 1000),
        )  # fmt: skip
        assert node.submit_one(tx, wait_s=10).code == "ok"
        committed_late = meta["record"]
        # 2. Stored, but its transaction never reached the chain, twelve minutes ago.
        lost = new_record_id()
        node.vault.put_many(
            [NewRecord("pumch", lost, PATIENT, "Observation", "vital-signs", EXAMPLE, new_salt())],
            now_ms=int(time.time() * 1000) - 12 * 60 * 1000,
        )
        # ... and one just now, whose transaction may still be on its way: kept.
        recent = new_record_id()
        node.vault.put(
            "pumch", recent, PATIENT, "Observation", "vital-signs", EXAMPLE, new_salt(),
            now_ms=int(time.time() * 1000),
        )  # fmt: skip
        # 3. An erasure committed while the node could not destroy the key.
        items, tx = prepare_records(doctor, "demo", PATIENT, [EXAMPLE])
        erased = node.records.add(node.member(doctor.fingerprint), [(items[0]["resource"],
                                  items[0]["salt"])], tx, 10)["records"][0]  # fmt: skip
        node.committer.on_commit.remove(node.records.after_commit)
        erase = build_transaction(patient, "demo", "records", "erase", {"record": erased})
        assert node.submit_one(erase, wait_s=10).code == "ok"
        assert not node.vault.entry(erased).erased
    with Node(load_config(node_dir)) as node:
        assert node.vault.entry(committed_late).status == "committed"
        assert node.vault.entry(lost) is None
        assert node.vault.entry(recent).status == "pending"
        assert node.vault.entry(erased).erased


def test_verify_opens_every_vault_record_and_names_a_tampered_one(
    node_dir: Path, member: Member
) -> None:
    doctor = member("pumch/dr-wang")
    with Node(load_config(node_dir)) as node:
        node.start()
        items, tx = prepare_records(doctor, "demo", PATIENT, [EXAMPLE, EXAMPLE])
        pairs = [(i["resource"], i["salt"]) for i in items]
        added = node.records.add(node.member(doctor.fingerprint), pairs, tx, 10)["records"]
    good = run_verify(node_dir)
    assert good.returncode == 0, good.stderr
    assert "vault: 2 records match their fingerprints on the chain" in good.stdout
    with sqlite3.connect(node_dir / "vault" / "vault.sqlite") as db:
        (cipher,) = db.execute(
            "SELECT ciphertext FROM records WHERE record_id = ?", (added[1],)
        ).fetchone()
        db.execute(
            "UPDATE records SET ciphertext = ? WHERE record_id = ?",
            (bytes([cipher[0] ^ 0x20]) + cipher[1:], added[1]),
        )
    bad = run_verify(node_dir)
    assert bad.returncode == 1
    assert f"{added[1]}: the content of record" in bad.stderr and added[0] not in bad.stderr
