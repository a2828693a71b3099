"""Web users, roles and password hashes (stdlib scrypt), loaded once at start.

Users come from the file named by HOTLINE_WEB_USERS (`name:role:hash[:phone]` lines, `#` comments; make hashes
with `hotline web hash-password`), or else two embedded accounts, `admin` and `supervisor`, whose passwords come
from HOTLINE_WEB_ADMIN_PASSWORD / HOTLINE_WEB_SUPERVISOR_PASSWORD; when those are unset a random password is
generated at start and printed once to the console. Nothing secret is ever stored in git.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

ROLES = ("admin", "supervisor", "viewer")
# What each role may do. Only admins see caller numbers in full; viewers watch and act on nothing.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"full_numbers", "pause", "unpause", "add", "remove", "listen", "whisper", "barge",
                        "audit"}),
    "supervisor": frozenset({"pause", "unpause", "add", "remove", "listen", "whisper", "barge"}),
    "viewer": frozenset(),
}
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2 ** 14, 8, 1


class UsersFileError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str
    phone: str = ""  # the supervisor's own phone, rung for listen-in / whisper / barge

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected), maxmem=128 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


_DUMMY_HASH = hash_password(secrets.token_urlsafe(8))


def authenticate(users: Mapping[str, User], name: str, password: str) -> User | None:
    user = users.get(name)
    # an unknown name costs the same scrypt as a known one: no user enumeration by timing
    ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    return user if ok and user else None


def parse_users(text: str, source: str = "users file") -> dict[str, User]:
    users: dict[str, User] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) not in (3, 4):
            raise UsersFileError(f"{source}:{number}: expected name:role:hash[:phone]")
        name, role, password_hash = parts[0].strip(), parts[1].strip(), parts[2].strip()
        if role not in ROLES:
            raise UsersFileError(f"{source}:{number}: role must be one of {', '.join(ROLES)}, not {role!r}")
        if not name or not password_hash.startswith("scrypt$"):
            raise UsersFileError(f"{source}:{number}: a name and an scrypt hash (hotline web hash-password)")
        if name in users:
            raise UsersFileError(f"{source}:{number}: user {name!r} listed twice")
        users[name] = User(name, role, password_hash, parts[3].strip() if len(parts) == 4 else "")
    if not users:
        raise UsersFileError(f"{source}: no users")
    return users


def load_users(environ: Mapping[str, str], announce: Callable[[str], None] | None = None) -> dict[str, User]:
    """The users file if HOTLINE_WEB_USERS names one, else the embedded admin and supervisor accounts."""
    path = environ.get("HOTLINE_WEB_USERS")
    if path:
        return parse_users(Path(path).read_text(encoding="utf-8"), path)
    announce = announce or (lambda text: print(text, file=sys.stderr, flush=True))
    users = {}
    for name in ("admin", "supervisor"):
        password = environ.get(f"HOTLINE_WEB_{name.upper()}_PASSWORD")
        if not password:
            password = secrets.token_urlsafe(12)
            announce(f"hotline web: generated password for {name!r}: {password} "
                     f"(set HOTLINE_WEB_{name.upper()}_PASSWORD or HOTLINE_WEB_USERS to choose your own)")
        users[name] = User(name, name, hash_password(password))
    return users


class LoginThrottle:
    """After `max_failures` failed logins within `window` seconds for a name (or an address), refuse that name
    (or address) for `lockout` seconds. Pure: the time is passed in."""

    def __init__(self, max_failures: int = 5, window: float = 900, lockout: float = 60) -> None:
        self.max_failures, self.window, self.lockout = max_failures, window, lockout
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def wait_for(self, keys: list[str], now: float) -> float:
        """Seconds until these keys may try again (0 when they may now)."""
        return max([self._locked_until.get(k, 0.0) - now for k in keys] + [0.0])

    def failed(self, keys: list[str], now: float) -> None:
        for key in keys:
            recent = [t for t in self._failures.get(key, []) if t > now - self.window] + [now]
            self._failures[key] = recent
            if len(recent) >= self.max_failures:
                self._locked_until[key] = now + self.lockout
                self._failures[key] = []
        if len(self._failures) > 10000:  # a spray of names must not grow memory without end
            self._failures.clear()

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)
