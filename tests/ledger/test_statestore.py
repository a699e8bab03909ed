"""The SQLite state store: what blocks write is what reads, scans and iteration return.

Hypothesis drives random blocks of puts, overwrites and deletes over a real
SQLite file and compares every read with a plain dict of key -> (value, height).
The layout tests hold the store to its reason for being a rowid table: kilobyte
documents take about their own size on disk, and a key written again keeps its row.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carechain.ledger.statestore import (
    MMAP_BYTES,
    SCHEMA_VERSION,
    BlockWrites,
    StateStore,
    nonce_key,
)
from carechain.ledger.transaction import new_nonce

KEYS = [f"claims/{a}/{b}" for a in ("claim", "line", "pack") for b in ("1", "2", "10", "2/x")]

block_writes = st.dictionaries(
    st.sampled_from(KEYS), st.one_of(st.none(), st.binary(min_size=0, max_size=1500)), max_size=8
)


def writes_at(
    height: int,
    writes: list[tuple[str, bytes | None]],
    nonces: list[tuple[str, str, str]] | None = None,
    before: int = 0,
) -> BlockWrites:
    """A block of ``writes``; ``nonces`` (signer, nonce, txid) are its transactions',
    after ``before`` transactions in earlier blocks."""
    nonces = nonces or []
    return BlockWrites(
        height=height,
        writes=writes,
        txs=[(txid, i, "ok") for i, (_, _, txid) in enumerate(nonces)],
        nonces=nonces,
        tree_nodes=[],
        tree_size=before + len(nonces),
        tree_head=(b"\x00" * 32, b""),
        block_hash=f"{height:064x}",
        state_digest="00" * 32,
        time_ms=height,
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blocks=st.lists(block_writes, min_size=1, max_size=6))
def test_reads_scans_and_iteration_agree_with_a_plain_dict(
    tmp_path_factory: pytest.TempPathFactory, blocks: list[dict[str, bytes | None]]
) -> None:
    store = StateStore(tmp_path_factory.mktemp("state") / "state.sqlite")
    reference: dict[str, tuple[bytes, int]] = {}
    try:
        for height, writes in enumerate(blocks):
            store.commit_block(writes_at(height, sorted(writes.items())))
            for key, value in writes.items():
                if value is None:
                    reference.pop(key, None)
                else:
                    reference[key] = (value, height)
        assert store.height == len(blocks) - 1
        for key in KEYS:
            found = reference.get(key)
            assert store.get(key) == (None if found is None else found[0])
            assert store.get_with_height(key) == found
        assert list(store.iter_state()) == [(k, v, h) for k, (v, h) in sorted(reference.items())]
        for prefix in ("claims/", "claims/line/", "claims/pack/2", "claims/pack/2/", "x/"):
            expected = [(k, v) for k, (v, _) in sorted(reference.items()) if k.startswith(prefix)]
            assert store.scan(prefix) == expected
            assert store.scan(prefix, limit=1) == expected[:1]
            if expected:
                assert store.scan(prefix, after=expected[0][0]) == expected[1:]
    finally:
        store.close()


def test_kilobyte_documents_take_about_their_own_size(tmp_path: Path) -> None:
    """2,000 documents of 1,100 bytes (a claim's size): in a WITHOUT ROWID table each
    took an overflow page of its own, over 8 MB; as rows of a rowid table, under 4 MB."""
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    try:
        for height in range(4):
            store.commit_block(
                writes_at(
                    height,
                    [(f"claims/claim/{height}-{i:04d}", bytes(1100)) for i in range(500)],
                )
            )
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    finally:
        conn.close()
    assert version == SCHEMA_VERSION
    assert 2_200_000 < pages * page_size < 4_000_000


def test_a_key_written_again_keeps_its_row(tmp_path: Path) -> None:
    """Overwrites update the row in place: rows stay in the order they were first
    written, and the table does not grow."""
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    try:
        store.commit_block(writes_at(0, [("a/1", b"one"), ("a/2", b"two")]))
        store.commit_block(writes_at(1, [("a/1", b"uno"), ("a/3", b"three")]))
        store.commit_block(writes_at(2, [("a/2", None)]))
        assert store.get_with_height("a/1") == (b"uno", 1)
        assert store.get("a/2") is None
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT id, key, height FROM state ORDER BY id").fetchall()
    finally:
        conn.close()
    assert rows == [(1, "a/1", 1), (3, "a/3", 1)]


SIGNERS = ["ab" * 32, "ab" * 31 + "ac", "00" * 32]
NONCE_TEXT = st.text(alphabet="abcXYZ019_.:-", min_size=1, max_size=12)


@given(
    a=st.tuples(st.sampled_from(SIGNERS), NONCE_TEXT),
    b=st.tuples(st.sampled_from(SIGNERS), NONCE_TEXT),
)
def test_nonce_keys_are_one_to_one_and_keep_a_signers_nonces_in_order(
    a: tuple[str, str], b: tuple[str, str]
) -> None:
    assert (nonce_key(*a) == nonce_key(*b)) == (a == b)
    if a[0] == b[0]:  # one signer's keys sort as its nonces do
        assert (nonce_key(*a) < nonce_key(*b)) == (a[1] < b[1])
    else:  # and stay apart from every other signer's
        assert (nonce_key(*a) < nonce_key(*b)) == (a[0] < b[0])


def test_used_nonces_are_found_with_the_transaction_that_used_them(tmp_path: Path) -> None:
    """Growing nonces (this package's clients') and random ones (any other client's)
    are both found, across blocks, with the first transaction that used them."""
    store = StateStore(tmp_path / "state.sqlite")
    grown = [(SIGNERS[i % 3], new_nonce(), f"{i:064x}") for i in range(300)]
    random = [(SIGNERS[0], f"r-{i * 7919 % 1000:03d}", f"{1000 + i:064x}") for i in range(50)]
    try:
        store.commit_block(writes_at(0, [], grown[:200]))
        store.commit_block(writes_at(1, [], grown[200:] + random, before=200))
        pairs = [(s, n) for s, n, _ in grown + random]
        assert store.nonce_txids([*pairs, (SIGNERS[1], "never-used")]) == {
            (s, n): txid for s, n, txid in grown + random
        }
        assert store.nonce_txids([(SIGNERS[2], grown[0][1])]) == {}  # another signer's
    finally:
        store.close()


def test_every_connection_maps_as_much_of_the_file_as_sqlite_allows(tmp_path: Path) -> None:
    """A reader's page cache is dropped at every block, so mapped pages (read with no
    system call) are what keeps a big store's reads cheap: as many as the build maps."""
    probe = sqlite3.connect(tmp_path / "probe.sqlite")
    try:
        (cap,) = probe.execute(f"PRAGMA mmap_size={2**40}").fetchone()
    finally:
        probe.close()
    store = StateStore(tmp_path / "state.sqlite")
    try:
        for conn in (store._writer, store._reader()):
            (mapped,) = conn.execute("PRAGMA mmap_size").fetchone()
            assert mapped == min(cap, MMAP_BYTES) > 1 << 30
    finally:
        store.close()
