"""EPCs, both ways: carechain's pack keys and SSCCs as EPCIS identifiers, and back.

EPCIS 2.0 (section 8.3.2) lets an EPC be written as an EPC URI
(``urn:epc:id:sgtin:...``) or as a GS1 Digital Link URI. carechain writes
Digital Link (``https://id.gs1.org/01/<GTIN-14>/21/<serial>``,
``https://id.gs1.org/00/<SSCC>``) because an EPC URI needs the length of the
GS1 Company Prefix, which neither a GTIN nor a scan carries. It reads both.

EPC URI to GS1 key, as the EPC Tag Data Standard defines the correspondence
(TDS 1.13, section 6.3.1 "Serialised Global Trade Item Number (SGTIN)",
6.3.2 "Serial Shipping Container Code (SSCC)", and section 7 "Correspondence
between EPCs and GS1 Keys", 7.1 and 7.2):

* ``urn:epc:id:sgtin:d2d3...d(L+1).d1d(L+2)...d13.s1...sK`` is
  ``(01) d1...d14 (21) s1...sK``: the first digit of the second component
  (the indicator digit) moves to the front, the GS1 check digit d14 is
  added. The Company Prefix has L = 6 to 12 digits and the two components
  always 13 digits together. A serial character may be a percent-escape
  ``%xx`` (TDS section 5, table "Characters permitted in the EPC URI"), which
  stands for that character in the element string.
* ``urn:epc:id:sscc:d2d3...d(L+1).d1d(L+2)...d17`` is ``(00) d1...d18``, the
  first digit of the serial reference being the extension digit.

A 药品追溯码 has no EPC; carechain writes ``urn:carechain:cn-trace:<20 digits>``
(see ``vocabulary``).
"""

from __future__ import annotations

import re
import string

from carechain.standards.epcis.errors import InvalidEpcis, kind_of, shown
from carechain.standards.epcis.vocabulary import CN_TRACE_PREFIX, ORG_PREFIX
from carechain.standards.gs1 import (
    DEFAULT_RESOLVER,
    Gs1Data,
    InvalidGs1,
    PackId,
    check_digit,
    digital_link,
    parse_digital_link,
    validate_sscc,
)

SGTIN_URN = "urn:epc:id:sgtin:"
SSCC_URN = "urn:epc:id:sscc:"
COMPANY_PREFIX_LENGTHS = range(6, 13)
"""A GS1 Company Prefix has 6 to 12 digits (TDS 1.13, tables of partition values)."""

ORG_ID = re.compile(r"[a-z0-9-]{2,40}")
"""A carechain organisation id (as the drugs contract checks a shipment's receiver)."""

_URI_SERIAL_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.:;=!'()*+,")
"""Characters that stand for themselves in the serial of an EPC URI; any other is %xx."""

_SSCC_DIGITS = re.compile(r"\d{18}")


def is_sscc_code(code: str) -> bool:
    """True if ``code`` is an 18-digit SSCC as carechain writes a unit (not a pack key)."""
    return bool(_SSCC_DIGITS.fullmatch(code))


def epc_of(code: str, resolver: str = DEFAULT_RESOLVER) -> str:
    """The EPC carechain writes for ``code``: a pack key or an 18-digit SSCC.

    Raises ``InvalidGs1`` for a code that is neither.
    """
    if is_sscc_code(code):
        return digital_link(Gs1Data(sscc=validate_sscc(code)), resolver)
    pack = PackId.from_key(code)
    if pack.gtin is None:
        return CN_TRACE_PREFIX + pack.value
    return digital_link(Gs1Data(gtin=pack.gtin, serial=pack.serial), resolver)


def org_uri(org_id: str) -> str:
    return ORG_PREFIX + org_id


def _decode_serial(text: str, uri: str, path: str) -> str:
    """The serial an EPC URI's third component stands for (TDS percent-escapes decoded)."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            pair = text[index + 1 : index + 3]
            if len(pair) != 2 or not all(h in string.hexdigits for h in pair):
                raise InvalidEpcis(path, f"{shown(uri)}: malformed percent-escape in the serial")
            out.append(chr(int(pair, 16)))
            index += 3
            continue
        if char not in _URI_SERIAL_CHARACTERS:
            raise InvalidEpcis(
                path, f"{shown(uri)}: {char!r} may not appear unescaped in an EPC URI serial"
            )
        out.append(char)
        index += 1
    return "".join(out)


def _split_urn(uri: str, prefix: str, parts: int, path: str) -> list[str]:
    fields = uri[len(prefix) :].split(".", parts - 1)
    if len(fields) != parts or not all(fields):
        layout = "<company prefix>.<indicator+item ref>.<serial>" if parts == 3 else (
            "<company prefix>.<extension+serial ref>"
        )  # fmt: skip
        raise InvalidEpcis(path, f"{shown(uri)}: expected {prefix}{layout}")
    return fields


def _check_digits(uri: str, company_prefix: str, reference: str, total: int, path: str) -> None:
    for label, digits in (("company prefix", company_prefix), ("reference", reference)):
        if not (digits.isascii() and digits.isdigit()):
            raise InvalidEpcis(path, f"{shown(uri)}: the {label} must be digits")
    if len(company_prefix) not in COMPANY_PREFIX_LENGTHS:
        raise InvalidEpcis(
            path,
            f"{shown(uri)}: a GS1 Company Prefix has 6 to 12 digits, not {len(company_prefix)}",
        )
    if len(company_prefix) + len(reference) != total:
        raise InvalidEpcis(
            path,
            f"{shown(uri)}: company prefix and reference have "
            f"{len(company_prefix) + len(reference)} digits together, expected {total}",
        )


def sgtin_from_urn(uri: str, path: str = "") -> PackId:
    """The pack named by an SGTIN EPC URI (TDS 1.13 section 7.1); see the module docstring."""
    if not uri.startswith(SGTIN_URN):
        raise InvalidEpcis(path, f"{shown(uri)} is not an SGTIN EPC URI ({SGTIN_URN}...)")
    company_prefix, indicator_item, raw_serial = _split_urn(uri, SGTIN_URN, 3, path)
    _check_digits(uri, company_prefix, indicator_item, 13, path)
    body = indicator_item[0] + company_prefix + indicator_item[1:]
    serial = _decode_serial(raw_serial, uri, path)
    try:
        return PackId.sgtin(body + check_digit(body), serial)
    except InvalidGs1 as exc:
        raise InvalidEpcis(path, f"{shown(uri)}: {exc.message}") from exc


def sscc_from_urn(uri: str, path: str = "") -> str:
    """The 18-digit SSCC named by an SSCC EPC URI (TDS 1.13 section 7.2)."""
    if not uri.startswith(SSCC_URN):
        raise InvalidEpcis(path, f"{shown(uri)} is not an SSCC EPC URI ({SSCC_URN}...)")
    company_prefix, serial_reference = _split_urn(uri, SSCC_URN, 2, path)
    _check_digits(uri, company_prefix, serial_reference, 17, path)
    body = serial_reference[0] + company_prefix + serial_reference[1:]
    return body + check_digit(body)


def _from_digital_link(uri: str, path: str) -> str:
    try:
        data = parse_digital_link(uri).data
    except InvalidGs1 as exc:
        raise InvalidEpcis(path, f"{shown(uri)}: {exc.message}") from exc
    ais = [ai for ai, _ in data.elements()]
    if ais == ["00"] and data.sscc is not None:
        return data.sscc
    if ais == ["01", "21"] and data.gtin is not None and data.serial is not None:
        return PackId.sgtin(data.gtin, data.serial).key
    if ais == ["01"]:
        raise InvalidEpcis(
            path, f"{shown(uri)} names a product (a GTIN without serial), not one pack"
        )
    raise InvalidEpcis(
        path,
        f"{shown(uri)}: an EPC names one pack or unit and nothing else: expected "
        ".../01/<GTIN>/21/<serial> or .../00/<SSCC>",
    )


def code_of_epc(uri: object, path: str) -> str:
    """carechain's code for an EPC: a pack key (``sgtin:...``, ``cn-trace:...``) or an SSCC.

    Reads a GS1 Digital Link URI, ``urn:epc:id:sgtin:``, ``urn:epc:id:sscc:``
    and ``urn:carechain:cn-trace:``; raises ``InvalidEpcis`` at ``path`` for
    anything else (another EPC scheme, a class-level identifier, a damaged
    key).
    """
    if not isinstance(uri, str) or not uri:
        raise InvalidEpcis(path, f"an EPC must be a URI, got {kind_of(uri)}")
    if uri.startswith(SGTIN_URN):
        return sgtin_from_urn(uri, path).key
    if uri.startswith(SSCC_URN):
        return sscc_from_urn(uri, path)
    if uri.startswith(CN_TRACE_PREFIX):
        try:
            return PackId.cn_trace(uri[len(CN_TRACE_PREFIX) :]).key
        except InvalidGs1 as exc:
            raise InvalidEpcis(path, f"{shown(uri)}: {exc.message}") from exc
    if uri[:8].lower().startswith(("https://", "http://")):
        return _from_digital_link(uri, path)
    if uri.startswith("urn:epc:"):
        raise InvalidEpcis(
            path,
            f"{shown(uri)}: carechain tracks packs (SGTIN) and logistic units (SSCC); "
            "this EPC scheme names neither",
        )
    raise InvalidEpcis(
        path,
        f"{shown(uri)} is not an EPC carechain reads: expected a GS1 Digital Link URI, "
        f"{SGTIN_URN}..., {SSCC_URN}... or {CN_TRACE_PREFIX}<20 digits>",
    )


def org_of(uri: object, path: str, parties: dict[str, str]) -> str | None:
    """The carechain organisation a party URI names, or None if it names none we know.

    ``parties`` maps other party identifiers (a PGLN such as
    ``urn:epc:id:pgln:0614141.00777``) to organisation ids; otherwise only
    ``urn:carechain:org:<id>`` names an organisation.
    """
    if not isinstance(uri, str) or not uri:
        raise InvalidEpcis(path, f"a party must be a URI, got {kind_of(uri)}")
    org = parties.get(uri)
    if org is None and uri.startswith(ORG_PREFIX):
        org = uri[len(ORG_PREFIX) :]
    if org is not None and not ORG_ID.fullmatch(org):
        raise InvalidEpcis(path, f"{shown(org)} is not a carechain organisation id")
    return org
