"""Roles, organisation types, organisation ids, member ids and organisation names."""

from __future__ import annotations

import pytest

from carechain.errors import InvalidInput
from carechain.identity import (
    OrgType,
    Role,
    parse_member_id,
    parse_org_id,
    parse_org_name,
    parse_org_type,
    parse_role,
)


def test_roles_are_the_documented_eight() -> None:
    assert [role.value for role in Role] == [
        "admin",
        "clinician",
        "pharmacist",
        "staff",
        "auditor",
        "patient",
        "orderer",
        "peer",
    ]


def test_org_types_are_the_documented_nine() -> None:
    assert [org_type.value for org_type in OrgType] == [
        "hospital",
        "clinic",
        "pharmacy",
        "manufacturer",
        "distributor",
        "insurer",
        "bank",
        "sponsor",
        "regulator",
    ]


@pytest.mark.parametrize("role", list(Role))
def test_parse_role_accepts_every_role(role: Role) -> None:
    assert parse_role(role.value) is role
    assert parse_role(role) is role


@pytest.mark.parametrize("value", ["doctor", "Clinician", " admin", "", "patient\n"])
def test_unknown_role_names_the_value_and_lists_the_allowed(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_role(value)
    assert repr(value) in caught.value.message
    assert "allowed: admin, clinician, pharmacist, staff, auditor, patient, orderer, peer" in (
        caught.value.message
    )


@pytest.mark.parametrize("org_type", list(OrgType))
def test_parse_org_type_accepts_every_type(org_type: OrgType) -> None:
    assert parse_org_type(org_type.value) is org_type


@pytest.mark.parametrize("value", ["spaceport", "Hospital", "医院", ""])
def test_unknown_org_type_names_the_value_and_lists_the_allowed(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_org_type(value)
    assert repr(value) in caught.value.message
    assert "hospital, clinic, pharmacy" in caught.value.message
    assert "regulator" in caught.value.message


@pytest.mark.parametrize("value", ["pumch", "a1", "sinopharm-bj", "0-0", "x" * 40])
def test_org_id_accepts_short_slugs(value: str) -> None:
    assert parse_org_id(value) == value


@pytest.mark.parametrize(
    "value",
    ["p", "x" * 41, "Pumch", "pu_mch", "pu mch", "pumch\n", "北京协和", "", "pumch.cn"],
)
def test_bad_org_id_names_the_value(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_org_id(value)
    assert repr(value) in caught.value.message
    assert "a-z, 0-9 and '-'" in caught.value.message


@pytest.mark.parametrize("value", ["dr-wang", "patient-001", "Node.Peer_0", "a", "x@y", "9" * 64])
def test_member_id_accepts_ids(value: str) -> None:
    assert parse_member_id(value) == value


@pytest.mark.parametrize("value", ["", "-dr", "dr wang", "王医生", "x" * 65, "dr/wang", "dr\n"])
def test_bad_member_id_names_the_value(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_member_id(value)
    assert repr(value) in caught.value.message


@pytest.mark.parametrize(
    "value", ["北京协和医院", "Peking Union Medical College Hospital", "x" * 64]
)
def test_org_name_accepts_printable_names(value: str) -> None:
    assert parse_org_name(value) == value


@pytest.mark.parametrize("value", ["", " 协和", "协和 ", "协\n和", "x" * 65, "院" * 22, "a\u200bb"])
def test_bad_org_name_names_the_value(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_org_name(value)
    assert repr(value) in caught.value.message
