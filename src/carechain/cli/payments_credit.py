"""``carechain pay`` commands for cross-border payments (a bank's FX quotes) and
instalment plans; registered on the ``pay`` app (``cli/payments_common.py``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from carechain.api.client import NodeClient
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
    _RATE,
    DAY_MS,
    AmountArgument,
    AmountCommand,
    CurrencyOption,
    PlanArgument,
    ReferenceOption,
    ToOption,
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
    rate_bp,
    read,
    reference_args,
    submit,
    tell,
)
from carechain.cli.records import JsonOption, committed_line, iso
from carechain.contracts.consent import is_patient
from carechain.contracts.payments import (
    MAX_INSTALMENTS,
    MAX_QUOTE_MS,
    convert,
    instalment_schedule,
)
from carechain.node.payments import own_owner
from carechain.standards.iso4217 import currency, format_amount

# -- cross-border ------------------------------------------------------------------------


@app.command("quote")
@friendly
def quote(
    base: Annotated[str, typer.Option("--base", help="The currency sold for the rate, e.g. USD.")],
    counter: Annotated[str, typer.Option("--counter", help="The currency it buys, e.g. CNY.")],
    rate: Annotated[str, typer.Option("--rate", help="Units of --counter for one of --base.")],
    identity: IdentityOption,
    valid_for: Annotated[
        str, typer.Option("--valid-for", help="How long it holds: 15m, 1h, 1d (at most 7d).")
    ] = "1h",
    limit: Annotated[
        str, typer.Option("--limit", help="Most of --counter it pays out in all, e.g. 50000.00.")
    ] = "",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Offer to pay --counter for --base at a rate from now (banks); prints the quote id.

    A quote works one way; the other way is another quote, at the bank's other rate."""
    base_code, counter_code = currency_code(base, "--base"), currency_code(counter, "--counter")
    if base_code == counter_code:
        fail("a quote exchanges two different currencies")
    text = rate.strip()
    if not _RATE.fullmatch(text) or not re.search(r"[1-9]", text):
        fail(f"--rate {rate!r} is not a decimal above 0 (up to 9 digits, 12 decimals)")
    span = duration_ms(valid_for, "--valid-for", MAX_QUOTE_MS)
    quote_id = new_id("fxq")
    with client(node, identity) as c:
        allowed(c, "post_quote")
        start = now_ms()
        args = {
            "quote": quote_id,
            "base": base_code,
            "counter": counter_code,
            "rate": text,
            "valid_from": start,
            "valid_until": start + span,
        }
        if limit:
            args["limit"] = money(limit, counter_code, "--limit")
        result = submit(c, "post_quote", args)
    line = committed_line(result)
    typer.echo(quote_id)
    tell(f"1 {base_code} = {text} {counter_code} until {iso(start + span)}: {line}")


@app.command("withdraw-quote")
@friendly
def withdraw_quote(
    quote_id: Annotated[str, typer.Argument(metavar="QUOTE", help="Quote id (fxq-...).")],
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """End one of your quotes now (banks)."""
    if not re.fullmatch(r"fxq-[0-9a-f]{24}", quote_id):
        fail(f"{quote_id[:40]!r} is not a quote id (fxq- and 24 hex digits)")
    with client(node, identity) as c:
        allowed(c, "withdraw_quote")
        result = submit(c, "withdraw_quote", {"quote": quote_id})
    typer.echo(f"withdrew {quote_id}: {committed_line(result)}")


@app.command("quotes")
@friendly
def quotes(
    identity: IdentityOption,
    base: Annotated[str, typer.Option("--base", help="Only quotes selling this.")] = "",
    counter: Annotated[str, typer.Option("--counter", help="Only quotes buying this.")] = "",
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """FX quotes valid now."""
    params = {
        "base": currency_code(base, "--base") if base else None,
        "counter": currency_code(counter, "--counter") if counter else None,
    }
    with client(node, identity) as c:
        doc = c.request("GET", "/v1/payments/quotes", params=params)
    if as_json:
        show(doc)
    elif not doc["quotes"]:
        tell("no quotes valid now")
    for q in [] if as_json else doc["quotes"]:
        typer.echo(
            f"{q['id']}  {q['provider']:<12}  1 {q['base']} = {q['rate']} {q['counter']}  "
            f"until {iso(q['valid_until'])}"
        )


@app.command("fx", cls=AmountCommand)
@friendly
def fx(
    to: ToOption,
    quote_id: Annotated[str, typer.Option("--quote", help="Quote id (from pay quote/quotes).")],
    ccy: Annotated[str, typer.Option("--currency", help="The currency you pay in.")],
    value: AmountArgument,
    identity: IdentityOption,
    reference: ReferenceOption = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would arrive; sign nothing.")
    ] = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Pay in one currency and have it arrive in another at a bank's quoted rate.

    What arrives is computed here with the contract's own rounding (half to even)
    and shown before signing; the transaction carries it, and the contract refuses
    it if the quote would give anything else.
    """
    code = currency_code(ccy)
    minor = money(value, code)
    extra = reference_args(reference)
    with client(node, identity) as c:
        me = None if dry_run else allowed(c, "transfer_fx")
        q = read(c, "quote", quote_id)
        if code not in (q["base"], q["counter"]):
            fail(f"quote {q['id']} exchanges {q['base']} and {q['counter']}, not {code}")
        if not q["valid"]:
            fail(
                f"quote {q['id']} is valid from {iso(q['valid_from'])} to "
                f"{iso(q['valid_until'])}, not now"
            )
        other = q["counter"] if code == q["base"] else q["base"]
        exponents = currency(code).exponent, currency(other).exponent
        received = convert(minor, q["rate"], *exponents, code == q["counter"])
        if received <= 0:
            fail(f"{format_amount(minor, code)} is less than one minor unit of {other}")
        tell(
            f"{format_amount(minor, code)} -> {format_amount(received, other)} to {to} at "
            f"1 {q['base']} = {q['rate']} {q['counter']} ({q['provider']}, quote {q['id']})"
        )
        if me is None:
            return
        if own_owner(me) == to:
            fail("a transfer goes to another account")
        check_owner(c, to, "--to")
        args = {"to": to, "currency": code, "amount": minor, "quote": q["id"], "expect": received}
        result = submit(c, "transfer_fx", {**args, **extra})
    typer.echo(
        f"paid {format_amount(minor, code)}; {to} received {format_amount(received, other)}: "
        f"{committed_line(result)}"
    )


# -- instalment plans ----------------------------------------------------------------------


@app.command("offer-plan", cls=AmountCommand)
@friendly
def offer_plan(
    patient: Annotated[str, typer.Option("--patient", help="Who repays: <organisation>:<member>.")],
    clinic: Annotated[str, typer.Option("--clinic", help="Who is paid the principal now.")],
    ccy: CurrencyOption,
    value: Annotated[str, typer.Argument(metavar="PRINCIPAL", help="Lent, e.g. 12000.00.")],
    instalments: Annotated[int, typer.Option("--instalments", help="How many.")],
    identity: IdentityOption,
    every: Annotated[int, typer.Option("--every", help="Days between instalments.")] = 30,
    annual_rate: Annotated[
        str, typer.Option("--annual-rate", help="Interest in percent a year, e.g. 4.35.")
    ] = "0",
    first_due_in: Annotated[
        str | None,
        typer.Option("--first-due-in", help="When the first falls due (default --every)."),
    ] = None,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Offer to pay a clinic for a patient, repaid in instalments (banks); prints the plan id.

    The instalments (equal, with interest at --annual-rate) are shown on stderr.
    """
    code = currency_code(ccy)
    principal = money(value, code, "PRINCIPAL")
    bp = rate_bp(annual_rate)
    if not 1 <= instalments <= MAX_INSTALMENTS:
        fail(f"--instalments must be 1 to {MAX_INSTALMENTS}, not {instalments}")
    if not 1 <= every <= 366:
        fail(f"--every must be 1 to 366 days, not {every}")
    first_ms = duration_ms(first_due_in or f"{every}d", "--first-due-in", 365 * DAY_MS)
    plan_id = new_id("plan")
    with client(node, identity) as c:
        allowed(c, "offer_plan")
        patient_fingerprint(c, patient)
        check_owner(c, clinic, "--clinic")
        first_due = now_ms() + first_ms
        args = {
            "plan": plan_id,
            "patient": patient,
            "clinic": clinic,
            "currency": code,
            "principal": principal,
            "rate_bp": bp,
            "instalments": instalments,
            "interval_days": every,
            "first_due": first_due,
        }
        result = submit(c, "offer_plan", args)
    line = committed_line(result)
    schedule = instalment_schedule(principal, bp, instalments, every, first_due)
    typer.echo(plan_id)
    each, total = schedule[0]["amount"], sum(i["amount"] for i in schedule)
    tell(
        f"offered {patient} {format_amount(principal, code)} for {clinic} at {bp / 100:.2f}% "
        f"a year: {instalments} instalment(s) of {format_amount(each, code)} every {every} "
        f"days, {format_amount(total, code)} in all: {line}"
    )


def _offered(c: NodeClient, method: str, text: str, status: str) -> dict[str, Any]:
    found = read(c, "plan", text)
    me = allowed(c, method)
    if not is_patient(me, found["patient"]):
        fail(f"forbidden: plan {found['id']} is {found['patient']}'s to answer and pay")
    if found["status"] != status:
        fail(f"plan {found['id']} is {found['status']}, not {status}")
    return found


@app.command("accept-plan")
@friendly
def accept_plan(
    plan: PlanArgument, identity: IdentityOption, node: NodeOption = DEFAULT_NODE
) -> None:
    """Take an offered plan (its patient): the bank pays the clinic the principal now."""
    with client(node, identity) as c:
        found = _offered(c, "accept_plan", plan, "offered")
        result = submit(c, "accept_plan", {"plan": found["id"]})
    code = found["currency"]
    typer.echo(
        f"accepted {found['id']}: {found['bank']} paid "
        f"{format_amount(found['principal'], code)} to {found['clinic']}; you repay "
        f"{len(found['schedule'])} instalment(s), {format_amount(found['remaining'], code)} "
        f"in all: {committed_line(result)}"
    )


@app.command("decline-plan")
@friendly
def decline_plan(
    plan: PlanArgument, identity: IdentityOption, node: NodeOption = DEFAULT_NODE
) -> None:
    """Turn down an offered plan (its patient)."""
    with client(node, identity) as c:
        found = _offered(c, "decline_plan", plan, "offered")
        result = submit(c, "decline_plan", {"plan": found["id"]})
    typer.echo(f"declined {found['id']}: {committed_line(result)}")


@app.command("pay-instalment")
@friendly
def pay_instalment(
    plan: PlanArgument, identity: IdentityOption, node: NodeOption = DEFAULT_NODE
) -> None:
    """Pay the next instalment of your plan to its bank."""
    with client(node, identity) as c:
        found = _offered(c, "pay_instalment", plan, "active")
        due = found["next"]
        result = submit(c, "pay_instalment", {"plan": found["id"]})
    code, count = found["currency"], len(found["schedule"])
    left = found["remaining"] - due["amount"]
    typer.echo(
        f"paid instalment {found['paid'] + 1} of {count} of {found['id']}: "
        f"{format_amount(due['amount'], code)}; {format_amount(left, code)} left: "
        f"{committed_line(result)}"
    )


@app.command("plans")
@friendly
def plans(
    identity: IdentityOption,
    patient: Annotated[
        str | None,
        typer.Option("--patient", help="Whose plans: <organisation>:<member> (default: yours)."),
    ] = None,
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """A patient's instalment plans, newest offer first: state, what is left, the next due.

    For the patient, the banks (their own plans), regulators and auditors."""
    with client(node, identity) as c:
        whose = patient or own_owner(member_of(c, c.creds.fingerprint))
        if ":" not in whose:
            fail("give --patient <organisation>:<member> (you are not a patient)")
        found = c.request("GET", f"/v1/patients/{whose}/plans")["plans"]
    if as_json:
        show(found)
        return
    if not found:
        tell(f"{whose} has no instalment plans")
    for p in found:
        code = p["currency"]
        state = p["state"] + (f" ({p['overdue']} overdue)" if p["overdue"] else "")
        nxt = p["next"]
        due = f"  next {format_amount(nxt['amount'], code)} due {iso(nxt['due'])}" if nxt else ""
        typer.echo(
            f"{p['id']}  {state:<16} {p['bank']} for {p['clinic']}  "
            f"{format_amount(p['principal'], code)}  left {format_amount(p['remaining'], code)}"
            + due
        )
