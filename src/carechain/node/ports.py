"""Ports for processes a node or ``carechain network`` starts on 127.0.0.1.

A port that ``bind(0)`` hands out comes from the kernel's ephemeral range,
where any outgoing connection (an etcd client's, an HTTP client's) may take
it before the process meant to listen on it starts, seconds later. So ports
are chosen below that range, and held open together while choosing so that
none repeats.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from carechain.errors import NodeFailure

HOST = "127.0.0.1"


def ephemeral_start() -> int:
    """Where the kernel's ephemeral ports begin (Linux; 32768 when it cannot tell)."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return max(2048, int(text.split()[0]))
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now, below the ephemeral range."""
    low = ephemeral_start()
    first = min(20_000, low // 2)
    candidates = random.sample(range(first, low), k=min(1_000, low - first))
    sockets: list[socket.socket] = []
    try:
        for port in candidates:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((HOST, port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
            if len(sockets) == count:
                return [int(s.getsockname()[1]) for s in sockets]
        raise NodeFailure(f"found no {count} free ports below {low} on {HOST}")
    finally:
        for sock in sockets:
            sock.close()
