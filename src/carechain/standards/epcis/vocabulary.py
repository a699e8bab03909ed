"""The words EPCIS documents use: the GS1 Core Business Vocabulary (CBV 2.0) and carechain's URIs.

CBV 2.0 values are copied from GS1's CBV ontology (``Ontology/CBV.ttl`` of the
``gs1/EPCIS`` repository, sections "Business Step", "Disposition",
"Source/Destination Type", "Business Transaction Type"; published as
https://ref.gs1.org/cbv/). Each value may be written three ways, and all
three are read (EPCIS 2.0 section 8.2 and the JSON-LD context, which maps the
bare words of the JSON syntax to the Web URIs):

* the bare word, as in EPCIS 2.0 JSON-LD: ``shipping``;
* the CBV 1.x URN: ``urn:epcglobal:cbv:bizstep:shipping``;
* the CBV 2.0 Web URI: ``https://ref.gs1.org/cbv/BizStep-shipping``.

carechain writes the bare word. A bare word that is not a CBV value is an
error (the JSON-LD context gives it no meaning); any other URI is a user
vocabulary value, valid EPCIS but not something carechain understands.

carechain's own URIs (no GS1 identifier exists for these), all under the URN
namespace ``urn:carechain:``, which is not registered with IANA:

* ``urn:carechain:org:<org id>``: a consortium organisation (``sinopharm-mfg``),
  in ``sourceList``/``destinationList`` as ``owning_party`` and
  ``possessing_party``;
* ``urn:carechain:cn-trace:<20 digits>``: a pack named by China's drug
  traceability code (药品追溯码), which has no GS1 EPC;
* ``urn:carechain:shipment:<shipment id>``: a drugs-contract shipment, as a
  ``desadv`` business transaction;
* ``urn:carechain:event:<txid>:<n>``: the eventID of the n-th EPCIS event
  (from 0) made from transaction ``txid``;
* the JSON-LD prefix ``carechain`` = ``urn:carechain:epcis:`` for the one
  extension field, ``carechain:reason``: a decommissioning reason CBV has no
  disposition for (``sample``), and why a shipment was cancelled
  (``void_shipping``) or rejected (``arriving``, ``returned``), which CBV has
  no field for (``SHIPMENT_END_REASONS``).
"""

from __future__ import annotations

from typing import Literal

from carechain.standards.epcis.errors import InvalidEpcis, kind_of, shown

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
"""The EPCIS 2.0 JSON-LD context (EPCIS 2.0 section 10; ``@context`` of GS1's examples)."""

CONTEXT_PREFIX = "https://ref.gs1.org/standards/epcis/"
CONTEXT_SUFFIX = "epcis-context.jsonld"

CARECHAIN_NAMESPACE = "urn:carechain:epcis:"
ORG_PREFIX = "urn:carechain:org:"
CN_TRACE_PREFIX = "urn:carechain:cn-trace:"
SHIPMENT_PREFIX = "urn:carechain:shipment:"
EVENT_PREFIX = "urn:carechain:event:"
REASON_FIELD = "carechain:reason"
REASON_FIELD_IRI = CARECHAIN_NAMESPACE + "reason"

SHIPMENT_END_REASONS = ("damaged", "wrong_goods", "wrong_receiver", "not_ordered", "other")
"""Why the drugs contract's ``cancel_shipment`` or ``reject_shipment`` ended a shipment, as
``carechain:reason`` carries it (the contract's own list, ``SHIPMENT_END_REASONS``)."""

EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)
"""The five EPCIS 2.0 event types (EPCIS 2.0 section 7.4)."""

ACTIONS = ("ADD", "OBSERVE", "DELETE")

BIZ_STEPS = frozenset(
    [
        "accepting",
        "arriving",
        "assembling",
        "collecting",
        "commissioning",
        "consigning",
        "creating_class_instance",
        "cycle_counting",
        "decommissioning",
        "departing",
        "destroying",
        "disassembling",
        "dispensing",
        "encoding",
        "entering_exiting",
        "holding",
        "inspecting",
        "installing",
        "killing",
        "loading",
        "other",
        "packing",
        "picking",
        "receiving",
        "removing",
        "repackaging",
        "repairing",
        "replacing",
        "reserving",
        "retail_selling",
        "sampling",
        "sensor_reporting",
        "shipping",
        "staging_outbound",
        "stock_taking",
        "stocking",
        "storing",
        "transporting",
        "unloading",
        "unpacking",
        "void_shipping",
    ]
)
"""CBV 2.0 business steps (``cbv:BizStep-*``)."""

DISPOSITIONS = frozenset(
    [
        "active",
        "available",
        "completeness_inferred",
        "completeness_verified",
        "conformant",
        "container_closed",
        "container_open",
        "damaged",
        "destroyed",
        "dispensed",
        "disposed",
        "encoded",
        "expired",
        "in_progress",
        "in_transit",
        "inactive",
        "mismatch_class",
        "mismatch_instance",
        "mismatch_quantity",
        "needs_replacement",
        "no_pedigree_match",
        "non_conformant",
        "non_sellable_other",
        "partially_dispensed",
        "recalled",
        "reserved",
        "retail_sold",
        "returned",
        "sellable_accessible",
        "sellable_not_accessible",
        "stolen",
        "unavailable",
        "unknown",
    ]
)
"""CBV 2.0 dispositions (``cbv:Disp-*``)."""

SOURCE_DESTINATION_TYPES = frozenset(("location", "owning_party", "possessing_party"))
"""CBV 2.0 source/destination types (``cbv:SDT-*``)."""

TRANSACTION_TYPES = frozenset(
    [
        "bol",
        "cert",
        "desadv",
        "inv",
        "pedigree",
        "po",
        "poc",
        "prodorder",
        "recadv",
        "rma",
        "testprd",
        "testres",
    ]
)
"""CBV 2.0 business transaction types (``cbv:BTT-*``)."""

Kind = Literal["bizStep", "disposition", "sdt", "btt"]

_TERMS: dict[Kind, tuple[frozenset[str], str, str, str]] = {
    "bizStep": (BIZ_STEPS, "urn:epcglobal:cbv:bizstep:", "BizStep-", "business step"),
    "disposition": (DISPOSITIONS, "urn:epcglobal:cbv:disp:", "Disp-", "disposition"),
    "sdt": (SOURCE_DESTINATION_TYPES, "urn:epcglobal:cbv:sdt:", "SDT-", "source/destination type"),
    "btt": (TRANSACTION_TYPES, "urn:epcglobal:cbv:btt:", "BTT-", "business transaction type"),
}
_CBV_WEB = "https://ref.gs1.org/cbv/"


def cbv_word(kind: Kind, value: object, path: str) -> str | None:
    """The bare CBV word ``value`` names, in any of its three forms; None for a non-CBV URI.

    Raises ``InvalidEpcis`` at ``path`` for a value that is not text, a bare
    word that is not a CBV value of this kind, or a CBV URN or Web URI whose
    word is not one.
    """
    words, urn, web, label = _TERMS[kind]
    if not isinstance(value, str) or not value:
        raise InvalidEpcis(path, f"a {label} must be a CBV word or a URI, got {kind_of(value)}")
    for prefix in (urn, _CBV_WEB + web):
        if value.startswith(prefix):
            word = value[len(prefix) :]
            if word not in words:
                raise InvalidEpcis(path, f"{shown(value)} is not a CBV 2.0 {label}")
            return word
    if ":" not in value:
        if value in words:
            return value
        raise InvalidEpcis(path, f"{shown(value)} is not a CBV 2.0 {label}")
    return None
