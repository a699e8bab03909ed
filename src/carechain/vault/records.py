"""What the vault and the chain agree on: record ids, salts, fingerprints, entries.

Pure: no storage, no clock. The fingerprint is what a record transaction puts
on the chain; it is a salted hash (ARCHITECTURE.md, Storage: never a plain
hash of guessable content), and the salt is kept only in the vault, wrapped
together with the record's data key, so that erasing the record makes the
on-chain fingerprint meaningless too.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field

from carechain.crypto.suite import CryptoSuite
from carechain.errors import InvalidInput

RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,79}")
"""What a record id may look like: 8 to 80 characters (use ``fullmatch``)."""

RECORD_ID_RULE = "8 to 80 characters from A-Z, a-z, 0-9 and '._:-', starting with a letter or digit"

SALT_SIZE = 32
"""Bytes of random salt in a record's fingerprint."""

DATA_KEY_SIZE = 32
"""Bytes of a record's data key (AES-256)."""

NONCE_SIZE = 12
"""Bytes of an AES-GCM nonce (NIST SP 800-38D section 8.2.2, random construction)."""

MAX_RECORD_SIZE = 4 * 1024 * 1024
"""The largest resource the vault stores, in bytes (4 MiB)."""

FINGERPRINT_DOMAIN = b"carechain/record/v1\0"
"""Prefix of every fingerprinted message, so no other hash in carechain can collide."""

_RECORD_AAD = b"carechain/vault/record\0"
_KEY_AAD = b"carechain/vault/key\0"

PENDING = "pending"
COMMITTED = "committed"


def new_record_id() -> str:
    """A fresh record id: ``rec-`` and 26 lowercase base32 characters of 16 random bytes."""
    encoded = base64.b32encode(secrets.token_bytes(16)).decode("ascii")
    return "rec-" + encoded.rstrip("=").lower()


def new_salt() -> bytes:
    """A fresh fingerprint salt: ``SALT_SIZE`` random bytes."""
    return secrets.token_bytes(SALT_SIZE)


def fingerprint(suite: CryptoSuite, salt: bytes, data: bytes) -> str:
    """The on-chain fingerprint of ``data``: hex of ``hash(FINGERPRINT_DOMAIN || salt || data)``.

    With the ``intl`` suite that is SHA-256; reproduce it with
    ``hashlib.sha256(b"carechain/record/v1\\0" + salt + data).hexdigest()``.
    The salt must be exactly ``SALT_SIZE`` bytes, so where it ends and the
    data begins is never ambiguous; raise ``InvalidInput`` otherwise.
    """
    if not isinstance(salt, bytes) or len(salt) != SALT_SIZE:
        size = len(salt) if isinstance(salt, bytes) else type(salt).__name__
        raise InvalidInput(f"a record salt is {SALT_SIZE} bytes, got {size}")
    return suite.hash(FINGERPRINT_DOMAIN + salt + bytes(data)).hex()


def record_aad(org: str, record_id: str, patient: str, resource_type: str) -> bytes:
    """Associated data of a record's ciphertext: binds it to its row.

    A ciphertext copied into another record's row (another id, patient,
    resource type or organisation) fails authentication. The fields contain
    no NUL (``Vault.put`` checks), so the NUL-separated form is unambiguous.
    """
    fields = (org, record_id, patient, resource_type)
    return _RECORD_AAD + b"\0".join(value.encode("utf-8") for value in fields)


def key_aad(org: str, record_id: str) -> bytes:
    """Associated data of a record's wrapped key: ``carechain/vault/key\\0 org \\0 record_id``."""
    return _KEY_AAD + org.encode("utf-8") + b"\0" + record_id.encode("utf-8")


@dataclass(frozen=True)
class VaultEntry:
    """What the vault knows about a record besides its content: never the plaintext.

    ``status`` is ``"pending"`` (stored, its transaction not yet committed)
    or ``"committed"``; an erased record keeps its entry (a tombstone) with
    ``erased=True``.
    """

    record_id: str
    org: str
    patient: str
    resource_type: str
    category: str
    status: str
    created_ms: int
    fingerprint: str
    erased: bool


@dataclass(frozen=True)
class NewRecord:
    """A record to store with ``Vault.put_many`` (the arguments of ``Vault.put``)."""

    org: str
    record_id: str
    patient: str
    resource_type: str
    category: str
    data: bytes = field(repr=False)
    salt: bytes = field(repr=False)


@dataclass(frozen=True)
class OpenedRecord:
    """A decrypted record and its salt, which lets a reader recompute the fingerprint.

    ``data`` and ``salt`` are left out of ``repr`` so that logging a record
    never writes health data to a log.
    """

    entry: VaultEntry
    data: bytes = field(repr=False)
    salt: bytes = field(repr=False)
