"""Canonical JSON bytes: RFC 8785 (JSON Canonicalization Scheme), carechain profile.

Every structure carechain signs or hashes is turned into bytes here, so that
two parties holding the same value produce the same bytes.

The profile is RFC 8785 restricted to the values the ledger uses:

* objects with string keys, arrays, strings, ``true``, ``false``, ``null``;
* integers in the I-JSON safe range ``-(2**53 - 1) .. 2**53 - 1`` (RFC 7493
  section 2.2), which RFC 8785 section 3.2.2.3 serialises as plain integers;
* no floating-point numbers: amounts are integers in minor units, and a
  float's canonical form (ECMAScript's Number.prototype.toString) is a
  needless source of disagreement between implementations.

Keys are sorted by their UTF-16 code units (RFC 8785 section 3.2.3); strings
are escaped as in section 3.2.2.2 (only ``"``, ``\\`` and control characters
below U+0020, the latter as ``\\b \\t \\n \\f \\r`` or lower-case ``\\u00xx``),
and the output is UTF-8 (section 3.2.4).

``canonical_bytes`` is fast: it validates the value in one walk and lets the
standard library write it, which matches RFC 8785 byte for byte whenever no key
holds a character at or above U+E000 (where code-point order and UTF-16 order
can differ); otherwise it sorts those objects by UTF-16 itself. A hypothesis
test checks it against the ``rfc8785`` reference implementation.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from carechain.errors import NonCanonical

MAX_SAFE_INTEGER = 2**53 - 1
"""RFC 7493 section 2.2: integers beyond this lose precision in other parsers."""

_MAX_DEPTH = 64

JSONValue = Any
"""A value made only of dict (str keys), list, str, int, bool and None."""


def _utf16_key(key: str) -> bytes:
    try:
        return key.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise NonCanonical("object key holds a lone surrogate, which is not valid Unicode") from exc


_HIGH = re.compile("[\ue000-\U0010ffff]")


def _needs_utf16_sort(key: str) -> bool:
    return not key.isascii() and _HIGH.search(key) is not None


class _Slow(Exception):
    """The fast walk met something it does not decide; the careful walk will."""


def _fast_check(value: JSONValue, depth: int) -> bool:
    """``_check`` for exact built-in types only, without building paths (the hot path)."""
    kind = type(value)
    if depth > _MAX_DEPTH or (
        depth == _MAX_DEPTH and (kind is dict or kind is list or kind is tuple) and value
    ):
        raise _Slow  # the careful walk names the path (children sit one level deeper)
    if kind is dict:
        special = False
        for key, item in value.items():
            if type(key) is not str:
                raise _Slow
            if not key.isascii() and _HIGH.search(key) is not None:
                special = True
            item_kind = type(item)
            if item_kind is str or item_kind is bool or item is None:
                continue
            if item_kind is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            if _fast_check(item, depth + 1):
                special = True
        return special
    if kind is list or kind is tuple:
        special = False
        for item in value:
            item_kind = type(item)
            if item_kind is str or item_kind is bool or item is None:
                continue
            if item_kind is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            if _fast_check(item, depth + 1):
                special = True
        return special
    if kind is str or kind is bool or value is None:
        return False
    if kind is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return False
    raise _Slow


def _check(value: JSONValue, depth: int, path: str) -> bool:
    """Validate ``value``; return True if some object needs UTF-16 key order."""
    if depth > _MAX_DEPTH:
        raise NonCanonical(f"{path or '$'}: nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, str):
        return False
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return False
        shown = str(value) if value.bit_length() <= 256 else f"of {value.bit_length()} bits"
        raise NonCanonical(f"{path or '$'}: integer {shown} is outside the I-JSON safe range")
    if isinstance(value, dict):
        special = False
        for key, item in value.items():
            if not isinstance(key, str):
                raise NonCanonical(f"{path or '$'}: object key {key!r} is not a string")
            if _needs_utf16_sort(key):
                special = True
            if _check(item, depth + 1, f"{path}.{key}"):
                special = True
        return special
    if isinstance(value, list | tuple):
        special = False
        for index, item in enumerate(value):
            if _check(item, depth + 1, f"{path}[{index}]"):
                special = True
        return special
    if isinstance(value, float):
        raise NonCanonical(f"{path or '$'}: floating-point numbers are not allowed ({value!r})")
    raise NonCanonical(f"{path or '$'}: {type(value).__name__} is not a JSON value")


def _utf16_sorted(value: JSONValue) -> JSONValue:
    """Rebuild dicts in UTF-16 key order (insertion order is kept by ``json``)."""
    if isinstance(value, dict):
        return {key: _utf16_sorted(value[key]) for key in sorted(value, key=_utf16_key)}
    if isinstance(value, list | tuple):
        return [_utf16_sorted(item) for item in value]
    return value


def canonical_bytes(value: JSONValue) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``value``.

    Raises ``NonCanonical`` naming the offending path if ``value`` holds
    something outside the profile (a float, a non-string key, a huge integer,
    a lone surrogate).
    """
    try:
        special = _fast_check(value, 0)
    except _Slow:
        special = _check(value, 0, "")
    else:
        if not special:
            # Exact built-in types, integers in range, no key at or above U+E000:
            # orjson's output (keys sorted by code point, RFC 8259 escapes) is the
            # RFC 8785 form byte for byte; hypothesis checks this against rfc8785.
            try:
                return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
            except orjson.JSONEncodeError as exc:
                raise NonCanonical(
                    "string holds a lone surrogate, which is not valid Unicode"
                ) from exc
    if special:
        text = json.dumps(
            _utf16_sorted(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    else:
        text = json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NonCanonical("string holds a lone surrogate, which is not valid Unicode") from exc


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise NonCanonical(f"duplicate object key {key!r}")
            seen.add(key)
    return result


def _reject_float(text: str) -> Any:
    raise NonCanonical(f"floating-point number {text} is not allowed")


def _reject_constant(text: str) -> Any:
    raise NonCanonical(f"{text} is not a JSON value")


def parse_json(data: bytes | str) -> JSONValue:
    """Parse JSON strictly: no duplicate keys, no floats, no NaN or Infinity.

    Raises ``NonCanonical`` (a kind of ``InvalidInput``) with the reason.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
        )
    except NonCanonical:
        raise
    except UnicodeDecodeError as exc:
        raise NonCanonical(f"not UTF-8 at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise NonCanonical(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise NonCanonical("JSON nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer literal longer than Python will convert
        raise NonCanonical(f"malformed JSON: {exc}") from exc


def parse_canonical(data: bytes) -> JSONValue:
    """Parse ``data`` and insist that it is already in canonical form."""
    value = parse_json(data)
    if canonical_bytes(value) != bytes(data):
        raise NonCanonical("bytes are valid JSON but not in RFC 8785 canonical form")
    return value
