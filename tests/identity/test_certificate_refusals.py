"""Certificates that must be refused, each with a message naming what is wrong.

Most cases come from the conftest forgers, which differ from a good certificate
in exactly the field a test names; damaged bytes come from
``testdata/damaged_member_certificates.json``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from carechain.errors import InvalidCertificate
from carechain.identity import (
    OrgType,
    Role,
    create_org_ca,
    issue_member_certificate,
    load_member,
    load_org_ca,
)

TESTDATA = Path(__file__).parent / "testdata"


def _refused(pem: bytes, ca: Any, *fragments: str) -> str:
    """Assert ``load_member`` refuses ``pem``, naming every fragment; return the message."""
    with pytest.raises(InvalidCertificate) as caught:
        load_member(pem, ca.org)
    for fragment in fragments:
        assert fragment in caught.value.message
    return caught.value.message


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


# --- wrong issuer ---------------------------------------------------------------------------


def test_certificate_from_another_orgs_ca_is_refused(hospital, pharmacy, forge_member) -> None:
    pem = forge_member(pharmacy, role="pharmacist")
    assert load_member(pem, pharmacy.org).org_id == "tongrentang"
    _refused(pem, hospital, "was issued by", "O='tongrentang'", "not by the CA of 'pumch'")


def test_impostor_ca_with_the_same_name_is_refused(hospital, forge_member) -> None:
    # Someone makes a CA with pumch's id, name and type, but their own key.
    impostor_seed = bytes(32)
    impostor_pem = create_org_ca(
        "pumch",
        "北京协和医院",
        OrgType.HOSPITAL,
        impostor_seed,
        hospital.cert.not_valid_before_utc,
        hospital.cert.not_valid_after_utc,
    )
    pem = issue_member_certificate(
        impostor_pem,
        impostor_seed,
        "dr-wang",
        Role.ADMIN,
        bytes(32),
        hospital.cert.not_valid_before_utc,
        hospital.cert.not_valid_after_utc,
    )
    assert load_member(pem, impostor_pem).role is Role.ADMIN
    _refused(pem, hospital, "AuthorityKeyIdentifier does not name the CA's key")
    # Signed by the impostor but copying pumch's key identifier: refused at the signature.
    impostor = Ed25519PrivateKey.from_private_bytes(impostor_seed)
    pem = forge_member(hospital, signer=impostor)
    _refused(pem, hospital, "signature does not verify under the CA key of 'pumch'")


# --- damaged bytes --------------------------------------------------------------------------


def _cases() -> list[Any]:
    document = json.loads((TESTDATA / "damaged_member_certificates.json").read_text("utf-8"))
    return [pytest.param(case, id=case["description"]) for case in document["cases"]]


def _damage(der: bytes, damage: dict[str, Any]) -> bytes:
    cert = x509.load_der_x509_certificate(der)
    region = {"tbs": cert.tbs_certificate_bytes, "signature": cert.signature, "whole": der}
    op = damage["op"]
    if op == "empty":
        return b""
    if op == "truncate":
        return der[: -damage["count"]]
    if op == "append_hex":
        return der + bytes.fromhex(damage["bytes_hex"])
    start = der.index(region[damage["region"]]) if damage["region"] != "whole" else 0
    part = bytearray(region[damage["region"]])
    if op == "replace":
        old, new = damage["find"].encode(), damage["with"].encode()
        assert len(old) == len(new) and part.count(old) == 1
        index = part.index(old)
        part[index : index + len(old)] = new
    elif op == "replace_hex":
        old, new = bytes.fromhex(damage["find_hex"]), bytes.fromhex(damage["with_hex"])
        index = -1
        for _ in range(damage["occurrence"] + 1):
            index = part.index(old, index + 1)
        part[index : index + len(old)] = new
    elif op == "xor":
        offset = damage["offset"]  # negative: from the region's end
        if "find_hex" in damage:
            offset += part.index(bytes.fromhex(damage["find_hex"]))
        part[offset] ^= damage["mask"]
    else:
        raise AssertionError(f"unknown damage {op!r}")
    return der[:start] + bytes(part) + der[start + len(part) :]


@pytest.mark.parametrize("case", _cases())
def test_damaged_member_certificate_is_refused(hospital, forge_member, case) -> None:
    der = _der(forge_member(hospital))
    damaged = _damage(der, case["damage"])
    assert damaged != der
    _refused(damaged, hospital, case["error"])


def test_every_single_byte_change_is_refused(hospital, forge_member) -> None:
    """No byte of a member certificate can change without load_member noticing."""
    der = _der(forge_member(hospital))
    assert load_member(der, hospital.org)
    for index in range(len(der)):
        for mask in (0x01, 0x80, 0xFF):
            damaged = bytearray(der)
            damaged[index] ^= mask
            with pytest.raises(InvalidCertificate):
                load_member(bytes(damaged), hospital.org)


def test_signature_bit_string_with_unused_bits_is_refused(hospital, forge_member) -> None:
    """Regression: a second encoding of a good certificate, with a new fingerprint, was accepted.

    The signatureValue BIT STRING sits outside what is signed. Setting its
    unused-bits count to 1 (valid DER when the signature's last bit is 0) left the
    64 signature bytes as ``cryptography`` reports them, so the signature still
    verified while the DER, and so the fingerprint, changed.
    """
    der = _der(forge_member(hospital))
    unused_bits = len(der) - 65
    assert der[unused_bits - 2 : unused_bits + 1] == bytes.fromhex("034100")
    assert der[-1] & 1 == 0  # so the re-encoding is valid DER
    damaged = der[:unused_bits] + b"\x01" + der[unused_bits + 1 :]
    _refused(damaged, hospital, "signatureValue is not a 64-byte Ed25519 signature")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "neither DER nor PEM"),
        (b"hello", "neither DER nor PEM"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PRIVATE KEY"),
        (b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "base64"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n", "expected one PEM certificate"),
    ],
)
def test_what_is_not_one_certificate_is_refused(hospital, data: bytes, fragment: str) -> None:
    _refused(data, hospital, fragment)


def test_two_pem_certificates_are_refused(hospital, forge_member) -> None:
    pem = forge_member(hospital)
    _refused(pem + pem, hospital, "expected one PEM certificate, found 2")


# --- wrong kind of certificate --------------------------------------------------------------


def test_ca_certificate_passed_as_a_member_is_refused(hospital) -> None:
    _refused(hospital.pem, hospital, "is a CA certificate, not a member certificate")


def test_member_certificate_passed_as_a_ca_is_refused(hospital, forge_member) -> None:
    with pytest.raises(InvalidCertificate, match="unexpected attribute OU=clinician"):
        load_org_ca(forge_member(hospital))


def test_non_ed25519_member_key_is_refused(hospital, forge_member) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    _refused(forge_member(hospital, public_key=key), hospital, "key is", "not Ed25519")


# --- subject --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["doctor", "Clinician", "admin "])
def test_unknown_ou_role_is_refused_naming_it(hospital, forge_member, role: str) -> None:
    _refused(
        forge_member(hospital, role=role),
        hospital,
        "subject OU",
        repr(role),
        "allowed: admin, clinician, pharmacist",
    )


def test_subject_without_ou_is_refused(hospital, forge_member) -> None:
    subject = [
        (NameOID.ORGANIZATION_NAME, "pumch"),
        (NameOID.BUSINESS_CATEGORY, "hospital"),
        (NameOID.COMMON_NAME, "dr-wang"),
    ]
    _refused(forge_member(hospital, subject=subject), hospital, "subject lacks OU")


def test_two_roles_are_refused(hospital, forge_member) -> None:
    extra = [(NameOID.ORGANIZATIONAL_UNIT_NAME, "admin")]
    _refused(forge_member(hospital, extra_subject=extra), hospital, "more than one OU")


def test_unexpected_subject_attribute_is_refused(hospital, forge_member) -> None:
    extra = [(NameOID.LOCALITY_NAME, "Beijing")]
    _refused(forge_member(hospital, extra_subject=extra), hospital, "unexpected attribute L=")


def test_subject_o_must_be_the_cas(hospital, forge_member) -> None:
    subject = [
        (NameOID.ORGANIZATION_NAME, "other-org"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "clinician"),
        (NameOID.BUSINESS_CATEGORY, "hospital"),
        (NameOID.COMMON_NAME, "dr-wang"),
    ]
    _refused(forge_member(hospital, subject=subject), hospital, "subject O is 'other-org'")


def test_subject_business_category_must_be_the_cas(hospital, forge_member) -> None:
    subject = [
        (NameOID.ORGANIZATION_NAME, "pumch"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "pharmacist"),
        (NameOID.BUSINESS_CATEGORY, "pharmacy"),
        (NameOID.COMMON_NAME, "dr-wang"),
    ]
    message = _refused(forge_member(hospital, subject=subject), hospital, "businessCategory")
    assert "'pharmacy'" in message and "'hospital'" in message


def test_bad_member_id_in_cn_is_refused(hospital, forge_member) -> None:
    _refused(forge_member(hospital, member_id="dr wang"), hospital, "subject CN", "'dr wang'")


# --- extensions -----------------------------------------------------------------------------


def test_member_certificate_must_allow_digital_signature(hospital, forge_member, key_usage) -> None:
    pem = forge_member(hospital, key_usage=(key_usage(content_commitment=True), True))
    _refused(pem, hospital, "KeyUsage lacks digitalSignature")
    _refused(forge_member(hospital, key_usage=None), hospital, "KeyUsage lacks digitalSignature")


def test_member_certificate_must_not_sign_certificates(hospital, forge_member, key_usage) -> None:
    usage = key_usage(digital_signature=True, key_cert_sign=True)
    pem = forge_member(hospital, key_usage=(usage, True))
    _refused(pem, hospital, "KeyUsage allows signing certificates")


def test_authority_key_identifier_is_required(hospital, forge_member) -> None:
    pem = forge_member(hospital, authority_key_id=None)
    _refused(pem, hospital, "AuthorityKeyIdentifier does not name the CA's key")


def test_unknown_critical_extension_is_refused(hospital, forge_member) -> None:
    # RFC 5280 section 4.2: a certificate with an unrecognised critical extension is rejected.
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    pem = forge_member(hospital, extra_extensions=[(unknown, True)])
    _refused(pem, hospital, "unrecognised critical extension 1.3.6.1.4.1.99999.1")


def test_unknown_non_critical_extension_is_ignored(hospital, forge_member) -> None:
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    pem = forge_member(hospital, extra_extensions=[(unknown, False)])
    assert load_member(pem, hospital.org).member_id == "dr-wang"


# --- validity -------------------------------------------------------------------------------


def test_member_validity_beyond_the_cas_is_refused(hospital, forge_member) -> None:
    too_late = hospital.cert.not_valid_after_utc + timedelta(seconds=1)
    pem = forge_member(hospital, not_after=too_late)
    _refused(pem, hospital, "validity extends beyond the CA's of 'pumch'")
    too_early = hospital.cert.not_valid_before_utc - timedelta(seconds=1)
    _refused(forge_member(hospital, not_before=too_early), hospital, "validity extends beyond")


# --- organisation CA certificates -----------------------------------------------------------


def _ca_refused(pem: bytes, *fragments: str) -> None:
    with pytest.raises(InvalidCertificate) as caught:
        load_org_ca(pem)
    for fragment in fragments:
        assert fragment in caught.value.message


def test_forged_ca_defaults_load(forge_ca) -> None:
    assert load_org_ca(forge_ca()).org_id == "pumch"


def test_ca_not_self_issued_is_refused(forge_ca) -> None:
    other = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Root")])
    _ca_refused(forge_ca(issuer=other), "of 'pumch' is not self-issued")


def test_ca_signed_by_another_key_is_refused(forge_ca) -> None:
    signer = Ed25519PrivateKey.from_private_bytes(bytes(32))
    _ca_refused(forge_ca(signer=signer), "self-signature does not verify")


def test_ca_signed_with_ecdsa_is_refused(forge_ca) -> None:
    _ca_refused(forge_ca(private_key=ec.generate_private_key(ec.SECP256R1())), "Ed25519")


@pytest.mark.parametrize(
    "basic_constraints",
    [
        None,
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.BasicConstraints(ca=True, path_length=0), False),
    ],
    ids=["absent", "not a CA", "not critical"],
)
def test_ca_needs_critical_basic_constraints(forge_ca, basic_constraints) -> None:
    # RFC 5280 section 4.2.1.9: CA certificates MUST mark basicConstraints critical.
    _ca_refused(forge_ca(basic_constraints=basic_constraints), "BasicConstraints cA=TRUE")


def test_ca_needs_key_cert_sign(forge_ca, key_usage) -> None:
    _ca_refused(
        forge_ca(key_usage=(key_usage(digital_signature=True), True)), "KeyUsage lacks keyCertSign"
    )


def test_ca_needs_a_method_1_subject_key_identifier(forge_ca) -> None:
    _ca_refused(forge_ca(subject_key_id=None), "SubjectKeyIdentifier")
    wrong = (x509.SubjectKeyIdentifier(b"\x01" * 20), False)
    _ca_refused(forge_ca(subject_key_id=wrong), "SubjectKeyIdentifier")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"org_id": "Bad_Org"}, "invalid organisation id 'Bad_Org'"),
        ({"org_type": "spaceport"}, "unknown organisation type 'spaceport'; allowed: hospital"),
        ({"name": " 协和"}, "invalid organisation name ' 协和'"),
    ],
)
def test_ca_subject_fields_are_checked(forge_ca, override: dict[str, str], fragment: str) -> None:
    _ca_refused(forge_ca(**override), fragment)
