"""Round trips (generate -> parse) over generated data, checked against slow references."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from carechain.standards.gs1 import (
    GS,
    Gs1Data,
    Gs1Date,
    InvalidGs1,
    PackId,
    check_digit,
    digital_link,
    element_string,
    hri,
    normalise_gtin,
    parse_digital_link,
    parse_element_string,
    parse_pack_code,
)
from carechain.standards.gs1.keys import CSET82

EXAMPLES = settings(max_examples=150, deadline=None)

digits = st.text(alphabet="0123456789", min_size=1, max_size=17)
cset82_text = st.text(alphabet=sorted(CSET82), min_size=1, max_size=20)
# Values that HRI can carry unambiguously (no "(NN)" inside): see element_string.
hri_text = cset82_text.filter(lambda value: "(" not in value)


def reference_check_digit(body: str) -> str:
    """GS1 mod-10 written out as the General Specifications tabulate it, from the left."""
    weights = [3 if (len(body) - index) % 2 == 1 else 1 for index in range(len(body))]
    total = sum(int(digit) * weight for digit, weight in zip(body, weights, strict=True))
    return str(-total % 10)


@EXAMPLES
@given(digits)
def test_check_digit_matches_reference(body: str) -> None:
    assert check_digit(body) == reference_check_digit(body)


@st.composite
def gtins(draw: st.DrawFn) -> str:
    length = draw(st.sampled_from((8, 12, 13, 14)))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    return body + check_digit(body)


@EXAMPLES
@given(gtins())
def test_gtin_padding_keeps_the_check_digit(gtin: str) -> None:
    assert normalise_gtin(gtin) == gtin.rjust(14, "0")


@EXAMPLES
@given(gtins(), st.integers(0, 13), st.integers(1, 9))
def test_any_single_digit_change_is_caught(gtin: str, index: int, delta: int) -> None:
    index %= len(gtin)
    damaged = gtin[:index] + str((int(gtin[index]) + delta) % 10) + gtin[index + 1 :]
    try:
        normalise_gtin(damaged)
    except InvalidGs1 as error:
        assert error.part == "gtin"
    else:
        raise AssertionError(f"{damaged} accepted")


dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)).map(Gs1Date.from_date)


@st.composite
def gs1_data(draw: st.DrawFn, text: st.SearchStrategy[str] = cset82_text) -> Gs1Data:
    return Gs1Data(
        gtin=draw(gtins()),
        production_date=draw(st.none() | dates),
        expiry=draw(st.none() | dates | st.just(Gs1Date("251200"))),
        lot=draw(st.none() | text),
        serial=draw(st.none() | text),
        nhrn=tuple(
            draw(st.dictionaries(st.sampled_from(("710", "712", "715")), text, max_size=2)).items()
        ),
    )


@EXAMPLES
@given(gs1_data())
def test_element_string_round_trip(data: Gs1Data) -> None:
    carrier = element_string(data)
    assert parse_element_string(carrier) == data
    assert parse_element_string("]d2" + carrier + "\r\n") == data
    assert not carrier.endswith(GS)


@EXAMPLES
@given(gs1_data(hri_text))
def test_hri_round_trip(data: Gs1Data) -> None:
    assert parse_element_string(hri(data)) == data


@EXAMPLES
@given(
    gs1_data(), st.sampled_from(("https://id.gs1.org", "http://example.com/a/b", "HTTPS://X:8443"))
)
def test_digital_link_round_trip(data: Gs1Data, resolver: str) -> None:
    link = parse_digital_link(digital_link(data, resolver))
    assert link.data == data
    assert link.resolver == resolver


@EXAMPLES
@given(gtins(), cset82_text, st.none() | cset82_text)
def test_one_key_whichever_form(gtin: str, serial: str, lot: str | None) -> None:
    data = Gs1Data(gtin=gtin, serial=serial, lot=lot)
    expected = PackId.sgtin(gtin, serial)
    for scan in (digital_link(data), "]d2" + element_string(data), "]Q3" + element_string(data)):
        scanned = parse_pack_code(scan)
        assert scanned.pack == expected
        assert scanned.lot == lot
        assert PackId.from_key(scanned.pack.key) == expected


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60) | st.text(alphabet="0123456789()]d2Q3C1\x1d%/:?&=htps.", max_size=60))
def test_any_text_is_read_or_refused_with_invalid_gs1(text: str) -> None:
    for parse in (parse_pack_code, parse_element_string, parse_digital_link):
        try:
            parse(text)
        except InvalidGs1 as error:
            assert error.message and "\n" not in error.message


@EXAMPLES
@given(st.text(alphabet="0123456789", min_size=20, max_size=20))
def test_any_twenty_digits_are_a_traceability_code(code: str) -> None:
    scanned = parse_pack_code(f" {code}\r\n")
    assert scanned.pack.key == f"cn-trace:{code}"
    assert scanned.pack.product_code == code[:7]
