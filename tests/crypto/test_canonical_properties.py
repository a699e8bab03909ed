"""``canonical_bytes`` checked against the slow, obviously correct ``rfc8785`` reference.

The values are the carechain profile: objects with string keys, arrays,
strings of any Unicode scalar values (non-BMP included, and keys at or above
U+E000, where UTF-16 order and code-point order part), integers within
+-(2**53 - 1), booleans and null. Lone surrogates are not Unicode scalar
values; they are kept out of the reference comparison and checked apart.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from carechain.crypto.canonical import (
    MAX_SAFE_INTEGER,
    canonical_bytes,
    parse_canonical,
    parse_json,
)
from carechain.errors import NonCanonical

EXAMPLES = settings(max_examples=200, deadline=None)
REFERENCE = settings(max_examples=300, deadline=None)
LIGHT = settings(max_examples=100, deadline=None)

# Characters where implementations tend to differ: controls and the escaped
# pair, DEL, the first non-ASCII code points, the line separators, both sides
# of the surrogate block, the private-use area (U+E000 sorts after every
# surrogate pair in UTF-16 but before it in code points), U+FB33 from RFC 8785
# section 3.2.3, the last BMP character and non-BMP ones.
TRICKY = [
    "a",
    "b",
    "A",
    "1",
    "\x00",
    "\x08",
    "\n",
    "\x1f",
    '"',
    "\\",
    "/",
    "\x7f",
    "\x80",
    "\u00f6",
    "\u20ac",
    "\u2028",
    "\ud7ff",
    "\ue000",
    "\ufb33",
    "\uffff",
    "\U00010000",
    "\U0001f600",
    "\U0010ffff",
]

scalar_chars = st.characters(exclude_categories=["Cs"])
text = st.text(scalar_chars, max_size=12) | st.text(st.sampled_from(TRICKY), max_size=6)
high_keys = st.text(st.characters(min_codepoint=0xE000, exclude_categories=["Cs"]), max_size=4)
keys = text | high_keys
integers = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | st.sampled_from(
    [0, 1, -1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 2**31, -(2**31), 2**32]
)
scalars = st.none() | st.booleans() | integers | text


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=6)


json_values = st.recursive(scalars, containers, max_leaves=20)


def reversed_insertion(value: Any) -> Any:
    """The same value with every object's members inserted in the opposite order."""
    if isinstance(value, dict):
        return {key: reversed_insertion(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_insertion(item) for item in value]
    return value


@REFERENCE
@given(json_values)
def test_matches_rfc8785_reference(value: Any) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


@EXAMPLES
@given(st.dictionaries(keys, scalars, min_size=2, max_size=12))
def test_flat_objects_with_many_keys_match_reference(value: dict[str, Any]) -> None:
    # Many keys in one object exercise the sort more than deep nesting does.
    assert canonical_bytes(value) == rfc8785.dumps(value)


@EXAMPLES
@given(json_values)
def test_round_trips_through_parse_canonical(value: Any) -> None:
    data = canonical_bytes(value)
    assert parse_canonical(data) == value
    assert canonical_bytes(parse_json(data)) == data


@EXAMPLES
@given(json_values)
def test_insertion_order_does_not_matter(value: Any) -> None:
    assert canonical_bytes(reversed_insertion(value)) == canonical_bytes(value)


@EXAMPLES
@given(json_values, st.booleans(), st.sampled_from([None, 0, 2]))
def test_any_rendering_canonicalises_to_the_same_bytes(
    value: Any, ensure_ascii: bool, indent: int | None
) -> None:
    # Escaped non-ASCII (surrogate-pair escapes included), whitespace and
    # insertion order are all undone by parse_json + canonical_bytes...
    text = json.dumps(reversed_insertion(value), ensure_ascii=ensure_ascii, indent=indent)
    data = text.encode("utf-8")
    canonical = canonical_bytes(value)
    assert canonical_bytes(parse_json(data)) == canonical
    # ...and parse_canonical accepts the rendering only if it is the canonical one.
    if data == canonical:
        assert parse_canonical(data) == value
    else:
        try:
            parse_canonical(data)
        except NonCanonical as exc:
            assert "canonical form" in exc.message
        else:
            raise AssertionError(f"parse_canonical accepted non-canonical {data!r}")


lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@st.composite
def text_with_lone_surrogate(draw: st.DrawFn, around: st.SearchStrategy[str]) -> str:
    return draw(around) + draw(lone_surrogates) + draw(around)


@LIGHT
@given(json_values, text_with_lone_surrogate(text), st.sampled_from(["value", "item", "root"]))
def test_lone_surrogate_in_a_string_is_refused(value: Any, bad: str, where: str) -> None:
    if where == "value":
        doc: Any = {"ok": value, "bad": bad}
    elif where == "item":
        doc = [value, [bad]]
    else:
        doc = bad
    try:
        canonical_bytes(doc)
    except NonCanonical as exc:
        assert "lone surrogate" in exc.message
    else:
        raise AssertionError("a lone surrogate was accepted")


@LIGHT
@given(st.dictionaries(keys, scalars, max_size=4), text_with_lone_surrogate(keys))
def test_lone_surrogate_in_a_key_is_refused(value: dict[str, Any], bad_key: str) -> None:
    # Both paths: with and without a key at or above U+E000 (UTF-16 sort) beside it.
    doc = {"outer": {**value, bad_key: 1}}
    try:
        canonical_bytes(doc)
    except NonCanonical as exc:
        assert "lone surrogate" in exc.message
    else:
        raise AssertionError("a lone surrogate key was accepted")
