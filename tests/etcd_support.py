"""Helpers for tests of peers ordering through etcd (fixtures in tests/ordering/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from carechain.api.client import build_transaction
from carechain.ledger.transaction import SignedTransaction
from carechain.node.config import load_config
from carechain.node.consortium import Consortium
from carechain.node.node import Node
from carechain.ordering.etcd import EtcdOrderer
from support import Server

PEERS = ["pumch", "chaoyang-clinic", "yf-pharmacy"]


class Peers:
    def __init__(self, network: Consortium) -> None:
        self.network = network
        self.nodes: dict[str, Node] = {}
        self.servers: dict[str, Server] = {}

    def start(self, org: str, *, serve: bool = False) -> Node:
        """Start a peer in this process; with ``serve``, its REST API on its own port."""
        config = load_config(self.network.peer_dirs[org])
        node = Node(config)
        node.start()
        self.nodes[org] = node
        if serve:
            self.servers[org] = Server(node, config.api_port).__enter__()
        return node

    def stop(self, org: str) -> None:
        server = self.servers.pop(org, None)
        if server is not None:
            server.__exit__()
        self.nodes.pop(org).stop()

    def stop_all(self) -> None:
        for org in list(self.nodes):
            self.stop(org)

    def wait_same_height(self, height: int, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if all(n.state.height >= height for n in self.nodes.values()):
                return
            time.sleep(0.02)
        heights = {org: n.state.height for org, n in self.nodes.items()}
        raise AssertionError(f"peers did not reach height {height} in {seconds}s: {heights}")

    def cutters(self) -> list[str]:
        return [
            org
            for org, n in self.nodes.items()
            if isinstance(n.ordering, EtcdOrderer) and n.ordering.is_cutter
        ]


def signer(network: Consortium, name: str = "pumch/dr-wang") -> Callable[[int], SignedTransaction]:
    creds = network.members[name]
    return lambda n: build_transaction(
        creds, network.chain, "notary", "anchor", {"digest": f"{n:064x}"}
    )
