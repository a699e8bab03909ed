"""A member's credentials on disk: ``NAME.pem`` (certificate) beside ``NAME.key`` (key).

The CLI, API clients and benchmarks sign as a member by naming the path
without its extension (``orgs/pumch/members/admin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from carechain.errors import ConfigError
from carechain.identity.certificates import Fingerprint, fingerprint_of
from carechain.identity.keys import public_key_for, read_private_key, write_private_key


@dataclass(frozen=True)
class Credentials:
    fingerprint: Fingerprint
    certificate_pem: bytes
    private_key: bytes
    """The Ed25519 seed."""

    @property
    def public_key(self) -> bytes:
        return public_key_for(self.private_key)


def load_credentials(path: str | Path) -> Credentials:
    """Load ``PATH.pem`` and ``PATH.key``; ``PATH`` may also end in ``.pem`` or ``.key``."""
    base = Path(path)
    if base.suffix in (".pem", ".key"):
        base = base.with_suffix("")
    cert_path, key_path = base.with_suffix(".pem"), base.with_suffix(".key")
    for needed in (cert_path, key_path):
        if not needed.is_file():
            raise ConfigError(f"{needed} not found (an identity is NAME.pem beside NAME.key)")
    pem = cert_path.read_bytes()
    seed = read_private_key(key_path)
    return Credentials(fingerprint_of(pem), pem, seed)


def save_credentials(path: str | Path, certificate_pem: bytes, private_key: bytes) -> Credentials:
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    write_private_key(base.with_suffix(".key"), private_key)
    base.with_suffix(".pem").write_bytes(certificate_pem)
    return Credentials(fingerprint_of(certificate_pem), certificate_pem, private_key)
