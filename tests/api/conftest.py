"""Fixtures of the REST API tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from carechain.api.client import NodeClient
from carechain.identity.wallet import Credentials
from support import Server


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
