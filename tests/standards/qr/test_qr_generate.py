"""Generating QR codes: what they hold, PNG and SVG output, print settings, refusals."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from qr_support import PACK, TRACE_CODE, image_of

from carechain.standards.gs1 import PackId, digital_link
from carechain.standards.qr import (
    MAX_CONTENT_LENGTH,
    QUIET_ZONE,
    InvalidQr,
    InvalidQrContent,
    qr_content,
    qr_png,
    qr_svg,
    read_codes,
    read_pack,
)

SVG = "{http://www.w3.org/2000/svg}"
URI = "https://id.gs1.org/01/09506000134352/10/ABC123/21/XYZ?17=201225"


def test_content_of_gs1_data_is_its_digital_link() -> None:
    assert qr_content(PACK) == URI == digital_link(PACK)
    assert qr_content(PACK, "https://example.com/dl") == digital_link(
        PACK, "https://example.com/dl"
    )


def test_content_of_a_pack_id() -> None:
    sgtin = PackId.sgtin("09506000134352", "XYZ")
    assert qr_content(sgtin) == "https://id.gs1.org/01/09506000134352/21/XYZ"
    assert qr_content(PackId.cn_trace(TRACE_CODE)) == TRACE_CODE


def test_png_reads_back_as_the_pack() -> None:
    png = qr_png(PACK)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    scanned = read_pack(png)
    assert scanned.form == "digital_link"
    assert scanned.pack.key == "sgtin:09506000134352.XYZ"
    assert (scanned.lot, scanned.expiry, scanned.data) == ("ABC123", PACK.expiry, PACK)


@pytest.mark.parametrize(
    ("pack", "form"),
    [
        (PackId.sgtin("09506000134376", "12345"), "digital_link"),
        (PackId.cn_trace(TRACE_CODE), "cn_trace"),
    ],
    ids=["sgtin", "cn-trace"],
)
def test_pack_id_reads_back(pack: PackId, form: str) -> None:
    scanned = read_pack(qr_png(pack))
    assert (scanned.pack, scanned.form) == (pack, form)


def test_png_has_a_white_quiet_zone_of_four_modules() -> None:
    scale = 5
    image = image_of(qr_png(URI, scale=scale)).convert("L")
    margin = QUIET_ZONE * scale
    assert image.width == image.height and image.width % scale == 0
    for box in [
        (0, 0, image.width, margin),
        (0, 0, margin, image.height),
        (0, image.height - margin, image.width, image.height),
        (image.width - margin, 0, image.width, image.height),
    ]:
        assert image.crop(box).getextrema() == (255, 255), box
    # The finder pattern's dark corner starts right inside the quiet zone.
    assert image.getpixel((margin, margin)) == 0


def test_error_correction_is_at_least_m_by_default_and_as_asked() -> None:
    def level(png: bytes) -> str:
        found = zxingcpp.read_barcode(image_of(png))
        assert found is not None
        return found.ec_level

    assert level(qr_png(URI)) in ("M", "Q", "H")  # segno raises it when it fits for free
    assert level(qr_png(URI, error="H")) == "H"


def test_short_text_still_gets_a_full_qr_code_not_micro_qr() -> None:
    (code,) = read_codes(qr_png("12345"))
    assert (code.format, code.text) == ("QRCode", "12345")


def test_chinese_text_reads_back() -> None:
    text = "药品追溯码 " + TRACE_CODE
    (code,) = read_codes(qr_png(text))
    assert code.text == text


def test_svg_is_standalone_xml_with_a_title() -> None:
    svg = qr_svg(PACK, scale=4)
    assert svg.startswith('<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == SVG + "svg"
    assert root.findtext(SVG + "title") == "QR code: " + URI
    assert len(root.findall(SVG + "path")) == 1


def test_svg_title_is_escaped() -> None:
    root = ET.fromstring(qr_svg(URI, title="Pack <A&B> 药").encode("utf-8"))
    assert root.findtext(SVG + "title") == "Pack <A&B> 药"


def test_svg_draws_the_same_modules_as_the_png() -> None:
    """Every dark module of the PNG (at one pixel per module) is one unit of an SVG run."""
    png = image_of(qr_png(URI, scale=1)).convert("L")
    dark_pixels = png.histogram()[0]
    root = ET.fromstring(qr_svg(URI, scale=1).encode("utf-8"))
    path = root.find(SVG + "path")
    assert path is not None
    runs = re.findall(r"h(\d+)", path.attrib["d"])
    assert sum(int(run) for run in runs) == dark_pixels
    assert (int(root.attrib["width"]), int(root.attrib["height"])) == png.size


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("x" * (MAX_CONTENT_LENGTH + 1), f"has {MAX_CONTENT_LENGTH + 1} characters"),
        ("https://id.gs1.org/01/09506000134352\n/21/XYZ", "control character '\\n'"),
        ("https://id.gs1.org/\x00", "control character '\\x00'"),
        ("\ud800", "lone surrogate"),
    ],
    ids=["empty", "blank", "too-long", "newline", "nul", "lone-surrogate"],
)
def test_refused_content(content: str, fragment: str) -> None:
    with pytest.raises(InvalidQrContent, match=re.escape(fragment)) as caught:
        qr_png(content)
    assert caught.value.code == "invalid_qr_content"
    with pytest.raises(InvalidQrContent):
        qr_svg(content)


def test_content_of_the_longest_length_is_accepted() -> None:
    assert qr_png("x" * MAX_CONTENT_LENGTH, scale=1)


def test_content_too_long_for_the_error_level_is_refused() -> None:
    text = "💊" * 400  # 1,600 UTF-8 bytes: fits level M, not H (1,273 bytes at version 40)
    assert qr_png(text, scale=1, error="M")
    with pytest.raises(InvalidQrContent, match="does not fit in a QR code at error correction"):
        qr_png(text, error="H")


@pytest.mark.parametrize("scale", [0, -1, 41, True, 2.5])
def test_refused_scale(scale: int) -> None:
    with pytest.raises(InvalidQr, match="scale"):
        qr_png(URI, scale=scale)
    with pytest.raises(InvalidQr, match="scale"):
        qr_svg(URI, scale=scale)


def test_refused_error_level() -> None:
    with pytest.raises(InvalidQr, match="error correction level 'X'"):
        qr_png(URI, error="X")  # type: ignore[arg-type]
