"""Blocks: what the orderer signs, what every peer adds, and their bytes.

Order, then execute. The ordering service fixes a ``Batch``: chain, height,
block time and the transactions, and signs exactly that (the ordering
statement). Every peer then executes the batch and adds what execution
determines: each transaction's status, the results hash, the state digest
after the block and the ledger-wide Merkle tree head. Two honest peers fed the
same batches produce byte-identical blocks, so a block hash names the same
thing on every peer.

Header fields (``BlockHeader.to_json``)::

    chain, height, prev        previous block hash (64 zero hex at genesis)
    time                       block time, ms since 1970, never decreasing
    tx_count, tx_root          RFC 9162 Merkle root over the envelopes' bytes
    orderer, orderer_sig       fingerprint and signature over the ordering statement
    results                    hash over statuses and the block's write-set
    state                      chained state digest after the block
    tree_size, tree_root       the ledger-wide transaction tree after the block

The block hash is the hash of the header's canonical bytes. A stored block is
the canonical JSON ``{"header": ..., "results": [...], "txs": [...]}``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NewType

from carechain.crypto.canonical import MAX_SAFE_INTEGER, canonical_bytes, parse_canonical
from carechain.crypto.suite import DEFAULT, CryptoSuite
from carechain.errors import CarechainError, InvalidInput, StorageCorrupt
from carechain.ledger.merkle import Hasher
from carechain.ledger.transaction import Fingerprint, SignedTransaction, TxId, decode_envelope

BlockHash = NewType("BlockHash", str)
"""Lower-case hex hash of a block header's canonical bytes."""

ZERO_HASH = "0" * 64

STATUS_OK = "ok"

_PLAIN = re.compile(r"[a-z0-9_]{1,64}")
"""A status code or hex id that canonical JSON writes as is (no escapes): such values
are spliced into canonical bytes directly, which is what makes a block of thousands
of transactions cheap to hash; anything else goes through ``canonical_bytes``."""


@dataclass(frozen=True)
class TxResult:
    """The outcome of one transaction: ``ok`` or the code and message of its rejection."""

    code: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == STATUS_OK

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def ordering_statement(chain: str, height: int, time_ms: int, tx_count: int, tx_root: str) -> bytes:
    """The bytes an orderer signs for a batch."""
    return canonical_bytes(
        {
            "type": "carechain/batch",
            "chain": chain,
            "height": height,
            "time": time_ms,
            "tx_count": tx_count,
            "tx_root": tx_root,
        }
    )


def merkle_root(hasher: Hasher, leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 MTH of a list of leaf hashes, built bottom-up.

    Pairing neighbours level by level and carrying an unpaired last node up
    unchanged gives the RFC's left-heavy tree (its split at the largest power
    of two below n); a hypothesis test checks it against ``MerkleTree``.
    """
    if not leaf_hashes:
        return hasher.empty_root()
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [hasher.hash_children(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def transactions_root(txs: Sequence[SignedTransaction], hasher: Hasher) -> str:
    """RFC 9162 Merkle tree hash over the envelopes' canonical bytes, in block order."""
    return merkle_root(hasher, [hasher.hash_leaf(tx.wire_bytes()) for tx in txs]).hex()


@dataclass(frozen=True)
class Batch:
    """An ordered batch of transactions, signed by the orderer."""

    chain: str
    height: int
    time_ms: int
    txs: tuple[SignedTransaction, ...]
    tx_root: str
    orderer: Fingerprint
    orderer_sig: bytes

    def statement(self) -> bytes:
        return ordering_statement(
            self.chain, self.height, self.time_ms, len(self.txs), self.tx_root
        )


def make_batch(
    chain: str,
    height: int,
    time_ms: int,
    txs: Sequence[SignedTransaction],
    orderer: Fingerprint,
    orderer_key: bytes,
    suite: CryptoSuite = DEFAULT,
) -> Batch:
    root = transactions_root(txs, Hasher(suite.hash))
    sig = suite.sign(orderer_key, ordering_statement(chain, height, time_ms, len(txs), root))
    return Batch(chain, height, time_ms, tuple(txs), root, orderer, sig)


@dataclass(frozen=True)
class BlockHeader:
    chain: str
    height: int
    prev: str
    time_ms: int
    tx_count: int
    tx_root: str
    orderer: Fingerprint
    orderer_sig: bytes
    results: str
    state: str
    tree_size: int
    tree_root: str

    def to_json(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "height": self.height,
            "prev": self.prev,
            "time": self.time_ms,
            "tx_count": self.tx_count,
            "tx_root": self.tx_root,
            "orderer": self.orderer,
            "orderer_sig": base64.b64encode(self.orderer_sig).decode("ascii"),
            "results": self.results,
            "state": self.state,
            "tree_size": self.tree_size,
            "tree_root": self.tree_root,
        }

    def block_hash(self, suite: CryptoSuite = DEFAULT) -> BlockHash:
        return BlockHash(suite.hash(canonical_bytes(self.to_json())).hex())

    def statement(self) -> bytes:
        return ordering_statement(
            self.chain, self.height, self.time_ms, self.tx_count, self.tx_root
        )


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    txs: tuple[SignedTransaction, ...]
    results: tuple[TxResult, ...]

    @property
    def height(self) -> int:
        return self.header.height

    def to_json(self) -> dict[str, Any]:
        return {
            "header": self.header.to_json(),
            "txs": [tx.to_json() for tx in self.txs],
            "results": [r.to_json() for r in self.results],
        }

    def to_bytes(self) -> bytes:
        # Envelopes are already canonical; splice their bytes rather than re-encode.
        header = canonical_bytes(self.header.to_json())
        results = results_bytes(self.results)
        txs = b"[" + b",".join(tx.wire_bytes() for tx in self.txs) + b"]"
        return b'{"header":' + header + b',"results":' + results + b',"txs":' + txs + b"}"


def result_bytes(result: TxResult) -> bytes:
    """Canonical bytes of ``result.to_json()``."""
    if not result.message and _PLAIN.fullmatch(result.code):
        return b'{"code":"' + result.code.encode() + b'","message":""}'
    return canonical_bytes(result.to_json())


def results_bytes(results: Sequence[TxResult]) -> bytes:
    """Canonical bytes of a block's statuses, ``[r.to_json() for r in results]``."""
    return b"[" + b",".join([result_bytes(r) for r in results]) + b"]"


def results_hash(
    results: Sequence[TxResult], writes_hash: bytes, suite: CryptoSuite = DEFAULT
) -> str:
    """Hash over the statuses of a block's transactions and its write-set hash: of the
    canonical ``{"statuses": [r.to_json() ...], "writes": hex}``."""
    doc = b'{"statuses":' + results_bytes(results) + b',"writes":"' + writes_hash.hex().encode()
    return suite.hash(doc + b'"}').hex()


def leaf_entry(height: int, index: int, txid: TxId, code: str) -> bytes:
    """The leaf input of the ledger-wide tree for one committed transaction: canonical
    ``{"code": code, "height": height, "index": index, "txid": txid}``."""
    if (
        _PLAIN.fullmatch(code)
        and _PLAIN.fullmatch(txid)
        and 0 <= height <= MAX_SAFE_INTEGER
        and 0 <= index <= MAX_SAFE_INTEGER
    ):
        return b'{"code":"%s","height":%d,"index":%d,"txid":"%s"}' % (
            code.encode(),
            height,
            index,
            txid.encode(),
        )
    return canonical_bytes({"code": code, "height": height, "index": index, "txid": txid})


def _b64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise InvalidInput(f"{name} is not valid base64") from exc


def header_from_json(doc: Any) -> BlockHeader:
    if not isinstance(doc, dict):
        raise InvalidInput("block header must be an object")
    try:
        return BlockHeader(
            chain=str(doc["chain"]),
            height=int(doc["height"]),
            prev=str(doc["prev"]),
            time_ms=int(doc["time"]),
            tx_count=int(doc["tx_count"]),
            tx_root=str(doc["tx_root"]),
            orderer=Fingerprint(str(doc["orderer"])),
            orderer_sig=_b64(doc["orderer_sig"], "header.orderer_sig"),
            results=str(doc["results"]),
            state=str(doc["state"]),
            tree_size=int(doc["tree_size"]),
            tree_root=str(doc["tree_root"]),
        )
    except KeyError as exc:
        raise InvalidInput(f"block header lacks {exc.args[0]}") from exc


def decode_block(data: bytes, height: int | None = None) -> Block:
    """Parse stored block bytes, insisting on canonical form.

    Raises ``StorageCorrupt`` naming the height when the bytes do not decode.
    """
    try:
        doc = parse_canonical(data)
        header = header_from_json(doc["header"])
        txs = tuple(decode_envelope(item) for item in doc["txs"])
        results = tuple(TxResult(str(r["code"]), str(r["message"])) for r in doc["results"])
    except (CarechainError, KeyError, TypeError, ValueError) as exc:
        where = f"block {height}" if height is not None else "block"
        raise StorageCorrupt(f"{where} does not decode: {exc}", height) from exc
    if len(txs) != header.tx_count or len(results) != header.tx_count:
        raise StorageCorrupt(f"block {header.height}: transaction count mismatch", header.height)
    return Block(header, txs, results)


def batch_to_json(batch: Batch) -> dict[str, Any]:
    return {
        "chain": batch.chain,
        "height": batch.height,
        "time": batch.time_ms,
        "tx_root": batch.tx_root,
        "orderer": batch.orderer,
        "orderer_sig": base64.b64encode(batch.orderer_sig).decode("ascii"),
        "txs": [tx.to_json() for tx in batch.txs],
    }


def batch_from_json(doc: Any) -> Batch:
    if not isinstance(doc, dict):
        raise InvalidInput("a batch must be a JSON object")
    try:
        return Batch(
            chain=str(doc["chain"]),
            height=int(doc["height"]),
            time_ms=int(doc["time"]),
            txs=tuple(decode_envelope(item) for item in doc["txs"]),
            tx_root=str(doc["tx_root"]),
            orderer=Fingerprint(str(doc["orderer"])),
            orderer_sig=_b64(doc["orderer_sig"], "batch.orderer_sig"),
        )
    except KeyError as exc:
        raise InvalidInput(f"batch lacks {exc.args[0]}") from exc
