"""The README's tour, run for real: init a consortium, start a node, send, query, prove,
verify a proof offline, register a patient's own key, and audit the ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carechain.cli.main import app
from support import free_port

pytestmark = pytest.mark.integration
DIGEST = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("tour")
    port = free_port()
    runner = CliRunner()
    made = runner.invoke(app, ["init", "--out", str(root / "c"), "--port", str(port)])
    assert made.exit_code == 0, made.output
    node_dir = root / "c" / "node"
    with (root / "node.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "carechain", "up", "--data", str(node_dir)],
            stdout=log,
            stderr=log,
        )
    import time

    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError((root / "node.log").read_text())
    env = {
        "CARECHAIN_NODE": f"http://127.0.0.1:{port}",
        "CARECHAIN_IDENTITY": str(root / "c" / "orgs" / "pumch" / "members" / "dr-wang"),
    }
    try:
        yield {"root": root, "node_dir": node_dir, "env": env, "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(tour: dict[str, object], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=tour["env"])  # type: ignore[arg-type]
    return result.exit_code, result.output


def test_tour(tour: dict[str, object]) -> None:
    root: Path = tour["root"]  # type: ignore[assignment]
    code, out = run(tour, "status")
    assert code == 0 and json.loads(out)["chain"] == "demo"
    code, out = run(tour, "org", "list")
    assert code == 0 and "pumch" in out and "北京协和医院" in out

    code, out = run(
        tour,
        "tx",
        "send",
        "notary",
        "anchor",
        "--args",
        json.dumps({"digest": DIGEST, "reference": "lab-2026-0001"}),
    )
    assert code == 0, out
    sent = json.loads(out)
    assert sent["status"] == "committed" and sent["code"] == "ok"
    code, out = run(tour, "query", "notary", f"anchor/{DIGEST}")
    assert code == 0 and json.loads(out)["value"]["reference"] == "lab-2026-0001"

    # A clinician may not register members: refused, recorded, exit code 1.
    code, out = run(
        tour, "tx", "send", "governance", "register_member", "--args", '{"certificate": "-"}'
    )
    assert code == 1 and '"forbidden"' in out

    code, out = run(tour, "block", "latest", "--header")
    assert code == 0 and "tree_root" in json.loads(out)["header"]

    proof = root / "proof.json"
    code, out = run(tour, "proof", "inclusion", sent["txid"], "--out", str(proof))
    assert code == 0, out
    peer = str(root / "c" / "node" / "keys" / "peer.pem")
    code, out = run(tour, "proof", "verify", str(proof), "--peer-cert", peer)
    assert code == 0 and f"OK: transaction {sent['txid']}" in out
    doc = json.loads(proof.read_text())
    doc["leaf"]["code"] = "forbidden"
    proof.write_text(json.dumps(doc))
    code, out = run(tour, "proof", "verify", str(proof), "--peer-cert", peer)
    assert code == 2 and "root_mismatch" in out

    consistency = root / "consistency.json"
    assert run(tour, "proof", "consistency", "1", "--out", str(consistency))[0] == 0
    code, out = run(tour, "proof", "verify", str(consistency), "--peer-cert", peer)
    assert code == 0 and "extends" in out


def test_patient_key_registered_through_the_hospital(tour: dict[str, object]) -> None:
    root: Path = tour["root"]  # type: ignore[assignment]
    os.chdir(root)
    assert run(tour, "identity", "new-key", "patient-a1b2")[0] == 0
    code, out = run(
        tour,
        "identity",
        "issue",
        "--ca-dir",
        str(root / "c/orgs/pumch"),
        "--member-id",
        "patient-a1b2",
        "--role",
        "patient",
        "--public-key",
        "patient-a1b2.pub.pem",
        "--out",
        "patient-a1b2.pem",
    )
    assert code == 0, out
    admin = str(root / "c/orgs/pumch/members/admin")
    code, out = run(tour, "identity", "register", "patient-a1b2.pem", "--as", admin)
    assert code == 0 and json.loads(out)["code"] == "ok"
    code, out = run(
        tour,
        "tx",
        "send",
        "notary",
        "anchor",
        "--as",
        str(root / "patient-a1b2"),
        "--args",
        json.dumps({"digest": "ab" * 32}),
    )
    assert code == 0 and json.loads(out)["code"] == "ok"


def test_co_signed_transaction_built_offline(tour: dict[str, object]) -> None:
    """tx build -> tx cosign -> tx submit, as the README shows for a custody hand-over."""
    root: Path = tour["root"]  # type: ignore[assignment]
    members = json.loads((root / "c" / "members.json").read_text())
    pharmacist = str(root / "c/orgs/yf-pharmacy/members/ph-chen")
    file = root / "handover.json"
    code, out = run(
        tour,
        "tx",
        "build",
        "notary",
        "anchor",
        "--chain",
        "demo",
        "--args",
        json.dumps({"digest": "cd" * 32}),
        "--cosigner",
        members["yf-pharmacy/ph-chen"],
        "--out",
        str(file),
    )
    assert code == 0, out
    # Submitting before the co-signer signed is refused up front.
    code, out = run(tour, "tx", "submit", str(file))
    assert code == 2 and "missing signature" in out
    # Only a named co-signer may add a signature.
    code, out = run(
        tour, "tx", "cosign", str(file), "--as", str(root / "c/orgs/icbc/members/admin")
    )
    assert code == 2 and "not a co-signer" in out
    assert run(tour, "tx", "cosign", str(file), "--as", pharmacist)[0] == 0
    code, out = run(tour, "tx", "submit", str(file))
    assert code == 0 and json.loads(out)["code"] == "ok"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["tx", "send", "notary", "anchor", "--args", "{oops"], "non_canonical: malformed JSON"),
        (["tx", "send", "notary", "anchor", "--args", "[1]"], "--args must be a JSON object"),
        (["tx", "status", "00" * 32], "not_found"),
        (["query", "notary", "anchor/nothing-here"], "not_found"),
        (["tx", "send", "notary", "anchor", "--as", "/nonexistent/who"], "not found"),
        (["proof", "verify", "/nonexistent.json"], "No such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    tour: dict[str, object], args: list[str], words: str
) -> None:
    code, out = run(tour, *args)
    assert code == 2, out
    assert words in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1


def test_unreachable_node_is_a_clear_error(tour: dict[str, object]) -> None:
    env = dict(tour["env"], CARECHAIN_NODE=f"http://127.0.0.1:{free_port()}")  # type: ignore[arg-type]
    result = CliRunner().invoke(app, ["status"], env=env)
    assert result.exit_code == 2 and "cannot reach" in result.output


def test_verify_refuses_a_running_node_with_a_hint(tour: dict[str, object]) -> None:
    proc: subprocess.Popen[bytes] = tour["proc"]  # type: ignore[assignment]
    assert proc.poll() is None, "the node should still be running"
    code, out = run(tour, "verify", "--data", str(tour["node_dir"]), "-q")
    assert code == 2 and "is the node running?" in out


def test_verify_a_stopped_node(tour: dict[str, object]) -> None:
    """Last: stop the node, then audit its data directory (a real subprocess, exit 0)."""
    proc: subprocess.Popen[bytes] = tour["proc"]  # type: ignore[assignment]
    proc.terminate()
    proc.wait(timeout=30)
    result = subprocess.run(
        [sys.executable, "-m", "carechain", "verify", "--data", str(tour["node_dir"]), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:")
