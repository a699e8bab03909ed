"""What every ``carechain pay`` command shares: the Typer app, reading amounts,
currencies, durations and ids before anything is signed, and reading the chain
(members, the contract's own policy against the caller, account owners).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from carechain.api.client import ApiError, NodeClient
from carechain.cli.common import (
    fail,
    send_call,
    submit_call,
)
from carechain.contracts.consent import is_patient
from carechain.contracts.membership import MemberRecord, member_from_json
from carechain.contracts.payments import (
    MAX_AMOUNT,
    MAX_RATE_BP,
    Payments,
)
from carechain.contracts.runtime import Args, authorise
from carechain.errors import Forbidden, InvalidInput
from carechain.ledger.transaction import SignedTransaction
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
    return submit_call(c, "payments", method, args, wait_s)


def send(c: NodeClient, method: str, tx: SignedTransaction, wait_s: float = 10.0) -> Any:
    """Send a signed (and co-signed) ``payments.<method>`` transaction to its route."""
    return send_call(c, "payments", method, tx, wait_s)


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
