"""Group commit: one writer connection, many threads, one fsync per batch of writes.

The vault runs with ``synchronous=FULL``: a write it acknowledges has been
fsynced and survives a crash or power loss. One fsync per write would cap
the vault at a few thousand writes a second, so writes that arrive while
another batch is being committed wait and then go to disk together:

1. a thread queues its write and, if no batch is being written, leads: it
   takes every queued write;
2. the leader applies them in ONE SQLite transaction, writes of one kind (a
   ``Bulk`` function, such as "insert records") together in one call; when
   the batch holds several kinds, each kind runs inside its own savepoint;
3. the leader commits (one fsync for the whole batch), wakes every thread
   whose write was in the batch with its result or error, and wakes the
   first thread that queued meanwhile to lead the next batch.

Every waiting thread is woken exactly once. Few SQLite calls per batch
matter nearly as much as few fsyncs: the sqlite3 module releases the GIL
around each call, and with many busy threads every release lets others in
before the leader can go on.

Writes in one batch come from different threads, none waiting on another,
so any order among them is a valid one. A thread returns only after the
transaction holding its write is committed; if the commit fails, every write
of the batch fails with ``NodeFailure`` and none is stored.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from carechain.errors import CarechainError, NodeFailure

P = TypeVar("P")
R = TypeVar("R")

Bulk = Callable[[sqlite3.Connection, Sequence[P]], Sequence[R | Exception]]
"""Applies many writes of one kind: one outcome per payload, in order.

An exception as an outcome refuses that write alone, and the bulk function
must then have left no trace of it; an exception raised refuses them all
(and everything they wrote is rolled back).
"""


@dataclass(eq=False)
class _Write:
    bulk: Bulk[Any, Any]
    payload: object
    purge: bool
    wake: threading.Event = field(default_factory=threading.Event)
    """Set once: when the write is done, or when its thread is to lead the next batch."""
    done: bool = False
    result: object = None
    error: BaseException | None = None


PURGE_RETRY_S = 5.0
"""Seconds between attempts to purge the WAL after one could not finish."""


class GroupWriter:
    """Serialises writes on ``conn`` (opened with ``isolation_level=None``).

    ``purge`` is called after a batch with a write that asked for it
    (``purge=True``), before those writes' callers return; it returns
    whether it finished, and one that did not is tried again after later
    batches, at most every ``PURGE_RETRY_S`` seconds.
    """

    def __init__(self, conn: sqlite3.Connection, purge: Callable[[], bool]) -> None:
        self._conn = conn
        self._purge = purge
        self._purge_due = False
        self._purge_retry_at = 0.0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: list[_Write] = []
        self._writing = False
        self._closed = False
        self.batches = 0
        """Transactions committed so far (for tests and measurements)."""

    def run(self, apply: Callable[[sqlite3.Connection], R], *, purge: bool = False) -> R:
        """Run ``apply(conn)`` in a durable write transaction; return its result.

        ``apply`` runs on the leader's thread, in its own savepoint, and must
        only use the connection it is given. An exception it raises is
        re-raised here and its writes are undone; a SQLite error becomes
        ``NodeFailure``. With ``purge``, the writer's ``purge`` runs after
        the commit and before this returns.
        """
        return cast(R, self.run_bulk(_each, apply, purge=purge))

    def run_bulk(self, bulk: Bulk[P, R], payload: P, *, purge: bool = False) -> R:
        """Apply ``payload`` with ``bulk`` together with the batch's other payloads for it."""
        write = _Write(bulk, payload, purge)
        with self._lock:
            if self._closed:
                raise NodeFailure("the vault is closed")
            self._queue.append(write)
            lead = not self._writing
            self._writing = True
        if not lead:
            write.wake.wait()
        if not write.done:
            self._lead()
        if write.error is not None:
            raise write.error
        return cast(R, write.result)

    def close(self) -> None:
        """Refuse new writes and wait for those already queued."""
        with self._lock:
            self._closed = True
            while self._writing:
                self._idle.wait()

    def _lead(self) -> None:
        """Write every queued write in one transaction, then hand over or go idle."""
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._write(batch)
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].wake.set()  # its thread leads the next batch
                else:
                    self._writing = False
                    self._idle.notify_all()
            for write in batch:
                write.wake.set()

    def _write(self, batch: list[_Write]) -> None:
        groups: dict[Bulk[Any, Any], list[_Write]] = {}
        for write in batch:
            groups.setdefault(write.bulk, []).append(write)
        # One kind of write alone needs no savepoint: its transaction is one.
        savepoints = len(groups) > 1
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            failed = False
            for bulk, writes in groups.items():
                failed = not _apply(conn, bulk, writes, savepoint=savepoints) or failed
            if failed and not savepoints:
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
                self.batches += 1
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            for write in batch:
                if write.error is None:
                    write.error = _failure("vault write failed, nothing of it was stored", exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            for write in batch:
                write.done = True
        purge = any(write.purge and write.error is None for write in batch)
        if purge or (self._purge_due and time.monotonic() >= self._purge_retry_at):
            self._purge_due = not self._purge()
            self._purge_retry_at = time.monotonic() + PURGE_RETRY_S


def _apply(
    conn: sqlite3.Connection, bulk: Bulk[Any, Any], writes: list[_Write], *, savepoint: bool
) -> bool:
    """Apply one kind of write; record each write's outcome.

    Return False if ``bulk`` raised: every write failed, and (``savepoint``)
    its changes are undone, or (without) the caller must roll back.
    """
    if savepoint:
        conn.execute("SAVEPOINT bulk")
    try:
        outcomes = bulk(conn, [write.payload for write in writes])
        if len(outcomes) != len(writes):
            raise RuntimeError(f"{len(outcomes)} outcomes for {len(writes)} writes")
    except Exception as exc:
        if savepoint:
            conn.execute("ROLLBACK TO bulk")
            conn.execute("RELEASE bulk")
        if len(writes) == 1:
            writes[0].error = _own_error(exc)
        else:
            for write in writes:
                write.error = _failure("vault write failed", exc)
        return False
    if savepoint:
        conn.execute("RELEASE bulk")
    for write, outcome in zip(writes, outcomes, strict=True):
        if isinstance(outcome, Exception):
            write.error = outcome
        else:
            write.result = outcome
    return True


def _each(
    conn: sqlite3.Connection, applies: Sequence[Callable[[sqlite3.Connection], object]]
) -> list[object]:
    """The ``Bulk`` of ``GroupWriter.run``: each write alone, in its own savepoint."""
    outcomes: list[object] = []
    for apply in applies:
        conn.execute("SAVEPOINT write")
        try:
            outcomes.append(apply(conn))
        except Exception as exc:
            conn.execute("ROLLBACK TO write")
            outcomes.append(_own_error(exc))
        conn.execute("RELEASE write")
    return outcomes


def _own_error(exc: Exception) -> Exception:
    """A write's own error: carechain errors as they are, anything else as ``NodeFailure``."""
    if isinstance(exc, CarechainError):
        return exc
    if isinstance(exc, sqlite3.Error):
        return _failure("vault write failed", exc)
    return exc


def _failure(message: str, exc: BaseException) -> NodeFailure:
    """A fresh error per write (each is raised in its own thread), chained to the cause."""
    failure = NodeFailure(f"{message}: {exc}")
    failure.__cause__ = exc
    return failure
