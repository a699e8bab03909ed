"""Health records on a custodian's node: the vault behind the records contract.

Adding a record (``add``)
    The client (a clinician's system) picks the record id and a random salt,
    computes the salted fingerprint of the resource's exact bytes, signs a
    ``records.add`` transaction naming them, and sends resource, salt and
    transaction together. The node validates the FHIR resource, checks that
    the transaction describes exactly this resource, stores it encrypted in
    the custodian's vault as *pending*, submits the transaction and, once it
    commits, marks the vault entry committed (or drops it if the chain
    rejected it). A crash in between is settled on the next start
    (``reconcile``).

Reading (``read``, ``export``)
    1. Check the request up front (record known, not erased, held here,
       purpose, a reason for break-glass).
    2. Submit a ``records.access`` transaction signed by this node, carrying
       the reader's signed request as evidence; wait until it commits.
    3. Read the event the contract recorded: only records it granted are
       served; a refusal is an ``AccessRefused`` naming the event.
    4. Open each granted record from the vault (its authentication tag and
       fingerprint are checked there) and check the fingerprint against the
       chain's; a mismatch is reported and never served.

Erasing
    When a ``records.erase`` transaction commits, the node destroys the
    record's key in its vault (``after_commit``; ``reconcile`` repeats any
    erasure a crash interrupted).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from carechain.contracts.consent import (
    BREAK_GLASS_REASONS,
    PATIENT_ID,
    READ_PURPOSES,
    consent_status,
    patient_id_of,
    readable,
)
from carechain.contracts.membership import MemberRecord
from carechain.contracts.records import ADD_WINDOW_MS, RECORD_ID
from carechain.errors import (
    AccessRefused,
    CarechainError,
    ContractError,
    Forbidden,
    InvalidInput,
    NodeFailure,
    NotFound,
    RecordErased,
    VaultTampered,
)
from carechain.identity.requests import HEADER_NONCE, HEADER_SIGNATURE, HEADER_SIGNER, HEADER_TIME
from carechain.identity.roles import OrgType, Role
from carechain.ledger.block import Block
from carechain.ledger.transaction import SignedTransaction, Transaction, new_nonce, sign_transaction
from carechain.node.fhircheck import FhirChecker
from carechain.node.remote import Custodians, Relayed, Unreachable, vault_statement
from carechain.standards.fhir import make_bundle
from carechain.vault import NewRecord, Vault, fingerprint

if TYPE_CHECKING:
    from carechain.node.node import Node

log = logging.getLogger(__name__)

PREFIX = "records/"
_CHALLENGE = re.compile(r"[0-9a-f]{32,64}")
PENDING_TTL_MS = ADD_WINDOW_MS + 60 * 1000
"""A vault entry still pending this long (by block time) after it was stored can no
longer be committed (the contract refuses a records.add signed ten minutes before its
block): dropped."""


@dataclass(frozen=True)
class RequestEvidence:
    """A reader's signed API request, as the records contract checks it."""

    method: str
    path: str
    body_sha256: str
    time_ms: int
    nonce: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "body": self.body_sha256,
            "time": self.time_ms,
            "nonce": self.nonce,
            "signature": self.signature,
        }


@dataclass(frozen=True)
class ServedRecord:
    record: dict[str, Any]
    """The record's metadata as the chain holds it."""
    data: bytes
    salt: bytes


def _status_error(code: str, message: str, http_status: int | None = None) -> CarechainError:
    error = ContractError(message)
    error.code = code
    if http_status is not None:
        error.http_status = http_status
    return error


def _headers(reader: MemberRecord, evidence: RequestEvidence) -> dict[str, str]:
    """The headers that authenticated the reader's request, to relay it unchanged."""
    return {
        HEADER_SIGNER: reader.fingerprint,
        HEADER_TIME: str(evidence.time_ms),
        HEADER_NONCE: evidence.nonce,
        HEADER_SIGNATURE: evidence.signature,
    }


def _remote_error(answer: Relayed, org: str) -> CarechainError:
    """A custodian node's error answer, passed on with its code and status."""
    try:
        found = orjson.loads(answer.content).get("error", {})
        code, message = str(found["code"]), str(found["message"])
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        code, message = "custodian_failed", f"HTTP {answer.status}"
    error = AccessRefused(f"{message} (answered by the node of {org})")
    error.code = code
    error.http_status = answer.status if 400 <= answer.status < 600 else 502
    return error


class RecordService:
    def __init__(
        self,
        node: Node,
        vault: Vault,
        orgs: Sequence[str],
        custodians: Custodians | None = None,
        fhir: FhirChecker | None = None,
    ) -> None:
        self.node = node
        self.fhir = fhir or FhirChecker(workers=0)
        self.vault = vault
        self.orgs = tuple(orgs)
        """The organisations whose vaults this node keeps."""
        self.custodians = custodians
        """How to reach other organisations' vaults (None: this node knows no peers)."""
        for org in orgs:
            vault.host(org)

    # -- chain state -------------------------------------------------------------------

    def _get(self, key: str) -> Any | None:
        raw = self.node.state.get(PREFIX + key)
        return None if raw is None else orjson.loads(raw)

    def _scan(self, prefix: str) -> list[tuple[str, Any]]:
        cut = len(PREFIX)
        return [(k[cut:], orjson.loads(v)) for k, v in self.node.state.scan(PREFIX + prefix, -1)]

    def vault_claim(self, challenge: str) -> dict[str, Any]:
        """Which vaults this node keeps, signed with its peer key over a caller's challenge."""
        if not isinstance(challenge, str) or not _CHALLENGE.fullmatch(challenge):
            raise InvalidInput("challenge must be 32 to 64 hexadecimal digits")
        vaults = list(self.orgs)
        statement = vault_statement(challenge, self.node.peer_fp, vaults)
        signature = self.node.suite.sign(self.node.peer_key, statement)
        return {
            "peer": self.node.peer_fp,
            "vaults": vaults,
            "challenge": challenge,
            "signature": base64.b64encode(signature).decode("ascii"),
        }

    def record(self, record_id: str) -> dict[str, Any]:
        if not isinstance(record_id, str) or not RECORD_ID.fullmatch(record_id):
            raise InvalidInput(f"{record_id!r} is not a record id")
        found = self._get(f"record/{record_id}")
        if found is None:
            raise NotFound(f"no record {record_id} on this chain")
        return dict(found)

    # -- adding ------------------------------------------------------------------------

    def add(
        self,
        author: MemberRecord,
        items: Sequence[tuple[str, str]],
        tx: SignedTransaction,
        timeout_s: float,
    ) -> dict[str, Any]:
        """Store ``items`` ((resource text, salt hex), in the transaction's order) and commit."""
        body = tx.body
        if (body.contract, body.method) != ("records", "add"):
            raise InvalidInput("the transaction must call records.add")
        if body.signer != author.fingerprint:
            raise InvalidInput("the transaction must be signed by the member sending the request")
        described = body.args.get("records")
        if not isinstance(described, list) or len(described) != len(items):
            raise InvalidInput(
                f"the transaction describes {len(described) if isinstance(described, list) else 0}"
                f" record(s); the request carries {len(items)}"
            )
        if not self.vault.hosts(author.org_id):
            raise InvalidInput(f"this node does not keep the vault of {author.org_id}")
        for index, meta in enumerate(described):
            if not isinstance(meta, dict):
                raise InvalidInput(f"transaction records[{index}] must be an object")
        try:
            raws = [text.encode("utf-8") for text, _ in items]
        except UnicodeEncodeError:
            raise InvalidInput(
                "a resource holds a lone surrogate: it is not valid Unicode"
            ) from None
        checked = self.fhir(raws)  # InvalidFhir names the element and records[i]
        prepared = []
        for index, (raw, (_, salt_hex), meta, parsed) in enumerate(
            zip(raws, items, described, checked, strict=True)
        ):
            where = f"records[{index}]"
            try:
                salt = bytes.fromhex(salt_hex)
            except (TypeError, ValueError):
                raise InvalidInput(f"{where}.salt must be 64 hexadecimal digits") from None
            if len(salt) != 32:
                raise InvalidInput(f"{where}.salt must be 32 bytes (64 hexadecimal digits)")
            for field, actual in (("type", parsed.resource_type), ("category", parsed.category)):
                if meta.get(field) != actual:
                    raise InvalidInput(
                        f"transaction {where}.{field} is {meta.get(field)!r}; the resource's is "
                        f"{actual!r}"
                    )
            digest = fingerprint(self.node.suite, salt, raw)
            if meta.get("fingerprint") != digest:
                raise InvalidInput(
                    f"transaction {where}.fingerprint does not match the resource and salt"
                )
            if not isinstance(meta.get("record"), str) or not RECORD_ID.fullmatch(meta["record"]):
                raise InvalidInput(f"transaction {where}.record is not a record id")
            if not isinstance(meta.get("patient"), str) or not PATIENT_ID.fullmatch(
                meta["patient"]
            ):
                raise InvalidInput(f"transaction {where}.patient is not a patient id")
            prepared.append((meta, parsed, raw, salt))
        stored = [meta["record"] for meta, _, _, _ in prepared]
        self.vault.put_many(
            [
                NewRecord(
                    author.org_id,
                    meta["record"],
                    meta["patient"],
                    parsed.resource_type,
                    parsed.category,
                    raw,
                    salt,
                )
                for meta, parsed, raw, salt in prepared
            ],
            now_ms=int(time.time() * 1000),
        )
        try:
            status = self.node.submit_one(tx, timeout_s)
        except BaseException:
            for record_id in stored:
                self.vault.discard(record_id)
            raise
        if status.status == "committed":
            if status.code == "ok":
                self.vault.commit_many(stored)
            else:
                for record_id in stored:
                    self.vault.discard(record_id)
                raise _status_error(status.code or "rejected", status.message or "rejected")
        return {**status.to_json(), "records": stored}

    # -- reading -----------------------------------------------------------------------

    def _check_purpose(self, reader: MemberRecord, purpose: str, reason: str) -> None:
        if purpose not in READ_PURPOSES:
            raise InvalidInput(
                f"purpose must be one of {', '.join(READ_PURPOSES)}, not {purpose!r}"
            )
        if purpose == "emergency":
            if not reason:
                raise InvalidInput(
                    "break-glass access needs a reason: one of " + ", ".join(BREAK_GLASS_REASONS)
                )
            if reason not in BREAK_GLASS_REASONS:
                raise InvalidInput(
                    f"reason {reason!r} is not one of {', '.join(BREAK_GLASS_REASONS)}"
                )
            if reader.role is not Role.CLINICIAN:
                raise InvalidInput("only a clinician may use break-glass access")
        elif reason:
            raise InvalidInput("a reason is given only with purpose emergency (break-glass)")

    def _access(
        self,
        reader: MemberRecord,
        evidence: RequestEvidence,
        patient: str,
        record_ids: list[str],
        purpose: str,
        reason: str,
        timeout_s: float,
    ) -> dict[str, Any]:
        """Record the access on the chain (steps 2-3); the committed event."""
        args: dict[str, Any] = {
            "patient": patient,
            "records": record_ids,
            "purpose": purpose,
            "reader": reader.fingerprint,
            "request": evidence.to_json(),
        }
        if reason:
            args["reason"] = reason
        body = Transaction(
            chain=self.node.chain,
            contract="records",
            method="access",
            args=args,
            signer=self.node.peer_fp,
            nonce=new_nonce("access-"),
            timestamp_ms=int(time.time() * 1000),
        )
        tx = sign_transaction(body, {self.node.peer_fp: self.node.peer_key}, self.node.suite)
        status = self.node.submit_one(tx, timeout_s)
        if status.status != "committed":
            raise _status_error(
                "access_pending",
                f"the access event {tx.txid} did not commit within {timeout_s:g} s; "
                "nothing was served",
            )
        if status.code != "ok":
            raise _status_error(status.code or "rejected", status.message or "access rejected")
        event = self._get(f"log/{patient}/{status.height:012d}/{tx.txid}")
        if event is None:  # pragma: no cover - the contract always writes it
            raise AccessRefused(f"access event {tx.txid} is missing from the state")
        return dict(event)

    def _refusal(self, event: dict[str, Any]) -> AccessRefused:
        reasons = sorted({o["basis"] for o in event["records"] if o["outcome"] == "refused"})
        return AccessRefused(
            f"access refused: {'; '.join(reasons)} (the attempt is recorded on the chain as "
            f"access event {event['id']})"
        )

    def _open(self, record: dict[str, Any]) -> ServedRecord:
        try:
            opened = self.vault.open(record["id"])
        except VaultTampered:
            log.error("vault entry of record %s failed its integrity check", record["id"])
            raise
        if opened.entry.fingerprint != record["fingerprint"]:
            log.error("vault entry of record %s does not match the chain", record["id"])
            raise VaultTampered(
                f"record {record['id']} in the vault does not match its fingerprint on the "
                "chain; it is not served",
                record["id"],
            )
        return ServedRecord(record, opened.data, opened.salt)

    def _servable(self, record: dict[str, Any]) -> None:
        if record["status"] == "erased":
            raise RecordErased(f"record {record['id']} was erased; it can no longer be read")
        if not self.vault.hosts(record["custodian"]):
            raise NotFound(
                f"record {record['id']} is held by {record['custodian']}, whose vault is not on "
                "this node; ask that organisation's node"
            )

    def read(
        self,
        reader: MemberRecord,
        evidence: RequestEvidence,
        record_id: str,
        purpose: str,
        reason: str = "",
        timeout_s: float = 10.0,
    ) -> tuple[ServedRecord, dict[str, Any]]:
        self._check_purpose(reader, purpose, reason)
        record = self.record(record_id)
        self._servable(record)
        # Decrypted and checked in memory first, so that a tampered entry is reported
        # without an access event claiming it was read; it leaves the node only below.
        opened = self._open(record)
        event = self._access(
            reader, evidence, record["patient"], [record_id], purpose, reason, timeout_s
        )
        if event["outcome"] != "granted":
            raise self._refusal(event)
        return opened, event

    def export_here(
        self,
        reader: MemberRecord,
        evidence: RequestEvidence,
        patient: str,
        purpose: str,
        reason: str,
        timeout_s: float,
    ) -> tuple[list[ServedRecord], dict[str, Any] | None]:
        """The patient's records kept on this node that ``reader`` may read, decided and
        audited in one access event (None when no record is kept here).

        Raises ``AccessRefused`` when the event refused every record.
        """
        self._check_purpose(reader, purpose, reason)
        self._check_patient(patient)
        records = [r for _, r in self._scan(f"patient/{patient}/record/")]
        return self._export_here(reader, evidence, patient, records, purpose, reason, timeout_s)

    def _export_here(
        self,
        reader: MemberRecord,
        evidence: RequestEvidence,
        patient: str,
        records: list[dict[str, Any]],
        purpose: str,
        reason: str,
        timeout_s: float,
    ) -> tuple[list[ServedRecord], dict[str, Any] | None]:
        here = [r for r in records if r["status"] == "active" and self.vault.hosts(r["custodian"])]
        if purpose not in ("emergency", "self"):
            grantable = readable(self._scan, self._get, reader, patient, here, purpose, self._now())
            here = [r for r in here if r in grantable] or here  # a refusal is recorded too
        if not here:
            return [], None
        opened = {r["id"]: self._open(r) for r in here}  # integrity first, as in ``read``
        event = self._access(
            reader, evidence, patient, [r["id"] for r in here], purpose, reason, timeout_s
        )
        granted = {o["id"] for o in event["records"] if o["outcome"] == "granted"}
        if not granted:
            raise self._refusal(event)
        return [opened[r["id"]] for r in here if r["id"] in granted], event

    def export(
        self,
        reader: MemberRecord,
        evidence: RequestEvidence,
        patient: str,
        purpose: str,
        reason: str = "",
        timeout_s: float = 10.0,
    ) -> tuple[bytes, list[str], list[dict[str, Any]]]:
        """The patient's records ``reader`` may read, from every custodian, as one Bundle.

        Records kept here are decided, audited and opened here; for those of
        other custodians the reader's request is relayed to each custodian's
        node, which decides, audits and serves its own, and each record it
        serves is checked here as ``relay_read`` checks one. Returns the
        bundle, the ids of the access events, and the records no custodian
        node served because none could be reached. Raises ``AccessRefused``
        when every custodian refused and nothing was served.
        """
        self._check_purpose(reader, purpose, reason)
        self._check_patient(patient)
        parts: list[bytes] = []
        events: list[str] = []
        refusals: list[str] = []
        records = [r for _, r in self._scan(f"patient/{patient}/record/")]
        try:
            served, event = self._export_here(
                reader, evidence, patient, records, purpose, reason, timeout_s
            )
        except AccessRefused as exc:
            refusals.append(exc.message)
        else:
            parts += [s.data for s in served]
            events += [event["id"]] if event else []
        elsewhere = [
            r for r in records if r["status"] == "active" and not self.vault.hosts(r["custodian"])
        ]
        unreached: list[dict[str, Any]] = []
        for org in sorted({r["custodian"] for r in elsewhere}):
            held = [{"id": r["id"], "custodian": org} for r in elsewhere if r["custodian"] == org]
            if self.custodians is None:
                unreached += held
                continue
            try:
                answer = self.custodians.relay(
                    org, "GET", evidence.path, _headers(reader, evidence)
                )
            except Unreachable as exc:
                log.warning("export of %s: %s", patient, exc)
                unreached += held
                continue
            if answer.status == 403:
                refusals.append(_remote_error(answer, org).message)
                continue
            if answer.status != 200:
                log.warning("export of %s: %s answered HTTP %d", patient, org, answer.status)
                unreached += held
                continue
            try:
                doc = orjson.loads(answer.content)
                items, event = doc["records"], doc["event"]
                if event is not None:
                    parts += [
                        self._check_relayed(reader, evidence, org, item, event, timeout_s)
                        for item in items
                    ]
                    events.append(str(event["id"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                log.error("export of %s: the node of %s sent a malformed answer", patient, org)
                unreached += held
        if not parts and refusals:
            raise AccessRefused("; ".join(refusals))
        return make_bundle(parts, "collection", int(time.time() * 1000)), events, unreached

    def relay_read(
        self,
        reader: MemberRecord,
        evidence: RequestEvidence,
        record: dict[str, Any],
        timeout_s: float,
    ) -> dict[str, Any]:
        """Read a record kept by another node: relay the reader's request to it.

        The custodian's node decides and audits; this node passes the answer on
        only after ``_check_relayed``.
        """
        org = record["custodian"]
        if self.custodians is None:
            raise NotFound(
                f"record {record['id']} is held by {org}, whose vault is not on this node, "
                "and this node knows no other peers"
            )
        try:
            answer = self.custodians.relay(org, "GET", evidence.path, _headers(reader, evidence))
        except Unreachable as exc:
            raise _status_error("custodian_unreachable", str(exc), 503) from exc
        if answer.status != 200:
            raise _remote_error(answer, org)
        try:
            doc = orjson.loads(answer.content)
            access = doc["access"]
            event = {"id": access["txid"], "height": access["height"]}
            item = {
                "record": {"id": record["id"]},
                "resource": doc["resource"],
                "salt": doc["salt"],
            }
            self._check_relayed(reader, evidence, org, item, event, timeout_s)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise _status_error(
                "custodian_failed", f"the node of {org} sent a malformed answer", 502
            ) from None
        return dict(doc, record=record)

    def _check_relayed(
        self,
        reader: MemberRecord,
        evidence: RequestEvidence,
        org: str,
        item: Any,
        event: Any,
        timeout_s: float,
    ) -> bytes:
        """A record another node served for this reader's request, checked against this
        node's own copy of the chain before it goes any further: it is that
        organisation's record, its bytes match the fingerprint, and an access event
        that granted it to this reader, served by that organisation for this very
        request (its nonce), has committed here."""
        record_id = item["record"]["id"]
        data: bytes = item["resource"].encode("utf-8")
        salt = bytes.fromhex(item["salt"])
        record = self._get(f"record/{record_id}") if isinstance(record_id, str) else None
        if record is None or record["status"] != "active" or record["custodian"] != org:
            raise VaultTampered(f"the node of {org} served a record that is not its own", "")
        if fingerprint(self.node.suite, salt, data) != record["fingerprint"]:
            log.error("the node of %s served record %s not matching the chain", org, record_id)
            raise VaultTampered(
                f"the node of {org} served record {record_id} not matching its fingerprint "
                "on the chain; it is not passed on",
                record_id,
            )
        used = hashlib.sha256(f"{reader.fingerprint}\0{evidence.nonce}\0{org}".encode()).hexdigest()
        txid = str(event["id"])
        key = f"log/{record['patient']}/{int(event['height']):012d}/{txid}"
        deadline = time.monotonic() + timeout_s
        while (found := self._get(key)) is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if (
            found is None
            or self._get(f"request/{used}") != txid
            or found["reader"] != reader.fingerprint
            or found["served_by"] != org
            or not any(o["id"] == record_id and o["outcome"] == "granted" for o in found["records"])
        ):
            raise _status_error(
                "access_pending",
                f"no access event on this node's chain grants record {record_id} to this "
                f"request at {org}; nothing is passed on",
                503,
            )
        return data

    def _now(self) -> int:
        return max(self.node.state.time_ms, int(time.time() * 1000))

    def _check_patient(self, patient: str) -> None:
        if not isinstance(patient, str) or not PATIENT_ID.fullmatch(patient):
            raise InvalidInput(f"{patient!r} is not a patient id (<organisation>:<member id>)")

    # -- listing (chain metadata only: no health data leaves the node) ------------------

    def list_records(
        self, reader: MemberRecord, patient: str, purpose: str = "treatment"
    ) -> list[dict[str, Any]]:
        """The patient's records ``reader`` may read for ``purpose``, at every custodian."""
        self._check_patient(patient)
        if purpose not in READ_PURPOSES:
            raise InvalidInput(f"purpose must be one of {', '.join(READ_PURPOSES)}")
        records = [r for _, r in self._scan(f"patient/{patient}/record/")]
        if self._oversees(reader, patient):
            return records
        return [
            dict(r)
            for r in readable(self._scan, self._get, reader, patient, records, purpose, self._now())
        ]

    def _oversees(self, member: MemberRecord, patient: str) -> bool:
        """The patient themself, an auditor, or a regulator's member."""
        return (
            patient_id_of(member) == patient
            or member.role is Role.AUDITOR
            or member.org_type is OrgType.REGULATOR
        )

    def consents(self, member: MemberRecord, patient: str) -> list[dict[str, Any]]:
        self._check_patient(patient)
        rows = [c for _, c in self._scan(f"grant/{patient}/")]
        if not self._oversees(member, patient):
            rows = [c for c in rows if c["grantee"] in (member.fingerprint, member.org_id)]
        now = self._now()
        return [dict(c, status=consent_status(c, now)) for c in rows]

    def access_log(
        self, member: MemberRecord, patient: str, after: str = "", limit: int = 100
    ) -> list[dict[str, Any]]:
        """Every access to the patient's records: for the patient, auditors and regulators."""
        self._check_patient(patient)
        if not self._oversees(member, patient):
            raise Forbidden("only the patient, an auditor or a regulator may see this access log")
        prefix = f"{PREFIX}log/{patient}/"
        start = prefix + after if after else ""
        return [orjson.loads(v) for _, v in self.node.state.scan(prefix, limit, start)]

    def audit(
        self, member: MemberRecord, after: str = "", limit: int = 100, break_glass: bool = False
    ) -> list[dict[str, Any]]:
        """Access events across patients, oldest first: auditors and regulators only."""
        if member.role is not Role.AUDITOR and member.org_type is not OrgType.REGULATOR:
            raise Forbidden("only an auditor or a regulator may see access events across patients")
        prefix = f"{PREFIX}audit/"
        start = prefix + after if after else ""
        found: list[dict[str, Any]] = []
        while len(found) < limit:
            rows = self.node.state.scan(prefix, limit, start)
            if not rows:
                break
            for _, value in rows:
                event = orjson.loads(value)
                if not break_glass or event["break_glass"]:
                    found.append(event)
            start = rows[-1][0]
            if len(rows) < limit:
                break
        return found[:limit]

    def confirm_erased(self, record_id: str) -> None:
        """After an erasure committed: the key of a record kept here is destroyed, or the
        caller hears so (the node destroys it on restart at the latest)."""
        entry = self.vault.entry(record_id)
        if entry is not None and not entry.erased:
            raise NodeFailure(
                f"the erasure of {record_id} is on the chain but this node could not destroy "
                "its key yet; it will on restart (see the node's log)"
            )

    # -- commit hook and recovery ------------------------------------------------------

    def after_commit(self, block: Block, writes: list[tuple[str, bytes | None]]) -> None:
        """Destroy the keys of records whose erasure just committed (held here)."""
        for key, value in writes:
            if not key.startswith(PREFIX + "record/") or value is None:
                continue
            doc = orjson.loads(value)
            if doc.get("status") == "erased" and self.vault.hosts(doc["custodian"]):
                try:
                    self.vault.erase(doc["id"], now_ms=block.header.time_ms)
                except NotFound:
                    pass  # held by this organisation, but added through another node
                except CarechainError:
                    log.exception("could not erase record %s; will retry on restart", doc["id"])

    def reconcile(self) -> dict[str, int]:
        """Settle the vault against the chain after a restart.

        A pending entry is dropped only once this node's own chain has reached a
        block time at which its transaction can no longer commit, so a node that
        has not caught up yet drops nothing.
        """
        counts = {"committed": 0, "discarded": 0, "erased": 0}
        now = self.node.state.time_ms
        for entry in self.vault.entries():
            on_chain = self._get(f"record/{entry.record_id}")
            if on_chain is not None and on_chain["status"] == "erased" and not entry.erased:
                self.vault.erase(entry.record_id, now_ms=now)
                counts["erased"] += 1
            elif entry.status == "pending":
                if on_chain is not None and on_chain.get("fingerprint") == entry.fingerprint:
                    self.vault.commit(entry.record_id)
                    counts["committed"] += 1
                elif entry.created_ms < now - PENDING_TTL_MS:
                    self.vault.discard(entry.record_id)
                    counts["discarded"] += 1
        return counts
