"""``carechain pay`` run as real subprocesses against a real node on 127.0.0.1: money
issued to a patient, held at admission with the patient's co-signature (signed in place,
or passed round as a file for ``tx cosign``), paid on completion; holds, an FX payment at
a bank's quote and an instalment plan; and bad input refused in one line with nothing
signed. Each command costs a Python start, so each test walks through a whole story.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from carechain.node.consortium import Consortium
from carechain.node.node import Node
from support import Server

pytestmark = pytest.mark.integration

BANK, HOSPITAL, CLINIC = "icbc/admin", "pumch/admin", "chaoyang-clinic/admin"
PATIENT_MEMBER, PATIENT = "pumch/patient-7f3a9c", "pumch:patient-7f3a9c"
CLINICIAN, CLINIC_DOCTOR = "pumch/dr-wang", "chaoyang-clinic/dr-zhao"
PHARMACIST = "yf-pharmacy/ph-chen"
REGULATOR, AUDITOR = "nmpa/admin", "nmpa/auditor-01"
UNKNOWN_HOLD = "hold-" + "0" * 24


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


Cli = Callable[..., Run]


@pytest.fixture
def identity(consortium: Consortium) -> Callable[[str], str]:
    """The identity path of a demo member ``org/member``."""

    def path(who: str) -> str:
        org, member_id = who.split("/")
        return str(consortium.directory / "orgs" / org / "members" / member_id)

    return path


@pytest.fixture
def carechain(api: Server, identity: Callable[[str], str]) -> Cli:
    def run(who: str, line: str, *more: str) -> Run:
        """``carechain LINE MORE...`` signed as ``who`` (``org/member`` of the demo
        consortium); ``line`` is split as a shell would, ``more`` is taken as it is."""
        env = {**os.environ, "CARECHAIN_NODE": api.url, "CARECHAIN_IDENTITY": identity(who)}
        done = subprocess.run(
            [sys.executable, "-m", "carechain", *shlex.split(line), *more],
            capture_output=True,
            env=env,
            timeout=60,
        )
        return Run(done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8"))

    return run


@pytest.fixture
def pay(carechain: Cli) -> Cli:
    return lambda who, line, *more: carechain(who, f"pay {line}", *more)


def ok(run: Run) -> str:
    assert run.code == 0, run
    return run.out


def one_line_error(run: Run, *words: str) -> None:
    assert run.code == 2, run
    assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1, run.err
    for word in words:
        assert word in run.err, run.err


def balances(pay: Cli, who: str, owner: str = "") -> dict[str, tuple[str, str]]:
    """``pay balance``: currency -> (available, held), as printed."""
    out = ok(pay(who, f"balance {owner}"))
    rows = [line.split() for line in out.splitlines()[1:]]
    return {r[0]: (f"{r[2]} {r[3]}", f"{r[5]} {r[6]}") for r in rows}


def test_an_admission_is_held_and_paid_on_completion_with_the_patients_co_signature(
    pay: Cli, carechain: Cli, identity: Callable[[str], str], node: Node, tmp_path: Path
) -> None:
    issued = ok(pay(BANK, f"issue --to {PATIENT} --currency CNY 5000"))
    assert issued.startswith(f"issued 5000.00 CNY to {PATIENT}: committed at height ")
    assert balances(pay, PATIENT_MEMBER) == {"CNY": ("5000.00 CNY", "0.00 CNY")}

    # Admission: the clinic's clinician holds 3000.00 of the patient's money, co-signed here.
    admit = f"admit --patient {PATIENT} --currency CNY --amount 3000.00 --patient-identity"
    admitted = pay(CLINIC_DOCTOR, admit, identity(PATIENT_MEMBER))
    treatment = ok(admitted).strip()
    assert treatment.startswith("trt-") and len(treatment) == 28
    assert f"admitted {PATIENT}: 3000.00 CNY of {PATIENT} held for chaoyang-clinic" in admitted.err
    assert balances(pay, PATIENT_MEMBER) == {"CNY": ("2000.00 CNY", "3000.00 CNY")}

    # Completed: the clinic is paid what it cost, the rest goes back to the patient.
    done = ok(pay(CLINIC, f"complete {treatment} 2450.5"))
    assert done.startswith(
        f"completed {treatment}: 2450.50 CNY paid to chaoyang-clinic, 549.50 CNY back to {PATIENT}"
    )
    assert balances(pay, PATIENT_MEMBER) == {"CNY": ("2549.50 CNY", "0.00 CNY")}
    assert balances(pay, CLINIC) == {"CNY": ("2450.50 CNY", "0.00 CNY")}
    one_line_error(pay(CLINIC, f"complete {treatment} 1"), f"{treatment} is already completed")

    # A second admission, passed to the patient as a file: nothing is held until the
    # patient co-signs and it is submitted.
    before = node.state.scan("payments/")
    envelope = tmp_path / "admission.json"
    admit = f"admit --patient {PATIENT} --currency CNY --amount 1000 --expires-in 2d --out"
    second = pay(CLINIC, admit, str(envelope))
    other = ok(second).strip()
    assert f"carechain tx cosign {envelope}" in second.err
    assert node.state.scan("payments/") == before
    one_line_error(carechain(CLINIC, "tx submit", str(envelope)), "missing signature")
    assert ok(carechain(PATIENT_MEMBER, "tx cosign", str(envelope))).startswith("signed ")
    submitted = json.loads(ok(carechain(CLINIC, "tx submit", str(envelope))))
    assert submitted["code"] == "ok", submitted
    assert balances(pay, PATIENT_MEMBER) == {"CNY": ("1549.50 CNY", "1000.00 CNY")}
    cancelled = ok(pay(CLINIC, f"cancel {other}"))
    assert cancelled.startswith(f"cancelled {other}: 1000.00 CNY back to {PATIENT}")

    # The patient's statement, and the supply as the regulator sees it.
    lines = ok(pay(PATIENT_MEMBER, f"statement {PATIENT} CNY")).splitlines()
    assert [line.split()[2] for line in lines] == ["issue", "hold", "capture", "hold", "release"]
    assert "-3000.00 CNY" in lines[1] and "2549.50 CNY" in lines[2]
    paged = pay(PATIENT_MEMBER, f"statement {PATIENT} cny --limit 2")
    assert len(ok(paged).splitlines()) == 2 and "more may follow: --after 000000000002" in paged.err
    supply = ok(pay(REGULATOR, "supply"))
    assert supply.startswith("CNY  issued 5000.00 CNY  redeemed 0.00 CNY  outstanding 5000.00")
    assert supply.rstrip().endswith("conserved")


def test_who_sees_a_balance(pay: Cli) -> None:
    ok(pay(BANK, "issue --to pumch --currency USD 12.34"))
    ok(pay(BANK, f"issue --to {PATIENT} --currency JPY 1500"))
    assert balances(pay, BANK, PATIENT) == {"JPY": ("1500 JPY", "0 JPY")}
    assert balances(pay, AUDITOR, "pumch") == {"USD": ("12.34 USD", "0.00 USD")}
    assert balances(pay, HOSPITAL) == {"USD": ("12.34 USD", "0.00 USD")}
    one_line_error(pay(PATIENT_MEMBER, "balance pumch"), "forbidden", "pumch's patients")
    one_line_error(pay(CLINICIAN, "balance"), "forbidden", "pumch's clinicians")
    one_line_error(pay(CLINICIAN, f"balance {PATIENT}"), "forbidden", "the patient's own")
    one_line_error(pay(HOSPITAL, f"balance {PATIENT}"), "forbidden", "pumch's admins")
    one_line_error(pay(HOSPITAL, "supply"), "forbidden", "only banks, regulators and auditors")
    one_line_error(pay(BANK, "balance cr-sponsor"), "not_found", "cr-sponsor has no account")


PLAN_TO_CLINIC = f"offer-plan --patient {PATIENT} --clinic chaoyang-clinic --currency CNY"


@pytest.mark.parametrize(
    ("who", "line", "words"),
    [
        (BANK, "issue --to pumch --currency XYZ 10", ("ISO 4217",)),
        (BANK, "issue --to pumch --currency CNY 12.345", ("3 decimal places; CNY has 2",)),
        (BANK, "issue --to pumch --currency JPY 1.5", ("JPY has 0",)),
        (BANK, "issue --to pumch --currency CNY -5", ("AMOUNT -5 is negative",)),
        (BANK, "issue --to pumch --currency CNY 0", ("more than 0",)),
        (BANK, "issue --to pumch --currency CNY 1e3", ("plain decimal",)),
        (BANK, "issue --to pumch --currency CNY 99999999999999", ("over the limit",)),
        (BANK, "issue --to nobody --currency CNY 1", ("no active organisation",)),
        (BANK, "issue --to pumch:nobody --currency CNY 1", ("no patient",)),
        (HOSPITAL, "issue --to pumch --currency CNY 1", ("forbidden", "type hospital")),
        (PATIENT_MEMBER, "redeem --currency CNY 1", ("forbidden", "role patient")),
        (CLINICIAN, "transfer --to icbc --currency CNY 1", ("forbidden", "role clinician")),
        (HOSPITAL, "transfer --to pumch --currency CNY 1", ("another account",)),
        (HOSPITAL, "hold --payee icbc --currency CNY 1 --expires-in '7 days'", ("duration",)),
        (HOSPITAL, "hold --payee icbc --currency CNY 1 --expires-in 400d", ("at most 365 days",)),
        (PHARMACIST, f"admit --patient {PATIENT} --currency CNY --amount 1 --out x.json",
         ("forbidden", "role pharmacist")),
        (CLINICIAN, f"admit --patient {PATIENT} --currency CNY --amount -1 --out x.json",
         ("--amount -1 is negative",)),
        (CLINICIAN, f"admit --patient {PATIENT} --currency CNY --amount 1",
         ("--patient-identity DIR", "--out FILE")),
        (CLINIC, f"capture {UNKNOWN_HOLD}", ("not_found", "no hold")),
        (CLINIC, "release hold-123", ("not a hold id",)),
        (CLINIC, f"complete trt-{'0' * 24} 1", ("not_found", "no treatment")),
        (PATIENT_MEMBER, f"accept-plan plan-{'a' * 24}", ("not_found", "no plan")),
        (HOSPITAL, f"fx --to icbc --quote fxq-{'1' * 24} --currency USD 1", ("no quote",)),
        (BANK, "quote --base USD --counter USD --rate 1", ("two different",)),
        (BANK, "quote --base USD --counter CNY --rate -7", ("--rate",)),
        (BANK, "quote --base USD --counter CNY --rate 7 --valid-for 8d", ("at most 7 days",)),
        (BANK, PLAN_TO_CLINIC.replace("chaoyang-clinic", "nowhere") + " --instalments 12 100",
         ("no active organisation nowhere",)),
        (BANK, f"{PLAN_TO_CLINIC} --instalments 12 --annual-rate 4.355 100", ("--annual-rate",)),
        (BANK, f"{PLAN_TO_CLINIC} --instalments 0 100", ("--instalments must be 1 to 360",)),
        (BANK, "statement pumch EURO", ("CURRENCY", "ISO 4217")),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_signs_nothing(
    pay: Cli, node: Node, who: str, line: str, words: tuple[str, ...]
) -> None:
    before, height = node.state.scan("payments/"), node.state.height
    one_line_error(pay(who, line), *words)
    assert node.state.scan("payments/") == before and node.state.height == height


def test_holds_fx_and_an_instalment_plan(pay: Cli, node: Node) -> None:
    for owner, money in (("pumch", "CNY 800"), ("pumch", "USD 500"), ("icbc", "CNY 50000"),
                         (PATIENT, "CNY 3000")):  # fmt: skip
        ok(pay(BANK, f"issue --to {owner} --currency {money}"))

    # Holds: the hospital reserves money for the clinic, which takes part of one and
    # gives the other back.
    hold = "hold --payee chaoyang-clinic --currency CNY --expires-in 2d"
    first = ok(pay(HOSPITAL, f"{hold} 200")).strip()
    second = ok(pay(HOSPITAL, f"{hold} --purpose 'referral 42' 100")).strip()
    assert first.startswith("hold-") and second.startswith("hold-") and first != second
    assert balances(pay, HOSPITAL) == {
        "CNY": ("500.00 CNY", "300.00 CNY"),
        "USD": ("500.00 USD", "0.00 USD"),
    }
    one_line_error(pay(CLINIC, f"capture {first} 200.01"), "the hold is for 200.00 CNY")
    one_line_error(pay(HOSPITAL, f"release {first}"), "forbidden", "only chaoyang-clinic")
    captured = ok(pay(CLINIC, f"capture {first} 120.5"))
    assert captured.startswith(f"captured 120.50 CNY of {first}; 79.50 CNY back to pumch")
    assert ok(pay(CLINIC, f"release {second}")).startswith(f"released {second}: 100.00 CNY")
    one_line_error(pay(CLINIC, f"release {second}"), "already released")

    # FX: the bank quotes; the hospital sees what will arrive before anything is signed.
    quoted = pay(BANK, "quote --base USD --counter CNY --rate 7.1235")
    quote = ok(quoted).strip()
    assert quote.startswith("fxq-") and "1 USD = 7.1235 CNY until" in quoted.err
    assert ok(pay(HOSPITAL, "quotes --base USD")).split()[:2] == [quote, "icbc"]
    fx = f"fx --to chaoyang-clinic --quote {quote} --currency USD 100.00"
    height = node.state.height
    preview = pay(HOSPITAL, f"{fx} --dry-run")
    assert preview.code == 0 and preview.out == "" and node.state.height == height
    assert preview.err.startswith("100.00 USD -> 712.35 CNY to chaoyang-clinic at 1 USD = 7.1235")
    paid = pay(HOSPITAL, fx)
    assert ok(paid).startswith("paid 100.00 USD; chaoyang-clinic received 712.35 CNY")
    assert "-> 712.35 CNY" in paid.err
    assert balances(pay, CLINIC)["CNY"] == ("832.85 CNY", "0.00 CNY")  # 120.50 + 712.35
    back = pay(CLINIC, f"fx --to pumch --quote {quote} --currency CNY 10 --dry-run")
    assert ok(back) == "" and back.err.startswith("10.00 CNY -> 1.40 USD")  # half to even

    # An instalment plan: offered by the bank, accepted and paid by the patient.
    offer = f"{PLAN_TO_CLINIC} --instalments 3 --every 30 --annual-rate 3.65 1200"
    offered = pay(BANK, offer)
    plan = ok(offered).strip()
    assert plan.startswith("plan-") and "3 instalment(s) of" in offered.err
    shown = ok(pay(PATIENT_MEMBER, f"plan {plan}")).splitlines()
    assert shown[0] == f"{plan}  offered"
    assert len([line for line in shown if line.startswith("    ")]) == 3
    one_line_error(pay(CLINICIAN, f"plan {plan}"), "forbidden", "seen by its parties")
    one_line_error(pay(CLINIC, f"accept-plan {plan}"), "forbidden")
    accepted = ok(pay(PATIENT_MEMBER, f"accept-plan {plan}"))
    assert accepted.startswith(f"accepted {plan}: icbc paid 1200.00 CNY to chaoyang-clinic")
    instalment = ok(pay(PATIENT_MEMBER, f"pay-instalment {plan}"))
    assert instalment.startswith(f"paid instalment 1 of 3 of {plan}: ")
    after = ok(pay(BANK, f"plan {plan}")).splitlines()
    assert after[0] == f"{plan}  active" and after[2].rstrip().endswith("paid")
    assert after[3].rstrip().endswith("next")
    as_json = json.loads(ok(pay(AUDITOR, f"plan {plan} --json")))
    assert (as_json["paid"], as_json["state"]) == (1, "active")

    declined = ok(pay(BANK, offer)).strip()
    assert ok(pay(PATIENT_MEMBER, f"decline-plan {declined}")).startswith(f"declined {declined}")
    one_line_error(pay(PATIENT_MEMBER, f"accept-plan {declined}"), "is declined, not offered")
    # The patient's plans, newest offer first; the bank names the patient.
    listed = ok(pay(PATIENT_MEMBER, "plans")).splitlines()
    assert [line.split()[:2] for line in listed] == [[declined, "declined"], [plan, "active"]]
    assert "next" in listed[1] and "next" not in listed[0]
    assert ok(pay(BANK, f"plans --patient {PATIENT}")).splitlines() == listed
    one_line_error(pay(BANK, "plans"), "you are not a patient")
    one_line_error(pay(CLINIC, f"plans --patient {PATIENT}"), "forbidden")

    supply = orjson.loads(ok(pay(AUDITOR, "supply --json")))
    assert supply["conserved"] is True and set(supply["currencies"]) == {"CNY", "USD"}
