"""Reaching a record's custodian: the node that keeps its organisation's vault.

In a consortium each hospital's peer keeps its own vault. A clinician asks
their own organisation's node for a record held elsewhere; that node relays
the clinician's signed request, unchanged, to the custodian's node, which
verifies the clinician's signature itself, decides and records the access on
the chain, and only then serves. The relaying node passes the answer on only
after checking it against its own copy of the chain: the resource matches the
record's fingerprint, and the access event the custodian names has committed.

Which node keeps which vault is learnt from the peers' ``/v1/vaults``: each
answers a fresh challenge with the organisations whose vaults it keeps, signed
with its peer key. A claim is believed only for the answering peer's own
organisation, by its certificate on the chain, so that no peer can draw
readers' requests meant for another organisation's records. (Hosting other
organisations' vaults is for the embedded node, which relays nothing.)
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx
import orjson

from carechain.contracts.membership import MemberRecord
from carechain.crypto.canonical import canonical_bytes
from carechain.crypto.suite import CryptoSuite
from carechain.identity.requests import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_SIGNER,
    HEADER_TIME,
    sign_request,
)
from carechain.identity.roles import Role

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


def vault_statement(challenge: str, peer: str, vaults: Sequence[str]) -> bytes:
    """What a peer signs to say which vaults it keeps, in answer to a challenge."""
    return canonical_bytes(
        {"type": "carechain/vaults", "challenge": challenge, "peer": peer, "vaults": list(vaults)}
    )


class Custodians:
    def __init__(
        self,
        urls: Sequence[str],
        suite: CryptoSuite,
        peer_fp: str,
        peer_key: bytes,
        member_of: Callable[[str], MemberRecord | None],
        *,
        timeout_s: float = 15.0,
    ) -> None:
        self._member_of = member_of
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
            challenge = secrets.token_hex(16)
            path = f"/v1/vaults?challenge={challenge}"
            headers = sign_request(self.suite, self._key, self.peer_fp, "GET", path, b"")
            try:
                response = httpx.get(url + path, headers=headers, timeout=5.0)
                doc = orjson.loads(response.content)
                peer, vaults = str(doc["peer"]), list(doc["vaults"])
                signature = base64.b64decode(doc["signature"], validate=True)
            except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.info("peer %s did not say which vaults it keeps: %s", url, exc)
                continue
            member = self._member_of(peer)
            if (
                member is None
                or member.role is not Role.PEER
                or member.refusal_at(int(time.time() * 1000)) is not None
                or not self.suite.verify(
                    member.public_key, vault_statement(challenge, peer, vaults), signature
                )
            ):
                log.error("peer %s answered the vault challenge without a valid signature", url)
                continue
            if member.org_id in vaults:
                where.setdefault(member.org_id, url)
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
