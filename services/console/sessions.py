"""Console sessions: an opaque random ID in a cookie, the state on the server, a CSRF token per session.

* The cookie (``renkou_console``) is ``HttpOnly`` and ``SameSite=Lax`` (a link from elsewhere keeps the session;
  a cross-site POST never carries it); ``Secure`` when the console is served over HTTPS (behind a TLS-terminating
  proxy: ``RENKOU_CONSOLE_SECURE_COOKIES=1``).
* Every state-changing request is a POST carrying the session's CSRF token in a form field (compared in constant
  time) and, when the browser sends one, an ``Origin`` of the console itself; anything else is refused with 403.
* A login replaces the session (a new ID: no fixation); a session ends after 30 idle minutes or 8 hours, and at
  logout. Sessions live in the console's memory: a restart logs everybody out, which is the safe direction.
* Five failed logins for a name, or twenty from one client address, within 15 minutes lock them for 15 minutes
  (the attempts are recorded; the lock itself once per window). Anonymous sessions (a login form's CSRF token, a
  citizen's login in flight) are capped: past ``ANONYMOUS_MAX`` the oldest are forgotten, so requests without a
  cookie cannot fill the memory.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = ["COOKIE", "LoginThrottle", "Session", "SessionStore"]

COOKIE: Final = "renkou_console"
ANONYMOUS_MAX: Final = 20_000
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
    account_created: object = None  # the account's creation time: a removed and re-made account is another one
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
    anonymous: dict[str, None] = field(default_factory=dict)  # anonymous session IDs, oldest first
    clock: object = time.monotonic

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    def new(self, kind: Kind = "anonymous", *, name: str | None = None, role: str | None = None) -> Session:
        now = self._now()
        session = Session(secrets.token_urlsafe(32), kind, secrets.token_urlsafe(32), now, now, name, role)
        self.sessions[session.id] = session
        if kind == "anonymous":
            self.anonymous[session.id] = None
            while len(self.anonymous) > ANONYMOUS_MAX:
                oldest = next(iter(self.anonymous))
                self.anonymous.pop(oldest)
                self.sessions.pop(oldest, None)
        if len(self.sessions) % 256 == 0:
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
            self._drop(session_id)
            return None
        session.seen = now
        return session

    def replace(self, old: Session | None, kind: Kind, *, name: str, role: str) -> Session:
        """A login: the old session (and its ID) is gone, a new one carries the identity."""
        if old is not None:
            self._drop(old.id)
        session = self.new(kind, name=name, role=role)
        if old is not None:
            session.lang = old.lang
        return session

    def end(self, session: Session) -> None:
        self._drop(session.id)

    def _drop(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        self.anonymous.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for sid, s in list(self.sessions.items()):
            if now - s.seen > IDLE_S or now - s.created > ABSOLUTE_S:
                self._drop(sid)


@dataclass
class LoginThrottle:
    """Failed logins per key (an account name, ``ip:<address>``); ``locked`` after ``limit`` within ``window_s``."""

    limit: int = 5
    window_s: float = 15 * 60
    failures: dict[str, list[float]] = field(default_factory=dict)
    reported: dict[str, float] = field(default_factory=dict)  # when a key's lock was last recorded
    max_keys: int = 100_000

    def locked(self, key: str, limit: int | None = None, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        recent = [t for t in self.failures.get(key, ()) if now - t < self.window_s]
        if recent:
            self.failures[key] = recent
        else:
            self.failures.pop(key, None)
        return len(recent) >= (self.limit if limit is None else limit)

    def failed(self, key: str, now: float | None = None) -> None:
        if key not in self.failures and len(self.failures) >= self.max_keys:
            self.failures.pop(next(iter(self.failures)))  # the oldest key: memory stays bounded
        self.failures.setdefault(key, []).append(time.monotonic() if now is None else now)

    def first_report(self, key: str, now: float | None = None) -> bool:
        """Whether this lock of ``key`` is yet to be recorded (once per window, not once per attempt)."""
        now = time.monotonic() if now is None else now
        if now - self.reported.get(key, float("-inf")) < self.window_s:
            return False
        if len(self.reported) >= self.max_keys:
            self.reported.clear()
        self.reported[key] = now
        return True

    def succeeded(self, key: str) -> None:
        self.failures.pop(key, None)
