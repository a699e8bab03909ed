"""Identity: who may sign what on a carechain ledger.

Each consortium organisation runs an X.509 certificate authority with an
Ed25519 key; it certifies its members (clinicians, pharmacists, patients, nodes)
with a role. ``load_org_ca`` and ``load_member`` turn certificate bytes into
``Organisation`` and ``Member`` values deterministically, never reading the
clock, so every peer agrees on who a signer is; callers check validity against
block time with ``is_valid_at``. Key files (PKCS#8 PEM) live in ``keys``.

Callers may rely on:

* a ``Fingerprint`` is the lower-case hex SHA-256 of a certificate's DER bytes
  and names a member or organisation CA on the ledger;
* ``load_*`` either returns a fully checked value or raises
  ``InvalidCertificate`` naming the problem; creating certificates or key files
  raises ``ConfigError`` for a bad argument;
* raw keys are the crypto suite's: 32-byte Ed25519 seeds and public keys.
"""

from carechain.identity.certificates import (
    Fingerprint,
    Member,
    Organisation,
    create_org_ca,
    fingerprint_of,
    issue_member_certificate,
    load_member,
    load_org_ca,
)
from carechain.identity.keys import (
    private_key_from_pem,
    private_key_to_pem,
    public_key_for,
    public_key_from_pem,
    public_key_to_pem,
    read_private_key,
    write_private_key,
)
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

__all__ = [
    "Fingerprint",
    "Member",
    "OrgId",
    "OrgType",
    "Organisation",
    "Role",
    "create_org_ca",
    "fingerprint_of",
    "issue_member_certificate",
    "load_member",
    "load_org_ca",
    "parse_member_id",
    "parse_org_id",
    "parse_org_name",
    "parse_org_type",
    "parse_role",
    "private_key_from_pem",
    "private_key_to_pem",
    "public_key_for",
    "public_key_from_pem",
    "public_key_to_pem",
    "read_private_key",
    "write_private_key",
]
