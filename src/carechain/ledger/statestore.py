"""The state store: SQLite in WAL mode holding the world state, indexes and tree.

Everything here is derived from the block store and can be rebuilt by
replaying blocks; the block store is the record of what was committed. Each
block's effects are written in ONE SQLite transaction (``commit_block``), so
the store is always at a block boundary: after a crash it holds the state after
some block ``h`` and start-up replays blocks ``h+1..`` from the block store.

Tables::

    meta        key -> value: height, block hash, state digest, chain
    state       key -> canonical JSON value, height that last wrote it
    txs         leaf index in the ledger tree -> txid, height, index, status code
    txids       txid -> leaf index of its first occurrence
    nonces      signer fingerprint + nonce -> leaf index of the transaction that used it
    tree_nodes  (level, index) -> hash: perfect subtrees of the ledger tree
    tree_heads  height -> tree size, root and this node's signed tree head

Transaction ids are random, so every insert into their index lands on a
random page, and SQLite writes each page it dirties to the WAL whole. The index
is therefore kept as small as it can be (32-byte binary keys and an integer),
and everything else about a transaction lives in ``txs``, which only ever grows
at its end. Nonces are indexed under their signer, in nonce order: the nonces
this package's clients make grow with time (``ledger.transaction.new_nonce``),
so a block's nonces land at the ends of a few signers' runs of keys, not on a
random page each (a client's random nonces still work, at that cost).

Readers on other threads use their own connections (WAL lets them read while
the committer writes); the committer owns the writer connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carechain.errors import StorageCorrupt

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, value BLOB NOT NULL,
    height INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
    seq INTEGER PRIMARY KEY, txid BLOB NOT NULL, height INTEGER NOT NULL,
    idx INTEGER NOT NULL, code TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS txids (txid BLOB PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (key BLOB PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_heads (
    height INTEGER PRIMARY KEY, tree_size INTEGER NOT NULL, root BLOB NOT NULL,
    sth BLOB NOT NULL);
"""

SCHEMA_VERSION = 3
"""``PRAGMA user_version`` of a store in this layout (1 was text-keyed indexes, 2 kept
state rows in a WITHOUT ROWID table and nonces under their SHA-256).

State rows live in a rowid table with a unique index on the key, not a WITHOUT
ROWID table: SQLite keeps a WITHOUT ROWID table's whole rows in its interior
pages too, so kilobyte documents (a claim is about one) left some ten rows a
page, a tree seven pages deep and an overflow page per document. The key index
holds only keys; the rows' tree is keyed by small integers and new rows append
at its end."""


def nonce_key(signer: str, nonce: str) -> bytes:
    """Index key of a (signer, nonce) pair: the signer's fingerprint (32 bytes), then
    the nonce (ASCII, as the body's rules allow). The fixed-length prefix makes the
    key one-to-one; a signer's nonces sort together and in nonce order."""
    return bytes.fromhex(signer) + nonce.encode("ascii")


@dataclass
class BlockWrites:
    """Everything one block changes in the state store."""

    height: int
    block_hash: str
    state_digest: str
    time_ms: int
    tree_size: int
    writes: Sequence[tuple[str, bytes | None]]
    txs: Sequence[tuple[str, int, str]]
    """(txid, index, code) of every transaction in the block."""
    nonces: Sequence[tuple[str, str, str]]
    """(signer, nonce, txid) consumed by the block."""
    tree_head: tuple[bytes, bytes]
    """(root, signed tree head bytes) after the block."""
    tree_nodes: list[tuple[int, int, bytes]] = field(default_factory=list)


MMAP_BYTES = 0x7FFF0000
"""SQLite's default SQLITE_MAX_MMAP_SIZE: a larger request is cut to the build's cap."""

_MAX_PARAMETERS = 30_000
"""Below SQLite's default limit of 32,766 bound parameters per statement."""


def _insert_rows(
    conn: sqlite3.Connection,
    statement: str,
    rows: Sequence[tuple[object, ...]],
    tail: str = "",
) -> None:
    """Run ``statement`` over many rows with few SQLite calls.

    One multi-row statement per chunk instead of ``executemany``: the sqlite3
    module releases the GIL around each call, so thousands of tiny calls make
    the committer thread queue for the GIL thousands of times per block. ``tail``
    follows the rows (an ON CONFLICT clause).
    """
    if not rows:
        return
    width = len(rows[0])
    per_chunk = max(1, _MAX_PARAMETERS // width)
    group = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), per_chunk):
        chunk = rows[start : start + per_chunk]
        sql = f"{statement} {','.join([group] * len(chunk))}{tail}"
        conn.execute(sql, [value for row in chunk for value in row])


_UPSERT = " ON CONFLICT (key) DO UPDATE SET value = excluded.value, height = excluded.height"
"""Writes a key in place: its row keeps its id (INSERT OR REPLACE would move it)."""

_IN_CHUNK = 500


def _select_in(conn: sqlite3.Connection, sql: str, values: Sequence[object]) -> Iterator[Any]:
    """Rows of ``sql`` (a SELECT ending ``IN ({})``) for ``values``, a chunk at a time."""
    for start in range(0, len(values), _IN_CHUNK):
        chunk = values[start : start + _IN_CHUNK]
        yield from conn.execute(sql.format(",".join("?" * len(chunk))), chunk)


class SqliteNodeStore:
    """``NodeStore`` for the ledger tree: reads through, buffers puts until commit."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._pending: dict[tuple[int, int], bytes] = {}
        self._inflight: dict[tuple[int, int], bytes] = {}
        """Nodes of blocks built but not yet committed to the store."""

    def get_node(self, level: int, index: int) -> bytes | None:
        node = self._pending.get((level, index)) or self._inflight.get((level, index))
        if node is not None:
            return node
        return self._store.tree_node(level, index)

    def put_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        for level, index, digest in nodes:
            self._pending[(level, index)] = digest

    def take_pending(self) -> list[tuple[int, int, bytes]]:
        """The nodes put since the last call, for the block being built."""
        pending = [(level, index, digest) for (level, index), digest in self._pending.items()]
        self._inflight.update(self._pending)
        self._pending = {}
        return pending

    def release(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        """Forget nodes once the block that made them is committed to the store."""
        for level, index, _ in nodes:
            self._inflight.pop((level, index), None)

    def discard_pending(self) -> None:
        self._pending = {}


class StateStore:
    """SQLite world state; one writer (the committer), many readers."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = self._connect()
        if self._outdated():
            self._writer.close()
            self._set_aside()
            self._writer = self._connect()
        self._writer.executescript(_SCHEMA)
        self._writer.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._meta_cache: dict[str, str] = dict(self._writer.execute("SELECT key, value FROM meta"))

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # The block store is fsynced before a block counts as committed; the
        # state is rebuilt from it after a crash, so NORMAL is enough here.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages per connection
        # Checkpoint less often: a page dirtied by many blocks is copied once.
        conn.execute("PRAGMA wal_autocheckpoint=16384")
        # Map as much of the file as SQLite will (builds cap it; Debian's at 2 GiB):
        # reading a mapped page takes no system call, and a reader's page cache
        # is dropped at every block another connection commits.
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        return conn

    def _outdated(self) -> bool:
        """Whether the file holds a store in an older layout."""
        (version,) = self._writer.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return False
        tables = self._writer.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        return bool(tables)

    def _set_aside(self) -> None:
        """Move an older store out of the way; the node rebuilds it from its blocks."""
        aside = f"{self.path}.old"
        log.warning(
            "state store %s has an older layout: set aside as %s, rebuilt by replay",
            self.path,
            aside,
        )
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, aside + suffix)

    def _reader(self) -> sqlite3.Connection:
        if threading.get_ident() == self._writer_thread():
            return self._writer
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _writer_thread(self) -> int | None:
        return getattr(self, "_writer_ident", None)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read from one snapshot on the calling thread's connection (many fast reads).

        The caller must not write through this store inside the block.
        """
        conn = self._reader()
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def bind_writer(self) -> None:
        """Declare the calling thread the committer: its reads see its own writes."""
        self._writer_ident = threading.get_ident()

    def close(self) -> None:
        """Close every connection, the other threads' readers included."""
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._writer.close()

    # -- meta -------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return int(self._meta_cache.get("height", "-1"))

    @property
    def block_hash(self) -> str:
        return self._meta_cache.get("block_hash", "0" * 64)

    @property
    def state_digest(self) -> str:
        return self._meta_cache.get("state_digest", "0" * 64)

    @property
    def tree_size(self) -> int:
        return int(self._meta_cache.get("tree_size", "0"))

    @property
    def time_ms(self) -> int:
        """Block time of the last committed block."""
        return int(self._meta_cache.get("time", "0"))

    # -- reads ------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        row = self._reader().execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The values of those of ``keys`` that exist, a statement per 500 keys (about a
        third of the cost of one statement a key)."""
        return {
            str(k): bytes(v)
            for k, v in _select_in(
                self._reader(), "SELECT key, value FROM state WHERE key IN ({})", list(keys)
            )
        }

    def get_with_height(self, key: str) -> tuple[bytes, int] | None:
        row = (
            self._reader()
            .execute("SELECT value, height FROM state WHERE key = ?", (key,))
            .fetchone()
        )
        return None if row is None else (bytes(row[0]), int(row[1]))

    def scan(self, prefix: str, limit: int = -1, after: str = "") -> list[tuple[str, bytes]]:
        """Keys starting with ``prefix`` in key order, optionally after a key."""
        start = max(prefix, after)
        end = prefix + "\U0010ffff"
        rows = self._reader().execute(
            "SELECT key, value FROM state WHERE key >= ? AND key < ? AND key != ? "
            "ORDER BY key LIMIT ?",
            (start, end, after, limit),
        )
        return [(str(k), bytes(v)) for k, v in rows]

    def iter_state(self) -> Iterator[tuple[str, bytes, int]]:
        """Every state row in key order: (key, value, height that last wrote it)."""
        for key, value, height in self._reader().execute(
            "SELECT key, value, height FROM state ORDER BY key"
        ):
            yield str(key), bytes(value), int(height)

    def tx_location(self, txid: str) -> tuple[int, int, str] | None:
        """(height, index, status code) of the first occurrence of ``txid``."""
        try:
            key = bytes.fromhex(txid)
        except ValueError:
            return None
        row = (
            self._reader()
            .execute(
                "SELECT txs.height, txs.idx, txs.code FROM txids "
                "JOIN txs ON txs.seq = txids.seq WHERE txids.txid = ?",
                (key,),
            )
            .fetchone()
        )
        return None if row is None else (int(row[0]), int(row[1]), str(row[2]))

    def tx_locations(self, txids: Sequence[str]) -> dict[str, tuple[int, int, str]]:
        """``tx_location`` of many transactions in a few queries."""
        found: dict[str, tuple[int, int, str]] = {}
        keys = []
        for txid in txids:
            with contextlib.suppress(ValueError):
                keys.append(bytes.fromhex(txid))
        rows = _select_in(
            self._reader(),
            "SELECT txs.txid, txs.height, txs.idx, txs.code FROM txids "
            "JOIN txs ON txs.seq = txids.seq WHERE txids.txid IN ({})",
            keys,
        )
        for txid, height, idx, code in rows:
            found[bytes(txid).hex()] = (int(height), int(idx), str(code))
        return found

    def nonce_txids(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Of these (signer, nonce) pairs, the ones already consumed, with their txids.

        One statement per chunk of keys, then one for the txids of those found (few:
        looking the txids up in the same statement, as a join, made every lookup, found
        or not, three times slower).
        """
        by_key = {nonce_key(signer, nonce): (signer, nonce) for signer, nonce in pairs}
        keys = list(by_key)
        conn = self._reader()
        seqs: dict[int, tuple[str, str]] = {}
        for key, seq in _select_in(conn, "SELECT key, seq FROM nonces WHERE key IN ({})", keys):
            seqs[int(seq)] = by_key[bytes(key)]
        found: dict[tuple[str, str], str] = {}
        for seq, txid in _select_in(
            conn, "SELECT seq, txid FROM txs WHERE seq IN ({})", list(seqs)
        ):
            found[seqs[int(seq)]] = bytes(txid).hex()
        return found

    def tree_node(self, level: int, index: int) -> bytes | None:
        row = (
            self._reader()
            .execute("SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?", (level, index))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def tree_head(self, height: int) -> tuple[int, bytes, bytes] | None:
        """(tree size, root, signed tree head bytes) after block ``height``."""
        row = (
            self._reader()
            .execute("SELECT tree_size, root, sth FROM tree_heads WHERE height = ?", (height,))
            .fetchone()
        )
        return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

    # -- the one write path -----------------------------------------------------------

    def commit_block(self, block: BlockWrites) -> None:
        """Write one block's effects atomically; the store moves to ``block.height``."""
        if block.height != self.height + 1:
            raise StorageCorrupt(
                f"state store is at height {self.height}; cannot apply block {block.height}",
                block.height,
            )
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            upserts = [(k, v, block.height) for k, v in block.writes if v is not None]
            deletes = [(k,) for k, v in block.writes if v is None]
            _insert_rows(conn, "INSERT INTO state (key, value, height) VALUES", upserts, _UPSERT)
            if deletes:  # rare: an executemany is fine
                conn.executemany("DELETE FROM state WHERE key = ?", deletes)
            first = block.tree_size - len(block.txs)  # leaf index of the block's first tx
            seqs: dict[str, int] = {}
            rows = []
            for txid, idx, code in block.txs:
                seqs.setdefault(txid, first + idx)
                rows.append((first + idx, bytes.fromhex(txid), block.height, idx, code))
            _insert_rows(conn, "INSERT INTO txs VALUES", rows)
            _insert_rows(
                conn,
                "INSERT OR IGNORE INTO txids VALUES",
                [(txid, seq) for seq, txid, _, _, _ in rows],
            )
            _insert_rows(
                conn,
                "INSERT OR IGNORE INTO nonces VALUES",
                [(nonce_key(signer, nonce), seqs[txid]) for signer, nonce, txid in block.nonces],
            )
            _insert_rows(conn, "INSERT OR REPLACE INTO tree_nodes VALUES", block.tree_nodes)
            conn.execute(
                "INSERT OR REPLACE INTO tree_heads VALUES (?, ?, ?, ?)",
                (block.height, block.tree_size, block.tree_head[0], block.tree_head[1]),
            )
            meta = {
                "height": str(block.height),
                "block_hash": block.block_hash,
                "state_digest": block.state_digest,
                "tree_size": str(block.tree_size),
                "time": str(block.time_ms),
            }
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(meta.items()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._meta_cache.update(meta)
