"""``carechain web`` manages web logins; ``carechain up --demo`` (what ``make run`` does)
makes the demo's logins and claims on first run only, and serves the pages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from carechain.api.web.logins import WebLogins, totp_code
from carechain.node.consortium import Consortium
from support import free_port

runner = CliRunner()


def carechain(*args: str) -> tuple[int, str]:
    from carechain.cli.main import app

    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_logins_are_added_listed_unlocked_and_removed(
    consortium: Consortium, node_dir: Path, tmp_path: Path
) -> None:
    identity = str(consortium.directory / "orgs" / "bj-nhsa" / "members" / "claims-01")
    secret = tmp_path / "pw"
    secret.write_text("a password of the desk\n")
    data = str(node_dir)
    code, out = carechain("web", "add", "desk", "--as", identity, "--data", data,
                          "--password-file", str(secret))  # fmt: skip
    assert code == 0, out
    uri = re.search(r"otpauth://totp/carechain%3Adesk\?secret=([A-Z2-7]+)&", out)
    assert uri is not None
    # The printed secret is the one the login checks.
    import base64

    key = base64.b32decode(uri.group(1))
    creds = WebLogins(node_dir).login("desk", "a password of the desk", totp_code(key, time.time()))
    assert creds.fingerprint == consortium.members["bj-nhsa/claims-01"].fingerprint
    code, out = carechain("web", "list", "--data", data)
    assert code == 0 and out.startswith("desk\t") and "LOCKED" not in out
    code, out = carechain("web", "add", "desk", "--as", identity, "--data", data,
                          "--password-file", str(secret))  # fmt: skip
    assert code == 2 and "already a login named desk" in out
    secret.write_text("short\n")
    code, out = carechain("web", "add", "other", "--as", identity, "--data", data,
                          "--password-file", str(secret))  # fmt: skip
    assert code == 2 and "10 to 200 characters" in out
    code, out = carechain("web", "add", "Bad Name", "--as", identity, "--data", data,
                          "--password-file", str(secret))  # fmt: skip
    assert code == 2 and "login name 'Bad Name' is not valid" in out
    code, out = carechain("web", "list", "--data", str(tmp_path))
    assert code == 2 and "not a node's data directory" in out
    assert carechain("web", "unlock", "desk", "--data", data)[0] == 0
    assert carechain("web", "remove", "desk", "--data", data) == (0, "removed login desk\n")
    code, out = carechain("web", "remove", "desk", "--data", data)
    assert code == 2 and "no login named desk" in out
    assert carechain("web", "list", "--data", data) == (0, "no logins\n")
    code, out = carechain("web", "demo-code", "patient", "--data", str(tmp_path))
    assert code == 2 and "demo codes exist only" in out


@pytest.mark.integration
def test_the_demo_node_seeds_logins_and_claims_once(tmp_path: Path) -> None:
    root, port = tmp_path / "demo", free_port()
    url = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "carechain", "up", "--demo", "--data", str(root)]
        with (tmp_path / "node.log").open("ab") as log:
            return subprocess.Popen([*command, "--port", str(port)], stdout=log, stderr=log)

    def wait_healthy(proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "node.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError((tmp_path / "node.log").read_text())

    proc = start()
    try:
        wait_healthy(proc)
        log = (tmp_path / "node.log").read_text()
        claims = re.search(r"demo claims: (clm-\w+) \(paid\), (clm-\w+) \(in the insurer", log)
        assert claims is not None and f"web pages on {url}/web/" in log
        demo = root / "web-logins-demo.json"
        assert demo.stat().st_mode & 0o077 == 0
        logins = {x["name"]: x for x in json.loads(demo.read_text())["logins"]}
        assert set(logins) == {"patient", "claims", "billing", "auditor"}
        with httpx.Client(base_url=url, timeout=10) as web:
            assert web.get("/web/claims").status_code == 303  # not logged in
            assert web.get("/").headers["location"] == "/web/"  # the node's address opens them
            code = subprocess.run(
                [sys.executable, "-m", "carechain", "web", "demo-code", "claims",
                 "--data", str(root)],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout.strip()  # fmt: skip
            assert re.fullmatch(r"\d{6}", code)
            form = {"name": "claims", "password": logins["claims"]["password"], "code": code}
            answer = web.post("/web/login", data={**form, "next": "/web/queue"})
            assert answer.status_code == 303 and answer.headers["location"] == "/web/queue"
            queue = web.get("/web/queue", headers={"accept-language": "en"})
            assert queue.status_code == 200 and claims.group(2) in queue.text
            assert claims.group(1) not in queue.text  # paid at once, never queued
            paid = web.get(f"/web/claims/{claims.group(1)}", headers={"accept-language": "en"})
            assert 'id="status">paid<' in paid.text
            web.post("/web/logout", data={"csrf": csrf(web.get("/web/").text)})
            code = subprocess.run(
                [sys.executable, "-m", "carechain", "web", "demo-code", "patient",
                 "--data", str(root)],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout.strip()  # fmt: skip
            form = {"name": "patient", "password": logins["patient"]["password"], "code": code}
            assert web.post("/web/login", data=form).status_code == 303
            mine = web.get("/web/accounts", headers={"accept-language": "en"}).text
            assert re.search(r'data-plan="plan-\w+">.*?offered', mine, flags=re.S)
        height = httpx.get(f"{url}/health").json()["height"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    before = demo.read_bytes()
    proc = start()
    try:
        wait_healthy(proc)
        # The second run seeds nothing and keeps the logins.
        assert httpx.get(f"{url}/health").json()["height"] == height
        assert demo.read_bytes() == before
        assert [r.name for r in WebLogins(root / "node").rows()] == [
            "auditor", "billing", "claims", "patient"]  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert os.path.exists(root / "node" / "web-logins.sqlite")


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)
