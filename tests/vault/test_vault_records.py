"""Record ids, salts and fingerprints: the pure part the chain and the vault agree on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from carechain.crypto.suite import CryptoSuite
from carechain.errors import InvalidInput
from carechain.vault import (
    RECORD_ID,
    SALT_SIZE,
    OpenedRecord,
    VaultEntry,
    fingerprint,
    new_record_id,
    new_salt,
)

VECTORS = json.loads((Path(__file__).parent / "testdata" / "fingerprints.json").read_text("utf-8"))


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda case: case["id"])
def test_fingerprint_known_answers(suite: CryptoSuite, case: dict[str, Any]) -> None:
    salt = bytes.fromhex(case["salt_hex"])
    data = bytes.fromhex(case["data_hex"])
    independent = hashlib.sha256(b"carechain/record/v1\x00" + salt + data).hexdigest()
    assert independent == case["expected"]
    assert fingerprint(suite, salt, data) == case["expected"]


def test_fingerprint_depends_on_the_salt(suite: CryptoSuite) -> None:
    data = b'{"resourceType":"Observation"}'
    assert fingerprint(suite, new_salt(), data) != fingerprint(suite, new_salt(), data)


@pytest.mark.parametrize("salt", [b"", bytes(31), bytes(33)], ids=["empty", "31", "33"])
def test_fingerprint_refuses_a_salt_of_the_wrong_size(suite: CryptoSuite, salt: bytes) -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        fingerprint(suite, salt, b"data")


def test_new_record_ids_are_fresh_and_well_formed() -> None:
    ids = {new_record_id() for _ in range(1000)}
    assert len(ids) == 1000
    for record_id in ids:
        assert RECORD_ID.fullmatch(record_id)
        assert record_id.startswith("rec-")
        suffix = record_id.removeprefix("rec-")
        assert len(suffix) == 26
        assert set(suffix) <= set("abcdefghijklmnopqrstuvwxyz234567")


@pytest.mark.parametrize(
    ("record_id", "ok"),
    [
        ("rec-0001", True),
        ("A" * 80, True),
        ("urn:uuid:4f1c2d3e-0000-4000-8000-000000000001", True),
        ("obs.2024_07:01-x", True),
        ("rec-001", False),  # 7 characters
        ("A" * 81, False),
        ("-rec-0001", False),  # must start with a letter or digit
        ("rec 0001", False),
        ("rec/0001/../x", False),
        ("rec-０００１", False),  # full-width digits are not ASCII
    ],
)
def test_record_id_pattern(record_id: str, ok: bool) -> None:
    assert (RECORD_ID.fullmatch(record_id) is not None) is ok


def test_new_salt_is_random_and_32_bytes() -> None:
    salts = {new_salt() for _ in range(100)}
    assert len(salts) == 100
    assert all(len(salt) == SALT_SIZE == 32 for salt in salts)


def test_an_opened_record_never_shows_its_data_in_repr() -> None:
    entry = VaultEntry("rec-00000001", "pumch", "p-1", "Observation", "", "pending", 1, "ab", False)
    opened = OpenedRecord(entry=entry, data=b"SECRET-DIAGNOSIS", salt=b"\x01" * 32)
    assert "SECRET" not in repr(opened)
    assert repr(b"\x01" * 32) not in repr(opened)
