"""``carechain web``: the logins people use for the node's web pages.

A login ties a person's login name, password and authenticator app to their
member identity (``--as``). The node keeps logins in its data directory; the
member's key is sealed under the password, so the identity's ``.key`` file
need not stay on the node. ``add`` shows the authenticator's QR code once.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from carechain.api.web.logins import WebLogins, check_name, check_password, totp_code
from carechain.cli.common import IdentityOption, fail, friendly
from carechain.cli.demo import DEMO_FILE
from carechain.identity.wallet import load_credentials

app = typer.Typer(
    help="Logins for the web pages: password plus a one-time code (TOTP).",
    no_args_is_help=True,
)

DataOption = Annotated[
    Path,
    typer.Option("--data", "-d", help="The node's data directory (where its node.toml is)."),
]
NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="Login name.")]


def _logins(data: Path) -> WebLogins:
    if not (data / "node.toml").is_file():
        fail(f"{data} is not a node's data directory (no node.toml there)")
    return WebLogins(data)


@app.command("add")
@friendly
def add(
    name: NameArgument,
    identity: IdentityOption,
    data: DataOption,
    password_file: Annotated[
        Path | None,
        typer.Option(help="Read the password from this file's first line instead of asking."),
    ] = None,
) -> None:
    """Add a login for the member ``--as``; prints its authenticator QR code once."""
    check_name(name)
    creds = load_credentials(identity)
    if password_file is not None:
        lines = password_file.read_text("utf-8").splitlines()
        password = lines[0] if lines else ""
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    check_password(password)
    created = _logins(data).add(name, creds, password)
    import segno

    typer.echo(f"added login {name} for member {creds.fingerprint[:16]}...")
    typer.echo("scan this with an authenticator app (shown once):")
    segno.make(created.uri, error="m").terminal(compact=True)
    typer.echo(f"or enter the key by hand: {created.secret_base32}")
    typer.echo(f"otpauth address: {created.uri}")


@app.command("list")
@friendly
def list_logins(data: DataOption) -> None:
    """Every login: name, member fingerprint, created, and whether it is locked."""
    now_ms = int(time.time() * 1000)
    rows = _logins(data).rows()
    if not rows:
        typer.echo("no logins")
    for row in rows:
        created = datetime.fromtimestamp(row.created / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        locked = " LOCKED" if row.locked_until > now_ms else ""
        typer.echo(f"{row.name}\t{row.fingerprint[:16]}...\t{created} UTC{locked}")


@app.command("remove")
@friendly
def remove(name: NameArgument, data: DataOption) -> None:
    """Remove a login; its open web sessions end at their next request."""
    _logins(data).remove(name)
    typer.echo(f"removed login {name}")


@app.command("unlock")
@friendly
def unlock(name: NameArgument, data: DataOption) -> None:
    """Clear a login's failed attempts and its lock."""
    _logins(data).unlock(name)
    typer.echo(f"unlocked login {name}")


@app.command("demo-code")
@friendly
def demo_code(
    name: NameArgument,
    data: Annotated[
        Path, typer.Option("--data", "-d", help="The demo consortium's directory.")
    ] = Path(".carechain"),
) -> None:
    """The current one-time code of a demo login (the demo keeps its secrets in a file,
    standing in for the phone a real person would use)."""
    path = data / DEMO_FILE
    if not path.is_file():
        fail(f"{path} not found: demo codes exist only for `carechain up --demo` logins")
    logins = json.loads(path.read_text("utf-8"))["logins"]
    found = next((x for x in logins if x["name"] == name), None)
    if found is None:
        fail(f"no demo login {name}; the demo has {', '.join(x['name'] for x in logins)}")
    typer.echo(totp_code(bytes.fromhex(found["totp_secret"]), time.time()))
