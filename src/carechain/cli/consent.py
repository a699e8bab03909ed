"""``carechain consent``: a patient grants, revokes and lists consent to read their records.

Consent is modelled on FHIR R4 Consent: a grantee (an organisation or one
member's certificate), purposes, a scope (resource types, categories or
records; none means all) and a period. It takes effect from the block that
commits it (``contracts/consent.py``).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from carechain.api.client import new_consent_id
from carechain.cli.common import (
    DEFAULT_NODE,
    IdentityOption,
    NodeOption,
    client,
    fail,
    friendly,
    show,
)
from carechain.cli.records import FhirOption, JsonOption, PatientOption, committed_line, iso
from carechain.contracts.consent import PURPOSES
from carechain.identity.certificates import fingerprint_of
from carechain.standards.fhir import RECORD_TYPES

app = typer.Typer(
    help="A patient's consent: who may read which records, why and until when.",
    no_args_is_help=True,
)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DAY = timedelta(days=1)


def _scope(consent: dict[str, Any]) -> str:
    scope = [*consent.get("types", []), *consent.get("categories", []), *consent.get("records", [])]
    return ",".join(scope) if scope else "all records"


def parse_time(text: str, option: str, *, end_of_day: bool = False) -> int:
    """``YYYY-MM-DD`` (midnight UTC, or the next midnight for an end) or an ISO 8601 time
    (UTC unless it names an offset); milliseconds since the epoch."""
    try:
        if _DATE.fullmatch(text):
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            if end_of_day:
                moment += DAY
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        fail(
            f"{option} {text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time "
            "(e.g. 2027-01-31T18:00:00Z)"
        )
    return int(moment.timestamp() * 1000)


def consent_period(start: str | None, end: str | None, days: int | None) -> tuple[int | None, int]:
    """(start or None for 'from now', end) in ms; clear errors for what does not fit."""
    now = int(time.time() * 1000)
    start_ms = parse_time(start, "--start") if start else None
    if end is not None and days is None:
        end_ms = parse_time(end, "--end", end_of_day=True)
    elif days is not None and end is None:
        if days < 1:
            fail(f"--days must be at least 1, not {days}")
        end_ms = (start_ms or now) + days * int(DAY.total_seconds() * 1000)
    else:
        fail("give the consent's end: --end DATE or --days N (one of them)")
    if end_ms <= now:
        fail(f"the consent would end at {iso(end_ms)}, which has already passed")
    if start_ms is not None and end_ms <= start_ms:
        fail(f"the consent would end at {iso(end_ms)}, before it starts at {iso(start_ms)}")
    return start_ms, end_ms


# -- commands ------------------------------------------------------------------------------


@app.command("grant")
@friendly
def grant(
    grantee: Annotated[
        str,
        typer.Option(
            "--grantee",
            help="Organisation id, a member's certificate fingerprint, or its certificate "
            "file (.pem).",
        ),
    ],
    purpose: Annotated[
        list[str], typer.Option("--purpose", help=f"{', '.join(PURPOSES)} (repeat for more).")
    ],
    identity: IdentityOption,
    record_type: Annotated[
        list[str] | None, typer.Option("--type", help="Only records of this FHIR type.")
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Only records of this category code.")
    ] = None,
    record: Annotated[list[str] | None, typer.Option("--record", help="Only this record.")] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="YYYY-MM-DD or ISO 8601 (UTC); default now.")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Last day YYYY-MM-DD (through its end, UTC) or ISO 8601."),
    ] = None,
    days: Annotated[int | None, typer.Option("--days", help="Or: lasts N days.")] = None,
    consent_id: Annotated[
        str | None,
        typer.Option("--id", help="Consent id (con- and 24 hex digits); default a fresh one."),
    ] = None,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Permit a grantee to read your records (sign as the patient with --as).

    No --type, --category or --record: every record. Several: any one of them.
    """
    # Checked here too, so that a typo does not leave a rejected transaction on the chain.
    for value, allowed, option in [
        *((p, PURPOSES, "--purpose") for p in purpose),
        *((t, RECORD_TYPES, "--type") for t in record_type or []),
    ]:
        if value not in allowed:
            fail(f"{option} {value!r} is not one of {', '.join(allowed)}")
    start_ms, end_ms = consent_period(start, end, days)
    if grantee.endswith(".pem"):
        grantee = fingerprint_of(Path(grantee).read_bytes())
    args: dict[str, Any] = {
        "consent": consent_id or new_consent_id(),
        "grantee": grantee,
        "purposes": purpose,
        "types": record_type or [],
        "categories": category or [],
        "records": record or [],
        "end": end_ms,
    }
    if start_ms is not None:
        args["start"] = start_ms
    with client(node, identity) as c:
        result = c.grant_consent(args)
    committed = committed_line(result)
    pending = start_ms is not None and start_ms > int(time.time() * 1000)
    typer.echo(f"{args['consent']}  {'pending' if pending else 'active'}  {committed}")
    typer.echo(
        f"{grantee} may read {_scope(args)} for {', '.join(purpose)} "
        f"from {iso(start_ms) if pending else 'now'} until {iso(end_ms)}"
    )


@app.command("revoke")
@friendly
def revoke(consent_id: str, identity: IdentityOption, node: NodeOption = DEFAULT_NODE) -> None:
    """Revoke a consent you granted: reads under it are refused from the next block."""
    with client(node, identity) as c:
        result = c.revoke_consent(consent_id)
    typer.echo(f"revoked {consent_id}: {committed_line(result)}")


@app.command("list")
@friendly
def list_consents(
    patient: PatientOption,
    identity: IdentityOption,
    fhir: FhirOption = False,
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """A patient's consents (the patient, auditors, regulators; a grantee sees its own)."""
    if fhir and as_json:
        fail("give --fhir or --json, not both")
    with client(node, identity) as c:
        doc = c.consents(patient, fhir=fhir)
    if fhir or as_json:
        show(doc)
        return
    if not doc["consents"]:
        typer.echo(f"no consents of {patient} you may see", err=True)
    for consent in doc["consents"]:
        typer.echo(
            "  ".join(
                [
                    consent["id"],
                    f"{consent['status']:<7}",
                    f"{consent['grantee']} ({consent['grantee_kind']})",
                    ",".join(consent["purposes"]),
                    _scope(consent),
                    f"{iso(consent['start'])} to {iso(consent['end'])}",
                ]
            )
        )
