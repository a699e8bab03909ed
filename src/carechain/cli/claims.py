"""``carechain claims``: insurance claims from the provider's desk to payment.

A provider submits its FHIR R4 Claim file: the command validates it, takes
only what adjudication needs (``standards.fhir.claim.claim_submission``: no
diagnosis leaves the provider), fingerprints the whole Claim with a key
derived from the member's own key, signs ``claims.submit`` and prints how
each line was decided and what was paid. The insurer publishes policies as
JSON rules, registers coverages (from a FHIR Coverage file or options),
reviews flagged claims; the patient sees their claims and pays co-pays.

Every argument is checked before anything is signed; errors are one line on
stderr and exit code 2.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

import orjson
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
    submit_call,
)
from carechain.cli.records import JsonOption, committed_line, iso
from carechain.contracts.claim_rules import check_rules
from carechain.contracts.consent import patient_id_of
from carechain.contracts.membership import MemberRecord, member_from_json
from carechain.crypto.canonical import parse_json
from carechain.errors import CarechainError
from carechain.identity.roles import OrgType
from carechain.standards.fhir.claim import claim_submission, coverage_args, fingerprint_key
from carechain.standards.iso4217 import format_amount

app = typer.Typer(
    help="Insurance claims: policies, coverage, claims adjudicated and paid, the review queue.",
    no_args_is_help=True,
)

ClaimArgument = Annotated[str, typer.Argument(metavar="CLAIM", help="Claim id (clm-...).")]
DayOption = Annotated[str, typer.Option(help="A day, YYYY-MM-DD.")]


def submit(c: NodeClient, method: str, args: dict[str, Any]) -> Any:
    """Sign ``claims.<method>`` with ``args``, send it to its route, wait for the commit."""
    return submit_call(c, "claims", method, args)


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror}")
    raise AssertionError  # pragma: no cover - fail exits


def new_id(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(12)}"


def line_words(claim: dict[str, Any]) -> list[str]:
    """One line per claim line: what was asked, the outcome, the rule, who pays what."""
    ccy = claim["currency"]
    out = []
    for line, result in zip(claim["lines"], claim["adjudication"]["lines"], strict=True):
        out.append(
            f"  {line['seq']:>3}  {line['kind']:<7} {line['code']:<16} {line['day']}  "
            f"{result['outcome']:<8}  insurer {format_amount(result['insurer'], ccy):>14}  "
            f"patient {format_amount(result['patient'], ccy):>14}  ({result['says']})"
        )
    return out


def show_claim(claim: dict[str, Any]) -> None:
    shown = claim["shown"]
    typer.echo(
        f"{claim['id']}  {claim['status']}  total {shown['total']}: insurer {shown['insurer']}, "
        f"patient {shown['patient']}"
    )
    for line in line_words(claim):
        typer.echo(line)
    for flag in claim["adjudication"]["flags"]:
        typer.echo(f"  flag {flag['flag']}: {flag['says']}")
    for step in claim["history"]:
        typer.echo(
            f"  {iso(step['time'])}  {step['status']}"
            + (f"  ({step['note']})" if step.get("note") else "")
        )


# -- the insurer -------------------------------------------------------------------------


@app.command("publish-policy")
@friendly
def publish_policy(
    policy: Annotated[str, typer.Option("--policy", help="Policy id, pol-<name>.")],
    effective_from: Annotated[str, typer.Option("--from", help="First day it applies.")],
    rules: Annotated[Path, typer.Option("--rules", help="JSON file of the rules.")],
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Publish a version of a policy (insurers): rules as data, in force from a day."""
    try:
        parsed = check_rules(parse_json(read_file(rules, "rules")))
    except CarechainError as exc:
        fail(f"{rules}: {exc.message}")
    with client(node, identity) as c:
        result = submit(
            c,
            "publish_policy",
            {"policy": policy, "effective_from": effective_from, "rules": parsed},
        )
    typer.echo(f"published {policy} from {effective_from}: {committed_line(result)}")


@app.command("cover")
@friendly
def cover(
    identity: IdentityOption,
    fhir: Annotated[Path | None, typer.Option("--fhir", help="A FHIR R4 Coverage file.")] = None,
    patient: Annotated[str, typer.Option(help="Patient id (org:member).")] = "",
    policy: Annotated[str, typer.Option(help="Policy id.")] = "",
    start: DayOption = "",
    end: DayOption = "",
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Register a patient's coverage under one of your policies; prints its id."""
    coverage = new_id("cov")
    if fhir is not None:
        try:
            args = coverage_args(read_file(fhir, "coverage"), coverage)
        except CarechainError as exc:
            fail(f"{fhir}: {exc.code}: {exc.message}")
    elif patient and policy and start and end:
        args = {
            "coverage": coverage,
            "patient": patient,
            "policy": policy,
            "start": start,
            "end": end,
        }
    else:
        fail("give --fhir COVERAGE.json, or --patient, --policy, --start and --end")
    with client(node, identity) as c:
        result = submit(c, "register_coverage", args)
    typer.echo(coverage)
    typer.echo(
        f"covered {args['patient']} under {args['policy']}: {committed_line(result)}", err=True
    )


@app.command("preauthorise")
@friendly
def preauthorise(
    coverage: Annotated[str, typer.Option(help="Coverage id.")],
    code: Annotated[str, typer.Option(help="Service code.")],
    start: DayOption,
    end: DayOption,
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Allow a service that the policy covers only with pre-authorisation."""
    with client(node, identity) as c:
        result = submit(
            c, "preauthorise", {"coverage": coverage, "code": code, "start": start, "end": end}
        )
    typer.echo(f"pre-authorised {code} for {coverage}: {committed_line(result)}")


@app.command("queue")
@friendly
def queue(
    identity: IdentityOption,
    insurer: Annotated[str, typer.Option(help="Whose queue (regulators, auditors).")] = "",
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Your insurer's flagged claims awaiting review, with their reasons."""
    with client(node, identity) as c:
        caller = me(c)
        if not insurer:
            if caller.org_type is not OrgType.INSURER:
                fail(
                    f"forbidden: {caller.org_id} is a {caller.org_type}; only an insurer has "
                    "a review queue (regulators and auditors: --insurer ID)"
                )
            insurer = caller.org_id
        doc = c.request("GET", f"/v1/claims/queue/{insurer}")
    if as_json:
        show(doc)
        return
    if not doc["claims"]:
        typer.echo("no claims to review", err=True)
    for claim in doc["claims"]:
        reasons = "; ".join(f["flag"] for f in claim["flags"])
        typer.echo(
            f"{claim['id']}  {claim['provider']:<16} {claim['patient']:<24} "
            f"{claim['total']:>14}  {reasons}"
        )


def me(c: NodeClient) -> MemberRecord:
    """The caller as the chain knows them."""
    doc = c.request("GET", f"/v1/state/governance/member/{c.creds.fingerprint}")["value"]
    return member_from_json(doc)


@app.command("review")
@friendly
def review(
    claim: ClaimArgument,
    note: Annotated[str, typer.Option("--note", help="Why: kept with the decision.")],
    identity: IdentityOption,
    approve: Annotated[bool, typer.Option("--approve/--deny", help="Pay it, or not.")] = True,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Decide a flagged claim (insurers): approved claims are paid at once."""
    if not note.strip():
        fail("--note must say why")
    decision = "approve" if approve else "deny"
    with client(node, identity) as c:
        result = submit(c, "review", {"claim": claim, "decision": decision, "note": note})
        doc = c.request("GET", f"/v1/claims/{claim}")
    typer.echo(f"{decision}d {claim}: now {doc['status']}: {committed_line(result)}")


@app.command("settle")
@friendly
def settle(claim: ClaimArgument, identity: IdentityOption, node: NodeOption = DEFAULT_NODE) -> None:
    """Pay an approved claim that waited for money in your account (insurers)."""
    with client(node, identity) as c:
        result = submit(c, "settle", {"claim": claim})
    typer.echo(f"paid {claim}: {committed_line(result)}")


# -- providers ---------------------------------------------------------------------------


@app.command("submit")
@friendly
def submit_claim(
    fhir: Annotated[Path, typer.Argument(metavar="CLAIM.json", help="A FHIR R4 Claim file.")],
    identity: IdentityOption,
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Submit a FHIR R4 Claim: adjudicated at once, and paid unless a fraud rule flags it."""
    from carechain.identity.wallet import load_credentials

    creds = load_credentials(identity)
    try:
        args = claim_submission(
            read_file(fhir, "claim"), fingerprint_key(creds.private_key), new_id("clm")
        )
    except CarechainError as exc:
        fail(f"{fhir}: {exc.code}: {exc.message}")
    with NodeClient(node, creds) as c:
        result = submit(c, "submit", args)
        try:
            doc = c.request("GET", f"/v1/claims/{args['claim']}")
        except CarechainError:
            doc = None  # the same Claim was submitted before: it keeps its first id
    if doc is None:
        typer.echo(
            f"this claim was submitted before (fingerprint {args['fingerprint'][:16]}...); "
            "nothing changed",
            err=True,
        )
        return
    if as_json:
        show(doc)
        return
    typer.echo(args["claim"])
    typer.echo(committed_line(result), err=True)
    show_claim(doc)


@app.command("record-death")
@friendly
def record_death(
    patient: Annotated[str, typer.Option(help="Patient id (org:member).")],
    day: DayOption,
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Record a patient's death (hospitals, clinics, regulators): later services are not paid."""
    with client(node, identity) as c:
        result = submit(c, "record_death", {"patient": patient, "day": day})
    typer.echo(f"recorded: {committed_line(result)}")


@app.command("declare-legacy-stock")
@friendly
def declare_legacy_stock(
    product: Annotated[str, typer.Option(help="GTIN-14 or cn:<7 digits>.")],
    lot: Annotated[str, typer.Option(help="Lot number.")],
    quantity: Annotated[int, typer.Option(min=1, help="Packs of it in stock.")],
    bought: DayOption,
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """List stock bought before the NHSA trace rule (2025-07-01): settled without a code."""
    with client(node, identity) as c:
        stock = {"product": product, "lot": lot, "quantity": quantity, "bought": bought}
        result = submit(c, "declare_legacy_stock", stock)
    typer.echo(f"declared {quantity} of {product} lot {lot}: {committed_line(result)}")


@app.command("confirm-legacy-stock")
@friendly
def confirm_legacy_stock(
    org: Annotated[str, typer.Option(help="The provider that declared it.")],
    product: Annotated[str, typer.Option(help="GTIN-14 or cn:<7 digits>.")],
    lot: Annotated[str, typer.Option(help="Lot number.")],
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Confirm a provider's declared legacy stock (insurers, regulators): from now on its
    packs may be settled without a scanned code."""
    with client(node, identity) as c:
        result = submit(c, "confirm_legacy_stock", {"org": org, "product": product, "lot": lot})
    typer.echo(f"confirmed {org}'s lot {lot} of {product}: {committed_line(result)}")


@app.command("withdraw-death")
@friendly
def withdraw_death(
    patient: Annotated[str, typer.Option(help="Patient id (org:member).")],
    reason: Annotated[str, typer.Option(help="Why it was wrong (kept on the chain).")],
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Remove a death recorded in error (regulators)."""
    with client(node, identity) as c:
        result = submit(c, "withdraw_death", {"patient": patient, "reason": reason})
    typer.echo(f"withdrawn: {committed_line(result)}")


# -- everyone ----------------------------------------------------------------------------


@app.command("show")
@friendly
def show_cmd(
    claim: ClaimArgument,
    identity: IdentityOption,
    fhir: Annotated[bool, typer.Option("--fhir", help="Print the FHIR R4 ClaimResponse.")] = False,
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """A claim's lines, outcome, shares and status (its patient, provider and insurer)."""
    with client(node, identity) as c:
        if fhir:
            show(c.request("GET", f"/v1/claims/{claim}/fhir"))
            return
        doc = c.request("GET", f"/v1/claims/{claim}")
    if as_json:
        show(doc)
    else:
        show_claim(doc)


@app.command("list")
@friendly
def list_claims(
    identity: IdentityOption,
    patient: Annotated[str, typer.Option(help="Patient id (default: yourself).")] = "",
    provider: Annotated[
        str, typer.Option(help="A provider's claims, newest first (its billing desk).")
    ] = "",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="With --provider: how many.")] = 50,
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """A patient's claims and where each stands, from submission to payment; or, with
    --provider, a provider's, newest first, with what flagged them."""
    if patient and provider:
        fail("give --patient or --provider, not both")
    with client(node, identity) as c:
        if provider:
            path = f"/v1/providers/{provider}/claims"
            doc = c.request("GET", path, params={"limit": limit})
        else:
            doc = c.request("GET", f"/v1/patients/{patient or patient_id_of(me(c))}/claims")
    if as_json:
        show(doc)
        return
    if not doc["claims"]:
        typer.echo("no claims", err=True)
    for claim in doc["claims"]:
        if provider:
            flags = ", ".join(f["flag"] for f in claim["flags"])
            typer.echo(
                f"{iso(claim['submitted'])}  {claim['id']}  {claim['patient']:<24} "
                f"{claim['status']:<11} total {claim['total']}, insurer pays "
                f"{claim['insurer_share']}" + (f"  flagged: {flags}" if flags else "")
            )
            continue
        typer.echo(
            f"{iso(claim['submitted'])}  {claim['id']}  {claim['provider']:<16} "
            f"{claim['status']:<8} total {claim['total']}, you pay {claim['patient_share']} "
            f"(co-pay {claim['copay']})"
        )


@app.command("pay-copay")
@friendly
def pay_copay(
    claim: ClaimArgument, identity: IdentityOption, node: NodeOption = DEFAULT_NODE
) -> None:
    """Pay your co-pay of a paid claim to the provider."""
    with client(node, identity) as c:
        result = submit(c, "pay_copay", {"claim": claim})
    typer.echo(f"paid the co-pay of {claim}: {committed_line(result)}")


@app.command("policy")
@friendly
def policy_cmd(
    insurer: Annotated[str, typer.Argument(metavar="INSURER")],
    policy: Annotated[str, typer.Argument(metavar="POLICY")],
    identity: IdentityOption,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Every version of a policy, with the day each applies from."""
    with client(node, identity) as c:
        doc = c.request("GET", f"/v1/policies/{insurer}/{policy}")
    typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
