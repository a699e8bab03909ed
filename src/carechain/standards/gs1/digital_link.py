"""GS1 Digital Link URIs (uncompressed), both ways.

Follows the GS1 Digital Link Standard: URI Syntax (release 1.2 and later) as
implemented by GS1's reference parser (``dl.c`` of the GS1 syntax engine),
whose rules are mirrored here:

* ``http://`` or ``https://`` (all lower or all upper case), a domain, an
  optional path "stem" of the resolver's own, then the GS1 path: a primary
  key and its key qualifiers as ``/AI/value`` pairs, then an optional query
  string of data attributes ``AI=value`` joined by ``&``; a ``#fragment`` is
  ignored.
* Primary keys read here: ``/01/<GTIN>`` with the qualifiers ``/10/<lot>``
  and ``/21/<serial>`` in that order (the Syntax Dictionary's
  ``dlpkey=22,10,21``; AI 22 is not read here), and ``/00/<SSCC>`` without
  qualifiers. The key is found by walking the path backwards in pairs, so a
  stem may contain anything.
* A key qualifier in the query (``/01/<gtin>/21/<serial>?10=<lot>``) is
  refused: the lot belongs in the path, ``/01/<gtin>/10/<lot>/21/<serial>``
  (reference parser error "AI should be in path info").
* Data attributes read from the query: AI 11, 17 and 710-715. Parameters
  whose name is not all digits (``linkType=...``) and parameters without
  ``=`` are skipped; an all-digit name that is not a known AI is refused.
* Values are percent-decoded (``%2F`` -> ``/``; ``+`` is a space only in the
  query); ``%`` must start a two-hex-digit escape and ``%00`` is refused.
  Generated URIs percent-encode every character outside RFC 3986
  "unreserved" (``A-Z a-z 0-9 - . _ ~``) with upper-case hex, as the
  reference encoder does, so ``ABC/1+2`` becomes ``ABC%2F1%2B2``.
* The path GTIN is 14 digits in the standard; a GTIN-8, -12 or -13 is
  accepted and padded (the reference parser's "zero-suppressed GTIN" option,
  used by examples of the standard). Generated URIs always carry 14 digits.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from carechain.standards.gs1.ai import AIS, NHRN_AIS, Gs1Data, unknown_ai
from carechain.standards.gs1.element_string import MAX_SCAN_LENGTH, trim_scan
from carechain.standards.gs1.errors import InvalidGs1, shown
from carechain.standards.gs1.keys import normalise_gtin

DEFAULT_RESOLVER = "https://id.gs1.org"
"""GS1's global resolver, the canonical stem of a GS1 Digital Link URI."""

QUALIFIERS: dict[str, tuple[str, ...]] = {"01": ("10", "21"), "00": ()}
"""Primary key AI -> its key qualifier AIs, in the order the path must give them."""

DATA_ATTRIBUTES = ("11", "17", *NHRN_AIS)
"""AIs read from (and written to) the query string."""

_URI_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")
_BAD_DOMAIN_CHARACTERS = frozenset("_~?#@!$&'()*+,;=%")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_SCHEMES = ("https://", "http://", "HTTPS://", "HTTP://")


@dataclass(frozen=True)
class DigitalLink:
    """A parsed GS1 Digital Link: its resolver (scheme, domain, stem) and its GS1 data."""

    resolver: str
    data: Gs1Data


def _fail(message: str) -> InvalidGs1:
    return InvalidGs1("digital_link", message)


def _split_resolver(uri: str, what: str) -> tuple[str, str]:
    """``(scheme://domain, rest)`` after checking the scheme and the domain."""
    scheme = next((s for s in _SCHEMES if uri.startswith(s)), None)
    if scheme is None:
        raise _fail(f"{what} {shown(uri)}: must start with https:// or http://")
    after = uri[len(scheme) :]
    slash = after.find("/")
    domain = after if slash < 0 else after[:slash]
    if not domain:
        raise _fail(f"{what} {shown(uri)}: no domain after {scheme}")
    for char in domain:
        if char in _BAD_DOMAIN_CHARACTERS:
            raise _fail(f"{what} {shown(uri)}: {char!r} is not allowed in the domain")
    return scheme + domain, "" if slash < 0 else after[slash:]


def _decode(raw: str, label: str, where: str) -> str:
    """Percent-decode one path or query value; ``+`` means a space in the query."""
    out: list[str] = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "%":
            pair = raw[index + 1 : index + 3]
            if len(pair) != 2 or not all(h in string.hexdigits for h in pair):
                raise _fail(
                    f"{label} in the URI {where}: malformed percent-encoding "
                    f"{shown(raw[index : index + 3])}"
                )
            if pair == "00":
                raise _fail(f"{label} in the URI {where}: %00 encodes a NUL character")
            out.append(chr(int(pair, 16)))
            index += 3
            continue
        out.append(" " if char == "+" and where == "query" else char)
        index += 1
    return "".join(out)


def _find_key(segments: list[str]) -> int:
    """Index in ``segments`` of the primary key AI, walking ``/AI/value`` pairs from the end."""
    index = len(segments) - 2
    while index >= 0:
        ai = segments[index]
        if ai in QUALIFIERS:
            return index
        if ai not in AIS:
            if ai.isdigit() and 2 <= len(ai) <= 4 and ai.isascii():
                raise unknown_ai(ai, " in the URI path")
            break
        index -= 2
    raise _fail("no GS1 key in the URI path: expected /01/<GTIN> or /00/<SSCC>")


def _refuse_missing_last_value(segments: list[str]) -> None:
    """Name the cause when a path like ``/01/<gtin>/21`` lost its last value."""
    last = segments[-1]
    try:
        _find_key(segments[:-1])
    except InvalidGs1:
        if last not in QUALIFIERS:
            return
    if last in AIS:
        raise _fail(f"the URI path ends with /{last} and no value: {AIS[last].label} is missing")
    raise _fail(f"the URI path ends with /{shown(last)}, which is not an /AI/value pair")


def _path_pairs(segments: list[str], key_index: int) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    key = segments[key_index]
    allowed = QUALIFIERS[key]
    after = 0  # qualifiers before this position in ``allowed`` may no longer come
    for index in range(key_index, len(segments), 2):
        ai, raw = segments[index], segments[index + 1]
        label = AIS[ai].label
        if not raw:
            raise _fail(f"{label} is empty in the URI path")
        if index > key_index:
            if ai not in allowed:
                if not allowed:
                    raise _fail(f"/{key}/ takes no qualifiers; /{ai}/ cannot follow it")
                raise _fail(
                    f"{label} cannot be in the URI path after /{key}/; "
                    f"only /{'/, /'.join(allowed)}/ can (data attributes go in the query)"
                )
            position = allowed.index(ai)
            if position < after:
                order = "/".join((key, *allowed))
                raise _fail(
                    f"{label} is out of order in the URI path: the order is {order} "
                    f"(/10/ lot before /21/ serial)"
                )
            after = position + 1
        value = _decode(raw, label, "path")
        if ai == "01":
            value = normalise_gtin(value)
        pairs.append((ai, value))
    return pairs


def _query_pairs(query: str, key: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for parameter in query.split("&"):
        if "=" not in parameter:
            continue  # empty, or a singleton without a value: not AI data
        name, raw = parameter.split("=", 1)
        if not (name.isdigit() and name.isascii()):
            continue  # a non-AI parameter such as linkType
        if name not in AIS:
            raise unknown_ai(name, " in the URI query")
        label = AIS[name].label
        if name in QUALIFIERS:
            raise _fail(f"{label} is a primary key: it belongs in the URI path, not the query")
        if name in QUALIFIERS[key]:
            raise _fail(
                f"{label} belongs in the URI path, not the query: "
                f"/01/<GTIN>/10/<lot>/21/<serial> (GS1 Digital Link key qualifiers)"
            )
        if not raw:
            raise _fail(f"{label} is empty in the URI query")
        pairs.append((name, _decode(raw, label, "query")))
    return pairs


def parse_digital_link(uri: str) -> DigitalLink:
    """Read a GS1 Digital Link URI; see the module docstring for what is accepted.

    Raises ``InvalidGs1``: part ``digital_link`` for the URI's structure
    (scheme, domain, characters, path order, query), ``ai`` for unknown or
    repeated AIs, or the part of a value that is wrong.
    """
    # 1. Bound, trim scanner noise, check the URI character set.
    if len(uri) > MAX_SCAN_LENGTH:
        raise _fail(f"{len(uri)} characters; a scan is at most {MAX_SCAN_LENGTH}")
    text = trim_scan(uri)
    for position, char in enumerate(text, start=1):
        if char not in _URI_CHARACTERS:
            raise _fail(f"character {position} {char!r} is not allowed in a URI")
    # 2. Scheme and domain; drop the fragment; split path and query.
    origin, rest = _split_resolver(text, "URI")
    rest = rest.split("#", 1)[0]
    path, _, query = rest.partition("?")
    if not path or path == "/":
        raise _fail("no path after the domain: expected /01/<GTIN> or /00/<SSCC>")
    if path.endswith("/"):
        raise _fail("the URI path ends with '/': a value is missing")
    # 3. The GS1 path: primary key, then key qualifiers in order.
    segments = path[1:].split("/")
    try:
        key_index = _find_key(segments)
    except InvalidGs1:
        _refuse_missing_last_value(segments)
        raise
    pairs = _path_pairs(segments, key_index)
    # 4. The query: data attributes.
    pairs += _query_pairs(query, segments[key_index])
    stem = "/".join(segments[:key_index])
    resolver = origin + ("/" + stem if stem else "")
    return DigitalLink(resolver=resolver, data=Gs1Data.from_elements(pairs))


def _encode(value: str) -> str:
    return "".join(c if c in _UNRESERVED else f"%{ord(c):02X}" for c in value)


def digital_link(data: Gs1Data, resolver: str = DEFAULT_RESOLVER) -> str:
    """The GS1 Digital Link URI of ``data`` under ``resolver`` (scheme, domain, optional stem).

    Path: ``/01/<GTIN-14>[/10/<lot>][/21/<serial>]`` or ``/00/<SSCC>``; query:
    AI 11, 17, 710-715 in that order. Raises ``InvalidGs1(part="digital_link")``
    for a bad resolver or for data holding both an SSCC and a GTIN (a URI has
    one primary key).
    """
    for char in resolver:
        if char not in _URI_CHARACTERS or char in "?#%":
            raise _fail(f"resolver {shown(resolver)}: {char!r} is not allowed in a resolver")
    origin, stem = _split_resolver(resolver, "resolver")
    stem = stem.removesuffix("/")
    if data.sscc is not None and data.gtin is not None:
        raise _fail("a Digital Link has one primary key; this data has both an SSCC and a GTIN")
    values = dict(data.elements())
    key = "01" if data.gtin is not None else "00"
    path = "".join(f"/{ai}/{_encode(values[ai])}" for ai in (key, *QUALIFIERS[key]) if ai in values)
    query = "&".join(f"{ai}={_encode(values[ai])}" for ai in DATA_ATTRIBUTES if ai in values)
    return origin + stem + path + ("?" + query if query else "")
