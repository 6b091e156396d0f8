"""Console sessions: an opaque random ID in a cookie, the state on the server, a CSRF token per session.

* The cookie (``renkou_console``) is ``HttpOnly`` and ``SameSite=Strict``; ``Secure`` when the console is served
  over HTTPS (behind a TLS-terminating proxy: ``RENKOU_CONSOLE_SECURE_COOKIES=1``).
* Every state-changing request is a POST carrying the session's CSRF token in a form field (compared in constant
  time) and, when the browser sends one, an ``Origin`` of the console itself; anything else is refused with 403.
* A login replaces the session (a new ID: no fixation); a session ends after 30 idle minutes or 8 hours, and at
  logout. Sessions live in the console's memory: a restart logs everybody out, which is the safe direction.
* Five failed logins for a name within 15 minutes lock that name for 15 minutes (the attempts are recorded).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = ["COOKIE", "LoginThrottle", "Session", "SessionStore"]

COOKIE: Final = "renkou_console"
IDLE_S: Final = 30 * 60
ABSOLUTE_S: Final = 8 * 3600
Kind = Literal["anonymous", "staff", "citizen"]


@dataclass
class Session:
    id: str
    kind: Kind
    csrf: str
    created: float
    seen: float
    name: str | None = None  # the account (staff) or the citizen ID (citizen)
    role: str | None = None  # operator | auditor | citizen
    nonce: str | None = None  # an OpenID Connect login in flight: the nonce and state it must come back with
    state: str | None = None
    lang: str | None = None

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(self.csrf.encode(), given.encode())

    @property
    def actor(self) -> str:
        return f"citizen:{self.name}" if self.kind == "citizen" else str(self.name)


@dataclass
class SessionStore:
    sessions: dict[str, Session] = field(default_factory=dict)
    clock: object = time.monotonic

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    def new(self, kind: Kind = "anonymous", *, name: str | None = None, role: str | None = None) -> Session:
        now = self._now()
        session = Session(secrets.token_urlsafe(32), kind, secrets.token_urlsafe(32), now, now, name, role)
        self.sessions[session.id] = session
        self._expire(now)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self.sessions.get(session_id)
        if session is None:
            return None
        now = self._now()
        if now - session.seen > IDLE_S or now - session.created > ABSOLUTE_S:
            self.sessions.pop(session_id, None)
            return None
        session.seen = now
        return session

    def replace(self, old: Session | None, kind: Kind, *, name: str, role: str) -> Session:
        """A login: the old session (and its ID) is gone, a new one carries the identity."""
        if old is not None:
            self.sessions.pop(old.id, None)
        session = self.new(kind, name=name, role=role)
        if old is not None:
            session.lang = old.lang
        return session

    def end(self, session: Session) -> None:
        self.sessions.pop(session.id, None)

    def _expire(self, now: float) -> None:
        if len(self.sessions) % 64:
            return
        for sid, s in list(self.sessions.items()):
            if now - s.seen > IDLE_S or now - s.created > ABSOLUTE_S:
                self.sessions.pop(sid, None)


@dataclass
class LoginThrottle:
    """Failed logins per account name; ``locked`` after ``limit`` within ``window_s``."""

    limit: int = 5
    window_s: float = 15 * 60
    failures: dict[str, list[float]] = field(default_factory=dict)

    def locked(self, name: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        recent = [t for t in self.failures.get(name, []) if now - t < self.window_s]
        self.failures[name] = recent
        return len(recent) >= self.limit

    def failed(self, name: str, now: float | None = None) -> None:
        self.failures.setdefault(name, []).append(time.monotonic() if now is None else now)

    def succeeded(self, name: str) -> None:
        self.failures.pop(name, None)
