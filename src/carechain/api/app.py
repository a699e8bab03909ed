"""The node's REST API (FastAPI); the OpenAPI document is served at /openapi.json.

Every route under /v1 needs a signed request (see ``auth``). Errors come back
as ``{"error": {"code": ..., "message": ...}}`` with a 4xx status for bad
input and never carry a stack trace.
"""

import asyncio
import hashlib
import logging
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from carechain.api.auth import RequestVerifier
from carechain.api.claims import add_claim_routes
from carechain.api.drugs import add_drug_routes
from carechain.api.payments import add_payment_routes
from carechain.api.records import add_record_routes
from carechain.api.web.logins import WebLogins
from carechain.api.web.pages import add_web_routes
from carechain.api.web.sessions import Sessions
from carechain.api.web.site import plain_error_page
from carechain.contracts.membership import MemberRecord
from carechain.crypto.canonical import parse_json
from carechain.errors import CarechainError, InvalidInput, NotFound, Oversize
from carechain.identity.requests import HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME
from carechain.ledger.block import Block
from carechain.ledger.transaction import MAX_ENVELOPE_BYTES, decode_envelope
from carechain.node.node import Node
from carechain.node.proofs import consistency_proof, inclusion_proof, signed_tree_head
from carechain.node.records import RequestEvidence

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_BATCH = 5000
MAX_WAIT_S = 60.0


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: CarechainError) -> ORJSONResponse:
    return ORJSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)


def create_app(node: Node) -> FastAPI:
    app = FastAPI(
        title="carechain node",
        version="1",
        description="Submit signed transactions, query state, blocks and Merkle proofs.",
        default_response_class=ORJSONResponse,
    )
    verifier = RequestVerifier(node.suite, node.member)

    @app.exception_handler(CarechainError)
    async def carechain_error(_: Request, exc: CarechainError) -> ORJSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> ORJSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(InvalidInput(f"{where}: {first.get('msg', 'invalid')}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/web/"):
            return plain_error_page(request, exc.status_code, f"{exc.detail}: {request.url.path}")
        error = CarechainError(str(exc.detail))
        error.code = "not_found" if exc.status_code == 404 else "http_error"
        error.http_status = exc.status_code
        return error_response(error)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error")
        if request.url.path.startswith("/web/"):
            return plain_error_page(request, 500, "the node failed; see its log")
        return ORJSONResponse(
            {"error": {"code": "internal", "message": "the node failed; see its log"}},
            status_code=500,
        )

    async def member(request: Request) -> MemberRecord:
        length = request.headers.get("content-length")
        if (
            length is not None
            and length.isascii()
            and length.isdigit()
            and int(length) > MAX_BODY_BYTES
        ):
            raise Oversize(f"request body is {length} bytes; the limit is {MAX_BODY_BYTES}")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise Oversize(f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
        path = request.url.path
        if request.url.query:
            path += "?" + request.url.query
        headers = {k.lower(): v for k, v in request.headers.items()}
        found = verifier.verify(request.method, path, body, headers)
        # Kept for routes that record the request on the chain (records.access).
        request.state.evidence = RequestEvidence(
            request.method,
            path,
            hashlib.sha256(body).hexdigest(),
            int(headers[HEADER_TIME]),
            headers[HEADER_NONCE],
            headers[HEADER_SIGNATURE],
        )
        return found

    Member = Annotated[MemberRecord, Depends(member)]
    add_record_routes(app, node, node.records, member)
    add_drug_routes(app, node, member)
    add_payment_routes(app, node, member)
    add_claim_routes(app, node, member)
    add_web_routes(app, node, WebLogins(node.config.data_dir), Sessions())

    # -- transactions ------------------------------------------------------------------

    @app.post("/v1/transactions", tags=["transactions"])
    async def submit_transaction(
        request: Request,
        _: Member,
        wait: Annotated[bool, Query(description="wait until the transaction commits")] = False,
        timeout: Annotated[float, Query(gt=0, le=MAX_WAIT_S)] = 10.0,
    ) -> Any:
        """Submit one signed transaction; answers with its id at once, or on commit."""
        body = await request.body()
        if len(body) > MAX_ENVELOPE_BYTES:
            raise Oversize(f"transaction is {len(body)} bytes; the limit is {MAX_ENVELOPE_BYTES}")
        tx = decode_envelope(parse_json(body), node.suite)
        status = await run_in_threadpool(node.submit_one, tx, timeout if wait else 0.0)
        return ORJSONResponse(
            status.to_json(), status_code=200 if status.status == "committed" else 202
        )

    @app.post("/v1/transactions/batch", tags=["transactions"])
    async def submit_batch(
        request: Request,
        _: Member,
        wait: bool = False,
        timeout: Annotated[float, Query(gt=0, le=MAX_WAIT_S)] = 10.0,
    ) -> Any:
        """Submit up to 5,000 signed transactions: ``{"transactions": [...]}``.

        Each gets its own outcome (its id, or the error that kept it out).
        """
        body = await request.body()

        def process() -> ORJSONResponse:
            decoded = node.verifier.decode(body, MAX_BATCH)
            results: list[dict[str, Any]] = [{} for _ in decoded]
            txs, slots = [], []
            for i, item in enumerate(decoded):
                if isinstance(item, CarechainError):
                    results[i] = {"error": item.to_dict()}
                else:
                    txs.append(item)
                    slots.append(i)
            events, accepted = [], []
            for slot, tx, outcome in zip(slots, txs, node.submit(txs), strict=True):
                if isinstance(outcome, CarechainError):
                    results[slot] = {"txid": tx.txid, "error": outcome.to_dict()}
                else:
                    results[slot] = {"txid": tx.txid, "status": "pending"}
                    events.append(outcome)
                    accepted.append(slot)
            if wait:
                for slot, status in zip(accepted, node.settle(events, timeout), strict=True):
                    results[slot] = status.to_json()
            # A response, not a dict: FastAPI would run its jsonable_encoder over
            # every field of every result first (2.7 ms for 250 results).
            return ORJSONResponse({"results": results})

        return await run_in_threadpool(process)

    @app.get("/v1/transactions/{txid}", tags=["transactions"])
    async def get_transaction(txid: str, _: Member) -> Any:
        """A transaction's status and, once committed, its envelope."""
        status = node.tx_status(txid)
        if status.status == "unknown":
            raise NotFound(f"no transaction {txid} is pending or committed here")
        doc = status.to_json()
        if status.status == "committed":
            tx, _status = await run_in_threadpool(node.transaction, txid)
            doc["transaction"] = tx.to_json()
        return doc

    # -- state -------------------------------------------------------------------------

    @app.get("/v1/state/{contract}", tags=["state"])
    async def list_state(
        contract: str,
        _: Member,
        prefix: str = "",
        after: str = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Any:
        """Keys of a contract's state starting with ``prefix``, in key order."""
        base = f"{contract}/"
        rows = node.state_range(base + prefix, limit, base + after if after else "")
        return {"items": [{"key": k[len(base) :], "value": v} for k, v in rows]}

    @app.get("/v1/state/{contract}/{key:path}", tags=["state"])
    async def get_state(contract: str, key: str, _: Member) -> Any:
        value, height = node.state_value(f"{contract}/{key}")
        return {"key": key, "value": value, "height": height}

    # -- blocks, tree heads, proofs ----------------------------------------------------

    @app.get("/v1/blocks/{height}", tags=["blocks"])
    async def get_block(height: int, _: Member) -> Any:
        block: Block = await run_in_threadpool(node.block, height)
        return {"hash": block.header.block_hash(node.suite), **block.to_json()}

    @app.get("/v1/blocks/{height}/raw", tags=["blocks"])
    async def get_block_bytes(height: int, _: Member) -> Response:
        """A block's stored bytes (canonical JSON), as peers fetch them to catch up."""
        if not 0 <= height <= node.state.height:
            raise NotFound(f"no block at height {height}; the chain is at {node.state.height}")
        data: bytes = await run_in_threadpool(node.blocks.get, height)
        return Response(data, media_type="application/json")

    @app.get("/v1/forks", tags=["node"])
    async def forks(_: Member) -> Any:
        """Evidence of forks this peer has seen: both signed statements for each."""
        found = [] if node.crosscheck is None else list(node.crosscheck.forks)
        return {"forks": found}

    @app.get("/v1/tree-heads/latest", tags=["proofs"])
    async def latest_tree_head(_: Member) -> Any:
        return signed_tree_head(node.state, node.state.height)

    @app.get("/v1/tree-heads/{height}", tags=["proofs"])
    async def tree_head(height: int, _: Member) -> Any:
        return signed_tree_head(node.state, height)

    @app.get("/v1/proofs/inclusion/{txid}", tags=["proofs"])
    async def prove_inclusion(
        txid: str, _: Member, height: Annotated[int | None, Query(ge=0)] = None
    ) -> Any:
        """Inclusion proof of a committed transaction in the tree after block ``height``."""
        return await run_in_threadpool(
            inclusion_proof, node.state, node.committer.tree, txid, height
        )

    @app.get("/v1/proofs/consistency", tags=["proofs"])
    async def prove_consistency(
        _: Member,
        first: Annotated[int, Query(ge=0, description="earlier block height")],
        second: Annotated[int | None, Query(ge=0, description="later block height")] = None,
    ) -> Any:
        """Consistency proof between the tree heads after blocks ``first`` and ``second``."""
        return await run_in_threadpool(
            consistency_proof, node.state, node.committer.tree, first, second
        )

    # -- node ----------------------------------------------------------------------------

    @app.get("/v1/status", tags=["node"])
    async def status(_: Member) -> Any:
        return node.status()

    @app.get("/health", tags=["node"])
    async def health() -> Any:
        """Unauthenticated liveness: is the node committing?"""
        doc = {"healthy": node.failure is None, "height": node.state.height}
        return ORJSONResponse(doc, status_code=200 if doc["healthy"] else 503)

    @app.get("/v1/events", tags=["node"])
    async def events(_: Member) -> StreamingResponse:
        """Committed blocks as Server-Sent Events (``event: block``)."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Block] = asyncio.Queue(maxsize=1000)

        def on_block(block: Block) -> None:
            loop.call_soon_threadsafe(_offer, inbox, block)

        unsubscribe = node.subscribe(on_block)

        async def stream() -> Any:
            try:
                yield b": connected\n\n"
                while True:
                    try:
                        block = await asyncio.wait_for(inbox.get(), timeout=15)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    doc = {
                        "height": block.height,
                        "hash": block.header.block_hash(node.suite),
                        "time": block.header.time_ms,
                        "txs": [
                            {"txid": tx.txid, "code": r.code}
                            for tx, r in zip(block.txs, block.results, strict=True)
                        ],
                    }
                    yield b"event: block\ndata: " + orjson.dumps(doc) + b"\n\n"
            finally:
                unsubscribe()

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


def _offer(inbox: asyncio.Queue[Block], block: Block) -> None:
    if not inbox.full():
        inbox.put_nowait(block)
