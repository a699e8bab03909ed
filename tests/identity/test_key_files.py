"""Ed25519 key files: PKCS#8 PEM, mode 0600, atomic writes, passphrases."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from carechain.crypto.suite import IntlSuite
from carechain.errors import ConfigError
from carechain.identity import (
    private_key_from_pem,
    private_key_to_pem,
    public_key_for,
    public_key_from_pem,
    public_key_to_pem,
    read_private_key,
    write_private_key,
)

SUITE = IntlSuite()
SEED = bytes(range(32))


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Run with umask 000, so a file is 0600 only because the code made it so."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_seed_round_trips_through_pkcs8_pem() -> None:
    pem = private_key_to_pem(SEED)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert private_key_from_pem(pem) == SEED


def test_public_key_matches_the_crypto_suite() -> None:
    seed = SUITE.generate_private_key()
    assert public_key_for(seed) == SUITE.public_key(seed)


def test_rfc8032_test_1_public_key() -> None:
    # RFC 8032 section 7.1, TEST 1: the seed and public key as printed there.
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    expected = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert public_key_for(seed).hex() == expected


def test_public_key_round_trips_through_spki_pem() -> None:
    public = public_key_for(SEED)
    pem = public_key_to_pem(public)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert public_key_from_pem(pem) == public


def test_written_key_file_is_0600_and_reads_back(tmp_path: Path, permissive_umask: None) -> None:
    path = write_private_key(tmp_path / "ca.key", SEED)
    assert _mode(path) == 0o600
    assert read_private_key(path) == SEED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key"]  # no temporary left behind


def test_existing_key_file_is_not_replaced(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "ca.key", SEED)
    other = bytes(32)
    with pytest.raises(ConfigError, match="already exists"):
        write_private_key(path, other)
    assert read_private_key(path) == SEED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key"]


def test_overwrite_replaces_atomically_and_keeps_0600(
    tmp_path: Path, permissive_umask: None
) -> None:
    path = tmp_path / "ca.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private_key(path, SEED, overwrite=True)
    assert _mode(path) == 0o600
    assert read_private_key(path) == SEED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key"]


def test_writing_into_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write private key"):
        write_private_key(tmp_path / "missing" / "ca.key", SEED)


@pytest.mark.parametrize("passphrase", ["协和 passphrase", b"bytes passphrase"])
def test_passphrase_round_trip(tmp_path: Path, passphrase: str | bytes) -> None:
    path = write_private_key(tmp_path / "member.key", SEED, passphrase)
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert SEED not in pem
    assert read_private_key(path, passphrase) == SEED


def test_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "member.key", SEED, "right")
    with pytest.raises(ConfigError, match=r"member\.key"):
        read_private_key(path, "wrong")


def test_encrypted_key_without_passphrase_is_refused(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "member.key", SEED, "right")
    with pytest.raises(ConfigError, match="a passphrase is needed"):
        read_private_key(path)


def test_passphrase_for_a_plain_key_is_refused(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "member.key", SEED)
    with pytest.raises(ConfigError, match="not encrypted"):
        read_private_key(path, "surplus")


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(ConfigError, match="passphrase is empty"):
        private_key_to_pem(SEED, "")


def test_missing_key_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    with pytest.raises(ConfigError, match=r"absent\.key"):
        read_private_key(path)


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), bytes(64)])
def test_seed_must_be_32_bytes(seed: bytes) -> None:
    with pytest.raises(ConfigError, match="32-byte seed"):
        private_key_to_pem(seed)


@pytest.mark.parametrize("public", [b"", bytes(31), bytes(33)])
def test_public_key_must_be_32_bytes(public: bytes) -> None:
    with pytest.raises(ConfigError, match="32 raw bytes"):
        public_key_to_pem(public)


def test_a_non_ed25519_private_key_is_refused() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match="not Ed25519"):
        private_key_from_pem(pem)


def test_a_non_ed25519_public_key_is_refused() -> None:
    pem = (
        ed448.Ed448PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigError, match="not Ed25519"):
        public_key_from_pem(pem)


@pytest.mark.parametrize("pem", [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_malformed_private_key_pem_is_refused(pem: bytes) -> None:
    with pytest.raises(ConfigError, match="cannot read private key"):
        private_key_from_pem(pem)


def test_key_read_from_file_signs_like_the_suite(tmp_path: Path) -> None:
    seed = SUITE.generate_private_key()
    path = write_private_key(tmp_path / "member.key", seed)
    signature = SUITE.sign(read_private_key(path), b"consent granted")
    assert SUITE.verify(SUITE.public_key(seed), b"consent granted", signature)
