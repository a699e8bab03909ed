"""Values and bytes outside the carechain profile are refused with a message naming the problem.

``canonical_bytes`` names the path of the offending value (``$`` for the
root, ``.key`` and ``[index]`` below it); ``parse_json`` names the reason.
Byte-level damage to canonical text is covered by
``testdata/parse_canonical_refusals.json``.
"""

from __future__ import annotations

import decimal
import fractions
import math
from typing import Any

import pytest

from carechain.crypto.canonical import (
    _MAX_DEPTH,
    MAX_SAFE_INTEGER,
    canonical_bytes,
    parse_canonical,
    parse_json,
)
from carechain.errors import InvalidInput, NonCanonical


def refusal(value: Any) -> str:
    with pytest.raises(NonCanonical) as caught:
        canonical_bytes(value)
    return caught.value.message


def nested_lists(depth: int) -> Any:
    """``[]`` inside ``depth - 1`` more lists: the innermost sits at depth ``depth - 1``."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_noncanonical_is_invalid_input() -> None:
    assert issubclass(NonCanonical, InvalidInput)
    error = NonCanonical("x")
    assert error.to_dict() == {"code": "non_canonical", "message": "x"}
    assert error.http_status == 400


# -- floats -------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", [1.0, 0.5, -0.0, 0.0, 1e300, 2.0**53, math.nan, math.inf, -math.inf]
)
def test_float_at_root_is_refused(number: float) -> None:
    message = refusal(number)
    assert message.startswith("$: floating-point numbers are not allowed")
    assert repr(number) in message


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"amount": 1.0}, ".amount"),
        ([1, 2, 3.5], "[2]"),
        ({"a": [1, {"b": 1.0}]}, ".a[1].b"),
        ({"claims": [{"lines": [{"price": 12.5}]}]}, ".claims[0].lines[0].price"),
    ],
)
def test_nested_float_is_refused_by_path(value: Any, path: str) -> None:
    assert refusal(value).startswith(f"{path}: floating-point numbers are not allowed")


@pytest.mark.parametrize("text", ["1.0", "0.5", "-0.0", "1e2", "1E-7", "[1, 2.50]", '{"a":1.5}'])
def test_parse_json_refuses_floats(text: str) -> None:
    with pytest.raises(NonCanonical, match=r"floating-point number .* is not allowed"):
        parse_json(text)


# -- integers -----------------------------------------------------------------


@pytest.mark.parametrize("number", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0, -1, 2**31])
def test_safe_integers_are_written_plainly(number: int) -> None:
    assert canonical_bytes(number) == str(number).encode()
    assert canonical_bytes({"n": [number]}) == b'{"n":[%d]}' % number


@pytest.mark.parametrize("number", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**64, -(10**30)])
def test_integer_outside_safe_range_is_refused(number: int) -> None:
    assert refusal(number) == f"$: integer {number} is outside the I-JSON safe range"
    assert refusal({"fee": {"minor": number}}).startswith(".fee.minor: integer")


def test_max_safe_integer_is_rfc7493_limit() -> None:
    assert MAX_SAFE_INTEGER == 9007199254740991


def test_bools_are_not_integers() -> None:
    assert canonical_bytes([True, False, None]) == b"[true,false,null]"


def test_integer_too_long_to_print_is_refused_with_noncanonical() -> None:
    # Regression: formatting an int of more than 4300 digits into the message raised
    # ValueError (Python's int_max_str_digits limit).
    assert refusal({"n": 10**5000}) == ".n: integer of 16610 bits is outside the I-JSON safe range"


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        (2**256 - 1, str(2**256 - 1)),
        (-(2**256 - 1), str(-(2**256 - 1))),
        (2**256, "of 257 bits"),
        (-(2**256), "of 257 bits"),
    ],
)
def test_integers_past_256_bits_are_named_by_size(number: int, shown: str) -> None:
    assert refusal(number) == f"$: integer {shown} is outside the I-JSON safe range"


def test_integer_literal_too_long_to_parse_is_refused_with_noncanonical() -> None:
    # Regression: json.loads raises ValueError for an integer literal past Python's
    # 4300-digit limit, and parse_json let it escape.
    with pytest.raises(NonCanonical, match="malformed JSON"):
        parse_json(b"[" + b"1" * 5000 + b"]")


def test_long_integer_literal_within_parser_limit_is_refused_by_parse_canonical() -> None:
    data = b"[" + b"9" * 4000 + b"]"
    assert parse_json(data) == [int("9" * 4000)]
    with pytest.raises(
        NonCanonical, match=r"^\[0\]: integer of 13288 bits is outside the I-JSON safe range$"
    ):
        parse_canonical(data)


# -- keys and types ---------------------------------------------------------


@pytest.mark.parametrize("key", [1, None, True, 1.5, (1, 2), b"k", frozenset()])
def test_non_string_key_is_refused(key: Any) -> None:
    assert refusal({key: 1}) == f"$: object key {key!r} is not a string"
    assert refusal({"outer": [{key: 1}]}) == f".outer[0]: object key {key!r} is not a string"


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ({1, 2}, "set"),
        (frozenset({1}), "frozenset"),
        (b"bytes", "bytes"),
        (bytearray(b"x"), "bytearray"),
        (object(), "object"),
        (decimal.Decimal("1"), "Decimal"),
        (fractions.Fraction(1, 3), "Fraction"),
        (1j, "complex"),
        (range(3), "range"),
    ],
)
def test_non_json_type_is_refused_with_its_path(value: Any, type_name: str) -> None:
    assert refusal(value) == f"$: {type_name} is not a JSON value"
    assert refusal({"a": [None, value]}) == f".a[1]: {type_name} is not a JSON value"


def test_tuples_are_written_as_arrays() -> None:
    # Pinned current behaviour: the encoder accepts a tuple as an array
    # (``_check`` tests ``list | tuple``). A tuple does not survive the round
    # trip -- it comes back as a list -- so this is a choice, not RFC 8785.
    assert canonical_bytes((1, "a", (None,))) == b'[1,"a",[null]]'
    assert parse_canonical(canonical_bytes({"t": (1, 2)})) == {"t": [1, 2]}


# -- lone surrogates --------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["\ud800", "a\udfffb", ["\udead"], {"k": "\ud83d"}, {"\udc00": 1}, {"a": {"\ud800": 1}}],
)
def test_lone_surrogate_is_refused(value: Any) -> None:
    assert "lone surrogate" in refusal(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\ud800": 2},
        {"\U0001f600": {"\udc00": 1}},
        [{"\uffff": 1}, {"\ud83d": 2}],
    ],
)
def test_lone_surrogate_key_beside_high_key_is_refused_with_noncanonical(value: Any) -> None:
    # Regression: with a key >= U+E000 present every object is sorted by its UTF-16
    # encoding, which raised UnicodeEncodeError for a lone-surrogate key.
    assert "lone surrogate" in refusal(value)


def test_parse_canonical_lone_surrogate_key_beside_high_key_raises_noncanonical() -> None:
    with pytest.raises(NonCanonical, match="lone surrogate"):
        parse_canonical(b'{"\\ud800":1,"\\ue000":2}')


# -- depth ------------------------------------------------------------------


def test_nesting_up_to_the_limit_is_accepted() -> None:
    deepest = nested_lists(_MAX_DEPTH + 1)
    assert canonical_bytes(deepest) == b"[" * (_MAX_DEPTH + 1) + b"]" * (_MAX_DEPTH + 1)


def test_nesting_past_the_limit_is_refused() -> None:
    message = refusal(nested_lists(_MAX_DEPTH + 2))
    assert message.endswith(f": nested deeper than {_MAX_DEPTH} levels")
    assert message.startswith("[0]" * (_MAX_DEPTH + 1))


def test_deep_objects_are_refused_by_path() -> None:
    value: Any = 1
    for _ in range(_MAX_DEPTH + 1):
        value = {"k": value}
    assert refusal(value) == ".k" * (_MAX_DEPTH + 1) + f": nested deeper than {_MAX_DEPTH} levels"


def test_parse_canonical_refuses_bytes_nested_past_the_limit() -> None:
    depth = _MAX_DEPTH + 2
    with pytest.raises(NonCanonical, match="nested deeper than"):
        parse_canonical(b"[" * depth + b"]" * depth)


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_parse_json_refuses_nesting_that_exhausts_the_stack(opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    data = opener * 200_000 + b"1" + closer * 200_000
    with pytest.raises(NonCanonical, match="JSON nested too deeply"):
        parse_json(data)


# -- parse_json -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NaN", "NaN is not a JSON value"),
        ("[Infinity]", "Infinity is not a JSON value"),
        ('{"a":-Infinity}', "-Infinity is not a JSON value"),
        ('{"a":1,"a":2}', "duplicate object key 'a'"),
        ('{"x":{"b":1,"c":2,"b":3}}', "duplicate object key 'b'"),
        ('[{"\\u0061":1,"a":2}]', "duplicate object key 'a'"),
        ('{"a":', "malformed JSON: Expecting value at line 1 column 6"),
        ('{"a" 1}', "malformed JSON: Expecting ':' delimiter"),
        ("[1,]", "malformed JSON"),
        ("{'a':1}", "malformed JSON"),
        ("tru", "malformed JSON"),
        ("[1] 2", "malformed JSON: Extra data at line 1 column 5"),
        ("// comment\n1", "malformed JSON"),
    ],
)
def test_parse_json_refusals_name_the_problem(text: str, message: str) -> None:
    for data in (text, text.encode("utf-8")):
        with pytest.raises(NonCanonical) as caught:
            parse_json(data)
        assert message in caught.value.message


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"\xff", 0),
        (b'"\xc3"', 1),
        (b'{"a":"\xed\xa0\x80"}', 6),
        (b'["ok","\xe2\x82"]', 7),
        (b"\xfe\xff\x00[\x00]", 0),
    ],
)
def test_parse_json_refuses_invalid_utf8_naming_the_byte(data: bytes, offset: int) -> None:
    with pytest.raises(NonCanonical) as caught:
        parse_json(data)
    assert caught.value.message == f"not UTF-8 at byte {offset}"
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)


def test_parse_json_chains_the_decoder_error() -> None:
    with pytest.raises(NonCanonical) as caught:
        parse_json(b"[1,")
    assert caught.value.__cause__ is not None


def test_parse_json_accepts_bytes_bytearray_and_str() -> None:
    # The annotation says bytes | str; the code also takes bytearray.
    for data in (b'{"a":[1]}', bytearray(b'{"a":[1]}'), '{"a":[1]}'):
        assert parse_json(data) == {"a": [1]}  # type: ignore[arg-type]


def test_parse_json_is_not_fussy_about_form() -> None:
    # parse_json accepts any valid JSON of the profile; only parse_canonical
    # insists on the canonical bytes.
    assert parse_json(b' { "b" : "\\u0041" , "a" : [ -0 ] } \n') == {"b": "A", "a": [0]}


# -- parse_canonical ----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1}',
        b'{"b":1,"a":2}',
        b'"\\u0041"',
        b'{"a":1}\n',
        b'{"a":1}garbage',
        b'{"a":1}{"a":1}',
        b'{"a":1,"a":1}',
        b"[1.0]",
    ],
)
def test_parse_canonical_refuses(data: bytes) -> None:
    with pytest.raises(NonCanonical):
        parse_canonical(data)


def test_parse_canonical_accepts_bytearray() -> None:
    data = bytearray(b'{"a":[1,"x"]}')
    assert parse_canonical(data) == {"a": [1, "x"]}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        "",
        [],
        {},
        {"patient": {"id": "p-1", "consents": [{"scope": "lab", "granted": True}]}},
        {"\U0001f600": "\ufb33", "\ufb33": ["\u20ac", "\r\n\t"], "": None},
        [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, '\x00\x1f\x7f"\\/'],
    ],
)
def test_round_trip(value: Any) -> None:
    assert parse_canonical(canonical_bytes(value)) == value
