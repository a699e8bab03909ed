"""The REST API over real HTTP on 127.0.0.1: authentication, bad input, proofs."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from carechain.api.auth import sign_request
from carechain.api.client import ApiError, NodeClient, build_transaction
from carechain.crypto.suite import DEFAULT
from carechain.identity.wallet import Credentials
from carechain.node.node import Node
from carechain.node.proofs import verify_consistency_document, verify_inclusion_document
from support import Server

Member = Callable[[str], Credentials]


def client(api: Server, creds: Credentials) -> NodeClient:
    return NodeClient(api.url, creds)


def digest(n: int) -> str:
    return f"{n:064x}"


def test_openapi_document_is_served(api: Server) -> None:
    doc = httpx.get(api.url + "/openapi.json").json()
    assert "/v1/transactions" in doc["paths"]
    assert "/v1/proofs/inclusion/{txid}" in doc["paths"]


def test_submit_and_wait_for_commit(api: Server, member: Member) -> None:
    with client(api, member("pumch/dr-wang")) as c:
        tx = build_transaction(c.creds, "demo", "notary", "anchor", {"digest": digest(1)})
        result = c.submit(tx, wait=True)
        assert result["status"] == "committed" and result["code"] == "ok"
        assert c.transaction(tx.txid)["transaction"]["body"]["args"] == {"digest": digest(1)}
        assert c.state("notary", f"anchor/{digest(1)}")["value"]["org"] == "pumch"


def test_submit_without_wait_answers_at_once_with_the_id(api: Server, member: Member) -> None:
    with client(api, member("pumch/dr-wang")) as c:
        tx = build_transaction(c.creds, "demo", "notary", "anchor", {"digest": digest(2)})
        result = c.submit(tx)
        assert result["txid"] == tx.txid and result["status"] in ("pending", "committed")


def test_batch_reports_each_transaction(api: Server, member: Member) -> None:
    with client(api, member("pumch/dr-wang")) as c:
        good = [
            build_transaction(c.creds, "demo", "notary", "anchor", {"digest": digest(10 + i)})
            for i in range(50)
        ]
        reused = build_transaction(
            c.creds, "demo", "notary", "anchor", {"digest": digest(99)}, nonce=good[0].body.nonce
        )
        result = c.submit_batch([*good, reused], wait=True)["results"]
    assert [r["code"] for r in result[:50]] == ["ok"] * 50
    assert result[50]["error"]["code"] == "replayed"


def test_a_large_batch_is_decoded_in_the_worker_and_answers_per_transaction(
    api: Server, member: Member, node: Node
) -> None:
    """Over 16 KiB, a batch is decoded in the node's worker process: the answers are the
    same, in order, and a bad envelope among good ones keeps out only itself."""
    with client(api, member("pumch/dr-wang")) as c:
        good = [
            build_transaction(c.creds, "demo", "notary", "anchor", {"digest": digest(200 + i)})
            for i in range(60)
        ]
        wires = [tx.wire_bytes() for tx in good]
        wires[7] = wires[7].replace(b'"method":"anchor"', b'"method":"Anchor!"')
        wires[30] = wires[30].replace(b'"signatures":{"', b'"signatures":{"0')
        body = b'{"transactions":[' + b",".join(wires) + b"]}"
        assert len(body) > 16 * 1024
        answer = c.request("POST", "/v1/transactions/batch", raw_body=body, params={"wait": True})
    result = answer["results"]
    assert result[7]["error"]["code"] == "invalid_transaction"
    assert "not a method name" in result[7]["error"]["message"]
    assert result[30]["error"]["code"] == "invalid_transaction"
    oks = [i for i, r in enumerate(result) if r.get("code") == "ok"]
    assert oks == [i for i in range(60) if i not in (7, 30)]
    assert [result[i]["txid"] for i in oks] == [good[i].txid for i in oks]
    assert node.state.get(f"notary/anchor/{digest(207)}") is None


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b'{"transactions": [', "non_canonical", "malformed JSON"),
        (b'{"transactions": [], "timeout": 5}', "invalid_input", "unknown fields: timeout"),
        (b'{"transactions": [' + b",".join([b"{}"] * 5001) + b"]}", "oversize", "limit is 5000"),
    ],
)
def test_an_unusable_batch_is_refused_whole(
    api: Server, member: Member, body: bytes, code: str, words: str
) -> None:
    with client(api, member("pumch/dr-wang")) as c, pytest.raises(ApiError) as err:
        c.request("POST", "/v1/transactions/batch", raw_body=body)
    assert err.value.code == code and words in err.value.message


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"{not json", "non_canonical", "malformed JSON"),
        (b'{"body": {}, "body": {}}', "non_canonical", "duplicate object key"),
        (b'{"body": {"v": 1.5}}', "non_canonical", "floating-point"),
        (b"[]", "invalid_transaction", "JSON object"),
        (b'{"body": {"v": 1}, "signatures": {}}', "invalid_transaction", "body.chain is missing"),
    ],
)
def test_malformed_transactions_get_400_naming_the_problem(
    api: Server, member: Member, body: bytes, code: str, words: str
) -> None:
    with client(api, member("pumch/dr-wang")) as c, pytest.raises(ApiError) as err:
        c.request("POST", "/v1/transactions", raw_body=body)
    assert err.value.http_status == 400 and err.value.code == code
    assert words in err.value.message


def test_oversize_transaction_gets_413(api: Server, member: Member) -> None:
    with client(api, member("pumch/dr-wang")) as c, pytest.raises(ApiError) as err:
        c.request("POST", "/v1/transactions", raw_body=b" " * (300 * 1024))
    assert err.value.http_status == 413 and err.value.code == "oversize"


def test_unknown_transaction_and_block_are_404(api: Server, member: Member) -> None:
    with client(api, member("pumch/dr-wang")) as c:
        for path in (
            "/v1/transactions/" + "0" * 64,
            "/v1/transactions/not-a-txid",
            "/v1/blocks/999",
            "/v1/state/notary/x",
        ):
            with pytest.raises(ApiError) as err:
                c.request("GET", path)
            assert err.value.http_status == 404, path


def test_wrong_query_type_is_400(api: Server, member: Member) -> None:
    with client(api, member("pumch/dr-wang")) as c, pytest.raises(ApiError) as err:
        c.request("GET", "/v1/state/governance", params={"limit": "many"})
    assert err.value.http_status == 400 and "limit" in err.value.message


# -- authentication --------------------------------------------------------------------


def test_missing_signature_is_401(api: Server) -> None:
    response = httpx.get(api.url + "/v1/status")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def _headers(creds: Credentials, method: str, path: str, body: bytes = b"") -> dict[str, str]:
    return sign_request(DEFAULT, creds.private_key, creds.fingerprint, method, path, body)


def test_signature_over_another_path_is_401(api: Server, member: Member) -> None:
    headers = _headers(member("pumch/dr-wang"), "GET", "/v1/blocks/0")
    response = httpx.get(api.url + "/v1/status", headers=headers)
    assert response.status_code == 401
    assert "does not verify" in response.json()["error"]["message"]


def test_replayed_request_is_refused(api: Server, member: Member) -> None:
    headers = _headers(member("pumch/dr-wang"), "GET", "/v1/status")
    assert httpx.get(api.url + "/v1/status", headers=headers).status_code == 200
    again = httpx.get(api.url + "/v1/status", headers=headers)
    assert again.status_code == 401 and again.json()["error"]["code"] == "replayed_request"


def test_stale_request_is_refused(api: Server, member: Member) -> None:
    from carechain.api import auth

    creds = member("pumch/dr-wang")
    old = int(time.time() * 1000) - 10 * 60 * 1000
    statement = auth.request_statement(
        "GET", "/v1/status", b"", old, "nonce-0001", creds.fingerprint
    )
    headers = {
        auth.HEADER_SIGNER: creds.fingerprint,
        auth.HEADER_TIME: str(old),
        auth.HEADER_NONCE: "nonce-0001",
        auth.HEADER_SIGNATURE: __import__("base64")
        .b64encode(DEFAULT.sign(creds.private_key, statement))
        .decode(),
    }
    response = httpx.get(api.url + "/v1/status", headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "stale_request"


def test_unregistered_key_is_401(api: Server) -> None:
    stranger = Credentials("cd" * 32, b"", DEFAULT.generate_private_key())  # type: ignore[arg-type]
    with NodeClient(api.url, stranger) as c, pytest.raises(ApiError) as err:
        c.status()
    assert err.value.http_status == 401 and "not a member" in err.value.message


def test_tampered_body_is_401(api: Server, member: Member) -> None:
    creds = member("pumch/dr-wang")
    tx = build_transaction(creds, "demo", "notary", "anchor", {"digest": digest(3)})
    headers = _headers(creds, "POST", "/v1/transactions", tx.wire_bytes())
    other = build_transaction(creds, "demo", "notary", "anchor", {"digest": digest(4)})
    response = httpx.post(api.url + "/v1/transactions", content=other.wire_bytes(), headers=headers)
    assert response.status_code == 401


# -- proofs ------------------------------------------------------------------------------


def test_inclusion_and_consistency_proofs_verify_offline(
    api: Server, node: Node, member: Member, consortium: object
) -> None:
    peer_cert = node.config.peer_cert.read_bytes()
    with client(api, member("pumch/dr-wang")) as c:
        first = c.submit(
            build_transaction(c.creds, "demo", "notary", "anchor", {"digest": digest(5)}),
            wait=True,
        )
        for i in range(6):
            c.submit(
                build_transaction(c.creds, "demo", "notary", "anchor", {"digest": digest(50 + i)}),
                wait=True,
            )
        proof = c.inclusion_proof(first["txid"])
        early = c.inclusion_proof(first["txid"], height=first["height"])
        consistency = c.consistency_proof(first["height"])
    result = verify_inclusion_document(proof, DEFAULT, peer_cert)
    assert result["txid"] == first["txid"] and result["signed"]
    verify_inclusion_document(early, DEFAULT, peer_cert)
    verify_consistency_document(consistency, DEFAULT, peer_cert)

    tampered = dict(proof, leaf=dict(proof["leaf"], code="forbidden"))
    with pytest.raises(Exception, match="root"):
        verify_inclusion_document(tampered, DEFAULT, peer_cert)
    wrong_head = dict(proof, tree_head=dict(proof["tree_head"], time=1))
    with pytest.raises(Exception, match="signature"):
        verify_inclusion_document(wrong_head, DEFAULT, peer_cert)


def test_events_stream_reports_committed_blocks(api: Server, member: Member) -> None:
    """GET /v1/events: a Server-Sent Events stream with one event per committed block."""
    import json
    import threading

    creds = member("pumch/dr-wang")
    headers = _headers(creds, "GET", "/v1/events")
    seen: list[dict[str, object]] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", api.url + "/v1/events", headers=headers, timeout=20) as stream:
            for line in stream.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(10)
    tx = build_transaction(creds, "demo", "notary", "anchor", {"digest": digest(77)})
    with client(api, creds) as c:
        committed = c.submit(tx, wait=True)
    listener.join(timeout=15)
    assert seen, "no block event arrived"
    assert seen[0]["height"] == committed["height"]
    assert seen[0]["txs"] == [{"txid": tx.txid, "code": "ok"}]
