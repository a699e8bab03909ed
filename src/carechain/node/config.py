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

Relative paths are relative to the data directory.
"""

from __future__ import annotations

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
    """Worker processes that check signatures in bulk (0: check on the node's threads)."""

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
    max_txs = _get(ordering, "max_txs", int, where + " [ordering]", 1000)
    max_wait = _get(ordering, "max_wait_ms", int, where + " [ordering]", 50)
    if not 1 <= max_txs <= 100_000 or not 1 <= max_wait <= 60_000:
        raise ConfigError(f"{where}: [ordering] max_txs or max_wait_ms out of range")
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
        ordering_backend=_get(ordering, "backend", str, where + " [ordering]", "solo"),
        max_txs=max_txs,
        max_wait_ms=max_wait,
        fsync=_get(doc, "fsync", bool, where, True),
        verify_workers=_get(doc, "verify_workers", int, where, 1),
    )


def render_config(
    chain: str, suite: str, api_port: int, *, max_txs: int = 1000, max_wait_ms: int = 50
) -> str:
    return (
        f'chain = "{chain}"\n'
        f'suite = "{suite}"\n'
        'orderer_key = "keys/orderer.key"\n'
        'orderer_cert = "keys/orderer.pem"\n'
        'peer_key = "keys/peer.key"\n'
        'peer_cert = "keys/peer.pem"\n'
        "\n[api]\n"
        'host = "127.0.0.1"\n'
        f"port = {api_port}\n"
        "\n[ordering]\n"
        'backend = "solo"\n'
        f"max_txs = {max_txs}\n"
        f"max_wait_ms = {max_wait_ms}\n"
    )
