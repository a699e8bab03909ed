"""Who is who in a consortium: organisation ids, organisation types and member roles.

These words are written into every certificate (see ``certificates.py``):
the organisation id is the subject's ``O``, the organisation type its
``businessCategory``, a member's role its ``OU`` and the member's id its
``CN``. Contracts decide what each role and organisation type may do; this
module only names them.

The ``parse_*`` helpers are exact: no trimming, no case folding, so that the
same bytes in a certificate always mean the same thing on every peer. A bad
value raises ``InvalidInput`` naming the value and listing what is allowed.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NewType

from carechain.errors import InvalidInput

OrgId = NewType("OrgId", str)
"""A consortium member organisation's short id, for example ``pumch`` or ``sinopharm-bj``."""

_ORG_ID = re.compile(r"[a-z0-9-]{2,40}")
ORG_ID_RULE = "2 to 40 characters from a-z, 0-9 and '-'"

_MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MEMBER_ID_RULE = "1 to 64 characters from A-Z, a-z, 0-9 and '._@-', starting with a letter or digit"

MAX_NAME_BYTES = 64
"""The longest organisation name (the CA's CN), in UTF-8 bytes; see ``parse_org_name``."""


class Role(StrEnum):
    """What a member certificate's holder is (its subject ``OU``)."""

    ADMIN = "admin"
    CLINICIAN = "clinician"
    PHARMACIST = "pharmacist"
    STAFF = "staff"
    AUDITOR = "auditor"
    PATIENT = "patient"
    ORDERER = "orderer"
    PEER = "peer"


class OrgType(StrEnum):
    """What kind of organisation a consortium member is (its ``businessCategory``)."""

    HOSPITAL = "hospital"
    CLINIC = "clinic"
    PHARMACY = "pharmacy"
    MANUFACTURER = "manufacturer"
    DISTRIBUTOR = "distributor"
    INSURER = "insurer"
    BANK = "bank"
    SPONSOR = "sponsor"
    REGULATOR = "regulator"


def parse_role(value: str) -> Role:
    """Return the ``Role`` spelt exactly ``value``; raise ``InvalidInput`` otherwise."""
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(role.value for role in Role)
        raise InvalidInput(f"unknown role {value!r}; allowed: {allowed}") from None


def parse_org_type(value: str) -> OrgType:
    """Return the ``OrgType`` spelt exactly ``value``; raise ``InvalidInput`` otherwise."""
    try:
        return OrgType(value)
    except ValueError:
        allowed = ", ".join(org_type.value for org_type in OrgType)
        raise InvalidInput(f"unknown organisation type {value!r}; allowed: {allowed}") from None


def parse_org_id(value: str) -> OrgId:
    """Return ``value`` as an ``OrgId`` if it is a slug of ``[a-z0-9-]{2,40}``.

    Raise ``InvalidInput`` naming the value otherwise.
    """
    if not isinstance(value, str) or _ORG_ID.fullmatch(value) is None:
        raise InvalidInput(f"invalid organisation id {value!r}: expected {ORG_ID_RULE}")
    return OrgId(value)


def parse_member_id(value: str) -> str:
    """Return ``value`` if it is a member id (``MEMBER_ID_RULE``); raise ``InvalidInput``.

    Member ids are ids, not names: ASCII only, so that two peers never disagree
    over Unicode normalisation of a key. Uniqueness within an organisation is
    the governance contract's business, not this function's.
    """
    if not isinstance(value, str) or _MEMBER_ID.fullmatch(value) is None:
        raise InvalidInput(f"invalid member id {value!r}: expected {MEMBER_ID_RULE}")
    return value


def parse_org_name(value: str) -> str:
    """Return ``value`` if it can be an organisation's display name; raise ``InvalidInput``.

    Any printable Unicode (Chinese names such as 北京协和医院 included) without
    leading or trailing white space, at most 64 bytes in UTF-8. RFC 5280
    Appendix A bounds a common name at 64 characters (``ub-common-name``);
    ``cryptography`` counts UTF-8 bytes instead, so 21 Chinese characters is
    the most a name can hold.
    """
    if (
        not isinstance(value, str)
        or not value
        or len(value.encode("utf-8")) > MAX_NAME_BYTES
        or not value.isprintable()
        or value != value.strip()
    ):
        raise InvalidInput(
            f"invalid organisation name {value!r}: expected printable characters without "
            f"leading or trailing white space, 1 to {MAX_NAME_BYTES} bytes in UTF-8"
        )
    return value
