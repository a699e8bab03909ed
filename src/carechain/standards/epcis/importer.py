"""An EPCIS 2.0 JSON-LD document to calls of carechain's drugs contract.

Steps, each labelled below:

1. The document: a JSON object with ``@context`` naming the EPCIS 2.0
   context, ``type`` ``EPCISDocument`` (or ``EPCISQueryDocument``, whose
   events are under ``epcisBody.queryResults.resultsBody``), ``schemaVersion``
   ``"2.0"``, ``creationDate`` and the event list (EPCIS 2.0 sections 9.2,
   10; the JSON schema's required fields).
2. Each event's common fields: ``type`` one of the five event types,
   ``eventTime`` an ISO 8601 date-time with its offset, ``eventTimeZoneOffset``
   ``+hh:mm``, ``action`` ``ADD``/``OBSERVE``/``DELETE``, ``bizStep`` and
   ``disposition`` CBV values (``vocabulary.cbv_word``).
3. Which call: the business step, event type and action select it
   (``_CALLS``); a valid event carechain has no call for is *unsupported*.
4. The call's arguments from the EPCs (``identifiers.code_of_epc``), the
   ``ilmd``, the business transactions, the destination and ``carechain:reason``.

Business step to call (the reverse of ``export``'s table): ``commissioning``
-> ``commission``; ``packing`` -> ``aggregate``; ``unpacking`` ->
``disaggregate``; ``shipping`` -> ``ship``; ``receiving`` -> ``receive``;
``void_shipping`` -> ``cancel_shipment``; ``arriving`` with disposition
``returned`` -> ``reject_shipment``; ``dispensing`` -> ``dispense``;
``decommissioning`` -> ``decommission``.

A cancellation or rejection ends a whole carechain shipment, named by a
business transaction (never by the eventID, which names the event, not the
shipment; two carechain shipments in one event are ambiguous), with one of the
contract's reasons in ``carechain:reason``; a void_shipping or arriving event
from elsewhere, which has no such reason, is unsupported. When the document
also holds the shipping event of that shipment, the ending must name the same
items: CBV lets a sender void part of a shipment, carechain cannot.

A problem is an ``InvalidEpcis`` whose path points into the document. An
unsupported event (a TransformationEvent or AssociationEvent, a business step
such as ``inspecting``, a user-vocabulary step, an ``errorDeclaration``, a
disposition with no carechain meaning) is refused too, with
``unsupported=True``, unless ``skip_unsupported`` is set.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from carechain.standards.epcis.errors import InvalidEpcis, kind_of, shown
from carechain.standards.epcis.identifiers import code_of_epc, is_sscc_code, org_of
from carechain.standards.epcis.vocabulary import (
    ACTIONS,
    CONTEXT_PREFIX,
    CONTEXT_SUFFIX,
    EVENT_TYPES,
    REASON_FIELD,
    REASON_FIELD_IRI,
    SHIPMENT_END_REASONS,
    SHIPMENT_PREFIX,
    cbv_word,
)
from carechain.standards.gs1 import InvalidGs1
from carechain.standards.gs1.keys import validate_text


@dataclass(frozen=True)
class Command:
    """One call of the drugs contract: ``method`` and its ``args`` as the contract reads them.

    ``source`` is the path of the EPCIS event it came from (not compared).
    """

    method: str
    args: dict[str, Any]
    source: str = field(default="", compare=False)


_CALLS: dict[str, dict[str, frozenset[str]]] = {
    "commissioning": {"ObjectEvent": frozenset({"ADD"})},
    "packing": {"AggregationEvent": frozenset({"ADD"})},
    "unpacking": {"AggregationEvent": frozenset({"DELETE"})},
    "shipping": {
        "ObjectEvent": frozenset({"OBSERVE"}),
        "AggregationEvent": frozenset({"OBSERVE"}),
        "TransactionEvent": frozenset({"ADD", "OBSERVE"}),
    },
    "dispensing": {"ObjectEvent": frozenset({"DELETE", "OBSERVE"})},
    "decommissioning": {"ObjectEvent": frozenset({"DELETE"})},
}
_CALLS["receiving"] = _CALLS["shipping"]
_CALLS["void_shipping"] = _CALLS["shipping"]
_CALLS["arriving"] = _CALLS["shipping"]
"""Business step -> event type -> actions that carechain reads as a call."""

_DISPOSITIONS: dict[str, frozenset[str | None]] = {
    "commissioning": frozenset({None, "active"}),
    "shipping": frozenset({None, "in_transit"}),
    "receiving": frozenset({None, "in_progress", "active"}),
    "void_shipping": frozenset({None, "in_progress"}),
    "arriving": frozenset({"returned"}),  # an arrival that is not a rejection: no call
    "dispensing": frozenset({None, "dispensed"}),
}
"""Dispositions accepted with each step (packing and unpacking: any)."""

_SHIPMENT_ENDS = {"void_shipping": "cancel_shipment", "arriving": "reject_shipment"}
"""The steps that end a shipment undelivered, and their calls."""

DECOMMISSION_REASONS = ("damaged", "destroyed", "expired", "stolen", "recalled")
"""Decommissioning reasons of the drugs contract that are CBV dispositions; ``sample`` is
written ``non_sellable_other`` + ``carechain:reason``."""

EXTENSION_REASONS = ("sample",)

_SHIPMENT_ID = re.compile(r"shp-[0-9a-f]{24}")
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
_ZONE = re.compile(r"[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)")
_SCHEMA_VERSION = re.compile(r"2\.0(\.\d+)?")
_ILMD_LOT = ("cbvmda:lotNumber", "urn:epcglobal:cbv:mda#lotNumber")
_ILMD_EXPIRY = ("cbvmda:itemExpirationDate", "urn:epcglobal:cbv:mda#itemExpirationDate")


def shipment_id(uri: str) -> str:
    """The shipment a business transaction or event URI names: carechain's own id when the
    URI is ``urn:carechain:shipment:<id>``, else ``shp-`` + the first 24 hex digits of the
    SHA-256 of the URI's UTF-8 bytes (the same URI always gives the same shipment)."""
    if uri.startswith(SHIPMENT_PREFIX) and _SHIPMENT_ID.fullmatch(uri[len(SHIPMENT_PREFIX) :]):
        return uri[len(SHIPMENT_PREFIX) :]
    return "shp-" + hashlib.sha256(uri.encode("utf-8")).hexdigest()[:24]


# -- helpers that read one field and name its path ---------------------------------------


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidEpcis(path, f"expected an object, got {kind_of(value)}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidEpcis(path, f"expected a list, got {kind_of(value)}")
    return value


def _required(doc: Mapping[str, Any], name: str, path: str) -> Any:
    if name not in doc:
        raise InvalidEpcis(f"{path}.{name}" if path else name, "required field is missing")
    return doc[name]


def _date_time(value: object, path: str) -> None:
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        raise InvalidEpcis(
            path, f"{shown(value)} is not an ISO 8601 date-time with its offset (…T…Z or …+08:00)"
        )
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEpcis(path, f"{shown(value)} is not a real date and time") from None


def _codes(event: Mapping[str, Any], name: str, path: str) -> list[str]:
    """carechain codes of the EPC list ``name`` (empty if absent); no EPC listed twice."""
    if name not in event:
        return []
    codes: list[str] = []
    for index, epc in enumerate(_list(event[name], f"{path}.{name}")):
        where = f"{path}.{name}[{index}]"
        code = code_of_epc(epc, where)
        if code in codes:
            raise InvalidEpcis(where, f"{shown(epc)} is listed twice")
        codes.append(code)
    return codes


def _packs(codes: list[str], name: str, path: str, what: str) -> list[str]:
    for index, code in enumerate(codes):
        if is_sscc_code(code):
            raise InvalidEpcis(f"{path}.{name}[{index}]", f"SSCC {code} names a unit; {what}")
    return codes


def _parent(event: Mapping[str, Any], path: str, required: bool) -> str | None:
    if "parentID" not in event:
        if required:
            raise InvalidEpcis(f"{path}.parentID", "required field is missing")
        return None
    code = code_of_epc(event["parentID"], f"{path}.parentID")
    if not is_sscc_code(code):
        raise InvalidEpcis(f"{path}.parentID", f"a parent is a logistic unit (SSCC), not {code}")
    return code


def _ilmd(event: Mapping[str, Any], names: tuple[str, str], path: str) -> tuple[str, str]:
    """``(path, value)`` of the ILMD field ``names`` (compact or expanded IRI)."""
    ilmd = _object(_required(event, "ilmd", path), f"{path}.ilmd")
    for name in names:
        if name in ilmd:
            value = ilmd[name]
            where = f"{path}.ilmd.{name}"
            if not isinstance(value, str):
                raise InvalidEpcis(where, f"expected text, got {kind_of(value)}")
            return where, value
    raise InvalidEpcis(
        f"{path}.ilmd.{names[0]}", "required: the drugs contract records each pack's lot and expiry"
    )


def _shipment(event: Mapping[str, Any], path: str, *, named: bool = False) -> str:
    """The shipment: a carechain shipment transaction, else the first business transaction,
    else the eventID (see ``shipment_id``). ``named``: a shipment the event refers to (a
    cancellation or rejection), so only a business transaction names it, and only one
    carechain shipment may be named."""
    transactions = _list(event.get("bizTransactionList", []), f"{path}.bizTransactionList")
    uris: list[str] = []
    for index, entry in enumerate(transactions):
        where = f"{path}.bizTransactionList[{index}]"
        entry = _object(entry, where)
        uri = _required(entry, "bizTransaction", where)
        if not isinstance(uri, str) or ":" not in uri:
            raise InvalidEpcis(f"{where}.bizTransaction", f"{shown(uri)} is not a URI")
        if "type" in entry:
            cbv_word("btt", entry["type"], f"{where}.type")
        if uri.startswith(SHIPMENT_PREFIX) and not _SHIPMENT_ID.fullmatch(
            uri[len(SHIPMENT_PREFIX) :]
        ):
            raise InvalidEpcis(f"{where}.bizTransaction", f"{shown(uri)}: not a carechain shipment")
        uris.append(uri)
    ours = [uri for uri in uris if uri.startswith(SHIPMENT_PREFIX)]
    if named and len(set(ours)) > 1:
        raise InvalidEpcis(
            f"{path}.bizTransactionList",
            f"names {len(set(ours))} carechain shipments; a shipment is ended one at a time",
        )
    if ours or uris:
        return shipment_id((ours or uris)[0])
    if named:
        raise InvalidEpcis(
            f"{path}.bizTransactionList",
            "no business transaction names the shipment this event ends",
        )
    if isinstance(event.get("eventID"), str):
        return shipment_id(event["eventID"])
    raise InvalidEpcis(
        f"{path}.bizTransactionList", "no business transaction and no eventID to name the shipment"
    )


def _receiver(event: Mapping[str, Any], path: str, parties: dict[str, str]) -> str:
    """The receiving organisation: the destination's owning and possessing party (one org)."""
    name = f"{path}.destinationList"
    found: dict[str, str] = {}
    for index, entry in enumerate(_list(_required(event, "destinationList", path), name)):
        where = f"{name}[{index}]"
        entry = _object(entry, where)
        kind = cbv_word("sdt", _required(entry, "type", where), f"{where}.type")
        if kind not in ("owning_party", "possessing_party"):
            continue
        uri = _required(entry, "destination", where)
        org = org_of(uri, f"{where}.destination", parties)
        if org is None:
            raise InvalidEpcis(
                f"{where}.destination",
                f"{shown(uri)} names no carechain organisation (write urn:carechain:org:<id>, "
                "or map it with parties=)",
            )
        found[kind] = org
    if not found:
        raise InvalidEpcis(name, "names no owning_party or possessing_party to ship to")
    if len(set(found.values())) > 1:
        raise InvalidEpcis(
            name, "owning and possessing party differ; carechain has one custodian per shipment"
        )
    return next(iter(found.values()))


def _reason(event: Mapping[str, Any], disposition: str | None, path: str) -> str:
    if disposition in DECOMMISSION_REASONS:
        return disposition
    extension = event.get(REASON_FIELD, event.get(REASON_FIELD_IRI))
    if disposition == "non_sellable_other" and extension in EXTENSION_REASONS:
        return str(extension)
    raise InvalidEpcis(
        f"{path}.disposition",
        f"decommissioning with disposition {shown(disposition)} gives carechain no reason: "
        f"expected one of {', '.join(DECOMMISSION_REASONS)}, or non_sellable_other with "
        f"{REASON_FIELD} {', '.join(EXTENSION_REASONS)}",
        unsupported=True,
    )


def _end_reason(event: Mapping[str, Any], step: str, path: str) -> str:
    """Why a shipment was cancelled or rejected: ``carechain:reason`` (compact or expanded)."""
    both = REASON_FIELD in event and REASON_FIELD_IRI in event
    if both and event[REASON_FIELD] != event[REASON_FIELD_IRI]:
        raise InvalidEpcis(f"{path}.{REASON_FIELD_IRI}", f"says another reason than {REASON_FIELD}")
    name = REASON_FIELD_IRI if REASON_FIELD_IRI in event and not both else REASON_FIELD
    expected = f"expected one of {', '.join(SHIPMENT_END_REASONS)}"
    if name not in event:
        raise InvalidEpcis(
            f"{path}.{name}",
            f"{step} without {REASON_FIELD} gives carechain no reason to end the shipment: "
            f"{expected}",
            unsupported=True,
        )
    reason = event[name]
    if not isinstance(reason, str) or reason not in SHIPMENT_END_REASONS:
        raise InvalidEpcis(
            f"{path}.{name}",
            f"{shown(reason)} is no reason carechain ends a shipment for: {expected}",
            unsupported=True,
        )
    return reason


def _whole_shipment(
    shipment: str, items: list[str], where: str, shipped: Mapping[str, list[str]]
) -> None:
    """Refuse ending part of a shipment whose shipping event this document holds."""
    sent = shipped.get(shipment)
    if sent is None or set(items) == set(sent):
        return
    strays = [item for item in items if item not in sent]
    if strays:
        raise InvalidEpcis(where, f"{strays[0]} is not in shipment {shipment} as shipped above")
    raise InvalidEpcis(
        where,
        f"names {len(items)} of the {len(sent)} items of shipment {shipment}; carechain "
        "cancels or rejects a whole shipment, never part of one",
        unsupported=True,
    )


# -- steps 2 to 4: one event --------------------------------------------------------------


def _step(event: dict[str, Any], path: str) -> tuple[str, str, str | None]:
    """Steps 2 and 3: ``(event type, business step, disposition)`` of a supported event."""
    kind = _required(event, "type", path)
    if kind not in EVENT_TYPES:
        raise InvalidEpcis(f"{path}.type", f"{shown(kind)} is not an EPCIS 2.0 event type")
    _date_time(_required(event, "eventTime", path), f"{path}.eventTime")
    zone = _required(event, "eventTimeZoneOffset", path)
    if not isinstance(zone, str) or not _ZONE.fullmatch(zone):
        raise InvalidEpcis(f"{path}.eventTimeZoneOffset", f"{shown(zone)} is not +hh:mm or -hh:mm")
    if "eventID" in event and (
        not isinstance(event["eventID"], str) or ":" not in event["eventID"]
    ):
        raise InvalidEpcis(f"{path}.eventID", f"{shown(event['eventID'])} is not a URI")
    if kind in ("TransformationEvent", "AssociationEvent"):
        raise InvalidEpcis(f"{path}.type", f"{kind} has no drugs-contract call", unsupported=True)
    action = _required(event, "action", path)
    if action not in ACTIONS:
        raise InvalidEpcis(f"{path}.action", f"{shown(action)} is not ADD, OBSERVE or DELETE")
    if "errorDeclaration" in event:
        raise InvalidEpcis(
            f"{path}.errorDeclaration",
            "an error declaration retracts an earlier event; carechain never rewrites its history",
            unsupported=True,
        )
    if "bizStep" not in event:
        raise InvalidEpcis(
            f"{path}.bizStep", "no bizStep: carechain cannot tell which call", unsupported=True
        )
    step = cbv_word("bizStep", event["bizStep"], f"{path}.bizStep")
    disposition = None
    if "disposition" in event:
        disposition = cbv_word("disposition", event["disposition"], f"{path}.disposition")
        if disposition is None:
            raise InvalidEpcis(
                f"{path}.disposition",
                f"{shown(event['disposition'])} is not a CBV disposition",
                unsupported=True,
            )
    if step is None or step not in _CALLS:
        raise InvalidEpcis(
            f"{path}.bizStep",
            f"{shown(event['bizStep'])} has no drugs-contract call; carechain reads "
            f"{', '.join(sorted(_CALLS))}",
            unsupported=True,
        )
    if action not in _CALLS[step].get(kind, frozenset()):
        raise InvalidEpcis(
            f"{path}.action",
            f"{kind} {action} with bizStep {step} has no drugs-contract call",
            unsupported=True,
        )
    allowed = _DISPOSITIONS.get(step)
    if allowed is not None and disposition not in allowed:
        given = (
            "without a disposition" if disposition is None else f"with disposition {disposition}"
        )
        raise InvalidEpcis(
            f"{path}.disposition", f"{step} {given} has no drugs-contract call", unsupported=True
        )
    return kind, step, disposition


def _commands(
    event: dict[str, Any], path: str, parties: dict[str, str], shipped: dict[str, list[str]]
) -> list[Command]:
    """Step 4: the calls of one supported event. ``shipped``: the items of each shipment
    shipped earlier in the document (added to here)."""
    kind, step, disposition = _step(event, path)
    epcs = _codes(event, "epcList", path)
    children = _codes(event, "childEPCs", path)
    parent = _parent(event, path, required=step in ("packing", "unpacking"))

    def one(method: str, args: dict[str, Any]) -> list[Command]:
        return [Command(method, args, path)]

    if step == "commissioning":
        if not epcs:
            raise InvalidEpcis(f"{path}.epcList", "commissioning needs the packs' EPCs")
        _packs(epcs, "epcList", path, "units are made by packing, not commissioned")
        where, lot = _ilmd(event, _ILMD_LOT, path)
        try:
            validate_text("lot", "lot number", lot)
        except InvalidGs1 as exc:
            raise InvalidEpcis(where, exc.message) from exc
        where, expiry = _ilmd(event, _ILMD_EXPIRY, path)
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", expiry):
            raise InvalidEpcis(where, f"{shown(expiry)} is not a date YYYY-MM-DD")
        try:
            yymmdd = date.fromisoformat(expiry).strftime("%y%m%d")
        except ValueError:
            raise InvalidEpcis(where, f"{shown(expiry)} is not a real date") from None
        packs = [{"code": code, "lot": lot, "expiry": yymmdd} for code in epcs]
        return one("commission", {"packs": packs})
    if step == "packing":
        if not children:
            raise InvalidEpcis(f"{path}.childEPCs", "packing needs the children's EPCs")
        if parent in children:
            raise InvalidEpcis(f"{path}.childEPCs", "a unit cannot contain itself")
        return one("aggregate", {"parent": parent, "children": children})
    if step == "unpacking":
        return one("disaggregate", {"parent": parent})
    if step in ("shipping", "receiving", *_SHIPMENT_ENDS):
        if kind == "TransactionEvent" and not event.get("bizTransactionList"):
            raise InvalidEpcis(f"{path}.bizTransactionList", "a TransactionEvent needs one")
        shipment = _shipment(event, path, named=step in _SHIPMENT_ENDS)
        if step == "receiving":
            return one("receive", {"shipment": shipment})
        items = [parent] if parent is not None else (epcs or children)
        listed = "parentID" if parent is not None else "epcList" if epcs else "childEPCs"
        if not items:
            raise InvalidEpcis(f"{path}.epcList", f"{step} needs the EPCs of what is shipped")
        if step in _SHIPMENT_ENDS:
            reason = _end_reason(event, step, path)
            _whole_shipment(shipment, items, f"{path}.{listed}", shipped)
            return one(_SHIPMENT_ENDS[step], {"shipment": shipment, "reason": reason})
        receiver = _receiver(event, path, parties)
        shipped.setdefault(shipment, items)
        return one("ship", {"shipment": shipment, "to": receiver, "items": items})
    if not epcs:
        raise InvalidEpcis(f"{path}.epcList", f"{step} needs the EPCs it applies to")
    if step == "dispensing":
        _packs(epcs, "epcList", path, "packs are dispensed, not units")
        return [Command("dispense", {"code": code}, path) for code in epcs]
    reason = _reason(event, disposition, path)
    return [Command("decommission", {"code": code, "reason": reason}, path) for code in epcs]


# -- step 1: the document -----------------------------------------------------------------


def _event_list(document: object) -> tuple[list[Any], str]:
    doc = _object(document, "")
    context = _required(doc, "@context", "")
    entries = context if isinstance(context, list) else [context]
    if not any(
        isinstance(c, str) and c.startswith(CONTEXT_PREFIX) and c.endswith(CONTEXT_SUFFIX)
        for c in entries
    ):
        raise InvalidEpcis(
            "@context", f"does not name the EPCIS 2.0 context ({CONTEXT_PREFIX}...{CONTEXT_SUFFIX})"
        )
    kind = _required(doc, "type", "")
    if kind not in ("EPCISDocument", "EPCISQueryDocument"):
        raise InvalidEpcis("type", f"{shown(kind)} is not EPCISDocument or EPCISQueryDocument")
    version = _required(doc, "schemaVersion", "")
    if not isinstance(version, str) or not _SCHEMA_VERSION.fullmatch(version):
        raise InvalidEpcis("schemaVersion", f'{shown(version)}: expected the text "2.0"')
    _date_time(_required(doc, "creationDate", ""), "creationDate")
    body = _object(_required(doc, "epcisBody", ""), "epcisBody")
    path = "epcisBody"
    if kind == "EPCISQueryDocument":
        results = _object(_required(body, "queryResults", path), f"{path}.queryResults")
        body = _object(
            _required(results, "resultsBody", f"{path}.queryResults"),
            f"{path}.queryResults.resultsBody",
        )
        path = f"{path}.queryResults.resultsBody"
    return _list(_required(body, "eventList", path), f"{path}.eventList"), f"{path}.eventList"


def import_document(
    document: object,
    *,
    parties: Mapping[str, str] | None = None,
    skip_unsupported: bool = False,
) -> list[Command]:
    """The drugs-contract calls an EPCIS 2.0 JSON-LD document (parsed JSON) describes, in order.

    ``parties`` maps party URIs other than ``urn:carechain:org:<id>`` (a PGLN,
    an SGLN) to carechain organisation ids. ``skip_unsupported`` skips events
    carechain has no call for instead of refusing the document. Raises
    ``InvalidEpcis`` naming the path of the first problem.
    """
    known = dict(parties or {})
    events, path = _event_list(document)
    commands: list[Command] = []
    shipped: dict[str, list[str]] = {}
    for index, event in enumerate(events):
        where = f"{path}[{index}]"
        try:
            commands += _commands(_object(event, where), where, known, shipped)
        except InvalidEpcis as exc:
            if not (exc.unsupported and skip_unsupported):
                raise
    return commands
