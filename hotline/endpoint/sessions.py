"""Operator sessions, in memory: a random cookie token, a CSRF token, an idle timeout.

A session starts at login and ends at logout, at the idle timeout (no request
for ``idle_s``) or when the endpoint restarts. Tokens are 32 random bytes
(URL-safe base64); the store keys sessions by the SHA-256 of the cookie token,
so a timing side channel on the lookup reveals nothing usable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from hotline.endpoint.operators import Operator

__all__ = ["DEFAULT_IDLE_S", "MAX_SESSIONS", "Session", "SessionStore"]

DEFAULT_IDLE_S: Final = 30 * 60.0
MAX_SESSIONS: Final = 1000  # the oldest is dropped beyond this


def _key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(slots=True, eq=False)
class Session:
    operator: Operator
    csrf: str
    last_s: float
    logged_out: bool = False  # ended by logout (its event streams close too)

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


@dataclass(slots=True)
class SessionStore:
    clock: Callable[[], float]
    idle_s: float = DEFAULT_IDLE_S
    _sessions: dict[bytes, Session] = field(default_factory=dict)

    def start(self, operator: Operator) -> tuple[str, Session]:
        """A new session for ``operator``: its cookie token and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(operator, secrets.token_urlsafe(32), self.clock())
        self._sessions[_key(token)] = session
        while len(self._sessions) > MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].last_s)
            self._sessions.pop(oldest).logged_out = True
        return token, session

    def find(self, token: str | None, *, touch: bool = True) -> Session | None:
        """The live session of ``token`` (its idle time restarts), or None."""
        if not token:
            return None
        key = _key(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_s > self.idle_s:
            del self._sessions[key]
            return None
        if touch:
            session.last_s = now
        return session

    def end(self, token: str | None) -> None:
        if token:
            session = self._sessions.pop(_key(token), None)
            if session is not None:
                session.logged_out = True
