"""``carechain pay``: money issued by banks, transfers, escrow holds, payment on
treatment, FX at a bank's quoted rate and instalment plans.

Each change is a signed ``payments.*`` transaction sent to its own route
(``api/payments.py``), which answers once it commits; the rules are the payments
contract's (``contracts/payments.py``). Everything that can be checked is
checked here first, so that bad input is one line on stderr (exit 2) and
nothing is signed: currencies (ISO 4217), amounts (typed in the currency's unit,
"123.45", turned into minor units with ``parse_amount``, never rounded), ids,
account owners, and whether the caller's role may call the method at all (the
contract's own policy, read against the caller's certificate on the chain).

Commands that create something (``hold``, ``admit``, ``quote``, ``offer-plan``)
print its new id alone on stdout, so ``HOLD=$(carechain pay hold ...)`` works.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from carechain.api.client import NodeClient, build_transaction
from carechain.cli.common import (
    DEFAULT_NODE,
    IdentityOption,
    NodeOption,
    client,
    fail,
    friendly,
    show,
)
from carechain.cli.payments_common import (
    DAY_MS,
    AmountArgument,
    AmountCommand,
    CurrencyOption,
    HoldArgument,
    PlanArgument,
    ReferenceOption,
    ToOption,
    TreatmentArgument,
    allowed,
    app,
    check_owner,
    currency_code,
    duration_ms,
    member_of,
    money,
    new_id,
    now_ms,
    patient_fingerprint,
    read,
    reference_args,
    send,
    submit,
    tell,
)
from carechain.cli.records import AfterOption, JsonOption, LimitOption, committed_line, iso
from carechain.contracts.consent import is_patient
from carechain.contracts.payments import (
    MAX_HOLD_MS,
)
from carechain.crypto.canonical import canonical_bytes
from carechain.identity.wallet import load_credentials
from carechain.ledger.transaction import Fingerprint, add_signature
from carechain.node.payments import own_owner
from carechain.standards.iso4217 import format_amount

__all__ = ["app"]  # the pay app, with every command registered on it

# -- money in and out, transfers -----------------------------------------------------------


@app.command("issue", cls=AmountCommand)
@friendly
def issue(
    to: ToOption,
    ccy: CurrencyOption,
    value: AmountArgument,
    identity: IdentityOption,
    reference: ReferenceOption = "",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Credit an account against a deposit the bank holds (banks only)."""
    code = currency_code(ccy)
    minor = money(value, code)
    extra = reference_args(reference)
    with client(node, identity) as c:
        allowed(c, "issue")
        check_owner(c, to, "--to")
        result = submit(c, "issue", {"to": to, "currency": code, "amount": minor, **extra})
    typer.echo(f"issued {format_amount(minor, code)} to {to}: {committed_line(result)}")


@app.command("redeem", cls=AmountCommand)
@friendly
def redeem(
    ccy: CurrencyOption,
    value: AmountArgument,
    identity: IdentityOption,
    reference: ReferenceOption = "",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Take money out of the bank's own account as it pays it out (banks only)."""
    code = currency_code(ccy)
    minor = money(value, code)
    extra = reference_args(reference)
    with client(node, identity) as c:
        me = allowed(c, "redeem")
        result = submit(c, "redeem", {"currency": code, "amount": minor, **extra})
    typer.echo(f"redeemed {format_amount(minor, code)} from {me.org_id}: {committed_line(result)}")


@app.command("transfer", cls=AmountCommand)
@friendly
def transfer(
    to: ToOption,
    ccy: CurrencyOption,
    value: AmountArgument,
    identity: IdentityOption,
    reference: ReferenceOption = "",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Pay from your account (your organisation's, or your own as a patient)."""
    code = currency_code(ccy)
    minor = money(value, code)
    extra = reference_args(reference)
    with client(node, identity) as c:
        me = allowed(c, "transfer")
        if own_owner(me) == to:
            fail("a transfer goes to another account")
        check_owner(c, to, "--to")
        result = submit(c, "transfer", {"to": to, "currency": code, "amount": minor, **extra})
    typer.echo(
        f"paid {format_amount(minor, code)} from {own_owner(me)} to {to}: {committed_line(result)}"
    )


# -- holds ---------------------------------------------------------------------------------


@app.command("hold", cls=AmountCommand)
@friendly
def hold(
    payee: Annotated[str, typer.Option("--payee", help="Who may capture it.")],
    ccy: CurrencyOption,
    value: AmountArgument,
    identity: IdentityOption,
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="How long the payee may capture it: 1h, 7d...")
    ] = "7d",
    purpose: Annotated[str, typer.Option("--purpose", help="What it is for.")] = "",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Reserve money for a payee until it expires; prints the new hold id."""
    code = currency_code(ccy)
    minor = money(value, code)
    span = duration_ms(expires_in, "--expires-in", MAX_HOLD_MS - DAY_MS)
    extra = reference_args(purpose, "purpose")
    hold_id = new_id("hold")
    with client(node, identity) as c:
        me = allowed(c, "hold")
        if own_owner(me) == payee:
            fail("a hold is for another account")
        check_owner(c, payee, "--payee")
        args = {"hold": hold_id, "payee": payee, "currency": code, "amount": minor}
        result = submit(c, "hold", {**args, "expires": now_ms() + span, **extra})
    line = committed_line(result)
    typer.echo(hold_id)
    tell(
        f"held {format_amount(minor, code)} of {own_owner(me)} for {payee} for {expires_in}: {line}"
    )


def _open(doc: dict[str, Any], what: str) -> None:
    if doc["status"] != "open":
        fail(f"{what} {doc['id']} is already {doc['status']}")


@app.command("capture", cls=AmountCommand)
@friendly
def capture(
    hold_id: HoldArgument,
    identity: IdentityOption,
    value: Annotated[
        str | None,
        typer.Argument(metavar="[AMOUNT]", help="How much to take (default: all of it)."),
    ] = None,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Take a hold (or part of it) as its payee; the rest goes back to the payer."""
    with client(node, identity) as c:
        found = read(c, "hold", hold_id)
        code, whole = found["currency"], found["amount"]
        minor = whole if value is None else money(value, code, zero=True)
        _open(found, "hold")
        if found.get("treatment"):
            fail(
                f"hold {found['id']} pays treatment {found['treatment']}: it is captured by "
                "carechain pay complete"
            )
        if now_ms() >= found["expires"]:
            fail(f"hold {found['id']} expired at {iso(found['expires'])}; it can only be released")
        if minor > whole:
            held = format_amount(whole, code)
            fail(f"cannot capture {format_amount(minor, code)}: the hold is for {held}")
        me = allowed(c, "capture")
        if own_owner(me) != found["payee"]:
            fail(f"forbidden: only {found['payee']} captures hold {found['id']}")
        result = submit(c, "capture", {"hold": found["id"], "amount": minor})
    back = format_amount(whole - minor, code)
    typer.echo(
        f"captured {format_amount(minor, code)} of {found['id']}; {back} back to "
        f"{found['payer']}: {committed_line(result)}"
    )


@app.command("release")
@friendly
def release(
    hold_id: HoldArgument, identity: IdentityOption, node: NodeOption = DEFAULT_NODE
) -> None:
    """Give a hold back to its payer: the payee at any time, the payer once it expired."""
    with client(node, identity) as c:
        found = read(c, "hold", hold_id)
        _open(found, "hold")
        me = allowed(c, "release")
        mine = own_owner(me)
        if mine == found["payer"] and now_ms() < found["expires"]:
            fail(
                f"forbidden: hold {found['id']} runs until {iso(found['expires'])}; until then "
                f"only {found['payee']} may release it"
            )
        if mine not in (found["payer"], found["payee"]):
            fail(f"forbidden: hold {found['id']} is not {mine}'s")
        result = submit(c, "release", {"hold": found["id"]})
    typer.echo(
        f"released {found['id']}: {format_amount(found['amount'], found['currency'])} back to "
        f"{found['payer']}: {committed_line(result)}"
    )


# -- payment on treatment --------------------------------------------------------------


@app.command("admit")
@friendly
def admit(
    patient: Annotated[str, typer.Option("--patient", help="Patient id, <organisation>:<member>.")],
    ccy: CurrencyOption,
    value: Annotated[str, typer.Option("--amount", help="Held for the treatment, e.g. 3000.00.")],
    identity: IdentityOption,
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="How long the hold lasts: 30d, 8w...")
    ] = "30d",
    patient_identity: Annotated[
        Path | None,
        typer.Option("--patient-identity", help="The patient's identity: co-sign here."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Or write the transaction here for the patient to co-sign."
        ),
    ] = None,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Admit a patient: hold their money for your organisation until the treatment ends.

    The patient co-signs: give --patient-identity to sign for them here, or --out
    FILE, then ``carechain tx cosign FILE`` as the patient and ``carechain tx
    submit FILE``. Prints the new treatment id.
    """
    if (patient_identity is None) == (out is None):
        fail(
            "give --patient-identity DIR to co-sign here, or --out FILE to write the "
            "transaction for the patient to co-sign (one of them)"
        )
    code = currency_code(ccy)
    minor = money(value, code, "--amount")
    span = duration_ms(expires_in, "--expires-in", MAX_HOLD_MS - DAY_MS)
    treatment = new_id("trt")
    with client(node, identity) as c:
        me = allowed(c, "admit")
        patient_creds = None if patient_identity is None else load_credentials(patient_identity)
        if patient_creds is None:
            cosigner = patient_fingerprint(c, patient)
        else:
            cosigner = patient_creds.fingerprint
            signer = member_of(c, cosigner)
            if not is_patient(signer, patient):
                fail(
                    f"--patient-identity is {signer.org_id}:{signer.member_id} "
                    f"({signer.role}), not the patient {patient}"
                )
        args = {"treatment": treatment, "patient": patient, "currency": code, "amount": minor}
        tx = build_transaction(
            c.creds,
            c.chain(),
            "payments",
            "admit",
            {**args, "expires": now_ms() + span},
            cosigners=[cosigner],
        )
        what = f"{format_amount(minor, code)} of {patient} held for {me.org_id}"
        if patient_creds is None:
            assert out is not None
            out.write_bytes(canonical_bytes(tx.to_json()))
            typer.echo(treatment)
            tell(
                f"admission {tx.txid} ({what}) written to {out}; the patient co-signs it with "
                f"carechain tx cosign {out}, then carechain tx submit {out} sends it"
            )
            return
        tx = add_signature(tx, Fingerprint(cosigner), patient_creds.private_key)
        line = committed_line(send(c, "admit", tx))
    typer.echo(treatment)
    tell(f"admitted {patient}: {what}: {line}")


def _admitted(c: NodeClient, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The treatment (still admitted) and its hold."""
    found = read(c, "treatment", text)
    if found["status"] != "admitted":
        fail(f"treatment {found['id']} is already {found['status']}")
    return found, c.request("GET", f"/v1/payments/holds/{found['hold']}")


def _clinic(c: NodeClient, method: str, found: dict[str, Any]) -> None:
    me = allowed(c, method)
    if me.org_id != found["clinic"]:
        fail(f"forbidden: treatment {found['id']} is {found['clinic']}'s")


@app.command("complete", cls=AmountCommand)
@friendly
def complete(
    treatment: TreatmentArgument,
    value: Annotated[str, typer.Argument(metavar="AMOUNT", help="What the treatment cost.")],
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Record a treatment complete with its cost: paid from the hold, the rest given back."""
    with client(node, identity) as c:
        found, held = _admitted(c, treatment)
        code, whole = held["currency"], held["amount"]
        minor = money(value, code, zero=True)
        if minor > whole:
            held_text = format_amount(whole, code)
            fail(f"AMOUNT {format_amount(minor, code)} is more than the {held_text} held")
        _clinic(c, "complete_treatment", found)
        result = submit(c, "complete_treatment", {"treatment": found["id"], "amount": minor})
    typer.echo(
        f"completed {found['id']}: {format_amount(minor, code)} paid to {found['clinic']}, "
        f"{format_amount(whole - minor, code)} back to {found['patient']}: {committed_line(result)}"
    )


@app.command("cancel")
@friendly
def cancel(
    treatment: TreatmentArgument, identity: IdentityOption, node: NodeOption = DEFAULT_NODE
) -> None:
    """The treatment did not take place: the whole hold goes back to the patient."""
    with client(node, identity) as c:
        found, held = _admitted(c, treatment)
        _clinic(c, "cancel_treatment", found)
        result = submit(c, "cancel_treatment", {"treatment": found["id"]})
    typer.echo(
        f"cancelled {found['id']}: {format_amount(held['amount'], held['currency'])} back to "
        f"{found['patient']}: {committed_line(result)}"
    )


# -- reads ---------------------------------------------------------------------------------


@app.command("balance")
@friendly
def balance(
    identity: IdentityOption,
    owner: Annotated[
        str | None,
        typer.Argument(metavar="[OWNER]", help="Organisation or patient (default: your own)."),
    ] = None,
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """An account owner's balances: available and held, one line a currency."""
    with client(node, identity) as c:
        whose = owner or own_owner(member_of(c, c.creds.fingerprint))
        doc = c.request("GET", f"/v1/payments/accounts/{whose}")
    if as_json:
        show(doc)
        return
    typer.echo(doc["owner"])
    for a in doc["accounts"]:
        shown = a["formatted"]
        typer.echo(f"  {a['currency']}  available {shown['balance']:>22}  held {shown['held']:>22}")


@app.command("statement")
@friendly
def statement(
    owner: Annotated[str, typer.Argument(metavar="OWNER", help="Organisation or patient.")],
    ccy: Annotated[str, typer.Argument(metavar="CURRENCY", help="ISO 4217 code.")],
    identity: IdentityOption,
    as_json: JsonOption = False,
    after: AfterOption = "",
    limit: LimitOption = 100,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """An account's statement lines, oldest first.

    Each line: what it changed in the available balance, then the balance and the
    amount held after it.
    """
    code = currency_code(ccy, "CURRENCY")
    with client(node, identity) as c:
        doc = c.request(
            "GET",
            f"/v1/payments/accounts/{owner}/{code}/entries",
            params={"after": after or None, "limit": limit},
        )
    if as_json:
        show(doc)
    elif not doc["entries"]:
        tell("no statement lines")
    for e in [] if as_json else doc["entries"]:
        shown = e["formatted"]
        who = ",".join(p for p in e["counterparty"] if p != "@supply") or "-"
        typer.echo(
            f"{e['line']:>5}  {iso(e['time'])}  {e['kind']:<10}  {shown['available']:>20}  "
            f"balance {shown['balance']:>20}  held {shown['held']:>18}  {who:<20}  "
            f"{e['reference']}".rstrip()
        )
    if doc.get("next"):
        tell(f"more may follow: --after {doc['next']}")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


@app.command("plan")
@friendly
def plan(
    plan_id: PlanArgument,
    identity: IdentityOption,
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """An instalment plan: its state (late when one is overdue) and its schedule."""
    with client(node, identity) as c:
        found = read(c, "plan", plan_id)
    if as_json:
        show(found)
        return
    code, paid = found["currency"], found["paid"]
    state = found["state"] + (f" ({found['overdue']} overdue)" if found["overdue"] else "")
    typer.echo(f"{found['id']}  {state}")
    typer.echo(
        f"{found['bank']} lends {found['patient']} {format_amount(found['principal'], code)} "
        f"for {found['clinic']} at {found['rate_bp'] / 100:.2f}% a year"
    )
    now = now_ms()
    for n, due in enumerate(found["schedule"]):
        if n < paid:
            mark = "paid"
        elif found["status"] == "active":
            mark = "overdue" if due["due"] < now else ("next" if n == paid else "")
        else:
            mark = ""
        typer.echo(
            f"  {n + 1:>3}  {_day(due['due'])}  {format_amount(due['amount'], code):>20}  "
            f"principal {format_amount(due['principal'], code):>20}  interest "
            f"{format_amount(due['interest'], code):>16}  {mark}".rstrip()
        )
    typer.echo(f"remaining {format_amount(found['remaining'], code)}")


@app.command("supply")
@friendly
def supply(
    identity: IdentityOption, as_json: JsonOption = False, node: NodeOption = DEFAULT_NODE
) -> None:
    """Money issued and redeemed per currency, against what all accounts hold.

    For banks, regulators and auditors. Exit status 1 if a currency is not conserved.
    """
    with client(node, identity) as c:
        doc = c.request("GET", "/v1/payments/supply")
    if as_json:
        show(doc)
    elif not doc["currencies"]:
        tell("no money issued yet")
    for ccy, row in [] if as_json else doc["currencies"].items():
        shown = row["formatted"]
        verdict = "conserved" if row["conserved"] else "NOT CONSERVED"
        typer.echo(
            f"{ccy}  issued {shown['issued']}  redeemed {shown['redeemed']}  "
            f"outstanding {shown['outstanding']}  in accounts {shown['in_accounts']} "
            f"({shown['held']} held)  {verdict}"
        )
    if not doc["conserved"]:
        raise typer.Exit(1)


# FX and instalment plans, registered after the commands above (their order in --help).
from carechain.cli import payments_credit  # noqa: E402, F401
