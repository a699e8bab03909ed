"""The errors of the QR codec: one ``InvalidInput`` subclass per thing a person can fix.

    InvalidInput
    └── InvalidQr                 base of this package (code ``invalid_qr``)
        ├── InvalidQrContent        text refused for a QR code: empty, too long, control characters
        ├── NotAnImage              bytes that are not a PNG, JPEG or WebP image (or empty)
        ├── ImageTooLarge           over ``MAX_IMAGE_BYTES`` or ``MAX_IMAGE_PIXELS`` (HTTP 413)
        ├── UnreadableImage         an image whose pixel data is damaged or truncated
        ├── NoCodeFound             an image in which no QR, DataMatrix or barcode was found
        ├── NotAPackCode            codes were found, but none is a drug pack code
        └── SeveralPacks            codes of two or more different packs in one image

Each message is one line a pharmacist or patient can act on ("retake the
photo", "this is the retail barcode"); ``code`` is stable for the API's JSON.
"""

from __future__ import annotations

from carechain.errors import InvalidInput
from carechain.standards.gs1 import InvalidGs1


class InvalidQr(InvalidInput):
    code = "invalid_qr"


class InvalidQrContent(InvalidQr):
    code = "invalid_qr_content"


class NotAnImage(InvalidQr):
    code = "not_an_image"


class ImageTooLarge(InvalidQr):
    code = "image_too_large"
    http_status = 413


class UnreadableImage(InvalidQr):
    code = "unreadable_image"


class NoCodeFound(InvalidQr):
    code = "no_code_found"


class NotAPackCode(InvalidQr):
    """Codes were read but none is a pack code.

    ``texts`` are the decoded texts; ``reasons`` the ``InvalidGs1`` each one
    got from ``parse_pack_code``, in the same order.
    """

    code = "not_a_pack_code"

    def __init__(
        self, message: str, texts: tuple[str, ...], reasons: tuple[InvalidGs1, ...]
    ) -> None:
        super().__init__(message)
        self.texts = texts
        self.reasons = reasons


class SeveralPacks(InvalidQr):
    """The image shows codes of different packs; ``keys`` are their ``PackId.key``s."""

    code = "several_packs"

    def __init__(self, message: str, keys: tuple[str, ...]) -> None:
        super().__init__(message)
        self.keys = keys
