"""A local etcd cluster of real etcd processes on 127.0.0.1.

Used by the tests of the etcd ordering and by ``carechain network up``. The
processes are Debian's ``etcd-server`` (3.4), started directly (there is no
systemd): each in its own session, so a CLI process can exit and a later one
can re-attach with :meth:`EtcdCluster.from_json` and stop the cluster.

What callers may rely on:

* Only 127.0.0.1: nothing listens on another interface.
* Every wait is bounded, and no error path leaves a process behind: a start
  that fails stops what it started and raises :class:`NodeFailure` with the
  tail of the members' logs.
* A member keeps its data directory (``<base_dir>/<name>``) across
  :meth:`EtcdCluster.kill` and :meth:`EtcdCluster.start_member`; its log is
  ``<base_dir>/<name>.log``, appended to on every start.
* A pid is signalled only while ``/proc/<pid>/cmdline`` still shows etcd
  running on that member's data directory, so a stale state file never kills
  an unrelated process that reused the pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NotRequired, TypedDict

import pyetcd

from carechain.errors import ConfigError, NodeFailure
from carechain.node.ports import free_ports

HOST = "127.0.0.1"
INSTALL_HINT = "apt-get install etcd-server"
STATE_VERSION = 1
# How long kill() and the SIGKILL step of stop() wait for a process to go.
KILL_WAIT = 5.0
# Keep this many characters of each member's log in an error message.
LOG_TAIL_CHARS = 1500
# The gauge in etcd's /metrics of peers a member counts as connected (rafthttp).
ACTIVE_PEERS = "etcd_network_active_peers{"
# --initial-cluster-state: "new" bootstraps (ignored once a data dir exists), "existing" rejoins.
ClusterState = Literal["new", "existing"]


def find_etcd() -> str:
    """Path of the etcd binary: ``$CARECHAIN_ETCD``, else ``etcd`` on PATH, else /usr/bin/etcd.

    Raises :class:`ConfigError` when the chosen path is not an executable file.
    """
    override = os.environ.get("CARECHAIN_ETCD")
    if override:
        return _executable(override, "CARECHAIN_ETCD")
    return _executable(shutil.which("etcd") or "/usr/bin/etcd", "PATH")


def _executable(path: str, source: str) -> str:
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    raise ConfigError(f"etcd not found: {INSTALL_HINT} (no executable at {path}, from {source})")


@dataclass
class EtcdMemberSpec:
    """Name, ports and data directory of one member; it listens on 127.0.0.1 only."""

    name: str
    client_port: int
    peer_port: int
    data_dir: Path

    @property
    def client_url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.client_port}"


class MemberHealth(TypedDict):
    """One member's answer to a status request, or why it gave none."""

    name: str
    endpoint: str
    up: bool
    leader: bool
    raft_index: NotRequired[int]
    raft_term: NotRequired[int]
    error: NotRequired[str]


@dataclass
class _Process:
    """A started member: our own child (``child``), or a pid re-attached from JSON."""

    pid: int
    child: subprocess.Popen[bytes] | None

    def alive(self, spec: EtcdMemberSpec) -> bool:
        if self.child is not None:
            return self.child.poll() is None
        return _is_etcd_of(self.pid, spec)

    def send(self, spec: EtcdMemberSpec, signum: signal.Signals) -> None:
        if self.alive(spec):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def wait(self, spec: EtcdMemberSpec, deadline: float) -> bool:
        """Wait until the process is gone or ``deadline`` (monotonic); True if gone."""
        while self.alive(spec):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self.child is not None:
                try:
                    self.child.wait(timeout=remaining)
                except subprocess.TimeoutExpired:
                    return False
            else:
                time.sleep(min(0.05, remaining))
        return True


def _is_etcd_of(pid: int, spec: EtcdMemberSpec) -> bool:
    """True if ``pid`` is a live etcd serving ``spec``'s data directory (zombies are gone)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    # argv[0] is etcd, or an interpreter running a wrapper named like it.
    if not any("etcd" in os.path.basename(arg) for arg in argv[:2]):
        return False
    return f"--data-dir={spec.data_dir}" in argv and f"--name={spec.name}" in argv


def _wait_for_no_active_peers(spec: EtcdMemberSpec, deadline: float) -> None:
    """Wait until the member counts no peer as connected (its ``/metrics``), or ``deadline``."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{spec.client_url}/metrics", timeout=0.5) as answer:
                lines = answer.read().decode().splitlines()
            counts = [float(line.split()[-1]) for line in lines if line.startswith(ACTIVE_PEERS)]
        except (OSError, ValueError):
            return
        if not any(counts):
            return
        time.sleep(0.02)


def _member_client(spec: EtcdMemberSpec, timeout: float) -> Any:
    """A client of this one member; every call gives up after ``timeout`` seconds."""
    return pyetcd.client(host=HOST, port=spec.client_port, timeout=timeout)


class EtcdCluster:
    """A cluster of ``members`` etcd processes on 127.0.0.1, or of the given ``specs``.

    Without ``specs`` the members are named ``etcd0``, ``etcd1``, ... with free
    ports chosen now; their data must not exist yet (a cluster's data records
    its peers' ports, so an earlier cluster is reopened with :meth:`from_json`).
    ``binary`` overrides :func:`find_etcd`.
    """

    def __init__(
        self,
        base_dir: Path,
        members: int = 3,
        *,
        specs: list[EtcdMemberSpec] | None = None,
        max_txn_ops: int = 2048,
        max_request_bytes: int = 16 * 1024 * 1024,
        host: str = HOST,
        binary: str | None = None,
    ) -> None:
        if host != HOST:
            raise ConfigError(f"etcd cluster host {host!r}: only {HOST} is supported")
        if max_txn_ops < 1 or max_request_bytes < 1:
            raise ConfigError("max_txn_ops and max_request_bytes must be positive")
        self.base_dir = base_dir.resolve()
        if specs is None:
            if members < 1:
                raise ConfigError(f"an etcd cluster needs at least one member, not {members}")
            ports = free_ports(2 * members)
            specs = [
                EtcdMemberSpec(
                    f"etcd{i}", ports[2 * i], ports[2 * i + 1], self.base_dir / f"etcd{i}"
                )
                for i in range(members)
            ]
            for spec in specs:
                if (spec.data_dir / "member").exists():
                    raise ConfigError(
                        f"{spec.data_dir} holds an earlier cluster's data; "
                        "re-open it with EtcdCluster.from_json"
                    )
        names = [spec.name for spec in specs]
        ports_used = [port for spec in specs for port in (spec.client_port, spec.peer_port)]
        if not specs or len(set(names)) != len(names) or len(set(ports_used)) != len(ports_used):
            raise ConfigError("etcd member specs need at least one member, unique names and ports")
        self.specs = specs
        self.max_txn_ops = max_txn_ops
        self.max_request_bytes = max_request_bytes
        self.binary = binary
        self.token = f"carechain-{secrets.token_hex(8)}"
        self._processes: dict[str, _Process] = {}

    # -- starting -----------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        """Start every member and wait until each answers with the same leader.

        On failure or timeout every member is stopped and :class:`NodeFailure`
        raised with the tail of the logs; a missing binary is a ConfigError.
        """
        if self.pids:
            raise NodeFailure(f"etcd cluster already running: {self.pids}")
        try:
            for i in range(len(self.specs)):
                self._spawn(i, state="new")
            self._wait_until(timeout, self._all_agree_on_leader, self.specs)
        except BaseException:
            self._terminate(list(range(len(self.specs))), time.monotonic() + 1.0)
            raise

    def start_member(self, i: int, timeout: float = 20.0) -> None:
        """Restart member ``i`` on its existing data and wait until it knows the leader."""
        spec = self.specs[i]
        if spec.name in self.pids:
            raise NodeFailure(f"etcd member {spec.name} is already running")
        try:
            self._spawn(i, state="existing")
            self._wait_until(timeout, lambda probe: self._knows_leader(spec, probe), [spec])
        except BaseException:
            self.stop_member(i, timeout=1.0)
            raise

    def _command(self, spec: EtcdMemberSpec, binary: str, state: ClusterState) -> list[str]:
        initial = ",".join(f"{s.name}={s.peer_url}" for s in self.specs)
        return [
            binary,
            f"--name={spec.name}",
            f"--data-dir={spec.data_dir}",
            f"--listen-client-urls={spec.client_url}",
            f"--advertise-client-urls={spec.client_url}",
            f"--listen-peer-urls={spec.peer_url}",
            f"--initial-advertise-peer-urls={spec.peer_url}",
            f"--initial-cluster={initial}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={self.token}",
            f"--max-txn-ops={self.max_txn_ops}",
            f"--max-request-bytes={self.max_request_bytes}",
            "--logger=zap",
            "--log-outputs=stderr",
        ]

    def _spawn(self, i: int, state: ClusterState) -> None:
        spec = self.specs[i]
        binary = _executable(self.binary, "binary") if self.binary else find_etcd()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # Flags, not the caller's ETCD_* variables, configure the member.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        if "ETCD_UNSUPPORTED_ARCH" in os.environ:
            env["ETCD_UNSUPPORTED_ARCH"] = os.environ["ETCD_UNSUPPORTED_ARCH"]
        try:
            with self._log_file(spec).open("ab") as log:
                child = subprocess.Popen(
                    self._command(spec, binary, state),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=env,
                    start_new_session=True,
                )
        except OSError as exc:
            raise ConfigError(f"cannot run etcd at {binary}: {exc}") from exc
        self._processes[spec.name] = _Process(child.pid, child)

    def _wait_until(
        self, timeout: float, ready: Callable[[float], bool], watched: list[EtcdMemberSpec]
    ) -> None:
        """Poll ``ready(probe_timeout)``; NodeFailure if a watched member exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            for spec in watched:
                if not self._processes[spec.name].alive(spec):
                    raise NodeFailure(f"etcd member {spec.name} exited\n{self._log_tails(watched)}")
            if ready(min(1.0, max(0.1, deadline - time.monotonic()))):
                return
            if time.monotonic() >= deadline:
                names = ", ".join(spec.name for spec in watched)
                raise NodeFailure(
                    f"etcd ({names}) not ready within {timeout:g} s\n{self._log_tails(watched)}"
                )
            time.sleep(0.1)

    def _all_agree_on_leader(self, probe_timeout: float) -> bool:
        health = self.member_health(probe_timeout)
        leaders = [h["name"] for h in health if h["leader"]]
        return all(h["up"] for h in health) and len(leaders) == 1

    def _knows_leader(self, spec: EtcdMemberSpec, probe_timeout: float) -> bool:
        try:
            with _member_client(spec, probe_timeout) as client:
                return client.status().leader is not None
        except Exception:
            return False

    # -- stopping -----------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every member, SIGKILL those still running after ``timeout`` seconds.

        The leader goes last, once it sees no live peer: a leader stopped while
        a peer it still counts as connected is stopping too spends 7 s on a
        leadership transfer that cannot succeed; with no connected peer it
        exits at once.
        """
        deadline = time.monotonic() + timeout
        leader = self.leader(timeout=0.5) if len(self.pids) > 1 else None
        everyone = range(len(self.specs))
        self._terminate([i for i in everyone if self.specs[i].name != leader], deadline)
        for i in everyone:
            if self.specs[i].name == leader:
                _wait_for_no_active_peers(self.specs[i], min(deadline, time.monotonic() + 1.0))
                self._terminate([i], deadline)

    def stop_member(self, i: int, timeout: float = 10.0) -> None:
        """SIGTERM member ``i``, SIGKILL it if still running after ``timeout`` seconds."""
        self._terminate([i], time.monotonic() + timeout)

    def kill(self, i: int) -> None:
        """SIGKILL member ``i`` (a crash) and wait for it to go."""
        self._terminate([i], None)

    def _terminate(self, indexes: list[int], deadline: float | None) -> None:
        """SIGTERM members and wait until ``deadline`` (None: not at all), then SIGKILL the rest."""
        running = [
            (spec, self._processes[spec.name])
            for spec in (self.specs[i] for i in indexes)
            if spec.name in self._processes
        ]
        if deadline is not None:
            for spec, process in running:
                process.send(spec, signal.SIGTERM)
            running = [(s, p) for s, p in running if not p.wait(s, deadline)]
        for spec, process in running:
            process.send(spec, signal.SIGKILL)
        kill_deadline = time.monotonic() + KILL_WAIT
        stuck = {s.name for s, p in running if not p.wait(s, kill_deadline)}
        for i in indexes:
            if self.specs[i].name not in stuck:
                self._processes.pop(self.specs[i].name, None)
        if stuck:
            raise NodeFailure(f"etcd members {sorted(stuck)} survived SIGKILL for {KILL_WAIT:g} s")

    def __enter__(self) -> EtcdCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- looking ------------------------------------------------------------

    @property
    def endpoints(self) -> list[str]:
        """``host:port`` of every member's client URL, running or not."""
        return [spec.endpoint for spec in self.specs]

    @property
    def pids(self) -> dict[str, int]:
        """Pid of each member that is running now."""
        return {
            spec.name: self._processes[spec.name].pid
            for spec in self.specs
            if spec.name in self._processes and self._processes[spec.name].alive(spec)
        }

    def log_path(self, i: int) -> Path:
        """Member ``i``'s log file, appended to on every start."""
        return self._log_file(self.specs[i])

    def _log_file(self, spec: EtcdMemberSpec) -> Path:
        return self.base_dir / f"{spec.name}.log"

    def member_health(self, timeout: float = 1.0) -> list[MemberHealth]:
        """Ask each member for its status, each through its own client bounded by ``timeout``."""
        health: list[MemberHealth] = []
        for spec in self.specs:
            entry: MemberHealth = {
                "name": spec.name,
                "endpoint": spec.endpoint,
                "up": False,
                "leader": False,
            }
            try:
                with _member_client(spec, timeout) as client:
                    status = client.status()
            except Exception as exc:
                entry["error"] = str(exc) or type(exc).__name__
            else:
                entry["up"] = True
                entry["leader"] = status.leader is not None and status.leader.name == spec.name
                entry["raft_index"] = int(status.raft_index)
                entry["raft_term"] = int(status.raft_term)
            health.append(entry)
        return health

    def leader(self, timeout: float = 1.0) -> str | None:
        """Name of the member that says it leads, or None while there is no leader."""
        return next((h["name"] for h in self.member_health(timeout) if h["leader"]), None)

    def _log_tails(self, specs: list[EtcdMemberSpec]) -> str:
        tails = []
        for spec in specs:
            path = self._log_file(spec)
            try:
                text = path.read_text(errors="replace")
            except OSError:
                text = "(no log)"
            tails.append(f"--- {path} ---\n{text[-LOG_TAIL_CHARS:]}")
        return "\n".join(tails)

    # -- re-attaching -------------------------------------------------------

    def to_json(self) -> str:
        """Everything :meth:`from_json` needs to re-attach: specs, limits, running pids."""
        pids = self.pids
        members = [
            {**asdict(spec), "data_dir": str(spec.data_dir), "pid": pids.get(spec.name)}
            for spec in self.specs
        ]
        state = {
            "version": STATE_VERSION,
            "base_dir": str(self.base_dir),
            "binary": self.binary,
            "token": self.token,
            "max_txn_ops": self.max_txn_ops,
            "max_request_bytes": self.max_request_bytes,
            "members": members,
        }
        return json.dumps(state, indent=2)

    @classmethod
    def from_json(cls, text: str) -> EtcdCluster:
        """Re-attach to a cluster described by :meth:`to_json`, possibly of another process."""
        try:
            state = json.loads(text)
            if state["version"] != STATE_VERSION:
                raise ValueError(f"unknown version {state['version']!r}")
            specs = [
                EtcdMemberSpec(
                    m["name"], int(m["client_port"]), int(m["peer_port"]), Path(m["data_dir"])
                )
                for m in state["members"]
            ]
            pids = {m["name"]: int(m["pid"]) for m in state["members"] if m["pid"] is not None}
            cluster = cls(
                Path(state["base_dir"]),
                specs=specs,
                max_txn_ops=int(state["max_txn_ops"]),
                max_request_bytes=int(state["max_request_bytes"]),
                binary=state["binary"],
            )
            cluster.token = str(state["token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"not an etcd cluster state: {exc}") from exc
        for name, pid in pids.items():
            cluster._processes[name] = _Process(pid, None)
        return cluster
