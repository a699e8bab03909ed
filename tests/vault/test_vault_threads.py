"""Many threads on one vault; group commit shares fsyncs and keeps each write's outcome apart."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from carechain.errors import InvalidInput, NodeFailure, RecordErased
from carechain.vault import Vault, new_record_id, new_salt
from carechain.vault.writer import GroupWriter


def test_concurrent_writers_and_readers(vault: Vault) -> None:
    written: list[str] = []
    written_lock = threading.Lock()
    erased: set[str] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        try:
            for n in range(40):
                record_id = new_record_id()
                data = f"worker {worker} record {n}".encode() * 30
                vault.put(
                    "pumch", record_id, f"p-{worker}", "Observation", "", data, new_salt(), now_ms=n
                )
                if n % 2:
                    vault.commit(record_id)
                if n % 10 == 9:  # erasures checkpoint the WAL while others read and write
                    assert vault.erase(record_id, now_ms=n)
                    erased.add(record_id)
                with written_lock:
                    written.append(record_id)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                with written_lock:
                    choice = random.choice(written) if written else None
                if choice is not None:
                    try:
                        assert vault.open(choice).entry.record_id == choice
                    except RecordErased:
                        assert choice in erased
                vault.entries(patient="p-1")
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in [*writers, *readers]:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()

    assert errors == []
    assert len(written) == 320
    assert len(vault.entries()) == 320
    assert len(vault.pending_older_than(2**62)) == 160
    assert len(erased) == 32
    for record_id in written:
        if record_id in erased:
            with pytest.raises(RecordErased):
                vault.open(record_id)
        else:
            vault.open(record_id)


def _queued(writer: GroupWriter, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(writer._queue) < count:
        assert time.monotonic() < deadline, "writes never queued"
        time.sleep(0.001)


def _insert_keys(conn: sqlite3.Connection, keys: Sequence[str]) -> list[str | Exception]:
    """A ``Bulk``: inserts every key but those starting with "dup", which it refuses."""
    outcomes: list[str | Exception] = []
    for key in keys:
        if key.startswith("dup"):
            outcomes.append(InvalidInput(f"{key} refused"))
        else:
            conn.execute("INSERT INTO t VALUES (?)", (key,))
            outcomes.append(key)
    return outcomes


def _explode(conn: sqlite3.Connection, keys: Sequence[str]) -> list[str]:
    """A ``Bulk`` that writes and then fails as a whole."""
    for key in keys:
        conn.execute("INSERT INTO t VALUES (?)", (key,))
    raise RuntimeError("bulk failed")


def test_writes_queued_behind_a_batch_commit_together_and_fail_alone(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "g.sqlite", isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    writer = GroupWriter(conn, purge=lambda: True)
    release = threading.Event()
    results: dict[str, object] = {}

    def insert(key: str, *, block: bool = False) -> Callable[[sqlite3.Connection], str]:
        def apply(c: sqlite3.Connection) -> str:
            if block:
                release.wait(10)
            c.execute("INSERT INTO t VALUES (?)", (key,))
            if key == "bad":
                raise InvalidInput("refused")  # its insert is undone with its savepoint
            return key

        return apply

    def call(key: str, write: Callable[[], object]) -> None:
        try:
            results[key] = write()
        except Exception as exc:
            results[key] = exc

    first = threading.Thread(
        target=call, args=("first", lambda: writer.run(insert("first", block=True)))
    )
    first.start()
    while not writer._writing:
        time.sleep(0.001)
    queued: dict[str, Callable[[], object]] = {
        "a": lambda: writer.run(insert("a")),
        "bad": lambda: writer.run(insert("bad")),
        "b": lambda: writer.run(insert("b")),
        "k1": lambda: writer.run_bulk(_insert_keys, "k1"),
        "dup-1": lambda: writer.run_bulk(_insert_keys, "dup-1"),
        "boom": lambda: writer.run_bulk(_explode, "boom"),
    }
    others = [threading.Thread(target=call, args=item) for item in queued.items()]
    for thread in others:
        thread.start()
    _queued(writer, len(queued))
    release.set()
    for thread in [first, *others]:
        thread.join()

    assert writer.batches == 2  # "first" alone, then all the others in one transaction
    assert [results[key] for key in ("first", "a", "b", "k1")] == ["first", "a", "b", "k1"]
    assert isinstance(results["bad"], InvalidInput)
    assert isinstance(results["dup-1"], InvalidInput)
    assert isinstance(results["boom"], RuntimeError)
    assert sorted(k for (k,) in conn.execute("SELECT k FROM t")) == ["a", "b", "first", "k1"]
    writer.close()
    with pytest.raises(NodeFailure, match="closed"):
        writer.run(insert("late"))
    conn.close()


def test_a_failed_commit_fails_every_write_of_the_batch(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "g.sqlite", isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE u (k TEXT PRIMARY KEY REFERENCES t (k) DEFERRABLE INITIALLY DEFERRED)"
    )
    conn.execute("PRAGMA foreign_keys=ON")
    writer = GroupWriter(conn, purge=lambda: True)
    # A deferred foreign key fails only at COMMIT, after every write of the batch applied.
    with pytest.raises(NodeFailure, match="nothing of it was stored"):
        writer.run(lambda c: c.execute("INSERT INTO u VALUES ('orphan')"))
    assert conn.execute("SELECT count(*) FROM u").fetchone() == (0,)
    assert not conn.in_transaction
    assert writer.run(lambda c: c.execute("INSERT INTO t VALUES ('ok')").rowcount) == 1
    conn.close()


def test_concurrent_puts_of_one_record_id_store_it_once(vault: Vault) -> None:
    """Puts queued behind a batch go to disk together; the same id twice: one wins."""
    release = threading.Event()
    outcomes: dict[str, list[object]] = {"rec-same-0001": [], "rec-other-001": []}

    def hold(conn: sqlite3.Connection) -> None:
        release.wait(10)

    def put(record_id: str) -> None:
        try:
            data = record_id.encode()
            vault.put("pumch", record_id, "p-1", "Observation", "", data, new_salt(), now_ms=1)
            outcomes[record_id].append("stored")
        except InvalidInput as exc:
            outcomes[record_id].append(exc.message)

    holder = threading.Thread(target=vault._writer.run, args=(hold,))
    holder.start()
    while not vault._writer._writing:
        time.sleep(0.001)
    before = vault._writer.batches
    puts = [
        threading.Thread(target=put, args=(record_id,))
        for record_id in ("rec-same-0001", "rec-other-001", "rec-same-0001")
    ]
    for thread in puts:
        thread.start()
    _queued(vault._writer, 3)
    release.set()
    for thread in [holder, *puts]:
        thread.join()

    assert vault._writer.batches == before + 2  # the held batch, then all three puts
    assert outcomes["rec-other-001"] == ["stored"]
    assert sorted(map(str, outcomes["rec-same-0001"])) == [
        "record 'rec-same-0001' already exists in this vault (pending)",
        "stored",
    ]
    assert vault.open("rec-same-0001").data == b"rec-same-0001"
