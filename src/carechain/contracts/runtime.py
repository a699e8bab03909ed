"""The contract runtime: decorated methods, the execution context, argument checks.

A contract is a plain class with a ``name`` and methods marked with
``@contract_method``, which states who may call them::

    class Notary(Contract):
        name = "notary"

        @contract_method(roles={Role.CLINICIAN, Role.ADMIN})
        def anchor(self, ctx: Context, args: Args) -> None: ...

The runtime checks the caller's role and organisation type and that every
co-signer the method requires has signed, before the method runs. A method
refuses by raising ``ContractError`` (or ``Forbidden``); the transaction is
then recorded as rejected with that code and message, and nothing it wrote
survives. Methods reach state only through the context: block time, never the
wall clock; sorted scans, never unordered iteration; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from carechain.contracts.membership import MemberRecord, read_member
from carechain.contracts.state import Overlay
from carechain.errors import ContractError, Forbidden
from carechain.identity.roles import OrgType, Role
from carechain.ledger.transaction import Fingerprint, SignedTransaction, TxId

F = TypeVar("F", bound=Callable[..., Any])

CosignRule = Callable[["Args"], Iterable[str]]


@dataclass(frozen=True)
class MethodPolicy:
    """Who may call a method."""

    roles: frozenset[Role] | None = None
    org_types: frozenset[OrgType] | None = None
    cosigners: CosignRule | None = None
    """From the arguments, the fingerprints that must co-sign the transaction."""


def contract_method(
    *,
    roles: Iterable[Role] | None = None,
    org_types: Iterable[OrgType] | None = None,
    cosigners: CosignRule | None = None,
) -> Callable[[F], F]:
    """Expose a method to transactions, naming who may call it."""
    policy = MethodPolicy(
        frozenset(roles) if roles is not None else None,
        frozenset(org_types) if org_types is not None else None,
        cosigners,
    )

    def mark(fn: F) -> F:
        fn.__carechain_policy__ = policy  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(frozen=True)
class BlockInfo:
    chain: str
    height: int
    time_ms: int


_REQUIRED: Any = object()


class Args:
    """Typed access to a transaction's arguments; every complaint names the argument."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values
        self._read: set[str] = set()

    def _get(self, name: str, default: Any) -> Any:
        self._read.add(name)
        if name in self._values:
            return self._values[name]
        if default is _REQUIRED:
            raise ContractError(f"argument {name!r} is missing")
        return default

    def text(
        self,
        name: str,
        *,
        default: Any = None,
        pattern: re.Pattern[str] | None = None,
        max_length: int = 1024,
        required: bool = True,
    ) -> str:
        value = self._get(name, _REQUIRED if required else default)
        if not required and value is default:
            return value  # type: ignore[no-any-return]
        if not isinstance(value, str):
            raise ContractError(f"argument {name!r} must be text, got {type(value).__name__}")
        if len(value) > max_length:
            raise ContractError(f"argument {name!r} is longer than {max_length} characters")
        if pattern is not None and not pattern.fullmatch(value):
            raise ContractError(f"argument {name!r} has the wrong form: {value[:80]!r}")
        return value

    def integer(self, name: str, *, minimum: int | None = None, default: Any = _REQUIRED) -> int:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ContractError(f"argument {name!r} must be an integer")
        if minimum is not None and value < minimum:
            raise ContractError(f"argument {name!r} must be at least {minimum}")
        return value

    def boolean(self, name: str, *, default: Any = _REQUIRED) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise ContractError(f"argument {name!r} must be true or false")
        return value

    def mapping(self, name: str) -> dict[str, Any]:
        value = self._get(name, _REQUIRED)
        if not isinstance(value, dict):
            raise ContractError(f"argument {name!r} must be an object")
        return value

    def items(self, name: str, *, max_items: int = 1000, default: Any = _REQUIRED) -> list[Any]:
        value = self._get(name, default)
        if not isinstance(value, list):
            raise ContractError(f"argument {name!r} must be a list")
        if len(value) > max_items:
            raise ContractError(f"argument {name!r} has more than {max_items} items")
        return value

    def unread(self) -> list[str]:
        return sorted(set(self._values) - self._read)


class Context:
    """What a contract method sees: caller, co-signers, block, and its own state."""

    def __init__(
        self,
        contract: str,
        overlay: Overlay,
        tx: SignedTransaction,
        caller: MemberRecord | None,
        cosigners: dict[Fingerprint, MemberRecord],
        block: BlockInfo,
        index: int = 0,
    ) -> None:
        self.contract = contract
        self._overlay = overlay
        self.tx = tx
        self._caller = caller
        self.cosigners = cosigners
        self.block = block
        self.index = index
        """The transaction's position in its block: with the height, the order of events."""

    @property
    def caller(self) -> MemberRecord:
        if self._caller is None:
            raise ContractError("this method needs a registered caller")
        return self._caller

    @property
    def txid(self) -> TxId:
        return self.tx.txid

    @property
    def time_ms(self) -> int:
        """Block time in milliseconds since 1970: the only clock a contract has."""
        return self.block.time_ms

    def _key(self, key: str) -> str:
        return f"{self.contract}/{key}"

    def get(self, key: str) -> Any | None:
        return self._overlay.get(self._key(key))

    def put(self, key: str, value: Any) -> None:
        self._overlay.put(self._key(key), value)

    def delete(self, key: str) -> None:
        self._overlay.delete(self._key(key))

    def scan(self, prefix: str, limit: int = -1) -> list[tuple[str, Any]]:
        """Own keys starting with ``prefix``, in key order, without the contract prefix."""
        cut = len(self.contract) + 1
        return [(k[cut:], v) for k, v in self._overlay.scan(self._key(prefix), limit)]

    def read(self, contract: str, key: str) -> Any | None:
        """Read another contract's state (never write it)."""
        return self._overlay.get(f"{contract}/{key}")

    def scan_other(self, contract: str, prefix: str) -> list[tuple[str, Any]]:
        """Another contract's keys starting with ``prefix``, in key order (read only)."""
        cut = len(contract) + 1
        return [(k[cut:], v) for k, v in self._overlay.scan(f"{contract}/{prefix}", -1)]

    def member(self, fingerprint: str) -> MemberRecord | None:
        return read_member(self._overlay, fingerprint)

    def acting_for(self, contract: str) -> Context:
        """This transaction's context in ``contract``'s namespace: how one contract has
        another apply its own rules (claims settle through payments' double-entry
        postings), never to write another contract's state directly."""
        return Context(
            contract, self._overlay, self.tx, self._caller, self.cosigners, self.block, self.index
        )


class Contract:
    """Base class: subclasses set ``name`` and mark methods with ``@contract_method``."""

    name: ClassVar[str]

    def policy(self, method: str) -> tuple[Callable[..., Any], MethodPolicy] | None:
        fn = getattr(self, method, None)
        policy = getattr(fn, "__carechain_policy__", None)
        if fn is None or policy is None or method.startswith("_"):
            return None
        return fn, policy

    def methods(self) -> list[str]:
        return sorted(
            name for name in dir(self) if not name.startswith("_") and self.policy(name) is not None
        )

    def reads(self, method: str, args: dict[str, Any], caller: MemberRecord) -> list[str]:
        """State keys (``namespace/key``) a call will likely read, guessed from its raw
        arguments before its block runs, so the executor fetches a block's keys in one
        query. Only a hint: a wrong or missing key costs a read at its turn, nothing
        else. ``args`` is unchecked input: a hint that raises is ignored."""
        return []


def authorise(
    policy: MethodPolicy, caller: MemberRecord, cosigners: dict[Fingerprint, Any], args: Args
) -> None:
    """Check the caller's role, organisation type and required co-signers."""
    if policy.roles is not None and caller.role not in policy.roles:
        allowed = ", ".join(sorted(policy.roles))
        raise Forbidden(f"role {caller.role} may not call this method (allowed: {allowed})")
    if policy.org_types is not None and caller.org_type not in policy.org_types:
        allowed = ", ".join(sorted(policy.org_types))
        raise Forbidden(
            f"organisation type {caller.org_type} may not call this method (allowed: {allowed})"
        )
    if policy.cosigners is not None:
        required = set(policy.cosigners(args))
        missing = sorted(required - set(cosigners))
        if missing:
            names = ", ".join(fp[:12] + "..." for fp in missing)
            raise Forbidden(f"this method needs the co-signature of {names}")
