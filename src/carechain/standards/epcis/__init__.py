"""GS1 EPCIS 2.0 documents of drug custody: a pure codec (no I/O, no clock).

Between the events the drugs contract writes (``contracts/drugs.py``:
``event/<id>/<height>/<txid>``) and EPCIS 2.0 JSON-LD documents (GS1 EPCIS
2.0 and CBV 2.0, June 2022; GS1's examples and JSON schema in the
``gs1/EPCIS`` repository). Sources are listed in
``tests/standards/epcis/testdata/README.md``.

What callers may rely on:

* ``export_document(events, ExportContext(created_ms, zone="+00:00"))``
  returns an ``EPCISDocument`` dict (``@context``, ``type``,
  ``schemaVersion`` "2.0", ``creationDate``, ``epcisBody.eventList``), one
  EPCIS event per contract call (see ``export`` for the table). EPCs are GS1
  Digital Link URIs; a 药品追溯码 is ``urn:carechain:cn-trace:<20 digits>``;
  organisations ``urn:carechain:org:<id>``; shipments
  ``urn:carechain:shipment:<id>`` (``vocabulary``). Nothing but the mapped
  fields is written: never a patient.
* ``import_document(doc, parties=None, skip_unsupported=False)`` returns
  ``Command(method, args)`` values for the drugs contract, in document
  order: ``commission``, ``aggregate``, ``disaggregate``, ``ship``,
  ``receive``, ``cancel_shipment`` (bizStep ``void_shipping``),
  ``reject_shipment`` (bizStep ``arriving``, disposition ``returned``),
  ``dispense`` (one per pack), ``decommission`` (one per item). A
  cancellation or rejection needs the shipment as a business transaction and
  the contract's reason in ``carechain:reason``.
  EPCs may be Digital Link, ``urn:epc:id:sgtin:``, ``urn:epc:id:sscc:`` (Tag
  Data Standard conversion with check digit) or ``urn:carechain:cn-trace:``;
  pack codes come back as ``PackId.key``, units as 18-digit SSCCs.
* Export then import gives back the calls that made the events (commission
  with ``expiry`` as ``YYMMDD`` of the stored date, aggregate, disaggregate,
  ship, receive, cancel_shipment, reject_shipment with their reason, dispense
  without its patient, decommission), provided a commissioning's events carry
  the packs' lot and expiry and a packing's events include its children's.
  The items of one call come back in the order of the events given (the
  ledger keeps none among the events of one transaction).
* Every refusal is ``InvalidEpcis`` (an ``InvalidInput``, code
  ``invalid_epcis``) with ``path`` into the document
  (``epcisBody.eventList[3].childEPCs[0]``) or into the exporter's input
  (``events[2].event.biz_step``) and a ``problem``; ``unsupported`` marks a
  valid event carechain has no call for. Nothing is dropped silently unless
  ``skip_unsupported`` asks for it.
"""

from __future__ import annotations

from carechain.standards.epcis.errors import InvalidEpcis
from carechain.standards.epcis.export import CustodyEvent, ExportContext, export_document
from carechain.standards.epcis.identifiers import (
    code_of_epc,
    epc_of,
    sgtin_from_urn,
    sscc_from_urn,
)
from carechain.standards.epcis.importer import Command, import_document, shipment_id
from carechain.standards.epcis.vocabulary import (
    CN_TRACE_PREFIX,
    EPCIS_CONTEXT,
    ORG_PREFIX,
    SHIPMENT_PREFIX,
)

__all__ = [
    "CN_TRACE_PREFIX",
    "EPCIS_CONTEXT",
    "ORG_PREFIX",
    "SHIPMENT_PREFIX",
    "Command",
    "CustodyEvent",
    "ExportContext",
    "InvalidEpcis",
    "code_of_epc",
    "epc_of",
    "export_document",
    "import_document",
    "sgtin_from_urn",
    "shipment_id",
    "sscc_from_urn",
]
