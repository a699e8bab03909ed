"""GS1 ``YYMMDD`` dates: century rule (General Specifications 7.12), ``DD = 00``, leap years."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carechain.standards.gs1 import Gs1Date, InvalidGs1, century_year


@pytest.mark.parametrize(
    ("yy", "reference", "year"),
    [
        # Reference year 2025: difference 51 -> previous century, 50 -> this one.
        (76, date(2025, 6, 1), 1976),
        (75, date(2025, 6, 1), 2075),
        (0, date(2025, 6, 1), 2000),
        (25, date(2025, 6, 1), 2025),
        # Reference year 2075: difference -50 -> next century, -49 -> this one.
        (25, date(2075, 1, 1), 2125),
        (26, date(2075, 1, 1), 2026),
        # Reference year 1999: 49 is 2049 (difference -50), 50 is 1950.
        (49, date(1999, 12, 31), 2049),
        (50, date(1999, 12, 31), 1950),
    ],
)
def test_century_rule_of_section_7_12(yy: int, reference: date, year: int) -> None:
    assert century_year(yy, reference) == year


def reference_century_year(yy: int, reference: date) -> int:
    """A slow, obviously correct reading of 7.12: the year within (-49, +50] of the reference."""
    candidates = [century + yy for century in range(0, 10000, 100)]
    return next(y for y in candidates if -49 <= y - reference.year <= 50)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 99), st.dates(min_value=date(200, 1, 1), max_value=date(9800, 12, 31)))
def test_century_rule_matches_reference(yy: int, reference: date) -> None:
    assert century_year(yy, reference) == reference_century_year(yy, reference)


@pytest.mark.parametrize(
    ("yymmdd", "expected"),
    [
        ("250200", date(2025, 2, 28)),  # DD = 00: the last day of the month
        ("240200", date(2024, 2, 29)),  # ... leap years included
        ("201200", date(2020, 12, 31)),
        ("250430", date(2025, 4, 30)),
        ("240229", date(2024, 2, 29)),
        ("000229", date(2000, 2, 29)),  # lint_yymmd0.c: 000229 passes
    ],
)
def test_to_date(yymmdd: str, expected: date) -> None:
    value = Gs1Date(yymmdd)
    assert value.to_date(date(2025, 1, 1)) == expected
    assert value.day == (None if yymmdd.endswith("00") else expected.day)
    assert value.month == expected.month


def test_29_february_2100_does_not_exist() -> None:
    """From 2050 on, 7.12 places ``00`` in 2100, which is not a leap year."""
    with pytest.raises(InvalidGs1, match="2100 has no 29 February"):
        Gs1Date("000229").to_date(date(2051, 1, 1))
    assert Gs1Date("000200").to_date(date(2051, 1, 1)) == date(2100, 2, 28)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1951, 1, 1), max_value=date(2049, 12, 31)))
def test_from_date_round_trip(value: date) -> None:
    """Within 50 years of the reference, a date comes back as itself."""
    encoded = Gs1Date.from_date(value)
    assert encoded.day == value.day
    assert encoded.to_date(date(2000, 1, 1)) == value
