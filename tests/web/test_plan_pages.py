"""Instalment plans and accounts in a real browser: a patient accepts a bank's plan (the
clinic is paid at once), pays an instalment and sees a plan fall late; nobody else may
answer or pay it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from playwright.sync_api import expect

from carechain.identity.wallet import Credentials
from carechain.node.node import Node
from claims_support import BANK, PATIENT, balance, ok, send
from web.conftest import Person

Member = Callable[[str], Credentials]
Web = Callable[[str, str], Person]


def offer(node: Node, member: Member, first_due_ms: int) -> str:
    plan = "plan-" + secrets.token_hex(12)
    ok(send(node, member(BANK), "payments", "offer_plan",
            {"plan": plan, "patient": PATIENT, "clinic": "chaoyang-clinic", "currency": "CNY",
             "principal": 300_000, "rate_bp": 600, "instalments": 3, "interval_days": 30,
             "first_due": first_due_ms}))  # fmt: skip
    return plan


def test_a_patient_takes_and_repays_a_plan(web: Web, node: Node, member: Member) -> None:
    ok(send(node, member(BANK), "payments", "issue",
            {"to": "icbc", "currency": "CNY", "amount": 1_000_000}))  # fmt: skip
    ok(send(node, member(BANK), "payments", "issue",
            {"to": PATIENT, "currency": "CNY", "amount": 400_000}))  # fmt: skip
    plan = offer(node, member, int(time.time() * 1000) + 86_400_000)
    patient = web("patient", "pumch/patient-7f3a9c")
    patient.log_in("/web/accounts?lang=en")
    page = patient.page
    expect(page.locator("section[data-currency='CNY'] .balance")).to_have_text("4000.00 CNY")
    # An unknown or malformed plan id is named, not shown.
    page.fill("#find-plan", "plan-123")
    page.click("text=Open a plan")
    expect(page.locator("#error")).to_contain_text("'plan-123' is not a plan id")
    page.goto(patient.url + "/web/accounts")
    row = page.locator(f"#plans tr[data-plan='{plan}']")
    expect(row).to_contain_text("offered")
    expect(row).to_contain_text("3000.00 CNY")
    page.fill("#find-plan", plan)  # or by its id, as the bank gave it
    page.click("text=Open a plan")
    expect(page.locator("#state")).to_have_text("offered")
    expect(page.locator("#schedule tbody tr")).to_have_count(3)
    page.click("#accept")
    expect(page.locator("#notice")).to_have_text("Accepted; the bank has paid the provider.")
    expect(page.locator("#state")).to_have_text("active")
    assert balance(node, "chaoyang-clinic") == 300_000
    left = page.locator("#remaining").inner_text()
    page.click("#pay-instalment")
    expect(page.locator("#notice")).to_have_text("Instalment paid.")
    expect(page.locator("#schedule tr[data-n='1']")).to_contain_text("paid")
    assert page.locator("#remaining").inner_text() != left
    paid = 400_000 - balance(node, PATIENT)
    assert 100_000 < paid < 102_000  # one of three instalments of 3,000.00 CNY at 6% a year
    page.click("text=My accounts")
    expect(page.locator(f"#plans tr[data-plan='{plan}']")).to_contain_text("active")
    entries = page.locator("section[data-currency='CNY'] .entries")
    expect(entries).to_contain_text("instalment")
    entries.locator(f"a:has-text('{plan}')").first.click()
    expect(page.locator("#state")).to_have_text("active")
    # The clinic's admin sees the plan but has no buttons; answering it is refused.
    clinic = web("clinic", "chaoyang-clinic/admin")
    clinic.log_in(f"/web/plans/{plan}")
    expect(clinic.page.locator("#state")).to_be_visible()
    expect(clinic.page.locator("#pay-instalment")).to_have_count(0)
    token = str(clinic.page.locator("input[name=csrf]").first.get_attribute("value"))
    refused = clinic.page.request.post(clinic.url + f"/web/plans/{plan}/pay", form={"csrf": token})
    assert refused.status == 403 and "may not call this method" in refused.text()
    assert 400_000 - balance(node, PATIENT) == paid


def test_a_plan_with_an_unpaid_instalment_shows_late(web: Web, node: Node, member: Member) -> None:
    ok(send(node, member(BANK), "payments", "issue",
            {"to": "icbc", "currency": "CNY", "amount": 1_000_000}))  # fmt: skip
    due = int(time.time() * 1000) + 2_000
    plan = offer(node, member, due)
    ok(send(node, member("pumch/patient-7f3a9c"), "payments", "accept_plan", {"plan": plan}))
    time.sleep(max(0.0, (due - time.time() * 1000) / 1000) + 0.2)
    patient = web("patient", "pumch/patient-7f3a9c")
    patient.log_in(f"/web/plans/{plan}")
    expect(patient.page.locator("#state")).to_have_text("逾期 · 逾期期数: 1")
    expect(patient.page.locator("#schedule tr[data-n='1']")).to_contain_text("逾期")
