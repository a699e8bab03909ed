"""Web sessions: who is logged in, held in the node's memory only.

A session holds the member's unsealed signing key, so it lives in memory and
nowhere else: a restarted node has logged everyone out. It ends after 15
minutes without a request, 8 hours after login, or at logout. The browser holds
only a random token in an HttpOnly, SameSite=Strict cookie; every form also
carries the session's own CSRF token.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from carechain.identity.wallet import Credentials

IDLE_S = 15 * 60
MAX_S = 8 * 60 * 60
COOKIE = "cc_session"


@dataclass
class WebSession:
    name: str
    creds: Credentials
    started: float
    seen: float
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))


class Sessions:
    def __init__(self, idle_s: float = IDLE_S, max_s: float = MAX_S) -> None:
        self.idle_s, self.max_s = idle_s, max_s
        self._open: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def open(self, name: str, creds: Credentials, now: float | None = None) -> WebSession:
        at = time.time() if now is None else now
        session = WebSession(name, creds, at, at)
        with self._lock:
            self._open = {t: s for t, s in self._open.items() if self._live(s, at)}
            self._open[session.token] = session
        return session

    def get(self, token: str | None, now: float | None = None) -> WebSession | None:
        """The live session of ``token`` (its idle clock restarted), or None."""
        if not token:
            return None
        at = time.time() if now is None else now
        with self._lock:
            session = self._open.get(token)
            if session is None:
                return None
            if not self._live(session, at):
                del self._open[token]
                return None
            session.seen = at
            return session

    def close(self, token: str | None) -> None:
        with self._lock:
            self._open.pop(token or "", None)

    def _live(self, session: WebSession, at: float) -> bool:
        return at - session.seen < self.idle_s and at - session.started < self.max_s
