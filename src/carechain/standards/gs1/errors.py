"""The one error of the GS1 codec: ``InvalidGs1``, an ``InvalidInput`` naming the failing part."""

from __future__ import annotations

from carechain.errors import InvalidInput

PARTS = (
    "gtin",
    "sscc",
    "serial",
    "lot",
    "expiry",
    "production_date",
    "nhrn",
    "ai",
    "element_string",
    "digital_link",
    "cn_trace",
    "pack_code",
)
"""Every value ``InvalidGs1.part`` can take (see the package docstring)."""

_SHOWN = 48


class InvalidGs1(InvalidInput):
    """A GS1 key, date, element string, Digital Link URI or traceability code that is wrong.

    ``part`` is one of ``PARTS`` and says which component failed; the message
    is one line that names it in words and says what is wrong.
    """

    code = "invalid_gs1"

    def __init__(self, part: str, message: str) -> None:
        assert part in PARTS, part
        super().__init__(message)
        self.part = part


def shown(value: str) -> str:
    """``value`` as it may appear in a message: control characters escaped, long text cut."""
    text = value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
    if text.isprintable() and text.isascii() and " " not in text:
        return text
    return ascii(text)
