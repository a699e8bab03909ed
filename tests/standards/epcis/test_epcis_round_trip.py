"""Export then import gives back the calls: the real drugs contract writes the events.

A pack goes from factory to patient inside a case, next to a pack named by a
药品追溯码; what is left is decommissioned. The EPCIS document made of the
contract's events must import as the calls that were made (a dispense without
its patient), and the document must never hold the patient.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from epcis_support import DrugsLedger

from carechain.standards.epcis import (
    EPCIS_CONTEXT,
    Command,
    CustodyEvent,
    ExportContext,
    InvalidEpcis,
    export_document,
    import_document,
)
from carechain.standards.gs1 import PackId, with_check_digit

GTIN = "09506000134352"  # GS1 Resolver CE test GTIN (tests/standards/gs1/testdata/README.md)
CN_CODE = "81234567890123456789"  # made up, as in tests/contracts/test_drugs.py
MAKER, PHARMACY = "sinopharm-mfg", "yf-pharmacy"
PATIENT = "hospital-a:P0042"
SHIPMENT = "shp-" + "ab" * 12


def sgtin(serial: str) -> str:
    return PackId.sgtin(GTIN, serial).key


CN_PACK = PackId.cn_trace(CN_CODE).key
CASE = with_check_digit("0950600" + "0000000001")


@pytest.fixture
def ledger() -> DrugsLedger:
    chain = DrugsLedger()
    packs = [{"code": code, "lot": "LOT1", "expiry": "291231"} for code in
             (sgtin("S1"), sgtin("S2"), CN_PACK)]  # fmt: skip
    chain.call(MAKER, "commission", {"packs": packs})
    chain.call(MAKER, "aggregate", {"parent": CASE, "children": [sgtin("S1"), sgtin("S2")]})
    chain.call(MAKER, "ship", {"shipment": SHIPMENT, "to": PHARMACY, "items": [CASE, CN_PACK]})
    chain.call(PHARMACY, "receive", {"shipment": SHIPMENT})
    chain.call(PHARMACY, "dispense", {"code": sgtin("S1"), "patient": PATIENT})
    chain.call(PHARMACY, "disaggregate", {"parent": CASE})
    chain.call(PHARMACY, "decommission", {"code": sgtin("S2"), "reason": "damaged"})
    chain.call(PHARMACY, "decommission", {"code": CN_PACK, "reason": "sample"})
    return chain


def expected_calls(chain: DrugsLedger) -> list[Command]:
    calls = []
    for method, args in chain.calls:
        kept = {k: v for k, v in args.items() if k != "patient"}
        calls.append(Command(method, kept))
    return calls


def test_export_then_import_gives_the_calls(ledger: DrugsLedger) -> None:
    document = export_document(ledger.custody_events(), ExportContext(created_ms=0))
    assert import_document(json.loads(json.dumps(document))) == expected_calls(ledger)


def test_one_epcis_event_per_call_in_ledger_order(ledger: DrugsLedger) -> None:
    document = export_document(ledger.custody_events(), ExportContext(created_ms=0))
    events = document["epcisBody"]["eventList"]
    assert [(e["type"], e["action"], e["bizStep"], e.get("disposition")) for e in events] == [
        ("ObjectEvent", "ADD", "commissioning", "active"),
        ("AggregationEvent", "ADD", "packing", None),
        ("ObjectEvent", "OBSERVE", "shipping", "in_transit"),
        ("ObjectEvent", "OBSERVE", "receiving", "in_progress"),
        ("ObjectEvent", "DELETE", "dispensing", "dispensed"),
        ("AggregationEvent", "DELETE", "unpacking", None),
        ("ObjectEvent", "DELETE", "decommissioning", "damaged"),
        ("ObjectEvent", "DELETE", "decommissioning", "non_sellable_other"),
    ]
    assert document["@context"][0] == EPCIS_CONTEXT
    assert (document["type"], document["schemaVersion"]) == ("EPCISDocument", "2.0")
    commissioning, packing, shipping = events[0], events[1], events[2]
    assert commissioning["epcList"] == [
        f"https://id.gs1.org/01/{GTIN}/21/S1",
        f"https://id.gs1.org/01/{GTIN}/21/S2",
        f"urn:carechain:cn-trace:{CN_CODE}",
    ]
    assert commissioning["ilmd"] == {
        "cbvmda:lotNumber": "LOT1",
        "cbvmda:itemExpirationDate": "2029-12-31",
    }
    assert packing["parentID"] == f"https://id.gs1.org/00/{CASE}"
    assert shipping["bizTransactionList"] == [
        {"type": "desadv", "bizTransaction": f"urn:carechain:shipment:{SHIPMENT}"}
    ]
    assert shipping["sourceList"] == [
        {"type": "owning_party", "source": f"urn:carechain:org:{MAKER}"},
        {"type": "possessing_party", "source": f"urn:carechain:org:{MAKER}"},
    ]
    assert {d["destination"] for d in shipping["destinationList"]} == {
        f"urn:carechain:org:{PHARMACY}"
    }
    assert events[-1]["carechain:reason"] == "sample"
    assert len({e["eventID"] for e in events}) == len(events)


def test_no_patient_id_leaves_the_chain(ledger: DrugsLedger) -> None:
    stored = [e.event for e in ledger.custody_events() if e.event["biz_step"] == "dispensing"]
    assert stored[0]["patient"] == PATIENT  # the contract does record it ...
    text = json.dumps(export_document(ledger.custody_events(), ExportContext(created_ms=0)))
    assert PATIENT not in text  # ... and the export never carries it
    assert "P0042" not in text
    assert "patient" not in text.lower()


def test_times_are_block_times_shown_in_the_requested_zone(ledger: DrugsLedger) -> None:
    utc = export_document(ledger.custody_events(), ExportContext(created_ms=1767225600000))
    beijing = export_document(ledger.custody_events(), ExportContext(0, zone="+08:00"))
    first_utc, first_cn = utc["epcisBody"]["eventList"][0], beijing["epcisBody"]["eventList"][0]
    assert utc["creationDate"] == "2026-01-01T00:00:00.000+00:00"
    assert (first_utc["eventTime"], first_utc["eventTimeZoneOffset"]) == (
        "2026-01-01T00:01:00.000+00:00",
        "+00:00",
    )
    assert (first_cn["eventTime"], first_cn["eventTimeZoneOffset"]) == (
        "2026-01-01T08:01:00.000+08:00",
        "+08:00",
    )
    assert import_document(beijing) == import_document(utc)


def test_state_entries_are_accepted_as_given_by_a_node(ledger: DrugsLedger) -> None:
    entries: list[dict[str, Any]] = []
    for key in ledger.events:
        entry: dict[str, Any] = {"key": key, "value": ledger.state[key]}
        subject = CustodyEvent.from_state(key, ledger.state[key]).subject
        if f"pack/{subject}" in ledger.state:
            entry["pack"] = ledger.state[f"pack/{subject}"]
        entries.append(entry)
    context = ExportContext(created_ms=0)
    assert export_document(entries, context) == export_document(ledger.custody_events(), context)


def test_a_packing_without_its_children_is_refused(ledger: DrugsLedger) -> None:
    only_case = [e for e in ledger.custody_events() if e.subject == CASE]
    with pytest.raises(InvalidEpcis) as caught:
        export_document(only_case, ExportContext(created_ms=0))
    assert caught.value.path == "events[0]"
    assert "no child events given" in caught.value.problem


def test_an_unpacking_of_the_unit_alone_means_all_children(ledger: DrugsLedger) -> None:
    only_case = [e for e in ledger.custody_events() if e.subject == CASE]
    only_case = [e for e in only_case if e.event["biz_step"] != "packing"]
    events = export_document(only_case, ExportContext(0))["epcisBody"]["eventList"]
    unpacking = next(e for e in events if e["bizStep"] == "unpacking")
    assert "childEPCs" not in unpacking  # EPCIS 2.0: DELETE without children = all of them
    assert Command("disaggregate", {"parent": CASE}) in import_document(
        export_document(only_case, ExportContext(0))
    )
