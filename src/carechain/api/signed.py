"""Routes that take one signed transaction of a named contract method and wait for it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from carechain.contracts.membership import MemberRecord
from carechain.crypto.canonical import parse_json
from carechain.errors import CarechainError, InvalidInput, Oversize
from carechain.ledger.transaction import MAX_ENVELOPE_BYTES, SignedTransaction, decode_envelope
from carechain.node.node import Node


async def signed_call(
    node: Node, request: Request, contract: str, method: str
) -> SignedTransaction:
    """The request body: a signed ``contract.method`` transaction, or a clear refusal."""
    body = await request.body()
    if len(body) > MAX_ENVELOPE_BYTES:
        raise Oversize(f"transaction is {len(body)} bytes; the limit is {MAX_ENVELOPE_BYTES}")
    tx = decode_envelope(parse_json(body), node.suite)
    if (tx.body.contract, tx.body.method) != (contract, method):
        raise InvalidInput(
            f"this route takes a signed {contract}.{method} transaction, "
            f"not {tx.body.contract}.{tx.body.method}"
        )
    return tx


async def commit(
    node: Node, tx: SignedTransaction, who: MemberRecord, timeout: float
) -> dict[str, Any]:
    """Submit ``tx`` (signed by ``who``, the member sending the request) and wait for it;
    a contract's refusal becomes the error it names (403 forbidden, else 422)."""
    if tx.body.signer != who.fingerprint:
        raise InvalidInput("the transaction must be signed by the member sending the request")
    status = await run_in_threadpool(node.submit_one, tx, timeout)
    if status.status == "committed" and status.code != "ok":
        error = CarechainError(status.message or "rejected")
        error.code = status.code or "rejected"
        error.http_status = 403 if status.code == "forbidden" else 422
        raise error
    return status.to_json()
