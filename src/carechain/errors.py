"""The one exception hierarchy of carechain.

Bad input from a person or a client becomes a clear message naming what is
wrong (HTTP 4xx with a JSON body, CLI exit code 2 with one line). A failure of
the node itself stops the work and is never mistaken for bad input.

    CarechainError                      base class; ``code`` and ``message``
    ├── InvalidInput                    a person's or client's input is wrong (HTTP 400)
    │   ├── NonCanonical                bytes are not the canonical JSON form
    │   ├── InvalidTransaction          fails an up-front check (format, signature, ...)
    │   │   ├── BadSignature
    │   │   ├── UnknownSigner
    │   │   ├── CertificateRevoked
    │   │   ├── CertificateExpired
    │   │   ├── Replayed                transaction id or (signer, nonce) seen before
    │   │   └── Oversize
    │   ├── InvalidCertificate          X.509 certificate malformed or not issued by its CA
    │   ├── InvalidProof                a Merkle proof does not check out
    │   │   └── RootMismatch            (expected, calculated)
    │   ├── InvalidFhir                 a FHIR resource fails validation (names the element path)
    │   └── ConfigError                 a consortium or node configuration is wrong
    ├── Unauthenticated                 a request lacks a valid member signature (HTTP 401)
    ├── AccessRefused                   a read the chain refused (no consent; HTTP 403); the
    │                                   refused attempt is itself recorded on the chain
    ├── NotFound                        unknown id, height, key (HTTP 404)
    │   └── RecordErased                the record was erased (HTTP 410)
    ├── ContractError                   a contract rule refused the transaction; recorded
    │   │                               in the block as a rejected status, no state change
    │   └── Forbidden                   caller's role, organisation or co-signers not allowed
    ├── Busy                            the node cannot take more work now (HTTP 503)
    └── NodeFailure                     the node itself failed; stops the block
        ├── StorageCorrupt              block store or state store damaged (names the block)
        ├── VaultTampered               a vault entry fails its authentication or fingerprint
        └── VerificationFailed          ``carechain verify`` found the ledger inconsistent
"""

from __future__ import annotations


class CarechainError(Exception):
    """Base of every carechain error: a stable ``code`` and a one-line message."""

    code = "error"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidInput(CarechainError):
    code = "invalid_input"
    http_status = 400


class NonCanonical(InvalidInput):
    code = "non_canonical"


class InvalidTransaction(InvalidInput):
    code = "invalid_transaction"


class BadSignature(InvalidTransaction):
    code = "bad_signature"


class UnknownSigner(InvalidTransaction):
    code = "unknown_signer"


class CertificateRevoked(InvalidTransaction):
    code = "certificate_revoked"


class CertificateExpired(InvalidTransaction):
    code = "certificate_expired"


class Replayed(InvalidTransaction):
    code = "replayed"
    http_status = 409


class Oversize(InvalidTransaction):
    code = "oversize"
    http_status = 413


class InvalidCertificate(InvalidInput):
    code = "invalid_certificate"


class InvalidProof(InvalidInput):
    code = "invalid_proof"


class RootMismatch(InvalidProof):
    code = "root_mismatch"

    def __init__(self, expected: bytes, calculated: bytes) -> None:
        super().__init__(f"root mismatch: expected {expected.hex()}, calculated {calculated.hex()}")
        self.expected = expected
        self.calculated = calculated


class InvalidFhir(InvalidInput):
    """A FHIR resource that fails validation; ``path`` names the failing element."""

    code = "invalid_fhir"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


class ConfigError(InvalidInput):
    code = "config_error"


class Unauthenticated(CarechainError):
    code = "unauthenticated"
    http_status = 401


class AccessRefused(CarechainError):
    """A read of health data that the chain refused; the attempt is recorded too."""

    code = "access_refused"
    http_status = 403


class NotFound(CarechainError):
    code = "not_found"
    http_status = 404


class RecordErased(NotFound):
    """The record was erased (GDPR Art. 17): its key is destroyed; it cannot be served."""

    code = "record_erased"
    http_status = 410


class ContractError(CarechainError):
    """A contract rule refused the transaction.

    The transaction is still recorded in its block, with this code and message
    as its status, and changes no state.
    """

    code = "contract_error"
    http_status = 422


class Forbidden(ContractError):
    code = "forbidden"
    http_status = 403


class Busy(CarechainError):
    code = "busy"
    http_status = 503


class NodeFailure(CarechainError):
    code = "node_failure"
    http_status = 500


class StorageCorrupt(NodeFailure):
    code = "storage_corrupt"

    def __init__(self, message: str, height: int | None = None) -> None:
        super().__init__(message)
        self.height = height


class VaultTampered(NodeFailure):
    """A vault entry fails its authentication tag or its on-chain fingerprint: never served."""

    code = "vault_tampered"

    def __init__(self, message: str, record: str | None = None) -> None:
        super().__init__(message)
        self.record = record


class VerificationFailed(NodeFailure):
    code = "verification_failed"

    def __init__(self, message: str, height: int | None = None) -> None:
        super().__init__(message)
        self.height = height
