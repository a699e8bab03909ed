"""Organisations and certificate forgers shared by the identity tests.

Keys come from fixed seeds (SHA-256 of a label) and times are fixed, so member
certificates are byte-for-byte reproducible; nothing reads the clock.

``forge_member`` and ``forge_ca`` build certificates directly with
``cryptography``, bypassing carechain's own checks, so a test can damage one
field at a time. With no overrides they produce what ``issue_member_certificate``
and ``create_org_ca`` produce (a test checks that), so each negative test
differs from a good certificate in exactly the field it names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from carechain.identity import Organisation, OrgType, create_org_ca, load_org_ca

CA_START = datetime(2025, 1, 1, tzinfo=UTC)
CA_END = datetime(2035, 1, 1, tzinfo=UTC)
MEMBER_START = datetime(2025, 6, 1, tzinfo=UTC)
MEMBER_END = datetime(2027, 6, 1, tzinfo=UTC)


def seed_for(label: str) -> bytes:
    """A reproducible 32-byte Ed25519 seed: SHA-256 of ``label``."""
    return hashlib.sha256(label.encode("utf-8")).digest()


@dataclass(frozen=True)
class CA:
    seed: bytes
    pem: bytes
    org: Organisation

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem)

    @property
    def key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)


def make_ca(label: str, org_id: str, name: str, org_type: OrgType) -> CA:
    seed = seed_for(label)
    pem = create_org_ca(org_id, name, org_type, seed, CA_START, CA_END)
    return CA(seed, pem, load_org_ca(pem))


@pytest.fixture(scope="session")
def hospital() -> CA:
    return make_ca("ca:pumch", "pumch", "北京协和医院", OrgType.HOSPITAL)


@pytest.fixture(scope="session")
def pharmacy() -> CA:
    return make_ca("ca:tongrentang", "tongrentang", "北京同仁堂药店", OrgType.PHARMACY)


def _key_usage(**set_bits: bool) -> x509.KeyUsage:
    bits = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    bits.update(set_bits)
    return x509.KeyUsage(**bits)


Attributes = Sequence[tuple[x509.ObjectIdentifier, str]]
_KEEP: Any = object()


def _build(
    *,
    subject: Attributes,
    issuer: x509.Name,
    public_key: Any,
    signer: Any,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in subject]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    algorithm = None if isinstance(signer, Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm).public_bytes(serialization.Encoding.PEM)


ForgeMember = Callable[..., bytes]
ForgeCA = Callable[..., bytes]


@pytest.fixture
def forge_member() -> ForgeMember:
    """Build a member certificate for ``ca``; keyword overrides damage one field each."""

    def forge(
        ca: CA,
        *,
        member_id: str = "dr-wang",
        role: str = "clinician",
        subject: Attributes | None = None,
        extra_subject: Attributes = (),
        issuer: x509.Name | None = None,
        public_key: Any = None,
        signer: Any = None,
        serial: int = 1000,
        not_before: datetime = MEMBER_START,
        not_after: datetime = MEMBER_END,
        basic_constraints: Any = _KEEP,
        key_usage: Any = _KEEP,
        authority_key_id: Any = _KEEP,
        extra_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ) -> bytes:
        key = public_key or Ed25519PrivateKey.from_private_bytes(seed_for(member_id)).public_key()
        if subject is None:
            subject = [
                (NameOID.ORGANIZATION_NAME, ca.org.org_id),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                (NameOID.BUSINESS_CATEGORY, ca.org.org_type.value),
                (NameOID.COMMON_NAME, member_id),
            ]
        ca_key_id = x509.SubjectKeyIdentifier.from_public_key(ca.key.public_key())
        defaults = {
            "bc": (x509.BasicConstraints(ca=False, path_length=None), True),
            "ku": (_key_usage(digital_signature=True), True),
            "ski": (x509.SubjectKeyIdentifier.from_public_key(key), False),
            "aki": (
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
                False,
            ),
        }
        for name, override in (
            ("bc", basic_constraints),
            ("ku", key_usage),
            ("aki", authority_key_id),
        ):
            if override is not _KEEP:
                defaults[name] = override
        extensions = [ext for ext in defaults.values() if ext is not None]
        return _build(
            subject=[*subject, *extra_subject],
            issuer=issuer if issuer is not None else ca.cert.subject,
            public_key=key,
            signer=signer if signer is not None else ca.key,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
            extensions=[*extensions, *extra_extensions],
        )

    return forge


@pytest.fixture
def forge_ca() -> ForgeCA:
    """Build a self-signed CA certificate; keyword overrides damage one field each."""

    def forge(
        *,
        org_id: str = "pumch",
        name: str = "北京协和医院",
        org_type: str = "hospital",
        seed: bytes | None = None,
        private_key: Any = None,
        issuer: x509.Name | None = None,
        signer: Any = None,
        basic_constraints: Any = _KEEP,
        key_usage: Any = _KEEP,
        subject_key_id: Any = _KEEP,
    ) -> bytes:
        key = private_key or Ed25519PrivateKey.from_private_bytes(seed or seed_for("ca:pumch"))
        subject: Attributes = [
            (NameOID.ORGANIZATION_NAME, org_id),
            (NameOID.COMMON_NAME, name),
            (NameOID.BUSINESS_CATEGORY, org_type),
        ]
        subject_name = x509.Name([x509.NameAttribute(oid, value) for oid, value in subject])
        defaults = {
            "bc": (x509.BasicConstraints(ca=True, path_length=0), True),
            "ku": (_key_usage(key_cert_sign=True, crl_sign=True), True),
            "ski": (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        }
        for label, override in (
            ("bc", basic_constraints),
            ("ku", key_usage),
            ("ski", subject_key_id),
        ):
            if override is not _KEEP:
                defaults[label] = override
        return _build(
            subject=subject,
            issuer=issuer if issuer is not None else subject_name,
            public_key=key.public_key(),
            signer=signer if signer is not None else key,
            serial=77,
            not_before=CA_START,
            not_after=CA_END,
            extensions=[ext for ext in defaults.values() if ext is not None],
        )

    return forge


@pytest.fixture(scope="session")
def key_usage() -> Callable[..., x509.KeyUsage]:
    """``KeyUsage`` with only the named bits set."""
    return _key_usage
