"""``carechain records``: health records (add, read, list, export, erase) and access logs.

The health data itself stays encrypted in its custodian's vault; the chain
holds each record's salted fingerprint, the patient's consents and an access
event for every read, granted or refused (``api/records.py``). Reads print the
resource on stdout exactly as stored, after the client has checked it against
the fingerprint on the chain; what the chain recorded about the read goes to
stderr, so stdout can be redirected to a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import orjson
import typer

from carechain.api.client import bundle_records
from carechain.cli.common import (
    DEFAULT_NODE,
    IdentityOption,
    NodeOption,
    client,
    fail,
    friendly,
    show,
)
from carechain.contracts.consent import BREAK_GLASS_REASONS, READ_PURPOSES
from carechain.errors import InvalidFhir
from carechain.standards.fhir import parse_resource

records_app = typer.Typer(
    help="Health records: add FHIR resources, read, list, export, erase; access logs.",
    no_args_is_help=True,
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


# -- formatting -----------------------------------------------------------------------------


def iso(ms: Any) -> str:
    """A block time (ms since the epoch) as ISO 8601 UTC, to the second."""
    if not isinstance(ms, int):
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def committed_line(result: dict[str, Any]) -> str:
    """``committed at height H (transaction T)``; exit 1 if the transaction is still pending."""
    if result.get("status") != "committed":
        txid = result.get("txid", "?")
        typer.echo(
            f"transaction {txid} is not committed yet; follow it with: carechain tx status {txid}",
            err=True,
        )
        raise typer.Exit(1)
    return f"committed at height {result['height']} (transaction {result['txid']})"


def event_line(event: dict[str, Any], *, with_patient: bool) -> str:
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


def show_events(doc: dict[str, Any], *, fhir: bool, as_json: bool, with_patient: bool) -> None:
    """Print a page of access events; on stderr, where the next page starts if it may."""
    if fhir or as_json:
        show(doc)
    elif not doc["events"]:
        typer.echo("no access events", err=True)
    else:
        for event in doc["events"]:
            typer.echo(event_line(event, with_patient=with_patient))
    after = doc.get("next")
    if fhir:
        links = [link for link in doc.get("link", []) if link.get("relation") == "next"]
        after = parse_qs(urlsplit(links[0]["url"]).query)["after"][0] if links else None
    if after:
        typer.echo(f"more may follow: --after {after}", err=True)


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
    typer.echo(committed_line(result))


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
    """The patient's records you may read, from every custodian, as one FHIR Bundle.

    Each custodian's node decides and records the access to its own records.
    """
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
        typer.echo("no records you may read", err=True)
    elsewhere = headers.get("x-carechain-held-elsewhere", "")
    if elsewhere:
        typer.echo(
            "not included, their custodian's node did not answer: " + elsewhere.replace(",", ", "),
            err=True,
        )


@records_app.command("erase")
@friendly
def erase(record_id: str, identity: IdentityOption, node: NodeOption = DEFAULT_NODE) -> None:
    """Erase a record (the patient, or its custodian): its key is destroyed in the vault."""
    with client(node, identity) as c:
        result = c.erase_record(record_id)
    typer.echo(f"erased {record_id}: {committed_line(result)}")


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
    if fhir and as_json:
        fail("give --fhir or --json, not both")
    with client(node, identity) as c:
        doc = c.access_log(patient, after=after, limit=limit, fhir=fhir)
    show_events(doc, fhir=fhir, as_json=as_json, with_patient=False)
