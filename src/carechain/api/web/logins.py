"""People's logins to the web pages: a password plus a one-time code (TOTP, RFC 6238).

A login belongs to one member identity: a patient, a claims officer, a hospital's
billing clerk. The member's signing key and the login's TOTP secret are sealed
together (PyNaCl ``SecretBox``: XSalsa20-Poly1305) under a key that Argon2id
derives from the password, so the file on disk opens nothing by itself; a
login unseals the key, and the web session signs that person's transactions
with it until they log out or the session ends.

The node keeps the logins in ``web-logins.sqlite`` in its data directory, beside
its other node-local files; nothing of them goes on the chain. Five failed
attempts in a row lock a login for 15 minutes (kept in the file, so a restart
does not reset it). A code is accepted once: a replayed code is refused.
"""

from __future__ import annotations

import base64
import hmac
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from carechain.errors import InvalidInput, NotFound, Unauthenticated
from carechain.identity.certificates import fingerprint_of
from carechain.identity.wallet import Credentials

FILE_NAME = "web-logins.sqlite"
MIN_PASSWORD, MAX_PASSWORD = 10, 200
MAX_FAILURES = 5
LOCK_S = 15 * 60
STEP_S = 30
DIGITS = 6
ISSUER = "carechain"
_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{1,63}")
NAME_RULE = "2 to 64 characters of a-z, 0-9 and '._@-', starting with a letter or digit"
_SEED, _SECRET = 32, 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS login (
  name TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  certificate BLOB NOT NULL,
  salt BLOB NOT NULL,
  sealed BLOB NOT NULL,
  last_step INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  locked_until INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class NewLogin:
    name: str
    fingerprint: str
    secret: bytes
    """The TOTP secret, to enrol in an authenticator app (shown once)."""

    @property
    def secret_base32(self) -> str:
        return base64.b32encode(self.secret).decode("ascii")

    @property
    def uri(self) -> str:
        """The ``otpauth://`` address an authenticator app takes from a QR code."""
        label = quote(f"{ISSUER}:{self.name}")
        return (
            f"otpauth://totp/{label}?secret={self.secret_base32}&issuer={ISSUER}"
            f"&algorithm=SHA1&digits={DIGITS}&period={STEP_S}"
        )


@dataclass(frozen=True)
class LoginRow:
    name: str
    fingerprint: str
    locked_until: int
    created: int


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"login name {name[:70]!r} is not valid: {NAME_RULE}")
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters; "
            f"this one has {len(password)}"
        )
    return password


def totp_code(secret: bytes, at_s: float) -> str:
    """The code an authenticator app shows at ``at_s`` (seconds since 1970)."""
    return TOTP(secret, DIGITS, SHA1(), STEP_S, enforce_key_length=False).generate(at_s).decode()


def _box_key(password: str, salt: bytes) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        password.encode("utf-8"),
        salt,
        opslimit=nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        memlimit=nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    )


class WebLogins:
    """The logins of one node, in ``DATA_DIR/web-logins.sqlite``."""

    def __init__(self, data_dir: Path | str) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._lock = threading.Lock()
        with self._db() as db:
            db.execute(_SCHEMA)
        self.path.chmod(0o600)  # sealed keys, but still nobody else's to read

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode (each statement durable on its own), closed after."""
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    # -- administration ------------------------------------------------------------------

    def add(
        self, name: str, creds: Credentials, password: str, now_s: float | None = None
    ) -> NewLogin:
        """A login ``name`` for the member ``creds``; its TOTP secret is in the answer."""
        check_name(name)
        check_password(password)
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        secret = nacl.utils.random(_SECRET)
        box = nacl.secret.SecretBox(_box_key(password, salt))
        sealed = bytes(box.encrypt(creds.private_key + secret))
        created = int((time.time() if now_s is None else now_s) * 1000)
        with self._lock, self._db() as db:
            try:
                db.execute(
                    "INSERT INTO login (name, fingerprint, certificate, salt, sealed, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (name, creds.fingerprint, creds.certificate_pem, salt, sealed, created),
                )
            except sqlite3.IntegrityError:
                raise InvalidInput(f"there is already a login named {name}") from None
        return NewLogin(name, creds.fingerprint, secret)

    def remove(self, name: str) -> None:
        with self._lock, self._db() as db:
            if db.execute("DELETE FROM login WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no login named {name[:70]}")

    def unlock(self, name: str) -> None:
        """Clear a login's failed attempts and lock (an administrator, after checking)."""
        with self._lock, self._db() as db:
            done = db.execute(
                "UPDATE login SET failures = 0, locked_until = 0 WHERE name = ?", (name,)
            )
            if done.rowcount == 0:
                raise NotFound(f"no login named {name[:70]}")

    def fingerprint(self, name: str) -> str | None:
        """The member a login signs as, or None if there is no such login (any more)."""
        with self._db() as db:
            row = db.execute("SELECT fingerprint FROM login WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def rows(self) -> list[LoginRow]:
        with self._db() as db:
            found = db.execute(
                "SELECT name, fingerprint, locked_until, created FROM login ORDER BY name"
            ).fetchall()
        return [LoginRow(*row) for row in found]

    # -- logging in ----------------------------------------------------------------------

    def login(self, name: str, password: str, code: str, now_s: float | None = None) -> Credentials:
        """The member's credentials, if ``password`` and ``code`` are right; otherwise
        ``Unauthenticated`` that does not say which of the three was wrong."""
        now = time.time() if now_s is None else now_s
        wrong = Unauthenticated("wrong login name, password or one-time code")
        with self._db() as db:
            row = db.execute(
                "SELECT fingerprint, certificate, salt, sealed, locked_until "
                "FROM login WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            # Spend the same time as a real check, so timing does not tell names apart.
            _box_key(password[:MAX_PASSWORD] or "x", b"\0" * nacl.pwhash.argon2id.SALTBYTES)
            raise wrong
        fingerprint, certificate, salt, sealed, locked_until = row
        if locked_until > now * 1000:
            minutes = max(1, round((locked_until - now * 1000) / 60_000))
            error = Unauthenticated(
                f"this login is locked after {MAX_FAILURES} failed attempts; "
                f"try again in {minutes} min, or ask an administrator to unlock it"
            )
            error.code = "login_locked"
            raise error
        try:
            opened = nacl.secret.SecretBox(_box_key(password, salt)).decrypt(sealed)
        except nacl.exceptions.CryptoError:
            self._failed(name, now)
            raise wrong from None
        seed, secret = opened[:_SEED], opened[_SEED:]
        step = self._step_of(secret, code, now)
        if step is None:
            self._failed(name, now)
            raise wrong
        with self._lock, self._db() as db:
            # The step is taken in one statement, so two logins racing with one code
            # cannot both succeed.
            taken = db.execute(
                "UPDATE login SET last_step = ?, failures = 0 WHERE name = ? AND last_step < ?",
                (step, name, step),
            ).rowcount
        if not taken:
            error = Unauthenticated(
                "this one-time code was already used; wait for the next one (codes change "
                f"every {STEP_S} s)"
            )
            error.code = "code_reused"
            raise error
        if fingerprint_of(certificate) != fingerprint:  # pragma: no cover - file damaged
            raise Unauthenticated("this login's certificate is damaged; add the login again")
        return Credentials(fingerprint, certificate, seed)

    @staticmethod
    def _step_of(secret: bytes, code: str, now: float) -> int | None:
        """The time step ``code`` belongs to: now, or one step either side (clock drift)."""
        if not (len(code) == DIGITS and code.isascii() and code.isdigit()):
            return None
        current = int(now // STEP_S)
        for step in (current, current - 1, current + 1):
            if hmac.compare_digest(totp_code(secret, step * STEP_S), code):
                return step
        return None

    def _failed(self, name: str, now: float) -> None:
        with self._lock, self._db() as db:
            db.execute(
                "UPDATE login SET failures = failures + 1 WHERE name = ?",
                (name,),
            )
            db.execute(
                "UPDATE login SET failures = 0, locked_until = ? WHERE name = ? AND failures >= ?",
                (int((now + LOCK_S) * 1000), name, MAX_FAILURES),
            )
