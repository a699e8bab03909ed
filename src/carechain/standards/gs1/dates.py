"""GS1 ``YYMMDD`` dates: AI 17 expiry and AI 11 production date.

Rules followed:

* Format ``N6`` = YY (tens and units of the year), MM (01-12), DD (01-31 as
  the month allows, or ``00``). Both AIs are ``N6,yymmd0`` in the GS1 Barcode
  Syntax Dictionary, i.e. ``00`` is allowed for the day.
* ``DD = 00`` means the day is not given; for an expiry date GS1 reads it as
  the last day of the month, leap years included (General Specifications
  definitions of AI (15), (16) and (17), section 3.4 in recent editions).
  GSCN 21-040 asks healthcare labels printed from 2025 to carry the real day;
  older packs still say ``00``, so ``00`` is accepted and kept.
* Whether 29 February exists is decided without a calendar year, as GS1's
  reference linter ``lint_yymmd0.c`` does: YY divisible by 4 is a leap year
  (so ``000229`` is valid; 2000 was a leap year).
* The century is **not** part of the value. ``Gs1Date.year`` applies General
  Specifications section 7.12, "Determination of century in dates", against a
  reference date the caller supplies (a contract passes its block time: this
  module never reads a clock). The rule, step by step:

  1. difference = YY - (last two digits of the reference year);
  2. difference 51 to 99: the year is in the previous century;
  3. difference -99 to -50: the year is in the next century;
  4. otherwise: the year is in the reference year's century.

  So with reference year 2025, ``76`` is 1976, ``75`` is 2075 and ``00`` is 2000.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from carechain.standards.gs1.errors import InvalidGs1, shown

_DIGITS = frozenset("0123456789")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _days_in_month(yy: int, month: int) -> int:
    if month == 2:
        return 29 if yy % 4 == 0 else 28
    return calendar.monthrange(2001, month)[1]


def _check_yymmdd(part: str, label: str, text: str) -> None:
    if len(text) != 6:
        raise InvalidGs1(part, f"{label} {shown(text)}: {len(text)} characters, expected YYMMDD")
    for position, char in enumerate(text, start=1):
        if char not in _DIGITS:
            raise InvalidGs1(
                part, f"{label} {shown(text)}: character {position} {char!r} is not a digit"
            )
    yy, mm, dd = int(text[:2]), int(text[2:4]), int(text[4:])
    if not 1 <= mm <= 12:
        raise InvalidGs1(part, f"{label} {text}: month {text[2:4]} is not a month")
    days = _days_in_month(yy, mm)
    if dd > days:
        month = _MONTHS[mm - 1]
        where = f"{month} of a year ending {text[:2]}" if mm == 2 else month
        raise InvalidGs1(
            part, f"{label} {text}: day {text[4:]} is not a day of {where} ({days} days)"
        )


def century_year(yy: int, reference: date) -> int:
    """The four-digit year of a two-digit ``yy`` (General Specifications 7.12)."""
    if not 0 <= yy <= 99:
        raise ValueError(f"two-digit year out of range: {yy}")
    reference_yy = reference.year % 100
    century = reference.year - reference_yy
    difference = yy - reference_yy  # step 1
    if 51 <= difference <= 99:  # step 2: previous century
        return century - 100 + yy
    if -99 <= difference <= -50:  # step 3: next century
        return century + 100 + yy
    return century + yy  # step 4: current century


@dataclass(frozen=True)
class Gs1Date:
    """A valid GS1 ``YYMMDD`` value exactly as encoded (``yymmdd``); see the module docstring."""

    yymmdd: str

    def __post_init__(self) -> None:
        _check_yymmdd("expiry", "YYMMDD date", self.yymmdd)

    @property
    def month(self) -> int:
        return int(self.yymmdd[2:4])

    @property
    def day(self) -> int | None:
        """Day of the month, or None for ``DD = 00`` (day not given)."""
        return int(self.yymmdd[4:]) or None

    def year(self, reference: date) -> int:
        """The four-digit year, by section 7.12 against ``reference`` (e.g. the block date)."""
        return century_year(int(self.yymmdd[:2]), reference)

    def to_date(self, reference: date) -> date:
        """The calendar date; a day of ``00`` gives the last day of the month.

        The last-day reading is GS1's for expiry-type dates (AI 15, 16, 17);
        for an AI 11 production date check ``day is None`` instead. Raises
        ``InvalidGs1(part="expiry")`` in the one case the century changes the
        answer: 29 February of a year ``00`` that section 7.12 places in 2100
        (from reference year 2050 on).
        """
        year = self.year(reference)
        last = calendar.monthrange(year, self.month)[1]
        day = self.day or last
        if day > last:
            raise InvalidGs1("expiry", f"YYMMDD date {self.yymmdd}: {year} has no 29 February")
        return date(year, self.month, day)

    @classmethod
    def from_date(cls, value: date) -> Gs1Date:
        """The ``YYMMDD`` of a calendar date (always with its real day, never ``00``)."""
        return cls(value.strftime("%y%m%d"))


def parse_gs1_date(part: str, label: str, text: str) -> Gs1Date:
    """``Gs1Date(text)``, refusing with ``part`` and ``label`` (e.g. ``"AI 17 expiry"``)."""
    _check_yymmdd(part, label, text)
    return Gs1Date(text)
