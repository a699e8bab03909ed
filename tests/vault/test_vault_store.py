"""The vault's API on a real SQLite file: put, open, commit, discard, entries, reopen."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from carechain.crypto.suite import CryptoSuite
from carechain.errors import InvalidInput, NodeFailure, NotFound
from carechain.vault import (
    MAX_RECORD_SIZE,
    NewRecord,
    Vault,
    VaultEntry,
    fingerprint,
    new_record_id,
    new_salt,
)

ORG = "pumch"  # both hosted by the ``vault`` fixture (conftest.py)
OTHER_ORG = "ruijin"
PutRecord = Callable[..., VaultEntry]

FHIR = b'{"resourceType":"Observation","status":"final","code":{"text":"blood pressure"}}'


def test_round_trip(vault: Vault, suite: CryptoSuite) -> None:
    salt = new_salt()
    entry = vault.put(
        ORG, "rec-00000001", "patient-7", "Observation", "vital-signs", FHIR, salt, now_ms=42
    )
    assert entry.record_id == "rec-00000001"
    assert (entry.org, entry.patient, entry.resource_type) == (ORG, "patient-7", "Observation")
    assert (entry.category, entry.status, entry.created_ms) == ("vital-signs", "pending", 42)
    assert entry.fingerprint == fingerprint(suite, salt, FHIR)
    assert not entry.erased
    assert vault.entry("rec-00000001") == entry

    opened = vault.open("rec-00000001")
    assert opened.data == FHIR
    assert opened.salt == salt
    assert opened.entry == entry
    # A reader holding the salt can check the record against the chain's fingerprint.
    assert fingerprint(suite, opened.salt, opened.data) == entry.fingerprint


def test_the_database_holds_no_plaintext_and_no_salt(vault: Vault, put_record: PutRecord) -> None:
    salt = new_salt()
    marker = b"UNIQUE-PLAINTEXT-MARKER-" * 4
    put_record(record_id="rec-plain-0001", data=marker, salt=salt)
    vault.close()
    raw = b"".join(
        path.read_bytes() for path in vault.path.parent.glob("vault.sqlite*") if path.is_file()
    )
    assert b"UNIQUE-PLAINTEXT-MARKER" not in raw
    assert salt not in raw


def test_put_into_an_organisation_this_vault_does_not_host(
    vault: Vault, put_record: PutRecord
) -> None:
    assert not vault.hosts("anzhen")
    with pytest.raises(InvalidInput, match=r"does not host.*'anzhen'"):
        put_record(org="anzhen")
    with pytest.raises(InvalidInput, match="does not host"):
        put_record(org="../../etc/passwd")
    assert vault.entries() == []


def test_duplicate_record_id_says_what_the_existing_record_is(
    vault: Vault, put_record: PutRecord
) -> None:
    put_record(record_id="rec-dup-0001")
    with pytest.raises(InvalidInput, match=r"'rec-dup-0001' already exists.*\(pending\)"):
        put_record(record_id="rec-dup-0001")
    vault.commit("rec-dup-0001")
    with pytest.raises(InvalidInput, match=r"already exists.*\(committed\)"):
        put_record(record_id="rec-dup-0001", org=OTHER_ORG)
    vault.erase("rec-dup-0001", now_ms=5)
    with pytest.raises(InvalidInput, match=r"already exists.*\(erased\)"):
        put_record(record_id="rec-dup-0001")
    # The refused puts changed nothing.
    assert [e.record_id for e in vault.entries()] == ["rec-dup-0001"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"record_id": "short"}, "invalid record id"),
        ({"record_id": "x" * 81}, "invalid record id"),
        ({"record_id": "rec/../../0001"}, "invalid record id"),
        ({"record_id": 12345678}, "invalid record id"),
        ({"data": b""}, "empty"),
        ({"data": b"\0" * (MAX_RECORD_SIZE + 1)}, "at most 4194304 bytes"),
        ({"data": "text, not bytes"}, "must be bytes"),
        ({"salt": b"\0" * 16}, "salt is 32 bytes"),
        ({"patient": ""}, "patient is empty"),
        ({"patient": "p\x001"}, "NUL"),
        ({"resource_type": ""}, "resource type is empty"),
        ({"category": None}, "category must be text"),
        ({"now_ms": -1}, "now_ms"),
    ],
)
def test_put_refuses_bad_input(
    vault: Vault, put_record: PutRecord, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        put_record(**fields)
    assert vault.entries() == []


def test_put_takes_exactly_four_mebibytes_and_an_empty_category(
    vault: Vault, put_record: PutRecord
) -> None:
    data = bytes(range(256)) * (MAX_RECORD_SIZE // 256)
    entry = put_record(data=data, category="")
    assert vault.open(entry.record_id).data == data
    assert vault.open(entry.record_id).entry.category == ""


def test_commit_and_commit_many(vault: Vault, put_record: PutRecord) -> None:
    first = put_record().record_id
    vault.commit(first)
    vault.commit(first)  # idempotent
    assert vault.entry(first).status == "committed"  # type: ignore[union-attr]
    with pytest.raises(NotFound, match="rec-unknown-1"):
        vault.commit("rec-unknown-1")

    others = [put_record().record_id for _ in range(3)]
    missing = vault.commit_many([*others, "rec-elsewhere-1", first, others[0]])
    assert missing == ["rec-elsewhere-1"]
    assert {vault.entry(r).status for r in others} == {"committed"}  # type: ignore[union-attr]
    assert vault.commit_many([]) == []


def test_commit_many_over_many_chunks(vault: Vault, put_record: PutRecord) -> None:
    ids = [put_record(data=b"x").record_id for _ in range(1200)]
    assert vault.commit_many(ids) == []
    assert vault.pending_older_than(2**62) == []


def test_discard_deletes_pending_records_only(vault: Vault, put_record: PutRecord) -> None:
    pending = put_record().record_id
    committed = put_record().record_id
    vault.commit(committed)

    vault.discard(pending)
    assert vault.entry(pending) is None
    with pytest.raises(NotFound):
        vault.open(pending)
    vault.discard(pending)  # absent: no-op
    with pytest.raises(InvalidInput, match=r"committed.*erase it instead"):
        vault.discard(committed)
    assert vault.open(committed).entry.status == "committed"
    # A discarded id may be used again (its transaction never made it to the chain).
    put_record(record_id=pending)


def test_pending_older_than_finds_stale_records_for_cleanup(
    vault: Vault, put_record: PutRecord
) -> None:
    old = put_record(record_id="rec-old-00001", now_ms=1_000).record_id
    older = put_record(record_id="rec-old-00000", now_ms=500).record_id
    old_but_committed = put_record(now_ms=700).record_id
    vault.commit(old_but_committed)
    put_record(record_id="rec-new-00001", now_ms=5_000)

    stale = vault.pending_older_than(2_000)
    assert stale == [older, old]  # oldest first
    for record_id in stale:
        vault.discard(record_id)
    assert vault.pending_older_than(2_000) == []
    assert vault.pending_older_than(10_000) == ["rec-new-00001"]


def test_entries_filtered_and_ordered(vault: Vault, put_record: PutRecord) -> None:
    put_record(record_id="rec-c-000001", patient="p-1")
    put_record(record_id="rec-a-000001", patient="p-2")
    put_record(record_id="rec-b-000001", patient="p-1", org=OTHER_ORG)
    vault.erase("rec-a-000001", now_ms=9)

    assert [e.record_id for e in vault.entries()] == [
        "rec-a-000001",
        "rec-b-000001",
        "rec-c-000001",
    ]
    assert [e.record_id for e in vault.entries(patient="p-1")] == [
        "rec-b-000001",
        "rec-c-000001",
    ]
    assert [e.record_id for e in vault.entries(org=ORG)] == ["rec-a-000001", "rec-c-000001"]
    assert [e.record_id for e in vault.entries(org=ORG, patient="p-1")] == ["rec-c-000001"]
    assert vault.entries(patient="nobody") == []
    assert vault.entry("rec-a-000001").erased  # type: ignore[union-attr]


def test_unknown_record(vault: Vault) -> None:
    assert vault.entry("rec-unknown-1") is None
    with pytest.raises(NotFound, match="no record 'rec-unknown-1'"):
        vault.open("rec-unknown-1")
    with pytest.raises(NotFound):
        vault.erase("rec-unknown-1", now_ms=1)


def test_reopen_after_close_keeps_records_and_keys(
    vault_dir: Path, suite: CryptoSuite, vault: Vault, put_record: PutRecord
) -> None:
    committed = put_record(data=b"committed bytes")
    vault.commit(committed.record_id)
    pending = put_record(org=OTHER_ORG, data=b"pending bytes")
    erased = put_record()
    vault.erase(erased.record_id, now_ms=3)
    before = vault.entries()
    vault.close()

    with Vault(vault_dir, suite) as reopened:
        assert reopened.hosts(ORG)
        assert reopened.hosts(OTHER_ORG)
        assert reopened.entries() == before
        assert reopened.open(committed.record_id).data == b"committed bytes"
        assert reopened.open(pending.record_id).data == b"pending bytes"
        # Erasing a pending record keeps it pending: cleanup may still discard it.
        stale = {pending.record_id, erased.record_id}
        assert set(reopened.pending_older_than(2**62)) == stale


def test_a_closed_vault_refuses_work(vault: Vault, put_record: PutRecord) -> None:
    record_id = put_record().record_id
    vault.close()
    vault.close()  # idempotent
    with pytest.raises(NodeFailure, match="closed"):
        vault.open(record_id)
    with pytest.raises(NodeFailure, match="closed"):
        vault.commit(record_id)


def test_a_vault_in_an_unknown_layout_is_refused_not_rewritten(
    vault_dir: Path, suite: CryptoSuite, vault: Vault, put_record: PutRecord
) -> None:
    record_id = put_record().record_id
    vault.close()
    with sqlite3.connect(vault.path) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(NodeFailure, match="layout 99"):
        Vault(vault_dir, suite)
    with sqlite3.connect(vault.path) as conn:
        assert conn.execute("SELECT record_id FROM records").fetchall() == [(record_id,)]


def test_sqlite_settings(vault: Vault) -> None:
    conn = vault._conn
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert conn.execute("PRAGMA secure_delete").fetchone() == (1,)


def test_record_ids_from_new_record_id_are_accepted(vault: Vault, put_record: PutRecord) -> None:
    record_id = new_record_id()
    assert put_record(record_id=record_id).record_id == record_id


def _new(record_id: str, data: bytes = b"bundle entry", org: str = ORG) -> NewRecord:
    return NewRecord(org, record_id, "patient-1", "Observation", "laboratory", data, new_salt())


def test_put_many_stores_all_in_one_transaction(vault: Vault, suite: CryptoSuite) -> None:
    records = [_new(f"rec-bundle-{n:04d}", f"entry {n}".encode()) for n in range(50)]
    records.append(_new("rec-bundle-other", b"other org", org=OTHER_ORG))
    before = vault._writer.batches
    entries = vault.put_many(records, now_ms=77)
    assert vault._writer.batches == before + 1
    assert [e.record_id for e in entries] == [r.record_id for r in records]
    for record, entry in zip(records, entries, strict=True):
        assert entry.status == "pending"
        assert entry.created_ms == 77
        assert entry.fingerprint == fingerprint(suite, record.salt, record.data)
        assert vault.open(record.record_id).data == record.data
    assert vault.put_many([], now_ms=1) == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("twice", "'rec-bundle-0001' appears twice"),
        ("exists", r"'rec-existing-1' already exists.*\(committed\); none of the 3"),
        ("bad-id", "invalid record id 'bad'"),
        ("unhosted", "does not host a vault for organisation 'anzhen'"),
        ("empty", "'rec-bundle-0002': record data is empty"),
    ],
)
def test_put_many_stores_nothing_if_one_record_is_refused(
    vault: Vault, put_record: PutRecord, damage: str, message: str
) -> None:
    put_record(record_id="rec-existing-1")
    vault.commit("rec-existing-1")
    records = [_new("rec-bundle-0001"), _new("rec-bundle-0002")]
    extra = {
        "twice": _new("rec-bundle-0001"),
        "exists": _new("rec-existing-1"),
        "bad-id": _new("bad"),
        "unhosted": _new("rec-bundle-0003", org="anzhen"),
        "empty": _new("rec-bundle-0002", data=b""),
    }[damage]
    if damage == "empty":
        records = [records[0], extra]
    else:
        records.append(extra)
    with pytest.raises(InvalidInput, match=message):
        vault.put_many(records, now_ms=1)
    assert [e.record_id for e in vault.entries()] == ["rec-existing-1"]
