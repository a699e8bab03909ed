"""The vault: one SQLite file of encrypted records, one KEK file per organisation.

Layout on disk (``directory`` is the node's ``<data>/vault``, mode 0700)::

    vault.sqlite        the records table (see ``table``), WAL mode, mode 0600
    keys/<org>.key      each hosted organisation's key-encryption key (see ``kek``)

Durability: every write is fsynced before it returns (``synchronous=FULL``);
concurrent writes share one fsync (see ``writer``).

Erasure: the row's wrapped key (with the salt inside), ciphertext and nonces
are set to NULL with ``secure_delete=ON``, which overwrites the freed bytes
and pages with zeros, and the WAL is then checkpointed and truncated (with
this vault's readers held at a gate, see ``gate``), so neither
``vault.sqlite`` nor ``vault.sqlite-wal`` keeps a copy. If another process
holds the WAL open, the truncation is retried after later writes and a
warning is logged. Blocks that
the file system or the disk keep elsewhere are beyond SQLite's reach: that is
what destroying the key is for. Backups taken before an erasure still hold
the record.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from carechain.crypto.suite import CryptoSuite
from carechain.errors import InvalidInput, NodeFailure, NotFound, RecordErased, VaultTampered
from carechain.vault.gate import ReadGate
from carechain.vault.kek import KeyRing
from carechain.vault.records import COMMITTED, PENDING, NewRecord, OpenedRecord, VaultEntry
from carechain.vault.sealing import Sealed, check_new_record, check_time, seal, unseal
from carechain.vault.table import (
    ENTRY_COLUMNS,
    commit_records,
    connect,
    entry_from_row,
    insert_records,
    prepare,
    truncate_wal,
)
from carechain.vault.writer import GroupWriter

log = logging.getLogger(__name__)

_DB_FILE = "vault.sqlite"
_DIR_MODE = 0o700
_FILE_MODE = 0o600

Row = tuple[object, ...]


class Vault:
    """The encrypted records of the organisations this node hosts.

    Safe to share between threads: writes go through one connection (group
    commit), reads through one connection per thread.
    """

    def __init__(self, directory: Path, suite: CryptoSuite) -> None:
        self.directory = Path(directory)
        self.path = self.directory / _DB_FILE
        self._suite = suite
        self.directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        self._keys = KeyRing(self.directory / "keys")
        # SQLite gives the -wal and -shm files the database file's mode: make it 0600 first.
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, _FILE_MODE))
        self._closed = False
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        conn = connect(self.path)
        try:
            prepare(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._gate = ReadGate()
        self._writer = GroupWriter(conn, purge=self._purge_wal)

    # -- organisations ----------------------------------------------------------------

    def hosts(self, org: str) -> bool:
        """Whether this node holds a KEK for ``org``."""
        return self._keys.hosts(org)

    def host(self, org: str) -> None:
        """Create ``org``'s KEK if it has none (idempotent); ``InvalidInput`` for a bad id."""
        self._keys.host(org)

    # -- writes -----------------------------------------------------------------------

    def put(
        self,
        org: str,
        record_id: str,
        patient: str,
        resource_type: str,
        category: str,
        data: bytes,
        salt: bytes,
        *,
        now_ms: int,
    ) -> VaultEntry:
        """Encrypt and store a record as pending; return its entry (with its fingerprint).

        Raise ``InvalidInput`` for a malformed record id, an organisation this
        vault does not host, a record id already in the vault (the message
        says whether it is pending, committed or erased), empty data or data
        over ``MAX_RECORD_SIZE``, a salt that is not ``SALT_SIZE`` bytes, or a
        patient, resource type or category that is not text, holds a NUL or
        is empty (the category may be). Durable when it returns.
        """
        record = NewRecord(org, record_id, patient, resource_type, category, data, salt)
        entry, row = self._seal(record, now_ms)
        self._writer.run_bulk(insert_records, row)
        return entry

    def put_many(self, records: Sequence[NewRecord], *, now_ms: int) -> list[VaultEntry]:
        """Store many records as pending in one durable transaction: all of them or none.

        For a batch that arrives together (a FHIR transaction bundle, an
        import): one fsync for all. Raise ``InvalidInput`` as ``put`` does,
        naming the first record at fault, and also if a record id appears
        twice; then nothing is stored.
        """
        sealed = [self._seal(record, now_ms) for record in records]
        if not sealed:
            return []
        seen: set[str] = set()
        for record in records:
            if record.record_id in seen:
                raise InvalidInput(f"record {record.record_id!r} appears twice in the batch")
            seen.add(record.record_id)
        rows = [row for _, row in sealed]

        def insert_all(conn: sqlite3.Connection) -> None:
            for refused in insert_records(conn, rows):
                if refused is not None:  # raising rolls back the rows inserted above
                    raise InvalidInput(f"{refused}; none of the {len(rows)} records was stored")

        self._writer.run(insert_all)
        return [entry for entry, _ in sealed]

    def commit(self, record_id: str) -> None:
        """Mark a pending record committed (its transaction is in a block).

        Idempotent on a committed record; ``NotFound`` if the vault has no such record.
        """
        if self._writer.run_bulk(commit_records, [record_id]):
            raise NotFound(f"no record {record_id!r} in this vault")

    def commit_many(self, record_ids: Iterable[str]) -> list[str]:
        """Mark many records committed in one durable transaction (one block's, say).

        Records already committed stay so. Return the ids this vault does not
        hold, in the order given, so that a caller may pass every record id of
        a block whichever node holds it.
        """
        ids = list(dict.fromkeys(record_ids))
        if not ids:
            return []
        return self._writer.run_bulk(commit_records, ids)

    def discard(self, record_id: str) -> None:
        """Delete a pending record (its transaction was rejected); no-op if absent.

        Like ``erase``, leaves no copy in the WAL.

        Raise ``InvalidInput`` for a committed record: that one can only be erased.
        """

        def delete(conn: sqlite3.Connection) -> None:
            found = conn.execute(
                "SELECT status FROM records WHERE record_id = ?", (record_id,)
            ).fetchall()
            if not found:
                return
            if found[0][0] == COMMITTED:
                raise InvalidInput(
                    f"record {record_id!r} is committed: only a pending record can be "
                    "discarded; erase it instead"
                )
            conn.execute("DELETE FROM records WHERE record_id = ?", (record_id,))

        # The row is gone from the file (secure_delete); purge the WAL's copy too.
        self._writer.run(delete, purge=True)

    def erase(self, record_id: str, *, now_ms: int) -> bool:
        """Crypto-shred a record (GDPR Art. 17); True if erased now, False if it already was.

        The wrapped key (with the salt inside it), the ciphertext and their
        nonces are set to NULL and overwritten with zeros in the database
        file; a tombstone row stays so that later reads get ``RecordErased``.
        Durable when it returns, and the WAL has been checkpointed and
        truncated so that it keeps no old copy either (unless another process
        holds the WAL: then later writes retry, see the module docstring).
        ``NotFound`` if the vault has no such record.
        """
        check_time(now_ms)

        def shred(conn: sqlite3.Connection) -> bool:
            found = conn.execute(
                "SELECT erased FROM records WHERE record_id = ?", (record_id,)
            ).fetchall()
            if not found:
                raise NotFound(f"no record {record_id!r} in this vault")
            if found[0][0]:
                return False
            conn.execute(
                "UPDATE records SET erased = 1, erased_ms = ?, key_nonce = NULL, "
                "wrapped_key = NULL, nonce = NULL, ciphertext = NULL WHERE record_id = ?",
                (now_ms, record_id),
            )
            return True

        return self._writer.run(shred, purge=True)

    def _seal(self, record: NewRecord, now_ms: int) -> tuple[VaultEntry, Row]:
        """Check and encrypt a record; its entry and its table row."""
        content = check_new_record(record)
        check_time(now_ms)
        kek = self._keys.get(record.org)
        if kek is None:
            raise InvalidInput(f"this node does not host a vault for organisation {record.org!r}")
        entry, sealed = seal(self._suite, kek, record, content, now_ms)
        row = (
            entry.record_id,
            entry.org,
            entry.patient,
            entry.resource_type,
            entry.category,
            PENDING,
            now_ms,
            entry.fingerprint,
            sealed.key_nonce,
            sealed.wrapped_key,
            sealed.nonce,
            sealed.ciphertext,
        )
        return entry, row

    # -- reads ------------------------------------------------------------------------

    def open(self, record_id: str) -> OpenedRecord:
        """Decrypt a record and check it against its fingerprint.

        Raise ``NotFound`` for an unknown record, ``RecordErased`` for an erased
        one, and ``VaultTampered`` if the wrapped key or the ciphertext fails
        authentication (a byte changed, or a row's content moved to another
        record, patient, resource type or organisation) or the content does
        not hash to the stored fingerprint. Never returns unchecked data.
        """
        rows = self._query(
            f"SELECT {ENTRY_COLUMNS}, key_nonce, wrapped_key, nonce, ciphertext "
            "FROM records WHERE record_id = ?",
            (record_id,),
        )
        if not rows:
            raise NotFound(f"no record {record_id!r} in this vault")
        entry = entry_from_row(rows[0])
        if entry.erased:
            raise RecordErased(f"record {record_id!r} was erased")
        blobs = rows[0][-4:]
        if not all(isinstance(blob, bytes) for blob in blobs):
            raise VaultTampered(
                f"record {record_id!r} lacks its key or content but is not marked erased",
                record_id,
            )
        kek = self._keys.get(entry.org)
        if kek is None:
            raise VaultTampered(
                f"record {record_id!r} names organisation {entry.org!r}, whose vault key "
                "this node does not hold (row altered or key file lost)",
                record_id,
            )
        return unseal(self._suite, kek, entry, Sealed(*blobs))

    def entry(self, record_id: str) -> VaultEntry | None:
        """The record's metadata (also of an erased record), or None if unknown."""
        rows = self._query(f"SELECT {ENTRY_COLUMNS} FROM records WHERE record_id = ?", (record_id,))
        return entry_from_row(rows[0]) if rows else None

    def pending_older_than(self, cutoff_ms: int) -> list[str]:
        """Ids of records still pending that were stored before ``cutoff_ms``, oldest first.

        An erased record that was still pending counts too: its transaction
        never came back either.
        """
        rows = self._query(
            "SELECT record_id FROM records WHERE status = ? AND created_ms < ? "
            "ORDER BY created_ms, record_id",
            (PENDING, cutoff_ms),
        )
        return [str(record_id) for (record_id,) in rows]

    def entries(self, org: str | None = None, patient: str | None = None) -> list[VaultEntry]:
        """Entries (erased ones included), optionally of one organisation and/or patient."""
        conditions: list[str] = []
        params: list[str] = []
        if org is not None:
            conditions.append("org = ?")
            params.append(org)
        if patient is not None:
            conditions.append("patient = ?")
            params.append(patient)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._query(f"SELECT {ENTRY_COLUMNS} FROM records{where} ORDER BY record_id", params)
        return [entry_from_row(row) for row in rows]

    # -- connections ------------------------------------------------------------------

    def close(self) -> None:
        """Wait for writes in progress, then close every connection (idempotent)."""
        self._writer.close()
        self._closed = True
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._conn.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _query(self, sql: str, params: Iterable[Any]) -> list[Any]:
        """All rows at once, so that no statement keeps a read snapshot open."""
        conn = self._reader()
        with self._gate.reading():
            return conn.execute(sql, tuple(params)).fetchall()

    def _purge_wal(self) -> bool:
        """Move every page out of the WAL and truncate it: erased keys leave the WAL file.

        Runs on the writer's thread after an erasure commits (see ``writer``),
        with this vault's readers held at the gate so that none can keep the
        checkpoint waiting.
        """
        with self._gate.alone():
            done = truncate_wal(self._conn)
        if not done:
            log.warning(
                "vault %s: another connection kept the WAL from being truncated; erased "
                "records' old pages stay in it until a later try",
                self.path,
            )
        return done

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise NodeFailure("the vault is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, reader=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn
