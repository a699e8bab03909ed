"""Ports for the processes a node or ``carechain network`` starts."""

from __future__ import annotations

import socket

from carechain.node.ports import HOST, ephemeral_start, free_ports


def test_ports_are_free_below_the_ephemeral_range_and_never_handed_out_twice() -> None:
    """``network up`` chooses the etcd members' ports, then the peers': etcd has not
    started yet, so its ports are still free when the peers' are chosen. A port handed
    out lately is not handed out again, so a peer never gets an etcd member's port."""
    handed: list[int] = []
    for _ in range(20):
        handed.extend(free_ports(6))
    assert len(set(handed)) == len(handed) == 120
    assert all(port < ephemeral_start() for port in handed)
    for port in handed[:10]:  # each is free: a listener could bind it
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, port))
