"""``carechain records``, ``consent`` and ``audit``: health records, patient consent, access audit.

The health data itself stays encrypted in its custodian's vault; the chain
holds each record's salted fingerprint, the patient's consents and an access
event for every read, granted or refused (``api/records.py``). Reads print the
resource on stdout exactly as stored, after the client has checked it against
the fingerprint on the chain; what the chain recorded about the read goes to
stderr, so stdout can be redirected to a file.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from carechain.api.client import bundle_records, new_consent_id
from carechain.cli.common import (
    DEFAULT_NODE,
    IdentityOption,
    NodeOption,
    client,
    fail,
    friendly,
    show,
)
from carechain.contracts.consent import BREAK_GLASS_REASONS, PURPOSES, READ_PURPOSES
from carechain.errors import InvalidFhir
from carechain.identity.certificates import fingerprint_of
from carechain.standards.fhir import RECORD_TYPES, parse_resource

records_app = typer.Typer(
    help="Health records: add FHIR resources, read, list, export, erase; access logs.",
    no_args_is_help=True,
)
consent_app = typer.Typer(
    help="A patient's consent: who may read which records, why and until when.",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="Access events across patients (auditors and regulators).", no_args_is_help=True
)

PatientOption = Annotated[
    str, typer.Option("--patient", help="Patient id, <organisation>:<member id>.")
]
PurposeOption = Annotated[
    str, typer.Option("--purpose", help=f"Why you read: {', '.join(READ_PURPOSES)}.")
]
ReasonOption = Annotated[
    str | None,
    typer.Option(
        "--reason",
        help=f"Break-glass reason (--purpose emergency): {', '.join(BREAK_GLASS_REASONS)}.",
    ),
]
OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the node's JSON.")]
FhirOption = Annotated[bool, typer.Option("--fhir", help="Print FHIR R4 JSON.")]
AfterOption = Annotated[
    str,
    typer.Option("--after", help="Continue after this key (from the 'more may follow' line)."),
]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=1000, help="Events per page.")]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DAY = timedelta(days=1)


# -- formatting -----------------------------------------------------------------------------


def iso(ms: Any) -> str:
    """A block time (ms since the epoch) as ISO 8601 UTC, to the second."""
    if not isinstance(ms, int):
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _committed(result: dict[str, Any]) -> str:
    """``committed at height H (transaction T)``; exit 1 if the transaction is still pending."""
    if result.get("status") != "committed":
        txid = result.get("txid", "?")
        typer.echo(
            f"transaction {txid} is not committed yet; follow it with: carechain tx status {txid}",
            err=True,
        )
        raise typer.Exit(1)
    return f"committed at height {result['height']} (transaction {result['txid']})"


def _event_line(event: dict[str, Any], *, with_patient: bool) -> str:
    """One access event: time, reader, purpose, outcome, records, basis, break-glass flag."""
    records = event.get("records", [])
    bases = sorted({str(r.get("basis", "")) for r in records if r.get("basis")})
    parts = [iso(event.get("time"))]
    if with_patient:
        parts.append(str(event.get("patient")))
    parts += [
        f"{event.get('reader_org')}/{event.get('reader_role')}",
        str(event.get("purpose")),
        str(event.get("outcome")),
        ",".join(str(r.get("id")) for r in records),
        "; ".join(bases),
    ]
    if event.get("break_glass"):
        parts.append(f"BREAK-GLASS: {event.get('reason') or 'no reason'}")
    return "  ".join(parts)


def _show_events(
    fetch: Callable[[bool], Any], *, fhir: bool, as_json: bool, limit: int, with_patient: bool
) -> None:
    """Print a page of access events (``fetch(fhir)`` gets it); on stderr, where the next
    page starts when this one is full.

    The FHIR form carries no paging key (an AuditEvent does not name its block), so for a
    page that may be full the key comes from the same page in JSON (events only append).
    """
    if fhir and as_json:
        fail("give --fhir or --json, not both")
    doc = fetch(fhir)
    if fhir:
        show(doc)
        events = fetch(False)["events"] if doc.get("total", 0) >= limit else []
    else:
        events = doc["events"]
        if as_json:
            show(doc)
        elif not events:
            typer.echo("no access events", err=True)
        else:
            for event in events:
                typer.echo(_event_line(event, with_patient=with_patient))
    if len(events) == limit:
        last = events[-1]
        typer.echo(f"more may follow: --after {last['height']:012d}/{last['id']}", err=True)


def _scope(consent: dict[str, Any]) -> str:
    scope = [*consent.get("types", []), *consent.get("categories", []), *consent.get("records", [])]
    return ",".join(scope) if scope else "all records"


# -- reading files and dates ----------------------------------------------------------------


def load_resources(
    files: Sequence[Path], *, skip_other_types: bool
) -> tuple[list[bytes], list[str]]:
    """Each file's records (a resource, or a Bundle's entries) and where each came from.

    Every resource is validated before anything is signed; an invalid one is a
    one-line error naming the file and the element path.
    """
    resources: list[bytes] = []
    sources: list[str] = []
    for file in files:
        raw = file.read_bytes()
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = None  # parse_resource names the problem
        is_bundle = isinstance(doc, dict) and doc.get("resourceType") == "Bundle"
        try:
            if is_bundle:
                kept, skipped = bundle_records(raw, skip_other_types=skip_other_types)
                for entry in skipped:
                    typer.echo(f"{file}: left out {entry}", err=True)
            else:
                kept = [parse_resource(raw).raw]
        except InvalidFhir as exc:
            hint = ""
            if is_bundle and exc.path.startswith("Bundle.entry[") and "not allowed" in exc.problem:
                hint = " (--skip-other-types leaves such entries out)"
            fail(f"{exc.code}: {file}: {exc.message}{hint}")
        resources.extend(kept)
        sources.extend([str(file)] * len(kept))
    if not resources:
        fail("no records to add")
    return resources, sources


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


# -- records ------------------------------------------------------------------------------


@records_app.command("add")
@friendly
def add(
    files: Annotated[list[Path], typer.Argument(help="FHIR R4 JSON resources or Bundles.")],
    patient: PatientOption,
    identity: IdentityOption,
    skip_other_types: Annotated[
        bool,
        typer.Option("--skip-other-types", help="Leave out Bundle entries that are not records."),
    ] = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Add records of a patient, held by your organisation: all FILES in one transaction."""
    resources, sources = load_resources(files, skip_other_types=skip_other_types)
    with client(node, identity) as c:
        result = c.add_records(patient, resources)
    for record_id, raw, source in zip(result["records"], resources, sources, strict=True):
        typer.echo(f"{record_id}  {orjson.loads(raw)['resourceType']}  {source}")
    typer.echo(_committed(result))


@records_app.command("read")
@friendly
def read(
    record_id: str,
    identity: IdentityOption,
    purpose: PurposeOption = "treatment",
    reason: ReasonOption = None,
    out: OutOption = None,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Print a record exactly as stored, once checked against its fingerprint on the chain.

    The read is recorded on the chain first (granted or refused); the access
    event goes to stderr.
    """
    with client(node, identity) as c:
        doc = c.read_record(record_id, purpose=purpose, reason=reason)
    data = doc["resource"].encode("utf-8")
    access = doc["access"]
    if out is not None:
        out.write_bytes(data)
    else:
        typer.echo(data, nl=False)
    note = f"access event {access['txid']} at height {access['height']}: {access['basis']}"
    if access.get("break_glass"):
        note += " (BREAK-GLASS: flagged for audit)"
    typer.echo(note + (f"; written to {out}" if out is not None else ""), err=True)


@records_app.command("list")
@friendly
def list_records(
    patient: PatientOption,
    identity: IdentityOption,
    purpose: PurposeOption = "treatment",
    as_json: JsonOption = False,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """The patient's records you may read, at every custodian (no health data)."""
    with client(node, identity) as c:
        found = c.patient_records(patient, purpose=purpose)["records"]
    if as_json:
        show(found)
        return
    if not found:
        typer.echo(f"no records of {patient} you may read for {purpose}", err=True)
        return
    typer.echo(
        f"{'RECORD':<30}  {'TYPE':<18}  {'CATEGORY':<18}  {'CUSTODIAN':<16}  "
        f"{'ADDED (UTC)':<20}  STATUS"
    )
    for r in sorted(found, key=lambda r: (r.get("height", 0), r["id"])):
        status = r.get("status", "-")
        if status == "erased":
            status = f"erased {iso(r.get('erased'))}"
        typer.echo(
            f"{r['id']:<30}  {r.get('type', '-'):<18}  {r.get('category', '-'):<18}  "
            f"{r.get('custodian', '-'):<16}  {iso(r.get('time')):<20}  {status}"
        )


@records_app.command("export")
@friendly
def export(
    patient: PatientOption,
    identity: IdentityOption,
    purpose: PurposeOption = "self",
    reason: ReasonOption = None,
    out: OutOption = None,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """The patient's records held on this node that you may read, as one FHIR Bundle."""
    with client(node, identity) as c:
        bundle, headers = c.export_records(patient, purpose=purpose, reason=reason)
    if out is not None:
        out.write_bytes(bundle)
    else:
        typer.echo(bundle, nl=False)
    event = headers.get("x-carechain-access-event", "")
    count = len(orjson.loads(bundle).get("entry", []))
    if event:
        typer.echo(f"{count} record(s); access event {event}", err=True)
    else:
        typer.echo("no records held on this node that you may read", err=True)
    elsewhere = headers.get("x-carechain-held-elsewhere", "")
    if elsewhere:
        typer.echo(
            f"held elsewhere (ask those organisations' nodes): {elsewhere.replace(',', ', ')}",
            err=True,
        )


@records_app.command("erase")
@friendly
def erase(record_id: str, identity: IdentityOption, node: NodeOption = DEFAULT_NODE) -> None:
    """Erase a record (the patient, or its custodian): its key is destroyed in the vault."""
    with client(node, identity) as c:
        result = c.erase_record(record_id)
    typer.echo(f"erased {record_id}: {_committed(result)}")


@records_app.command("access-log")
@friendly
def access_log(
    patient: PatientOption,
    identity: IdentityOption,
    fhir: FhirOption = False,
    as_json: JsonOption = False,
    after: AfterOption = "",
    limit: LimitOption = 100,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Every access to the patient's records, oldest first (the patient, auditors, regulators)."""
    with client(node, identity) as c:
        _show_events(
            lambda in_fhir: c.access_log(patient, after=after, limit=limit, fhir=in_fhir),
            fhir=fhir,
            as_json=as_json,
            limit=limit,
            with_patient=False,
        )


# -- consent ------------------------------------------------------------------------------


@consent_app.command("grant")
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
        str | None, typer.Option("--id", help="Consent id; default a fresh one.")
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
    committed = _committed(result)
    pending = start_ms is not None and start_ms > int(time.time() * 1000)
    typer.echo(f"{args['consent']}  {'pending' if pending else 'active'}  {committed}")
    typer.echo(
        f"{grantee} may read {_scope(args)} for {', '.join(purpose)} "
        f"from {iso(start_ms) if pending else 'now'} until {iso(end_ms)}"
    )


@consent_app.command("revoke")
@friendly
def revoke(consent_id: str, identity: IdentityOption, node: NodeOption = DEFAULT_NODE) -> None:
    """Revoke a consent you granted: reads under it are refused from the next block."""
    with client(node, identity) as c:
        result = c.revoke_consent(consent_id)
    typer.echo(f"revoked {consent_id}: {_committed(result)}")


@consent_app.command("list")
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


# -- audit --------------------------------------------------------------------------------


@audit_app.command("access")
@friendly
def audit_access(
    identity: IdentityOption,
    break_glass: Annotated[
        bool, typer.Option("--break-glass", help="Only break-glass (emergency) accesses.")
    ] = False,
    fhir: FhirOption = False,
    as_json: JsonOption = False,
    after: AfterOption = "",
    limit: LimitOption = 100,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Access events across patients, oldest first (auditors and regulators)."""
    with client(node, identity) as c:
        _show_events(
            lambda in_fhir: c.audit(
                after=after, limit=limit, break_glass=break_glass, fhir=in_fhir
            ),
            fhir=fhir,
            as_json=as_json,
            limit=limit,
            with_patient=True,
        )
