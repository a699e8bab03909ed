"""The payments contract on a real node: money issued by a bank, moved, held in escrow,
exchanged at a quoted rate and lent in instalments, and conserved throughout; every
kind of bad input refused with no state change."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest

from carechain.api.client import build_transaction
from carechain.contracts.payments import convert, half_even, instalment_schedule, plan_state
from carechain.errors import NonCanonical
from carechain.identity.wallet import Credentials
from carechain.ledger.transaction import add_signature
from carechain.node.node import Node, TxStatus

Member = Callable[[str], Credentials]
BANK, HOSPITAL, CLINIC = "icbc/admin", "pumch/admin", "chaoyang-clinic/admin"
PATIENT_MEMBER, PATIENT = "pumch/patient-7f3a9c", "pumch:patient-7f3a9c"
DAY_MS = 24 * 3600 * 1000


def send(node: Node, creds: Credentials, method: str, args: dict[str, Any]) -> TxStatus:
    return node.submit_one(build_transaction(creds, "demo", "payments", method, args), wait_s=10)


def ok(status: TxStatus) -> None:
    assert status.code == "ok", status.message


def state(node: Node, key: str) -> Any:
    raw = node.state.get("payments/" + key)
    return None if raw is None else orjson.loads(raw)


def contract_state(node: Node) -> list[tuple[str, bytes]]:
    return node.state.scan("payments/")


def balance(node: Node, owner: str, ccy: str = "CNY") -> tuple[int, int]:
    doc = state(node, f"account/{owner}/{ccy}")
    return (0, 0) if doc is None else (doc["balance"], doc["held"])


def conserved(node: Node) -> None:
    """outstanding == balances + holds == what banks issued minus redeemed, per currency."""
    totals: dict[str, int] = {}
    for _, raw in node.state.scan("payments/account/"):
        doc = orjson.loads(raw)
        totals[doc["currency"]] = totals.get(doc["currency"], 0) + doc["balance"] + doc["held"]
    supply = {
        key.rsplit("/", 1)[1]: orjson.loads(raw) for key, raw in node.state.scan("payments/supply/")
    }
    by_banks: dict[str, int] = {}
    for key, raw in node.state.scan("payments/issuer/"):
        doc = orjson.loads(raw)
        ccy = key.rsplit("/", 1)[1]
        by_banks[ccy] = by_banks.get(ccy, 0) + doc["issued"] - doc["redeemed"]
    assert set(totals) == set(supply) == set(by_banks)
    for ccy, doc in supply.items():
        assert doc["outstanding"] == totals[ccy] == by_banks[ccy], ccy


def new(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(12)}"


def in_days(days: float) -> int:
    return int(time.time() * 1000 + days * DAY_MS)


def fund(node: Node, member: Member, to: str, amount: int, ccy: str = "CNY") -> None:
    ok(send(node, member(BANK), "issue", {"to": to, "currency": ccy, "amount": amount}))


def test_money_is_issued_moved_and_redeemed_with_a_statement(node: Node, member: Member) -> None:
    fund(node, member, PATIENT, 100_000)
    paid = {"to": "pumch", "currency": "CNY", "amount": 30_000, "reference": "inv-1"}
    ok(send(node, member(PATIENT_MEMBER), "transfer", paid))
    assert balance(node, PATIENT) == (70_000, 0) and balance(node, "pumch") == (30_000, 0)
    # The hospital pays out through the bank: it sends the money back, the bank redeems it.
    ok(
        send(
            node, member(HOSPITAL), "transfer", {"to": "icbc", "currency": "CNY", "amount": 30_000}
        )
    )
    ok(send(node, member(BANK), "redeem", {"currency": "CNY", "amount": 30_000}))
    bank = state(node, "issuer/icbc/CNY")
    assert (bank["issued"], bank["redeemed"]) == (100_000, 30_000)
    assert state(node, "supply/CNY") == {"outstanding": 70_000}
    conserved(node)
    lines = [orjson.loads(v) for _, v in node.state.scan(f"payments/entry/{PATIENT}/CNY/")]
    assert [(x["kind"], x["delta"], x["balance"]) for x in lines] == [
        ("issue", 100_000, 100_000), ("transfer", -30_000, 70_000)]  # fmt: skip
    assert lines[1]["counterparty"] == ["pumch"] and lines[1]["reference"] == "inv-1"


@pytest.mark.parametrize(
    ("who", "method", "args", "code", "words"),
    [
        (HOSPITAL, "issue", {"to": "pumch", "currency": "CNY", "amount": 5}, "forbidden", ""),
        ("bj-nhsa/admin", "issue", {"to": "pumch", "currency": "CNY", "amount": 5}, "forbidden",
         ""),
        (BANK, "issue", {"to": "pumch", "currency": "XYZ", "amount": 5}, "contract_error",
         "not an ISO 4217 currency"),
        (BANK, "issue", {"to": "pumch", "currency": "cny", "amount": 5}, "contract_error",
         "upper case"),
        (BANK, "issue", {"to": "pumch", "currency": "CNY", "amount": 0}, "contract_error",
         "positive"),
        (BANK, "issue", {"to": "pumch", "currency": "CNY", "amount": -5}, "contract_error",
         "positive"),
        (BANK, "issue", {"to": "pumch", "currency": "CNY", "amount": "5"}, "contract_error",
         "integer"),
        (BANK, "issue", {"to": "pumch", "currency": "CNY", "amount": 10**15 + 1},
         "contract_error", "limit"),
        (BANK, "issue", {"to": "nobody", "currency": "CNY", "amount": 5}, "contract_error",
         "unknown account owner"),
        (BANK, "issue", {"to": "pumch:patient-0000", "currency": "CNY", "amount": 5},
         "contract_error", "no patient"),
        (BANK, "issue", {"to": "pumch", "currency": "CNY", "amount": 5, "memo": "x"},
         "contract_error", "unknown argument"),
        (BANK, "redeem", {"currency": "CNY", "amount": 5}, "contract_error",
         "insufficient funds"),
        (PATIENT_MEMBER, "transfer", {"to": "pumch", "currency": "CNY", "amount": 5},
         "contract_error", "no CNY account"),
        ("pumch/dr-wang", "transfer", {"to": "icbc", "currency": "CNY", "amount": 5},
         "forbidden", ""),
        (HOSPITAL, "transfer", {"to": "pumch", "currency": "CNY", "amount": 5},
         "contract_error", "another account"),
    ],
)  # fmt: skip
def test_bad_money_input_is_refused_and_changes_nothing(
    node: Node, member: Member, who: str, method: str, args: dict[str, Any], code: str, words: str
) -> None:
    before = contract_state(node)
    status = send(node, member(who), method, args)
    assert status.code == code and words in (status.message or ""), status.message
    assert contract_state(node) == before


def test_an_amount_with_a_fraction_cannot_even_be_signed(member: Member) -> None:
    with pytest.raises(NonCanonical, match="floating-point"):
        build_transaction(member(BANK), "demo", "payments", "issue",
                          {"to": "pumch", "currency": "CNY", "amount": 1.5})  # fmt: skip


def test_no_overdraft_by_transfers_or_holds_in_one_block(node: Node, member: Member) -> None:
    fund(node, member, "pumch", 1_000)
    hospital = member(HOSPITAL)
    before = contract_state(node)
    assert "insufficient funds" in (send(node, hospital, "transfer", {"to": "icbc",
        "currency": "CNY", "amount": 1_001}).message or "")  # fmt: skip
    assert contract_state(node) == before
    # Two holds of 600 and a transfer of 500 in one block: the first hold fits, the rest not.
    txs = [
        build_transaction(hospital, "demo", "payments", "hold", {"hold": new("hold"),
            "payee": "chaoyang-clinic", "currency": "CNY", "amount": 600,
            "expires": in_days(1)}),
        build_transaction(hospital, "demo", "payments", "hold", {"hold": new("hold"),
            "payee": "chaoyang-clinic", "currency": "CNY", "amount": 600,
            "expires": in_days(1)}),
        build_transaction(hospital, "demo", "payments", "transfer", {"to": "icbc",
            "currency": "CNY", "amount": 500}),
    ]  # fmt: skip
    receipts = node.submit(txs)
    assert all(not isinstance(r, Exception) and r.wait(10) for r in receipts)
    statuses = [node.tx_status(tx.txid) for tx in txs]
    assert len({s.height for s in statuses}) == 1  # one block
    assert [s.code for s in statuses] == ["ok", "contract_error", "contract_error"]
    assert balance(node, "pumch") == (400, 600)
    conserved(node)


def test_a_hold_is_captured_in_part_or_released_and_expires(node: Node, member: Member) -> None:
    fund(node, member, PATIENT, 10_000)
    patient, clinic = member(PATIENT_MEMBER), member(CLINIC)
    first, second = new("hold"), new("hold")
    ok(send(node, patient, "hold", {"hold": first, "payee": "chaoyang-clinic", "currency": "CNY",
                                    "amount": 4_000, "expires": in_days(2)}))  # fmt: skip
    assert balance(node, PATIENT) == (6_000, 4_000)
    # Only the payee captures, at most the hold, and once.
    assert send(node, patient, "capture", {"hold": first}).code == "forbidden"
    over = send(node, clinic, "capture", {"hold": first, "amount": 4_001})
    assert "is for 4000" in (over.message or "")
    assert send(node, patient, "release", {"hold": first}).code == "forbidden"  # not expired
    ok(send(node, clinic, "capture", {"hold": first, "amount": 2_500}))
    assert balance(node, PATIENT) == (7_500, 0) and balance(node, "chaoyang-clinic") == (2_500, 0)
    again = send(node, clinic, "capture", {"hold": first, "amount": 1})
    assert "already captured" in (again.message or "")
    # A hold that has expired cannot be captured; its payer takes it back.
    ok(send(node, patient, "hold", {"hold": second, "payee": "chaoyang-clinic", "currency": "CNY",
                                    "amount": 1_000, "expires": in_days(0.00002)}))  # fmt: skip
    time.sleep(2.5)
    late = send(node, clinic, "capture", {"hold": second})
    assert "expired" in (late.message or "")
    ok(send(node, patient, "release", {"hold": second}))
    assert balance(node, PATIENT) == (7_500, 0)
    stale = send(node, patient, "hold", {"hold": new("hold"), "payee": "pumch",
                                         "currency": "CNY", "amount": 1, "expires": 1})  # fmt: skip
    assert "expires must be after" in (stale.message or "")
    conserved(node)


def test_a_treatment_is_paid_from_escrow_when_recorded_complete(node: Node, member: Member) -> None:
    fund(node, member, PATIENT, 50_000)
    clinic, patient = member(CLINIC), member(PATIENT_MEMBER)
    admission = {"treatment": new("trt"), "patient": PATIENT, "currency": "CNY",
                 "amount": 20_000, "expires": in_days(30)}  # fmt: skip
    # Without the patient's co-signature the clinic cannot touch the patient's money.
    alone = send(node, clinic, "admit", admission)
    assert alone.code == "forbidden" and "must co-sign" in (alone.message or "")
    tx = build_transaction(clinic, "demo", "payments", "admit", admission,
                           cosigners=[patient.fingerprint])  # fmt: skip
    tx = add_signature(tx, patient.fingerprint, patient.private_key)
    ok(node.submit_one(tx, wait_s=10))
    assert balance(node, PATIENT) == (30_000, 20_000)
    hold = state(node, f"hold/{admission['treatment']}")
    assert hold["payee"] == "chaoyang-clinic" and hold["treatment"] == admission["treatment"]
    # Nobody presses pay: recording the treatment complete pays the clinic and returns the rest.
    assert send(node, clinic, "capture", {"hold": hold["id"]}).code == "contract_error"
    ok(send(node, clinic, "complete_treatment",
            {"treatment": admission["treatment"], "amount": 12_345}))  # fmt: skip
    assert balance(node, PATIENT) == (37_655, 0)
    assert balance(node, "chaoyang-clinic") == (12_345, 0)
    done = state(node, f"treatment/{admission['treatment']}")
    assert done["status"] == "completed" and done["charged"] == 12_345
    twice = send(node, clinic, "cancel_treatment", {"treatment": admission["treatment"]})
    assert "already completed" in (twice.message or "")
    assert send(node, member(HOSPITAL), "complete_treatment",
                {"treatment": admission["treatment"], "amount": 1}).code == "forbidden"  # fmt: skip
    conserved(node)


def test_a_cancelled_treatment_gives_the_hold_back(node: Node, member: Member) -> None:
    fund(node, member, PATIENT, 5_000)
    clinic, patient = member(CLINIC), member(PATIENT_MEMBER)
    treatment = new("trt")
    args = {"treatment": treatment, "patient": PATIENT, "currency": "CNY", "amount": 5_000,
            "expires": in_days(3)}  # fmt: skip
    tx = add_signature(
        build_transaction(
            clinic, "demo", "payments", "admit", args, cosigners=[patient.fingerprint]
        ),
        patient.fingerprint,
        patient.private_key,
    )
    ok(node.submit_one(tx, wait_s=10))
    too_much = send(node, clinic, "complete_treatment", {"treatment": treatment, "amount": 5_001})
    assert "is for 5000" in (too_much.message or "")
    ok(send(node, clinic, "cancel_treatment", {"treatment": treatment}))
    assert balance(node, PATIENT) == (5_000, 0)
    conserved(node)


# -- cross-border -----------------------------------------------------------------------------


def test_a_payment_across_currencies_converts_at_the_quoted_rate(
    node: Node, member: Member
) -> None:
    bank = member(BANK)
    fund(node, member, "icbc", 10_000_000)  # the bank's own CNY to pay out
    fund(node, member, "cr-sponsor", 100_000, "USD")
    quote = new("fxq")
    now = int(time.time() * 1000)
    ok(send(node, bank, "post_quote", {"quote": quote, "base": "USD", "counter": "CNY",
        "rate": "7.1235", "valid_from": now - 1000, "valid_until": now + 60_000}))  # fmt: skip
    # 123.45 USD at 7.1235 = 879.396075 CNY -> 879.40 CNY (87940 fen).
    sponsor = member("cr-sponsor/admin")
    wrong = send(node, sponsor, "transfer_fx", {"to": "pumch", "currency": "USD",
        "amount": 12_345, "quote": quote, "expect": 87_939})  # fmt: skip
    assert "gives 87940" in (wrong.message or "")
    ok(send(node, sponsor, "transfer_fx", {"to": "pumch", "currency": "USD", "amount": 12_345,
                                           "quote": quote, "expect": 87_940}))  # fmt: skip
    assert balance(node, "pumch") == (87_940, 0)
    assert balance(node, "cr-sponsor", "USD") == (100_000 - 12_345, 0)
    assert balance(node, "icbc", "USD") == (12_345, 0)
    assert balance(node, "icbc") == (10_000_000 - 87_940, 0)
    conserved(node)
    # A stale quote, one for other currencies, and a rate without a quote are refused.
    stale = new("fxq")
    ok(send(node, bank, "post_quote", {"quote": stale, "base": "USD", "counter": "CNY",
        "rate": "7.1", "valid_from": now - 1000, "valid_until": now + 1500}))  # fmt: skip
    time.sleep(2)
    before = contract_state(node)
    for args, words in [
        ({"quote": stale}, "not valid at this block's time"),
        ({"quote": new("fxq")}, "unknown quote"),
        ({"quote": quote, "currency": "EUR"}, "not for EUR"),
        ({"quote": quote, "currency": "CNY"}, "not for CNY"),  # one direction only
    ]:
        status = send(node, sponsor, "transfer_fx", {"to": "pumch", "currency": "USD",
                                                      "amount": 100, **args})  # fmt: skip
        assert words in (status.message or ""), status
    assert contract_state(node) == before
    for args, words in [
        ({"rate": "0"}, "above zero"),
        ({"rate": "7,1"}, "wrong form"),
        ({"counter": "USD"}, "two different"),
        ({"valid_until": now + 30 * DAY_MS}, "within 7 days"),
    ]:
        quote_args = {"quote": new("fxq"), "base": "USD", "counter": "CNY", "rate": "7.1",
                      "valid_from": now, "valid_until": now + 60_000, **args}  # fmt: skip
        status = send(node, bank, "post_quote", quote_args)
        assert status.code == "contract_error" and words in (status.message or ""), status
    assert send(node, member(HOSPITAL), "post_quote", {}).code == "forbidden"


def test_conversion_rounds_half_to_even_in_minor_units() -> None:
    # 0.5 of a minor unit goes to the even neighbour; exponents differ by currency.
    assert [half_even(Decimal(x)) for x in ("0.5", "1.5", "2.5", "-0.5", "2.5000001")] == [
        0, 2, 2, 0, 3]  # fmt: skip
    assert convert(100, "1.005", 2, 2, False) == 100  # 100.5 fen -> 100
    assert convert(300, "1.005", 2, 2, False) == 302  # 301.5 fen -> 302
    assert convert(1_000, "150.25", 2, 0, False) == 1_502  # 10.00 USD -> 1502.5 JPY -> 1502
    assert convert(1_502, "150.25", 0, 2, True) == 1_000  # and back: 9.9966... USD -> 10.00
    assert convert(1, "0.3", 2, 3, False) == 3  # 0.01 CNY -> 0.003 KWD


# -- instalment plans -------------------------------------------------------------------------


def test_a_schedule_repays_the_principal_exactly() -> None:
    schedule = instalment_schedule(1_200_000, 1_200, 12, 30, 0)
    assert sum(i["principal"] for i in schedule) == 1_200_000
    assert {i["amount"] for i in schedule[:-1]} == {schedule[0]["amount"]}  # equal instalments
    # The annuity formula P r / (1 - (1 + r)^-n), r = 12% x 30/365, in floating point:
    r = 0.12 * 30 / 365
    assert abs(schedule[0]["amount"] - 1_200_000 * r / (1 - (1 + r) ** -12)) <= 0.5
    # Each period's interest is rounded to a fen: the last instalment absorbs the drift.
    assert abs(schedule[-1]["amount"] - schedule[0]["amount"]) <= len(schedule)
    free = instalment_schedule(1_000, 0, 3, 30, 0)
    assert [i["amount"] for i in free] == [333, 333, 334]


def test_treatment_financed_in_instalments(node: Node, member: Member) -> None:
    fund(node, member, "icbc", 1_000_000)
    fund(node, member, PATIENT, 400_000)
    bank, patient = member(BANK), member(PATIENT_MEMBER)
    plan = new("plan")
    offer = {"plan": plan, "patient": PATIENT, "clinic": "chaoyang-clinic", "currency": "CNY",
             "principal": 300_000, "rate_bp": 600, "instalments": 3, "interval_days": 30,
             "first_due": in_days(30)}  # fmt: skip
    ok(send(node, bank, "offer_plan", offer))
    assert send(node, member(CLINIC), "accept_plan", {"plan": plan}).code == "forbidden"
    assert "not active" in (send(node, patient, "pay_instalment", {"plan": plan}).message or "")
    ok(send(node, patient, "accept_plan", {"plan": plan}))
    assert balance(node, "chaoyang-clinic") == (300_000, 0)  # the clinic is paid at once
    doc = state(node, f"plan/{plan}")
    for _ in range(3):
        ok(send(node, patient, "pay_instalment", {"plan": plan}))
    doc = state(node, f"plan/{plan}")
    assert doc["status"] == "paid_off" and doc["paid"] == 3
    total = sum(i["amount"] for i in doc["schedule"])
    assert total > 300_000 and balance(node, PATIENT) == (400_000 - total, 0)
    assert "not active" in (send(node, patient, "pay_instalment", {"plan": plan}).message or "")
    conserved(node)


def test_an_unpaid_instalment_shows_the_plan_late() -> None:
    schedule = [{"due": due, "amount": 10} for due in (100, 200, 300)]
    plan = {"status": "active", "paid": 1, "schedule": schedule}
    assert plan_state(plan, 150)["state"] == "active"
    late = plan_state(plan, 250)
    assert late["state"] == "late" and late["overdue"] == 1 and late["remaining"] == 20
    assert plan_state(dict(plan, paid=3, status="paid_off"), 999)["state"] == "paid_off"


def test_bad_plans_are_refused(node: Node, member: Member) -> None:
    bank = member(BANK)
    base = {"plan": new("plan"), "patient": PATIENT, "clinic": "chaoyang-clinic",
            "currency": "CNY", "principal": 1000, "rate_bp": 600, "instalments": 3,
            "interval_days": 30, "first_due": in_days(30)}  # fmt: skip
    before = contract_state(node)
    for args, words in [
        ({"rate_bp": 10_001}, "over 10000"),
        ({"instalments": 0}, "at least 1"),
        ({"instalments": 361}, "at most 360"),
        ({"first_due": in_days(-1)}, "falls due after today"),
        ({"patient": "pumch:nobody"}, "no patient"),
        ({"clinic": "nowhere"}, "no active organisation"),
        ({"principal": 0}, "positive"),
    ]:
        status = send(node, bank, "offer_plan", {**base, **args})
        assert status.code == "contract_error" and words in (status.message or ""), (args, status)
    assert send(node, member(CLINIC), "offer_plan", base).code == "forbidden"
    assert contract_state(node) == before
    # A bank without the money cannot pay the clinic: accepting fails, nothing moves.
    ok(send(node, bank, "offer_plan", base))
    broke = send(node, member(PATIENT_MEMBER), "accept_plan", {"plan": base["plan"]})
    assert "insufficient funds" in (broke.message or "")
    assert state(node, f"plan/{base['plan']}")["status"] == "offered"


def test_a_quote_has_a_limit_and_can_be_withdrawn(node: Node, member: Member) -> None:
    bank, sponsor = member(BANK), member("cr-sponsor/admin")
    fund(node, member, "icbc", 1_000_000)
    fund(node, member, "cr-sponsor", 10_000, "USD")
    quote, now = new("fxq"), int(time.time() * 1000)
    offer = {"quote": quote, "base": "USD", "counter": "CNY", "rate": "7",
             "valid_from": now - 1000, "valid_until": now + 60_000, "limit": 10_000}  # fmt: skip
    ok(send(node, bank, "post_quote", offer))
    pay = {"to": "pumch", "currency": "USD", "amount": 1_000, "quote": quote}
    ok(send(node, sponsor, "transfer_fx", pay))  # 7,000 of the 10,000 limit
    over = send(node, sponsor, "transfer_fx", pay)
    assert "not enough of its limit" in (over.message or "")
    assert send(node, sponsor, "withdraw_quote", {"quote": quote}).code == "forbidden"
    ok(send(node, bank, "withdraw_quote", {"quote": quote}))
    late = send(node, sponsor, "transfer_fx", dict(pay, amount=100))
    assert "not valid at this block's time" in (late.message or "")
    conserved(node)


def test_a_treatment_hold_is_the_treatments_own(node: Node, member: Member) -> None:
    fund(node, member, PATIENT, 5_000)
    clinic, patient = member(CLINIC), member(PATIENT_MEMBER)
    treatment = new("trt")
    # A hold named like the treatment cannot be made first by anyone else.
    squat = send(node, member(HOSPITAL), "hold", {"hold": treatment, "payee": "pumch",
                 "currency": "CNY", "amount": 1, "expires": in_days(1)})  # fmt: skip
    assert "wrong form" in (squat.message or "")
    args = {"treatment": treatment, "patient": PATIENT, "currency": "CNY", "amount": 3_000,
            "expires": in_days(0.00002)}  # fmt: skip
    tx = add_signature(
        build_transaction(
            clinic, "demo", "payments", "admit", args, cosigners=[patient.fingerprint]
        ),
        patient.fingerprint,
        patient.private_key,
    )
    ok(node.submit_one(tx, wait_s=10))
    # The clinic may not release it behind the treatment's back: it cancels the treatment.
    direct = send(node, clinic, "release", {"hold": treatment})
    assert "cancel the treatment" in (direct.message or "")
    time.sleep(2.5)
    ok(send(node, patient, "release", {"hold": treatment}))  # expired: the patient takes it back
    assert state(node, f"treatment/{treatment}")["status"] == "expired"
    assert balance(node, PATIENT) == (5_000, 0)
    conserved(node)


def test_a_plan_offer_ends_when_its_first_instalment_falls_due(node: Node, member: Member) -> None:
    fund(node, member, "icbc", 100_000)
    plan = new("plan")
    ok(send(node, member(BANK), "offer_plan", {"plan": plan, "patient": PATIENT,
        "clinic": "chaoyang-clinic", "currency": "CNY", "principal": 3_000, "rate_bp": 0,
        "instalments": 3, "interval_days": 30, "first_due": in_days(0.00002)}))  # fmt: skip
    time.sleep(2.5)
    late = send(node, member(PATIENT_MEMBER), "accept_plan", {"plan": plan})
    assert "offer ended" in (late.message or "")
    tiny = send(node, member(BANK), "offer_plan", {"plan": new("plan"), "patient": PATIENT,
        "clinic": "chaoyang-clinic", "currency": "CNY", "principal": 2, "rate_bp": 0,
        "instalments": 3, "interval_days": 30, "first_due": in_days(30)})  # fmt: skip
    assert "at least one minor unit" in (tiny.message or "")


def test_a_refusal_does_not_tell_the_balance(node: Node, member: Member) -> None:
    fund(node, member, "pumch", 1_234)
    refused = send(node, member(HOSPITAL), "transfer",
                   {"to": "icbc", "currency": "CNY", "amount": 5_000})  # fmt: skip
    assert "insufficient funds" in (refused.message or "")
    assert "1234" not in (refused.message or "") and "3766" not in (refused.message or "")


def test_one_bank_cannot_exhaust_the_supply_for_the_others(node: Node, member: Member) -> None:
    """Turnover grows only the issuing bank's own totals: the currency's supply counts
    what is outstanding, so another bank still issues after any amount of churn."""
    bank = member(BANK)
    for _ in range(3):
        ok(send(node, bank, "issue", {"to": "icbc", "currency": "CNY", "amount": 10**15}))
        ok(send(node, bank, "redeem", {"currency": "CNY", "amount": 10**15}))
    assert state(node, "supply/CNY") == {"outstanding": 0}
    assert state(node, "issuer/icbc/CNY")["issued"] == 3 * 10**15
    conserved(node)
