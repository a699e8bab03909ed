"""Ed25519 key files: the crypto suite's raw keys to and from PEM.

The ``intl`` crypto suite (``carechain.crypto.suite``) holds an Ed25519
private key as its 32-byte seed (RFC 8032 section 5.1.5) and a public key as
its 32 raw bytes. On disk and in certificates the same keys use the standard
wrappings:

* private keys as PKCS#8 (RFC 5958 ``OneAsymmetricKey``) in PEM, with the
  Ed25519 key encoded as in RFC 8410 section 7; optionally encrypted with a
  passphrase (``BestAvailableEncryption``: PBES2 with a memory-hard or
  iterated KDF, whatever the installed ``cryptography`` considers best);
* public keys as ``SubjectPublicKeyInfo`` (RFC 5280 section 4.1.2.7) with the
  Ed25519 algorithm identifier of RFC 8410 section 3, in PEM.

A private key file is written with mode 0600 to a temporary file in the same
directory, flushed to disk, and then linked into place, so a reader sees
either no file or the whole key, never a partial one. An existing key file is
never replaced unless the caller asks for it.

Every failure raises ``ConfigError`` naming the file or what is wrong, with
the underlying exception chained.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from carechain.errors import ConfigError

SEED_SIZE = 32
"""Bytes in an Ed25519 private key seed (RFC 8032 section 5.1.5)."""

PUBLIC_KEY_SIZE = 32
"""Bytes in a raw Ed25519 public key (RFC 8032 section 5.1.2)."""

KEY_FILE_MODE = 0o600

Passphrase = bytes | str


def _passphrase_bytes(passphrase: Passphrase | None) -> bytes | None:
    if passphrase is None:
        return None
    data = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    if not data:
        raise ConfigError("passphrase is empty; pass None for an unencrypted key")
    return data


def ed25519_private_key(seed: bytes) -> Ed25519PrivateKey:
    """Return the ``cryptography`` key object for a 32-byte seed (raise ``ConfigError``)."""
    if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
        size = len(seed) if isinstance(seed, bytes) else type(seed).__name__
        raise ConfigError(f"an Ed25519 private key is a {SEED_SIZE}-byte seed, got {size}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def ed25519_public_key(public_key: bytes) -> Ed25519PublicKey:
    """Return the ``cryptography`` key object for 32 raw public key bytes.

    Raise ``ConfigError`` if ``public_key`` is not 32 bytes.
    """
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_SIZE:
        size = len(public_key) if isinstance(public_key, bytes) else type(public_key).__name__
        raise ConfigError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} raw bytes, got {size}")
    try:
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise ConfigError(f"not an Ed25519 public key: {exc}") from exc


def public_key_for(seed: bytes) -> bytes:
    """Return the raw 32-byte public key of the Ed25519 private key ``seed``."""
    return ed25519_private_key(seed).public_key().public_bytes_raw()


def private_key_to_pem(seed: bytes, passphrase: Passphrase | None = None) -> bytes:
    """Return ``seed`` as PKCS#8 PEM, encrypted if a non-empty ``passphrase`` is given."""
    key = ed25519_private_key(seed)
    secret = _passphrase_bytes(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if secret is None
        else serialization.BestAvailableEncryption(secret)
    )
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=encryption,
    )


def private_key_from_pem(pem: bytes, passphrase: Passphrase | None = None) -> bytes:
    """Return the 32-byte seed of a PKCS#8 PEM Ed25519 private key.

    Raise ``ConfigError`` if the PEM is malformed, is not Ed25519, is encrypted
    and no or the wrong passphrase is given, or is not encrypted and one is.
    """
    secret = _passphrase_bytes(passphrase)
    try:
        key = serialization.load_pem_private_key(pem, password=secret)
    except TypeError as exc:
        if secret is None:
            raise ConfigError("private key is encrypted: a passphrase is needed") from exc
        raise ConfigError("private key is not encrypted, but a passphrase was given") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError("cannot read private key (malformed PEM or wrong passphrase)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"private key is {type(key).__name__}, not Ed25519")
    return key.private_bytes_raw()


def public_key_to_pem(public_key: bytes) -> bytes:
    """Return 32 raw Ed25519 public key bytes as ``SubjectPublicKeyInfo`` PEM (RFC 8410)."""
    return ed25519_public_key(public_key).public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def public_key_from_pem(pem: bytes) -> bytes:
    """Return the 32 raw bytes of a ``SubjectPublicKeyInfo`` PEM Ed25519 public key."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError("cannot read public key: malformed PEM") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"public key is {type(key).__name__}, not Ed25519")
    return key.public_bytes_raw()


def write_private_key(
    path: str | os.PathLike[str],
    seed: bytes,
    passphrase: Passphrase | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``seed`` to ``path`` as a PKCS#8 PEM file with mode 0600; return the path.

    The key goes to a temporary file in the same directory (created 0600,
    exclusively), is fsynced, and is then moved into place: linked, which
    fails if ``path`` exists, or, with ``overwrite=True``, renamed over it.
    The directory is fsynced afterwards so the new name survives a crash.
    Raise ``ConfigError`` if ``path`` exists (without ``overwrite``) or
    cannot be written.
    """
    target = Path(path)
    pem = private_key_to_pem(seed, passphrase)
    directory = target.parent
    temp = directory / f".{target.name}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except OSError as exc:
        raise ConfigError(f"cannot write private key {str(target)!r}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, KEY_FILE_MODE)  # whatever the umask left, exactly 0600
            handle.write(pem)
            handle.flush()
            os.fsync(fd)
        if overwrite:
            os.replace(temp, target)
        else:
            os.link(temp, target)  # atomic, and refuses to replace an existing file
    except FileExistsError as exc:
        raise ConfigError(
            f"private key {str(target)!r} already exists; refusing to replace it"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot write private key {str(target)!r}: {exc.strerror}") from exc
    finally:
        temp.unlink(missing_ok=True)
    _fsync_directory(directory)
    return target


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename still happened
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def read_private_key(path: str | os.PathLike[str], passphrase: Passphrase | None = None) -> bytes:
    """Return the 32-byte seed stored in the PKCS#8 PEM file at ``path``.

    Raise ``ConfigError`` naming the file if it cannot be read or decoded.
    """
    target = Path(path)
    try:
        pem = target.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read private key {str(target)!r}: {exc.strerror}") from exc
    try:
        return private_key_from_pem(pem, passphrase)
    except ConfigError as exc:
        raise ConfigError(f"{target}: {exc.message}") from exc
