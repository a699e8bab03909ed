"""Reading codes back from images as a phone or a screenshot gives them.

Every image is made in memory from a generated code and then turned,
resized, compressed or pasted on a noisy background.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import zxingcpp
from PIL import Image
from qr_support import (
    OTHER_PACK,
    PACK,
    TRACE_CODE,
    encoded,
    gs1_datamatrix,
    photo,
    qr_image,
    side_by_side,
    zxing_image,
)

from carechain.standards.gs1 import PackId, digital_link, element_string
from carechain.standards.qr import SeveralPacks, load_image, qr_png, read_codes, read_pack

URI = digital_link(PACK)
Transform = Callable[[Image.Image], Image.Image]

TRANSFORMS: dict[str, tuple[Transform, str]] = {
    "rotated-90": (lambda im: im.rotate(90, expand=True, fillcolor="white"), "PNG"),
    "rotated-180": (lambda im: im.rotate(180, expand=True, fillcolor="white"), "PNG"),
    "rotated-17": (
        lambda im: im.rotate(17, Image.Resampling.BICUBIC, expand=True, fillcolor="white"),
        "PNG",
    ),
    # 6 pixels per module down to 2.4: a small code in a screenshot.
    "scaled-down": (
        lambda im: im.resize((im.width * 2 // 5, im.height * 2 // 5), Image.Resampling.BILINEAR),
        "PNG",
    ),
    "scaled-up": (lambda im: im.resize((im.width * 3, im.height * 3)), "PNG"),
    "jpeg-quality-25": (lambda im: im, "JPEG"),
    "photo": (photo, "JPEG"),
    "webp": (lambda im: im, "WEBP"),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_qr_code_reads_back_after(name: str) -> None:
    transform, kind = TRANSFORMS[name]
    options = {"quality": 25} if kind == "JPEG" else {}
    image = encoded(transform(qr_image(PACK)), kind, **options)
    (code,) = read_codes(image)
    assert (code.text, code.format, code.gs1) == (URI, "QRCode", False)
    assert read_pack(image).data == PACK


@pytest.mark.parametrize(
    "mode", ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16"], ids=lambda m: f"mode-{m}"
)
def test_every_pixel_mode_reads(mode: str) -> None:
    kind = "JPEG" if mode == "CMYK" else "PNG"
    image = encoded(qr_image(URI).convert(mode), kind)
    assert [code.text for code in read_codes(image)] == [URI]


def test_transparent_background_is_read_as_white() -> None:
    """Light modules of transparent black: converting to grey without flattening sees no code."""
    code = qr_image(URI)
    clear = Image.new("RGBA", code.size, (0, 0, 0, 0))
    clear.putalpha(code.point(lambda v: 255 - v))  # opaque where dark, transparent where light
    image = encoded(clear)
    assert clear.convert("L").getextrema() == (0, 0)
    assert load_image(image).getextrema() == (0, 255)
    assert [c.text for c in read_codes(image)] == [URI]


def test_two_codes_in_reading_order() -> None:
    image = encoded(side_by_side(qr_image(OTHER_PACK), qr_image(PACK)))
    texts = [code.text for code in read_codes(image)]
    assert texts == [digital_link(OTHER_PACK), URI]


def test_codes_of_two_packs_are_refused() -> None:
    image = encoded(side_by_side(qr_image(PACK), qr_image(OTHER_PACK)))
    with pytest.raises(SeveralPacks, match="2 different packs") as caught:
        read_pack(image)
    assert caught.value.keys == ("sgtin:09506000134352.XYZ", "sgtin:09506000134376.12345")
    assert caught.value.code == "several_packs"


def test_qr_and_datamatrix_of_one_pack_give_that_pack() -> None:
    image = encoded(side_by_side(qr_image(PACK), gs1_datamatrix(PACK)))
    assert len(read_codes(image)) == 2
    scanned = read_pack(image)
    assert (scanned.pack.key, scanned.data) == ("sgtin:09506000134352.XYZ", PACK)


def test_retail_barcode_beside_the_pack_code_is_passed_over() -> None:
    ean = zxing_image("6901234567892", zxingcpp.BarcodeFormat.EAN13, scale=3)
    image = encoded(side_by_side(ean, qr_image(PACK)))
    assert read_pack(image).data == PACK


def test_gs1_datamatrix_is_announced_as_d2() -> None:
    image = encoded(gs1_datamatrix(PACK))
    (code,) = read_codes(image)
    assert code.text == element_string(PACK, symbology_id="]d2")
    assert code.text == "]d2010950600013435217201225" + "10ABC123\x1d21XYZ"
    assert (code.format, code.symbology_identifier, code.gs1) == ("DataMatrix", "]d2", True)
    assert code.described == "GS1 DataMatrix"
    scanned = read_pack(image)
    assert (scanned.form, scanned.data) == ("element_string", PACK)


def test_rectangular_dmre_gs1_datamatrix_reported_as_d8_is_announced_as_d2() -> None:
    """zxing-cpp adds 6 to the modifier of a DMRE symbol: ``]d8``, which no GS1 parser knows."""
    dmre = gs1_datamatrix(PACK, square=False)
    assert dmre.width > 3 * dmre.height  # zint chose a rectangle
    (code,) = read_codes(encoded(photo(dmre), "JPEG", quality=80))
    assert code.symbology_identifier == "]d8"
    assert code.text == element_string(PACK, symbology_id="]d2")
    assert read_pack(encoded(dmre)).data == PACK


def test_gs1_qr_code_is_announced_as_q3() -> None:
    image = encoded(
        zxing_image("(01)09506000134352(21)XYZ", zxingcpp.BarcodeFormat.QRCode, gs1=True)
    )
    (code,) = read_codes(image)
    assert (code.text, code.symbology_identifier) == ("]Q3010950600013435221XYZ", "]Q3")
    assert read_pack(image).pack == PackId.sgtin("09506000134352", "XYZ")


def test_trace_code_in_code_128_is_read() -> None:
    """China's 药品追溯码 is printed as a Code 128 barcode of its 20 digits."""
    image = encoded(zxing_image(TRACE_CODE, zxingcpp.BarcodeFormat.Code128, scale=3))
    (code,) = read_codes(image)
    assert (code.text, code.format, code.gs1) == (TRACE_CODE, "Code128", False)
    scanned = read_pack(image)
    assert (scanned.pack.key, scanned.form) == (f"cn-trace:{TRACE_CODE}", "cn_trace")


def test_trace_code_in_a_qr_code_from_qr_png_is_read() -> None:
    assert read_pack(qr_png(PackId.cn_trace(TRACE_CODE))).pack == PackId.cn_trace(TRACE_CODE)
