"""GS1 element strings: the AI data in a GS1 DataMatrix (or GS1 QR, GS1-128), both ways.

Two written forms:

* **Carrier data** (what a scanner transmits): AI and value concatenated,
  ``01095060001343521720122510ABC123`` GS ``21XYZ``. An FNC1 separator, sent as
  ASCII 29 (GS), ends every variable-length value that is not last; values of
  AIs with a predefined length need none (General Specifications,
  concatenation, 7.8.5 in recent editions). Scanners usually prefix a symbology identifier (ISO/IEC
  15424): ``]d2`` GS1 DataMatrix, ``]Q3`` GS1 QR Code, ``]C1`` GS1-128,
  ``]e0`` GS1 DataBar and composites (the list of GS1's syntax engine,
  ``scandata.c``). ``]d1``/``]Q1``/``]C0`` mark data that is *not* GS1 AI data.
* **Human readable interpretation (HRI)**: each AI in parentheses before its
  value, ``(01)09506000134352(17)201225(10)ABC123(21)XYZ``; spaces between
  elements are accepted.

Parsing trims whitespace and control characters at both ends (scanner
suffixes such as CR/LF, a leading FNC1), accepts one GS after a
predefined-length value (some printers add one), and refuses anything else:
unknown AIs, truncated data, values too long (often a missing GS), repeated
AIs, and the checks of ``Gs1Data``.

HRI ambiguity: GS1 character set 82 contains ``(`` and ``)``, so a value that
itself contains ``(NN)``, two to four digits in parentheses, cannot be read
back from HRI; the carrier form has no such ambiguity.
"""

from __future__ import annotations

import re
import unicodedata

from carechain.standards.gs1.ai import AIS, KNOWN_AIS_TEXT, AiSpec, Gs1Data, unknown_ai
from carechain.standards.gs1.errors import InvalidGs1, shown

GS = "\x1d"
"""ASCII 29, group separator: how a scanner transmits an FNC1 separator."""

GS1_SYMBOLOGY_IDS: dict[str, str] = {
    "]d2": "GS1 DataMatrix",
    "]Q3": "GS1 QR Code",
    "]C1": "GS1-128",
    "]e0": "GS1 DataBar or composite",
}
"""Symbology identifiers that announce GS1 AI data."""

MAX_SCAN_LENGTH = 4096
"""Longest text the parsers take (a GS1 DataMatrix holds at most 3116 digits)."""

_SYMBOLOGY_ID = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_BRACKETED_AI = re.compile(r"\((\d{2,4})\)")
_NEXT_BRACKETED_AI = re.compile(r" *\(\d{2,4}\)")


def _is_edge_noise(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf")


def trim_scan(text: str) -> str:
    """``text`` without whitespace and control/format characters at either end."""
    start, end = 0, len(text)
    while start < end and _is_edge_noise(text[start]):
        start += 1
    while end > start and _is_edge_noise(text[end - 1]):
        end -= 1
    return text[start:end]


def split_symbology_id(text: str) -> tuple[str, str]:
    """``(identifier, rest)`` if ``text`` starts with a ``]Xm`` symbology identifier.

    Otherwise ``("", text)``.
    """
    if _SYMBOLOGY_ID.match(text):
        return text[:3], text[3:]
    return "", text


def _check_length(text: str, part: str) -> None:
    if len(text) > MAX_SCAN_LENGTH:
        raise InvalidGs1(part, f"{len(text)} characters; a scan is at most {MAX_SCAN_LENGTH}")


def parse_element_string(text: str) -> Gs1Data:
    """Read a GS1 element string, in carrier form (GS separators) or HRI form (parentheses).

    Raises ``InvalidGs1``: part ``element_string`` for structure (empty,
    truncated, a missing separator, a non-GS1 symbology identifier), ``ai``
    for unknown or repeated AIs and missing associations, or the part of the
    value that is wrong (``gtin``, ``expiry``, ``serial``, ...).
    """
    _check_length(text, "element_string")
    data = trim_scan(text)
    symbology, data = split_symbology_id(data)
    if symbology and symbology not in GS1_SYMBOLOGY_IDS:
        known = ", ".join(GS1_SYMBOLOGY_IDS)
        raise InvalidGs1(
            "element_string",
            f"symbology identifier {symbology} does not announce GS1 AI data ({known} do)",
        )
    if data.startswith(GS):
        data = data[1:]  # FNC1 in first position, sent by scanners without identifiers
    if not data:
        raise InvalidGs1("element_string", "GS1 element string is empty")
    if data.startswith("("):
        return Gs1Data.from_elements(_split_bracketed(data))
    return Gs1Data.from_elements(_split_carrier(data))


def _ai_at(data: str, position: int) -> AiSpec:
    for width in (2, 3):
        spec = AIS.get(data[position : position + width])
        if spec is not None:
            return spec
    start = shown(data[position : position + 4])
    raise InvalidGs1(
        "ai",
        f"unknown AI at character {position + 1} (the data there begins {start}); "
        f"this codec reads AIs {KNOWN_AIS_TEXT}",
    )


def _split_carrier(data: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(data):
        if data[position] == GS:
            raise InvalidGs1(
                "element_string", f"empty element: GS separator at character {position + 1}"
            )
        spec = _ai_at(data, position)
        start = position + len(spec.ai)
        if start >= len(data):
            raise InvalidGs1("element_string", f"truncated: {spec.label} has no value")
        if spec.length is not None:
            end = start + spec.length
            value = data[start:end]
            separator = value.find(GS)
            if len(value) < spec.length or separator >= 0:
                got = len(value) if separator < 0 else separator
                raise InvalidGs1(
                    "element_string",
                    f"truncated: {spec.label} needs {spec.length} characters, found {got}",
                )
            position = end + 1 if data[end : end + 1] == GS else end
        else:
            separator = data.find(GS, start)
            end = len(data) if separator < 0 else separator
            value = data[start:end]
            if len(value) > spec.max_length:
                raise InvalidGs1(
                    spec.part,
                    f"{spec.label} {shown(value)}: {len(value)} characters, at most "
                    f"{spec.max_length} (a missing GS separator after it?)",
                )
            position = end + 1 if separator >= 0 else end
        pairs.append((spec.ai, value))
    return pairs


def _split_bracketed(data: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(data):
        match = _BRACKETED_AI.match(data, position)
        if match is None:
            raise InvalidGs1(
                "element_string",
                f"expected '(' and an AI at character {position + 1}, found "
                f"{shown(data[position : position + 8])}",
            )
        ai = match.group(1)
        spec = AIS.get(ai)
        if spec is None:
            raise unknown_ai(ai, f" at character {position + 1}")
        following = _NEXT_BRACKETED_AI.search(data, match.end())
        end = len(data) if following is None else following.start()
        value = data[match.end() : end]
        if not value:
            raise InvalidGs1("element_string", f"truncated: {spec.label} has no value")
        pairs.append((ai, value))
        position = end
        while data[position : position + 1] == " ":
            position += 1
    return pairs


def element_string(data: Gs1Data, *, symbology_id: str = "") -> str:
    """Carrier form of ``data``: AIs in ``AIS`` order, GS after variable-length values but the last.

    ``symbology_id`` (one of ``GS1_SYMBOLOGY_IDS``, e.g. ``"]d2"``) is put in
    front, as a scanner would transmit it; by default there is none.
    """
    if symbology_id and symbology_id not in GS1_SYMBOLOGY_IDS:
        raise ValueError(f"not a GS1 symbology identifier: {symbology_id!r}")
    elements = data.elements()
    out = [symbology_id]
    for index, (ai, value) in enumerate(elements):
        out.append(ai + value)
        if not AIS[ai].predefined_length and index < len(elements) - 1:
            out.append(GS)
    return "".join(out)


def hri(data: Gs1Data) -> str:
    """Human readable interpretation of ``data``: ``(01)09506000134352(17)201225(10)ABC123``."""
    return "".join(f"({ai}){value}" for ai, value in data.elements())
