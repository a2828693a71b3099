"""Server-side login sessions for the web view: the cookie is only a random id; everything else stays here.

A session ends at logout, when its user's password changes (the session remembers a fingerprint of the hash it
was opened with), after `idle` s without a request (an open event stream counts: the page is being watched),
and in any case `lifetime` s after login, however busy. The cookie is set once, at login, and never re-signed.

Kept in memory, in the one process that serves the view (`hotline web`, or beside the engine; never several
workers): a restart ends every login. Pure apart from the clock, which is injected.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping

from supervisor.auth import User

IDLE_SECONDS = 30 * 60
LIFETIME_SECONDS = 12 * 3600  # one shift


def password_tag(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode("utf-8")).hexdigest()[:32]


@dataclass
class Session:
    id: str
    user: str
    csrf: str
    password_tag: str
    created: float
    seen: float


class SessionStore:
    def __init__(self, *, idle: float = IDLE_SECONDS, lifetime: float = LIFETIME_SECONDS,
                 clock: Callable[[], float] = time.time, max_sessions: int = 10000) -> None:
        self.idle, self.lifetime, self.clock, self.max_sessions = idle, lifetime, clock, max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def open(self, user: User) -> Session:
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), user.name, secrets.token_urlsafe(32), password_tag(user),
                          now, now)
        self._sessions[session.id] = session
        while len(self._sessions) > self.max_sessions:  # the oldest login goes first
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None, users: Mapping[str, User]) -> tuple[Session, User] | None:
        """The live session and its user (and the request counts as activity), or None, ending a dead one."""
        session = self._sessions.get(session_id or "")
        if session is None:
            return None
        now = self.clock()
        user = users.get(session.user)
        if (user is None or password_tag(user) != session.password_tag or now - session.seen >= self.idle
                or now - session.created >= self.lifetime):
            del self._sessions[session.id]
            return None
        session.seen = now
        return session, user

    def end(self, session_id: str | None) -> None:
        self._sessions.pop(session_id or "", None)

    def __len__(self) -> int:
        return len(self._sessions)
