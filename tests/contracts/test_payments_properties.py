"""Money is conserved under random sequences of payments operations on a real node.

Hypothesis draws batches of operations (issue, redeem, transfer, hold, capture,
release, a cross-currency payment), many of them impossible (overdrafts,
captures of closed holds, redeeming more than the bank holds). Each batch is
submitted at once, so several operations share a block and run against each
other's effects. After every batch, per currency: what is outstanding (issued
minus redeemed, by all banks) equals the sum of every account's balance and held
amount, no balance or held amount is negative, and each open hold's amount is
reflected in its payer's held total.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carechain.api.client import build_transaction
from carechain.identity.wallet import Credentials
from carechain.node.node import Node

Member = Callable[[str], Credentials]
OWNERS = {  # account owner -> the member who moves its money
    "icbc": "icbc/admin",
    "pumch": "pumch/admin",
    "chaoyang-clinic": "chaoyang-clinic/admin",
    "pumch:patient-7f3a9c": "pumch/patient-7f3a9c",
}
CURRENCIES = ("CNY", "USD", "JPY")

owner = st.sampled_from(sorted(OWNERS))
currency = st.sampled_from(CURRENCIES)
amount = st.integers(min_value=1, max_value=50_000)
operation = st.one_of(
    st.tuples(st.just("issue"), owner, currency, amount),
    st.tuples(st.just("redeem"), currency, amount),
    st.tuples(st.just("transfer"), owner, owner, currency, amount),
    st.tuples(st.just("hold"), owner, owner, currency, amount),
    st.tuples(st.just("capture"), st.integers(0, 20), st.integers(0, 60_000)),
    st.tuples(st.just("release"), st.integers(0, 20)),
    st.tuples(st.just("fx"), owner, owner, st.sampled_from(("USD", "CNY")), amount),
)


class World:
    """The node, its members, and the holds opened so far (by position)."""

    def __init__(self, node: Node, member: Member) -> None:
        self.node = node
        self.member = member
        self.holds: list[tuple[str, str, str]] = []  # (id, payer, payee)
        now = int(time.time() * 1000)
        self.quote = f"fxq-{secrets.token_hex(12)}"
        self.submit_all([self.tx("icbc", "post_quote", {"quote": self.quote, "base": "USD",
            "counter": "CNY", "rate": "7.1235", "valid_from": now - 1000,
            "valid_until": now + 6 * 24 * 3600 * 1000})])  # fmt: skip

    def tx(self, who: str, method: str, args: dict[str, Any]) -> Any:
        return build_transaction(self.member(OWNERS[who]), "demo", "payments", method, args)

    def build(self, op: tuple[Any, ...]) -> Any:
        kind = op[0]
        if kind == "issue":
            _, to, ccy, n = op
            return self.tx("icbc", "issue", {"to": to, "currency": ccy, "amount": n})
        if kind == "redeem":
            _, ccy, n = op
            return self.tx("icbc", "redeem", {"currency": ccy, "amount": n})
        if kind == "transfer":
            _, payer, to, ccy, n = op
            return self.tx(payer, "transfer", {"to": to, "currency": ccy, "amount": n})
        if kind == "hold":
            _, payer, payee, ccy, n = op
            hold = f"hold-{secrets.token_hex(12)}"
            self.holds.append((hold, payer, payee))
            expires = int(time.time() * 1000) + 3_600_000
            return self.tx(payer, "hold", {"hold": hold, "payee": payee, "currency": ccy,
                                           "amount": n, "expires": expires})  # fmt: skip
        if kind == "fx":
            _, payer, to, ccy, n = op
            return self.tx(payer, "transfer_fx", {"to": to, "currency": ccy, "amount": n,
                                                  "quote": self.quote})  # fmt: skip
        if not self.holds:
            return None
        hold, payer, payee = self.holds[op[1] % len(self.holds)]
        if kind == "capture":
            return self.tx(payee, "capture", {"hold": hold, "amount": op[2]})
        return self.tx(payee if op[1] % 2 else payer, "release", {"hold": hold})

    def submit_all(self, txs: list[Any]) -> None:
        receipts = self.node.submit(txs)
        for receipt in receipts:
            assert not isinstance(receipt, Exception), receipt
            assert receipt.wait(10)

    def check(self) -> None:
        totals: dict[str, int] = {}
        held: dict[tuple[str, str], int] = {}
        for key, raw in self.node.state.scan("payments/account/"):
            doc = orjson.loads(raw)
            assert doc["balance"] >= 0 and doc["held"] >= 0, (key, doc)
            totals[doc["currency"]] = totals.get(doc["currency"], 0) + doc["balance"] + doc["held"]
            held[(doc["owner"], doc["currency"])] = doc["held"]
        by_banks: dict[str, int] = {}
        for key, raw in self.node.state.scan("payments/issuer/"):
            doc = orjson.loads(raw)
            assert 0 <= doc["redeemed"] <= doc["issued"], (key, doc)
            ccy = key.rsplit("/", 1)[1]
            by_banks[ccy] = by_banks.get(ccy, 0) + doc["issued"] - doc["redeemed"]
        for key, raw in self.node.state.scan("payments/supply/"):
            doc = orjson.loads(raw)
            ccy = key.rsplit("/", 1)[1]
            assert doc["outstanding"] == totals.get(ccy, 0) == by_banks[ccy], (ccy, doc, totals)
        open_holds: dict[tuple[str, str], int] = {}
        for _, raw in self.node.state.scan("payments/hold/"):
            doc = orjson.loads(raw)
            if doc["status"] == "open":
                slot = (doc["payer"], doc["currency"])
                open_holds[slot] = open_holds.get(slot, 0) + doc["amount"]
        assert {k: v for k, v in held.items() if v} == open_holds


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.lists(operation, min_size=1, max_size=12), min_size=1, max_size=4))
def test_money_is_conserved_under_random_operations(
    node: Node, member: Member, batches: list[list[tuple[Any, ...]]]
) -> None:
    world = World(node, member)
    for batch in batches:
        txs = [tx for tx in (world.build(op) for op in batch) if tx is not None]
        if txs:
            world.submit_all(txs)
        world.check()
