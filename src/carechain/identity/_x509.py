"""The X.509 mechanics under ``certificates``: decoding, the shared profile checks, DER walking.

Private to ``carechain.identity``: nothing here knows about organisations or
roles, only about what every carechain certificate must look like (RFC 5280
with Ed25519, RFC 8410). Every failure raises ``InvalidCertificate`` prefixed
with ``where``, the caller's description of the certificate.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import ExtensionOID, NameOID

from carechain.errors import InvalidCertificate

MAX_SERIAL = 2**159 - 1
"""RFC 5280 section 4.1.2.2: a positive serial number of at most 20 octets."""

ED25519_ALGORITHM_ID = bytes.fromhex("300506032b6570")
"""DER AlgorithmIdentifier for Ed25519, parameters absent (RFC 8410 section 3)."""

_ED25519_SIGNATURE_HEADER = bytes.fromhex("034100")
"""BIT STRING of 65 octets: no unused bits, then the 64-byte signature (RFC 8410 section 6)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

KNOWN_EXTENSIONS = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
)
"""Extensions carechain understands; any other marked critical is refused (RFC 5280 4.2)."""

ORG_ATTRIBUTES = {
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.COMMON_NAME: "CN",
    NameOID.BUSINESS_CATEGORY: "businessCategory",
}
MEMBER_ATTRIBUTES = {**ORG_ATTRIBUTES, NameOID.ORGANIZATIONAL_UNIT_NAME: "OU"}

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)

_E = TypeVar("_E", bound=x509.ExtensionType)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of a timezone-aware datetime, exactly."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def iso(time_ms: int) -> str:
    """ISO 8601 text of milliseconds since the epoch, for messages."""
    return (EPOCH + timedelta(milliseconds=time_ms)).isoformat()


def der_of(cert: x509.Certificate) -> bytes:
    """The certificate's DER bytes exactly as they were decoded."""
    return cert.public_bytes(serialization.Encoding.DER)


def parse_certificate(data: bytes | str) -> x509.Certificate:
    """Decode exactly one certificate from PEM (RFC 7468 section 5) or DER.

    The serial number's sign is checked on the raw DER before ``cryptography``
    sees it: ``cryptography`` only warns about a non-positive serial (RFC 5280
    section 4.1.2.2), and changing the process's warning filters here would not
    be thread safe. For the same reason, other oddities ``cryptography`` merely
    warns about (a country name that is not two letters, a negative
    authorityCertSerialNumber) are refused by the profile checks that follow.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    # DER starts with SEQUENCE (0x30) and a long-form length: no certificate fits in
    # 127 bytes. PEM is text, possibly with explanatory text first (RFC 7468 section 5.2).
    if not (len(raw) > 1 and raw[0] == 0x30 and raw[1] >= 0x80):
        raw = _pem_to_der(raw)
    serial = _serial_octets(raw)
    if serial is not None and (not serial or serial[0] & 0x80 or not any(serial)):
        raise InvalidCertificate(
            "not a valid certificate: serial number is not positive (RFC 5280 4.1.2.2)"
        )
    try:
        cert = x509.load_der_x509_certificate(raw)
        # Names, extensions and the key are decoded lazily: decode them now, so that
        # damage anywhere is reported here, not by some later property access.
        _ = (cert.subject, cert.issuer, cert.extensions, cert.public_key())
    except Exception as exc:  # untrusted bytes: whatever the parser raises means "malformed"
        raise InvalidCertificate(f"not an X.509 certificate: {exc}") from exc
    return cert


def _pem_to_der(pem: bytes) -> bytes:
    blocks = _PEM_BLOCK.findall(pem)
    if not blocks and b"-----BEGIN" not in pem:
        raise InvalidCertificate("not an X.509 certificate: neither DER nor PEM")
    if len(blocks) != 1 or pem.count(b"-----BEGIN") != 1:
        raise InvalidCertificate(f"expected one PEM certificate, found {pem.count(b'-----BEGIN')}")
    label, body = blocks[0]
    if label != b"CERTIFICATE":
        raise InvalidCertificate(f"PEM block is {label.decode('ascii')}, not CERTIFICATE")
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except binascii.Error as exc:
        raise InvalidCertificate(f"PEM certificate is not valid base64: {exc}") from exc


def _serial_octets(der: bytes) -> bytes | None:
    """Return tbsCertificate.serialNumber's contents, or None if the DER is too damaged.

    A damaged encoding is left for the DER parser to report.
    """
    try:
        _, body, _ = _tlv(der, 0)
        _, position, _ = _tlv(der, body)
        if der[position] == 0xA0:  # [0] EXPLICIT version
            position = _tlv(der, position)[2]
        tag, start, end = _tlv(der, position)
    except IndexError:
        return None
    if tag != 0x02 or end > len(der):
        return None
    return der[start:end]


def check_profile(cert: x509.Certificate, where: str) -> bytes:
    """Check what both kinds of certificate share; return the raw Ed25519 public key.

    RFC 5280 section 4.1.2.1 (v3); 4.1.1.2 and RFC 8410 section 3 (the outer and
    inner signature algorithms are both Ed25519 without parameters); RFC 8410
    section 6 (the signature value) and section 4 (an Ed25519 key); RFC 5280
    4.1.2.2 (serial), 4.1.2.5 (validity) and 4.2 (no unrecognised critical
    extension).
    """
    try:
        version = cert.version
    except x509.InvalidVersion as exc:
        raise InvalidCertificate(f"{where}: unknown X.509 version") from exc
    if version != x509.Version.v3:
        raise InvalidCertificate(f"{where}: X.509 {version.name}, expected v3")
    inner, outer, value = signature_fields(cert)
    if (inner, outer) != (ED25519_ALGORITHM_ID, ED25519_ALGORITHM_ID):
        raise InvalidCertificate(f"{where}: not signed with Ed25519 (RFC 8410)")
    # The signatureValue is outside what is signed: pin its encoding (a BIT STRING of
    # 64 bytes, no unused bits), or one certificate could be re-encoded under a
    # second fingerprint with a signature that still verifies.
    if value != _ED25519_SIGNATURE_HEADER + cert.signature or len(cert.signature) != 64:
        raise InvalidCertificate(f"{where}: signatureValue is not a 64-byte Ed25519 signature")
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidCertificate(f"{where}: unreadable public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidCertificate(f"{where}: key is {type(key).__name__}, not Ed25519")
    if not 0 < cert.serial_number <= MAX_SERIAL:
        raise InvalidCertificate(f"{where}: serial number is not positive or over 20 octets")
    if cert.not_valid_before_utc > cert.not_valid_after_utc:
        raise InvalidCertificate(f"{where}: notBefore is after notAfter")
    try:
        extensions = list(cert.extensions)
    except (ValueError, x509.DuplicateExtension) as exc:
        raise InvalidCertificate(f"{where}: malformed extensions: {exc}") from exc
    for extension in extensions:
        if extension.critical and extension.oid not in KNOWN_EXTENSIONS:
            raise InvalidCertificate(
                f"{where}: unrecognised critical extension {extension.oid.dotted_string}"
            )
    return key.public_bytes_raw()


def extension(cert: x509.Certificate, kind: type[_E], where: str) -> x509.Extension[_E] | None:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension) as exc:
        raise InvalidCertificate(f"{where}: malformed extensions: {exc}") from exc


def attributes(
    name: x509.Name, allowed: dict[x509.ObjectIdentifier, str], where: str
) -> dict[str, str]:
    """Return ``{label: value}``, requiring each allowed attribute exactly once and no other."""
    found: dict[str, str] = {}
    for attribute in name:
        label = allowed.get(attribute.oid)
        if label is None:
            raise InvalidCertificate(
                f"{where} has an unexpected attribute {attribute.rfc4514_string()}"
            )
        if label in found:
            raise InvalidCertificate(f"{where} has more than one {label}")
        if not isinstance(attribute.value, str):
            raise InvalidCertificate(f"{where}: {label} is not a string")
        found[label] = attribute.value
    missing = [label for label in allowed.values() if label not in found]
    if missing:
        raise InvalidCertificate(f"{where} lacks {', '.join(missing)}")
    return found


def key_id(key: Ed25519PublicKey) -> bytes:
    """RFC 5280 section 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING."""
    return x509.SubjectKeyIdentifier.from_public_key(key).digest


def signature_fields(cert: x509.Certificate) -> tuple[bytes, bytes, bytes]:
    """Return the DER of tbsCertificate.signature, signatureAlgorithm and signatureValue.

    RFC 5280 section 4.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
    signatureValue }, and tbsCertificate starts [0] version, serialNumber, signature.
    The bytes have already been parsed as DER, so lengths are well formed (X.690 8.1).
    """
    der = der_of(cert)
    _, body, _ = _tlv(der, 0)
    _, tbs_body, tbs_end = _tlv(der, body)
    outer_end = _tlv(der, tbs_end)[2]
    value_end = _tlv(der, outer_end)[2]
    position = tbs_body
    for _skip in range(2):  # version, serialNumber
        position = _tlv(der, position)[2]
    inner_end = _tlv(der, position)[2]
    return der[position:inner_end], der[tbs_end:outer_end], der[outer_end:value_end]


def _tlv(der: bytes, start: int) -> tuple[int, int, int]:
    """Return (tag, start of contents, end) of the DER element at ``start`` (X.690 8.1.2-8.1.3)."""
    tag, length = der[start], der[start + 1]
    body = start + 2
    if length & 0x80:
        octets = length & 0x7F
        length = int.from_bytes(der[body : body + octets], "big")
        body += octets
    return tag, body, body + length
