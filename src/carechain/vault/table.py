"""The vault's SQLite table: schema, connections, and the batched writes.

One row per record::

    record_id                                   primary key
    org, patient, resource_type, category       metadata, in clear
    status                                      'pending' | 'committed'
    created_ms, fingerprint                     when stored; what the chain carries
    erased, erased_ms                           tombstone of a crypto-shredded record
    key_nonce, wrapped_key                      AES-256-GCM under the org's KEK of
                                                (data key || salt), aad = key_aad()
    nonce, ciphertext                           AES-256-GCM under the data key of the
                                                resource bytes, aad = record_aad()

The salt has no column of its own: it is wrapped with the data key, so that
erasing the record destroys both in one place. The encrypted columns come
last, so reading an entry never touches a ciphertext's overflow pages.

Every connection runs in WAL mode; the writer with ``synchronous=FULL`` (a
commit is fsynced before it returns) and ``secure_delete=ON`` (SQLite
overwrites deleted content and freed pages with zeros, so an erased key
leaves the database file once the WAL is checkpointed).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from carechain.errors import InvalidInput, NodeFailure
from carechain.vault.records import COMMITTED, PENDING, VaultEntry

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of a vault in this layout."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY NOT NULL,
    org TEXT NOT NULL,
    patient TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'committed')),
    created_ms INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    erased INTEGER NOT NULL DEFAULT 0,
    erased_ms INTEGER,
    key_nonce BLOB,
    wrapped_key BLOB,
    nonce BLOB,
    ciphertext BLOB
);
CREATE INDEX IF NOT EXISTS records_by_patient ON records (patient, record_id);
CREATE INDEX IF NOT EXISTS records_pending ON records (created_ms) WHERE status = 'pending';
"""

ENTRY_COLUMNS = (
    "record_id, org, patient, resource_type, category, status, created_ms, fingerprint, erased"
)

BUSY_TIMEOUT_MS = 10_000
"""How long a connection waits for a lock another connection holds."""

_CHUNK = 500
"""Record ids per ``IN (...)`` list."""


def connect(path: Path, *, reader: bool = False) -> sqlite3.Connection:
    """Open the writer connection, or (``reader``) a read-only one for one thread."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if reader:
            conn.execute("PRAGMA query_only=ON")
            return conn
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise NodeFailure(f"vault {str(path)!r}: cannot switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        (secure,) = conn.execute("PRAGMA secure_delete=ON").fetchone()
        if secure != 1:
            raise NodeFailure(
                "this SQLite cannot overwrite deleted content (secure_delete): "
                "erased records would stay readable on disk"
            )
    except BaseException:
        conn.close()
        raise
    return conn


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new vault; refuse a vault in a layout this code does not know.

    Unlike the state store, a vault cannot be rebuilt from the chain, so an
    unknown layout is never set aside or rewritten.
    """
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version not in (0, SCHEMA_VERSION):
        raise NodeFailure(
            f"vault {str(path)!r} has layout {version}; this carechain reads layout "
            f"{SCHEMA_VERSION}"
        )
    conn.executescript(_SCHEMA)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def truncate_wal(conn: sqlite3.Connection, busy_timeout_ms: int = 1000) -> bool:
    """Checkpoint the whole WAL into the database file and truncate it; True if done.

    Waits at most ``busy_timeout_ms`` for other connections (the caller keeps
    the vault's own readers out, see ``gate``); False if one still held the
    WAL, or the checkpoint failed.
    """
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    try:
        (busy, _, _) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        log.warning("vault: WAL checkpoint failed: %s", exc)
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return not busy


def entry_from_row(row: tuple[Any, ...]) -> VaultEntry:
    return VaultEntry(
        record_id=str(row[0]),
        org=str(row[1]),
        patient=str(row[2]),
        resource_type=str(row[3]),
        category=str(row[4]),
        status=str(row[5]),
        created_ms=int(row[6]),
        fingerprint=str(row[7]),
        erased=bool(row[8]),
    )


_INSERT = (
    "INSERT INTO records (record_id, org, patient, resource_type, category, status, "
    "created_ms, fingerprint, key_nonce, wrapped_key, nonce, ciphertext) VALUES "
)
_INSERT_WIDTH = 12
_MAX_PARAMETERS = 30_000
"""Below SQLite's default limit of 32,766 bound parameters per statement."""


def insert_records(
    conn: sqlite3.Connection, rows: Sequence[tuple[object, ...]]
) -> list[Exception | None]:
    """Insert the records of a batch of ``put`` calls with a few statements.

    A row whose record id the vault already holds, or an earlier row of the
    same batch took, is refused with ``InvalidInput`` naming what holds the
    id. The sqlite3 module releases the GIL at every statement and every row
    it steps through, so this looks the ids up in one query that usually
    returns nothing, and inserts with one multi-row statement (no
    ``RETURNING``, which would step once per row).
    """
    states: dict[str, str] = {}
    """What already holds an id: its state in the vault, or an earlier row of the batch."""
    ids = list(dict.fromkeys(str(row[0]) for row in rows))
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for record_id, status, erased in conn.execute(
            f"SELECT record_id, status, erased FROM records WHERE record_id IN ({marks})", chunk
        ).fetchall():
            states[str(record_id)] = "erased" if erased else str(status)
    outcomes: list[Exception | None] = []
    for row in rows:
        record_id = str(row[0])
        state = states.get(record_id)
        if state is None:
            outcomes.append(None)
            states[record_id] = PENDING  # a later row with this id is refused
        else:
            outcomes.append(
                InvalidInput(f"record {record_id!r} already exists in this vault ({state})")
            )
    fresh = [row for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
    per_chunk = _MAX_PARAMETERS // _INSERT_WIDTH
    group = "(" + ",".join("?" * _INSERT_WIDTH) + ")"
    for start in range(0, len(fresh), per_chunk):
        part = fresh[start : start + per_chunk]
        params = [value for row in part for value in row]
        conn.execute(_INSERT + ",".join([group] * len(part)), params)
    return outcomes


def commit_records(conn: sqlite3.Connection, batches: Sequence[list[str]]) -> list[list[str]]:
    """Mark the records of a batch of ``commit`` calls committed; per call, the ids not held.

    One ``UPDATE`` per chunk; only when it changed fewer rows than ids (some
    committed already, or not in this vault) a ``SELECT`` finds which are held.
    """
    ids = list(dict.fromkeys(record_id for batch in batches for record_id in batch))
    held: set[str] = set()
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        updated = conn.execute(
            f"UPDATE records SET status = ? WHERE status = ? AND record_id IN ({marks})",
            [COMMITTED, PENDING, *chunk],
        ).rowcount
        if updated == len(chunk):
            held.update(chunk)
            continue
        rows = conn.execute(
            f"SELECT record_id FROM records WHERE record_id IN ({marks})", chunk
        ).fetchall()
        held.update(str(record_id) for (record_id,) in rows)
    return [[record_id for record_id in batch if record_id not in held] for batch in batches]


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
