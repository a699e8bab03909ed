"""Vaults in real SQLite files under the test's own temporary directory, with real crypto."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from carechain.crypto.suite import CryptoSuite, IntlSuite
from carechain.vault import Vault, VaultEntry, new_record_id, new_salt

ORG = "pumch"
OTHER_ORG = "ruijin"

PutRecord = Callable[..., VaultEntry]


@pytest.fixture
def suite() -> CryptoSuite:
    return IntlSuite()


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "vault"


@pytest.fixture
def vault(vault_dir: Path, suite: CryptoSuite) -> Iterator[Vault]:
    opened = Vault(vault_dir, suite)
    opened.host(ORG)
    opened.host(OTHER_ORG)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def put_record(vault: Vault) -> PutRecord:
    """Store a record with sensible defaults; any field may be overridden by keyword."""

    def put(**fields: object) -> VaultEntry:
        args: dict[str, object] = {
            "org": ORG,
            "record_id": new_record_id(),
            "patient": "patient-0001",
            "resource_type": "Observation",
            "category": "vital-signs",
            "data": b'{"resourceType":"Observation","status":"final"}',
            "salt": new_salt(),
            "now_ms": 1_700_000_000_000,
        }
        args.update(fields)
        return vault.put(**args)  # type: ignore[arg-type]

    return put
