"""Up-front checks on submitted transactions, so a client hears at once what is wrong.

``Mempool.admit`` checks, in order: the chain; that the (signer, nonce) is
neither committed nor already pending (``Replayed``); that every signer has a
certificate on chain that is neither revoked nor expired now; and every
signature. What passes goes to the ordering service. The executor checks all
of it again at block time (a certificate may be revoked in between); these
checks only spare the chain transactions that cannot succeed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from carechain.contracts.executor import SignatureCache
from carechain.contracts.membership import MemberRecord
from carechain.crypto.suite import CryptoSuite, SignatureCheck
from carechain.errors import (
    BadSignature,
    CertificateExpired,
    CertificateRevoked,
    InvalidInput,
    InvalidTransaction,
    Replayed,
    UnknownSigner,
)
from carechain.ledger.transaction import SignedTransaction

MemberLookup = Callable[[str], MemberRecord | None]
NonceLookup = Callable[[Sequence[tuple[str, str]]], dict[tuple[str, str], str]]


class _Outcome:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


ADMITTED = _Outcome("ADMITTED")
PENDING = _Outcome("PENDING")
COMMITTED = _Outcome("COMMITTED")
Admission = _Outcome | InvalidInput


class Mempool:
    def __init__(
        self,
        chain: str,
        suite: CryptoSuite,
        members: MemberLookup,
        committed_nonces: NonceLookup,
        signatures: SignatureCache,
        verify: Callable[[list[SignatureCheck]], list[bool]],
    ) -> None:
        self.chain = chain
        self.suite = suite
        self._members = members
        self._committed_nonces = committed_nonces
        self._signatures = signatures
        self._verify = verify
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def _check_signers(self, tx: SignedTransaction, now_ms: int) -> list[SignatureCheck]:
        """Refuse unknown, revoked or expired signers; return the signatures to check."""
        checks = []
        for fp in tx.signers():
            member = self._members(fp)
            if member is None:
                raise UnknownSigner(f"no certificate {fp[:12]}... is registered on this chain")
            refusal = member.refusal_at(now_ms)
            if refusal is not None:
                code, message = refusal
                error = CertificateRevoked if code == "certificate_revoked" else CertificateExpired
                raise error(message)
            checks.append((member.public_key, tx.body_bytes, tx.signatures[fp]))
        return checks

    def admit_many(self, txs: Sequence[SignedTransaction]) -> list[Admission]:
        """Check each transaction; hold those that pass. One outcome per transaction:
        ``ADMITTED`` (new: to be ordered), ``PENDING`` or ``COMMITTED`` (the same
        transaction is already there) or the ``InvalidInput`` naming what is wrong.
        """
        now = int(time.time() * 1000)
        outcomes: list[Admission] = [ADMITTED] * len(txs)
        committed = self._committed_nonces([(tx.body.signer, tx.body.nonce) for tx in txs])
        to_verify: list[int] = []
        checks: list[SignatureCheck] = []
        owners: list[tuple[int, str]] = []
        for i, tx in enumerate(txs):
            body = tx.body
            try:
                if body.chain != self.chain:
                    raise InvalidTransaction(
                        f"transaction is for chain {body.chain!r}, not {self.chain!r}"
                    )
                earlier = committed.get((body.signer, body.nonce))
                if earlier == tx.txid:
                    outcomes[i] = COMMITTED
                    continue
                if earlier is not None:
                    raise Replayed(
                        f"nonce {body.nonce!r} of this signer was already used by {earlier}"
                    )
                signer_checks = self._check_signers(tx, now)
            except InvalidInput as exc:
                outcomes[i] = exc
                continue
            to_verify.append(i)
            checks.extend(signer_checks)
            owners.extend((i, fp) for fp in tx.signers())
        for (i, fp), ok in zip(owners, self._verify(checks), strict=True):
            if not ok and outcomes[i] is ADMITTED:
                outcomes[i] = BadSignature(
                    f"signature of {fp[:12]}... does not verify over the body"
                )
        with self._lock:
            for i in to_verify:
                if outcomes[i] is not ADMITTED:
                    continue
                tx = txs[i]
                key = (tx.body.signer, tx.body.nonce)
                current = self._pending.get(key)
                if current == tx.txid:
                    outcomes[i] = PENDING
                elif current is not None:
                    outcomes[i] = Replayed(
                        f"nonce {tx.body.nonce!r} of this signer is used by pending {current}"
                    )
                else:
                    self._pending[key] = tx.txid
                    self._signatures.add(tx)
        return outcomes

    def forget(self, txs: Sequence[SignedTransaction]) -> None:
        """Drop transactions that a committed block settled (applied or rejected)."""
        with self._lock:
            for tx in txs:
                key = (tx.body.signer, tx.body.nonce)
                if self._pending.get(key) == tx.txid:
                    del self._pending[key]
