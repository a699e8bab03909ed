"""Signing API requests as a consortium member (the statement and its headers).

The node's REST API (``api/auth.py``) verifies these; API clients and peers
fetching blocks from each other sign with them. The request statement is the
canonical JSON (RFC 8785) of::

    {"type": "carechain/request", "method": "POST", "path": "/v1/...?...",
     "body": "<hex SHA-256 of the body bytes>", "time": ..., "nonce": "...",
     "signer": "<fingerprint>"}
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

from carechain.crypto.canonical import canonical_bytes
from carechain.crypto.suite import CryptoSuite

HEADER_SIGNER = "x-carechain-signer"
HEADER_TIME = "x-carechain-time"
HEADER_NONCE = "x-carechain-nonce"
HEADER_SIGNATURE = "x-carechain-signature"


def request_statement(
    method: str, path: str, body: bytes, time_ms: int, nonce: str, signer: str
) -> bytes:
    return statement_for_body_hash(
        method, path, hashlib.sha256(body).hexdigest(), time_ms, nonce, signer
    )


def statement_for_body_hash(
    method: str, path: str, body_sha256: str, time_ms: int, nonce: str, signer: str
) -> bytes:
    """The statement of a request known by its body's hash (as a contract sees it)."""
    return canonical_bytes(
        {
            "type": "carechain/request",
            "method": method.upper(),
            "path": path,
            "body": body_sha256,
            "time": time_ms,
            "nonce": nonce,
            "signer": signer,
        }
    )


def sign_request(
    suite: CryptoSuite, private_key: bytes, fingerprint: str, method: str, path: str, body: bytes
) -> dict[str, str]:
    """The headers that authenticate one request."""
    time_ms = int(time.time() * 1000)
    nonce = secrets.token_urlsafe(16)
    statement = request_statement(method, path, body, time_ms, nonce, fingerprint)
    signature = suite.sign(private_key, statement)
    return {
        HEADER_SIGNER: fingerprint,
        HEADER_TIME: str(time_ms),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
    }
