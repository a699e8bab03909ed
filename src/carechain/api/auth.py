"""Request authentication: every API request is signed by a consortium member.

A client sends four headers::

    X-Carechain-Signer     the member's certificate fingerprint
    X-Carechain-Time       milliseconds since 1970 when the request was made
    X-Carechain-Nonce      a fresh random string (8-64 of [A-Za-z0-9_-])
    X-Carechain-Signature  base64 Ed25519 signature over the request statement

The request statement is the canonical JSON (RFC 8785) of::

    {"type": "carechain/request", "method": "POST", "path": "/v1/...?...",
     "body": "<hex SHA-256 of the body bytes>", "time": ..., "nonce": "...",
     "signer": "<fingerprint>"}

The node refuses (401) a missing or bad signature, an unknown, revoked or
expired signer, a time more than ``MAX_SKEW_MS`` from its clock (stale), and
a (signer, nonce) it has seen within that window (replayed).
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections.abc import Callable

from carechain.contracts.membership import MemberRecord
from carechain.crypto.suite import CryptoSuite
from carechain.errors import Unauthenticated
from carechain.identity.requests import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_SIGNER,
    HEADER_TIME,
    request_statement,
    sign_request,
)

__all__ = ["MAX_SKEW_MS", "RequestVerifier", "request_statement", "sign_request"]

MAX_SKEW_MS = 5 * 60 * 1000
_NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")


class RequestVerifier:
    def __init__(self, suite: CryptoSuite, members: Callable[[str], MemberRecord | None]) -> None:
        self.suite = suite
        self.members = members
        self._seen: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0

    def verify(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        now_ms: int | None = None,
    ) -> MemberRecord:
        signer = headers.get(HEADER_SIGNER)
        raw_time = headers.get(HEADER_TIME)
        nonce = headers.get(HEADER_NONCE)
        raw_sig = headers.get(HEADER_SIGNATURE)
        if not (signer and raw_time and nonce and raw_sig):
            raise Unauthenticated(
                "request is not signed: send X-Carechain-Signer, -Time, -Nonce and -Signature"
            )
        if not (raw_time.isascii() and raw_time.isdigit() and len(raw_time) <= 16):
            raise Unauthenticated("X-Carechain-Time must be milliseconds since 1970")
        if not _NONCE.fullmatch(nonce):
            raise Unauthenticated("X-Carechain-Nonce must be 8-64 characters of [A-Za-z0-9_-]")
        time_ms = int(raw_time)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if abs(now - time_ms) > MAX_SKEW_MS:
            error = Unauthenticated(
                f"request time is {abs(now - time_ms) // 1000} s away from the node's clock "
                f"(at most {MAX_SKEW_MS // 1000} s allowed): stale request"
            )
            error.code = "stale_request"
            raise error
        try:
            signature = base64.b64decode(raw_sig, validate=True)
        except binascii.Error:
            raise Unauthenticated("X-Carechain-Signature is not valid base64") from None
        member = self.members(signer)
        if member is None:
            raise Unauthenticated(f"signer {signer[:12]}... is not a member of this chain")
        refusal = member.refusal_at(now)
        if refusal is not None:
            raise Unauthenticated(refusal[1])
        statement = request_statement(method, path, body, time_ms, nonce, signer)
        if not self.suite.verify(member.public_key, statement, signature):
            raise Unauthenticated("request signature does not verify")
        with self._lock:
            if now >= self._next_sweep:
                self._seen = {k: t for k, t in self._seen.items() if t > now - MAX_SKEW_MS}
                self._next_sweep = now + 10_000
            if (signer, nonce) in self._seen:
                error = Unauthenticated("this request was already received: replayed request")
                error.code = "replayed_request"
                raise error
            self._seen[(signer, nonce)] = time_ms
        return member
