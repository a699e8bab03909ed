"""The claims pages in a real browser: a patient follows a claim from submission to
payment and pays the co-pay; the insurer's desk works its review queue; everyone else is
refused; bad input and stale forms change nothing."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from carechain.api.web.logins import WebLogins, totp_code
from carechain.identity.wallet import Credentials
from carechain.node.node import Node
from claims_support import (
    BANK,
    HOSPITAL_DESK,
    PATIENT,
    World,
    balance,
    claim_doc,
    ok,
    send,
    service,
)
from support import license_demo_maker
from web.conftest import PASSWORD, Person

Member = Callable[[str], Credentials]
Web = Callable[[str, str], Person]


@pytest.fixture
def world(node: Node, member: Member) -> World:
    license_demo_maker(node, member("nmpa/admin"))
    made = World(node, member)
    ok(send(node, member(BANK), "payments", "issue",
            {"to": PATIENT, "currency": "CNY", "amount": 50_000}))  # fmt: skip
    return made


def test_a_patient_follows_a_claim_to_payment_and_pays_the_copay(
    web: Web, world: World, node: Node
) -> None:
    claim_id, status = world.claim(HOSPITAL_DESK, [service(record=world.record())])
    ok(status)
    patient = web("patient", "pumch/patient-7f3a9c")
    patient.log_in()
    page = patient.page
    expect(page.locator("#who")).to_contain_text("pumch · 患者")
    page.click("text=我的理赔")
    row = page.locator(f"tr[data-claim='{claim_id}']")
    expect(row).to_contain_text("已支付")  # Chinese first
    expect(row).to_contain_text("135.57 CNY")
    page.click("text=English")
    expect(row).to_contain_text("paid")
    expect(row).to_contain_text("due")  # the co-pay
    row.locator("a").click()
    expect(page.locator("#status")).to_have_text("paid")
    expect(page.locator("#insurer-share")).to_have_text("94.90 CNY")
    expect(page.locator("#patient-share")).to_have_text("40.67 CNY")
    expect(page.locator("#lines tr[data-seq='1'] .rule")).to_have_text("covered by the policy")
    history = page.locator("#history li")
    expect(history).to_have_count(3)  # submitted, approved, paid: no person pressed pay
    before = balance(node, PATIENT)
    page.click("#pay-copay")
    expect(page.locator("#notice")).to_have_text("Co-pay paid.")
    expect(page.locator("#copay")).to_have_text("paid")
    expect(page.locator("#pay-copay")).to_have_count(0)
    expect(page.locator("#history li").last).to_contain_text("co-pay paid")
    assert claim_doc(node, claim_id)["copay"]["status"] == "paid"
    assert balance(node, PATIENT) == before - 4_067
    page.click("text=My accounts")
    expect(page.locator("section[data-currency='CNY'] .balance")).to_have_text(
        f"{(before - 4_067) // 100}.{(before - 4_067) % 100:02d} CNY"
    )
    expect(page.locator("section[data-currency='CNY'] .entries")).to_contain_text(claim_id)
    # The claim's FHIR ClaimResponse, for the same session.
    fhir = page.request.get(patient.url + f"/web/claims/{claim_id}/fhir")
    assert fhir.ok and fhir.json()["resourceType"] == "ClaimResponse"


def test_the_insurer_desk_reviews_its_queue(web: Web, world: World, node: Node) -> None:
    flagged, status = world.claim(HOSPITAL_DESK, [service()])  # no encounter on the chain
    ok(status)
    assert claim_doc(node, flagged)["status"] == "review"
    desk = web("claims", "bj-nhsa/claims-01")
    desk.log_in()
    page = desk.page
    page.click("text=待审核理赔")
    row = page.locator(f"tr[data-claim='{flagged}']")
    expect(row).to_contain_text("链上没有记录显示发生过此次就诊或操作")
    row.locator("a").click()
    expect(page.locator("#flags li[data-flag='phantom_encounter']")).to_be_visible()
    # A note of spaces passes the browser's check; the node refuses it and nothing moves.
    page.fill("#note", "   ")
    page.click("#approve")
    expect(page.locator("#error")).to_contain_text("a review needs a note saying why")
    assert claim_doc(node, flagged)["status"] == "review"
    page.go_back()
    page.fill("#note", "<script>alert(1)</script> encounter confirmed by phone")
    page.click("#approve")
    expect(page.locator("#notice")).to_have_text("已批准,保险方已付款。")
    expect(page.locator("#status")).to_have_text("已支付")
    # The note is shown as text, never run as markup.
    expect(page.locator("#history")).to_contain_text("<script>alert(1)</script>")
    assert page.locator("main script").count() == 0
    doc = claim_doc(node, flagged)
    assert doc["status"] == "paid" and doc["review"]["decision"] == "approve"
    page.click("text=待审核理赔")
    expect(page.locator("#empty")).to_have_text("没有待审核的理赔。")
    # Deciding again is refused by the contract, with its reason.
    again = page.request.post(
        desk.url + f"/web/claims/{flagged}/review",
        form={"decision": "deny", "note": "again", "csrf": csrf_of(desk)},
    )
    assert again.status == 422 and "not in review" in again.text()


def csrf_of(person: Person) -> str:
    person.page.goto(person.url + "/web/")
    return str(person.page.locator("input[name=csrf]").first.get_attribute("value"))


def test_others_are_refused_and_bad_input_is_named(web: Web, world: World, node: Node) -> None:
    claim_id, status = world.claim(HOSPITAL_DESK, [service()])
    ok(status)
    # The hospital's billing desk lists its claims, newest first, with their flags.
    billing = web("billing", "pumch/admin")
    billing.log_in("/web/?lang=en")
    billing.page.click("text=Our claims")
    row = billing.page.locator(f"tr[data-claim='{claim_id}']")
    expect(row).to_contain_text("in review")
    expect(row).to_contain_text("no record on the chain shows this encounter or procedure")
    expect(billing.page.locator("#older")).to_have_count(0)
    # Not logged in: sent to the login page, then back to the page asked for.
    clinician = web("dr-wang", "pumch/dr-wang")
    clinician.page.goto(clinician.url + f"/web/claims/{claim_id}")
    expect(clinician.page).to_have_url(re.compile(r"/web/login\?next="))
    clinician.page.fill("#name", clinician.name)
    clinician.page.fill("#password", "a long wrong password")
    clinician.page.fill("#code", "123456")
    clinician.page.click("#submit")
    expect(clinician.page.locator("#error")).to_have_text(
        "wrong login name, password or one-time code"
    )
    clinician.log_in(f"/web/claims/{claim_id}")
    expect(clinician.page.locator("#error")).to_contain_text(
        "is for its patient, its provider and its insurer only"
    )
    # The patient may not see the insurer's queue or decide a claim.
    patient = web("patient", "pumch/patient-7f3a9c")
    patient.log_in()
    response = patient.page.goto(patient.url + "/web/queue")
    assert response is not None and response.status == 403
    before = node.state.scan("claims/")
    refused = patient.page.request.post(
        patient.url + f"/web/claims/{claim_id}/review",
        form={"decision": "approve", "note": "mine", "csrf": csrf_of(patient)},
    )
    assert refused.status == 403 and "role patient may not call this method" in refused.text()
    # A form from another session (wrong CSRF token) is refused before anything is signed.
    desk = web("claims", "bj-nhsa/claims-01")
    desk.log_in()
    desk.page.fill("#find-claim", f"  {claim_id} ")  # pasted with spaces
    desk.page.click("text=打开")
    expect(desk.page.locator("#status")).to_have_text("人工审核中")
    stale = desk.page.request.post(
        desk.url + f"/web/claims/{claim_id}/review",
        form={"decision": "approve", "note": "ok", "csrf": "not-this-session"},
    )
    assert stale.status == 403 and "out of date" in stale.text()
    # Bad ids are named; unknown ids are not found.
    bad = desk.page.goto(desk.url + "/web/claims/clm-nothex")
    assert bad is not None and bad.status == 400
    expect(desk.page.locator("#error")).to_contain_text("is not a claim id")
    missing = desk.page.goto(desk.url + "/web/claims/clm-" + "0" * 24)
    assert missing is not None and missing.status == 404
    nowhere = desk.page.goto(desk.url + "/web/no-such-page")
    assert nowhere is not None and nowhere.status == 404
    expect(desk.page.locator("#error")).to_have_text("Not Found: /web/no-such-page")
    wrong_method = desk.page.goto(desk.url + f"/web/claims/{claim_id}/review")
    assert wrong_method is not None and wrong_method.status == 405
    assert node.state.scan("claims/") == before
    # Logging out ends the session: the next page asks for a login again.
    desk.page.goto(desk.url + "/web/")
    desk.page.click("#logout")
    expect(desk.page.locator("#notice")).to_have_text("您已退出。")
    desk.page.goto(desk.url + "/web/queue")
    expect(desk.page).to_have_url(re.compile(r"/web/login"))


def test_a_claim_approved_while_the_insurer_is_short_is_paid_from_the_page(
    web: Web, world: World, node: Node, member: Member
) -> None:
    ok(send(node, member("bj-nhsa/admin"), "payments", "transfer",
            {"to": "icbc", "currency": "CNY", "amount": balance(node, "bj-nhsa")}))  # fmt: skip
    claim_id, status = world.claim(HOSPITAL_DESK, [service(record=world.record())])
    ok(status)
    assert claim_doc(node, claim_id)["payment"]["status"] == "awaiting_funds"
    desk = web("claims", "bj-nhsa/claims-01")
    desk.log_in(f"/web/claims/{claim_id}?lang=en")
    page = desk.page
    expect(page.locator("#status")).to_have_text("approved, awaiting payment")
    expect(page.locator("#payment")).to_have_text("waiting for money in the insurer's account")
    # Still short: the contract says so and nothing moves.
    page.click("#settle")
    expect(page.locator("#error")).to_contain_text("insufficient funds")
    assert claim_doc(node, claim_id)["status"] == "approved"
    ok(send(node, member(BANK), "payments", "issue",
            {"to": "bj-nhsa", "currency": "CNY", "amount": 100_000}))  # fmt: skip
    page.goto(desk.url + f"/web/claims/{claim_id}")
    page.click("#settle")
    expect(page.locator("#notice")).to_have_text("Paid.")
    expect(page.locator("#status")).to_have_text("paid")
    expect(page.locator("#payment")).to_have_text("paid · 94.90 CNY")
    assert balance(node, "bj-nhsa") == 100_000 - 9_490


def test_malformed_forms_are_named_and_change_nothing(web: Web, world: World, node: Node) -> None:
    claim_id, status = world.claim(HOSPITAL_DESK, [service()])
    ok(status)
    desk = web("claims", "bj-nhsa/claims-01")
    desk.log_in()
    token = csrf_of(desk)
    before = node.state.scan("claims/")
    review = desk.url + f"/web/claims/{claim_id}/review"
    form = "application/x-www-form-urlencoded"
    cases = [
        ({"content-type": "application/json"}, b'{"decision": "approve"}', 400,
         "send the form as application/x-www-form-urlencoded"),
        ({"content-type": form}, b"note=" + b"x" * 20_000, 413, "the limit is 16384"),
        ({"content-type": form}, b"decision=approve&note=\xff\xfe", 400, "not UTF-8"),
        ({"content-type": form},
         f"decision=approve&decision=deny&note=x&csrf={token}".encode(), 400,
         "sends 'decision' more than once"),
        ({"content-type": form}, f"decision=maybe&note=x&csrf={token}".encode(), 400,
         "choose approve or deny"),
        ({"content-type": form}, f"decision=approve&note={'n' * 501}&csrf={token}".encode(),
         400, "at most 500"),
    ]  # fmt: skip
    for headers, body, code, says in cases:
        answer = desk.page.request.post(review, headers=headers, data=body)
        assert answer.status == code and says in html.unescape(answer.text()), says
    login = desk.page.request.post(
        desk.url + "/web/login", headers={"content-type": form}, data=b"name=\xff"
    )
    assert login.status == 400 and "not UTF-8" in login.text()
    assert node.state.scan("claims/") == before


def test_a_revoked_or_removed_login_is_logged_out(
    web: Web, world: World, node: Node, member: Member
) -> None:
    clinician = web("dr-wang", "pumch/dr-wang")
    clinician.log_in("/web/?lang=en")
    expect(clinician.page.locator("#who")).to_contain_text("dr-wang · pumch")
    fingerprint = member("pumch/dr-wang").fingerprint
    ok(send(node, member("pumch/admin"), "governance", "revoke_certificate",
            {"fingerprint": fingerprint, "reason": "keyCompromise"}))  # fmt: skip
    clinician.page.goto(clinician.url + "/web/")
    expect(clinician.page.locator("#notice")).to_have_text(
        "Your session has ended; please log in again."
    )
    clinician.page.fill("#name", clinician.name)
    clinician.page.fill("#password", PASSWORD)
    clinician.page.fill("#code", totp_code(clinician.secret, time.time() + 30))  # a fresh code
    clinician.page.click("#submit")
    expect(clinician.page.locator("#error")).to_contain_text("may not sign")
    expect(clinician.page.locator("#error")).to_contain_text("is revoked")
    # A login removed while its person is logged in ends at their next page.
    patient = web("patient", "pumch/patient-7f3a9c")
    patient.log_in("/web/claims")
    expect(patient.page.locator("#empty")).to_be_visible()
    WebLogins(node.config.data_dir).remove("patient")
    patient.page.goto(patient.url + "/web/claims")
    expect(patient.page).to_have_url(re.compile(r"/web/login\?next=/web/claims&ended=1"))
