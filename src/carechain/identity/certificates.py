"""Consortium certificates: one X.509 CA per organisation, one certificate per member.

carechain uses a two-level profile of RFC 5280 with Ed25519 keys and
signatures (RFC 8410). Each organisation runs its own CA; there is no
consortium root: the governance contract records which CA certificates the
consortium has admitted.

Organisation CA (self-signed, ``create_org_ca``):
    subject = issuer = O=<org id>, CN=<org name>, businessCategory=<org type>
    BasicConstraints cA=TRUE pathLen=0, critical (RFC 5280 section 4.2.1.9)
    KeyUsage keyCertSign, cRLSign, critical (section 4.2.1.3)
    SubjectKeyIdentifier, method (1) of section 4.2.1.2

Member certificate (``issue_member_certificate``):
    subject = O=<org id>, OU=<role>, businessCategory=<org type>, CN=<member id>
    issuer = the CA's subject, byte for byte (section 4.1.2.4)
    BasicConstraints cA=FALSE, critical; KeyUsage digitalSignature, critical
    SubjectKeyIdentifier; AuthorityKeyIdentifier = the CA's key id (4.2.1.1)

Names are UTF8String (section 4.1.2.6), so Chinese names work. Times are whole
seconds (section 4.1.2.5); ``Member`` and ``Organisation`` carry them as
integer milliseconds since the epoch (UTC) to compare with block time.

``load_org_ca`` and ``load_member`` are the trust boundary: they derive
everything from the certificate bytes alone and never read the clock, so
every peer reaches the same answer; callers check validity against block time
with ``is_valid_at``. Any failure raises ``InvalidCertificate`` naming what is
wrong. Creating certificates raises ``ConfigError`` for a bad argument.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NewType, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from carechain.errors import CarechainError, ConfigError, InvalidCertificate
from carechain.identity import _x509
from carechain.identity._x509 import MAX_SERIAL, iso, to_ms
from carechain.identity.keys import ed25519_private_key, ed25519_public_key
from carechain.identity.roles import (
    OrgId,
    OrgType,
    Role,
    parse_member_id,
    parse_org_id,
    parse_org_name,
    parse_org_type,
    parse_role,
)

Fingerprint = NewType("Fingerprint", str)
"""Lower-case hex SHA-256 of a certificate's DER bytes."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class Organisation:
    """A consortium organisation as its CA certificate describes it."""

    org_id: OrgId
    name: str
    org_type: OrgType
    ca_fingerprint: Fingerprint
    ca_public_key: bytes
    not_before_ms: int
    not_after_ms: int

    def is_valid_at(self, time_ms: int) -> bool:
        """True if ``time_ms`` lies in the CA's validity, both ends included (RFC 5280 4.1.2.5)."""
        return self.not_before_ms <= time_ms <= self.not_after_ms


@dataclass(frozen=True)
class Member:
    """A member (person or node) of an organisation, as its certificate describes it."""

    fingerprint: Fingerprint
    member_id: str
    org_id: OrgId
    org_type: OrgType
    role: Role
    public_key: bytes
    not_before_ms: int
    not_after_ms: int
    issuer_fingerprint: Fingerprint
    serial: int

    def is_valid_at(self, time_ms: int) -> bool:
        """True if ``time_ms`` lies in the validity period, ends included (RFC 5280 4.1.2.5)."""
        return self.not_before_ms <= time_ms <= self.not_after_ms


# --- creating certificates -------------------------------------------------------------


def create_org_ca(
    org_id: str,
    org_name: str,
    org_type: OrgType,
    private_key: bytes,
    not_before: datetime,
    not_after: datetime,
) -> bytes:
    """Return the PEM of a new self-signed CA certificate for an organisation.

    ``private_key`` is the CA's 32-byte Ed25519 seed; ``not_before`` and
    ``not_after`` must be timezone-aware and are truncated to whole seconds.
    Raise ``ConfigError`` naming the bad argument.
    """
    subject = _org_name(
        _argument(parse_org_id, org_id),
        _argument(parse_org_name, org_name),
        _argument(parse_org_type, org_type),
    )
    start, end = _window(not_before, not_after)
    key = ed25519_private_key(private_key)
    key_usage = _key_usage(digital_signature=False, key_cert_sign=True, crl_sign=True)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return _sign(builder, private_key)


def issue_member_certificate(
    ca_cert_pem: bytes,
    ca_private_key: bytes,
    member_id: str,
    role: Role,
    public_key: bytes,
    not_before: datetime,
    not_after: datetime,
    serial: int | None = None,
) -> bytes:
    """Return the PEM of a certificate binding ``public_key`` to a member of the CA's org.

    ``public_key`` is the member's raw 32-byte Ed25519 public key: a patient
    generates a key pair and the organisation certifies the public half,
    never seeing the private one. The validity period (timezone-aware,
    truncated to whole seconds) must lie within the CA's. ``serial`` defaults
    to 159 random bits (RFC 5280 section 4.1.2.2). Raise ``InvalidCertificate``
    if the CA certificate is bad, ``ConfigError`` for any other bad argument.
    """
    ca_cert, org = _load_ca(ca_cert_pem)
    ca_key = ed25519_private_key(ca_private_key)
    if ca_key.public_key().public_bytes_raw() != org.ca_public_key:
        raise ConfigError(f"the CA private key does not match the CA certificate of {org.org_id!r}")
    checked_id = _argument(parse_member_id, member_id)
    checked_role = _argument(parse_role, role)
    subject_key = ed25519_public_key(public_key)
    start, end = _window(not_before, not_after)
    if to_ms(start) < org.not_before_ms or to_ms(end) > org.not_after_ms:
        raise ConfigError(
            f"validity {start.isoformat()} .. {end.isoformat()} is not within the validity "
            f"of the CA of {org.org_id!r} ({iso(org.not_before_ms)} .. {iso(org.not_after_ms)})"
        )
    if serial is None:
        serial = x509.random_serial_number()
    elif isinstance(serial, bool) or not isinstance(serial, int) or not 0 < serial <= MAX_SERIAL:
        raise ConfigError(f"serial {serial!r} is not a positive integer of at most 20 octets")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org.org_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, checked_role.value),
            x509.NameAttribute(NameOID.BUSINESS_CATEGORY, org.org_type.value),
            x509.NameAttribute(NameOID.COMMON_NAME, checked_id),
        ]
    )
    ca_key_id = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(subject_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
            critical=False,
        )
    )
    return _sign(builder, ca_private_key)


def _sign(builder: x509.CertificateBuilder, seed: bytes) -> bytes:
    try:
        cert = builder.sign(ed25519_private_key(seed), algorithm=None)
    except ValueError as exc:
        raise ConfigError(f"cannot build certificate: {exc}") from exc
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_usage(
    *, digital_signature: bool, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _org_name(org_id: OrgId, name: str, org_type: OrgType) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_id),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.BUSINESS_CATEGORY, org_type.value),
        ]
    )


def _argument(parse: Callable[[str], _T], value: str) -> _T:
    """Parse a caller's argument, turning ``InvalidInput`` into ``ConfigError``."""
    try:
        return parse(value)
    except CarechainError as exc:
        raise ConfigError(exc.message) from exc


def _window(not_before: datetime, not_after: datetime) -> tuple[datetime, datetime]:
    """Return the validity period in UTC, whole seconds (RFC 5280 section 4.1.2.5)."""
    for label, value in (("not_before", not_before), ("not_after", not_after)):
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise ConfigError(f"{label} must be a timezone-aware datetime, got {value!r}")
    start = not_before.astimezone(UTC).replace(microsecond=0)
    end = not_after.astimezone(UTC).replace(microsecond=0)
    if start > end:
        raise ConfigError(f"not_before {start.isoformat()} is after not_after {end.isoformat()}")
    return start, end


# --- reading certificates ----------------------------------------------------------------


def fingerprint_of(certificate: bytes | str) -> Fingerprint:
    """Return the hex SHA-256 of a certificate's DER bytes; it may be given as PEM or DER.

    Raise ``InvalidCertificate`` if ``certificate`` is not exactly one certificate.
    """
    return _fingerprint(_x509.parse_certificate(certificate))


def _fingerprint(cert: x509.Certificate) -> Fingerprint:
    return Fingerprint(hashlib.sha256(_x509.der_of(cert)).hexdigest())


def load_org_ca(pem: bytes | str) -> Organisation:
    """Check an organisation's CA certificate and return the organisation it describes.

    Steps, each failure an ``InvalidCertificate`` naming the problem:

    1. one v3 certificate, Ed25519 key and signature (``_x509.check_profile``);
    2. subject is exactly O=org id, CN=org name, businessCategory=org type;
    3. self-issued (issuer == subject) and self-signed: the signature verifies
       under the certificate's own key;
    4. BasicConstraints cA=TRUE, critical (RFC 5280 section 4.2.1.9);
    5. KeyUsage with keyCertSign (section 4.2.1.3);
    6. SubjectKeyIdentifier present, derived by method (1) of section 4.2.1.2,
       which member certificates' AuthorityKeyIdentifier must repeat.
    """
    return _load_ca(pem)[1]


def load_member(cert_pem: bytes | str, ca: Organisation | bytes | str) -> Member:
    """Check a member certificate against its organisation and return the member.

    ``ca`` is the organisation (as ``load_org_ca`` returned it) or its CA
    certificate. Steps, each failure an ``InvalidCertificate`` naming the problem:

    1. one v3 certificate, Ed25519 key and signature (``_x509.check_profile``);
    2. not a CA: BasicConstraints absent or cA=FALSE (RFC 5280 section 4.2.1.9);
    3. issuer is the CA's subject: O, CN and businessCategory of the organisation;
    4. AuthorityKeyIdentifier is the CA's key id and nothing else (section 4.2.1.1);
    5. the signature verifies under the CA's public key (section 4.1.1.3);
    6. subject is exactly O=org id, OU=a known role, businessCategory=org type and
       CN=member id, with O and businessCategory those of the CA;
    7. KeyUsage has digitalSignature and neither keyCertSign nor cRLSign (4.2.1.3);
    8. the validity period lies within the CA's (section 4.1.2.5).
    """
    org = ca if isinstance(ca, Organisation) else load_org_ca(ca)
    cert = _x509.parse_certificate(cert_pem)
    fingerprint = _fingerprint(cert)
    where = f"member certificate {fingerprint[:16]}"
    public_key = _x509.check_profile(cert, where)
    # 2. not a CA
    constraints = _x509.extension(cert, x509.BasicConstraints, where)
    if constraints is not None and constraints.value.ca:
        raise InvalidCertificate(f"{where} is a CA certificate, not a member certificate")
    # 3. issued by the organisation's CA
    issuer = _x509.attributes(cert.issuer, _x509.ORG_ATTRIBUTES, f"{where}: issuer")
    expected = {"O": org.org_id, "CN": org.name, "businessCategory": org.org_type.value}
    if issuer != expected:
        raise InvalidCertificate(
            f"{where} was issued by {_describe(issuer)}, not by the CA of {org.org_id!r}"
        )
    # 4. AuthorityKeyIdentifier
    ca_key = ed25519_public_key(org.ca_public_key)
    authority = _x509.extension(cert, x509.AuthorityKeyIdentifier, where)
    if authority is None or authority.value.key_identifier != _x509.key_id(ca_key):
        raise InvalidCertificate(f"{where}: AuthorityKeyIdentifier does not name the CA's key")
    if authority.value.authority_cert_issuer or authority.value.authority_cert_serial_number:
        raise InvalidCertificate(f"{where}: AuthorityKeyIdentifier has more than a key id")
    # 5. signature
    try:
        ca_key.verify(cert.signature, cert.tbs_certificate_bytes)
    except InvalidSignature:
        raise InvalidCertificate(
            f"{where}: signature does not verify under the CA key of {org.org_id!r}"
        ) from None
    # 6. subject
    subject = _x509.attributes(cert.subject, _x509.MEMBER_ATTRIBUTES, f"{where}: subject")
    for label, value in (("O", org.org_id), ("businessCategory", org.org_type.value)):
        if subject[label] != value:
            raise InvalidCertificate(
                f"{where}: subject {label} is {subject[label]!r}, but the CA's is {value!r}"
            )
    role = _parsed(parse_role, subject["OU"], f"{where}: subject OU")
    member_id = _parsed(parse_member_id, subject["CN"], f"{where}: subject CN")
    # 7. KeyUsage
    usage = _x509.extension(cert, x509.KeyUsage, where)
    if usage is None or not usage.value.digital_signature:
        raise InvalidCertificate(f"{where}: KeyUsage lacks digitalSignature")
    if usage.value.key_cert_sign or usage.value.crl_sign:
        raise InvalidCertificate(f"{where}: KeyUsage allows signing certificates or CRLs")
    # 8. validity within the CA's
    not_before, not_after = to_ms(cert.not_valid_before_utc), to_ms(cert.not_valid_after_utc)
    if not_before < org.not_before_ms or not_after > org.not_after_ms:
        raise InvalidCertificate(f"{where}: validity extends beyond the CA's of {org.org_id!r}")
    return Member(
        fingerprint=fingerprint,
        member_id=member_id,
        org_id=org.org_id,
        org_type=org.org_type,
        role=role,
        public_key=public_key,
        not_before_ms=not_before,
        not_after_ms=not_after,
        issuer_fingerprint=org.ca_fingerprint,
        serial=cert.serial_number,
    )


def _load_ca(pem: bytes | str) -> tuple[x509.Certificate, Organisation]:
    cert = _x509.parse_certificate(pem)
    fingerprint = _fingerprint(cert)
    where = f"CA certificate {fingerprint[:16]}"
    public_key = _x509.check_profile(cert, where)
    # 2. subject
    subject = _x509.attributes(cert.subject, _x509.ORG_ATTRIBUTES, f"{where}: subject")
    org_id = _parsed(parse_org_id, subject["O"], f"{where}: subject O")
    org_type = _parsed(parse_org_type, subject["businessCategory"], f"{where}: subject")
    name = _parsed(parse_org_name, subject["CN"], f"{where}: subject CN")
    # 3. self-issued and self-signed
    if cert.issuer != cert.subject:
        raise InvalidCertificate(f"{where} of {org_id!r} is not self-issued")
    try:
        ed25519_public_key(public_key).verify(cert.signature, cert.tbs_certificate_bytes)
    except InvalidSignature:
        raise InvalidCertificate(f"{where} of {org_id!r}: self-signature does not verify") from None
    # 4.-6. extensions
    constraints = _x509.extension(cert, x509.BasicConstraints, where)
    if constraints is None or not constraints.value.ca or not constraints.critical:
        raise InvalidCertificate(f"{where} of {org_id!r} lacks critical BasicConstraints cA=TRUE")
    usage = _x509.extension(cert, x509.KeyUsage, where)
    if usage is None or not usage.value.key_cert_sign:
        raise InvalidCertificate(f"{where} of {org_id!r}: KeyUsage lacks keyCertSign")
    key_id = _x509.extension(cert, x509.SubjectKeyIdentifier, where)
    if key_id is None or key_id.value.digest != _x509.key_id(ed25519_public_key(public_key)):
        raise InvalidCertificate(
            f"{where} of {org_id!r}: SubjectKeyIdentifier missing or not RFC 5280 method (1)"
        )
    return cert, Organisation(
        org_id=org_id,
        name=name,
        org_type=org_type,
        ca_fingerprint=fingerprint,
        ca_public_key=public_key,
        not_before_ms=to_ms(cert.not_valid_before_utc),
        not_after_ms=to_ms(cert.not_valid_after_utc),
    )


def _parsed(parse: Callable[[str], _T], value: str, where: str) -> _T:
    """Parse a certificate field, turning ``InvalidInput`` into ``InvalidCertificate``."""
    try:
        return parse(value)
    except CarechainError as exc:
        raise InvalidCertificate(f"{where}: {exc.message}") from exc


def _describe(attributes: dict[str, str]) -> str:
    return ", ".join(f"{label}={value!r}" for label, value in attributes.items())
