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
from carechain.errors import CarechainError
from carechain.identity.wallet import Credentials
from carechain.ledger.transaction import (
    Fingerprint,
    SignedTransaction,
    Transaction,
    sign_transaction,
)


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
        nonce=nonce or secrets.token_hex(12),
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
        try:
            doc = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            doc = {}
        if response.status_code >= 400:
            error = doc.get("error", {}) if isinstance(doc, dict) else {}
            raise ApiError(
                error.get("code", "http_error"),
                error.get("message", f"HTTP {response.status_code}"),
                response.status_code,
            )
        return doc

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
