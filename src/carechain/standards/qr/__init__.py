"""QR codes of a drug pack's GS1 Digital Link, and reading pack codes back from photos.

Two directions, no storage and no network (the bytes come from the caller):

* **Generate** (segno): ``qr_png`` and ``qr_svg`` draw the QR code of a
  text, of ``Gs1Data`` (its GS1 Digital Link URI under a resolver, by
  ``gs1.digital_link``) or of a ``PackId``; ``qr_content`` says what text
  that is.
* **Read** (Pillow to load, zxing-cpp to find and decode): ``read_codes``
  returns every QR code, DataMatrix, Code 128 and EAN-13 in a PNG, JPEG or
  WebP image as ``DecodedCode``s; ``read_pack`` reads them with
  ``gs1.parse_pack_code`` and returns the ``ScannedPack``.

What callers may rely on:

* Every refusal is an ``InvalidQr`` (an ``InvalidInput``, HTTP 400 unless
  said) with a stable ``code`` and a one-line message saying what is wrong
  and, for a photo, what to do: ``invalid_qr_content`` (empty, over
  ``MAX_CONTENT_LENGTH`` characters, control characters), ``invalid_qr``
  (a bad scale or error level), ``not_an_image``, ``image_too_large``
  (HTTP 413; over ``MAX_IMAGE_BYTES`` or ``MAX_IMAGE_PIXELS``, checked
  before any pixel is decoded), ``unreadable_image``, ``no_code_found``,
  ``not_a_pack_code`` (carries the ``InvalidGs1`` of each code, and chains
  the first), ``several_packs``. ``read_codes``, ``read_pack`` and
  ``load_image`` raise nothing else for any ``bytes``.
* A generated code always reads back: ``read_pack(qr_png(data))`` gives
  ``data``'s pack, lot and dates (``tests/standards/qr``).
* A GS1 element string read from a DataMatrix, GS1 QR code or GS1-128 is
  announced by its GS1 symbology identifier (``]d2``, ``]Q3``, ``]C1``), as
  a hand scanner would send it, so ``parse_pack_code`` sees the same text
  from a photo as from a scanner.
"""

from __future__ import annotations

from carechain.standards.qr.errors import (
    ImageTooLarge,
    InvalidQr,
    InvalidQrContent,
    NoCodeFound,
    NotAnImage,
    NotAPackCode,
    SeveralPacks,
    UnreadableImage,
)
from carechain.standards.qr.generate import (
    DEFAULT_SCALE,
    ERROR_LEVELS,
    MAX_CONTENT_LENGTH,
    MAX_SCALE,
    QUIET_ZONE,
    ErrorLevel,
    QrContent,
    qr_content,
    qr_png,
    qr_svg,
)
from carechain.standards.qr.image import (
    ACCEPTED_FORMATS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    load_image,
)
from carechain.standards.qr.read import READ_FORMATS, DecodedCode, read_codes, read_pack

__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_SCALE",
    "ERROR_LEVELS",
    "MAX_CONTENT_LENGTH",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_SCALE",
    "QUIET_ZONE",
    "READ_FORMATS",
    "DecodedCode",
    "ErrorLevel",
    "ImageTooLarge",
    "InvalidQr",
    "InvalidQrContent",
    "NoCodeFound",
    "NotAPackCode",
    "NotAnImage",
    "QrContent",
    "SeveralPacks",
    "UnreadableImage",
    "load_image",
    "qr_content",
    "qr_png",
    "qr_svg",
    "read_codes",
    "read_pack",
]
