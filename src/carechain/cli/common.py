"""What every command shares: how to reach a node, whom to sign as, how to fail."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from carechain.api.client import NodeClient, build_transaction
from carechain.crypto.canonical import parse_json
from carechain.errors import CarechainError
from carechain.identity.wallet import load_credentials
from carechain.ledger.transaction import SignedTransaction

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_NODE = "http://127.0.0.1:8700"

NodeOption = Annotated[
    str,
    typer.Option("--node", envvar="CARECHAIN_NODE", help="URL of the node's REST API."),
]
IdentityOption = Annotated[
    Path,
    typer.Option(
        "--as",
        envvar="CARECHAIN_IDENTITY",
        help="Member to sign as: path to NAME (NAME.pem and NAME.key).",
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def friendly(fn: F) -> F:
    """Turn carechain errors into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CarechainError as exc:
            fail(f"{exc.code}: {exc.message}")
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "))
        return None

    return wrapper  # type: ignore[return-value]


def client(node: str, identity: Path) -> NodeClient:
    return NodeClient(node, load_credentials(identity))


def send_call(
    c: NodeClient, contract: str, method: str, tx: SignedTransaction, wait_s: float = 10.0
) -> Any:
    """POST a signed ``contract.method`` transaction to its own route
    (``/v1/<contract>/<method>``), which answers once it commits."""
    return c.request(
        "POST", f"/v1/{contract}/{method}", raw_body=tx.wire_bytes(), params={"timeout": wait_s}
    )


def submit_call(
    c: NodeClient, contract: str, method: str, args: dict[str, Any], wait_s: float = 10.0
) -> Any:
    """Sign ``contract.method`` with ``args`` as the client's member and ``send_call`` it."""
    tx = build_transaction(c.creds, c.chain(), contract, method, args)
    return send_call(c, contract, method, tx, wait_s)


def show(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False))


def read_json_arg(text: str | None, file: Path | None, what: str) -> Any:
    if file is not None:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        return parse_json(data)
    if text is None:
        return {}
    return parse_json(text)
