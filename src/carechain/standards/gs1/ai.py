"""The GS1 Application Identifiers this codec reads, and ``Gs1Data``, a validated set of them.

Each entry follows the GS1 Barcode Syntax Dictionary (GS1's machine-readable
form of the General Specifications AI table, file
``gs1-syntax-dictionary.txt`` of the GS1 syntax engine):

====  ==============  ===================  ================================
AI    field           format               FNC1 separator after it
====  ==============  ===================  ================================
00    SSCC            N18, check digit     no: predefined length
01    GTIN            N14, check digit     no: predefined length
11    PROD DATE       N6 YYMMDD (DD 00)    no: predefined length
17    USE BY/EXPIRY   N6 YYMMDD (DD 00)    no: predefined length
10    BATCH/LOT       X..20 (CSET 82)      yes, unless last
21    SERIAL          X..20 (CSET 82)      yes, unless last
710+  NHRN 710-715    X..20 (CSET 82)      yes, unless last
====  ==============  ===================  ================================

"Predefined length" is the General Specifications table of AI prefixes whose
element strings never need an FNC1 separator ("Element strings with
predefined length using GS1 Application Identifiers", with the
concatenation rules in section 7.8.5 of recent editions: 00, 01, 11 and 17
are in it; 10, 21 and 71x are not). Mandatory associations
(``req=`` in the dictionary): 10, 11, 17, 21 and 710-715 need an AI 01 GTIN
in the same data. Any other AI is refused as unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from carechain.standards.gs1.dates import Gs1Date, parse_gs1_date
from carechain.standards.gs1.errors import InvalidGs1
from carechain.standards.gs1.keys import normalise_gtin, validate_sscc, validate_text


@dataclass(frozen=True)
class AiSpec:
    """One Application Identifier: its code, the ``Gs1Data`` field and its format."""

    ai: str
    part: str  # InvalidGs1.part and, except for "nhrn", the Gs1Data field
    label: str  # how messages name it, e.g. "AI 21 serial"
    length: int | None  # predefined length, or None for a variable-length field
    max_length: int

    @property
    def predefined_length(self) -> bool:
        """True if no FNC1 separator is ever needed after this AI's value."""
        return self.length is not None


NHRN_AIS = ("710", "711", "712", "713", "714", "715")
"""National Healthcare Reimbursement Numbers (Germany PZN, France CIP, Spain CN, ...)."""

AIS: dict[str, AiSpec] = {
    spec.ai: spec
    for spec in (
        AiSpec("00", "sscc", "AI 00 SSCC", 18, 18),
        AiSpec("01", "gtin", "AI 01 GTIN", 14, 14),
        AiSpec("11", "production_date", "AI 11 production date", 6, 6),
        AiSpec("17", "expiry", "AI 17 expiry", 6, 6),
        AiSpec("10", "lot", "AI 10 lot", None, 20),
        AiSpec("21", "serial", "AI 21 serial", None, 20),
        *(AiSpec(ai, "nhrn", f"AI {ai} NHRN", None, 20) for ai in NHRN_AIS),
    )
}
"""Known AIs in the order ``Gs1Data.elements`` lists them: keys, then predefined-length
fields, then variable-length ones (fewest FNC1 separators, as GS1 recommends)."""

KNOWN_AIS_TEXT = "00, 01, 10, 11, 17, 21, 710-715"


def unknown_ai(ai: str, where: str) -> InvalidGs1:
    return InvalidGs1("ai", f"unknown AI {ai}{where}; this codec reads AIs {KNOWN_AIS_TEXT}")


def _check_value(spec: AiSpec, value: str) -> str:
    """Validate one AI value as given; return it as stored (GTINs are already 14 digits)."""
    if spec.part in ("lot", "serial", "nhrn"):
        return validate_text(spec.part, spec.label, value)
    if spec.part in ("production_date", "expiry"):
        return parse_gs1_date(spec.part, spec.label, value).yymmdd
    if spec.part == "gtin":
        if len(value) != 14 and value.isascii() and value.isdigit():
            raise InvalidGs1("gtin", f"{spec.label} {value}: {len(value)} digits, AI 01 needs 14")
        return normalise_gtin(value)
    return validate_sscc(value)


@dataclass(frozen=True)
class Gs1Data:
    """A validated set of the AIs in ``AIS``: at most one of each, associations satisfied.

    ``gtin`` is always a GTIN-14 (a GTIN-8, -12 or -13 given to the
    constructor is padded). ``nhrn`` holds AIs 710-715 as ``(ai, value)`` pairs
    in AI order.
    """

    sscc: str | None = None
    gtin: str | None = None
    production_date: Gs1Date | None = None
    expiry: Gs1Date | None = None
    lot: str | None = None
    serial: str | None = None
    nhrn: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.sscc is not None:
            validate_sscc(self.sscc)
        if self.gtin is not None:
            object.__setattr__(self, "gtin", normalise_gtin(self.gtin))
        if self.lot is not None:
            validate_text("lot", AIS["10"].label, self.lot)
        if self.serial is not None:
            validate_text("serial", AIS["21"].label, self.serial)
        seen: set[str] = set()
        for ai, value in self.nhrn:
            if ai not in NHRN_AIS:
                raise unknown_ai(ai, " as an NHRN")
            if ai in seen:
                raise InvalidGs1("ai", f"AI {ai} appears twice")
            seen.add(ai)
            validate_text("nhrn", AIS[ai].label, value)
        object.__setattr__(self, "nhrn", tuple(sorted(self.nhrn)))
        if not self.elements():
            raise InvalidGs1("ai", "no Application Identifiers: nothing to encode")
        if self.gtin is None:
            for ai, _ in self.elements():
                if ai not in ("00", "01"):
                    raise InvalidGs1("ai", f"{AIS[ai].label} needs an AI 01 GTIN in the same data")

    def elements(self) -> tuple[tuple[str, str], ...]:
        """``(ai, value)`` pairs in the order of ``AIS``."""
        values: dict[str, str | None] = {
            "00": self.sscc,
            "01": self.gtin,
            "11": self.production_date.yymmdd if self.production_date else None,
            "17": self.expiry.yymmdd if self.expiry else None,
            "10": self.lot,
            "21": self.serial,
            **dict(self.nhrn),
        }
        return tuple((ai, value) for ai in AIS if (value := values.get(ai)) is not None)

    @classmethod
    def from_elements(cls, pairs: Iterable[tuple[str, str]]) -> Gs1Data:
        """Build from ``(ai, value)`` pairs as read, refusing unknown or repeated AIs."""
        fields: dict[str, str] = {}
        nhrn: list[tuple[str, str]] = []
        seen: set[str] = set()
        for ai, value in pairs:
            spec = AIS.get(ai)
            if spec is None:
                raise unknown_ai(ai, "")
            if ai in seen:
                raise InvalidGs1("ai", f"{spec.label} appears twice")
            seen.add(ai)
            checked = _check_value(spec, value)
            if spec.part == "nhrn":
                nhrn.append((ai, checked))
            else:
                fields[spec.part] = checked
        production = fields.get("production_date")
        expiry = fields.get("expiry")
        return cls(
            sscc=fields.get("sscc"),
            gtin=fields.get("gtin"),
            production_date=Gs1Date(production) if production else None,
            expiry=Gs1Date(expiry) if expiry else None,
            lot=fields.get("lot"),
            serial=fields.get("serial"),
            nhrn=tuple(nhrn),
        )
