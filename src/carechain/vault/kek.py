"""Key-encryption keys: one per organisation whose vault this node hosts.

A KEK is ``KEK_SIZE`` random bytes in ``<vault>/keys/<org_id>.key``, raw,
mode 0600, in a directory of mode 0700. It wraps the data keys of that
organisation's records; losing the file loses every record of the
organisation, so it belongs in the node's backups (apart from the vault).

The file is written the way ``identity.keys.write_private_key`` writes a
private key (those helpers wrap Ed25519 seeds in PKCS#8 PEM, which does not fit
a symmetric key): to an exclusive 0600 temporary file in the same directory,
fsynced, then linked into place, which refuses to replace an existing key,
and the directory is fsynced. A reader sees no key or the whole key; two
threads or processes creating the same organisation's key end up sharing the
one that was linked first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path

from carechain.errors import ConfigError, InvalidInput
from carechain.identity.roles import parse_org_id

KEK_SIZE = 32
"""Bytes of a key-encryption key (AES-256)."""

KEY_FILE_MODE = 0o600
KEY_DIR_MODE = 0o700


class KeyRing:
    """The KEK files in one directory, read once and cached."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}

    def path(self, org: str) -> Path:
        """The KEK file of ``org``; raise ``InvalidInput`` for a malformed organisation id."""
        return self.directory / f"{parse_org_id(org)}.key"

    def hosts(self, org: str) -> bool:
        """Whether a KEK file exists for ``org`` (False for a malformed id)."""
        if org in self._keys:
            return True
        try:
            path = self.path(org)
        except InvalidInput:  # a malformed id names no file
            return False
        return path.is_file()

    def get(self, org: str) -> bytes | None:
        """The KEK of ``org``, or None if this node does not host that organisation."""
        key = self._keys.get(org)
        if key is not None or not self.hosts(org):
            return key
        with self._lock:
            key = self._keys.get(org)
            if key is None:
                key = _read_key(self.path(org))
                self._keys[org] = key
            return key

    def host(self, org: str) -> None:
        """Create ``org``'s KEK if it has none (idempotent)."""
        path = self.path(org)
        with self._lock:
            if org in self._keys:
                return
            if not path.exists():
                self.directory.mkdir(mode=KEY_DIR_MODE, parents=True, exist_ok=True)
                _write_new_key(path, secrets.token_bytes(KEK_SIZE))
            self._keys[org] = _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read vault key {str(path)!r}: {exc.strerror}") from exc
    if len(key) != KEK_SIZE:
        raise ConfigError(
            f"vault key {str(path)!r} holds {len(key)} bytes, expected {KEK_SIZE}: "
            "damaged or not a vault key"
        )
    return key


def _write_new_key(path: Path, key: bytes) -> None:
    """Write ``key`` to ``path`` (mode 0600) unless a key is already there."""
    temp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except OSError as exc:
        raise ConfigError(f"cannot write vault key {str(path)!r}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, KEY_FILE_MODE)  # whatever the umask left, exactly 0600
            handle.write(key)
            handle.flush()
            os.fsync(fd)
        with contextlib.suppress(FileExistsError):  # another writer won: use its key
            os.link(temp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write vault key {str(path)!r}: {exc.strerror}") from exc
    finally:
        temp.unlink(missing_ok=True)
    try:
        _fsync_directory(path.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write vault key {str(path)!r}: {exc.strerror}") from exc


def _fsync_directory(directory: Path) -> None:
    """Make a new name in ``directory`` survive a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
