"""Deterministic execution of an ordered batch: validate, authorise, run, collect.

For each transaction, in order (stopping at the first failing step, which
becomes the transaction's status code; the transaction changes no state):

1. ``wrong_chain``: the body names another chain.
2. ``replayed``: its (signer, nonce) was consumed by an earlier transaction.
3. ``unknown_signer``: the signer or a co-signer has no certificate on chain.
4. ``certificate_revoked`` / ``certificate_expired``: at block time.
5. ``bad_signature``: a signature does not verify over the body's bytes.
   From here on the nonce counts as consumed, even if the contract refuses,
   so that a refused transaction can never be replayed into a later block.
6. ``unknown_contract`` / ``unknown_method``.
7. ``forbidden``: role, organisation type or co-signers not allowed.
8. the contract's own rules (``ContractError`` code), or ``unknown_argument``.

Everything read comes from the committed state plus the writes of earlier
transactions in the same block; time is the block's time. Two peers fed the
same batches reach byte-identical write-sets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from carechain.contracts.membership import MEMBER_PREFIX, ORG_PREFIX, MemberRecord, read_member
from carechain.contracts.runtime import Args, BlockInfo, Context, Contract, authorise
from carechain.contracts.state import CommittedState, Overlay, write_set_bytes
from carechain.crypto.suite import CryptoSuite, SignatureCheck
from carechain.errors import CarechainError, ConfigError, ContractError, NodeFailure
from carechain.ledger.block import STATUS_OK, TxResult
from carechain.ledger.transaction import Fingerprint, SignedTransaction

log = logging.getLogger(__name__)


MEMBERSHIP_PREFIXES = (MEMBER_PREFIX, ORG_PREFIX)
GENESIS_CONTRACT = "governance"
GENESIS_METHOD = "genesis"
MAX_READ_HINTS = 64
"""Keys one transaction may ask to have read ahead (``Contract.reads``)."""


class ReplayIndex(Protocol):
    def nonce_txids(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Of these (signer, nonce) pairs, those already consumed, with their txids."""


class CommittedLedgerState(CommittedState, ReplayIndex, Protocol):
    pass


@dataclass
class BlockExecution:
    results: list[TxResult]
    overlay: Overlay
    nonces: list[tuple[str, str, str]]
    write_set: list[tuple[str, bytes | None]] = field(default_factory=list)
    writes_hash: bytes = b""


class SignatureCache:
    """Transactions whose signatures this node already checked (at admission)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._checked: dict[str, Mapping[Fingerprint, bytes]] = {}
        self._limit = limit

    def add(self, tx: SignedTransaction) -> None:
        if len(self._checked) >= self._limit:
            self._checked.clear()
        self._checked[tx.txid] = tx.signatures

    def take(self, tx: SignedTransaction) -> bool:
        return self._checked.pop(tx.txid, None) == tx.signatures

    def holds(self, tx: SignedTransaction) -> bool:
        return self._checked.get(tx.txid) == tx.signatures


class _Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Executor:
    """Runs batches against state; owns no state of its own besides caches."""

    def __init__(
        self,
        contracts: Sequence[Contract],
        suite: CryptoSuite,
        signatures: SignatureCache | None = None,
        verify_many: Callable[[list[SignatureCheck]], list[bool]] | None = None,
    ) -> None:
        self.contracts = {c.name: c for c in contracts}
        self.suite = suite
        self.signatures = signatures or SignatureCache()
        self._verify_many = verify_many
        # Member records as committed state holds them; dropped whenever a block
        # writes member or organisation keys. Within such a block, reads go to the
        # overlay so a revocation takes effect for the very next transaction.
        self._members: dict[str, MemberRecord | None] = {}

    def execute(
        self, state: CommittedLedgerState, block: BlockInfo, txs: Sequence[SignedTransaction]
    ) -> BlockExecution:
        overlay = Overlay(state)
        run = BlockExecution([], overlay, [])
        seen: set[tuple[str, str]] = set()
        consumed = state.nonce_txids([(tx.body.signer, tx.body.nonce) for tx in txs])
        self._membership_dirty = False
        if block.height > 0:
            self._check_signatures_ahead(overlay, txs)
            self._prefetch(overlay, txs)
        for index, tx in enumerate(txs):
            try:
                if block.height == 0:
                    self._genesis(overlay, block, tx, txs)
                else:
                    self._execute_one(consumed, overlay, block, tx, seen, run.nonces, index)
                run.results.append(TxResult(STATUS_OK))
            except _Rejected as rej:
                run.results.append(TxResult(rej.code, rej.message))
        if self._membership_dirty or block.height == 0:
            self._members = {}
        run.write_set = overlay.write_set()
        run.writes_hash = self.suite.hash(write_set_bytes(run.write_set))
        return run

    # -- the steps ---------------------------------------------------------------------

    def _execute_one(
        self,
        consumed: dict[tuple[str, str], str],
        overlay: Overlay,
        block: BlockInfo,
        tx: SignedTransaction,
        seen: set[tuple[str, str]],
        nonces: list[tuple[str, str, str]],
        index: int = 0,
    ) -> None:
        body = tx.body
        # 1. chain
        if body.chain != block.chain:
            raise _Rejected("wrong_chain", f"transaction is for chain {body.chain!r}")
        # 2. replay
        replay_key = (body.signer, body.nonce)
        earlier = consumed.get(replay_key)
        if replay_key in seen or earlier is not None:
            where = f" (first as {earlier})" if earlier else " (earlier in this block)"
            raise _Rejected("replayed", f"nonce {body.nonce!r} of this signer was used{where}")
        # 3-5. signers, certificates, signatures
        caller, cosigners = self._check_signers(overlay, block, tx)
        seen.add(replay_key)
        nonces.append((body.signer, body.nonce, tx.txid))
        # 6. contract and method
        contract = self.contracts.get(body.contract)
        if contract is None:
            raise _Rejected("unknown_contract", f"there is no contract {body.contract!r}")
        found = contract.policy(body.method)
        if found is None or (body.contract, body.method) == (GENESIS_CONTRACT, GENESIS_METHOD):
            raise _Rejected(
                "unknown_method", f"contract {body.contract} has no method {body.method!r}"
            )
        fn, policy = found
        # 7-8. authorise, run
        tx_overlay = Overlay(overlay)
        args = Args(body.args)
        ctx = Context(contract.name, tx_overlay, tx, caller, cosigners, block, index)
        try:
            authorise(policy, caller, cosigners, args)
            fn(ctx, args)
            unread = args.unread()
            if unread:
                raise ContractError(f"unknown argument(s): {', '.join(unread)}")
        except ContractError as exc:
            raise _Rejected(exc.code, exc.message) from None
        except (NodeFailure, MemoryError):
            raise  # the node's own failure (storage, memory): never a transaction's outcome
        except CarechainError as exc:  # bad input a shared helper refused (InvalidInput ...)
            raise _Rejected(exc.code, exc.message) from None
        except Exception as exc:
            # A contract bug, not the caller's fault: recorded, never applied. Every peer
            # meets the same bug on the same block, so it must not stop them all.
            log.error(
                "contract %s.%s failed on %s", body.contract, body.method, tx.txid, exc_info=True
            )
            raise _Rejected("contract_fault", f"{type(exc).__name__} in contract") from None
        if not self._membership_dirty and any(
            key.startswith(MEMBERSHIP_PREFIXES) for key in tx_overlay.writes
        ):
            self._membership_dirty = True
        tx_overlay.fold_into_parent()

    def _check_signers(
        self, overlay: Overlay, block: BlockInfo, tx: SignedTransaction
    ) -> tuple[MemberRecord, dict[Fingerprint, MemberRecord]]:
        members: dict[Fingerprint, MemberRecord] = {}
        for fp in tx.signers():
            member = self._member(overlay, fp)
            if member is None:
                raise _Rejected("unknown_signer", f"no certificate {fp[:12]}... on this chain")
            refusal = member.refusal_at(block.time_ms)
            if refusal is not None:
                raise _Rejected(*refusal)
            members[fp] = member
        if not self.signatures.take(tx):
            for fp, member in members.items():
                if not self.suite.verify(member.public_key, tx.body_bytes, tx.signatures[fp]):
                    raise _Rejected("bad_signature", f"signature of {fp[:12]}... does not verify")
        caller = members.pop(tx.body.signer)
        return caller, members

    def _check_signatures_ahead(self, overlay: Overlay, txs: Sequence[SignedTransaction]) -> None:
        """Verify in bulk the signatures this node has not checked yet.

        Only a cache: a fingerprint names one certificate and so one key, so a
        signature that verifies here verifies at its turn too; whether the
        certificate may still sign (revoked, expired) is decided at its turn.
        """
        work: list[tuple[SignedTransaction, list[tuple[bytes, bytes]]]] = []
        for tx in txs:
            if self.signatures.holds(tx):
                continue
            keys = []
            for fp in tx.signers():
                member = self._member(overlay, fp)
                if member is None:
                    break
                keys.append((member.public_key, tx.signatures[fp]))
            else:
                work.append((tx, keys))
        if not work or self._verify_many is None:
            return  # the verifier itself decides between in place and a worker
        checks = [(pk, tx.body_bytes, sig) for tx, keys in work for pk, sig in keys]
        results = iter(self._verify_many(checks))
        for tx, keys in work:
            if all([next(results) for _ in keys]):
                self.signatures.add(tx)

    def _prefetch(self, overlay: Overlay, txs: Sequence[SignedTransaction]) -> None:
        """Read ahead, in one query, the committed keys the block's calls say they read."""
        keys: list[str] = []
        for tx in txs:
            contract = self.contracts.get(tx.body.contract)
            if contract is None or type(contract).reads is Contract.reads:
                continue  # this contract gives no hints
            caller = self._member(overlay, tx.body.signer)
            if caller is None or not isinstance(tx.body.args, dict):
                continue
            try:
                hinted = contract.reads(tx.body.method, tx.body.args, caller)
            except Exception:  # unchecked input; the call itself will say what is wrong
                continue
            keys.extend(k for k in hinted[:MAX_READ_HINTS] if isinstance(k, str))
        overlay.prefetch(keys)

    def _member(self, overlay: Overlay, fingerprint: str) -> MemberRecord | None:
        if self._membership_dirty:
            return read_member(overlay, fingerprint)
        if fingerprint not in self._members:
            if len(self._members) > 100_000:
                self._members = {}
            self._members[fingerprint] = read_member(overlay, fingerprint)
        return self._members[fingerprint]

    def _genesis(
        self, overlay: Overlay, block: BlockInfo, tx: SignedTransaction, txs: Sequence[Any]
    ) -> None:
        """Height 0 holds one governance.genesis transaction, signed by a member it creates."""
        body = tx.body
        if len(txs) != 1 or (body.contract, body.method) != (GENESIS_CONTRACT, GENESIS_METHOD):
            raise ConfigError("block 0 must hold exactly one governance.genesis transaction")
        contract = self.contracts[GENESIS_CONTRACT]
        ctx = Context(contract.name, overlay, tx, None, {}, block)
        try:
            getattr(contract, GENESIS_METHOD)(ctx, Args(body.args))
        except ContractError as exc:
            raise ConfigError(f"genesis is invalid: {exc.message}") from exc
        signer = read_member(overlay, body.signer)
        if signer is None or not self.suite.verify(
            signer.public_key, tx.body_bytes, tx.signatures[body.signer]
        ):
            raise ConfigError("genesis must be signed by a member certificate it registers")
