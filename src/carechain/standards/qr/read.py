"""Finding and decoding the codes on a photographed drug pack, with zxing-cpp.

zxing-cpp reads QR codes (and Micro QR, rMQR), DataMatrix (square and the
rectangular DMRE extension), Code 128 (China's 药品追溯码 is printed as one)
and EAN-13 (the retail barcode, read so that it can be refused by name), in
any rotation, at any scale it can resolve, light on dark too.

What the text of a ``DecodedCode`` is, so that ``parse_pack_code`` reads it
as a scanner's output:

* GS1 content (a GS1 DataMatrix, GS1 QR code or GS1-128: FNC1 in first
  position) is the element string with its GS separators, announced by the
  GS1 symbology identifier of its symbology (``]d2``, ``]Q3``, ``]C1``,
  ``]e0``). zxing-cpp reports a GS1 DMRE symbol as ``]d8`` (it adds 6 to the
  ISO/IEC 15424 modifier for DMRE), which ``parse_pack_code`` would not know
  as GS1, so the identifier is taken from the symbology, not copied.
* Any other content is the text as encoded (bytes decoded by the symbol's
  ECI, or by zxing-cpp's guess), without a symbology identifier: a Digital
  Link URI, a bare 20-digit 药品追溯码, a 13-digit EAN.
"""

from __future__ import annotations

from dataclasses import dataclass

import zxingcpp

from carechain.standards.gs1 import GS1_SYMBOLOGY_IDS, InvalidGs1, ScannedPack, parse_pack_code
from carechain.standards.gs1.errors import shown
from carechain.standards.qr.errors import NoCodeFound, NotAPackCode, SeveralPacks
from carechain.standards.qr.image import load_image

READ_FORMATS = zxingcpp.BarcodeFormats(
    [
        zxingcpp.BarcodeFormat.QRCode,
        zxingcpp.BarcodeFormat.DataMatrix,
        zxingcpp.BarcodeFormat.Code128,
        zxingcpp.BarcodeFormat.EAN13,
    ]
)
"""What ``read_codes`` looks for (zxing-cpp's ``QRCode`` includes Micro QR and rMQR)."""

_GS1_SYMBOLOGY_ID_OF = {sid[1]: sid for sid in GS1_SYMBOLOGY_IDS}
"""ISO/IEC 15424 symbology character -> the identifier that announces GS1 data: d -> ]d2."""


@dataclass(frozen=True)
class DecodedCode:
    """One code found in an image.

    ``text`` is what ``parse_pack_code`` takes (see the module docstring);
    ``format`` is zxing-cpp's name of the symbology (``QRCode``,
    ``DataMatrix``, ``Code128``, ``EAN13``); ``symbology_identifier`` is the
    ISO/IEC 15424 identifier as zxing-cpp reported it (``]Q1``, ``]d2``,
    ``]d8`` ...); ``gs1`` says whether the symbol carries GS1 AI data.
    """

    text: str
    format: str
    symbology_identifier: str
    gs1: bool

    @property
    def described(self) -> str:
        """The kind of code in words: ``QR code``, ``DataMatrix``, ``GS1 DataMatrix``."""
        kind = _DESCRIBED.get(self.format, self.format)
        return f"GS1 {kind}" if self.gs1 else kind


_DESCRIBED = {
    "QRCode": "QR code",
    "MicroQRCode": "Micro QR code",
    "RMQRCode": "rMQR code",
    "DataMatrix": "DataMatrix",
    "Code128": "Code 128 barcode",
    "EAN13": "EAN-13 barcode",
}


def _decoded(barcode: zxingcpp.Barcode) -> DecodedCode:
    identifier = barcode.symbology_identifier
    gs1 = barcode.content_type == zxingcpp.ContentType.GS1
    text = barcode.text
    if gs1:
        prefix = identifier if identifier in GS1_SYMBOLOGY_IDS else ""
        if not prefix and len(identifier) == 3:
            prefix = _GS1_SYMBOLOGY_ID_OF.get(identifier[1], "")
        text = prefix + text
    return DecodedCode(
        text=text, format=barcode.format.name, symbology_identifier=identifier, gs1=gs1
    )


def _top_left_edges(barcode: zxingcpp.Barcode) -> tuple[int, int]:
    corners = barcode.position
    points = (corners.top_left, corners.top_right, corners.bottom_left, corners.bottom_right)
    return min(p.y for p in points), min(p.x for p in points)


def read_codes(image: bytes) -> tuple[DecodedCode, ...]:
    """Every QR code, DataMatrix, Code 128 and EAN-13 in ``image`` (PNG, JPEG or WebP bytes).

    Sorted by each symbol's top edge, then its left edge (in pixels: codes
    side by side whose tops differ by a pixel come top one first). Raises
    what ``load_image`` raises, and ``NoCodeFound``.
    """
    pixels = load_image(image)
    barcodes = zxingcpp.read_barcodes(
        pixels, formats=READ_FORMATS, text_mode=zxingcpp.TextMode.Plain
    )
    if not barcodes:
        raise NoCodeFound(
            "no QR code, DataMatrix or barcode found in the image: photograph the code "
            "straight on, in focus, filling much of the picture"
        )
    return tuple(_decoded(b) for b in sorted(barcodes, key=_top_left_edges))


def read_pack(image: bytes) -> ScannedPack:
    """The drug pack whose code is in ``image``, read by ``parse_pack_code``.

    1. Find and decode every code (``read_codes``).
    2. Read each as a pack code; codes that are not (an EAN-13 beside the
       DataMatrix, a link to a web site) are passed over.
    3. If the pack codes name one pack (a pack may carry a QR code and a
       DataMatrix of the same SGTIN), return the first (``read_codes``'s order).

    Raises what ``read_codes`` raises; ``NotAPackCode`` when no code is a
    pack code (its message carries ``parse_pack_code``'s reason for the
    first); ``SeveralPacks`` when the codes name different packs (a pack's
    SGTIN and its 药品追溯码 count as different: nothing in the codes links them).
    """
    # 1. Decode.
    codes = read_codes(image)
    # 2. Read each as a pack code.
    packs: list[ScannedPack] = []
    refused: list[tuple[DecodedCode, InvalidGs1]] = []
    for code in codes:
        try:
            packs.append(parse_pack_code(code.text))
        except InvalidGs1 as exc:
            refused.append((code, exc))
    # 3. One pack, several, or none.
    keys = tuple(dict.fromkeys(pack.pack.key for pack in packs))
    if len(keys) == 1:
        return packs[0]
    if keys:
        raise SeveralPacks(
            f"the image shows codes of {len(keys)} different packs ({', '.join(keys)}): "
            "photograph one pack at a time",
            keys,
        )
    first, reason = refused[0]
    where = (
        f"the {first.described}"
        if len(codes) == 1
        else f"none of the {len(codes)} codes in the image is a drug pack code; the first, "
        f"a {first.described},"
    )
    message = f"{where} holds {shown(first.text)}, not a drug pack code: {reason.message}"
    raise NotAPackCode(
        message, tuple(code.text for code, _ in refused), tuple(exc for _, exc in refused)
    ) from reason
