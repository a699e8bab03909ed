"""GS1 keys and text fields: check digits, GTIN, SSCC, serial numbers and lots.

Sources (GS1 General Specifications, the GS1 Barcode Syntax Resource):

* The check digit is the standard GS1 mod-10 check digit (General
  Specifications, "Standard check digit calculations for GS1 data
  structures", section 7.9.1 in recent editions): weight the digits 3, 1, 3,
  1, ... from the right, excluding the check digit itself; the check digit
  brings the weighted sum up to a multiple of ten. The same rule covers
  GTIN-8, -12, -13, -14 and the 18-digit SSCC; names follow the reference
  linter ``lint_csum.c`` of GS1's syntax engine so that a reviewer can
  compare them.
* A GTIN-8, -12 or -13 becomes a GTIN-14 by adding zeros on the left (General
  Specifications, GTIN "in a 14-digit field"; AI (01) is always N14).
* Serial (AI 21) and batch/lot (AI 10) are ``X..20``: 1 to 20 characters of
  "GS1 AI encodable character set 82" (General Specifications, table of that
  name; the list below is copied from the reference linter ``lint_cset82.c``).
"""

from __future__ import annotations

from carechain.standards.gs1.errors import InvalidGs1, shown

GTIN_LENGTHS = (8, 12, 13, 14)
"""Lengths of a GTIN-8, GTIN-12, GTIN-13 and GTIN-14, check digit included."""

SSCC_LENGTH = 18

CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
"""GS1 AI encodable character set 82: the characters an ``X`` AI value may hold."""

MAX_TEXT_LENGTH = 20
"""Maximum length of an AI 10 lot, an AI 21 serial and an AI 710-715 NHRN."""

_DIGITS = frozenset("0123456789")

_NAMES = {"gtin": "GTIN", "sscc": "SSCC"}


def check_digit(body: str) -> str:
    """The GS1 mod-10 check digit for ``body`` (every digit of the key but the last).

    Weights 3, 1, 3, ... from the rightmost digit of ``body``. Raises
    ``InvalidGs1(part="gtin")`` if ``body`` is empty or holds a non-digit.
    """
    if not body:
        raise InvalidGs1("gtin", "no digits to compute a check digit for")
    for position, char in enumerate(body, start=1):
        if char not in _DIGITS:
            raise InvalidGs1("gtin", f"{shown(body)}: character {position} {char!r} is not a digit")
    parity = 0
    weight = 3
    for digit in reversed(body):
        parity += weight * int(digit)
        weight = 4 - weight
    return str((10 - parity % 10) % 10)


def _digits_with_check(kind: str, text: str, lengths: tuple[int, ...]) -> None:
    """Refuse ``text`` unless it is digits of one of ``lengths`` with a valid check digit."""
    name = _NAMES[kind]
    if not text:
        raise InvalidGs1(kind, f"{name} is empty")
    for position, char in enumerate(text, start=1):
        if char not in _DIGITS:
            raise InvalidGs1(
                kind, f"{name} {shown(text)}: character {position} {char!r} is not a digit"
            )
    if len(text) not in lengths:
        expected = " or ".join(str(n) for n in lengths)
        raise InvalidGs1(kind, f"{name} {text}: {len(text)} digits, expected {expected}")
    expected_digit = check_digit(text[:-1])
    if text[-1] != expected_digit:
        raise InvalidGs1(
            kind, f"{name} {text}: check digit is {text[-1]}, expected {expected_digit}"
        )


def normalise_gtin(text: str) -> str:
    """The GTIN-14 of a GTIN-8, -12, -13 or -14: check digit verified, zeros added on the left.

    Raises ``InvalidGs1(part="gtin")`` for an empty value, a non-digit, a wrong
    length or a wrong check digit. The check digit is the same before and
    after padding, since leading zeros add nothing to the weighted sum.
    """
    _digits_with_check("gtin", text, GTIN_LENGTHS)
    return text.rjust(14, "0")


def validate_sscc(text: str) -> str:
    """``text`` if it is an 18-digit SSCC (AI 00) with a valid check digit."""
    _digits_with_check("sscc", text, (SSCC_LENGTH,))
    return text


def with_check_digit(body: str) -> str:
    """``body`` followed by its GS1 check digit (a GTIN or SSCC without its last digit)."""
    return body + check_digit(body)


def validate_text(part: str, label: str, text: str) -> str:
    """``text`` if it is 1 to 20 characters of CSET 82 (an AI 10, 21 or 710-715 value).

    ``label`` names the field in the message, e.g. ``"AI 21 serial"``.
    """
    if not text:
        raise InvalidGs1(part, f"{label} is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidGs1(
            part,
            f"{label} {shown(text)}: {len(text)} characters, at most {MAX_TEXT_LENGTH}",
        )
    for position, char in enumerate(text, start=1):
        if char not in CSET82:
            raise InvalidGs1(
                part,
                f"{label} {shown(text)}: character {position} {char!r} is not in "
                "GS1 character set 82",
            )
    return text
