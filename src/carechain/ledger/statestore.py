"""The state store: SQLite in WAL mode holding the world state, indexes and tree.

Everything here is derived from the block store and can be rebuilt by
replaying blocks; the block store is the record of what was committed. Each
block's effects are written in ONE SQLite transaction (``commit_block``), so
the store is always at a block boundary: after a crash it holds the state after
some block ``h`` and start-up replays blocks ``h+1..`` from the block store.

Tables::

    meta        key -> value: height, block hash, state digest, chain
    state       key -> canonical JSON value, height that last wrote it
    txs         txid -> height, index, status code (first occurrence)
    nonces      (signer, nonce) -> txid: replay protection
    tree_nodes  (level, index) -> hash: perfect subtrees of the ledger tree
    tree_heads  height -> tree size, root and this node's signed tree head

Readers on other threads use their own connections (WAL lets them read while
the committer writes); the committer owns the writer connection.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from carechain.errors import StorageCorrupt

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, height INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS txs (
    txid TEXT PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL,
    code TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
    signer TEXT NOT NULL, nonce TEXT NOT NULL, txid TEXT NOT NULL,
    PRIMARY KEY (signer, nonce)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_heads (
    height INTEGER PRIMARY KEY, tree_size INTEGER NOT NULL, root BLOB NOT NULL,
    sth BLOB NOT NULL);
"""


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


_MAX_PARAMETERS = 30_000
"""Below SQLite's default limit of 32,766 bound parameters per statement."""


def _insert_rows(
    conn: sqlite3.Connection,
    statement: str,
    rows: Sequence[tuple[object, ...]],
) -> None:
    """Run ``statement`` over many rows with few SQLite calls.

    One multi-row statement per chunk instead of ``executemany``: the sqlite3
    module releases the GIL around each call, so thousands of tiny calls make
    the committer thread queue for the GIL thousands of times per block.
    """
    if not rows:
        return
    width = len(rows[0])
    per_chunk = max(1, _MAX_PARAMETERS // width)
    group = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), per_chunk):
        chunk = rows[start : start + per_chunk]
        sql = f"{statement} {','.join([group] * len(chunk))}"
        conn.execute(sql, [value for row in chunk for value in row])


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
        self._writer.executescript(_SCHEMA)
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
        conn.execute("PRAGMA mmap_size=1073741824")
        return conn

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
        row = (
            self._reader()
            .execute("SELECT height, idx, code FROM txs WHERE txid = ?", (txid,))
            .fetchone()
        )
        return None if row is None else (int(row[0]), int(row[1]), str(row[2]))

    def tx_locations(self, txids: Sequence[str]) -> dict[str, tuple[int, int, str]]:
        """``tx_location`` of many transactions in a few queries."""
        found: dict[str, tuple[int, int, str]] = {}
        conn = self._reader()
        for start in range(0, len(txids), 500):
            chunk = list(txids[start : start + 500])
            rows = conn.execute(
                "SELECT txid, height, idx, code FROM txs WHERE txid IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
            for txid, height, idx, code in rows:
                found[str(txid)] = (int(height), int(idx), str(code))
        return found

    def nonce_txids(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Of these (signer, nonce) pairs, the ones already consumed, with their txids.

        One statement per chunk, joining a VALUES list to the primary key (SQLite
        plans this as a key search per pair, unlike a row-value IN, which scans).
        """
        found: dict[tuple[str, str], str] = {}
        conn = self._reader()
        for start in range(0, len(pairs), 400):
            chunk = pairs[start : start + 400]
            rows = conn.execute(
                f"WITH q(s, n) AS (VALUES {','.join(['(?,?)'] * len(chunk))}) "
                "SELECT q.s, q.n, nonces.txid FROM q "
                "JOIN nonces ON nonces.signer = q.s AND nonces.nonce = q.n",
                [part for pair in chunk for part in pair],
            )
            for signer, nonce, txid in rows:
                found[(str(signer), str(nonce))] = str(txid)
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
            _insert_rows(conn, "INSERT OR REPLACE INTO state VALUES", upserts)
            if deletes:  # rare: an executemany is fine
                conn.executemany("DELETE FROM state WHERE key = ?", deletes)
            _insert_rows(
                conn,
                "INSERT OR IGNORE INTO txs VALUES",
                [(txid, block.height, idx, code) for txid, idx, code in block.txs],
            )
            _insert_rows(conn, "INSERT OR IGNORE INTO nonces VALUES", block.nonces)
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
