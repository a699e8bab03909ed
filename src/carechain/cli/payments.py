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

import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from carechain.api.client import ApiError, NodeClient, build_transaction
from carechain.cli.common import (
    DEFAULT_NODE,
    IdentityOption,
    NodeOption,
    client,
    fail,
    friendly,
    show,
)
from carechain.cli.records import AfterOption, JsonOption, LimitOption, committed_line, iso
from carechain.contracts.consent import is_patient
from carechain.contracts.membership import MemberRecord, member_from_json
from carechain.contracts.payments import (
    MAX_AMOUNT,
    MAX_HOLD_MS,
    MAX_INSTALMENTS,
    MAX_QUOTE_MS,
    MAX_RATE_BP,
    Payments,
    convert,
    instalment_schedule,
)
from carechain.contracts.runtime import Args, authorise
from carechain.crypto.canonical import canonical_bytes
from carechain.errors import Forbidden, InvalidInput
from carechain.identity.wallet import load_credentials
from carechain.ledger.transaction import Fingerprint, SignedTransaction, add_signature
from carechain.node.payments import own_owner
from carechain.standards.iso4217 import currency, format_amount, parse_amount

app = typer.Typer(
    help="Payments: issue, transfer, hold, pay for treatment, exchange, lend in instalments.",
    no_args_is_help=True,
)

DAY_MS = 24 * 3600 * 1000
_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}
_DURATION = re.compile(r"([0-9]{1,6})([smhdw])")
_ORG = re.compile(r"[a-z0-9-]{2,40}")
_PATIENT = re.compile(r"([a-z0-9-]{2,40}):([A-Za-z0-9][A-Za-z0-9._@-]{0,63})")
_IDS = {
    "hold": (re.compile(r"(hold|trt)-[0-9a-f]{24}"), "pay hold (or pay admit)"),
    "treatment": (re.compile(r"trt-[0-9a-f]{24}"), "pay admit"),
    "plan": (re.compile(r"plan-[0-9a-f]{24}"), "pay offer-plan"),
    "quote": (re.compile(r"fxq-[0-9a-f]{24}"), "pay quote"),
}
_NEGATIVE = re.compile(r"-[0-9][0-9.]*")
_RATE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,12})?")  # as contracts/payments.py takes a rate
_REFERENCE = re.compile(r"[\x20-\x7e]{0,80}")  # printable ASCII, as the contract takes it

AmountArgument = Annotated[
    str, typer.Argument(metavar="AMOUNT", help="In the currency's unit, e.g. 123.45.")
]
CurrencyOption = Annotated[
    str, typer.Option("--currency", help="ISO 4217 code, e.g. CNY, USD, JPY.")
]
ToOption = Annotated[
    str, typer.Option("--to", help="Account owner: an organisation, or a patient org:member.")
]
ReferenceOption = Annotated[
    str, typer.Option("--reference", help="Invoice or other reference (printable ASCII).")
]
HoldArgument = Annotated[str, typer.Argument(metavar="HOLD", help="Hold id (from pay hold).")]
TreatmentArgument = Annotated[
    str, typer.Argument(metavar="TREATMENT", help="Treatment id (from pay admit).")
]
PlanArgument = Annotated[str, typer.Argument(metavar="PLAN", help="Plan id (from pay offer-plan).")]


# -- reading input before anything is signed ---------------------------------------------


class AmountCommand(TyperCommand):
    """A command whose AMOUNT argument may be typed negative: ``-5`` reaches ``money``,
    which refuses it in one line, instead of click taking it for an unknown option."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        takes_value = {  # options that read the next word as their value
            name
            for param in self.params
            if param.param_type_name == "option" and not getattr(param, "is_flag", False)
            for name in param.opts
        }
        end = args.index("--") if "--" in args else len(args)
        negative = [
            i
            for i, arg in enumerate(args[:end])
            if _NEGATIVE.fullmatch(arg) and (i == 0 or args[i - 1] not in takes_value)
        ]
        if negative:  # after "--", in their order, so that click reads them as arguments
            kept = [arg for i, arg in enumerate(args[:end]) if i not in negative]
            args = [*kept, "--", *(args[i] for i in negative), *args[end + 1 :]]
        return super().parse_args(ctx, args)


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(12)}"


def currency_code(text: str, option: str = "--currency") -> str:
    try:
        return currency(text.strip().upper()).code
    except InvalidInput as exc:
        fail(f"{option}: {exc.message}")


def money(text: str, ccy: str, what: str = "AMOUNT", *, zero: bool = False) -> int:
    """``text`` ("123.45") in ``ccy``'s minor units; more decimals than it has, a negative
    or (unless ``zero``) a zero amount is refused."""
    if text.strip().startswith("-"):
        fail(f"{what} {text.strip()} is negative: amounts are positive")
    try:
        value = parse_amount(text, ccy)
    except InvalidInput as exc:
        fail(f"{what}: {exc.message}")
    if value == 0 and not zero:
        fail(f"{what} must be more than 0 {ccy}")
    if value > MAX_AMOUNT:
        fail(f"{what} is over the limit of {format_amount(MAX_AMOUNT, ccy)} in one operation")
    return value


def duration_ms(text: str, option: str, most_ms: int) -> int:
    """``30m``, ``1h``, ``7d``, ``2w`` in milliseconds, at most ``most_ms``."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        fail(f"{option} {text!r} is not a duration like 30m, 1h, 7d or 2w")
    value = int(found[1]) * _UNITS[found[2]]
    if not 0 < value <= most_ms:
        fail(f"{option} {text} must be more than 0 and at most {most_ms // DAY_MS} days")
    return value


def reference_args(text: str, name: str = "reference") -> dict[str, str]:
    if not _REFERENCE.fullmatch(text):
        fail(f"--{name}: at most 80 printable ASCII characters")
    return {name: text} if text else {}


def checked_id(text: str, kind: str) -> str:
    pattern, source = _IDS[kind]
    text = text.strip()
    if not pattern.fullmatch(text):
        fail(
            f"{text[:40]!r} is not a {kind} id ({pattern.pattern[:4]} and 24 hex digits, "
            f"from {source})"
        )
    return text


def rate_bp(text: str) -> int:
    """An annual rate in percent ("4.5") in basis points (450)."""
    found = re.fullmatch(r"([0-9]{1,3})(?:\.([0-9]{1,2}))?", text.strip())
    if found is None:
        fail(f"--annual-rate {text!r} is not a percentage with at most 2 decimals, like 4.35")
    value = int(found[1]) * 100 + int((found[2] or "0").ljust(2, "0"))
    if value > MAX_RATE_BP:
        fail(f"--annual-rate {text}% is over {MAX_RATE_BP // 100}% a year")
    return value


# -- reading the chain ---------------------------------------------------------------------


def submit(c: NodeClient, method: str, args: dict[str, Any], wait_s: float = 10.0) -> Any:
    """Sign ``payments.<method>`` with ``args``, send it to its route, wait for the commit."""
    tx = build_transaction(c.creds, c.chain(), "payments", method, args)
    return send(c, method, tx, wait_s)


def send(c: NodeClient, method: str, tx: SignedTransaction, wait_s: float = 10.0) -> Any:
    return c.request(
        "POST", f"/v1/payments/{method}", raw_body=tx.wire_bytes(), params={"timeout": wait_s}
    )


def member_of(c: NodeClient, fingerprint: str) -> MemberRecord:
    try:
        doc = c.request("GET", f"/v1/state/governance/member/{fingerprint}")["value"]
    except ApiError as exc:
        if exc.http_status != 404:
            raise
        fail(f"certificate {fingerprint[:12]}... is not registered on this chain")
    return member_from_json(doc)


def allowed(c: NodeClient, method: str) -> MemberRecord:
    """The caller, if the contract lets their role and organisation call ``method``."""
    me = member_of(c, c.creds.fingerprint)
    found = Payments().policy(method)
    assert found is not None, method
    try:
        authorise(found[1], me, {}, Args({}))
    except Forbidden as exc:
        fail(f"forbidden: payments.{method}: {exc.message}")
    return me


def patient_fingerprint(c: NodeClient, patient: str, option: str = "--patient") -> str:
    """The certificate of ``patient`` (org:member) valid now (the newest if several)."""
    found = _PATIENT.fullmatch(patient)
    if found is None:
        fail(f"{option} {patient[:110]!r} is not a patient id (<organisation>:<member id>)")
    rows = c.request(
        "GET", "/v1/state/governance", params={"prefix": f"who/{found[1]}/{found[2]}/"}
    )["items"]
    now = now_ms()
    members = [member_of(c, row["key"].rsplit("/", 1)[1]) for row in rows]
    valid = [m for m in members if is_patient(m, patient) and m.refusal_at(now) is None]
    if not valid:
        fail(f"{option}: no patient {patient} with a valid certificate on this chain")
    return max(valid, key=lambda m: m.not_before_ms).fingerprint


def check_owner(c: NodeClient, owner: str, option: str) -> None:
    """``owner`` names an active organisation or a patient, or fail naming the option."""
    if ":" in owner:
        patient_fingerprint(c, owner, option)
        return
    if not _ORG.fullmatch(owner):
        fail(f"{option} {owner[:40]!r} is neither an organisation id nor a patient org:member")
    try:
        org = c.request("GET", f"/v1/state/governance/org/{owner}")["value"]
    except ApiError as exc:
        if exc.http_status != 404:
            raise
        org = None
    if org is None or org.get("status") != "active":
        fail(f"{option} {owner}: no active organisation {owner} in the consortium")


def read(c: NodeClient, kind: str, text: str) -> dict[str, Any]:
    """A hold, treatment, plan or quote by its id, checked first; unknown ids fail here."""
    ident = checked_id(text, kind)
    path = {"hold": "holds", "treatment": "treatments", "plan": "plans", "quote": "quotes"}[kind]
    doc: dict[str, Any] = c.request("GET", f"/v1/payments/{path}/{ident}")
    return doc


def tell(text: str) -> None:
    typer.echo(text, err=True)


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
    """Offer to pay --counter for --base at a rate, from now (banks; one direction: the
    other way is another quote); prints the quote id."""
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
