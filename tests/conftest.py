"""Shared fixtures: a real consortium (keys, certificates, genesis) and real nodes.

The consortium is made once per session with the demo configuration; each
test that needs a node gets its own copy of the node's data directory, so
blocks and state are real files in the test's own temporary directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from carechain.api.client import NodeClient
from carechain.identity.wallet import Credentials
from carechain.node.config import load_config
from carechain.node.consortium import DEMO_CONSORTIUM, Consortium, create_consortium
from carechain.node.node import Node
from support import Server


@pytest.fixture(scope="session")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return create_consortium(DEMO_CONSORTIUM, tmp_path_factory.mktemp("consortium") / "demo")


@pytest.fixture
def member(consortium: Consortium) -> Callable[[str], Credentials]:
    return lambda name: consortium.members[name]


@pytest.fixture
def node_dir(consortium: Consortium, tmp_path: Path) -> Path:
    target = tmp_path / "node"
    shutil.copytree(consortium.node_dir, target)
    return target


@pytest.fixture
def node(node_dir: Path) -> Iterator[Node]:
    config = load_config(node_dir)
    running = Node(config)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(node: Node) -> Iterator[Server]:
    with Server(node) as server:
        yield server


@pytest.fixture
def as_member(
    api: Server, member: Callable[[str], Credentials]
) -> Iterator[Callable[[str], NodeClient]]:
    """A client of the node's API signing as a demo member (``org/member``), closed after."""
    clients: list[NodeClient] = []

    def make(name: str) -> NodeClient:
        clients.append(NodeClient(api.url, member(name)))
        return clients[-1]

    yield make
    for c in clients:
        c.close()
