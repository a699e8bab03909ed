"""The embedded node end to end, in process: admission checks, commit, replay, recovery."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from carechain.api.client import build_transaction
from carechain.errors import (
    BadSignature,
    CertificateRevoked,
    ConfigError,
    InvalidTransaction,
    Replayed,
    UnknownSigner,
)
from carechain.identity.wallet import Credentials
from carechain.ledger.transaction import SignedTransaction, sign_transaction
from carechain.node.config import load_config
from carechain.node.node import Node
from carechain.node.verify import verify_ledger

Member = Callable[[str], Credentials]


def anchor(creds: Credentials, digest: str, **kw: object) -> SignedTransaction:
    return build_transaction(creds, "demo", "notary", "anchor", {"digest": digest}, **kw)  # type: ignore[arg-type]


def digest(n: int) -> str:
    return f"{n:064x}"


def test_genesis_registers_every_organisation_and_member(node: Node, member: Member) -> None:
    assert node.state.height == 0
    orgs = node.state_range("governance/org/", 100)
    assert len(orgs) == 9
    doctor = node.member(member("pumch/dr-wang").fingerprint)
    assert doctor is not None and doctor.role == "clinician" and doctor.org_id == "pumch"


def test_committed_transaction_changes_state_and_is_indexed(node: Node, member: Member) -> None:
    tx = anchor(member("pumch/dr-wang"), digest(1))
    status = node.submit_one(tx, wait_s=10)
    assert (status.status, status.code) == ("committed", "ok")
    value, height = node.state_value(f"notary/anchor/{digest(1)}")
    assert value["org"] == "pumch" and height == status.height
    assert node.transaction(tx.txid)[0].txid == tx.txid


def test_rejected_transaction_is_recorded_but_changes_no_state(node: Node, member: Member) -> None:
    before = node.state.state_digest
    rows_before = list(node.state.iter_state())
    tx = build_transaction(
        member("pumch/dr-wang"), "demo", "governance", "register_member", {"certificate": "x"}
    )
    status = node.submit_one(tx, wait_s=10)
    assert (status.status, status.code) == ("committed", "forbidden")
    assert "role clinician may not call" in (status.message or "")
    block = node.block(status.height or 0)
    assert block.results[status.index or 0].code == "forbidden"
    # The state digest chains an empty write-set: it moves, but no state row changed.
    assert node.state.state_digest != before
    assert list(node.state.iter_state()) == rows_before


def test_unknown_contract_argument_is_refused(node: Node, member: Member) -> None:
    tx = build_transaction(
        member("pumch/dr-wang"), "demo", "notary", "anchor", {"digest": digest(2), "colour": "red"}
    )
    status = node.submit_one(tx, wait_s=10)
    assert status.code == "contract_error" and "colour" in (status.message or "")
    with pytest.raises(Exception, match="no state"):
        node.state_value(f"notary/anchor/{digest(2)}")


def test_same_transaction_twice_commits_once(node: Node, member: Member) -> None:
    tx = anchor(member("pumch/dr-wang"), digest(3))
    first = node.submit_one(tx, wait_s=10)
    again = node.submit_one(tx, wait_s=10)
    assert first == again
    assert first.code == "ok"


def test_reused_nonce_is_refused_up_front(node: Node, member: Member) -> None:
    doctor = member("pumch/dr-wang")
    node.submit_one(anchor(doctor, digest(4), nonce="n-1"), wait_s=10)
    with pytest.raises(Replayed, match="nonce 'n-1'"):
        node.submit_one(anchor(doctor, digest(5), nonce="n-1"))


def test_bad_signature_is_refused_up_front(node: Node, member: Member) -> None:
    doctor, pharmacist = member("pumch/dr-wang"), member("yf-pharmacy/ph-chen")
    tx = anchor(doctor, digest(6))
    forged = sign_transaction(tx.body, {doctor.fingerprint: pharmacist.private_key})  # type: ignore[dict-item]
    height = node.state.height
    with pytest.raises(BadSignature, match="does not verify"):
        node.submit_one(forged)
    assert node.state.height == height and len(node.mempool) == 0


def test_unknown_signer_is_refused(node: Node, tmp_path: Path) -> None:
    from carechain.crypto.suite import DEFAULT
    from carechain.identity.wallet import Credentials as C

    stranger = C("ab" * 32, b"", DEFAULT.generate_private_key())  # type: ignore[arg-type]
    with pytest.raises(UnknownSigner):
        node.submit_one(anchor(stranger, digest(7)))


def test_wrong_chain_is_refused(node: Node, member: Member) -> None:
    tx = build_transaction(
        member("pumch/dr-wang"), "other", "notary", "anchor", {"digest": digest(8)}
    )
    with pytest.raises(InvalidTransaction, match="chain 'other'"):
        node.submit_one(tx)


def test_revoked_certificate_cannot_sign(node: Node, member: Member) -> None:
    admin, doctor = member("pumch/admin"), member("pumch/dr-wang")
    revoke = build_transaction(
        admin,
        "demo",
        "governance",
        "revoke_certificate",
        {"fingerprint": doctor.fingerprint, "reason": "keyCompromise"},
    )
    assert node.submit_one(revoke, wait_s=10).code == "ok"
    with pytest.raises(CertificateRevoked):
        node.submit_one(anchor(doctor, digest(9)))


def test_revocation_between_admission_and_block_is_caught_at_block_time(
    node_dir: Path, member: Member
) -> None:
    """Both in one block: the revocation first, so the doctor's transaction is rejected."""
    admin, doctor = member("pumch/admin"), member("pumch/dr-wang")
    with Node(load_config(node_dir)) as n:
        n.ordering.max_wait_ms = 300  # type: ignore[attr-defined]
        n.start()
        revoke = build_transaction(
            admin,
            "demo",
            "governance",
            "revoke_certificate",
            {"fingerprint": doctor.fingerprint, "reason": "keyCompromise"},
        )
        late = anchor(doctor, digest(10))
        events = n.submit([revoke, late])
        for event in events:
            assert not isinstance(event, Exception)
            event.wait(10)  # type: ignore[union-attr]
        assert n.tx_status(revoke.txid).code == "ok"
        assert n.tx_status(late.txid).code == "certificate_revoked"


def test_restart_keeps_every_block_and_verifies(node_dir: Path, member: Member) -> None:
    doctor = member("pumch/dr-wang")
    with Node(load_config(node_dir)) as n:
        n.start()
        statuses = [n.submit_one(anchor(doctor, digest(100 + i)), wait_s=10) for i in range(5)]
        digest_before = n.state.state_digest
    with Node(load_config(node_dir)) as n:
        assert n.state.state_digest == digest_before
        for status in statuses:
            assert n.tx_status(status.txid) == status
    report = verify_ledger(node_dir)
    assert report.blocks == statuses[-1].height + 1  # type: ignore[operator]
    assert report.state_checked


def test_blocks_missing_from_state_are_replayed_on_start(
    node_dir: Path, member: Member, tmp_path: Path
) -> None:
    """Crash between block fsync and state commit: the state store is one block behind."""
    doctor = member("pumch/dr-wang")
    with Node(load_config(node_dir)) as n:
        n.start()
        n.submit_one(anchor(doctor, digest(200)), wait_s=10)
    saved_state = tmp_path / "state-at-1"
    shutil.copy(node_dir / "state.sqlite", saved_state)
    with Node(load_config(node_dir)) as n:
        n.start()
        last = n.submit_one(anchor(doctor, digest(201)), wait_s=10)
        expected = (n.state.height, n.state.state_digest)
    for suffix in ("-wal", "-shm"):
        (node_dir / f"state.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy(saved_state, node_dir / "state.sqlite")
    with Node(load_config(node_dir)) as n:
        assert (n.state.height, n.state.state_digest) == expected
        assert n.tx_status(last.txid).code == "ok"


@pytest.mark.parametrize("old_version", [1, 2])
def test_state_store_in_an_older_layout_is_set_aside_and_rebuilt(
    node_dir: Path, member: Member, old_version: int
) -> None:
    """A node upgraded over a data directory of an older layout (1: text-keyed
    indexes; 2: state rows in a WITHOUT ROWID table) rebuilds its state from the
    block store and keeps refusing used nonces."""
    import sqlite3

    doctor = member("pumch/dr-wang")
    first = anchor(doctor, digest(300))
    with Node(load_config(node_dir)) as n:
        n.start()
        committed = n.submit_one(first, wait_s=10)
        expected = (n.state.height, n.state.state_digest)
    conn = sqlite3.connect(node_dir / "state.sqlite")
    conn.execute(f"PRAGMA user_version={old_version}")
    conn.close()
    with Node(load_config(node_dir)) as n:
        assert (n.state.height, n.state.state_digest) == expected
        assert n.tx_status(first.txid) == committed
        n.start()
        again = anchor(doctor, digest(301), nonce=first.body.nonce)
        with pytest.raises(Replayed, match=first.txid):
            n.submit_one(again)
    assert (node_dir / "state.sqlite.old").exists()
    assert verify_ledger(node_dir).state_checked


def test_two_peers_fed_the_same_batches_reach_identical_state(
    consortium: object, node_dir: Path, member: Member, tmp_path: Path
) -> None:
    """Determinism: a second peer re-executing the first peer's blocks gets the same bytes."""
    from carechain.node.committer import batch_of

    twin_dir = tmp_path / "twin"
    shutil.copytree(node_dir, twin_dir)
    doctor, admin = member("pumch/dr-wang"), member("pumch/admin")
    with Node(load_config(node_dir)) as first:
        first.start()
        for i in range(20):
            first.submit_one(anchor(doctor, digest(300 + i % 7)), wait_s=10)
        first.submit_one(
            build_transaction(
                admin,
                "demo",
                "governance",
                "revoke_certificate",
                {"fingerprint": doctor.fingerprint, "reason": "superseded"},
            ),
            wait_s=10,
        )
        blocks = [first.block(h) for h in range(first.state.height + 1)]
        final = (first.state.state_digest, first.state.block_hash)
    with Node(load_config(twin_dir)) as twin:
        for block in blocks[1:]:
            rebuilt = twin.committer.apply(batch_of(block))
            assert rebuilt.to_bytes() == block.to_bytes()
        assert (twin.state.state_digest, twin.state.block_hash) == final


def test_pipelined_blocks_see_the_writes_of_blocks_not_yet_persisted(
    node_dir: Path, member: Member
) -> None:
    """One transaction per block: block N+1 executes while N is still being persisted,
    and must still see N's writes (the second anchor of a digest is refused)."""
    doctor, pharmacist = member("pumch/dr-wang"), member("yf-pharmacy/ph-chen")
    with Node(load_config(node_dir)) as n:
        n.ordering.max_txs = 1  # type: ignore[attr-defined]
        n.start()
        txs = []
        for i in range(30):
            txs.append(anchor(doctor, digest(500 + i)))
            txs.append(anchor(pharmacist, digest(500 + i)))
        events = n.submit(txs)
        for event in events:
            assert not isinstance(event, Exception)
            assert event.wait(20)  # type: ignore[union-attr]
        codes = [n.tx_status(tx.txid).code for tx in txs]
        heights = {n.tx_status(tx.txid).height for tx in txs}
    assert len(heights) == 60, "every transaction in a block of its own"
    assert codes == ["ok", "contract_error"] * 30
    assert verify_ledger(node_dir).state_checked


def test_full_orderer_queue_answers_busy_and_keeps_nothing(node_dir: Path, member: Member) -> None:
    """Back-pressure: when the orderer holds too much, a submission is refused as a whole
    with Busy (HTTP 503), and none of it lingers in the mempool to block a retry."""
    from carechain.errors import Busy

    doctor = member("pumch/dr-wang")
    with Node(load_config(node_dir)) as n:
        n.ordering.max_pending = 5  # type: ignore[attr-defined]
        n.start()
        txs = [anchor(doctor, digest(900 + i)) for i in range(10)]
        with pytest.raises(Busy, match="waiting to be ordered"):
            n.submit(txs)
        assert len(n.mempool) == 0
        assert all(n.tx_status(tx.txid).status == "unknown" for tx in txs)
        # A smaller retry of the same transactions goes through.
        for event in n.submit(txs[:5]):
            assert not isinstance(event, Exception)
            assert event.wait(10)  # type: ignore[union-attr]
        assert all(n.tx_status(tx.txid).code == "ok" for tx in txs[:5])


class _NoOrdering:
    """An ordering service that orders nothing: the test hands batches in itself."""

    failure = None

    def start(self, next_height: int, last_time_ms: int, deliver: object) -> None: ...

    def submit(self, txs: object) -> None: ...

    def pending(self) -> int:
        return 0

    def stop(self) -> None: ...


def test_a_bad_batch_does_not_drop_the_good_block_built_before_it(
    node_dir: Path, member: Member
) -> None:
    """Regression: a build failure used to make the persister skip blocks already built."""
    import time as clock

    from carechain.identity.wallet import load_credentials
    from carechain.ledger.block import make_batch
    from carechain.node.committer import BatchRejected

    orderer = load_credentials(node_dir / "keys" / "orderer")
    with Node(load_config(node_dir), ordering=_NoOrdering()) as n:  # type: ignore[arg-type]
        real_commit = n.committer.commit

        def slow_commit(*args: object) -> None:
            clock.sleep(0.3)  # the persister lags, so block 1 is still queued
            real_commit(*args)  # type: ignore[arg-type]

        n.committer.commit = slow_commit  # type: ignore[method-assign]
        n.start()
        now = int(clock.time() * 1000)
        good = make_batch(
            "demo",
            1,
            now,
            [anchor(member("pumch/dr-wang"), digest(1000))],
            orderer.fingerprint,
            orderer.private_key,
        )
        forged = make_batch(
            "demo",
            2,
            now,
            [anchor(member("pumch/dr-wang"), digest(1001))],
            orderer.fingerprint,
            member("pumch/admin").private_key,
        )
        n._batches.put(good)
        n._batches.put(forged)
        deadline = clock.monotonic() + 10
        while n.state.height < 1 and clock.monotonic() < deadline:
            clock.sleep(0.05)
        assert n.state.height == 1, "the good block must still be persisted"
        assert isinstance(n.failure, BatchRejected)
        assert "orderer signature" in str(n.failure)


def test_worker_processes_default_to_the_cores_and_are_bounded(node_dir: Path) -> None:
    assert load_config(node_dir).verify_workers == max(1, min(os.cpu_count() or 1, 4))
    toml = node_dir / "node.toml"
    text = toml.read_text("utf-8")
    toml.write_text("verify_workers = -1\n" + text, "utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(node_dir)
    assert "verify_workers must be 0 to 64, got -1" in err.value.message


def test_without_worker_processes_a_batch_is_decoded_in_place(
    node_dir: Path, member: Member
) -> None:
    toml = node_dir / "node.toml"
    toml.write_text("verify_workers = 0\n" + toml.read_text("utf-8"), "utf-8")
    with Node(load_config(node_dir)) as running:
        running.start()
        txs = [anchor(member("pumch/dr-wang"), digest(900 + i)) for i in range(60)]
        body = b'{"transactions":[' + b",".join(tx.wire_bytes() for tx in txs) + b"]}"
        decoded = running.verifier.decode(body, 5000)
        assert [tx.txid for tx in decoded] == [tx.txid for tx in txs]  # type: ignore[union-attr]
        assert running.verifier._pool is None  # no process was started
