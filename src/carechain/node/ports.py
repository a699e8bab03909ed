"""Ports for processes a node or ``carechain network`` starts on 127.0.0.1.

A port that ``bind(0)`` hands out comes from the kernel's ephemeral range,
where any outgoing connection (an etcd client's, an HTTP client's) may take
it before the process meant to listen on it starts, seconds later. So ports
are chosen below that range, and held open together while choosing so that
none repeats. Nor does a port handed out recently by this process: ``network
up`` chooses the etcd members' ports and then the peers', and until etcd
starts its ports are free, so a peer could be given one of them.
"""

from __future__ import annotations

import random
import socket
import threading
from collections import deque
from pathlib import Path

from carechain.errors import NodeFailure

HOST = "127.0.0.1"

_RECENT: deque[int] = deque(maxlen=2_000)
"""Ports handed out lately, which their processes may not have bound yet."""
_RECENT_LOCK = threading.Lock()


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
    with _RECENT_LOCK:
        recent = set(_RECENT)
        candidates = random.sample(range(first, low), k=min(1_000 + len(recent), low - first))
        sockets: list[socket.socket] = []
        try:
            for port in candidates:
                if port in recent:
                    continue
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.bind((HOST, port))
                except OSError:
                    sock.close()
                    continue
                sockets.append(sock)
                if len(sockets) == count:
                    ports = [int(s.getsockname()[1]) for s in sockets]
                    _RECENT.extend(ports)
                    return ports
            raise NodeFailure(f"found no {count} free ports below {low} on {HOST}")
        finally:
            for sock in sockets:
                sock.close()
