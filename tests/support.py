"""Test helpers shared by several test modules (on the path via pytest's ``pythonpath``)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from carechain.api.app import create_app
from carechain.node.node import Node

CARECHAIN = [sys.executable, "-m", "carechain"]


def free_port() -> int:
    """A free port below the ephemeral range (``carechain.node.ports``): a peer started
    seconds later still finds it free."""
    from carechain.node.ports import free_ports

    return free_ports(1)[0]


class Server:
    def __init__(self, node: Node, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(node), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_node(node_dir: Path, port: int) -> subprocess.Popen[bytes]:
    with (node_dir.parent / "node.log").open("ab") as log:
        proc = subprocess.Popen(
            [*CARECHAIN, "up", "--data", str(node_dir), "--port", str(port)],
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = (node_dir.parent / "node.log").read_text(errors="replace")
            raise RuntimeError(f"node exited: {text[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("node did not come up within 30 s")


def run_verify(node_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CARECHAIN, "verify", "--data", str(node_dir), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )


DEMO_LICENCES = ({"gs1_prefix": "9506000"}, {"cn_product": "8123456"})
"""What the drug tests commission under, licensed to the demo's manufacturer by its regulator:
GS1's example company prefix 9506000 (of GS1's example GTIN 09506000134352 and SSCCs
0 9506000 ...; tests/standards/gs1/testdata/README.md) and the made-up 药品标识码 of the
tests' 20-digit traceability codes."""


def license_demo_maker(node: Node, regulator: object) -> None:
    """Record the demo licences on ``node``, signed by ``regulator`` (NMPA's credentials)."""
    from carechain.api.client import build_transaction

    for licence in DEMO_LICENCES:
        tx = build_transaction(
            regulator, "demo", "drugs", "license", {"org": "sinopharm-mfg", **licence}
        )
        status = node.submit_one(tx, wait_s=10)
        if status.code != "ok":
            raise RuntimeError(f"licence {licence} refused: {status.message}")


def ca_of(consortium: Any, org: str) -> tuple[bytes, bytes]:
    """An organisation's CA certificate and key, from the consortium's directory."""
    from carechain.identity.keys import read_private_key

    base = consortium.directory / "orgs" / org
    return (base / "ca.pem").read_bytes(), read_private_key(base / "ca.key")


def new_member(consortium: Any, org: str, member_id: str, role: Any, days: int = 30) -> Any:
    """A key made by the member (a patient's own device), certified by the org's CA."""
    from datetime import UTC, datetime, timedelta

    from carechain.crypto.suite import DEFAULT
    from carechain.identity.certificates import fingerprint_of, issue_member_certificate
    from carechain.identity.wallet import Credentials

    now = datetime.now(UTC).replace(microsecond=0)
    ca_pem, ca_key = ca_of(consortium, org)
    key = DEFAULT.generate_private_key()
    pem = issue_member_certificate(
        ca_pem,
        ca_key,
        member_id,
        role,
        DEFAULT.public_key(key),
        now - timedelta(minutes=1),
        now + timedelta(days=days),
    )
    return Credentials(fingerprint_of(pem), pem, key)
