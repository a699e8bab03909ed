"""``carechain network``: a local consortium of peers ordering through an etcd cluster.

``network up`` creates (on first run) the demo consortium with one peer per
organisation, starts the etcd members and the peer processes on 127.0.0.1,
each with its own data directory, and returns once every peer answers.
``network status`` shows each peer's height, lag and health and each etcd
member's; ``network down`` stops everything and keeps the data, so the next
``up`` resumes where it stopped. The layout of the directory::

    network.json              ports, process ids, the etcd cluster's description
    consortium/orgs/...       CAs and member identities (use with --as)
    consortium/peers/<org>/   each peer's data directory (node.toml, blocks, state)
    etcd/<member>/            each etcd member's data directory
    logs/<org>.log            each peer's log
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from carechain.cli.common import fail, friendly
from carechain.errors import CarechainError, ConfigError, NodeFailure
from carechain.node.ports import free_ports

app = typer.Typer(help="Run a local consortium: peers ordering through an etcd cluster.")

DirOption = Annotated[
    Path, typer.Option("--dir", help="The network's directory.", envvar="CARECHAIN_NETWORK")
]
DEFAULT_DIR = Path(".carechain-net")
STATE_FILE = "network.json"


def _orgs() -> list[str]:
    import tomllib

    from carechain.node.consortium import DEMO_CONSORTIUM

    return [org["id"] for org in tomllib.loads(DEMO_CONSORTIUM)["orgs"]]


def _read_state(root: Path) -> dict[str, Any] | None:
    path = root / STATE_FILE
    if not path.exists():
        return None
    try:
        doc: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is unreadable: {exc}") from exc
    return doc


def _write_state(root: Path, state: dict[str, Any]) -> None:
    tmp = root / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2), "utf-8")
    os.replace(tmp, root / STATE_FILE)


def _pid_is_peer(pid: int | None, data_dir: str) -> bool:
    """Whether ``pid`` is the `carechain up` of this peer (not a reused pid)."""
    if not pid:
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return argv[1:5] == [b"-m", b"carechain", b"up", b"--data"] and data_dir.encode() in argv


def _health(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    import httpx

    try:
        response = httpx.get(url + "/health", timeout=timeout)
        doc: dict[str, Any] = response.json()
        return doc
    except (httpx.HTTPError, ValueError):
        return None


def _start_peer(root: Path, peer: dict[str, Any]) -> int:
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    with (logs / f"{peer['org']}.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "carechain", "up", "--data", peer["data_dir"]],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc.pid


def _stop_pid(pid: int, timeout: float = 15.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _create(root: Path, peers: int, etcd_members: int) -> dict[str, Any]:
    from carechain.node.consortium import DEMO_CONSORTIUM, PeerSpec, create_consortium
    from carechain.node.etcd_process import EtcdCluster

    orgs = _orgs()
    if not 1 <= peers <= len(orgs):
        raise ConfigError(f"--peers must be 1 to {len(orgs)} (one per demo organisation)")
    if etcd_members not in (1, 3, 5):
        raise ConfigError("--etcd-members must be 1, 3 or 5 (an odd number for Raft)")
    root.mkdir(parents=True, exist_ok=True)
    cluster = EtcdCluster(root / "etcd", members=etcd_members)
    specs = [PeerSpec(org, port) for org, port in zip(orgs[:peers], free_ports(peers), strict=True)]
    consortium = create_consortium(
        DEMO_CONSORTIUM,
        root / "consortium",
        peers=specs,
        etcd_endpoints=cluster.endpoints,
        max_txn_ops=cluster.max_txn_ops,
    )
    return {
        "version": 1,
        "chain": consortium.chain,
        "etcd": json.loads(cluster.to_json()),
        "peers": [
            {
                "org": spec.org,
                "url": f"http://127.0.0.1:{spec.api_port}",
                "data_dir": str(consortium.peer_dirs[spec.org].resolve()),
                "pid": None,
            }
            for spec in specs
        ],
    }


@app.command("up")
@friendly
def up(
    root: DirOption = DEFAULT_DIR,
    peers: Annotated[int, typer.Option(help="Peers, one per demo organisation.")] = 3,
    etcd_members: Annotated[int, typer.Option(help="etcd members (1, 3 or 5).")] = 3,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every peer.")] = 60.0,
) -> None:
    """Start the local consortium (creating it on first run); resume it after `down`."""
    from carechain.node.etcd_process import EtcdCluster

    state = _read_state(root)
    if state is None:
        state = _create(root, peers, etcd_members)
        _write_state(root, state)  # from here on, down and a later up know the network
        typer.echo(f"created a consortium of {peers} peers and {etcd_members} etcd members")
    elif (peers, etcd_members) != (len(state["peers"]), len(state["etcd"]["members"])):
        typer.echo(
            f"resuming the network in {root} as it was made: {len(state['peers'])} peers and "
            f"{len(state['etcd']['members'])} etcd members (--peers and --etcd-members apply "
            "to a new network only)",
            err=True,
        )
    cluster = EtcdCluster.from_json(json.dumps(state["etcd"]))
    try:
        running = cluster.pids
        if not running:
            cluster.start()
        for i, spec in enumerate(cluster.specs):
            if running and spec.name not in running:
                cluster.start_member(i)
        state["etcd"] = json.loads(cluster.to_json())
        _write_state(root, state)
        for peer in state["peers"]:
            if not _pid_is_peer(peer.get("pid"), peer["data_dir"]):
                peer["pid"] = _start_peer(root, peer)
                _write_state(root, state)
        deadline = time.monotonic() + timeout
        waiting = list(state["peers"])
        while waiting and time.monotonic() < deadline:
            waiting = [p for p in waiting if _health(p["url"]) is None]
            for peer in waiting:
                if not _pid_is_peer(peer["pid"], peer["data_dir"]):
                    raise NodeFailure(
                        f"peer {peer['org']} exited; see {root / 'logs' / (peer['org'] + '.log')}"
                    )
            time.sleep(0.2)
        if waiting:
            names = ", ".join(p["org"] for p in waiting)
            raise NodeFailure(f"peers {names} did not answer within {timeout:.0f}s; see logs/")
    except BaseException:
        # Whatever failed (or Ctrl-C), leave nothing running that down cannot find.
        _stop_all(root, state, cluster)
        raise
    _print_status(root, state)
    typer.echo(
        f"identities: {root / 'consortium' / 'orgs'}/<org>/members/<member>; "
        f"stop with: carechain network down --dir {root}"
    )


def _stop_all(root: Path, state: dict[str, Any], cluster: Any = None) -> None:
    """Stop every peer and etcd member (``cluster``: the live object, when there is one)."""
    from carechain.node.etcd_process import EtcdCluster

    for peer in state["peers"]:
        if _pid_is_peer(peer.get("pid"), peer["data_dir"]):
            _stop_pid(peer["pid"])
        peer["pid"] = None
    if cluster is None:
        cluster = EtcdCluster.from_json(json.dumps(state["etcd"]))
    cluster.stop()
    state["etcd"] = json.loads(cluster.to_json())
    _write_state(root, state)


@app.command("down")
@friendly
def down(root: DirOption = DEFAULT_DIR) -> None:
    """Stop every peer and etcd member; the data stays for the next `up`."""
    state = _read_state(root)
    if state is None:
        fail(f"no network in {root} (start one with: carechain network up --dir {root})")
        return
    _stop_all(root, state)
    typer.echo(f"stopped {len(state['peers'])} peers and the etcd cluster; data kept in {root}")


def _peer_status(root: Path, peer: dict[str, Any]) -> dict[str, Any]:
    from carechain.api.client import NodeClient
    from carechain.identity.wallet import load_credentials

    doc: dict[str, Any] = {"org": peer["org"], "url": peer["url"]}
    running = _pid_is_peer(peer.get("pid"), peer["data_dir"])
    doc["process"] = "running" if running else "stopped"
    health = _health(peer["url"]) if running else None
    if health is None:
        doc["healthy"] = False
        return doc
    admin = root / "consortium" / "orgs" / peer["org"] / "members" / "admin"
    try:
        with NodeClient(peer["url"], load_credentials(admin), timeout=3) as client:
            status = client.request("GET", "/v1/status")
    except (CarechainError, OSError) as exc:
        doc.update(healthy=bool(health.get("healthy")), height=health.get("height"), error=str(exc))
        return doc
    orderer = status.get("orderer", {})
    doc.update(
        healthy=bool(status.get("healthy")),
        height=status.get("height"),
        state_digest=status.get("state_digest"),
        cutter=bool(orderer.get("cutter")),
        failure=status.get("failure"),
        forks=int(status.get("forks") or 0),
    )
    return doc


def _print_status(root: Path, state: dict[str, Any], as_json: bool = False) -> None:
    from carechain.node.etcd_process import EtcdCluster

    peers = [_peer_status(root, peer) for peer in state["peers"]]
    top = max((p.get("height") or 0 for p in peers), default=0)
    for p in peers:
        if p.get("height") is not None:
            p["lag"] = top - p["height"]
    cluster = EtcdCluster.from_json(json.dumps(state["etcd"]))
    etcd = cluster.member_health()
    digests = {p["state_digest"] for p in peers if p.get("state_digest") and p.get("height") == top}
    if as_json:
        typer.echo(json.dumps({"peers": peers, "etcd": etcd, "agree": len(digests) <= 1}, indent=2))
        return
    typer.echo(f"chain {state['chain']!r}: {len(peers)} peers, {len(etcd)} etcd members")
    for p in peers:
        if not p.get("healthy") and p.get("height") is None:
            typer.echo(f"  peer {p['org']:<16} {p['url']:<24} {p['process']}, not answering")
            continue
        role = "cutter" if p.get("cutter") else "follower"
        health = "healthy" if p.get("healthy") else f"FAILED: {p.get('failure')}"
        forked = f"  FORKS SEEN: {p['forks']} (carechain forks)" if p.get("forks") else ""
        typer.echo(
            f"  peer {p['org']:<16} {p['url']:<24} height {p['height']:<6} "
            f"lag {p.get('lag', 0):<4} {role:<8} {health}{forked}"
        )
    for m in etcd:
        if m["up"]:
            lead = "leader" if m["leader"] else "member"
            typer.echo(
                f"  etcd {m['name']:<16} {m['endpoint']:<24} {lead:<8} raft index {m['raft_index']}"
            )
        else:
            typer.echo(f"  etcd {m['name']:<16} {m['endpoint']:<24} DOWN ({m.get('error', '')})")
    if len(digests) > 1:
        typer.echo("  WARNING: peers at the same height report different state digests")


@app.command("status")
@friendly
def status(
    root: DirOption = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Heights, lag, cutter and health of every peer; health and leader of every etcd member."""
    state = _read_state(root)
    if state is None:
        fail(f"no network in {root} (start one with: carechain network up --dir {root})")
        return
    _print_status(root, state, as_json)
