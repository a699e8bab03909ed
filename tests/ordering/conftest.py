"""Fixtures for peers ordering through a real etcd cluster on 127.0.0.1."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from carechain.node.consortium import DEMO_CONSORTIUM, Consortium, PeerSpec, create_consortium
from carechain.node.etcd_process import EtcdCluster
from etcd_support import PEERS, Peers
from support import free_port

_chains = itertools.count()


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with EtcdCluster(tmp_path_factory.mktemp("etcd"), members=3) as cluster:
        yield cluster


@pytest.fixture
def network(etcd: EtcdCluster, tmp_path: Path) -> Consortium:
    """A fresh consortium (its own chain name, so its own keys in etcd) of three peers."""
    chain = f"net{next(_chains)}-{time.time_ns()}"
    config = DEMO_CONSORTIUM.replace('chain = "demo"', f'chain = "{chain}"')
    return create_consortium(
        config,
        tmp_path / "consortium",
        peers=[PeerSpec(org, free_port()) for org in PEERS],
        etcd_endpoints=etcd.endpoints,
    )


@pytest.fixture
def peers(network: Consortium) -> Iterator[Peers]:
    running = Peers(network)
    try:
        for org in PEERS:
            running.start(org)
        yield running
    finally:
        running.stop_all()
