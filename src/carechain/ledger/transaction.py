"""Transactions: the signed body, its id, and the envelope that carries signatures.

A transaction body names ``contract``, ``method`` and ``args``, the signer's
certificate fingerprint, a nonce, the client's timestamp and the fingerprints
of any co-signers the contract's policy needs. Its bytes are canonical JSON
(RFC 8785, see ``carechain.crypto.canonical``); the transaction id is the
SHA-256 of those bytes, and every signature (Ed25519) is over those bytes.

Wire form of a signed transaction (the envelope)::

    {"body": {"args": {...}, "chain": "demo", "contract": "notary",
              "cosigners": [], "method": "anchor", "nonce": "7f3a...",
              "signer": "<64 hex>", "ts": 1763771000000, "v": 1},
     "signatures": {"<signer fp>": "<base64 signature>", ...}}

``decode_envelope`` is the one place untrusted transaction input is parsed; it
checks shape and types and returns a ``SignedTransaction`` or raises an
``InvalidTransaction`` naming the field that is wrong. Signatures are checked
later, by whoever knows the signers' keys (``carechain.contracts.validation``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, NewType

import orjson

from carechain.crypto.canonical import (
    MAX_SAFE_INTEGER,
    canonical_bytes,
    parse_canonical,
    parse_json,
)
from carechain.crypto.suite import DEFAULT, CryptoSuite, get_suite
from carechain.errors import InvalidInput, InvalidTransaction, NonCanonical, Oversize
from carechain.identity.certificates import Fingerprint as Fingerprint

TxId = NewType("TxId", str)
"""Lower-case hex SHA-256 of a transaction body's canonical bytes."""

VERSION = 1
MAX_ENVELOPE_BYTES = 256 * 1024
"""An envelope larger than this is refused up front (``Oversize``)."""

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NONCE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_CHAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_BODY_FIELDS = frozenset(
    {"v", "chain", "contract", "method", "args", "signer", "nonce", "ts", "cosigners"}
)


@dataclass(frozen=True)
class Transaction:
    """The signed part of a transaction."""

    chain: str
    contract: str
    method: str
    args: dict[str, Any]
    signer: Fingerprint
    nonce: str
    timestamp_ms: int
    cosigners: tuple[Fingerprint, ...] = ()

    def to_json(self, *, copy_args: bool = True) -> dict[str, Any]:
        """The body as JSON; ``args`` is a copy unless the caller only reads it at once."""
        return {
            "v": VERSION,
            "chain": self.chain,
            "contract": self.contract,
            "method": self.method,
            "args": copy.deepcopy(self.args) if copy_args else self.args,
            "signer": self.signer,
            "nonce": self.nonce,
            "ts": self.timestamp_ms,
            "cosigners": list(self.cosigners),
        }

    def body_bytes(self) -> bytes:
        return canonical_bytes(self.to_json(copy_args=False))


@dataclass(frozen=True)
class SignedTransaction:
    """A transaction body with its canonical bytes, id and signatures."""

    body: Transaction
    body_bytes: bytes
    txid: TxId
    signatures: dict[Fingerprint, bytes]
    _wire: bytes | None = field(default=None, compare=False, repr=False)

    def signers(self) -> tuple[Fingerprint, ...]:
        """The signer first, then co-signers in the order the body lists them."""
        return (self.body.signer, *self.body.cosigners)

    def to_json(self) -> dict[str, Any]:
        return {
            "body": self.body.to_json(),
            "signatures": {
                fp: base64.b64encode(sig).decode("ascii")
                for fp, sig in sorted(self.signatures.items())
            },
        }

    def wire_bytes(self) -> bytes:
        """Canonical bytes of the whole envelope, as stored in blocks."""
        if self._wire is not None:
            return self._wire
        # Spliced from the signed bytes, so the wire form always matches the txid.
        signatures = canonical_bytes(
            {fp: base64.b64encode(sig).decode("ascii") for fp, sig in self.signatures.items()}
        )
        wire = b'{"body":' + self.body_bytes + b',"signatures":' + signatures + b"}"
        object.__setattr__(self, "_wire", wire)
        return wire


def new_nonce(prefix: str = "") -> str:
    """A fresh nonce for a transaction: ``prefix``, the time in nanoseconds (16 hex
    digits) and 32 random bits. A signer's nonces then grow, so the node's nonce
    index (keyed by signer, then nonce) takes each block's at the end of the
    signer's run of keys instead of one random page per transaction. Any nonce the
    body's rules allow is accepted; this is only the cheapest kind to index."""
    return f"{prefix}{time.time_ns():016x}{secrets.token_hex(4)}"


def compute_txid(body_bytes: bytes, suite: CryptoSuite = DEFAULT) -> TxId:
    return TxId(suite.hash(body_bytes).hex())


def sign_transaction(
    body: Transaction,
    keys: dict[Fingerprint, bytes],
    suite: CryptoSuite = DEFAULT,
) -> SignedTransaction:
    """Sign ``body`` with each private key in ``keys`` (fingerprint -> seed)."""
    raw = body.body_bytes()
    signatures = {fp: suite.sign(seed, raw) for fp, seed in keys.items()}
    return SignedTransaction(body, raw, compute_txid(raw, suite), signatures)


def add_signature(
    tx: SignedTransaction,
    fingerprint: Fingerprint,
    private_key: bytes,
    suite: CryptoSuite = DEFAULT,
) -> SignedTransaction:
    """Return ``tx`` with one more signature (a co-signer signing the same bytes)."""
    signatures = dict(tx.signatures)
    signatures[fingerprint] = suite.sign(private_key, tx.body_bytes)
    return SignedTransaction(tx.body, tx.body_bytes, tx.txid, signatures)


def _field(body: dict[str, Any], name: str, kind: type, path: str = "body") -> Any:
    if name not in body:
        raise InvalidTransaction(f"{path}.{name} is missing")
    value = body[name]
    if kind is int and isinstance(value, bool):
        raise InvalidTransaction(f"{path}.{name} must be an integer")
    if not isinstance(value, kind):
        raise InvalidTransaction(
            f"{path}.{name} must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def _decode_body(body: Any) -> Transaction:
    if not isinstance(body, dict):
        raise InvalidTransaction("body must be a JSON object")
    unknown = sorted(set(body) - _BODY_FIELDS)
    if unknown:
        raise InvalidTransaction(f"body has unknown fields: {', '.join(unknown)}")
    version = _field(body, "v", int)
    if version != VERSION:
        raise InvalidTransaction(f"body.v is {version}; this node speaks version {VERSION}")
    chain = _field(body, "chain", str)
    if not _CHAIN.fullmatch(chain):
        raise InvalidTransaction("body.chain must be a lower-case name")
    contract = _field(body, "contract", str)
    if not _NAME.fullmatch(contract):
        raise InvalidTransaction(f"body.contract {contract!r} is not a contract name")
    method = _field(body, "method", str)
    if not _NAME.fullmatch(method):
        raise InvalidTransaction(f"body.method {method!r} is not a method name")
    args = _field(body, "args", dict)
    signer = _field(body, "signer", str)
    if not _HEX64.fullmatch(signer):
        raise InvalidTransaction(
            "body.signer must be a certificate fingerprint (64 lower-case hex)"
        )
    nonce = _field(body, "nonce", str)
    if not _NONCE.fullmatch(nonce):
        raise InvalidTransaction("body.nonce must be 1-128 characters of [A-Za-z0-9_.:-]")
    timestamp = _field(body, "ts", int)
    if not 0 <= timestamp <= MAX_SAFE_INTEGER:
        raise InvalidTransaction("body.ts must be milliseconds since 1970 (0 to 2**53 - 1)")
    cosigners = _field(body, "cosigners", list)
    for index, fp in enumerate(cosigners):
        if not isinstance(fp, str) or not _HEX64.fullmatch(fp):
            raise InvalidTransaction(f"body.cosigners[{index}] must be a certificate fingerprint")
    if len(set(cosigners)) != len(cosigners) or signer in cosigners:
        raise InvalidTransaction("body.cosigners must be distinct and not include the signer")
    return Transaction(
        chain=chain,
        contract=contract,
        method=method,
        args=args,
        signer=Fingerprint(signer),
        nonce=nonce,
        timestamp_ms=timestamp,
        cosigners=tuple(Fingerprint(fp) for fp in cosigners),
    )


def decode_envelope(
    value: Any, suite: CryptoSuite = DEFAULT, *, partial: bool = False
) -> SignedTransaction:
    """Check the shape of an envelope (already parsed JSON) and build the transaction.

    Raises ``InvalidTransaction`` naming the first field that is wrong, or
    ``NonCanonical`` if a value is outside the canonical JSON profile.
    """
    if not isinstance(value, dict):
        raise InvalidTransaction("a transaction must be a JSON object with body and signatures")
    unknown = sorted(set(value) - {"body", "signatures"})
    if unknown:
        raise InvalidTransaction(f"transaction has unknown fields: {', '.join(unknown)}")
    if "body" not in value:
        raise InvalidTransaction("transaction.body is missing")
    body = _decode_body(value["body"])
    raw_signatures = _field(value, "signatures", dict, "transaction")
    if not raw_signatures:
        raise InvalidTransaction("transaction.signatures is empty")
    signatures: dict[Fingerprint, bytes] = {}
    for fp, text in raw_signatures.items():
        if not _HEX64.fullmatch(fp):
            raise InvalidTransaction(f"signature key {fp!r} is not a certificate fingerprint")
        if not isinstance(text, str):
            raise InvalidTransaction(f"signature of {fp[:12]}... must be a base64 string")
        try:
            signature = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise InvalidTransaction(f"signature of {fp[:12]}... is not valid base64") from exc
        if base64.b64encode(signature).decode("ascii") != text:
            raise InvalidTransaction(f"signature of {fp[:12]}... is not canonical base64")
        signatures[Fingerprint(fp)] = signature
    expected = {body.signer, *body.cosigners}
    missing = sorted(expected - set(signatures))
    if missing and not (partial and body.signer in signatures):
        raise InvalidTransaction(
            f"missing signature of {', '.join(fp[:12] + '...' for fp in missing)}"
        )
    extra = sorted(set(signatures) - expected)
    if extra:
        raise InvalidTransaction(
            f"signature of {', '.join(fp[:12] + '...' for fp in extra)} not named in the body"
        )
    try:
        raw = canonical_bytes(body.to_json(copy_args=False))
    except NonCanonical as exc:
        where = f"body{exc.message}" if exc.message.startswith(".") else f"body.args: {exc.message}"
        raise InvalidTransaction(where) from exc
    # The arguments that execute are read back from the signed bytes: a copy the
    # caller's parsed value cannot change, and exactly what was signed.
    object.__setattr__(body, "args", orjson.loads(raw)["args"])  # ours alone so far
    return SignedTransaction(body, raw, compute_txid(raw, suite), signatures)


def decode_batch(
    data: bytes, max_batch: int, suite: CryptoSuite | str = DEFAULT
) -> list[SignedTransaction | InvalidInput]:
    """Parse a batch ``{"transactions": [envelope, ...]}``: per envelope, in order, the
    transaction or the error that keeps it out.

    Raises ``InvalidInput`` (or ``Oversize``) if the batch as a whole is unusable. Pure,
    so a node runs it in a worker process (``suite`` may be given by name there).
    """
    if isinstance(suite, str):
        suite = get_suite(suite)
    doc = parse_json(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("transactions"), list):
        raise InvalidInput('body must be {"transactions": [...]}')
    unknown = sorted(set(doc) - {"transactions"})
    if unknown:
        raise InvalidInput(f"batch has unknown fields: {', '.join(unknown)}")
    items = doc["transactions"]
    if len(items) > max_batch:
        raise Oversize(f"{len(items)} transactions in one batch; the limit is {max_batch}")
    decoded: list[SignedTransaction | InvalidInput] = []
    for item in items:
        try:
            tx = decode_envelope(item, suite)
        except InvalidInput as exc:
            decoded.append(exc)
            continue
        tx.wire_bytes()  # kept with the transaction: blocks and their roots need it
        decoded.append(tx)
    return decoded


def decode_envelope_bytes(
    data: bytes, *, canonical: bool = False, partial: bool = False
) -> SignedTransaction:
    """Parse envelope bytes; with ``canonical`` insist they are RFC 8785 canonical.

    With ``partial``, co-signatures may still be missing (a transaction being
    passed round its co-signers); the signer's own signature may not.
    """
    if len(data) > MAX_ENVELOPE_BYTES:
        raise Oversize(f"transaction is {len(data)} bytes; the limit is {MAX_ENVELOPE_BYTES}")
    value = parse_canonical(data) if canonical else parse_json(data)
    tx = decode_envelope(value, partial=partial)
    if canonical:
        object.__setattr__(tx, "_wire", bytes(data))
    return tx
