"""A client of the node's REST API that signs every request as a member.

Used by the CLI, the tests and the benchmarks; a hospital's own integration
would do the same in its language (see ``auth`` for the signature).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from carechain.api.auth import sign_request
from carechain.crypto.suite import DEFAULT, CryptoSuite
from carechain.errors import CarechainError, VaultTampered
from carechain.identity.wallet import Credentials
from carechain.ledger.transaction import (
    Fingerprint,
    SignedTransaction,
    Transaction,
    new_nonce,
    sign_transaction,
)
from carechain.standards.fhir import RECORD_TYPES, parse_bundle, parse_resource
from carechain.vault import fingerprint, new_record_id, new_salt


class ApiError(CarechainError):
    """An error answer from a node: its code, message and HTTP status."""

    def __init__(self, code: str, message: str, http_status: int) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


def build_transaction(
    creds: Credentials,
    chain: str,
    contract: str,
    method: str,
    args: dict[str, Any],
    *,
    cosigners: Sequence[str] = (),
    nonce: str | None = None,
    suite: CryptoSuite = DEFAULT,
) -> SignedTransaction:
    """A transaction signed by ``creds`` (co-signers add theirs with ``add_signature``)."""
    body = Transaction(
        chain=chain,
        contract=contract,
        method=method,
        args=args,
        signer=Fingerprint(creds.fingerprint),
        nonce=nonce or new_nonce(),
        timestamp_ms=int(time.time() * 1000),
        cosigners=tuple(Fingerprint(c) for c in cosigners),
    )
    return sign_transaction(body, {Fingerprint(creds.fingerprint): creds.private_key}, suite)


class NodeClient:
    def __init__(
        self,
        url: str,
        creds: Credentials,
        *,
        suite: CryptoSuite = DEFAULT,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.creds = creds
        self.suite = suite
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._chain: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        raw_body: bytes | None = None,
    ) -> Any:
        response = self.request_raw(method, path, body=body, params=params, raw_body=raw_body)
        try:
            return orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            return {}

    def request_raw(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        raw_body: bytes | None = None,
    ) -> httpx.Response:
        """Sign and send a request; the response (raises ``ApiError`` for a 4xx or 5xx)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            path = (
                path
                + "?"
                + urlencode(
                    {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in query.items()}
                )
            )
        data = raw_body if raw_body is not None else (b"" if body is None else orjson.dumps(body))
        headers = sign_request(
            self.suite, self.creds.private_key, self.creds.fingerprint, method, path, data
        )
        if data:
            headers["content-type"] = "application/json"
        try:
            response = self._http.request(method, path, content=data, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError("unreachable", f"cannot reach {self.url}: {exc}", 503) from exc
        doc: Any = {}
        if response.status_code >= 400:
            try:
                doc = orjson.loads(response.content) if response.content else {}
            except orjson.JSONDecodeError:
                doc = {}
            error = doc.get("error", {}) if isinstance(doc, dict) else {}
            raise ApiError(
                error.get("code", "http_error"),
                error.get("message", f"HTTP {response.status_code}"),
                response.status_code,
            )
        return response

    # -- conveniences -------------------------------------------------------------------

    def submit(self, tx: SignedTransaction, *, wait: bool = False, timeout: float = 10) -> Any:
        params = {"wait": wait, "timeout": timeout} if wait else None
        return self.request("POST", "/v1/transactions", raw_body=tx.wire_bytes(), params=params)

    def submit_batch(
        self, txs: Sequence[SignedTransaction], *, wait: bool = False, timeout: float = 30
    ) -> Any:
        body = b'{"transactions":[' + b",".join(tx.wire_bytes() for tx in txs) + b"]}"
        params = {"wait": wait, "timeout": timeout} if wait else None
        return self.request("POST", "/v1/transactions/batch", raw_body=body, params=params)

    def transaction(self, txid: str) -> Any:
        return self.request("GET", f"/v1/transactions/{txid}")

    def state(self, contract: str, key: str) -> Any:
        return self.request("GET", f"/v1/state/{contract}/{key}")

    def state_list(self, contract: str, prefix: str = "", limit: int = 100) -> Any:
        return self.request(
            "GET", f"/v1/state/{contract}", params={"prefix": prefix, "limit": limit}
        )

    def block(self, height: int) -> Any:
        return self.request("GET", f"/v1/blocks/{height}")

    def tree_head(self, height: int | None = None) -> Any:
        return self.request("GET", f"/v1/tree-heads/{'latest' if height is None else height}")

    def inclusion_proof(self, txid: str, height: int | None = None) -> Any:
        return self.request("GET", f"/v1/proofs/inclusion/{txid}", params={"height": height})

    def consistency_proof(self, first: int, second: int | None = None) -> Any:
        return self.request(
            "GET", "/v1/proofs/consistency", params={"first": first, "second": second}
        )

    def status(self) -> Any:
        return self.request("GET", "/v1/status")

    # -- health records (see api/records.py) ------------------------------------------

    def chain(self) -> str:
        if self._chain is None:
            self._chain = str(self.status()["chain"])
        return self._chain

    def add_records(self, patient: str, resources: Sequence[bytes], *, timeout: float = 10) -> Any:
        """Add FHIR resources (exact bytes) as records of ``patient``; wait for the commit."""
        items, tx = prepare_records(self.creds, self.chain(), patient, resources, self.suite)
        body = {"records": items, "transaction": tx.to_json()}
        return self.request("POST", "/v1/records", body=body, params={"timeout": timeout})

    def read_record(
        self, record_id: str, *, purpose: str = "treatment", reason: str | None = None
    ) -> Any:
        """Read a record; checks the served bytes against the fingerprint the chain holds."""
        doc = self.request(
            "GET", f"/v1/records/{record_id}", params={"purpose": purpose, "reason": reason}
        )
        check_served_record(doc, self.suite)
        return doc

    def patient_records(self, patient: str, *, purpose: str = "treatment") -> Any:
        return self.request("GET", f"/v1/patients/{patient}/records", params={"purpose": purpose})

    def export_records(
        self, patient: str, *, purpose: str = "self", reason: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        response = self.request_raw(
            "GET", f"/v1/patients/{patient}/export", params={"purpose": purpose, "reason": reason}
        )
        return response.content, dict(response.headers)

    def consents(self, patient: str, *, fhir: bool = False) -> Any:
        params = {"format": "fhir"} if fhir else None
        return self.request("GET", f"/v1/patients/{patient}/consents", params=params)

    def access_log(
        self, patient: str, *, after: str = "", limit: int = 100, fhir: bool = False
    ) -> Any:
        params = {"after": after or None, "limit": limit, "format": "fhir" if fhir else None}
        return self.request("GET", f"/v1/patients/{patient}/access-log", params=params)

    def audit(
        self, *, after: str = "", limit: int = 100, break_glass: bool = False, fhir: bool = False
    ) -> Any:
        params = {
            "after": after or None,
            "limit": limit,
            "break_glass": break_glass or None,
            "format": "fhir" if fhir else None,
        }
        return self.request("GET", "/v1/audit/access", params=params)

    def grant_consent(self, args: dict[str, Any], *, timeout: float = 10) -> Any:
        tx = build_transaction(self.creds, self.chain(), "records", "grant_consent", args)
        return self.request(
            "POST", "/v1/consents", raw_body=tx.wire_bytes(), params={"timeout": timeout}
        )

    def revoke_consent(self, consent_id: str, *, timeout: float = 10) -> Any:
        tx = build_transaction(
            self.creds, self.chain(), "records", "revoke_consent", {"consent": consent_id}
        )
        return self.request(
            "POST",
            f"/v1/consents/{consent_id}/revoke",
            raw_body=tx.wire_bytes(),
            params={"timeout": timeout},
        )

    def erase_record(self, record_id: str, *, timeout: float = 10) -> Any:
        tx = build_transaction(self.creds, self.chain(), "records", "erase", {"record": record_id})
        return self.request(
            "POST",
            f"/v1/records/{record_id}/erase",
            raw_body=tx.wire_bytes(),
            params={"timeout": timeout},
        )


def new_consent_id() -> str:
    return "con-" + secrets.token_hex(12)


def prepare_records(
    creds: Credentials,
    chain: str,
    patient: str,
    resources: Sequence[bytes],
    suite: CryptoSuite = DEFAULT,
) -> tuple[list[dict[str, str]], SignedTransaction]:
    """What a clinician's system sends to add records: each resource's exact text with
    a fresh salt, and the signed ``records.add`` naming their salted fingerprints."""
    items, described = [], []
    for raw in resources:
        parsed = parse_resource(raw)
        salt = new_salt()
        items.append({"resource": parsed.raw.decode("utf-8"), "salt": salt.hex()})
        described.append(
            {
                "record": new_record_id(),
                "patient": patient,
                "type": parsed.resource_type,
                "category": parsed.category,
                "fingerprint": fingerprint(suite, salt, parsed.raw),
            }
        )
    tx = build_transaction(creds, chain, "records", "add", {"records": described}, suite=suite)
    return items, tx


def bundle_records(raw: bytes, *, skip_other_types: bool = False) -> tuple[list[bytes], list[str]]:
    """The records in a FHIR Bundle (each entry's bytes) and the entries left out.

    Every entry is validated. An entry that is not a record type (a Patient,
    a ServiceRequest) is refused, naming its path, unless ``skip_other_types``:
    then it is left out and listed as ``Bundle.entry[i]: <type>``.
    """
    allowed: tuple[str, ...] = RECORD_TYPES
    if skip_other_types:
        try:
            doc = orjson.loads(raw)
            entries = doc.get("entry") if isinstance(doc, dict) else None
            present = {
                e["resource"].get("resourceType")
                for e in entries or ()
                if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            }
        except orjson.JSONDecodeError:
            present = set()  # parse_bundle names the problem
        allowed += tuple(sorted(t for t in present if isinstance(t, str) and t not in allowed))
    kept, skipped = [], []
    for index, parsed in enumerate(parse_bundle(raw, allowed=allowed)):
        if parsed.resource_type in RECORD_TYPES:
            kept.append(parsed.raw)
        else:
            skipped.append(f"Bundle.entry[{index}]: {parsed.resource_type}")
    return kept, skipped


def check_served_record(doc: Any, suite: CryptoSuite = DEFAULT) -> None:
    """Raise ``VaultTampered`` unless the served resource matches its chain fingerprint."""
    data = doc["resource"].encode("utf-8")
    if fingerprint(suite, bytes.fromhex(doc["salt"]), data) != doc["record"]["fingerprint"]:
        raise VaultTampered(
            f"record {doc['record']['id']} as served does not match its fingerprint on the chain",
            doc["record"]["id"],
        )
