"""``carechain audit``: access events across patients, for auditors and regulators."""

from __future__ import annotations

from typing import Annotated

import typer

from carechain.cli.common import DEFAULT_NODE, IdentityOption, NodeOption, client, fail, friendly
from carechain.cli.records import AfterOption, FhirOption, JsonOption, LimitOption, show_events

app = typer.Typer(
    help="Access events across patients (auditors and regulators).", no_args_is_help=True
)


@app.command("access")
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
    if fhir and as_json:
        fail("give --fhir or --json, not both")
    with client(node, identity) as c:
        doc = c.audit(after=after, limit=limit, break_glass=break_glass, fhir=fhir)
    show_events(doc, fhir=fhir, as_json=as_json, with_patient=True)
