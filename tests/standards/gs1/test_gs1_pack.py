"""``PackId``: one key per pack whichever code was scanned, and keys read back."""

from __future__ import annotations

import pytest

from carechain.standards.gs1 import InvalidGs1, PackId, parse_pack_code


def test_sgtin_key_and_parts() -> None:
    pack = PackId.sgtin("9506000134352", "XYZ")  # a GTIN-13 is padded
    assert pack.key == "sgtin:09506000134352.XYZ"
    assert (pack.gtin, pack.serial, pack.product_code) == (
        "09506000134352",
        "XYZ",
        "09506000134352",
    )
    assert PackId.from_key(pack.key) == pack


def test_sgtin_key_with_dots_and_colons_in_the_serial() -> None:
    pack = PackId.sgtin("09506000134352", "A.B:C.")
    assert pack.key == "sgtin:09506000134352.A.B:C."
    assert PackId.from_key(pack.key).serial == "A.B:C."


def test_cn_trace_key_and_product_code() -> None:
    pack = PackId.cn_trace("81234567890123456789")
    assert pack.key == "cn-trace:81234567890123456789"
    assert pack.product_code == "8123456"  # the 7-digit 药品标识码
    assert pack.gtin is None and pack.serial is None
    assert PackId.from_key(pack.key) == pack


def test_keys_are_short_printable_ascii() -> None:
    longest = PackId.sgtin("09506000134352", "Z" * 20)
    assert len(longest.key) == 41
    assert longest.key.isascii() and longest.key.isprintable()


def test_serials_differing_in_case_are_different_packs() -> None:
    assert PackId.sgtin("09506000134352", "abc") != PackId.sgtin("09506000134352", "ABC")


def test_invalid_pack_id_cannot_be_built() -> None:
    with pytest.raises(InvalidGs1):
        PackId("sgtin", "09506000134352")
    with pytest.raises(InvalidGs1):
        PackId("cn-trace", "812345678901234567")


def test_bare_twenty_digits_are_a_traceability_code() -> None:
    """Documented ambiguity: unannounced, 01 + GTIN + 21 + 2 digits reads as a 药品追溯码."""
    assert parse_pack_code("01095060001343522112").form == "cn_trace"
    assert parse_pack_code("]d201095060001343522112").pack.key == "sgtin:09506000134352.12"
