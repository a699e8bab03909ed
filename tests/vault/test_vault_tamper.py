"""A vault row changed behind the vault's back is refused with ``VaultTampered``.

Each case damages one thing in the SQLite file with ``sqlite3`` directly, the
way an attacker or a faulty disk with access to the file could, and checks
that ``open`` refuses the record instead of returning data.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable

import pytest

from carechain.crypto.suite import CryptoSuite
from carechain.errors import VaultTampered
from carechain.vault import Vault, VaultEntry
from carechain.vault.records import key_aad, record_aad

ORG = "pumch"  # both hosted by the ``vault`` fixture (conftest.py)
OTHER_ORG = "ruijin"
PutRecord = Callable[..., VaultEntry]

A = "rec-tamper-a"
B = "rec-tamper-b"


def _swap(*columns: str) -> Callable[[sqlite3.Connection], None]:
    """Damage that swaps ``columns`` between records A and B."""

    def swap(conn: sqlite3.Connection) -> None:
        listed = ", ".join(columns)
        select = f"SELECT {listed} FROM records WHERE record_id = ?"
        a, b = (conn.execute(select, (r,)).fetchone() for r in (A, B))
        assignments = ", ".join(f"{column} = ?" for column in columns)
        update = f"UPDATE records SET {assignments} WHERE record_id = ?"
        conn.execute(update, (*b, A))
        conn.execute(update, (*a, B))

    return swap


def _sql(*statements: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return run


DAMAGE: dict[str, Callable[[sqlite3.Connection], None]] = {
    # Ciphertexts (with their nonces) swapped between two records of the same organisation.
    "swap-ciphertexts": _swap("ciphertext", "nonce"),
    # Wrapped keys (with their nonces) swapped: the key's aad names its record.
    "swap-wrapped-keys": _swap("wrapped_key", "key_nonce"),
    # Everything encrypted swapped: each key then opens its ciphertext, but under the other id.
    "swap-whole-encrypted-rows": _swap("wrapped_key", "key_nonce", "ciphertext", "nonce"),
    # The whole row of A moved under B's id (B's own row removed).
    "row-moved-to-another-id": _sql(
        f"DELETE FROM records WHERE record_id = '{B}'",
        f"UPDATE records SET record_id = '{B}' WHERE record_id = '{A}'",
    ),
    "patient-changed": _sql("UPDATE records SET patient = 'patient-9999'"),
    "resource-type-changed": _sql("UPDATE records SET resource_type = 'Condition'"),
    "org-changed-to-another-hosted-org": _sql(f"UPDATE records SET org = '{OTHER_ORG}'"),
    "org-changed-to-an-unhosted-org": _sql("UPDATE records SET org = 'anzhen'"),
    "fingerprint-changed": _sql(
        "UPDATE records SET fingerprint = substr(fingerprint, 2) || substr(fingerprint, 1, 1)"
    ),
    "wrapped-key-truncated": _sql("UPDATE records SET wrapped_key = substr(wrapped_key, 1, 40)"),
    "wrapped-key-removed-but-not-erased": _sql("UPDATE records SET wrapped_key = NULL"),
    "ciphertext-emptied": _sql("UPDATE records SET ciphertext = x''"),
    "nonce-shortened": _sql("UPDATE records SET nonce = substr(nonce, 1, 8)"),
}

FLIPS = ["ciphertext", "wrapped_key", "nonce", "key_nonce"]


@pytest.fixture
def two_records(vault: Vault, put_record: PutRecord) -> tuple[VaultEntry, VaultEntry]:
    first = put_record(record_id=A, data=b'{"resourceType":"Observation","id":"a"}')
    second = put_record(record_id=B, data=b'{"resourceType":"Observation","id":"b"}')
    vault.commit_many([A, B])
    return first, second


def _tamper(vault: Vault, damage: Callable[[sqlite3.Connection], None]) -> None:
    conn = sqlite3.connect(vault.path)
    try:
        with conn:
            damage(conn)
    finally:
        conn.close()


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_damaged_rows_are_refused(
    vault: Vault, two_records: tuple[VaultEntry, VaultEntry], damage: str
) -> None:
    _tamper(vault, DAMAGE[damage])
    remaining = [entry.record_id for entry in vault.entries()]
    assert remaining
    for record_id in remaining:
        with pytest.raises(VaultTampered) as caught:
            vault.open(record_id)
        assert caught.value.record == record_id
        assert record_id in caught.value.message


@pytest.mark.parametrize("column", FLIPS)
@pytest.mark.parametrize("offset", [0, 7], ids=["first-byte", "eighth-byte"])
def test_a_flipped_bit_is_refused(
    vault: Vault, two_records: tuple[VaultEntry, VaultEntry], column: str, offset: int
) -> None:
    conn = sqlite3.connect(vault.path)
    try:
        (value,) = conn.execute(
            f"SELECT {column} FROM records WHERE record_id = ?", (A,)
        ).fetchone()
        damaged = bytearray(value)
        damaged[offset] ^= 0x01
        with conn:
            conn.execute(
                f"UPDATE records SET {column} = ? WHERE record_id = ?", (bytes(damaged), A)
            )
    finally:
        conn.close()
    with pytest.raises(VaultTampered, match="fails authentication"):
        vault.open(A)
    assert vault.open(B).data == b'{"resourceType":"Observation","id":"b"}'  # untouched


def test_category_and_status_are_metadata_not_bound_to_the_ciphertext(
    vault: Vault, two_records: tuple[VaultEntry, VaultEntry]
) -> None:
    """Documents the binding: the aad covers org, record id, patient and resource type only."""
    _tamper(vault, _sql("UPDATE records SET category = 'other'"))
    assert vault.open(A).entry.category == "other"


def test_the_fingerprint_check_catches_a_record_re_encrypted_with_its_own_key(
    vault: Vault, suite: CryptoSuite, put_record: PutRecord
) -> None:
    """Someone holding the KEK re-encrypts other content under the record's key: refused."""
    put_record(record_id=A, patient="p-1", data=b"original")
    kek = (vault.directory / "keys" / f"{ORG}.key").read_bytes()
    conn = sqlite3.connect(vault.path)
    try:
        key_nonce, wrapped = conn.execute(
            "SELECT key_nonce, wrapped_key FROM records WHERE record_id = ?", (A,)
        ).fetchone()
        unwrapped = suite.decrypt(kek, key_nonce, wrapped, key_aad(ORG, A))
        nonce = secrets.token_bytes(12)
        forged = suite.encrypt(
            unwrapped[:32], nonce, b"forged", record_aad(ORG, A, "p-1", "Observation")
        )
        with conn:
            conn.execute(
                "UPDATE records SET ciphertext = ?, nonce = ? WHERE record_id = ?",
                (forged, nonce, A),
            )
    finally:
        conn.close()
    with pytest.raises(VaultTampered, match="does not match its fingerprint"):
        vault.open(A)
