"""Erasure (GDPR Art. 17): the record's key, salt and ciphertext leave the disk.

The scans read the raw bytes of ``vault.sqlite`` and ``vault.sqlite-wal`` and
look for 16-byte pieces of what was erased: a piece of a wrapped key or of a
ciphertext split across overflow pages would be found too, and 16 random bytes
never occur by chance.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from carechain.crypto.suite import CryptoSuite
from carechain.errors import RecordErased
from carechain.vault import Vault, VaultEntry
from carechain.vault import writer as writer_module

PutRecord = Callable[..., VaultEntry]

SIZES = {"small": 100, "fhir-2k": 2048, "overflow-20k": 20_000}


def _plaintext(label: str, size: int) -> bytes:
    """Recognisable plaintext: the label repeated, so a leak of any part of it is visible.

    The label must not be a record id (tombstones keep those).
    """
    unit = f"<{label}:plaintext>".encode()
    return (unit * (size // len(unit) + 1))[:size]


def _pieces(blob: bytes, size: int = 16, step: int = 256) -> list[bytes]:
    starts = [*range(0, len(blob) - size + 1, step), len(blob) - size]
    return [blob[start : start + size] for start in starts]


def _disk(vault: Vault) -> bytes:
    files = [vault.path, Path(f"{vault.path}-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


def _secrets_of(vault: Vault, record_id: str) -> tuple[bytes, bytes]:
    conn = sqlite3.connect(vault.path)
    try:
        row = conn.execute(
            "SELECT wrapped_key, ciphertext FROM records WHERE record_id = ?", (record_id,)
        ).fetchone()
    finally:
        conn.close()
    return bytes(row[0]), bytes(row[1])


def test_erase_then_open_is_record_erased_and_erasing_twice_is_false(
    vault: Vault, put_record: PutRecord
) -> None:
    entry = put_record()
    vault.commit(entry.record_id)
    assert vault.erase(entry.record_id, now_ms=2_000) is True
    with pytest.raises(RecordErased, match="was erased"):
        vault.open(entry.record_id)
    assert vault.erase(entry.record_id, now_ms=3_000) is False
    tombstone = vault.entry(entry.record_id)
    assert tombstone is not None
    assert tombstone.erased
    assert tombstone.fingerprint == entry.fingerprint  # what the chain holds, now meaningless
    assert tombstone.status == "committed"

    conn = sqlite3.connect(vault.path)
    try:
        row = conn.execute(
            "SELECT erased, erased_ms, wrapped_key, key_nonce, ciphertext, nonce FROM records"
        ).fetchone()
    finally:
        conn.close()
    assert row == (1, 2_000, None, None, None, None)


def test_erase_leaves_no_key_ciphertext_or_plaintext_in_the_files(
    vault: Vault, put_record: PutRecord
) -> None:
    erased: dict[str, bytes] = {}
    kept: dict[str, bytes] = {}
    for label, size in SIZES.items():
        for fate in ("erased", "kept"):
            record_id = f"rec-{fate}-{label}"
            plaintext = _plaintext(f"diagnosis {len(erased) + len(kept)}", size)
            put_record(record_id=record_id, data=plaintext)
            (erased if fate == "erased" else kept)[record_id] = plaintext
    vault.commit_many([*erased, *kept])
    material = {record_id: _secrets_of(vault, record_id) for record_id in [*erased, *kept]}

    # The scan works: before erasure every record's key and ciphertext is on disk.
    disk = _disk(vault)
    for wrapped_key, ciphertext in material.values():
        assert all(piece in disk for piece in _pieces(wrapped_key))
        assert all(piece in disk for piece in _pieces(ciphertext))

    for record_id in erased:
        assert vault.erase(record_id, now_ms=9_000)
    vault._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    disk = _disk(vault)
    for record_id, plaintext in erased.items():
        wrapped_key, ciphertext = material[record_id]
        assert not any(piece in disk for piece in _pieces(wrapped_key)), record_id
        assert not any(piece in disk for piece in _pieces(ciphertext)), record_id
        assert not any(piece in disk for piece in _pieces(plaintext)), record_id
    for record_id, plaintext in kept.items():
        wrapped_key, ciphertext = material[record_id]
        assert all(piece in disk for piece in _pieces(wrapped_key)), record_id
        assert vault.open(record_id).data == plaintext


def test_erase_itself_purges_the_wal(vault: Vault, put_record: PutRecord) -> None:
    """No checkpoint by the caller: ``erase`` returns with the old pages gone from both files."""
    entry = put_record(data=_plaintext("wal", 3_000))
    vault.commit(entry.record_id)
    wrapped_key, ciphertext = _secrets_of(vault, entry.record_id)
    assert any(piece in _disk(vault) for piece in _pieces(wrapped_key))

    vault.erase(entry.record_id, now_ms=1)

    wal = Path(f"{vault.path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    disk = _disk(vault)
    assert not any(piece in disk for piece in _pieces(wrapped_key))
    assert not any(piece in disk for piece in _pieces(ciphertext))


def test_erasure_survives_reopening(
    vault_dir: Path, suite: CryptoSuite, vault: Vault, put_record: PutRecord
) -> None:
    entry = put_record()
    vault.erase(entry.record_id, now_ms=1)
    vault.close()
    with Vault(vault_dir, suite) as reopened:
        with pytest.raises(RecordErased):
            reopened.open(entry.record_id)
        assert reopened.erase(entry.record_id, now_ms=2) is False


def test_erase_under_constant_reads_purges_the_wal_at_once(
    vault: Vault, put_record: PutRecord, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: readers in a tight loop while others wrote kept the TRUNCATE checkpoint
    from ever finishing (each new read reused a stale read mark), so erased pages stayed
    in the WAL and the writes queued behind the checkpoint waited out the busy timeout."""
    written = [put_record(data=_plaintext(f"busy {n}", 600)).record_id for n in range(20)]
    stop = threading.Event()
    took: list[float] = []
    failures: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            with contextlib.suppress(RecordErased):
                vault.open(random.choice(written))
            vault.entries(patient="patient-0001")

    def write() -> None:
        try:
            for n in range(40):
                entry = put_record(data=_plaintext("victim", 600))
                written.append(entry.record_id)
                if n % 10 == 9:
                    started = time.monotonic()
                    assert vault.erase(entry.record_id, now_ms=1)
                    took.append(time.monotonic() - started)
        except BaseException as exc:
            failures.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write) for _ in range(8)]
    with caplog.at_level(logging.WARNING, logger="carechain.vault.store"):
        for thread in [*readers, *writers]:
            thread.start()
        for thread in writers:
            thread.join()
        stop.set()
        for thread in readers:
            thread.join()
    assert failures == []
    assert len(took) == 32
    assert "kept the WAL from being truncated" not in caplog.text
    assert max(took) < 0.9, took  # a purge that waits out its busy timeout takes 1 s


def test_a_purge_held_up_by_another_process_is_retried_later(
    vault: Vault,
    put_record: PutRecord,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another connection (a backup tool, say) holding an old snapshot keeps the erased
    pages in the WAL; the erasure still stands, and a later write purges them."""
    monkeypatch.setattr(writer_module, "PURGE_RETRY_S", 0.0)
    entry = put_record(data=_plaintext("held up", 2_000))
    vault.commit(entry.record_id)
    wrapped_key, _ = _secrets_of(vault, entry.record_id)

    outsider = sqlite3.connect(vault.path, isolation_level=None)
    try:
        outsider.execute("BEGIN")
        outsider.execute("SELECT count(*) FROM records").fetchall()  # holds its snapshot
        with caplog.at_level(logging.WARNING, logger="carechain.vault.store"):
            assert vault.erase(entry.record_id, now_ms=1)
        assert "stay in it until a later try" in caplog.text
        with pytest.raises(RecordErased):
            vault.open(entry.record_id)
        assert any(piece in _disk(vault) for piece in _pieces(wrapped_key))
    finally:
        outsider.close()

    put_record()  # any later write retries the purge
    assert Path(f"{vault.path}-wal").stat().st_size == 0
    assert not any(piece in _disk(vault) for piece in _pieces(wrapped_key))
