"""Strict JSON in, exact JSON out, for FHIR resources.

FHIR's JSON format (https://hl7.org/fhir/R4/json.html) is RFC 8259 JSON with
decimals written as JSON numbers, so carechain's canonical parser (which
refuses floats) does not fit. Here the standard library parses, with three
refusals it does not make by itself:

* duplicate object keys (RFC 8259 section 4 leaves them undefined; a FHIR
  element appears once);
* ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON;
* lone surrogate escapes (``"\\ud800"``), which are not Unicode text.

``-0`` is read as a decimal, not an integer: FHIR's integer grammar has no
``-0``, its decimal grammar does.

``load_object(..., exact_decimals=True)`` reads numbers with a fraction or
exponent as ``DecimalLiteral`` (a ``decimal.Decimal`` that keeps its text) so
that ``dump_compact`` writes ``1.50`` back as ``1.50`` and ``1e5`` as ``1e5``:
FHIR decimals keep their precision
(https://hl7.org/fhir/R4/datatypes.html#decimal).
"""

from __future__ import annotations

import decimal
import json
from typing import Any

from carechain.errors import InvalidFhir


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidFhir("", f"duplicate key {key[:64]!r} in a JSON object")
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise InvalidFhir("", f"{name} is not a JSON number")


class DecimalLiteral(decimal.Decimal):
    """A JSON number with a fraction or exponent, remembering the exact text it was read from."""

    literal: str

    def __new__(cls, text: str) -> DecimalLiteral:
        self = super().__new__(cls, text)
        self.literal = text
        return self


def _exact_int(text: str) -> int | DecimalLiteral:
    # FHIR's integer grammar has no "-0" (https://hl7.org/fhir/R4/datatypes.html#integer);
    # its decimal grammar does, so "-0" is read as a decimal and keeps its sign.
    return DecimalLiteral(text) if text == "-0" else int(text)


def _float_int(text: str) -> int | float:
    return -0.0 if text == "-0" else int(text)


def _check_unicode(value: Any) -> None:
    """Refuse strings holding lone surrogates (only reachable through ``\\u`` escapes)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidFhir("", "a JSON string holds a lone surrogate escape") from exc
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def load_object(
    data: bytes | str, *, max_bytes: int | None, exact_decimals: bool = False
) -> tuple[bytes, dict[str, Any]]:
    """Parse one JSON object; return its UTF-8 bytes (as given) and the object.

    Raises ``InvalidFhir`` with an empty path for anything that is not a single
    well-formed JSON object in UTF-8 of at most ``max_bytes`` bytes.
    """
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidFhir(
                "", "text holds a lone surrogate, which is not valid Unicode"
            ) from exc
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise InvalidFhir("", f"expected JSON bytes or text, not {type(data).__name__}")
    if max_bytes is not None and len(raw) > max_bytes:
        raise InvalidFhir("", f"resource is {len(raw):,} bytes; the limit is {max_bytes:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidFhir(
            "", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from exc
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=DecimalLiteral if exact_decimals else float,
            parse_int=_exact_int if exact_decimals else _float_int,
        )
    except json.JSONDecodeError as exc:
        raise InvalidFhir(
            "", f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise InvalidFhir("", "malformed JSON: nested too deeply") from exc
    if not isinstance(value, dict):
        raise InvalidFhir("", f"a FHIR resource is a JSON object, not {_json_kind(value)}")
    if "\\u" in text or "\\U" in text:
        _check_unicode(value)
    return raw, value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(_string(key))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, DecimalLiteral):
        out.append(value.literal)
    elif isinstance(value, decimal.Decimal):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(float.__repr__(value))
    else:
        raise TypeError(f"{type(value).__name__} is not JSON")


_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes


def dump_compact(value: Any) -> bytes:
    """Compact UTF-8 JSON, as ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``.

    A number read as ``DecimalLiteral`` is written with exactly the text it was read from.
    """
    out: list[str] = []
    _write(value, out)
    return "".join(out).encode("utf-8")
