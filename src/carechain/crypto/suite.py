"""The crypto suite: every hash, signature and cipher call goes through here.

A consortium picks one suite at genesis and names it in the genesis
transaction. ``intl`` (Ed25519, SHA-256, AES-256-GCM) is the default and the
only one today; ``gm`` (SM2, SM3, SM4-GCM, China's national algorithms) will
be a second implementation of ``CryptoSuite`` and must need no change outside
this package.

Callers may rely on:

* ``hash`` is collision resistant and returns ``digest_size`` bytes;
* ``verify`` returns False (never raises) for a malformed key or signature;
* ``sign`` is deterministic for a given key and message (Ed25519 is, RFC 8032
  section 5.1.6), which keeps test vectors stable;
* private keys are ``seed_size`` random bytes; public keys are raw bytes.
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class CryptoSuite(Protocol):
    name: str
    digest_size: int
    signature_size: int

    def hash(self, data: bytes) -> bytes: ...

    def generate_private_key(self) -> bytes: ...

    def public_key(self, private_key: bytes) -> bytes: ...

    def sign(self, private_key: bytes, message: bytes) -> bytes: ...

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...

    def encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes: ...

    def decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes: ...


class IntlSuite:
    """Ed25519 (RFC 8032, libsodium via PyNaCl), SHA-256, AES-256-GCM."""

    name = "intl"
    digest_size = 32
    signature_size = 64
    seed_size = 32

    def __init__(self) -> None:
        self._verify_keys: dict[bytes, nacl.signing.VerifyKey] = {}

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def generate_private_key(self) -> bytes:
        return os.urandom(self.seed_size)

    def public_key(self, private_key: bytes) -> bytes:
        return bytes(nacl.signing.SigningKey(private_key).verify_key)

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        return nacl.signing.SigningKey(private_key).sign(message).signature

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = self._verify_keys.get(public_key)
        if key is None:
            if len(public_key) != 32:
                return False
            try:
                key = nacl.signing.VerifyKey(public_key)
            except (nacl.exceptions.CryptoError, ValueError, TypeError):
                return False
            if len(self._verify_keys) > 100_000:
                self._verify_keys.clear()
            self._verify_keys[public_key] = key
        if len(signature) != self.signature_size:
            return False
        try:
            key.verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
            return False
        return True

    def encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return AESGCM(key).encrypt(nonce, plaintext, aad)

    def decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)


_SUITES: dict[str, CryptoSuite] = {"intl": IntlSuite()}


def get_suite(name: str = "intl") -> CryptoSuite:
    """Return the suite called ``name``; raise KeyError if there is none."""
    try:
        return _SUITES[name]
    except KeyError:
        raise KeyError(f"unknown crypto suite {name!r}; known: {', '.join(_SUITES)}") from None


DEFAULT = _SUITES["intl"]


SignatureCheck = tuple[bytes, bytes, bytes]
"""(public key, message, signature)."""


def verify_many(suite_name: str, checks: list[SignatureCheck]) -> list[bool]:
    """Verify many signatures in one call (the unit of work sent to a worker process)."""
    suite = get_suite(suite_name)
    return [suite.verify(key, message, signature) for key, message, signature in checks]
