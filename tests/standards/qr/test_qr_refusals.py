"""Every refusal of ``read_codes`` and ``read_pack``: its class, code and message.

One table: a description, how the upload is made, the error it must raise
and a fragment of its message.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from qr_support import encoded, photo, png_declaring, qr_image, side_by_side, zxing_image

from carechain.errors import InvalidInput
from carechain.standards.gs1 import InvalidGs1
from carechain.standards.qr import (
    MAX_IMAGE_BYTES,
    ImageTooLarge,
    InvalidQr,
    NoCodeFound,
    NotAnImage,
    NotAPackCode,
    UnreadableImage,
    qr_png,
    read_codes,
    read_pack,
)


@dataclass(frozen=True)
class Refusal:
    description: str
    upload: Callable[[], bytes]
    error: type[InvalidQr]
    fragment: str


def _truncated_png() -> bytes:
    png = qr_png("https://id.gs1.org/01/09506000134352/21/XYZ")
    return png[: len(png) // 2]


def _gif() -> bytes:
    out = io.BytesIO()
    qr_image("https://id.gs1.org/01/09506000134352/21/XYZ").save(out, format="GIF")
    return out.getvalue()


REFUSALS = [
    Refusal("empty upload", lambda: b"", NotAnImage, "the upload is empty"),
    Refusal("text, not an image", lambda: b"not an image at all", NotAnImage, "not a PNG, JPEG"),
    Refusal("a PNG signature then garbage", lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
            NotAnImage, "not a PNG, JPEG or WebP image"),
    Refusal("a GIF: a real image, not an accepted format", _gif, NotAnImage, "not a PNG"),
    Refusal("bytes over the limit, checked before anything else",
            lambda: b"\x89PNG" + b"\x00" * MAX_IMAGE_BYTES, ImageTooLarge, "bytes; at most"),
    Refusal("49 megapixels declared: our limit", lambda: png_declaring(7000, 7000),
            ImageTooLarge, "7000 x 7000 = 49,000,000 pixels"),
    Refusal("100 megapixels declared: Pillow's warning", lambda: png_declaring(10_000, 10_000),
            ImageTooLarge, "more than 40,000,000 pixels"),
    Refusal("10 gigapixels declared: Pillow's error", lambda: png_declaring(100_000, 100_000),
            ImageTooLarge, "more than 40,000,000 pixels"),
    Refusal("a PNG cut in half", _truncated_png, UnreadableImage, "damaged or truncated"),
    Refusal("a blank white image", lambda: encoded(Image.new("L", (400, 300), "white")),
            NoCodeFound, "no QR code, DataMatrix or barcode found"),
    Refusal("a noisy photo without a code",
            lambda: encoded(photo(Image.new("L", (200, 200), "white")), "JPEG"),
            NoCodeFound, "no QR code"),
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS, ids=lambda case: case.description)
def test_refused_upload(case: Refusal) -> None:
    upload = case.upload()
    for read in (read_codes, read_pack):
        with pytest.raises(case.error, match=re.escape(case.fragment)) as caught:
            read(upload)
        assert isinstance(caught.value, InvalidInput)
        assert caught.value.code == case.error.code
        assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("side", "cause"),
    [
        (7000, None),
        (10_000, Image.DecompressionBombWarning),
        (100_000, Image.DecompressionBombError),
    ],
)
def test_each_pixel_guard_refuses_the_same_way(side: int, cause: type[Exception] | None) -> None:
    """Ours below Pillow's limit, Pillow's warning past it, Pillow's error past twice it."""
    with pytest.raises(ImageTooLarge) as caught:
        read_codes(png_declaring(side, side))
    assert type(caught.value.__cause__) is (cause or type(None))


def test_image_too_large_is_http_413() -> None:
    with pytest.raises(ImageTooLarge) as caught:
        read_codes(png_declaring(7000, 7000))
    assert (caught.value.code, caught.value.http_status) == ("image_too_large", 413)
    assert NoCodeFound("x").to_dict() == {"code": "no_code_found", "message": "x"}


@pytest.mark.parametrize(
    ("content", "part", "fragment"),
    [
        ("https://example.com", "digital_link", "the QR code holds https://example.com, not a "
         "drug pack code: no path after the domain"),
        ("6901234567892", "pack_code", "retail barcode (商品条码, EAN-13 with GS1 China "
         "prefix 69)"),
        ("https://id.gs1.org/01/09506000134352", "pack_code", "has no AI 21 serial number"),
        ("hello", "pack_code", "hello is not a pack code"),
    ],
    ids=["non-gs1-url", "retail-ean", "gtin-without-serial", "plain-text"],
)  # fmt: skip
def test_qr_code_that_is_not_a_pack_code(content: str, part: str, fragment: str) -> None:
    image = qr_png(content)
    assert [code.text for code in read_codes(image)] == [content]
    with pytest.raises(NotAPackCode) as caught:
        read_pack(image)
    refusal = caught.value
    assert fragment in refusal.message
    assert refusal.code == "not_a_pack_code"
    assert refusal.texts == (content,)
    assert [reason.part for reason in refusal.reasons] == [part]
    assert isinstance(refusal.__cause__, InvalidGs1)


def test_retail_ean_13_barcode_is_named() -> None:
    image = encoded(zxing_image("6901234567892", zxingcpp.BarcodeFormat.EAN13, scale=3))
    with pytest.raises(NotAPackCode, match=r"^the EAN-13 barcode holds 6901234567892, not a drug"):
        read_pack(image)


def test_several_codes_none_a_pack_code() -> None:
    image = encoded(side_by_side(qr_image("https://example.com"), qr_image("hello")))
    with pytest.raises(
        NotAPackCode, match=r"^none of the 2 codes in the image is a drug pack code"
    ):
        read_pack(image)


DAMAGEABLE = {
    kind: encoded(qr_image("https://id.gs1.org/01/09506000134352/21/XYZ"), kind)
    for kind in ("PNG", "JPEG", "WEBP")
}


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(DAMAGEABLE)),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    st.floats(0.01, 1),
)
def test_damaged_images_raise_only_invalid_qr(
    kind: str, flips: list[tuple[float, int]], kept: float
) -> None:
    """Bytes overwritten and the end cut off: a code, or one of this package's refusals."""
    upload = bytearray(DAMAGEABLE[kind])
    for where, value in flips:
        upload[int(where * len(upload))] = value
    with contextlib.suppress(InvalidQr):
        read_codes(bytes(upload[: max(1, int(kept * len(upload)))]))
