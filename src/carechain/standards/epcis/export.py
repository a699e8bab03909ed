"""carechain drug custody events to an EPCIS 2.0 JSON-LD document.

The drugs contract writes one event document per pack or unit
(``event/<id>/<height>/<txid>``: action, biz_step, disposition, org, time,
txid, and parent, children, to, source, shipment as the step needs). EPCIS
describes one business step over many objects, so the events of one
transaction are gathered into one EPCIS event (two when one commissioning
covers packs of different lots):

==================  =================  ======  ===============  =========================
biz_step            EPCIS event        action  disposition      also
==================  =================  ======  ===============  =========================
commissioning       ObjectEvent        ADD     active           ilmd lot and expiry
packing             AggregationEvent   ADD     (none)           parentID, childEPCs
unpacking           AggregationEvent   DELETE  (none)           parentID, childEPCs
shipping            ObjectEvent        OBSERVE in_transit       shipment, source, dest.
receiving           ObjectEvent        OBSERVE in_progress      shipment, source, dest.
void_shipping       ObjectEvent        OBSERVE in_progress      cancel_shipment (below)
arriving            ObjectEvent        OBSERVE returned         reject_shipment (below)
dispensing          ObjectEvent        DELETE  dispensed        (no patient, ever)
decommissioning     ObjectEvent        DELETE  the reason       see below
==================  =================  ======  ===============  =========================

Dispositions and business steps are CBV 2.0 words; a decommissioning reason
that is a CBV disposition (damaged, destroyed, expired, stolen, recalled) is
written as one; ``sample``, which CBV has no disposition for, is written as
``non_sellable_other`` with the extension field ``carechain:reason``. The
shipment is a ``desadv`` business transaction; the parties are
``urn:carechain:org:<id>`` as both owning and possessing party (carechain
has one custodian).

A cancelled shipment is CBV 2.0's ``void_shipping`` ("declaring that one or
more objects in a prior outbound process ... were not shipped ... as previously
indicated"; the goods stay with the sender) and a rejected one ``arriving``
("an object arrives at a location") with disposition ``returned`` ("sent or
brought back for various reasons"; the goods go back to the sender's custody),
in the words of CBV 2.0's ontology (``Ontology/CBV.ttl``). Both carry the
shipment's ``desadv`` transaction and the parties of its shipping event
(sourceList the sender, destinationList the receiver: the business transfer
the event belongs to, not where the goods end up), and the contract's reason
(damaged, wrong_goods, wrong_receiver, not_ordered, other) in
``carechain:reason``: CBV has no field for why a shipment was voided or
refused, and the disposition must stay ``returned``.

Only the fields named above are written: whatever else an event document
holds (the patient of a dispense) never leaves the chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from carechain.standards.epcis.errors import InvalidEpcis, kind_of, shown
from carechain.standards.epcis.identifiers import epc_of, is_sscc_code, org_uri
from carechain.standards.epcis.vocabulary import (
    CARECHAIN_NAMESPACE,
    DISPOSITIONS,
    EPCIS_CONTEXT,
    EVENT_PREFIX,
    REASON_FIELD,
    SHIPMENT_END_REASONS,
    SHIPMENT_PREFIX,
)
from carechain.standards.gs1 import DEFAULT_RESOLVER, InvalidGs1, PackId

ZONE_PATTERN = r"^[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)$"
"""``eventTimeZoneOffset`` as the EPCIS 2.0 JSON schema allows it."""

_ACTIONS = {
    "commissioning": "ADD",
    "packing": "ADD",
    "unpacking": "DELETE",
    "shipping": "OBSERVE",
    "receiving": "OBSERVE",
    "void_shipping": "OBSERVE",
    "arriving": "OBSERVE",
    "dispensing": "DELETE",
    "decommissioning": "DELETE",
}
"""The action the drugs contract records with each business step."""

_SHIPMENT_ENDS = {"void_shipping": "in_progress", "arriving": "returned"}
"""The steps that end a shipment undelivered (``cancel_shipment``, ``reject_shipment``) and
the disposition the contract records with each: ``arriving`` means a rejection only with
``returned``."""


@dataclass(frozen=True)
class CustodyEvent:
    """One event document of the drugs contract and what it is about.

    ``subject`` is the ``<id>`` of its key ``event/<id>/<height>/<txid>``: a
    pack key or an 18-digit SSCC. ``event`` is the document as stored. For a
    commissioning, ``lot`` and ``expiry`` (ISO date) come from the pack's own
    document (``pack/<key>``), since the event does not repeat them; without
    them the export has no ``ilmd``.
    """

    subject: str
    event: Mapping[str, Any]
    lot: str | None = None
    expiry: str | None = None

    @classmethod
    def from_state(
        cls, key: str, value: Mapping[str, Any], pack: Mapping[str, Any] | None = None
    ) -> CustodyEvent:
        """From a state entry ``event/<id>/<height>/<txid>`` and, optionally, the pack document."""
        head, _, rest = key.partition("/")
        subject, *tail = rest.rsplit("/", 2)
        if head != "event" or len(tail) != 2 or not subject:
            raise InvalidEpcis("key", f"{shown(key)} is not an event/<id>/<height>/<txid> key")
        lot = pack.get("lot") if pack is not None else None
        expiry = pack.get("expiry") if pack is not None else None
        return cls(subject, value, lot, expiry)


@dataclass(frozen=True)
class ExportContext:
    """What the document needs beyond the events: the codec has no clock.

    ``created_ms`` is the document's ``creationDate`` (milliseconds since
    1970, UTC); ``zone`` the ``eventTimeZoneOffset`` written with every event
    and the offset all times are shown in (block times are UTC; ``+08:00``
    shows them as Beijing time, the same instants); ``resolver`` the Digital
    Link domain of the EPCs.
    """

    created_ms: int
    zone: str = "+00:00"
    resolver: str = DEFAULT_RESOLVER


@dataclass
class _Group:
    """The events of one transaction that become one EPCIS event."""

    step: str
    txid: str
    time: int
    org: str
    path: str
    fields: dict[str, str]
    items: list[str]


def _zone(text: str) -> timezone:
    if not isinstance(text, str) or not re.fullmatch(ZONE_PATTERN, text):
        raise InvalidEpcis("context.zone", f"{shown(text)} is not a UTC offset such as +08:00")
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _time(ms: int, zone: timezone) -> str:
    instant = datetime.fromtimestamp(ms // 1000, UTC) + timedelta(milliseconds=ms % 1000)
    return instant.astimezone(zone).isoformat(timespec="milliseconds")


def _text(doc: Mapping[str, Any], name: str, path: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidEpcis(f"{path}.{name}", f"expected text, got {kind_of(value)}")
    return value


def _normalise(entry: CustodyEvent | Mapping[str, Any], path: str) -> CustodyEvent:
    if isinstance(entry, CustodyEvent):
        return entry
    if not isinstance(entry, Mapping):
        raise InvalidEpcis(path, f"expected a CustodyEvent or an object, got {kind_of(entry)}")
    if "key" in entry:
        value = entry.get("value")
        if not isinstance(value, Mapping):
            raise InvalidEpcis(f"{path}.value", f"expected an object, got {kind_of(value)}")
        return CustodyEvent.from_state(str(entry["key"]), value, entry.get("pack"))
    event = entry.get("event")
    if not isinstance(event, Mapping):
        raise InvalidEpcis(f"{path}.event", f"expected an object, got {kind_of(event)}")
    return CustodyEvent(_text(entry, "subject", path), event, entry.get("lot"), entry.get("expiry"))


def _check_subject(subject: str, path: str) -> None:
    try:
        if not is_sscc_code(subject):
            PackId.from_key(subject)
        else:
            epc_of(subject)
    except InvalidGs1 as exc:
        raise InvalidEpcis(f"{path}.subject", exc.message) from exc


def _group_fields(item: CustodyEvent, step: str, path: str) -> tuple[dict[str, str], str | None]:
    """The fields that must agree for events to share an EPCIS event, and the item to list."""
    doc, where = item.event, f"{path}.event"
    if step == "commissioning":
        if is_sscc_code(item.subject):
            raise InvalidEpcis(f"{path}.subject", "only packs are commissioned, not units")
        fields = {"lot": item.lot or "", "expiry": item.expiry or ""}
        return fields, item.subject
    if step in ("packing", "unpacking"):
        if "parent" in doc:
            return {"parent": _text(doc, "parent", where)}, item.subject
        return {"parent": item.subject}, None
    if step == "shipping":
        return {"to": _text(doc, "to", where), "shipment": _text(doc, "shipment", where)}, (
            item.subject
        )
    if step == "receiving":
        fields = {"source": _text(doc, "source", where), "shipment": _text(doc, "shipment", where)}
        return fields, item.subject
    if step in _SHIPMENT_ENDS:
        fields = {name: _text(doc, name, where) for name in ("source", "to", "shipment", "reason")}
        if fields["reason"] not in SHIPMENT_END_REASONS:
            raise InvalidEpcis(
                f"{where}.reason",
                f"{shown(fields['reason'])} is not one of {', '.join(SHIPMENT_END_REASONS)}",
            )
        return fields, item.subject
    if step == "decommissioning":
        return {"reason": _text(doc, "disposition", where)}, item.subject
    return {}, item.subject  # dispensing


def _groups(events: Iterable[CustodyEvent | Mapping[str, Any]]) -> list[_Group]:
    groups: dict[tuple[str, ...], _Group] = {}
    for index, entry in enumerate(events):
        path = f"events[{index}]"
        item = _normalise(entry, path)
        _check_subject(item.subject, path)
        doc, where = item.event, f"{path}.event"
        step = _text(doc, "biz_step", where)
        if step not in _ACTIONS:
            raise InvalidEpcis(f"{where}.biz_step", f"{shown(step)} is not a drugs-contract step")
        action = _text(doc, "action", where)
        if action != _ACTIONS[step]:
            raise InvalidEpcis(
                f"{where}.action", f"{step} is recorded with {_ACTIONS[step]}, not {shown(action)}"
            )
        if step in _SHIPMENT_ENDS and doc.get("disposition") != _SHIPMENT_ENDS[step]:
            raise InvalidEpcis(
                f"{where}.disposition",
                f"{step} is recorded with {_SHIPMENT_ENDS[step]}, "
                f"not {shown(doc.get('disposition'))}",
            )
        time = doc.get("time")
        if isinstance(time, bool) or not isinstance(time, int) or time < 0:
            raise InvalidEpcis(f"{where}.time", f"expected block time in ms, got {kind_of(time)}")
        txid, org = _text(doc, "txid", where), _text(doc, "org", where)
        fields, listed = _group_fields(item, step, path)
        key = (step, txid, *fields.values())
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(step, txid, time, org, path, fields, [])
        if listed is not None and listed not in group.items:
            group.items.append(listed)
    return list(groups.values())


def _parties(kind: str, org: str) -> list[dict[str, str]]:
    uri = org_uri(org)
    return [{"type": t, kind: uri} for t in ("owning_party", "possessing_party")]


def _transfer(event: dict[str, Any], shipment: str, sender: str, receiver: str) -> None:
    """The shipment as a ``desadv`` business transaction, and its sender and receiver."""
    event["bizTransactionList"] = [{"type": "desadv", "bizTransaction": SHIPMENT_PREFIX + shipment}]
    event["sourceList"] = _parties("source", sender)
    event["destinationList"] = _parties("destination", receiver)


def _render(group: _Group, index: int, zone: timezone, context: ExportContext) -> dict[str, Any]:
    def epcs(codes: list[str]) -> list[str]:
        return [epc_of(code, context.resolver) for code in codes]

    step, fields = group.step, group.fields
    event: dict[str, Any] = {
        "type": "AggregationEvent" if step in ("packing", "unpacking") else "ObjectEvent",
        "eventTime": _time(group.time, zone),
        "eventTimeZoneOffset": context.zone,
        "eventID": f"{EVENT_PREFIX}{group.txid}:{index}",
        "action": _ACTIONS[step],
        "bizStep": step,
    }
    if step in ("packing", "unpacking"):
        if step == "packing" and not group.items:
            raise InvalidEpcis(
                group.path,
                f"packing of unit {fields['parent']} in transaction {group.txid}: no child "
                "events given; export the children's events (same txid) with it",
            )
        event["parentID"] = epc_of(fields["parent"], context.resolver)
        if group.items:
            event["childEPCs"] = epcs(group.items)
        return event
    event["epcList"] = epcs(group.items)
    if step == "commissioning":
        event["disposition"] = "active"
        ilmd = {}
        if fields["lot"]:
            ilmd["cbvmda:lotNumber"] = fields["lot"]
        if fields["expiry"]:
            try:
                ilmd["cbvmda:itemExpirationDate"] = date.fromisoformat(fields["expiry"]).isoformat()
            except ValueError:
                raise InvalidEpcis(
                    f"{group.path}.expiry", f"{shown(fields['expiry'])} is not an ISO date"
                ) from None
        if ilmd:
            event["ilmd"] = ilmd
    elif step in ("shipping", "receiving"):
        event["disposition"] = "in_transit" if step == "shipping" else "in_progress"
        sender, receiver = (
            (group.org, fields["to"]) if step == "shipping" else (fields["source"], group.org)
        )
        _transfer(event, fields["shipment"], sender, receiver)
    elif step in _SHIPMENT_ENDS:  # cancel_shipment (by the sender), reject_shipment (receiver)
        event["disposition"] = _SHIPMENT_ENDS[step]
        _transfer(event, fields["shipment"], fields["source"], fields["to"])
        event[REASON_FIELD] = fields["reason"]
    elif step == "dispensing":
        event["disposition"] = "dispensed"
    else:  # decommissioning
        reason = fields["reason"]
        if reason in DISPOSITIONS:
            event["disposition"] = reason
        else:
            event["disposition"] = "non_sellable_other"
            event[REASON_FIELD] = reason
    return event


def export_document(
    events: Iterable[CustodyEvent | Mapping[str, Any]], context: ExportContext
) -> dict[str, Any]:
    """An EPCIS 2.0 ``EPCISDocument`` (JSON-LD, as a dict) of the given drugs-contract events.

    ``events`` are ``CustodyEvent`` values or objects of the same fields
    (``subject``, ``event``, optional ``lot``, ``expiry``) or state entries
    (``key``, ``value``, optional ``pack``), in ledger order. EPCIS events
    come out in the order of each transaction's first event. Raises
    ``InvalidEpcis`` (path ``events[i]...``) for an event document the drugs
    contract would not have written, and for a packing whose children are
    all missing (EPCIS has no way to say "packed, contents unknown").
    """
    zone = _zone(context.zone)
    rendered: list[dict[str, Any]] = []
    per_transaction: dict[str, int] = {}
    for group in _groups(events):
        index = per_transaction.get(group.txid, 0)
        per_transaction[group.txid] = index + 1
        rendered.append(_render(group, index, zone, context))
    return {
        "@context": [EPCIS_CONTEXT, {"carechain": CARECHAIN_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(context.created_ms, zone),
        "epcisBody": {"eventList": rendered},
    }
