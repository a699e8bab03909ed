"""EPC URIs to GS1 keys (EPC Tag Data Standard 1.13, section 7.1 SGTIN, 7.2 SSCC), and back.

Known answers: the Tag Data Standard's example ``urn:epc:id:sgtin:0614141.712345.32a%2Fb``
is ``(01) 70614141123451 (21) 32a/b``, and the GTIN of GS1's EPCIS Digital Link
examples is that same 70614141123451. ``urn:epc:id:sscc:0614141.1234567890``
(GS1 EPCIS example 9.6.3) is SSCC ``106141412345678908``. Every company prefix
length 6 to 12 is checked against a slow reference that follows the standard's
numbered steps.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carechain.standards.epcis import (
    InvalidEpcis,
    code_of_epc,
    epc_of,
    sgtin_from_urn,
    sscc_from_urn,
)
from carechain.standards.gs1 import PackId, check_digit

GTIN = "09506000134352"
SSCC = "106141412345678908"
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
UNESCAPED = set(string.ascii_letters + string.digits + "-_.:;=!'()*+,")


def urn_of_sgtin(gtin: str, serial: str, prefix_length: int) -> str:
    """Slow reference, TDS 1.13 section 7.1 read backwards: d2..d(L+1) . d1 d(L+2)..d13 . s."""
    escaped = "".join(c if c in UNESCAPED else f"%{ord(c):02X}" for c in serial)
    company, item = gtin[1 : 1 + prefix_length], gtin[0] + gtin[1 + prefix_length : 13]
    return f"urn:epc:id:sgtin:{company}.{item}.{escaped}"


def test_tag_data_standard_example() -> None:
    pack = sgtin_from_urn("urn:epc:id:sgtin:0614141.712345.32a%2Fb")
    assert pack == PackId.sgtin("70614141123451", "32a/b")
    assert code_of_epc("https://id.gs1.org/01/70614141123451/21/32a%2Fb", "x") == pack.key


def test_gs1_epcis_example_sscc() -> None:
    assert sscc_from_urn("urn:epc:id:sscc:0614141.1234567890") == SSCC
    assert code_of_epc(f"https://id.gs1.org/00/{SSCC}", "x") == SSCC


@pytest.mark.parametrize("length", range(6, 13))
def test_every_company_prefix_length(length: int) -> None:
    urn = urn_of_sgtin(GTIN, "S/1", length)
    assert len(urn.split(":")[4].split(".")[0]) == length
    assert code_of_epc(urn, "x") == PackId.sgtin(GTIN, "S/1").key
    sscc_urn = f"urn:epc:id:sscc:{SSCC[1 : 1 + length]}.{SSCC[0]}{SSCC[1 + length : 17]}"
    assert sscc_from_urn(sscc_urn) == SSCC


@given(
    body=st.text("0123456789", min_size=13, max_size=13),
    serial=st.text(CSET82, min_size=1, max_size=20),
    length=st.integers(6, 12),
)
def test_urn_and_digital_link_name_the_same_pack(body: str, serial: str, length: int) -> None:
    gtin = body + check_digit(body)
    key = PackId.sgtin(gtin, serial).key
    assert code_of_epc(urn_of_sgtin(gtin, serial, length), "x") == key
    assert code_of_epc(epc_of(key), "x") == key


def test_carechain_identifiers_both_ways() -> None:
    cn = PackId.cn_trace("81234567890123456789").key
    assert epc_of(cn) == "urn:carechain:cn-trace:81234567890123456789"
    assert code_of_epc(epc_of(cn), "x") == cn
    assert epc_of(SSCC) == f"https://id.gs1.org/00/{SSCC}"
    assert epc_of(PackId.sgtin(GTIN, "A/B").key) == f"https://id.gs1.org/01/{GTIN}/21/A%2FB"


@pytest.mark.parametrize(
    ("urn", "problem"),
    [
        ("urn:epc:id:sscc:0614141.123456789", "expected 17"),
        ("urn:epc:id:sscc:06141.412345678901", "6 to 12 digits, not 5"),
        ("urn:epc:id:sscc:0614141234567.1234", "6 to 12 digits, not 13"),
        ("urn:epc:id:sgtin:0614141.712345.%00", "character 1"),
        ("urn:epc:id:sgtin:0614141.712345." + "X" * 21, "21 characters, at most 20"),
    ],
)
def test_damaged_urns_are_refused(urn: str, problem: str) -> None:
    with pytest.raises(InvalidEpcis) as caught:
        code_of_epc(urn, "epcList[0]")
    assert caught.value.path == "epcList[0]"
    assert problem in caught.value.problem
