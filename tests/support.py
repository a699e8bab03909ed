"""Test helpers shared by several test modules (on the path via pytest's ``pythonpath``)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from carechain.api.app import create_app
from carechain.node.node import Node

CARECHAIN = [sys.executable, "-m", "carechain"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
