"""PeerLink against peers that misbehave at the HTTP level (real sockets on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from carechain.crypto.suite import DEFAULT
from carechain.node.peers import PeerLink

Serve = Callable[[socket.socket], None]


@pytest.fixture
def bad_peer() -> Iterator[Callable[[Serve], str]]:
    """Start a one-connection-at-a-time server running ``serve`` on each connection."""
    servers: list[socket.socket] = []
    stop = threading.Event()

    def start(serve: Serve) -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        servers.append(server)

        def loop() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                with conn:
                    conn.recv(65536)
                    with contextlib.suppress(OSError):  # the client may hang up first
                        serve(conn)

        threading.Thread(target=loop, daemon=True).start()
        return f"http://127.0.0.1:{server.getsockname()[1]}"

    yield start
    stop.set()
    for server in servers:
        server.close()


def link(url: str, **kw: object) -> PeerLink:
    key = DEFAULT.generate_private_key()
    return PeerLink([url], DEFAULT, "ab" * 32, key, **kw)  # type: ignore[arg-type]


def test_a_peer_that_trickles_its_answer_is_given_up_on(
    bad_peer: Callable[[Serve], str],
) -> None:
    def trickle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(40):
            conn.sendall(b"{")
            time.sleep(0.1)

    url = bad_peer(trickle)
    started = time.monotonic()
    assert link(url, timeout_s=1.0).fetch_block_from(url, 1) is None
    assert time.monotonic() - started < 2.5


def test_a_peer_that_sends_an_oversize_body_is_given_up_on(
    bad_peer: Callable[[Serve], str],
) -> None:
    def flood(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4000000\r\n\r\n")
        conn.sendall(b" " * 4_000_000)

    url = bad_peer(flood)
    assert link(url, max_block_bytes=1_000_000).fetch_block_from(url, 1) is None


def test_a_peer_that_serves_garbage_or_nothing_yields_no_block(
    bad_peer: Callable[[Serve], str],
) -> None:
    def garbage(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!")

    url = bad_peer(garbage)
    assert link(url).fetch_block_from(url, 1) is None
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert link(closed, timeout_s=1.0).fetch_block(1) is None
