"""China's drug traceability code (药品追溯码) as a pack identifier.

What the rules say, and what is checked here:

* NMPA/T 1002-2019 《药品追溯码编码要求》 (NMPA, April 2019, published with
  NMPA/T 1001-2019 《药品信息化追溯体系建设导则》): a drug traceability code
  uniquely identifies one sales packaging unit (3.1); it holds a product
  identification code (药品标识码) and a production identification code
  (生产标识码, at least the unit's serial number, optionally batch, production
  date and expiry); it carries a check character; and it meets **one** of:
  "编码长度为20个字符，前7位为药品标识码" (20 characters, the first 7 being the
  product identification code), or coding to the relevant ISO international
  standards (in practice GS1: see ``PackId.sgtin``).
* National Healthcare Security Administration (国家医保局), seven questions
  and answers on drug traceability codes (七问七答), its WeChat account,
  6 December 2024: the traceability code on a box is generally a
  20-digit number labelled "药品追溯码"; the commodity barcode (商品码) is
  commonly 13 digits starting with "69", and is not a traceability code.
  (The "69" is the GS1 prefix range 690-699 of GS1 China.)

Checked: exactly 20 characters, all ASCII digits (after trimming scanner
whitespace and control characters at the ends); the first 7 are exposed as
``product_code``. NOT checked, because the sources found do not say how: the
check character's algorithm (the standard requires one but leaves its
calculation to the code issuer), and the layout of the 13 characters after
the product code. The standard allows letters and symbols in principle; the
codes in use (码上放心, formerly 中国药品电子监管码) are 20 digits, as NHSA says,
so a code with a letter is refused here.
"""

from __future__ import annotations

from carechain.standards.gs1.element_string import MAX_SCAN_LENGTH, trim_scan
from carechain.standards.gs1.errors import InvalidGs1, shown

CN_TRACE_LENGTH = 20
CN_PRODUCT_CODE_LENGTH = 7
"""The 药品标识码 is the first 7 characters of a 20-character code."""

_DIGITS = frozenset("0123456789")


def validate_cn_trace_code(code: str) -> str:
    """``code`` if it is exactly 20 ASCII digits (no trimming); else ``InvalidGs1("cn_trace")``."""
    label = "drug traceability code (药品追溯码)"
    if not code:
        raise InvalidGs1("cn_trace", f"{label} is empty")
    for position, char in enumerate(code, start=1):
        if char not in _DIGITS:
            raise InvalidGs1(
                "cn_trace",
                f"{label} {shown(code)}: character {position} {char!r} is not a digit",
            )
    if len(code) != CN_TRACE_LENGTH:
        raise InvalidGs1(
            "cn_trace", f"{label} {shown(code)}: {len(code)} digits, expected {CN_TRACE_LENGTH}"
        )
    return code


def parse_cn_trace_code(text: str) -> str:
    """The 20-digit code in a scan of a 药品追溯码, trimmed of scanner whitespace and controls."""
    if len(text) > MAX_SCAN_LENGTH:
        raise InvalidGs1("cn_trace", f"{len(text)} characters; a scan is at most {MAX_SCAN_LENGTH}")
    return validate_cn_trace_code(trim_scan(text))
