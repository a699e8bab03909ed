"""Node configuration: ``node.toml`` in the node's data directory.

Example::

    chain = "demo"
    suite = "intl"
    orderer_key = "keys/orderer.key"
    orderer_cert = "keys/orderer.pem"
    peer_key = "keys/peer.key"
    peer_cert = "keys/peer.pem"

    [api]
    host = "127.0.0.1"
    port = 8700

    [ordering]
    backend = "solo"
    max_txs = 1000
    max_wait_ms = 50

A peer of a consortium orders through etcd instead::

    [ordering]
    backend = "etcd"
    endpoints = ["10.0.1.5:2379", "10.0.2.5:2379", "10.0.3.5:2379"]
    peer_id = "pumch"          # names this peer's keys in etcd
    max_txn_ops = 128          # etcd's --max-txn-ops
    lease_ttl_s = 2            # how fast another peer takes over cutting
    retain_blocks = 10000      # blocks kept in etcd; older ones come from peers
    compact_every = 1000       # blocks between compactions of etcd's history

    [network]
    peers = ["https://peer.chaoyang.example:8700"]   # other peers' REST APIs

    [vault]
    orgs = ["pumch"]    # organisations whose health records this node keeps (default: its own)

Relative paths are relative to the data directory. ``verify_workers = N`` (top level)
sets the worker processes that decode and check transactions in bulk (default: one per
CPU core, at most 4; 0 keeps that work on the node's own threads).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carechain.errors import ConfigError

CONFIG_NAME = "node.toml"
GENESIS_NAME = "genesis.json"


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    chain: str
    suite: str
    orderer_key: Path | None
    orderer_cert: Path | None
    peer_key: Path
    peer_cert: Path
    api_host: str = "127.0.0.1"
    api_port: int = 8700
    ordering_backend: str = "solo"
    max_txs: int = 1000
    max_wait_ms: int = 50
    fsync: bool = True
    verify_workers: int = 1
    """Worker processes that decode batches and check signatures in bulk (0: on the node's
    threads). ``node.toml`` defaults to one per CPU core, at most 4 (``default_workers``)."""
    etcd_endpoints: tuple[str, ...] = ()
    peer_id: str = ""
    max_txn_ops: int = 128
    lease_ttl_s: int = 2
    retain_blocks: int = 10_000
    compact_every: int = 1000
    peers: tuple[str, ...] = ()
    """Other peers' REST API base URLs: where blocks beyond etcd's window come from."""
    vault_orgs: tuple[str, ...] = ()
    """Organisations whose records this node keeps in its vault (empty: the node's own)."""

    @property
    def genesis_path(self) -> Path:
        return self.data_dir / GENESIS_NAME

    @property
    def blocks_dir(self) -> Path:
        return self.data_dir / "blocks"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "state.sqlite"


def _get(doc: dict[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in doc:
        if default is ...:
            raise ConfigError(f"{where}: {key} is missing")
        return default
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {key} must be {kind.__name__}")
    return value


def load_config(data_dir: Path | str) -> NodeConfig:
    data = Path(data_dir)
    path = data / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(f"{path} not found: is {data} a carechain node directory?")
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    where = str(path)
    api = _get(doc, "api", dict, where, {})
    ordering = _get(doc, "ordering", dict, where, {})

    def rel(value: str | None) -> Path | None:
        return None if value is None else data / value

    orderer_key = rel(_get(doc, "orderer_key", str, where, None))
    orderer_cert = rel(_get(doc, "orderer_cert", str, where, None))
    peer_key = rel(_get(doc, "peer_key", str, where))
    peer_cert = rel(_get(doc, "peer_cert", str, where))
    assert peer_key is not None and peer_cert is not None
    network = _get(doc, "network", dict, where, {})
    vault = _get(doc, "vault", dict, where, {})
    backend = _get(ordering, "backend", str, where + " [ordering]", "solo")
    if backend not in ("solo", "etcd"):
        raise ConfigError(f"{where}: [ordering] backend must be solo or etcd, not {backend!r}")
    endpoints = _str_list(ordering, "endpoints", where + " [ordering]")
    if backend == "etcd" and not endpoints:
        raise ConfigError(f"{where}: [ordering] endpoints must list the etcd members")
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{where}: [ordering] endpoint {endpoint!r} must be host:port")
    max_txs = _get(ordering, "max_txs", int, where + " [ordering]", 1000)
    max_wait = _get(ordering, "max_wait_ms", int, where + " [ordering]", 50)
    if not 1 <= max_txs <= 100_000 or not 1 <= max_wait <= 60_000:
        raise ConfigError(f"{where}: [ordering] max_txs or max_wait_ms out of range")
    workers = _get(doc, "verify_workers", int, where, default_workers())
    if not 0 <= workers <= 64:
        raise ConfigError(f"{where}: verify_workers must be 0 to 64, got {workers}")
    return NodeConfig(
        data_dir=data,
        chain=_get(doc, "chain", str, where),
        suite=_get(doc, "suite", str, where, "intl"),
        orderer_key=orderer_key,
        orderer_cert=orderer_cert,
        peer_key=peer_key,
        peer_cert=peer_cert,
        api_host=_get(api, "host", str, where + " [api]", "127.0.0.1"),
        api_port=_get(api, "port", int, where + " [api]", 8700),
        ordering_backend=backend,
        max_txs=max_txs,
        max_wait_ms=max_wait,
        fsync=_get(doc, "fsync", bool, where, True),
        verify_workers=workers,
        etcd_endpoints=tuple(endpoints),
        peer_id=_get(ordering, "peer_id", str, where + " [ordering]", data.resolve().name),
        max_txn_ops=_get(ordering, "max_txn_ops", int, where + " [ordering]", 128),
        lease_ttl_s=_get(ordering, "lease_ttl_s", int, where + " [ordering]", 2),
        retain_blocks=_get(ordering, "retain_blocks", int, where + " [ordering]", 10_000),
        compact_every=_get(ordering, "compact_every", int, where + " [ordering]", 1000),
        peers=tuple(_str_list(network, "peers", where + " [network]")),
        vault_orgs=tuple(_str_list(vault, "orgs", where + " [vault]")),
    )


def default_workers() -> int:
    """One worker process per CPU core, at most 4. With a single worker, every batch's
    decoding and signature checks queue behind one another: on 2 cores, a second worker
    took transfers from about 7,100 to 7,800 a second (benchmarks/finance.py)."""
    return max(1, min(os.cpu_count() or 1, 4))


def _str_list(doc: dict[str, Any], key: str, where: str) -> list[str]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return list(value)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def render_config(
    chain: str,
    suite: str,
    api_port: int,
    *,
    max_txs: int = 1000,
    max_wait_ms: int = 50,
    etcd_endpoints: list[str] | None = None,
    peer_id: str = "",
    max_txn_ops: int = 128,
    peers: list[str] | None = None,
    vault_orgs: list[str] | None = None,
) -> str:
    """node.toml for a node: solo ordering, or etcd when ``etcd_endpoints`` are given."""
    if etcd_endpoints:
        ordering = (
            "\n[ordering]\n"
            'backend = "etcd"\n'
            f"endpoints = {_toml_list(etcd_endpoints)}\n"
            f'peer_id = "{peer_id}"\n'
            f"max_txn_ops = {max_txn_ops}\n"
            f"max_txs = {max_txs}\n"
            f"max_wait_ms = {max_wait_ms}\n"
            "\n[network]\n"
            f"peers = {_toml_list(peers or [])}\n"
        )
    else:
        ordering = (
            f'\n[ordering]\nbackend = "solo"\nmax_txs = {max_txs}\nmax_wait_ms = {max_wait_ms}\n'
        )
    vault = f"\n[vault]\norgs = {_toml_list(vault_orgs)}\n" if vault_orgs else ""
    return (
        f'chain = "{chain}"\n'
        f'suite = "{suite}"\n'
        'orderer_key = "keys/orderer.key"\n'
        'orderer_cert = "keys/orderer.pem"\n'
        'peer_key = "keys/peer.key"\n'
        'peer_cert = "keys/peer.pem"\n'
        "\n[api]\n"
        'host = "127.0.0.1"\n'
        f"port = {api_port}\n" + ordering + vault
    )
