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
    │   └── ConfigError                 a consortium or node configuration is wrong
    ├── Unauthenticated                 a request lacks a valid member signature (HTTP 401)
    ├── NotFound                        unknown id, height, key (HTTP 404)
    ├── ContractError                   a contract rule refused the transaction; recorded
    │   │                               in the block as a rejected status, no state change
    │   └── Forbidden                   caller's role, organisation or co-signers not allowed
    ├── Busy                            the node cannot take more work now (HTTP 503)
    └── NodeFailure                     the node itself failed; stops the block
        ├── StorageCorrupt              block store or state store damaged (names the block)
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


class ConfigError(InvalidInput):
    code = "config_error"


class Unauthenticated(CarechainError):
    code = "unauthenticated"
    http_status = 401


class NotFound(CarechainError):
    code = "not_found"
    http_status = 404


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


class VerificationFailed(NodeFailure):
    code = "verification_failed"

    def __init__(self, message: str, height: int | None = None) -> None:
        super().__init__(message)
        self.height = height
