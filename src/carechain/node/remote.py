"""Reaching a record's custodian: the node that keeps its organisation's vault.

In a consortium each hospital's peer keeps its own vault. A clinician asks
their own organisation's node for a record held elsewhere; that node relays
the clinician's signed request, unchanged, to the custodian's node, which
verifies the clinician's signature itself, decides and records the access on
the chain, and only then serves. The relaying node passes the answer on only
after checking it against its own copy of the chain: the resource matches the
record's fingerprint, and the access event the custodian names has committed.

Which node keeps which vault is learnt from the peers' ``/v1/status``
(``vaults``), asked with this peer's own signed requests and cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx
import orjson

from carechain.crypto.suite import CryptoSuite
from carechain.identity.requests import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_SIGNER,
    HEADER_TIME,
    sign_request,
)

log = logging.getLogger(__name__)

FORWARDED = "x-carechain-forwarded-by"
"""Set on a relayed request (the relaying peer's fingerprint); such a request is never
relayed again, so two nodes that each think the other holds a vault cannot loop."""

REFRESH_S = 30.0
"""How often, at most, the peers are asked again which vaults they keep."""

MAX_ANSWER_BYTES = 96 * 1024 * 1024


@dataclass(frozen=True)
class Relayed:
    """A custodian node's answer, as it came."""

    status: int
    content: bytes
    headers: Mapping[str, str]


class Unreachable(Exception):
    """No node keeping the vault answered."""


class Custodians:
    def __init__(
        self,
        urls: Sequence[str],
        suite: CryptoSuite,
        peer_fp: str,
        peer_key: bytes,
        *,
        timeout_s: float = 15.0,
    ) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.suite = suite
        self.peer_fp = peer_fp
        self._key = peer_key
        self.timeout_s = timeout_s
        self._where: dict[str, str] = {}
        self._asked = 0.0
        self._lock = threading.Lock()

    def url_for(self, org: str) -> str | None:
        """The REST API of a node keeping ``org``'s vault, if any peer says it does."""
        with self._lock:
            found = self._where.get(org)
            if found is None and time.monotonic() - self._asked > REFRESH_S:
                self._refresh()
                found = self._where.get(org)
            return found

    def _refresh(self) -> None:
        self._asked = time.monotonic()
        where: dict[str, str] = {}
        for url in self.urls:
            headers = sign_request(self.suite, self._key, self.peer_fp, "GET", "/v1/status", b"")
            try:
                response = httpx.get(url + "/v1/status", headers=headers, timeout=5.0)
                vaults = orjson.loads(response.content).get("vaults", [])
            except (httpx.HTTPError, orjson.JSONDecodeError, AttributeError) as exc:
                log.info("peer %s did not say which vaults it keeps: %s", url, exc)
                continue
            for org in vaults if isinstance(vaults, list) else ():
                if isinstance(org, str):
                    where.setdefault(org, url)
        self._where = where

    def forget(self, org: str) -> None:
        """The node named for ``org`` did not answer: ask the peers again next time."""
        with self._lock:
            self._where.pop(org, None)
            self._asked = 0.0

    def relay(self, org: str, method: str, path: str, headers: Mapping[str, str]) -> Relayed:
        """Send a reader's signed request (no body) to ``org``'s custodian node."""
        url = self.url_for(org)
        if url is None:
            raise Unreachable(f"no peer of this consortium says it keeps the vault of {org}")
        sent = {
            name: headers[name]
            for name in (HEADER_SIGNER, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE)
            if name in headers
        }
        sent[FORWARDED] = self.peer_fp
        try:
            response = httpx.request(method, url + path, headers=sent, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            self.forget(org)
            raise Unreachable(f"the node keeping the vault of {org} did not answer: {exc}") from exc
        if len(response.content) > MAX_ANSWER_BYTES:
            raise Unreachable(f"the node keeping the vault of {org} sent an oversize answer")
        return Relayed(response.status_code, response.content, dict(response.headers))
