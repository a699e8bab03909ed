"""Key-encryption keys: one 0600 file per hosted organisation, created once."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from carechain.crypto.suite import CryptoSuite
from carechain.errors import ConfigError, InvalidInput, VaultTampered
from carechain.vault import Vault, VaultEntry

PutRecord = Callable[..., VaultEntry]


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


@pytest.mark.usefixtures("permissive_umask")
def test_one_0600_key_file_per_organisation(vault_dir: Path, suite: CryptoSuite) -> None:
    with Vault(vault_dir, suite) as vault:
        assert not vault.hosts("pumch")
        vault.host("pumch")
        vault.host("sinopharm-bj")
        vault.host("pumch")  # idempotent
        vault.put("pumch", "rec-mode-0001", "p-1", "Observation", "", b"x", bytes(32), now_ms=1)

        keys = vault_dir / "keys"
        assert sorted(p.name for p in keys.iterdir()) == ["pumch.key", "sinopharm-bj.key"]
        for path in keys.iterdir():
            assert _mode(path) == 0o600
            assert len(path.read_bytes()) == 32
        assert (keys / "pumch.key").read_bytes() != (keys / "sinopharm-bj.key").read_bytes()
        assert _mode(keys) == 0o700
        assert _mode(vault_dir) == 0o700
        assert _mode(vault.path) == 0o600
        assert _mode(Path(f"{vault.path}-wal")) == 0o600


def test_hosting_again_keeps_the_key(vault_dir: Path, suite: CryptoSuite) -> None:
    with Vault(vault_dir, suite) as vault:
        vault.host("pumch")
    key = (vault_dir / "keys" / "pumch.key").read_bytes()
    with Vault(vault_dir, suite) as vault:
        assert vault.hosts("pumch")
        vault.host("pumch")
    assert (vault_dir / "keys" / "pumch.key").read_bytes() == key


def test_threads_hosting_the_same_organisation_share_one_key(
    vault_dir: Path, suite: CryptoSuite
) -> None:
    vaults = [Vault(vault_dir, suite) for _ in range(8)]  # separate key caches, one directory
    barrier = threading.Barrier(len(vaults))

    def host(vault: Vault) -> None:
        barrier.wait()
        vault.host("pumch")

    threads = [threading.Thread(target=host, args=(vault,)) for vault in vaults]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        vaults[0].put("pumch", "rec-race-0001", "p", "Observation", "", b"x", bytes(32), now_ms=1)
        for vault in vaults:
            assert vault.open("rec-race-0001").data == b"x"
        assert [p.name for p in (vault_dir / "keys").iterdir()] == ["pumch.key"]
    finally:
        for vault in vaults:
            vault.close()


@pytest.mark.parametrize("org", ["../evil", "PUMCH", "a", "pumch/../x", ""])
def test_a_malformed_organisation_id_names_no_key_file(
    vault: Vault, vault_dir: Path, org: str
) -> None:
    assert not vault.hosts(org)
    with pytest.raises(InvalidInput, match="invalid organisation id"):
        vault.host(org)
    assert not any(vault_dir.parent.glob("*.key"))
    assert not any(vault_dir.glob("*.key"))


def test_a_damaged_key_file_is_a_clear_error(vault_dir: Path, suite: CryptoSuite) -> None:
    keys = vault_dir / "keys"
    keys.mkdir(parents=True)
    (keys / "pumch.key").write_bytes(b"too short")
    with Vault(vault_dir, suite) as vault:
        assert vault.hosts("pumch")
        with pytest.raises(ConfigError, match=r"pumch\.key.*holds 9 bytes, expected 32"):
            vault.put("pumch", "rec-bad-key-1", "p", "Observation", "", b"x", bytes(32), now_ms=1)


def test_records_of_one_organisation_need_that_organisations_key(
    vault: Vault, vault_dir: Path, suite: CryptoSuite, put_record: PutRecord
) -> None:
    """A record is wrapped under its organisation's KEK: with another key it cannot open."""
    entry = put_record(org="pumch")
    vault.close()
    keys = vault_dir / "keys"
    os.replace(keys / "ruijin.key", keys / "pumch.key")
    with Vault(vault_dir, suite) as reopened, pytest.raises(VaultTampered, match="wrapped key"):
        reopened.open(entry.record_id)
