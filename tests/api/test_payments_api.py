"""Payments over REST on 127.0.0.1: a route for every contract method, and who may read
accounts, statements, holds, treatments, plans and the money supply.

Every refused call is checked to leave the payments state as it was.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from carechain.api.client import ApiError, NodeClient, build_transaction
from carechain.api.payments import METHODS
from carechain.contracts.payments import Payments, convert
from carechain.ledger.transaction import Fingerprint, add_signature
from carechain.node.node import Node

As = Callable[[str], NodeClient]
BANK, HOSPITAL, CLINIC = "icbc/admin", "pumch/admin", "chaoyang-clinic/admin"
PATIENT_MEMBER, PATIENT = "pumch/patient-7f3a9c", "pumch:patient-7f3a9c"
CLINICIAN, CLINIC_DOCTOR = "pumch/dr-wang", "chaoyang-clinic/dr-zhao"
REGULATOR, AUDITOR = "nmpa/admin", "nmpa/auditor-01"
DAY_MS = 24 * 3600 * 1000


def call(c: NodeClient, method: str, args: dict[str, Any]) -> Any:
    tx = build_transaction(c.creds, "demo", "payments", method, args)
    return c.request("POST", f"/v1/payments/{method}", raw_body=tx.wire_bytes())


def new(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(12)}"


def in_ms(ms: int) -> int:
    return int(time.time() * 1000) + ms


def refused(node: Node, run: Callable[[], Any], status: int, *words: str) -> ApiError:
    """``run`` fails with HTTP ``status`` naming ``words``, and the payments state is as it was."""
    before = node.state.scan("payments/")
    with pytest.raises(ApiError) as caught:
        run()
    assert caught.value.http_status == status, caught.value.message
    for word in words:
        assert word in caught.value.message, caught.value.message
    assert node.state.scan("payments/") == before
    return caught.value


def fund(as_member: As, to: str, amount: int, ccy: str = "CNY") -> None:
    result = call(as_member(BANK), "issue", {"to": to, "currency": ccy, "amount": amount})
    assert result["code"] == "ok", result


def get(c: NodeClient, path: str, **params: Any) -> Any:
    return c.request("GET", f"/v1/payments/{path}", params=params or None)


def test_every_contract_method_has_a_route() -> None:
    assert sorted(METHODS) == Payments().methods()


def test_accounts_and_statements_with_amounts_as_text(as_member: As) -> None:
    fund(as_member, PATIENT, 100_000)
    patient = as_member(PATIENT_MEMBER)
    for n in range(3):
        paid = {"to": "pumch", "currency": "CNY", "amount": 10_050, "reference": f"inv-{n}"}
        assert call(patient, "transfer", paid)["code"] == "ok"
    mine = get(patient, f"accounts/{PATIENT}")
    assert mine["owner"] == PATIENT
    (account,) = mine["accounts"]
    assert (account["currency"], account["balance"], account["held"]) == ("CNY", 69_850, 0)
    assert account["formatted"] == {
        "balance": "698.50 CNY",
        "held": "0.00 CNY",
        "total": "698.50 CNY",
    }
    first = get(patient, f"accounts/{PATIENT}/CNY/entries", limit=2)
    assert [(e["line"], e["kind"], e["delta"]) for e in first["entries"]] == [
        (1, "issue", 100_000),
        (2, "transfer", -10_050),
    ]
    assert first["entries"][1]["formatted"]["delta"] == "-100.50 CNY"
    assert first["entries"][1]["counterparty"] == ["pumch"] and first["next"] == "000000000002"
    rest = get(patient, f"accounts/{PATIENT}/CNY/entries", limit=2, after=first["next"])
    assert [e["line"] for e in rest["entries"]] == [3, 4] and rest["next"] is None
    assert rest["entries"][-1]["reference"] == "inv-2"
    hospital = get(as_member(HOSPITAL), "accounts/pumch")["accounts"][0]
    assert hospital["formatted"]["balance"] == "301.50 CNY"


def test_who_sees_an_account(as_member: As, node: Node) -> None:
    fund(as_member, PATIENT, 5_000)
    fund(as_member, "pumch", 7_000)
    patient, clinician = as_member(PATIENT_MEMBER), as_member(CLINICIAN)
    denied = [
        (patient, "accounts/pumch", "pumch's patients may not see its accounts"),
        (patient, "accounts/pumch:patient-0000", "the patient's own: pumch's patients"),
        (clinician, "accounts/pumch", "pumch's clinicians may not see its accounts"),
        (clinician, f"accounts/{PATIENT}", "the patient's own: pumch's clinicians"),
        (as_member(HOSPITAL), f"accounts/{PATIENT}", "the patient's own: pumch's admins"),
        (as_member(CLINIC), "accounts/pumch/CNY/entries", "not chaoyang-clinic's to see"),
    ]
    for c, path, words in denied:
        error = refused(node, functools.partial(get, c, path), 403, words)
        assert error.code == "forbidden"
    for who in (BANK, REGULATOR, AUDITOR, HOSPITAL):
        assert get(as_member(who), "accounts/pumch")["accounts"][0]["balance"] == 7_000
    for who in (BANK, AUDITOR, PATIENT_MEMBER):
        assert get(as_member(who), f"accounts/{PATIENT}/CNY/entries")["entries"]
    bank = as_member(BANK)
    refused(node, lambda: get(bank, "accounts/nobody"), 404, "nobody has no account")
    refused(node, lambda: get(bank, "accounts/cr-sponsor"), 404, "has no account")
    refused(node, lambda: get(bank, "accounts/pumch/USD/entries"), 404, "no USD account")
    refused(node, lambda: get(bank, "accounts/pumch/XYZ/entries"), 400, "ISO 4217")
    refused(node, lambda: get(bank, "accounts/pumch/CNY/entries", after="x"), 400, "line")


def test_an_admission_is_held_then_paid_on_completion(as_member: As, node: Node) -> None:
    fund(as_member, PATIENT, 500_000)
    clinic, patient = as_member(CLINIC), as_member(PATIENT_MEMBER)
    treatment = new("trt")
    args = {
        "treatment": treatment,
        "patient": PATIENT,
        "currency": "CNY",
        "amount": 300_000,
        "expires": in_ms(30 * DAY_MS),
    }
    # Without the patient's co-signature: refused, nothing held.
    error = refused(node, lambda: call(clinic, "admit", args), 403, "must co-sign")
    assert error.code == "forbidden"
    tx = build_transaction(
        clinic.creds, "demo", "payments", "admit", args, cosigners=[patient.creds.fingerprint]
    )
    tx = add_signature(tx, Fingerprint(patient.creds.fingerprint), patient.creds.private_key)
    result = clinic.request("POST", "/v1/payments/admit", raw_body=tx.wire_bytes())
    assert result["code"] == "ok", result
    seen = get(as_member(CLINIC_DOCTOR), f"treatments/{treatment}")
    assert (seen["status"], seen["clinic"], seen["patient"]) == (
        "admitted",
        "chaoyang-clinic",
        PATIENT,
    )
    hold = get(patient, f"holds/{seen['hold']}")
    assert hold["formatted"]["amount"] == "3000.00 CNY" and hold["treatment"] == treatment
    assert get(as_member(AUDITOR), f"treatments/{treatment}")["id"] == treatment
    for who in (CLINICIAN, HOSPITAL, BANK):  # not a party, not an overseer
        outsider = as_member(who)
        reading = functools.partial(get, outsider, f"treatments/{treatment}")
        refused(node, reading, 403, "seen by its parties")
        refused(node, functools.partial(get, outsider, f"holds/{seen['hold']}"), 403)
    refused(node, lambda: get(patient, f"treatments/{new('trt')}"), 404, "no treatment")

    done = call(
        as_member(CLINIC_DOCTOR), "complete_treatment", {"treatment": treatment, "amount": 245_050}
    )
    assert done["code"] == "ok"
    assert get(patient, f"treatments/{treatment}")["charged"] == 245_050
    assert get(patient, f"holds/{seen['hold']}")["status"] == "captured"
    (mine,) = get(patient, f"accounts/{PATIENT}")["accounts"]
    assert (mine["balance"], mine["held"]) == (500_000 - 245_050, 0)
    assert get(clinic, "accounts/chaoyang-clinic")["accounts"][0]["balance"] == 245_050


def test_holds_are_captured_and_released(as_member: As, node: Node) -> None:
    fund(as_member, "pumch", 100_000)
    hospital, clinic = as_member(HOSPITAL), as_member(CLINIC)
    first, second = new("hold"), new("hold")
    for hold_id in (first, second):
        args = {
            "hold": hold_id,
            "payee": "chaoyang-clinic",
            "currency": "CNY",
            "amount": 20_000,
            "expires": in_ms(DAY_MS),
            "purpose": "referral",
        }
        assert call(hospital, "hold", args)["code"] == "ok"
    assert get(hospital, "accounts/pumch")["accounts"][0]["held"] == 40_000
    refused(node, lambda: call(hospital, "capture", {"hold": first}), 403, "only chaoyang-clinic")
    assert call(clinic, "capture", {"hold": first, "amount": 12_500})["code"] == "ok"
    assert call(clinic, "release", {"hold": second})["code"] == "ok"
    captured = get(clinic, f"holds/{first}")
    assert (captured["status"], captured["formatted"]["captured"]) == ("captured", "125.00 CNY")
    assert get(hospital, f"holds/{second}")["status"] == "released"
    (pumch,) = get(hospital, "accounts/pumch")["accounts"]
    assert (pumch["balance"], pumch["held"]) == (100_000 - 12_500, 0)
    refused(node, lambda: get(hospital, "holds/nonsense"), 404, "no hold")


def test_quotes_and_an_fx_transfer(as_member: As, node: Node) -> None:
    bank, hospital = as_member(BANK), as_member(HOSPITAL)
    fund(as_member, "icbc", 10_000_000)  # the bank's own CNY, paid out on exchange
    fund(as_member, "pumch", 50_000, "USD")
    quote = new("fxq")
    start = in_ms(0)
    posted = {
        "quote": quote,
        "base": "USD",
        "counter": "CNY",
        "rate": "7.1235",
        "valid_from": start - 1000,
        "valid_until": start + 3_600_000,
    }
    assert call(bank, "post_quote", posted)["code"] == "ok"
    listed = get(hospital, "quotes", base="USD", counter="CNY")["quotes"]
    assert [q["id"] for q in listed] == [quote] and listed[0]["provider"] == "icbc"
    assert get(hospital, "quotes", counter="CNY")["quotes"] == listed
    assert get(hospital, "quotes", base="EUR")["quotes"] == []
    refused(node, lambda: get(hospital, "quotes", base="usd"), 400, "upper case")
    assert get(as_member(PATIENT_MEMBER), f"quotes/{quote}")["valid"] is True
    refused(node, lambda: get(hospital, f"quotes/{new('fxq')}"), 404, "no quote")

    expect = convert(10_000, "7.1235", 2, 2, False)
    assert expect == 71_235
    pay = {"to": "chaoyang-clinic", "currency": "USD", "amount": 10_000, "quote": quote}
    refused(
        node,
        lambda: call(hospital, "transfer_fx", {**pay, "expect": expect + 1}),
        422,
        "the quote gives 71235",
    )
    assert call(hospital, "transfer_fx", {**pay, "expect": expect})["code"] == "ok"
    clinic = get(as_member(CLINIC), "accounts/chaoyang-clinic")["accounts"]
    assert [(a["currency"], a["formatted"]["balance"]) for a in clinic] == [("CNY", "712.35 CNY")]


def test_an_instalment_plan_as_its_parties_see_it(as_member: As, node: Node) -> None:
    bank, patient = as_member(BANK), as_member(PATIENT_MEMBER)
    fund(as_member, "icbc", 1_200_000)
    fund(as_member, PATIENT, 200_000)
    plan = new("plan")
    first_due = in_ms(1500)  # falls due while the test runs: the plan turns late
    offer = {
        "plan": plan,
        "patient": PATIENT,
        "clinic": "chaoyang-clinic",
        "currency": "CNY",
        "principal": 1_200_000,
        "rate_bp": 435,
        "instalments": 12,
        "interval_days": 30,
        "first_due": first_due,
    }
    assert call(bank, "offer_plan", offer)["code"] == "ok"
    offered = get(patient, f"plans/{plan}")
    assert (offered["state"], offered["overdue"], offered["next"]) == ("offered", 0, None)
    assert offered["remaining"] == sum(i["amount"] for i in offered["schedule"]) > 1_200_000
    for who in (CLINIC, AUDITOR, BANK):
        assert get(as_member(who), f"plans/{plan}")["id"] == plan
    for who in (HOSPITAL, CLINICIAN):
        refused(node, functools.partial(get, as_member(who), f"plans/{plan}"), 403, "plan-")
    assert call(patient, "accept_plan", {"plan": plan})["code"] == "ok"
    time.sleep(max(0.0, (first_due - in_ms(0)) / 1000 + 0.2))
    late = get(patient, f"plans/{plan}")
    assert (late["state"], late["overdue"], late["next"]["due"]) == ("late", 1, first_due)
    assert call(patient, "pay_instalment", {"plan": plan})["code"] == "ok"
    paid = get(patient, f"plans/{plan}")
    assert (paid["state"], paid["paid"], paid["overdue"]) == ("active", 1, 0)
    assert paid["remaining"] == offered["remaining"] - offered["schedule"][0]["amount"]
    refused(node, lambda: call(bank, "accept_plan", {"plan": plan}), 403, "role admin")
    # The patient's list of plans: for the patient, the banks and overseers only.
    listed = patient.request("GET", f"/v1/patients/{PATIENT}/plans")["plans"]
    assert [(p["id"], p["state"], p["paid"]) for p in listed] == [(plan, "active", 1)]
    assert [p["id"] for p in get_plans(as_member(AUDITOR))] == [plan]
    assert [p["id"] for p in get_plans(bank)] == [plan]
    for who in (CLINIC, HOSPITAL):
        refused(node, functools.partial(get_plans, as_member(who)), 403, "lists their plans")
    refused(node, lambda: patient.request("GET", "/v1/patients/pumch/plans"), 400, "patient id")


def get_plans(c: NodeClient) -> list[dict[str, Any]]:
    return list(c.request("GET", f"/v1/patients/{PATIENT}/plans")["plans"])


def test_the_money_supply_is_conserved_and_only_overseers_see_it(as_member: As, node: Node) -> None:
    fund(as_member, PATIENT, 80_000)
    fund(as_member, "pumch", 3_000, "JPY")
    patient = as_member(PATIENT_MEMBER)
    hold = {
        "hold": new("hold"),
        "payee": "pumch",
        "currency": "CNY",
        "amount": 30_000,
        "expires": in_ms(DAY_MS),
    }
    assert call(patient, "hold", hold)["code"] == "ok"
    paid = {"to": "icbc", "currency": "CNY", "amount": 10_000}
    assert call(patient, "transfer", paid)["code"] == "ok"
    assert call(as_member(BANK), "redeem", {"currency": "CNY", "amount": 10_000})["code"] == "ok"
    for who in (BANK, REGULATOR, AUDITOR):
        doc = get(as_member(who), "supply")
        assert doc["conserved"] is True
        cny, jpy = doc["currencies"]["CNY"], doc["currencies"]["JPY"]
        assert (cny["issued"], cny["redeemed"], cny["outstanding"]) == (80_000, 10_000, 70_000)
        assert (cny["balances"], cny["held"], cny["in_accounts"]) == (40_000, 30_000, 70_000)
        assert cny["formatted"]["outstanding"] == "700.00 CNY" and cny["conserved"] is True
        assert jpy["formatted"]["issued"] == "3000 JPY" and jpy["banks"]["icbc"]["issued"] == 3000
    for who in (HOSPITAL, PATIENT_MEMBER, CLINICIAN):
        refused(
            node,
            functools.partial(get, as_member(who), "supply"),
            403,
            "only banks, regulators and auditors",
        )


@pytest.mark.parametrize(
    ("who", "method", "args", "status", "words"),
    [
        (BANK, "issue", {"to": "pumch", "currency": "XYZ", "amount": 5}, 422, "ISO 4217"),
        (BANK, "issue", {"to": "pumch", "currency": "CNY", "amount": -5}, 422, "positive"),
        (BANK, "issue", {"to": "pumch", "currency": "CNY", "amount": 0}, 422, "positive"),
        (BANK, "issue", {"to": "nobody", "currency": "CNY", "amount": 5}, 422, "unknown account"),
        (BANK, "issue", {"to": "pumch", "currency": "CNY", "amount": "5"}, 422, "integer"),
        (HOSPITAL, "issue", {"to": "pumch", "currency": "CNY", "amount": 5}, 403, "bank"),
        (CLINICIAN, "transfer", {"to": "icbc", "currency": "CNY", "amount": 5}, 403, "clinician"),
        (
            PATIENT_MEMBER,
            "transfer",
            {"to": "pumch", "currency": "CNY", "amount": 5},
            422,
            "insufficient funds",
        ),
        (CLINIC, "capture", {"hold": "hold-" + "0" * 24}, 422, "unknown hold"),
        (
            CLINIC,
            "complete_treatment",
            {"treatment": "trt-" + "0" * 24, "amount": 1},
            422,
            "unknown treatment",
        ),
        (PATIENT_MEMBER, "accept_plan", {"plan": "plan-" + "0" * 24}, 422, "unknown plan"),
    ],
)
def test_bad_calls_are_refused_and_change_nothing(
    as_member: As, node: Node, who: str, method: str, args: dict[str, Any], status: int, words: str
) -> None:
    c = as_member(who)
    error = refused(node, lambda: call(c, method, args), status, words)
    assert error.code in ("forbidden", "contract_error", "invalid_transaction", "non_canonical")


def test_a_route_takes_only_its_own_method(as_member: As, node: Node) -> None:
    bank = as_member(BANK)
    tx = build_transaction(
        bank.creds, "demo", "payments", "issue", {"to": "pumch", "currency": "CNY", "amount": 5}
    )
    refused(
        node,
        lambda: bank.request("POST", "/v1/payments/redeem", raw_body=tx.wire_bytes()),
        400,
        "payments.redeem",
    )
    other = as_member(HOSPITAL)  # someone else's transaction, sent by another member
    refused(
        node,
        lambda: other.request("POST", "/v1/payments/issue", raw_body=tx.wire_bytes()),
        400,
        "signed by the member sending",
    )
