"""One identifier for one drug pack, whichever code is printed on it, and the scanner's entry point.

A pack is named either by a GS1 SGTIN (GTIN + serial number, AI 01 + AI 21)
or by China's 20-digit drug traceability code (药品追溯码); NMPA/T 1002-2019
accepts both (see ``china``). Both become a ``PackId`` with one canonical
string key:

* ``sgtin:<GTIN-14>.<serial>``, e.g. ``sgtin:09506000134352.XYZ``: the GTIN
  always padded to 14 digits, the serial exactly as encoded (case and all;
  it may itself hold ``.`` or ``:``, so read a key back with
  ``PackId.from_key``, which splits after the 14 digits);
* ``cn-trace:<20 digits>``.

The key is printable ASCII of at most 41 characters, so it can be used as a
state key as it is. It is not an EPC URN: ``urn:epc:id:sgtin:`` needs the
length of the GS1 Company Prefix, which a scan does not carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from carechain.standards.gs1.ai import AIS, Gs1Data
from carechain.standards.gs1.china import validate_cn_trace_code
from carechain.standards.gs1.dates import Gs1Date
from carechain.standards.gs1.digital_link import parse_digital_link
from carechain.standards.gs1.element_string import (
    GS,
    GS1_SYMBOLOGY_IDS,
    MAX_SCAN_LENGTH,
    parse_element_string,
    split_symbology_id,
    trim_scan,
)
from carechain.standards.gs1.errors import InvalidGs1, shown
from carechain.standards.gs1.keys import check_digit, normalise_gtin, validate_text

PackScheme = Literal["sgtin", "cn-trace"]
ScanForm = Literal["digital_link", "element_string", "cn_trace"]


@dataclass(frozen=True)
class PackId:
    """A validated pack identifier. Build it with ``sgtin``, ``cn_trace`` or ``from_key``.

    ``value`` is ``<GTIN-14>.<serial>`` for ``sgtin`` and the 20 digits for
    ``cn-trace``; ``key`` is ``<scheme>:<value>``.
    """

    scheme: PackScheme
    value: str

    def __post_init__(self) -> None:
        if self.scheme == "cn-trace":
            validate_cn_trace_code(self.value)
            return
        if self.scheme != "sgtin":
            raise InvalidGs1("pack_code", f"unknown pack identifier scheme {shown(self.scheme)}")
        gtin, dot, serial = self.value[:14], self.value[14:15], self.value[15:]
        if dot != "." or normalise_gtin(gtin) != gtin:
            raise InvalidGs1("pack_code", f"SGTIN {shown(self.value)}: expected <GTIN-14>.<serial>")
        validate_text("serial", AIS["21"].label, serial)

    @classmethod
    def sgtin(cls, gtin: str, serial: str) -> PackId:
        """The pack with GTIN ``gtin`` (8, 12, 13 or 14 digits) and AI 21 serial ``serial``."""
        return cls(
            "sgtin", f"{normalise_gtin(gtin)}.{validate_text('serial', 'AI 21 serial', serial)}"
        )

    @classmethod
    def cn_trace(cls, code: str) -> PackId:
        """The pack with 20-digit drug traceability code ``code``, taken as it is (not trimmed)."""
        return cls("cn-trace", code)

    @classmethod
    def from_key(cls, key: str) -> PackId:
        """The ``PackId`` whose ``key`` is ``key``."""
        scheme, colon, value = key.partition(":")
        if not colon or scheme not in ("sgtin", "cn-trace"):
            raise InvalidGs1(
                "pack_code", f"{shown(key)} is not a pack key (sgtin:... or cn-trace:...)"
            )
        return cls("sgtin" if scheme == "sgtin" else "cn-trace", value)

    @property
    def key(self) -> str:
        return f"{self.scheme}:{self.value}"

    @property
    def gtin(self) -> str | None:
        """The GTIN-14 of an SGTIN; None for a traceability code."""
        return self.value[:14] if self.scheme == "sgtin" else None

    @property
    def serial(self) -> str | None:
        """The AI 21 serial of an SGTIN; None for a traceability code."""
        return self.value[15:] if self.scheme == "sgtin" else None

    @property
    def product_code(self) -> str:
        """What names the product: the GTIN-14, or the 7-digit 药品标识码 of a traceability code."""
        return self.value[:14] if self.scheme == "sgtin" else self.value[:7]


@dataclass(frozen=True)
class ScannedPack:
    """What ``parse_pack_code`` read: the pack, and lot and dates when the code carries them.

    ``data`` is every GS1 AI read (None for a 药品追溯码, which carries no
    lot or dates in its text); ``form`` says which kind of code it was.
    """

    pack: PackId
    form: ScanForm
    lot: str | None = None
    expiry: Gs1Date | None = None
    production_date: Gs1Date | None = None
    data: Gs1Data | None = None


def _from_gs1(data: Gs1Data, form: ScanForm) -> ScannedPack:
    if data.gtin is None:
        raise InvalidGs1(
            "pack_code",
            f"SSCC {data.sscc} names a logistic unit (a case or pallet), not a pack",
        )
    if data.serial is None:
        raise InvalidGs1(
            "pack_code",
            f"GTIN {data.gtin} has no AI 21 serial number: it names the product, not this pack",
        )
    return ScannedPack(
        pack=PackId.sgtin(data.gtin, data.serial),
        form=form,
        lot=data.lot,
        expiry=data.expiry,
        production_date=data.production_date,
        data=data,
    )


def _refuse_bare_gtin(digits: str) -> InvalidGs1:
    """A 13-digit retail barcode (or another bare GTIN) scanned instead of a pack code."""
    valid = check_digit(digits[:-1]) == digits[-1]
    if len(digits) == 13 and valid and digits.startswith("69"):
        return InvalidGs1(
            "pack_code",
            f"{digits} is the product's retail barcode (商品条码, EAN-13 with GS1 China "
            "prefix 69), not a drug traceability code (药品追溯码): it names the product, not "
            "this pack; scan the 20-digit code labelled 药品追溯码 or the 2D code",
        )
    if len(digits) == 13 and valid:
        return InvalidGs1(
            "pack_code",
            f"{digits} is a retail barcode (EAN-13), not a pack code: it names the product, "
            "not this pack; scan the pack's 2D code or its 20-digit 药品追溯码",
        )
    if len(digits) == 13:
        return InvalidGs1(
            "pack_code",
            f"{digits}: 13 digits is not a pack code (a 药品追溯码 has 20 digits) and its "
            f"check digit {digits[-1]} is wrong for a retail barcode (expected "
            f"{check_digit(digits[:-1])})",
        )
    return InvalidGs1(
        "pack_code",
        f"{digits}: a bare {len(digits)}-digit GTIN names a product, not a pack; "
        "a pack code needs a serial number (AI 21) or is a 20-digit 药品追溯码",
    )


def parse_pack_code(text: str) -> ScannedPack:
    """Read whatever a scanner produced from a drug pack; see the package docstring for the rules.

    Raises ``InvalidGs1``; part ``pack_code`` when the text is not a pack code
    at all (empty, a 13-digit retail barcode, a GTIN or SSCC without a
    serial, unrecognised), otherwise the part that is wrong.
    """
    # 1. Bound and trim scanner noise at the ends.
    if len(text) > MAX_SCAN_LENGTH:
        raise InvalidGs1(
            "pack_code", f"{len(text)} characters; a scan is at most {MAX_SCAN_LENGTH}"
        )
    scan = trim_scan(text)
    if not scan:
        raise InvalidGs1("pack_code", "the scan is empty")
    # 2. A GS1 symbology identifier announces a GS1 element string; any other is dropped.
    symbology, body = split_symbology_id(scan)
    if symbology in GS1_SYMBOLOGY_IDS:
        return _from_gs1(parse_element_string(scan), "element_string")
    if not body:
        raise InvalidGs1("pack_code", f"the scan holds only a symbology identifier {symbology}")
    # 3. Decide by shape.
    if body[:8].lower().startswith(("https://", "http://")):
        return _from_gs1(parse_digital_link(body).data, "digital_link")
    if body.startswith("(") or GS in body:
        return _from_gs1(parse_element_string(body), "element_string")
    digits = body.isascii() and body.isdigit()
    if digits and len(body) == 20:
        return ScannedPack(pack=PackId.cn_trace(body), form="cn_trace")
    if digits and len(body) in (8, 12, 13, 14):
        raise _refuse_bare_gtin(body)
    if body.startswith("01") and len(body) >= 16:
        return _from_gs1(parse_element_string(body), "element_string")
    if digits or len(body) == 20:
        validate_cn_trace_code(body)  # raises: wrong length, or a non-digit
    raise InvalidGs1(
        "pack_code",
        f"{shown(body)} is not a pack code: expected a GS1 Digital Link URI, a GS1 element "
        "string (AI 01 GTIN + AI 21 serial) or a 20-digit drug traceability code (药品追溯码)",
    )
