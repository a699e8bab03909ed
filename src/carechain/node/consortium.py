"""Create a consortium from its configuration: CAs, member certificates, genesis.

``carechain init --config consortium.toml --out DIR`` writes::

    DIR/consortium.toml                 the configuration it was made from
    DIR/orgs/<org>/ca.pem, ca.key       each organisation's CA
    DIR/orgs/<org>/members/<id>.pem/.key  each member's certificate and key
    DIR/node/                           the embedded node's data directory:
        node.toml, genesis.json, keys/orderer.*, keys/peer.*

or, for a consortium of peers ordering through etcd (``peers=[org, ...]``),
one data directory per peer instead of ``node/``::

    DIR/peers/<org>/                    node.toml (etcd), genesis.json, keys/orderer.*,
                                        keys/peer.*, certified by that organisation's CA

The configuration (TOML)::

    chain = "demo"
    suite = "intl"
    validity_days = 825

    [policies]
    proposal_ttl_days = 7

    [node]
    org = "pumch"          # whose CA certifies the node's orderer and peer keys
    api_port = 8700

    [[orgs]]
    id = "pumch"
    name = "北京协和医院"
    type = "hospital"
    members = [{ id = "admin", role = "admin" }, { id = "dr-wang", role = "clinician" }]

Every organisation needs at least one admin. In a real deployment each
organisation generates its own CA key and sends only its CA certificate; this
command is for setting up a test or demonstration consortium in one place.
"""

from __future__ import annotations

import json
import shutil
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from carechain.crypto.canonical import canonical_bytes
from carechain.crypto.suite import get_suite
from carechain.errors import CarechainError, ConfigError
from carechain.identity.certificates import create_org_ca, issue_member_certificate
from carechain.identity.keys import write_private_key
from carechain.identity.roles import OrgType, Role
from carechain.identity.wallet import Credentials, save_credentials
from carechain.ledger.block import batch_to_json, make_batch
from carechain.ledger.transaction import Fingerprint, Transaction, sign_transaction
from carechain.node.config import CONFIG_NAME, GENESIS_NAME, render_config

DEMO_CONSORTIUM = """\
# The demo consortium `make run` starts with: a hospital, a clinic, a pharmacy,
# a manufacturer, a distributor, a medical insurer, a bank, a research sponsor
# and a regulator. Member ids are pseudonymous; patients never appear by name.
chain = "demo"
suite = "intl"
validity_days = 825

[policies]
proposal_ttl_days = 7

[node]
org = "pumch"
api_port = 8700

[[orgs]]
id = "pumch"
name = "北京协和医院 Peking Union Medical College Hospital"
type = "hospital"
members = [
  { id = "admin", role = "admin" },
  { id = "dr-wang", role = "clinician" },
  { id = "patient-7f3a9c", role = "patient" },
]

[[orgs]]
id = "chaoyang-clinic"
name = "朝阳社区诊所 Chaoyang Community Clinic"
type = "clinic"
members = [{ id = "admin", role = "admin" }, { id = "dr-zhao", role = "clinician" }]

[[orgs]]
id = "yf-pharmacy"
name = "益丰大药房 Yifeng Pharmacy"
type = "pharmacy"
members = [{ id = "admin", role = "admin" }, { id = "ph-chen", role = "pharmacist" }]

[[orgs]]
id = "sinopharm-mfg"
name = "国药集团 Sinopharm Manufacturing"
type = "manufacturer"
members = [{ id = "admin", role = "admin" }, { id = "qa-01", role = "staff" }]

[[orgs]]
id = "jd-logistics"
name = "京东物流 JD Logistics"
type = "distributor"
members = [{ id = "admin", role = "admin" }]

[[orgs]]
id = "bj-nhsa"
name = "北京市医疗保障局 Beijing Healthcare Security Bureau"
type = "insurer"
members = [{ id = "admin", role = "admin" }, { id = "claims-01", role = "staff" }]

[[orgs]]
id = "icbc"
name = "中国工商银行 ICBC"
type = "bank"
members = [{ id = "admin", role = "admin" }]

[[orgs]]
id = "cr-sponsor"
name = "Clinical Research Sponsor"
type = "sponsor"
members = [{ id = "admin", role = "admin" }]

[[orgs]]
id = "nmpa"
name = "国家药品监督管理局 NMPA"
type = "regulator"
members = [{ id = "admin", role = "admin" }, { id = "auditor-01", role = "auditor" }]
"""


@dataclass(frozen=True)
class PeerSpec:
    """One peer of a consortium ordering through etcd."""

    org: str
    api_port: int


@dataclass(frozen=True)
class Consortium:
    directory: Path
    node_dir: Path
    """The embedded node's directory, or the first peer's."""
    chain: str
    members: dict[str, Credentials]
    """``org/member`` -> credentials, for every member created."""
    peer_dirs: dict[str, Path] = field(default_factory=dict)
    """org -> data directory of its peer (etcd consortia only)."""


def _require(doc: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = doc.get(key)
    if value is None:
        raise ConfigError(f"{where}: {key} is missing")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {key} must be {kind.__name__}")
    return value


def parse_consortium(text: str, source: str = "consortium config") -> dict[str, Any]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    _require(doc, "chain", str, source)
    orgs = _require(doc, "orgs", list, source)
    if not orgs:
        raise ConfigError(f"{source}: needs at least one [[orgs]] entry")
    seen: set[str] = set()
    for index, org in enumerate(orgs):
        where = f"{source}: orgs[{index}]"
        if not isinstance(org, dict):
            raise ConfigError(f"{where} must be a table")
        org_id = _require(org, "id", str, where)
        if org_id in seen:
            raise ConfigError(f"{where}: organisation id {org_id!r} appears twice")
        seen.add(org_id)
        _require(org, "name", str, where)
        try:
            OrgType(_require(org, "type", str, where))
        except ValueError:
            allowed = ", ".join(t.value for t in OrgType)
            raise ConfigError(f"{where}: type {org['type']!r} is not one of {allowed}") from None
        members = _require(org, "members", list, where)
        ids: set[str] = set()
        for m_index, member in enumerate(members):
            m_where = f"{where}.members[{m_index}]"
            if not isinstance(member, dict):
                raise ConfigError(f"{m_where} must be a table")
            member_id = _require(member, "id", str, m_where)
            if member_id in ids:
                raise ConfigError(f"{m_where}: member id {member_id!r} appears twice")
            ids.add(member_id)
            role = _require(member, "role", str, m_where)
            if role not in {r.value for r in Role} or role in ("orderer", "peer"):
                raise ConfigError(f"{m_where}: role {role!r} is not a member role")
        if not any(m.get("role") == "admin" for m in members):
            raise ConfigError(f"{where}: organisation {org_id} needs at least one admin")
    node = doc.get("node", {})
    node_org = node.get("org", orgs[0]["id"])
    if node_org not in seen:
        raise ConfigError(f"{source}: [node] org {node_org!r} is not one of the organisations")
    return doc


def create_consortium(
    config_text: str,
    out: Path,
    *,
    now: datetime | None = None,
    api_port: int | None = None,
    peers: list[PeerSpec] | None = None,
    etcd_endpoints: list[str] | None = None,
    max_txn_ops: int = 128,
) -> Consortium:
    """Write keys, certificates and the genesis batch for ``config_text`` into ``out``.

    With ``peers`` (and ``etcd_endpoints``), one data directory per peer under
    ``peers/<org>`` instead of the embedded node's ``node/``.
    """
    doc = parse_consortium(config_text)
    org_ids = [org["id"] for org in doc.get("orgs", [])]
    for spec in peers or []:
        if spec.org not in org_ids:
            raise ConfigError(f"peer organisation {spec.org!r} is not in the consortium")
    if peers and not etcd_endpoints:
        raise ConfigError("peers order through etcd: give the etcd endpoints")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty; choose a new directory")
    suite = get_suite(doc.get("suite", "intl"))
    chain = doc["chain"]
    start = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(minutes=5)
    days = int(doc.get("validity_days", 825))
    ca_end = start + timedelta(days=days + 30)
    member_end = start + timedelta(days=days)
    out.mkdir(parents=True, exist_ok=True)
    try:
        (out / "consortium.toml").write_text(config_text, "utf-8")
        ca_pems: list[str] = []
        member_pems: list[str] = []
        creds: dict[str, Credentials] = {}
        cas: dict[str, tuple[bytes, bytes]] = {}
        for org in doc["orgs"]:
            org_dir = out / "orgs" / org["id"]
            org_dir.mkdir(parents=True)
            ca_key = suite.generate_private_key()
            ca_pem = create_org_ca(
                org["id"], org["name"], OrgType(org["type"]), ca_key, start, ca_end
            )
            write_private_key(org_dir / "ca.key", ca_key)
            (org_dir / "ca.pem").write_bytes(ca_pem)
            cas[org["id"]] = (ca_pem, ca_key)
            ca_pems.append(ca_pem.decode("ascii"))
            for member in org["members"]:
                key = suite.generate_private_key()
                pem = issue_member_certificate(
                    ca_pem,
                    ca_key,
                    member["id"],
                    Role(member["role"]),
                    suite.public_key(key),
                    start,
                    member_end,
                )
                creds[f"{org['id']}/{member['id']}"] = save_credentials(
                    org_dir / "members" / member["id"], pem, key
                )
                member_pems.append(pem.decode("ascii"))
        node = doc.get("node", {})
        node_dirs: list[tuple[Path, str]] = (
            [(out / "peers" / spec.org, spec.org) for spec in peers]
            if peers
            else [(out / "node", node.get("org", doc["orgs"][0]["id"]))]
        )
        orderers: list[Credentials] = []
        for data_dir, org_id in node_dirs:
            node_ca_pem, node_ca_key = cas[org_id]
            for role in (Role.ORDERER, Role.PEER):
                key = suite.generate_private_key()
                pem = issue_member_certificate(
                    node_ca_pem,
                    node_ca_key,
                    f"node-{role.value}",
                    role,
                    suite.public_key(key),
                    start,
                    member_end,
                )
                saved = save_credentials(data_dir / "keys" / role.value, pem, key)
                if role is Role.ORDERER:
                    orderers.append(saved)
                member_pems.append(pem.decode("ascii"))
        ttl_days = int(doc.get("policies", {}).get("proposal_ttl_days", 7))
        orderer = orderers[0]
        genesis_time = int(time.time() * 1000) if now is None else int(now.timestamp() * 1000)
        body = Transaction(
            chain=chain,
            contract="governance",
            method="genesis",
            args={
                "chain": chain,
                "suite": suite.name,
                "orgs": ca_pems,
                "members": member_pems,
                "policies": {"proposal_ttl_ms": ttl_days * 24 * 3600 * 1000},
            },
            signer=Fingerprint(orderer.fingerprint),
            nonce="genesis",
            timestamp_ms=genesis_time,
        )
        genesis_tx = sign_transaction(body, {Fingerprint(orderer.fingerprint): orderer.private_key})
        batch = make_batch(
            chain,
            0,
            genesis_time,
            [genesis_tx],
            Fingerprint(orderer.fingerprint),
            orderer.private_key,
            suite,
        )
        genesis = canonical_bytes(batch_to_json(batch))
        if peers:
            urls = [f"http://127.0.0.1:{spec.api_port}" for spec in peers]
            for (data_dir, org_id), spec in zip(node_dirs, peers, strict=True):
                (data_dir / GENESIS_NAME).write_bytes(genesis)
                (data_dir / CONFIG_NAME).write_text(
                    render_config(
                        chain,
                        suite.name,
                        spec.api_port,
                        etcd_endpoints=etcd_endpoints,
                        peer_id=org_id,
                        max_txn_ops=max_txn_ops,
                        peers=[u for u in urls if u != f"http://127.0.0.1:{spec.api_port}"],
                    ),
                    "utf-8",
                )
        else:
            node_dir = node_dirs[0][0]
            (node_dir / GENESIS_NAME).write_bytes(genesis)
            port = api_port if api_port is not None else int(node.get("api_port", 8700))
            # The embedded node keeps the vaults of every hospital and clinic of the
            # consortium, each under its own key (a consortium peer keeps its own).
            custodians = [org["id"] for org in doc["orgs"] if org["type"] in ("hospital", "clinic")]
            (node_dir / CONFIG_NAME).write_text(
                render_config(chain, suite.name, port, vault_orgs=custodians), "utf-8"
            )
        (out / "members.json").write_text(
            json.dumps({name: c.fingerprint for name, c in sorted(creds.items())}, indent=2),
            "utf-8",
        )
    except CarechainError:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return Consortium(
        out,
        node_dirs[0][0],
        chain,
        creds,
        {org_id: data_dir for data_dir, org_id in node_dirs} if peers else {},
    )
