"""Sealing one record and opening it again: envelope encryption, checks. No I/O.

A record is sealed with a fresh data key (AES-256-GCM via the crypto suite,
random 12-byte nonce, ``record_aad``), and the data key is wrapped together
with the fingerprint's salt under the organisation's KEK (own random nonce,
``key_aad``). Opening reverses both and then checks the content against the
stored fingerprint, so a record is returned only if all three agree.

Random 96-bit nonces are safe here because every data key encrypts exactly
one message; a KEK wraps one key per record, far below the 2**32 messages
NIST SP 800-38D section 8.3 allows per key with random nonces.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from carechain.crypto.suite import CryptoSuite
from carechain.errors import InvalidInput, VaultTampered
from carechain.vault.records import (
    DATA_KEY_SIZE,
    MAX_RECORD_SIZE,
    NONCE_SIZE,
    PENDING,
    RECORD_ID,
    RECORD_ID_RULE,
    SALT_SIZE,
    NewRecord,
    OpenedRecord,
    VaultEntry,
    fingerprint,
    key_aad,
    record_aad,
)

_DECRYPT_FAILURES = (InvalidTag, ValueError)
"""What ``CryptoSuite.decrypt`` raises for a failed tag or a malformed key or nonce.

The suite protocol does not name its decryption error; ``intl`` (pyca
``cryptography``) raises ``InvalidTag``, and ``ValueError`` for a bad size.
"""


@dataclass(frozen=True)
class Sealed:
    """The encrypted columns of a record's row."""

    key_nonce: bytes
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


def check_new_record(record: NewRecord) -> bytes:
    """Check everything about a record to store but its organisation; return its bytes.

    Raise ``InvalidInput`` for a malformed record id, empty data or data over
    ``MAX_RECORD_SIZE``, a salt that is not ``SALT_SIZE`` bytes, or a patient,
    resource type or category that is not text, holds a NUL (they are
    NUL-separated in the aad) or is empty (the category may be).
    """
    record_id = record.record_id
    if not isinstance(record_id, str) or RECORD_ID.fullmatch(record_id) is None:
        raise InvalidInput(f"invalid record id {record_id!r}: expected {RECORD_ID_RULE}")
    _check_label("patient", record.patient)
    _check_label("resource type", record.resource_type)
    _check_label("category", record.category, may_be_empty=True)
    if not isinstance(record.salt, bytes) or len(record.salt) != SALT_SIZE:
        raise InvalidInput(f"record {record_id!r}: a record salt is {SALT_SIZE} bytes")
    data = record.data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidInput(f"record data must be bytes, got {type(data).__name__}")
    content = bytes(data)
    if not content:
        raise InvalidInput(f"record {record_id!r}: record data is empty")
    if len(content) > MAX_RECORD_SIZE:
        raise InvalidInput(
            f"record {record_id!r}: record data is {len(content)} bytes; the vault takes at "
            f"most {MAX_RECORD_SIZE} bytes (4 MiB)"
        )
    return content


def check_time(now_ms: int) -> None:
    if not isinstance(now_ms, int) or isinstance(now_ms, bool) or now_ms < 0:
        raise InvalidInput(f"now_ms must be a non-negative integer, got {now_ms!r}")


def seal(
    suite: CryptoSuite, kek: bytes, record: NewRecord, content: bytes, now_ms: int
) -> tuple[VaultEntry, Sealed]:
    """Encrypt a checked record (``content`` from ``check_new_record``); a pending entry."""
    entry = VaultEntry(
        record_id=record.record_id,
        org=record.org,
        patient=record.patient,
        resource_type=record.resource_type,
        category=record.category,
        status=PENDING,
        created_ms=now_ms,
        fingerprint=fingerprint(suite, record.salt, content),
        erased=False,
    )
    data_key = secrets.token_bytes(DATA_KEY_SIZE)
    nonce = secrets.token_bytes(NONCE_SIZE)
    key_nonce = secrets.token_bytes(NONCE_SIZE)
    aad = record_aad(record.org, record.record_id, record.patient, record.resource_type)
    ciphertext = suite.encrypt(data_key, nonce, content, aad)
    wrapped_key = suite.encrypt(
        kek, key_nonce, data_key + record.salt, key_aad(record.org, record.record_id)
    )
    return entry, Sealed(key_nonce, wrapped_key, nonce, ciphertext)


def unseal(suite: CryptoSuite, kek: bytes, entry: VaultEntry, sealed: Sealed) -> OpenedRecord:
    """Decrypt a record and check it; raise ``VaultTampered`` naming what failed.

    1. unwrap data key and salt with the KEK (aad: organisation, record id);
    2. decrypt the content with the data key (aad: organisation, record id,
       patient, resource type);
    3. recompute the fingerprint from salt and content and compare it with
       the stored one (in constant time).
    """
    record_id = entry.record_id
    # 1. The data key and the salt.
    try:
        unwrapped = suite.decrypt(
            kek, sealed.key_nonce, sealed.wrapped_key, key_aad(entry.org, record_id)
        )
    except _DECRYPT_FAILURES as exc:
        raise VaultTampered(
            f"the wrapped key of record {record_id!r} fails authentication", record_id
        ) from exc
    if len(unwrapped) != DATA_KEY_SIZE + SALT_SIZE:
        raise VaultTampered(f"the wrapped key of record {record_id!r} is malformed", record_id)
    data_key, salt = unwrapped[:DATA_KEY_SIZE], unwrapped[DATA_KEY_SIZE:]
    # 2. The content.
    aad = record_aad(entry.org, record_id, entry.patient, entry.resource_type)
    try:
        data = suite.decrypt(data_key, sealed.nonce, sealed.ciphertext, aad)
    except _DECRYPT_FAILURES as exc:
        raise VaultTampered(
            f"the content of record {record_id!r} fails authentication", record_id
        ) from exc
    # 3. The fingerprint.
    calculated = fingerprint(suite, salt, data)
    if not hmac.compare_digest(calculated.encode(), entry.fingerprint.encode()):
        raise VaultTampered(
            f"the content of record {record_id!r} does not match its fingerprint", record_id
        )
    return OpenedRecord(entry=entry, data=data, salt=salt)


def _check_label(what: str, value: str, *, may_be_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise InvalidInput(f"the {what} must be text, got {type(value).__name__}")
    if not value and not may_be_empty:
        raise InvalidInput(f"the {what} is empty")
    if "\0" in value:
        raise InvalidInput(f"the {what} {value!r} contains a NUL character")
