"""The contract runtime on a real node: co-signatures, expiry at block time, argument checks."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carechain.api.client import build_transaction
from carechain.contracts.runtime import Args, Context, Contract, contract_method
from carechain.crypto.suite import DEFAULT
from carechain.errors import CertificateExpired
from carechain.identity.certificates import fingerprint_of, issue_member_certificate
from carechain.identity.keys import read_private_key
from carechain.identity.roles import OrgType, Role
from carechain.identity.wallet import Credentials
from carechain.ledger.transaction import Fingerprint, add_signature
from carechain.node.config import load_config
from carechain.node.consortium import Consortium
from carechain.node.node import Node

Member = Callable[[str], Credentials]
_FP = re.compile(r"[0-9a-f]{64}")


class Handover(Contract):
    """A custody hand-over: the receiver must co-sign, so nobody pushes stock onto others."""

    name = "handover"

    @contract_method(
        org_types={OrgType.HOSPITAL, OrgType.PHARMACY},
        cosigners=lambda args: [args.text("receiver", pattern=_FP)],
    )
    def hand_over(self, ctx: Context, args: Args) -> None:
        receiver = args.text("receiver", pattern=_FP)
        item = args.text("item", max_length=32)
        ctx.put(f"item/{item}", {"holder": receiver, "from": ctx.caller.fingerprint})


class Faulty(Contract):
    """A contract with bugs: arithmetic that overflows, deep recursion, a bad helper call."""

    name = "faulty"

    @contract_method()
    def overflow(self, ctx: Context, args: Args) -> None:
        ctx.put("touched", True)
        datetime(9999, 12, 31) + timedelta(days=1)  # OverflowError

    @contract_method()
    def recurse(self, ctx: Context, args: Args) -> None:
        def down(n: int) -> int:
            return down(n + 1) + 1

        down(0)


@pytest.fixture
def faulty_node(node_dir: Path) -> Node:
    node = Node(load_config(node_dir))
    node.executor.contracts["faulty"] = Faulty()
    node.start()
    yield node  # type: ignore[misc]
    node.stop()


def test_a_contract_bug_is_recorded_and_the_chain_goes_on(
    faulty_node: Node, member: Member
) -> None:
    """Any exception in a contract (not only the common ones) is the transaction's fault:
    every peer meets it on the same block, and a node that stopped on it would stop them all."""
    doctor = member("pumch/dr-wang")
    for method in ("overflow", "recurse"):
        tx = build_transaction(doctor, "demo", "faulty", method, {})
        status = faulty_node.submit_one(tx, wait_s=10)
        assert status.code == "contract_fault", (method, status)
        assert faulty_node.state.get("faulty/touched") is None
    after = build_transaction(doctor, "demo", "notary", "anchor", {"digest": "ab" * 32})
    assert faulty_node.submit_one(after, wait_s=10).code == "ok"


@pytest.fixture
def handover_node(node_dir: Path) -> Node:
    node = Node(load_config(node_dir))
    node.executor.contracts["handover"] = Handover()
    node.start()
    yield node  # type: ignore[misc]
    node.stop()


def test_method_needing_a_co_signature(handover_node: Node, member: Member) -> None:
    sender, receiver = member("pumch/dr-wang"), member("yf-pharmacy/ph-chen")
    args = {"receiver": receiver.fingerprint, "item": "pack-1"}

    alone = build_transaction(sender, "demo", "handover", "hand_over", args)
    status = handover_node.submit_one(alone, wait_s=10)
    assert status.code == "forbidden" and "co-signature" in (status.message or "")

    both = build_transaction(
        sender, "demo", "handover", "hand_over", args, cosigners=[receiver.fingerprint]
    )
    both = add_signature(both, Fingerprint(receiver.fingerprint), receiver.private_key)
    status = handover_node.submit_one(both, wait_s=10)
    assert status.code == "ok", status.message
    value, _ = handover_node.state_value("handover/item/pack-1")
    assert value == {"holder": receiver.fingerprint, "from": sender.fingerprint}


def test_organisation_type_is_enforced(handover_node: Node, member: Member) -> None:
    banker, receiver = member("icbc/admin"), member("yf-pharmacy/ph-chen")
    tx = build_transaction(
        banker,
        "demo",
        "handover",
        "hand_over",
        {"receiver": receiver.fingerprint, "item": "pack-2"},
        cosigners=[receiver.fingerprint],
    )
    tx = add_signature(tx, Fingerprint(receiver.fingerprint), receiver.private_key)
    status = handover_node.submit_one(tx, wait_s=10)
    assert status.code == "forbidden" and "organisation type bank" in (status.message or "")


def test_unknown_contract_and_method_are_recorded(handover_node: Node, member: Member) -> None:
    doctor = member("pumch/dr-wang")
    for contract, method, code in [
        ("ghost", "run", "unknown_contract"),
        ("notary", "erase", "unknown_method"),
        ("governance", "genesis", "unknown_method"),
    ]:
        tx = build_transaction(doctor, "demo", contract, method, {})
        assert handover_node.submit_one(tx, wait_s=10).code == code


def test_expired_certificate_cannot_sign(
    node: Node, consortium: Consortium, member: Member
) -> None:
    base = consortium.directory / "orgs" / "pumch"
    now = datetime.now(UTC).replace(microsecond=0)
    key = DEFAULT.generate_private_key()
    pem = issue_member_certificate(
        (base / "ca.pem").read_bytes(),
        read_private_key(base / "ca.key"),
        "locum-1",
        Role.CLINICIAN,
        DEFAULT.public_key(key),
        now - timedelta(minutes=1),
        now + timedelta(seconds=2),
    )
    locum = Credentials(fingerprint_of(pem), pem, key)
    register = build_transaction(
        member("pumch/admin"),
        "demo",
        "governance",
        "register_member",
        {"certificate": pem.decode()},
    )
    assert node.submit_one(register, wait_s=10).code == "ok"
    assert (
        node.submit_one(
            build_transaction(locum, "demo", "notary", "anchor", {"digest": "12" * 32}), wait_s=10
        ).code
        == "ok"
    )
    time.sleep(3.2)
    with pytest.raises(CertificateExpired, match="has expired"):
        node.submit_one(build_transaction(locum, "demo", "notary", "anchor", {"digest": "34" * 32}))
