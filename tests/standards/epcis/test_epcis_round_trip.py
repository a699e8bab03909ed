"""Export then import gives back the calls: the drugs contract runs on a real node.

Two journeys, each made of signed transactions from the demo members:

* factory to patient: a pack goes to a patient inside a case, next to a pack
  named by a 药品追溯码; what is left is decommissioned;
* cancelled and rejected: the case and the 药品追溯码 pack are shipped to the
  wrong receiver and called back, shipped again and refused as damaged, then
  shipped and received.

The EPCIS document the node exports of the packs' journeys (the events
``GET /v1/drugs/epcis`` exports) must import as the calls that were made (a
dispense without its patient), must never hold the patient, and its calls,
replayed on a fresh node, must leave every pack, unit and shipment as the
first node has them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from epcis_support import (
    DISTRIBUTOR,
    MAKER,
    PATIENT,
    PHARMACIST,
    DrugsChain,
    Member,
    running_node,
)

from carechain.contracts import drugs
from carechain.node.consortium import Consortium
from carechain.node.node import Node
from carechain.standards.epcis import (
    EPCIS_CONTEXT,
    Command,
    CustodyEvent,
    ExportContext,
    InvalidEpcis,
    export_document,
    import_document,
)
from carechain.standards.epcis.vocabulary import SHIPMENT_END_REASONS
from carechain.standards.gs1 import PackId, with_check_digit

GTIN = "09506000134352"  # GS1 Resolver CE test GTIN (tests/standards/gs1/testdata/README.md)
CN_CODE = "81234567890123456789"  # made up, as in tests/contracts/test_drugs.py
MAKER_ORG, DISTRIBUTOR_ORG, PHARMACY_ORG = "sinopharm-mfg", "jd-logistics", "yf-pharmacy"
SHIPMENT = "shp-" + "ab" * 12
RECALLED, REFUSED, DELIVERED = ("shp-" + digit * 24 for digit in "123")


def sgtin(serial: str) -> str:
    return PackId.sgtin(GTIN, serial).key


CN_PACK = PackId.cn_trace(CN_CODE).key
CASE = with_check_digit("0950600" + "0000000001")
CODES = (sgtin("S1"), sgtin("S2"), CN_PACK)


def commission_and_pack(chain: DrugsChain) -> None:
    packs = [{"code": code, "lot": "LOT1", "expiry": "291231"} for code in CODES]
    chain.call(MAKER, "commission", {"packs": packs})
    chain.call(MAKER, "aggregate", {"parent": CASE, "children": [sgtin("S1"), sgtin("S2")]})


def factory_to_patient(chain: DrugsChain) -> None:
    commission_and_pack(chain)
    chain.call(MAKER, "ship", {"shipment": SHIPMENT, "to": PHARMACY_ORG, "items": [CASE, CN_PACK]})
    chain.call(PHARMACIST, "receive", {"shipment": SHIPMENT})
    chain.call(PHARMACIST, "dispense", {"code": sgtin("S1"), "patient": PATIENT})
    chain.call(PHARMACIST, "disaggregate", {"parent": CASE})
    chain.call(PHARMACIST, "decommission", {"code": sgtin("S2"), "reason": "damaged"})
    chain.call(PHARMACIST, "decommission", {"code": CN_PACK, "reason": "sample"})


def cancelled_and_rejected(chain: DrugsChain) -> None:
    commission_and_pack(chain)
    both = [CASE, CN_PACK]
    chain.call(MAKER, "ship", {"shipment": RECALLED, "to": DISTRIBUTOR_ORG, "items": both})
    chain.call(MAKER, "cancel_shipment", {"shipment": RECALLED, "reason": "wrong_receiver"})
    chain.call(MAKER, "ship", {"shipment": REFUSED, "to": PHARMACY_ORG, "items": both})
    chain.call(PHARMACIST, "reject_shipment", {"shipment": REFUSED, "reason": "damaged"})
    chain.call(MAKER, "ship", {"shipment": DELIVERED, "to": DISTRIBUTOR_ORG, "items": [CASE]})
    chain.call(DISTRIBUTOR, "receive", {"shipment": DELIVERED})


JOURNEYS: dict[str, Callable[[DrugsChain], None]] = {
    "factory-to-patient": factory_to_patient,
    "cancelled-and-rejected": cancelled_and_rejected,
}


@pytest.fixture
def chain(node: Node, member: Member) -> DrugsChain:
    return DrugsChain(node, member)


@pytest.fixture
def ledger(chain: DrugsChain) -> DrugsChain:
    factory_to_patient(chain)
    return chain


@pytest.fixture
def ended(chain: DrugsChain) -> DrugsChain:
    cancelled_and_rejected(chain)
    return chain


@pytest.fixture
def fresh(consortium: Consortium, member: Member, tmp_path: Path) -> Iterator[DrugsChain]:
    with running_node(consortium, tmp_path / "fresh") as node:
        yield DrugsChain(node, member)


def exported(chain: DrugsChain, context: ExportContext | None = None) -> dict[str, Any]:
    """The node's EPCIS document of the three packs' journeys, through JSON as it is served."""
    document = export_document(chain.custody_events(CODES), context or ExportContext(0))
    served: dict[str, Any] = json.loads(json.dumps(document))
    return served


def expected_calls(chain: DrugsChain) -> list[Command]:
    """The calls made, as the export gives them back: a dispense without its patient, and the
    items of one call in key order (all events of one transaction share a block position, so
    the ledger keeps no order among them and the node lists them by key)."""
    calls = []
    for call in chain.calls:
        args = {k: v for k, v in call.args.items() if k != "patient"}
        if "packs" in args:
            args["packs"] = sorted(args["packs"], key=lambda pack: str(pack["code"]))
        for name in ("children", "items"):
            if name in args:
                args[name] = sorted(args[name])
        calls.append(Command(call.method, args))
    return calls


def test_export_then_import_gives_the_calls(ledger: DrugsChain) -> None:
    assert import_document(exported(ledger)) == expected_calls(ledger)


def test_one_epcis_event_per_call_in_ledger_order(ledger: DrugsChain) -> None:
    document = exported(ledger)
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
    assert commissioning["epcList"] == [  # key order: cn-trace:... before sgtin:...
        f"urn:carechain:cn-trace:{CN_CODE}",
        f"https://id.gs1.org/01/{GTIN}/21/S1",
        f"https://id.gs1.org/01/{GTIN}/21/S2",
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
        {"type": "owning_party", "source": f"urn:carechain:org:{MAKER_ORG}"},
        {"type": "possessing_party", "source": f"urn:carechain:org:{MAKER_ORG}"},
    ]
    assert {d["destination"] for d in shipping["destinationList"]} == {
        f"urn:carechain:org:{PHARMACY_ORG}"
    }
    assert events[-1]["carechain:reason"] == "sample"
    assert len({e["eventID"] for e in events}) == len(events)


def test_no_patient_id_leaves_the_chain(ledger: DrugsChain) -> None:
    journeys = ledger.custody_events(CODES)
    stored = [e.event for e in journeys if e.event["biz_step"] == "dispensing"]
    assert stored[0]["patient"] == PATIENT  # the contract does record it ...
    text = json.dumps(export_document(journeys, ExportContext(created_ms=0)))
    assert PATIENT not in text  # ... and the export never carries it
    assert "patient-7f3a9c" not in text
    assert "patient" not in text.lower()


def test_times_are_block_times_shown_in_the_requested_zone(ledger: DrugsChain) -> None:
    journeys = ledger.custody_events(CODES)
    utc = export_document(journeys, ExportContext(created_ms=1767225600000))
    beijing = export_document(journeys, ExportContext(0, zone="+08:00"))
    first_utc, first_cn = utc["epcisBody"]["eventList"][0], beijing["epcisBody"]["eventList"][0]
    commissioning = journeys[0].event
    block = ledger.node.block(commissioning["seq"][0])
    assert commissioning["time"] == block.header.time_ms  # the time of the block it is in
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=block.header.time_ms)
    cst = timezone(timedelta(hours=8))
    assert utc["creationDate"] == "2026-01-01T00:00:00.000+00:00"
    assert (first_utc["eventTime"], first_utc["eventTimeZoneOffset"]) == (
        instant.isoformat(timespec="milliseconds"),
        "+00:00",
    )
    assert (first_cn["eventTime"], first_cn["eventTimeZoneOffset"]) == (
        instant.astimezone(cst).isoformat(timespec="milliseconds"),
        "+08:00",
    )
    assert first_cn["eventTime"].endswith("+08:00")
    assert import_document(beijing) == import_document(utc)


def test_state_entries_are_accepted_as_given_by_a_node(ledger: DrugsChain) -> None:
    context = ExportContext(created_ms=0)
    from_state = export_document(ledger.state_entries(), context)
    assert from_state == export_document(ledger.custody_events(CODES), context)


def test_a_packing_without_its_children_is_refused(ledger: DrugsChain) -> None:
    only_case = ledger.events_of(CASE)
    assert only_case[0].event["biz_step"] == "packing"
    with pytest.raises(InvalidEpcis) as caught:
        export_document(only_case, ExportContext(created_ms=0))
    assert caught.value.path == "events[0]"
    assert "no child events given" in caught.value.problem


def test_an_unpacking_of_the_unit_alone_means_all_children(ledger: DrugsChain) -> None:
    only_case = [e for e in ledger.events_of(CASE) if e.event["biz_step"] != "packing"]
    events = export_document(only_case, ExportContext(0))["epcisBody"]["eventList"]
    unpacking = next(e for e in events if e["bizStep"] == "unpacking")
    assert "childEPCs" not in unpacking  # EPCIS 2.0: DELETE without children = all of them
    assert Command("disaggregate", {"parent": CASE}) in import_document(
        export_document(only_case, ExportContext(0))
    )


# -- cancelled and rejected shipments -----------------------------------------------------


def test_a_cancelled_and_a_rejected_shipment_export_as_cbv_events(ended: DrugsChain) -> None:
    events = exported(ended)["epcisBody"]["eventList"]
    assert [(e["type"], e["action"], e["bizStep"], e.get("disposition")) for e in events] == [
        ("ObjectEvent", "ADD", "commissioning", "active"),
        ("AggregationEvent", "ADD", "packing", None),
        ("ObjectEvent", "OBSERVE", "shipping", "in_transit"),
        ("ObjectEvent", "OBSERVE", "void_shipping", "in_progress"),
        ("ObjectEvent", "OBSERVE", "shipping", "in_transit"),
        ("ObjectEvent", "OBSERVE", "arriving", "returned"),
        ("ObjectEvent", "OBSERVE", "shipping", "in_transit"),
        ("ObjectEvent", "OBSERVE", "receiving", "in_progress"),
    ]
    both = [f"https://id.gs1.org/00/{CASE}", f"urn:carechain:cn-trace:{CN_CODE}"]

    def parties(org: str, kind: str) -> list[dict[str, str]]:
        uri = f"urn:carechain:org:{org}"
        return [{"type": t, kind: uri} for t in ("owning_party", "possessing_party")]

    void, returned = events[3], events[5]
    assert void["epcList"] == both and returned["epcList"] == both
    assert void["bizTransactionList"] == [
        {"type": "desadv", "bizTransaction": f"urn:carechain:shipment:{RECALLED}"}
    ]
    assert returned["bizTransactionList"] == [
        {"type": "desadv", "bizTransaction": f"urn:carechain:shipment:{REFUSED}"}
    ]
    # The parties of the transfer the event belongs to, as on its shipping event.
    assert void["sourceList"] == events[2]["sourceList"] == parties(MAKER_ORG, "source")
    assert void["destinationList"] == parties(DISTRIBUTOR_ORG, "destination")
    assert returned["sourceList"] == parties(MAKER_ORG, "source")
    assert returned["destinationList"] == events[4]["destinationList"]
    assert returned["destinationList"] == parties(PHARMACY_ORG, "destination")
    assert (void["carechain:reason"], returned["carechain:reason"]) == ("wrong_receiver", "damaged")


def test_a_cancelled_and_a_rejected_shipment_import_as_their_calls(ended: DrugsChain) -> None:
    commands = import_document(exported(ended))
    assert commands == expected_calls(ended)
    assert commands[3] == Command(
        "cancel_shipment", {"shipment": RECALLED, "reason": "wrong_receiver"}
    )
    assert commands[5] == Command("reject_shipment", {"shipment": REFUSED, "reason": "damaged"})


def test_an_ending_written_in_cbv_urns_and_expanded_iris_imports_the_same(
    ended: DrugsChain,
) -> None:
    document = exported(ended)
    expected = import_document(document)
    for event in document["epcisBody"]["eventList"][3:6:2]:
        event["bizStep"] = "urn:epcglobal:cbv:bizstep:" + event["bizStep"]
        event["disposition"] = "https://ref.gs1.org/cbv/Disp-" + event["disposition"]
        event["urn:carechain:epcis:reason"] = event.pop("carechain:reason")
        event["bizTransactionList"][0]["type"] = "urn:epcglobal:cbv:btt:desadv"
    assert import_document(document) == expected


@pytest.mark.parametrize("journey", JOURNEYS)
def test_the_imported_calls_give_a_fresh_node_the_same_custody(
    journey: str, chain: DrugsChain, fresh: DrugsChain
) -> None:
    JOURNEYS[journey](chain)
    commands = import_document(exported(chain))
    assert [c.method for c in commands] == [c.method for c in chain.calls]
    for call, command in zip(chain.calls, commands, strict=True):
        fresh.call(call.member, command.method, command.args)  # signed as the call was
    assert fresh.custody() == chain.custody()
    if journey == "cancelled-and-rejected":
        custody = fresh.custody()
        assert custody[f"unit/{CASE}"]["owner"] == DISTRIBUTOR_ORG
        assert (custody[f"pack/{CN_PACK}"]["owner"], custody[f"pack/{CN_PACK}"]["transit"]) == (
            MAKER_ORG,
            None,
        )
        ends = {s: (custody[f"shipment/{s}"]["status"], custody[f"shipment/{s}"].get("reason"))
                for s in (RECALLED, REFUSED, DELIVERED)}  # fmt: skip
        assert ends == {
            RECALLED: ("cancelled", "wrong_receiver"),
            REFUSED: ("rejected", "damaged"),
            DELIVERED: ("received", None),
        }


def test_cancelling_or_rejecting_part_of_a_shipment_is_refused(ended: DrugsChain) -> None:
    document = exported(ended)
    void = document["epcisBody"]["eventList"][3]
    void["epcList"] = void["epcList"][:1]  # CBV lets a sender void part of a shipment
    with pytest.raises(InvalidEpcis) as caught:
        import_document(document)
    assert caught.value.path == "epcisBody.eventList[3].epcList"
    assert "names 1 of the 2 items" in caught.value.problem and caught.value.unsupported
    returned = document["epcisBody"]["eventList"][5]
    returned["epcList"].append(f"https://id.gs1.org/01/{GTIN}/21/S1")  # inside the case
    with pytest.raises(InvalidEpcis) as stray:
        import_document(document, skip_unsupported=True)
    assert stray.value.path == "epcisBody.eventList[5].epcList"
    assert f"{sgtin('S1')} is not in shipment {REFUSED}" in stray.value.problem
    assert not stray.value.unsupported


def test_the_exporter_refuses_an_ending_the_contract_would_not_write(ended: DrugsChain) -> None:
    rejected = [e for e in ended.events_of(CN_PACK) if e.event["biz_step"] == "arriving"]
    assert len(rejected) == 1 and rejected[0].event["disposition"] == "returned"
    for field, value, path in [
        ("disposition", "in_progress", "events[0].event.disposition"),
        ("reason", "lost", "events[0].event.reason"),
        ("shipment", None, "events[0].event.shipment"),
    ]:
        event = {k: v for k, v in rejected[0].event.items() if k != field}
        if value is not None:
            event[field] = value
        damaged = CustodyEvent(rejected[0].subject, event)
        with pytest.raises(InvalidEpcis) as caught:
            export_document([damaged], ExportContext(0))
        assert caught.value.path == path


def test_the_reasons_are_the_contracts() -> None:
    assert SHIPMENT_END_REASONS == drugs.SHIPMENT_END_REASONS
