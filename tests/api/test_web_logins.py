"""Logins for the web pages: password plus one-time code, sealed keys, lockout, replay."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from carechain.api.web.logins import LOCK_S, MAX_FAILURES, STEP_S, WebLogins, totp_code
from carechain.api.web.sessions import Sessions
from carechain.errors import InvalidInput, NotFound, Unauthenticated
from carechain.identity.wallet import Credentials

Member = Callable[[str], Credentials]
PASSWORD = "correct horse battery"
NOW = 1_800_000_000.0  # a fixed moment, so codes and locks are exact


@pytest.fixture
def logins(tmp_path: Path) -> WebLogins:
    return WebLogins(tmp_path)


def test_totp_matches_rfc_6238_vectors() -> None:
    # RFC 6238 Appendix B, SHA-1 rows (secret "12345678901234567890"): the last six of
    # 94287082, 07081804, 89005924, 69279037 and 65353130.
    secret = b"12345678901234567890"
    times = (59, 1111111109, 1234567890, 2000000000, 20000000000)
    expected = ["287082", "081804", "005924", "279037", "353130"]
    assert [totp_code(secret, t) for t in times] == expected


def test_a_login_unseals_the_members_key(logins: WebLogins, member: Member) -> None:
    creds = member("pumch/patient-7f3a9c")
    added = logins.add("patient", creds, PASSWORD)
    assert added.uri.startswith("otpauth://totp/carechain%3Apatient?secret=")
    got = logins.login("patient", PASSWORD, totp_code(added.secret, NOW), now_s=NOW)
    assert got == creds
    # The file alone opens nothing: neither the key nor the TOTP secret is in it.
    stored = logins.path.read_bytes()
    assert creds.private_key not in stored and added.secret not in stored
    assert logins.path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("name", "password", "code"),
    [
        ("patient", "wrong password!", "right"),
        ("patient", PASSWORD, "000000"),
        ("patient", PASSWORD, "12345"),
        ("patient", PASSWORD, "１２３４５６"),  # full-width digits are not a code
        ("nobody", PASSWORD, "right"),
        ("patient", "short", "right"),
    ],
)
def test_a_wrong_part_is_refused_without_saying_which(
    logins: WebLogins, member: Member, name: str, password: str, code: str
) -> None:
    added = logins.add("patient", member("pumch/patient-7f3a9c"), PASSWORD)
    right = totp_code(added.secret, NOW)
    with pytest.raises(Unauthenticated) as refused:
        logins.login(name, password, right if code == "right" else code, now_s=NOW)
    assert refused.value.message == "wrong login name, password or one-time code"
    # The refusal changed nothing: the right login still works with the same code.
    assert logins.login("patient", PASSWORD, right, now_s=NOW).fingerprint == added.fingerprint


def test_a_code_is_used_once_and_drift_is_one_step(logins: WebLogins, member: Member) -> None:
    added = logins.add("patient", member("pumch/patient-7f3a9c"), PASSWORD)
    code = totp_code(added.secret, NOW)
    logins.login("patient", PASSWORD, code, now_s=NOW)
    with pytest.raises(Unauthenticated) as replayed:
        logins.login("patient", PASSWORD, code, now_s=NOW + 1)
    assert replayed.value.code == "code_reused" and "already used" in replayed.value.message
    # The previous step's code is late but accepted once; two steps late is refused.
    later = NOW + 10 * STEP_S
    logins.login("patient", PASSWORD, totp_code(added.secret, later - STEP_S), now_s=later)
    with pytest.raises(Unauthenticated):
        logins.login(
            "patient", PASSWORD, totp_code(added.secret, later - 2 * STEP_S), now_s=later + 1
        )


def test_one_code_in_two_racing_logins_succeeds_once(logins: WebLogins, member: Member) -> None:
    added = logins.add("patient", member("pumch/patient-7f3a9c"), PASSWORD)
    code = totp_code(added.secret, NOW)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            logins.login("patient", PASSWORD, code, now_s=NOW)
            outcomes.append("in")
        except Unauthenticated as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["code_reused"] * 3 + ["in"]


def test_failed_attempts_lock_the_login(logins: WebLogins, member: Member) -> None:
    added = logins.add("claims", member("bj-nhsa/claims-01"), PASSWORD)
    for i in range(MAX_FAILURES):
        with pytest.raises(Unauthenticated):
            logins.login("claims", "not the password", "123456", now_s=NOW + i)
    right = totp_code(added.secret, NOW + 10)
    with pytest.raises(Unauthenticated) as locked:
        logins.login("claims", PASSWORD, right, now_s=NOW + 10)
    assert locked.value.code == "login_locked" and "15 min" in locked.value.message
    # A restart does not reset the lock: a new store over the same file still refuses.
    again = WebLogins(logins.path.parent)
    with pytest.raises(Unauthenticated):
        again.login("claims", PASSWORD, right, now_s=NOW + 11)
    after = NOW + LOCK_S + 60
    assert again.login("claims", PASSWORD, totp_code(added.secret, after), now_s=after)
    # An administrator may unlock before the time is up.
    for i in range(MAX_FAILURES):
        with pytest.raises(Unauthenticated):
            again.login("claims", "not the password", "123456", now_s=after + 40 + i)
    again.unlock("claims")
    later = after + 120
    assert again.login("claims", PASSWORD, totp_code(added.secret, later), now_s=later)


def test_logins_are_managed_with_clear_errors(logins: WebLogins, member: Member) -> None:
    creds = member("pumch/admin")
    logins.add("billing", creds, PASSWORD)
    with pytest.raises(InvalidInput, match="already a login named billing"):
        logins.add("billing", creds, PASSWORD)
    with pytest.raises(InvalidInput, match="login name"):
        logins.add("Bad Name", creds, PASSWORD)
    with pytest.raises(InvalidInput, match="10 to 200 characters"):
        logins.add("short-pw", creds, "123")
    assert [r.name for r in logins.rows()] == ["billing"]
    assert logins.fingerprint("billing") == creds.fingerprint
    logins.remove("billing")
    assert logins.fingerprint("billing") is None
    with pytest.raises(NotFound):
        logins.remove("billing")
    with pytest.raises(NotFound):
        logins.unlock("billing")


def test_sessions_end_when_idle_too_long_or_too_old(member: Member) -> None:
    sessions = Sessions(idle_s=60, max_s=300)
    creds = member("pumch/patient-7f3a9c")
    session = sessions.open("patient", creds, now=NOW)
    assert sessions.get(session.token, now=NOW + 50) is session
    assert sessions.get(session.token, now=NOW + 100) is session  # used at +50: still live
    assert sessions.get(session.token, now=NOW + 161) is None  # idle 61 s
    old = sessions.open("patient", creds, now=NOW)
    for t in range(50, 300, 50):
        assert sessions.get(old.token, now=NOW + t) is old
    assert sessions.get(old.token, now=NOW + 301) is None  # older than max_s
    assert sessions.get("made-up", now=NOW) is None and sessions.get(None) is None
    other = sessions.open("patient", creds, now=NOW)
    sessions.close(other.token)
    assert sessions.get(other.token, now=NOW) is None
