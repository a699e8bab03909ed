"""EtcdCluster with real etcd processes on 127.0.0.1: start, crash, rejoin, re-attach, refusals.

Each test that starts a cluster takes up to about 2 s (etcd 3.4 waits on its peers
for a second or two while bootstrapping); the whole file stays under 20 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyetcd
import pytest

from carechain.errors import ConfigError, NodeFailure
from carechain.node.etcd_process import EtcdCluster, find_etcd

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

STARTER = """
import sys
from pathlib import Path
from carechain.node.etcd_process import EtcdCluster
cluster = EtcdCluster(Path(sys.argv[1]))
cluster.start()
print(cluster.to_json())
"""


def running(pid: int) -> bool:
    """True while ``pid`` is a process that has not exited (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def client_of(cluster: EtcdCluster, i: int) -> Any:
    return pyetcd.client(host="127.0.0.1", port=cluster.specs[i].client_port, timeout=5)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    with EtcdCluster(tmp_path / "etcd") as started:
        yield started
    assert not any(running(pid) for pid in started.pids.values())


def test_three_members_start_and_a_write_through_one_is_read_through_another(
    cluster: EtcdCluster,
) -> None:
    health = cluster.member_health()
    assert [h["up"] for h in health] == [True, True, True]
    assert [h["name"] for h in health if h["leader"]] == [cluster.leader()]
    assert len(cluster.pids) == 3
    assert all(endpoint.startswith("127.0.0.1:") for endpoint in cluster.endpoints)

    with client_of(cluster, 0) as first:
        first.put("greeting", "hello")
    with client_of(cluster, 2) as third:
        value, _ = third.get("greeting")
    assert value == b"hello"


def test_killed_follower_leaves_writes_working_and_rejoins_with_the_data(
    cluster: EtcdCluster,
) -> None:
    leader = cluster.leader()
    follower = next(i for i, spec in enumerate(cluster.specs) if spec.name != leader)
    survivor = next(i for i in range(3) if i != follower)
    pid = cluster.pids[cluster.specs[follower].name]

    cluster.kill(follower)
    assert not running(pid)
    assert cluster.specs[follower].name not in cluster.pids
    down = cluster.member_health()[follower]
    assert not down["up"] and down["error"]
    with client_of(cluster, survivor) as client:
        client.put("while-down", "written")

    cluster.start_member(follower)
    assert len(cluster.pids) == 3
    with client_of(cluster, follower) as rejoined:
        value, _ = rejoined.get("while-down")
    assert value == b"written"


def test_stop_after_a_rejoin_does_not_wait_out_a_leadership_transfer(
    cluster: EtcdCluster,
) -> None:
    # The leader, stopped while it still counted a just-stopped rejoined follower as
    # connected, tried to hand over to it and gave up only after etcd's 7 s timeout.
    follower = next(i for i, spec in enumerate(cluster.specs) if spec.name != cluster.leader())
    cluster.kill(follower)
    cluster.start_member(follower)
    pids = list(cluster.pids.values())

    started = time.monotonic()
    cluster.stop()
    assert time.monotonic() - started < 3
    assert not any(running(pid) for pid in pids)


def test_a_later_process_reattaches_from_json_and_stop_leaves_no_etcd(tmp_path: Path) -> None:
    # The cluster is started by another process that exits, as `carechain network up` would.
    started = subprocess.run(
        [sys.executable, "-c", STARTER, str(tmp_path / "etcd")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    cluster = EtcdCluster.from_json(started.stdout)
    pids = [m["pid"] for m in json.loads(started.stdout)["members"]]
    try:
        assert sorted(cluster.pids.values()) == sorted(pids)
        assert all(running(pid) for pid in pids)
        assert cluster.leader() is not None
        with client_of(cluster, 1) as client:
            client.put("reattached", "yes")
    finally:
        cluster.stop()
    assert not any(running(pid) for pid in pids)
    assert cluster.pids == {}


def test_stale_state_never_signals_a_process_that_reused_the_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        state = json.loads(EtcdCluster(tmp_path / "etcd", members=1).to_json())
        state["members"][0]["pid"] = bystander.pid
        cluster = EtcdCluster.from_json(json.dumps(state))
        assert cluster.pids == {}
        cluster.stop()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait(timeout=5)


def test_start_with_a_missing_binary_is_a_config_error(tmp_path: Path) -> None:
    cluster = EtcdCluster(tmp_path / "etcd", binary=str(tmp_path / "no-such-etcd"))
    with pytest.raises(ConfigError, match="etcd not found: apt-get install etcd-server"):
        cluster.start()
    assert cluster.pids == {}


def test_carechain_etcd_pointing_nowhere_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARECHAIN_ETCD", str(tmp_path / "no-such-etcd"))
    with pytest.raises(ConfigError, match="CARECHAIN_ETCD"):
        find_etcd()
    monkeypatch.delenv("CARECHAIN_ETCD")
    assert Path(find_etcd()).name == "etcd"


def test_a_member_that_exits_at_once_fails_the_start_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "etcd"
    fake.write_text("#!/bin/sh\necho 'cannot bind: address already in use' >&2\nexit 1\n")
    fake.chmod(0o755)
    cluster = EtcdCluster(tmp_path / "cluster", binary=str(fake))
    with pytest.raises(NodeFailure, match=r"(?s)exited.*address already in use"):
        cluster.start()
    assert cluster.pids == {}


def test_a_start_that_times_out_stops_every_member(tmp_path: Path) -> None:
    hung = tmp_path / "etcd"
    hung.write_text(f"#!/bin/sh\necho $$ >> {tmp_path / 'pids'}\nexec sleep 30\n")
    hung.chmod(0o755)
    cluster = EtcdCluster(tmp_path / "cluster", binary=str(hung))
    with pytest.raises(NodeFailure, match="not ready within 1 s"):
        cluster.start(timeout=1)
    pids = [int(line) for line in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 3
    assert not any(running(pid) for pid in pids)


def test_a_damaged_state_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not an etcd cluster state"):
        EtcdCluster.from_json('{"version": 1, "members": []}')
    with pytest.raises(ConfigError, match="not an etcd cluster state"):
        EtcdCluster.from_json("not json")
