"""Helpers for the QR tests: the example pack, images made and damaged in memory.

The example pack is GS1's usual one: GTIN ``09506000134352`` (GS1 Digital
Link Resolver CE's test product, see tests/standards/gs1/testdata/README.md)
with the lot, expiry and serial of the element string
``(01)09506000134352(17)201225(10)ABC123(21)XYZ``.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import Any

import zxingcpp
from PIL import Image

from carechain.standards.gs1 import Gs1Data, hri
from carechain.standards.qr import qr_png

PACK = Gs1Data.from_elements(
    [("01", "09506000134352"), ("17", "201225"), ("10", "ABC123"), ("21", "XYZ")]
)
OTHER_PACK = Gs1Data(gtin="09506000134376", serial="12345")
"""The Resolver CE's second GTIN, with the serial of the DL standard's examples."""

TRACE_CODE = "81234567890123456789"
"""A made-up 20-digit 药品追溯码 (tests/standards/gs1/testdata/README.md, "synthetic")."""


def image_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def encoded(image: Image.Image, kind: str = "PNG", **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=kind, **options)
    return out.getvalue()


def qr_image(content: str | Gs1Data, scale: int = 6) -> Image.Image:
    return image_of(qr_png(content, scale=scale)).convert("L")


def zxing_image(
    content: str, symbology: zxingcpp.BarcodeFormat, scale: int = 6, **options: Any
) -> Image.Image:
    """A barcode drawn by zxing-cpp's writer (zint inside): DataMatrix, Code 128, EAN-13, QR."""
    barcode = zxingcpp.create_barcode(content, symbology, **options)
    return Image.fromarray(zxingcpp.write_barcode_to_image(barcode, scale=scale))


def gs1_datamatrix(data: Gs1Data, *, square: bool = True) -> Image.Image:
    """A GS1 DataMatrix of ``data``; ``square=False`` lets zint pick a rectangle (DMRE)."""
    return zxing_image(hri(data), zxingcpp.BarcodeFormat.DataMatrix, gs1=True, forceSquare=square)


def photo(code: Image.Image, size: tuple[int, int] = (900, 700)) -> Image.Image:
    """``code`` tilted on a noisy, coloured background, as a phone might see it."""
    width, height = size
    rng = random.Random(18004)  # the same noise on every run
    noise = [
        Image.frombytes("L", size, rng.randbytes(width * height)).point(lambda v, s=s: v // 2 + s)
        for s in (60, 90, 30)
    ]
    background = Image.merge("RGB", noise)
    tint = Image.linear_gradient("L").resize(size).convert("RGB")
    background = Image.blend(background, tint, 0.3)
    tilted = code.convert("RGB").rotate(8, expand=True, fillcolor="white")
    background.paste(tilted, (width // 3, height // 5))
    return background


def side_by_side(*images: Image.Image, gap: int = 40) -> Image.Image:
    width = sum(image.width for image in images) + gap * (len(images) + 1)
    height = max(image.height for image in images) + 2 * gap
    canvas = Image.new("L", (width, height), "white")
    x = gap
    for image in images:
        canvas.paste(image.convert("L"), (x, gap))
        x += image.width + gap
    return canvas


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` 8-bit grey pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
