"""Organisation CAs and member certificates: creation, loading, validity, interop."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from carechain.crypto.suite import IntlSuite
from carechain.errors import ConfigError
from carechain.identity import (
    Member,
    OrgType,
    Role,
    create_org_ca,
    fingerprint_of,
    issue_member_certificate,
    load_member,
    load_org_ca,
    public_key_for,
)
from carechain.identity.roles import MEMBER_ID_RULE

SUITE = IntlSuite()
CA_START = datetime(2025, 1, 1, tzinfo=UTC)
CA_END = datetime(2035, 1, 1, tzinfo=UTC)
MEMBER_START = datetime(2025, 6, 1, tzinfo=UTC)
MEMBER_END = datetime(2027, 6, 1, tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _issue(
    ca: Any,
    member_id: str = "dr-wang",
    role: Any = Role.CLINICIAN,
    public_key: bytes | None = None,
    not_before: datetime = MEMBER_START,
    not_after: datetime = MEMBER_END,
    serial: Any = None,
) -> bytes:
    """Issue a member certificate from a conftest CA; the key seed is SHA-256(member_id)."""
    if public_key is None:
        public_key = public_key_for(hashlib.sha256(member_id.encode()).digest())
    return issue_member_certificate(
        ca.pem, ca.seed, member_id, role, public_key, not_before, not_after, serial
    )


# --- organisation CAs ----------------------------------------------------------------------


def test_org_ca_round_trip_with_a_chinese_name(hospital) -> None:
    org = load_org_ca(hospital.pem)
    assert org.org_id == "pumch"
    assert org.name == "北京协和医院"
    assert org.org_type is OrgType.HOSPITAL
    assert org.ca_public_key == public_key_for(hospital.seed)
    assert org.not_before_ms == _ms(CA_START) == 1_735_689_600_000
    assert org.not_after_ms == _ms(CA_END)
    assert org.ca_fingerprint == hashlib.sha256(_der(hospital.pem)).hexdigest()


def test_org_ca_name_is_a_utf8string(hospital) -> None:
    # RFC 5280 section 4.1.2.6: UTF8String (tag 0x0c) for new certificates.
    encoded = "北京协和医院".encode()
    assert bytes([0x0C, len(encoded)]) + encoded in _der(hospital.pem)


def test_org_ca_extensions_follow_rfc_5280(hospital) -> None:
    cert = hospital.cert
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value == x509.BasicConstraints(ca=True, path_length=0)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    key_id = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert key_id == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert cert.issuer == cert.subject
    assert cert.subject.get_attributes_for_oid(NameOID.BUSINESS_CATEGORY)[0].value == "hospital"
    assert cert.version is x509.Version.v3


def test_long_chinese_name_round_trips() -> None:
    name = "中国医学科学院北京协和医学院北京协和医院"  # 20 characters, 60 bytes in UTF-8
    pem = create_org_ca("pumch", name, OrgType.HOSPITAL, bytes(32), CA_START, CA_END)
    assert load_org_ca(pem).name == name


@pytest.mark.parametrize("org_type", list(OrgType))
def test_every_org_type_round_trips(org_type: OrgType) -> None:
    pem = create_org_ca("org-1", "Org One", org_type, bytes(32), CA_START, CA_END)
    assert load_org_ca(pem).org_type is org_type


def test_validity_beyond_2049_uses_generalized_time() -> None:
    # RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    end = datetime(2060, 12, 31, 23, 59, 59, tzinfo=UTC)
    org = load_org_ca(create_org_ca("org-1", "Org One", OrgType.BANK, bytes(32), CA_START, end))
    assert org.not_after_ms == _ms(end)


@pytest.mark.parametrize("org_id", ["A", "Pumch", "pu_mch", "p", "x" * 41, "北京", ""])
def test_create_org_ca_names_a_bad_org_id(org_id: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_org_ca(org_id, "Org", OrgType.HOSPITAL, bytes(32), CA_START, CA_END)
    assert repr(org_id) in caught.value.message


def test_create_org_ca_names_an_unknown_org_type() -> None:
    with pytest.raises(ConfigError) as caught:
        create_org_ca("org-1", "Org", "spaceport", bytes(32), CA_START, CA_END)
    assert "'spaceport'" in caught.value.message
    assert "hospital, clinic, pharmacy" in caught.value.message


@pytest.mark.parametrize("name", ["", " 协和", "x" * 65, "院" * 22, "协\n和"])
def test_create_org_ca_names_a_bad_org_name(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_org_ca("org-1", name, OrgType.CLINIC, bytes(32), CA_START, CA_END)
    assert repr(name) in caught.value.message


def test_create_org_ca_refuses_naive_and_reversed_times() -> None:
    with pytest.raises(ConfigError, match="timezone-aware"):
        create_org_ca("org-1", "Org", OrgType.CLINIC, bytes(32), datetime(2025, 1, 1), CA_END)
    with pytest.raises(ConfigError, match="is after not_after"):
        create_org_ca("org-1", "Org", OrgType.CLINIC, bytes(32), CA_END, CA_START)


def test_create_org_ca_refuses_a_short_seed() -> None:
    with pytest.raises(ConfigError, match="32-byte seed"):
        create_org_ca("org-1", "Org", OrgType.CLINIC, bytes(16), CA_START, CA_END)


# --- member certificates --------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_member_round_trip_for_every_role(hospital, role: Role) -> None:
    public = public_key_for(hashlib.sha256(role.value.encode()).digest())
    pem = _issue(hospital, member_id=f"m-{role.value}", role=role, public_key=public, serial=42)
    member = load_member(pem, hospital.org)
    assert member == Member(
        fingerprint=fingerprint_of(pem),
        member_id=f"m-{role.value}",
        org_id="pumch",
        org_type=OrgType.HOSPITAL,
        role=role,
        public_key=public,
        not_before_ms=_ms(MEMBER_START),
        not_after_ms=_ms(MEMBER_END),
        issuer_fingerprint=hospital.org.ca_fingerprint,
        serial=42,
    )


def test_member_certificate_extensions_follow_rfc_5280(hospital) -> None:
    cert = x509.load_pem_x509_certificate(_issue(hospital))
    assert cert.issuer.public_bytes() == hospital.cert.subject.public_bytes()
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    authority = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_key_id = hospital.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert authority.key_identifier == ca_key_id.value.digest
    subject = {attribute.oid: attribute.value for attribute in cert.subject}
    assert subject == {
        NameOID.COMMON_NAME: "dr-wang",
        NameOID.ORGANIZATION_NAME: "pumch",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "clinician",
        NameOID.BUSINESS_CATEGORY: "hospital",
    }


def test_patient_key_is_registered_through_a_hospital(hospital) -> None:
    # The patient makes a key pair on their own device; only the public half travels.
    patient_seed = SUITE.generate_private_key()
    patient_public = SUITE.public_key(patient_seed)
    pem = issue_member_certificate(
        hospital.pem,
        hospital.seed,
        "patient-001",
        Role.PATIENT,
        patient_public,
        MEMBER_START,
        MEMBER_END,
    )
    assert patient_seed not in pem and patient_seed not in _der(pem)
    member = load_member(pem, hospital.pem)
    assert (member.role, member.org_id, member.public_key) == (
        Role.PATIENT,
        "pumch",
        patient_public,
    )
    # What the patient signs with their own key verifies under the certified key.
    signature = SUITE.sign(patient_seed, b"grant consent to pumch/dr-wang")
    assert SUITE.verify(member.public_key, b"grant consent to pumch/dr-wang", signature)


def test_load_member_takes_the_organisation_or_its_ca_certificate(hospital) -> None:
    pem = _issue(hospital)
    by_org = load_member(pem, hospital.org)
    assert load_member(pem, hospital.pem) == by_org
    assert load_member(pem.decode("ascii"), hospital.pem.decode("ascii")) == by_org
    assert load_member(_der(pem), hospital.org) == by_org


def test_loading_is_deterministic(hospital) -> None:
    pem = _issue(hospital)
    assert load_member(pem, hospital.org) == load_member(pem, hospital.org)
    assert len({load_member(pem, hospital.org) for _ in range(3)}) == 1  # hashable, equal


def test_fingerprint_of_pem_der_and_text_agree(hospital) -> None:
    pem = _issue(hospital)
    expected = hashlib.sha256(_der(pem)).hexdigest()
    assert (
        fingerprint_of(pem) == fingerprint_of(_der(pem)) == fingerprint_of(pem.decode()) == expected
    )
    assert fingerprint_of(b"text before the block\n" + pem) == expected  # RFC 7468 section 5.2


KNOWN_MEMBER_FINGERPRINT = "11a944938ee7731b6201575f89afa618c6b10d862ec4ad7b43d1f47c313bb88a"


def test_member_certificate_known_answer(hospital) -> None:
    """Pins the member certificate encoding: a changed fingerprint changes ledger identities.

    Reproduce: CA seed SHA-256("ca:pumch"), org pumch / 北京协和医院 / hospital, member
    key seed SHA-256("dr-wang"), clinician, serial 1000, validity 2025-06-01T00:00:00Z to
    2027-06-01T00:00:00Z. Ed25519 signatures are deterministic (RFC 8032 section 5.1.6)
    and the member certificate contains nothing random, so its DER is fixed.
    """
    pem = _issue(hospital, serial=1000)
    assert fingerprint_of(pem) == KNOWN_MEMBER_FINGERPRINT


def test_forged_defaults_equal_a_real_certificate(hospital, forge_member) -> None:
    # The conftest forger, without overrides, makes exactly what carechain issues.
    assert forge_member(hospital) == _issue(hospital, serial=1000)


# --- issuance arguments ---------------------------------------------------------------------


def test_unknown_role_names_the_value(hospital) -> None:
    with pytest.raises(ConfigError) as caught:
        _issue(hospital, role="doctor")
    assert "'doctor'" in caught.value.message
    assert "allowed: admin, clinician" in caught.value.message


@pytest.mark.parametrize("member_id", ["", "dr wang", "王医生", "x" * 65])
def test_bad_member_id_names_the_value(hospital, member_id: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _issue(hospital, member_id=member_id, public_key=bytes(32))
    assert repr(member_id) in caught.value.message
    assert MEMBER_ID_RULE in caught.value.message


def test_ca_private_key_must_match_the_ca_certificate(hospital, pharmacy) -> None:
    with pytest.raises(ConfigError, match="does not match the CA certificate of 'pumch'"):
        issue_member_certificate(
            hospital.pem,
            pharmacy.seed,
            "dr-wang",
            Role.CLINICIAN,
            bytes(32),
            MEMBER_START,
            MEMBER_END,
        )


@pytest.mark.parametrize("public_key", [b"", bytes(31), bytes(33), b"-----BEGIN PUBLIC KEY-----"])
def test_member_public_key_must_be_32_raw_bytes(hospital, public_key: bytes) -> None:
    with pytest.raises(ConfigError, match="32 raw bytes"):
        _issue(hospital, public_key=public_key)


@pytest.mark.parametrize("serial", [0, -1, 2**159, True])
def test_serial_must_be_positive_and_at_most_20_octets(hospital, serial: int) -> None:
    with pytest.raises(ConfigError, match="serial"):
        _issue(hospital, serial=serial)


def test_largest_serial_is_accepted(hospital) -> None:
    assert load_member(_issue(hospital, serial=2**159 - 1), hospital.org).serial == 2**159 - 1


def test_random_serials_differ(hospital) -> None:
    first, second = (load_member(_issue(hospital), hospital.org) for _ in range(2))
    assert first.serial != second.serial and first.fingerprint != second.fingerprint


# --- validity -------------------------------------------------------------------------------


def test_is_valid_at_includes_both_ends(hospital) -> None:
    # RFC 5280 section 4.1.2.5: "from notBefore through notAfter, inclusive".
    member = load_member(_issue(hospital), hospital.org)
    assert not member.is_valid_at(member.not_before_ms - 1)
    assert member.is_valid_at(member.not_before_ms)
    assert member.is_valid_at(member.not_after_ms)
    assert not member.is_valid_at(member.not_after_ms + 1)
    assert hospital.org.is_valid_at(hospital.org.not_after_ms)
    assert not hospital.org.is_valid_at(hospital.org.not_after_ms + 1)


def test_member_validity_may_equal_the_cas(hospital) -> None:
    member = load_member(_issue(hospital, not_before=CA_START, not_after=CA_END), hospital.org)
    assert (member.not_before_ms, member.not_after_ms) == (_ms(CA_START), _ms(CA_END))


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (CA_START - timedelta(seconds=1), MEMBER_END),
        (MEMBER_START, CA_END + timedelta(seconds=1)),
        (CA_START - timedelta(days=400), CA_START - timedelta(days=1)),
    ],
)
def test_member_validity_must_lie_within_the_cas(hospital, start: datetime, end: datetime) -> None:
    with pytest.raises(ConfigError, match="is not within the validity of the CA of 'pumch'"):
        _issue(hospital, not_before=start, not_after=end)


def test_member_times_must_be_aware_and_ordered(hospital) -> None:
    with pytest.raises(ConfigError, match="not_after must be a timezone-aware datetime"):
        _issue(hospital, not_after=datetime(2026, 1, 1))
    with pytest.raises(ConfigError, match="is after not_after"):
        _issue(hospital, not_before=MEMBER_END, not_after=MEMBER_START)


def test_times_are_truncated_to_whole_seconds_and_converted_to_utc(hospital) -> None:
    beijing = datetime(2026, 1, 1, 16, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=8)))
    member = load_member(_issue(hospital, not_after=beijing), hospital.org)
    assert member.not_after_ms == _ms(datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC))


# --- properties and interop -----------------------------------------------------------------

_member_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", fullmatch=True)
_org_names = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "M", "N", "P", "S", "Zs"]),
    min_size=1,
    max_size=64,
).filter(lambda name: name == name.strip() and name.isprintable() and len(name.encode()) <= 64)


@settings(max_examples=60, deadline=None)
@given(
    org_name=_org_names,
    org_type=st.sampled_from(list(OrgType)),
    member_id=_member_ids,
    role=st.sampled_from(list(Role)),
    ca_seed=st.binary(min_size=32, max_size=32),
    member_seed=st.binary(min_size=32, max_size=32),
    days=st.integers(min_value=0, max_value=3650),
)
def test_any_valid_identity_round_trips(
    org_name: str,
    org_type: OrgType,
    member_id: str,
    role: Role,
    ca_seed: bytes,
    member_seed: bytes,
    days: int,
) -> None:
    ca_pem = create_org_ca("org-x", org_name, org_type, ca_seed, CA_START, CA_END)
    org = load_org_ca(ca_pem)
    assert (org.name, org.org_type) == (org_name, org_type)
    end = CA_START + timedelta(days=days)
    public = public_key_for(member_seed)
    pem = issue_member_certificate(ca_pem, ca_seed, member_id, role, public, CA_START, end)
    member = load_member(pem, org)
    assert (member.member_id, member.role, member.public_key) == (member_id, role, public)
    assert (member.org_id, member.org_type, member.not_after_ms) == ("org-x", org_type, _ms(end))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_openssl_verifies_the_chain(hospital, tmp_path: Path) -> None:
    """An independent X.509 implementation accepts what carechain issues (RFC 5280 section 6)."""
    ca_file, member_file = tmp_path / "ca.pem", tmp_path / "member.pem"
    ca_file.write_bytes(hospital.pem)
    member_file.write_bytes(_issue(hospital))
    at = str(_ms(datetime(2026, 1, 1, tzinfo=UTC)) // 1000)  # a fixed time, not the clock
    command = ["openssl", "verify", "-x509_strict", "-attime", at, "-CAfile", str(ca_file)]
    result = subprocess.run(
        [*command, str(member_file)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
