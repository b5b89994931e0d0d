"""Console sessions: kept on the server, named by a random token in a signed cookie.

The cookie holds ``token.signature`` (HMAC-SHA256 under a secret kept in the data
directory, 0600), so a forged cookie is refused before any lookup; the session
itself (operator, role, CSRF token) never leaves the server, so logging out or a
restart ends it for good. Idle sessions end after 15 minutes (PCI DSS 8.2.8),
every session after 8 hours.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import attrs
from forecourt.console.operators import Role
from forecourt.keys.errors import NotPrivate
from forecourt.keys.private import private_dir, tighten

SECRET_FILE = "console.secret"
IDLE_S = 15 * 60.0
LIFETIME_S = 8 * 3600.0
# anonymous sessions (a login form each) beyond this are dropped, oldest first
MAX_ANONYMOUS = 10_000


class SecretUnusable(Exception):
    """The session secret file cannot be read or made (the message names the file)."""


def load_secret(data_dir: Path) -> bytes:
    """The signing secret, made (32 random bytes, 0600) on first use."""
    path = data_dir / SECRET_FILE
    try:
        private_dir(data_dir)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            tighten(path)
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
        secret = path.read_bytes()
    except NotPrivate as exc:
        raise SecretUnusable(f"console secret: {exc}") from None
    except OSError as exc:
        raise SecretUnusable(f"console secret {path}: {exc.strerror or exc}") from None
    if len(secret) < 32:
        raise SecretUnusable(f"console secret {path} is shorter than 32 bytes: delete it")
    return secret


@attrs.define
class Session:
    token: str
    csrf: str
    created_at: float
    seen_at: float
    operator: str | None = None
    role: Role | None = None


@attrs.define
class SessionBook:
    """Every live session of this console process."""

    secret: bytes = attrs.field(repr=False)
    _sessions: dict[str, Session] = attrs.field(factory=dict)

    def _sign(self, token: str) -> str:
        return hmac.new(self.secret, token.encode(), hashlib.sha256).hexdigest()

    def cookie_value(self, session: Session) -> str:
        return f"{session.token}.{self._sign(session.token)}"

    def open(self, now: float, operator: str | None = None, role: Role | None = None) -> Session:
        """A new session (anonymous before log-in, so the login form has a CSRF token)."""
        self._expire(now)
        anonymous = [s for s in self._sessions.values() if s.operator is None]
        for old in sorted(anonymous, key=lambda s: s.created_at)[: -MAX_ANONYMOUS or None]:
            del self._sessions[old.token]
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        session.operator, session.role = operator, role
        self._sessions[session.token] = session
        return session

    def find(self, cookie: str | None, now: float) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        token, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(token)):
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        if now - session.seen_at > IDLE_S or now - session.created_at > LIFETIME_S:
            del self._sessions[token]
            return None
        session.seen_at = now
        return session

    def close(self, session: Session) -> None:
        self._sessions.pop(session.token, None)

    def _expire(self, now: float) -> None:
        for token, s in list(self._sessions.items()):
            if now - s.seen_at > IDLE_S or now - s.created_at > LIFETIME_S:
                del self._sessions[token]


def csrf_matches(session: Session, sent: object) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), session.csrf.encode())
