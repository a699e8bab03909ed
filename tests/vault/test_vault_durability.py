"""What the vault acknowledged survives ``kill -9``: a real child process, really killed."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from carechain.crypto.suite import CryptoSuite
from carechain.errors import RecordErased
from carechain.vault import Vault

CHILD = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from carechain.crypto.suite import IntlSuite
    from carechain.vault import Vault, new_salt

    vault = Vault(Path(sys.argv[1]), IntlSuite())
    vault.host("pumch")
    vault.put("pumch", "rec-first-0001", "p-1", "Observation", "vital-signs",
              b"acknowledged before the kill", new_salt(), now_ms=1)
    vault.commit("rec-first-0001")
    vault.put("pumch", "rec-erased-0001", "p-1", "Condition", "", b"to be erased",
              new_salt(), now_ms=2)
    vault.erase("rec-erased-0001", now_ms=3)
    print("ready", flush=True)

    lock = threading.Lock()

    def write(worker):
        n = 0
        while True:
            record_id = f"rec-w{worker}-{n:06d}"
            vault.put("pumch", record_id, f"p-{worker}", "Observation", "",
                      record_id.encode() * 50, new_salt(), now_ms=10 + n)
            vault.commit(record_id)
            with lock:  # one write per line, so lines never interleave
                sys.stdout.write(record_id + "\\n")
                sys.stdout.flush()
            n += 1

    for worker in range(4):
        threading.Thread(target=write, args=(worker,), daemon=True).start()
    threading.Event().wait()
    """
)

ACKNOWLEDGED = re.compile(r"rec-w\d-\d{6}")


def test_acknowledged_writes_survive_sigkill(vault_dir: Path, suite: CryptoSuite) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(vault_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[str] = []
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", child.stderr.read() if child.stderr else ""
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "child exited"
            acknowledged.append(line.strip())
        # Writes are still in flight when the process dies.
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    acknowledged += [line for line in rest.splitlines() if ACKNOWLEDGED.fullmatch(line)]
    assert len(acknowledged) >= 300

    with sqlite3.connect(vault_dir / "vault.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Vault(vault_dir, suite) as vault:
        first = vault.open("rec-first-0001")
        assert first.data == b"acknowledged before the kill"
        assert first.entry.status == "committed"
        with pytest.raises(RecordErased):
            vault.open("rec-erased-0001")
        for record_id in acknowledged:
            opened = vault.open(record_id)
            assert opened.data == record_id.encode() * 50
            assert opened.entry.status == "committed"
