"""QR codes for a drug pack's GS1 Digital Link URI, as PNG bytes or SVG text.

Drawn with segno, a pure-Python encoder of ISO/IEC 18004 QR codes, with
settings for print:

* always a full QR code, never a Micro QR code (segno's ``make`` would pick
  one for short text, and many phone cameras do not read Micro QR);
* error correction level M by default (about 15 % of the symbol may be
  damaged), raised by segno when a higher level fits in the same version;
* a quiet zone of 4 modules on every side, the width ISO/IEC 18004 requires
  for a QR code (section 9.1 of the 2015 edition, from memory of the text);
* ``scale`` pixels (PNG) or user units (SVG) per module, 1 to ``MAX_SCALE``.

The text is refused (``InvalidQrContent``) when empty or blank, longer than
``MAX_CONTENT_LENGTH`` characters, holding control characters, or too long
for a QR code at the chosen error level.
"""

from __future__ import annotations

import io
import unicodedata
from typing import Literal

import segno

from carechain.standards.gs1 import DEFAULT_RESOLVER, Gs1Data, PackId, digital_link
from carechain.standards.gs1.errors import shown
from carechain.standards.qr.errors import InvalidQr, InvalidQrContent

ErrorLevel = Literal["L", "M", "Q", "H"]
ERROR_LEVELS: tuple[ErrorLevel, ...] = ("L", "M", "Q", "H")

QrContent = str | Gs1Data | PackId
"""What a QR code can be made for: its text, GS1 data (as a Digital Link URI), or a pack."""

MAX_CONTENT_LENGTH = 512
"""Longest text put in a QR code. A GS1 Digital Link URI of a pack is under 200 characters;
the cap keeps the symbol small enough to print on a pack and scan from a phone."""

QUIET_ZONE = 4
"""Light modules around the symbol (ISO/IEC 18004: the quiet zone is 4X wide)."""

DEFAULT_SCALE = 8
MAX_SCALE = 40
"""Largest module size: a version 40 symbol (177 modules) is then 7,400 pixels wide."""


def qr_content(content: QrContent, resolver: str = DEFAULT_RESOLVER) -> str:
    """The text a QR code for ``content`` holds, checked.

    A ``str`` is taken as it is. ``Gs1Data`` becomes its GS1 Digital Link URI
    under ``resolver`` (``gs1.digital_link``). A ``PackId`` of scheme
    ``sgtin`` becomes the URI of its GTIN and serial; one of scheme
    ``cn-trace`` becomes its 20 digits, which ``parse_pack_code`` reads back
    as a 药品追溯码 (China's codes have no Digital Link form).
    """
    if isinstance(content, Gs1Data):
        text = digital_link(content, resolver)
    elif isinstance(content, PackId):
        if content.gtin is not None and content.serial is not None:
            text = digital_link(Gs1Data(gtin=content.gtin, serial=content.serial), resolver)
        else:
            text = content.value
    else:
        text = content
    _check_text(text)
    return text


def _check_text(text: str) -> None:
    if not text.strip():
        raise InvalidQrContent("the text for the QR code is empty")
    if len(text) > MAX_CONTENT_LENGTH:
        raise InvalidQrContent(
            f"the text for the QR code has {len(text)} characters; "
            f"at most {MAX_CONTENT_LENGTH} are put in one"
        )
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category in ("Cc", "Cs"):
            kind = "control character" if category == "Cc" else "lone surrogate (not Unicode text)"
            raise InvalidQrContent(
                f"the text for the QR code holds the {kind} {char!r} at position {index}: "
                f"{shown(text)}"
            )


def _symbol(content: QrContent, error: ErrorLevel, resolver: str) -> segno.QRCode:
    text = qr_content(content, resolver)
    if error not in ERROR_LEVELS:
        raise InvalidQr(f"error correction level {error!r}: expected one of L, M, Q, H")
    try:
        return segno.make_qr(text, error=error)
    except segno.DataOverflowError as exc:
        raise InvalidQrContent(
            f"the text for the QR code ({len(text)} characters) does not fit in a QR code "
            f"at error correction level {error}"
        ) from exc


def _check_scale(scale: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise InvalidQr(f"scale {scale!r}: expected a whole number of pixels from 1 to {MAX_SCALE}")


def qr_png(
    content: QrContent,
    *,
    scale: int = DEFAULT_SCALE,
    error: ErrorLevel = "M",
    resolver: str = DEFAULT_RESOLVER,
) -> bytes:
    """A PNG image of the QR code for ``content`` (see ``qr_content``): black on white.

    ``scale`` is pixels per module; the image is ``(modules + 8) * scale``
    pixels square, the quiet zone included.
    """
    _check_scale(scale)
    symbol = _symbol(content, error, resolver)
    out = io.BytesIO()
    symbol.save(out, kind="png", scale=scale, border=QUIET_ZONE)
    return out.getvalue()


def qr_svg(
    content: QrContent,
    *,
    scale: int = DEFAULT_SCALE,
    error: ErrorLevel = "M",
    title: str | None = None,
    resolver: str = DEFAULT_RESOLVER,
) -> str:
    """A standalone SVG document (XML declaration, SVG namespace) of the QR code for ``content``.

    ``title`` becomes the SVG's ``<title>``, its accessible name (escaped by
    segno); by default ``QR code: <text>``. The dark modules are one
    ``<path>``; ``width`` and ``height`` are ``(modules + 8) * scale``.
    """
    _check_scale(scale)
    symbol = _symbol(content, error, resolver)
    name = title if title is not None else f"QR code: {qr_content(content, resolver)}"
    out = io.BytesIO()
    symbol.save(
        out,
        kind="svg",
        scale=scale,
        border=QUIET_ZONE,
        title=name,
        xmldecl=True,
        svgns=True,
        encoding="utf-8",
    )
    return out.getvalue().decode("utf-8")
