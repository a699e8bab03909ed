"""Drug pack identifiers: GS1 keys, element strings, Digital Link, China's 药品追溯码.

A pure codec: no I/O, no clock, no storage, no network. carechain names a
drug pack by a GS1 SGTIN (GTIN + serial) or by China's 20-digit drug
traceability code, of equal standing (ARCHITECTURE.md, "China first,
standards everywhere"). Each module cites the rules it follows: the GS1
General Specifications, the GS1 Barcode Syntax Dictionary and reference
syntax engine, the GS1 Digital Link Standard: URI Syntax, NMPA/T 1002-2019.

What callers may rely on:

* Every refusal is ``InvalidGs1`` (an ``InvalidInput``, code
  ``invalid_gs1``, HTTP 400) with a one-line message naming the part in
  words and saying what is wrong (``GTIN 09506000134353: check digit is 3,
  expected 2``; ``AI 17 expiry 251332: month 13 is not a month``), and a
  ``part``, one of ``PARTS``: ``gtin``, ``sscc``, ``serial``, ``lot``,
  ``expiry``, ``production_date``, ``nhrn`` (a value); ``ai`` (an unknown,
  repeated or unaccompanied AI); ``element_string``, ``digital_link``
  (structure); ``cn_trace``; ``pack_code`` (not a pack code at all). The
  parse, validate and check-digit functions raise nothing else for any
  ``str`` input.
* Values that pass are canonical: GTINs are 14 digits, a ``Gs1Data`` holds
  each AI at most once and only with the AIs it requires, and generating
  then parsing any ``Gs1Data`` (``element_string``, ``hri``,
  ``digital_link``) gives it back unchanged (except ``hri`` for a value
  containing ``(NN)``: see ``element_string``).
* ``PackId.key`` is ``sgtin:<GTIN-14>.<serial>`` or ``cn-trace:<20 digits>``:
  one key per pack, the same whichever form was scanned (URI, element string
  with or without parentheses or symbology identifier), usable as a state key.
* ``parse_pack_code`` reads, after trimming whitespace and control
  characters at both ends: a Digital Link URI; an element string announced
  by ``]d2``, ``]Q3``, ``]C1`` or ``]e0``, or written with parentheses, or
  holding a GS separator, or starting ``01`` and 16 characters or longer;
  a bare 20-digit 药品追溯码 (after any non-GS1 symbology identifier such as
  ``]C0``). A bare 13-digit EAN is refused as the product's retail barcode
  (``69...``: 商品条码); a bare GTIN or an SSCC as naming no pack. A bare
  20-digit string is always a 药品追溯码, even one that an unannounced GS1
  element string could also spell (``01`` + GTIN + ``21`` + 2 characters,
  or ``00`` + SSCC): scanners should send symbology identifiers.
* Dates keep their ``YYMMDD`` text; ``Gs1Date.to_date(reference)`` resolves
  the century by General Specifications 7.12 against a date the caller
  gives (a contract's block time), and ``DD = 00`` as the month's last day.
* Not checked, because no source found says how: the check character of a
  药品追溯码 and the layout after its 7-digit product code.
"""

from __future__ import annotations

from carechain.standards.gs1.ai import AIS, Gs1Data
from carechain.standards.gs1.china import parse_cn_trace_code, validate_cn_trace_code
from carechain.standards.gs1.dates import Gs1Date, century_year
from carechain.standards.gs1.digital_link import (
    DEFAULT_RESOLVER,
    DigitalLink,
    digital_link,
    parse_digital_link,
)
from carechain.standards.gs1.element_string import (
    GS,
    GS1_SYMBOLOGY_IDS,
    element_string,
    hri,
    parse_element_string,
)
from carechain.standards.gs1.errors import PARTS, InvalidGs1
from carechain.standards.gs1.keys import (
    check_digit,
    normalise_gtin,
    validate_sscc,
    with_check_digit,
)
from carechain.standards.gs1.pack import PackId, ScannedPack, parse_pack_code

__all__ = [
    "AIS",
    "DEFAULT_RESOLVER",
    "GS",
    "GS1_SYMBOLOGY_IDS",
    "PARTS",
    "DigitalLink",
    "Gs1Data",
    "Gs1Date",
    "InvalidGs1",
    "PackId",
    "ScannedPack",
    "century_year",
    "check_digit",
    "digital_link",
    "element_string",
    "hri",
    "normalise_gtin",
    "parse_cn_trace_code",
    "parse_digital_link",
    "parse_element_string",
    "parse_pack_code",
    "validate_cn_trace_code",
    "validate_sscc",
    "with_check_digit",
]
