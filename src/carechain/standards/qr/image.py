"""Loading an uploaded photo or screenshot with Pillow, with the work bounded before decoding.

An upload is untrusted: a few kilobytes of PNG or JPEG can declare a
gigapixel image (a decompression bomb). ``load_image`` therefore

1. refuses more than ``MAX_IMAGE_BYTES`` bytes;
2. reads only the header, and only of the formats in ``ACCEPTED_FORMATS``
   (Pillow knows dozens; each is attack surface);
3. refuses more than ``MAX_IMAGE_PIXELS`` pixels before decoding any;
4. decodes, refusing a damaged or truncated image;
5. flattens transparency onto white and converts to 8-bit grayscale, what
   the barcode reader works on.

Pillow's own guard (``Image.MAX_IMAGE_PIXELS``, a warning past about 89
megapixels and an error past twice that) is left as it is for the rest of
the process; its warning is turned into ``ImageTooLarge`` here, so a bomb is
refused the same way whichever check sees it first.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image

from carechain.standards.qr.errors import ImageTooLarge, NotAnImage, UnreadableImage

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
"""Pillow format names read: photos (JPEG), screenshots (PNG) and web images (WebP)."""

MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""20 MiB: more than a phone photo, less than a denial of service."""

MAX_IMAGE_PIXELS = 40_000_000
"""40 megapixels: a 48-megapixel phone sensor saves 12-megapixel photos by default."""


def load_image(data: bytes) -> Image.Image:
    """The image in ``data`` as an 8-bit grayscale (mode ``L``) Pillow image, decoded.

    Raises ``NotAnImage`` (empty, or not one of ``ACCEPTED_FORMATS``),
    ``ImageTooLarge`` or ``UnreadableImage``.
    """
    # 1. Bound the bytes.
    if not data:
        raise NotAnImage("the upload is empty: expected a PNG, JPEG or WebP image")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLarge(
            f"the image is {len(data):,} bytes; at most {MAX_IMAGE_BYTES:,} are read"
        )
    # 2. Identify the format from the header.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageTooLarge(
                f"the image declares more than {MAX_IMAGE_PIXELS:,} pixels ({exc})"
            ) from exc
        except (OSError, ValueError, SyntaxError) as exc:  # UnidentifiedImageError is an OSError
            raise NotAnImage(
                f"the upload is not a PNG, JPEG or WebP image ({len(data):,} bytes)"
            ) from exc
    # 3. Bound the pixels before decoding them.
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(
            f"the image is {width} x {height} = {width * height:,} pixels; "
            f"at most {MAX_IMAGE_PIXELS:,} are read"
        )
    if width == 0 or height == 0:
        raise UnreadableImage(f"the {image.format} image is {width} x {height} pixels: empty")
    # 4. Decode.
    try:
        image.load()
        # 5. Flatten onto white and convert to grayscale.
        if image.has_transparency_data:
            white = Image.new("RGBA", image.size, "white")
            return Image.alpha_composite(white, image.convert("RGBA")).convert("L")
        return image.convert("L")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UnreadableImage(
            f"the {image.format} image ({width} x {height}) is damaged or truncated: {exc}"
        ) from exc
