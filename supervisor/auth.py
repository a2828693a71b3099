"""Web users, roles and password hashes (stdlib scrypt), and the login back-off.

Users come from the file named by HOTLINE_WEB_USERS (`name:role:hash[:phone]` lines, `#` comments; make hashes
with `hotline web hash-password`; read again whenever it changes), or else two embedded accounts, `admin` and
`supervisor`, whose passwords come from HOTLINE_WEB_ADMIN_PASSWORD / HOTLINE_WEB_SUPERVISOR_PASSWORD; when those
are unset a random password is generated at start and printed once to the console. Nothing secret is ever stored in git.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

import structlog

ROLES = ("admin", "supervisor", "viewer")
# What each role may do. Only admins see caller numbers in full; viewers watch and act on nothing.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"full_numbers", "pause", "unpause", "add", "remove", "listen", "whisper", "barge",
                        "audit"}),
    "supervisor": frozenset({"pause", "unpause", "add", "remove", "listen", "whisper", "barge"}),
    "viewer": frozenset(),
}
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2 ** 14, 8, 1
log = structlog.get_logger(__name__)


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


class UsersFile(Mapping[str, User]):
    """The users file, read again whenever it changes (a stat per look-up): a changed password or a removed
    user takes effect at once, and the sessions opened with the old password end (supervisor.sessions). A file
    that no longer parses keeps the users as they were, with an error logged, until it is fixed."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._stamp = self._stat()
        self._text = self.path.read_text(encoding="utf-8")
        self._users = parse_users(self._text, path)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _current(self) -> dict[str, User]:
        stamp = self._stat()
        # a rewrite within one timestamp tick keeps mtime and size: while the file is that fresh, read it
        fresh = stamp is not None and time.time() - stamp[0] / 1e9 < 2.0
        if stamp is not None and (stamp != self._stamp or fresh):
            self._stamp = stamp
            try:
                text = self.path.read_text(encoding="utf-8")
                if text != self._text:
                    self._users, self._text = parse_users(text, str(self.path)), text
                    log.info("supervisor.users_reloaded", path=str(self.path), users=len(self._users))
            except (OSError, UnicodeDecodeError, UsersFileError) as exc:
                log.error("supervisor.users_file_invalid", path=str(self.path), error=str(exc))
        return self._users

    def __getitem__(self, name: str) -> User:
        return self._current()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


def load_users(environ: Mapping[str, str], announce: Callable[[str], None] | None = None) -> Mapping[str, User]:
    """The users file if HOTLINE_WEB_USERS names one, else the embedded admin and supervisor accounts."""
    path = environ.get("HOTLINE_WEB_USERS")
    if path:
        return UsersFile(path)
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
    """Exponential back-off per (name, address): slows a guesser without handing him a denial of service.

    The key is the pair, so nobody can lock `admin` out from his own address, and five typos behind one NAT
    slow only that name from that address. `free` attempts may fail; then each further attempt must wait
    `base` s, doubled per failure, at most `cap` s. `attempt()` checks and counts in one step, *before* the slow
    hash: a login is counted as a failure from the moment it is let through and only `succeeded()` takes the
    count back, so guesses sent in parallel cannot all slip past the check. Pure: the time is passed in.
    """

    def __init__(self, free: int = 4, base: float = 2.0, cap: float = 300.0, forget_after: float = 3600.0,
                 max_entries: int = 10000) -> None:
        self.free, self.base, self.cap = free, base, cap
        self.forget_after, self.max_entries = forget_after, max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()  # failures, last try

    def delay(self, failures: int) -> float:
        """How long after the last try the next one may come, with `failures` counted."""
        if failures < self.free:
            return 0.0
        return min(self.cap, self.base * 2.0 ** (failures - self.free))

    def attempt(self, name: str, address: str, now: float) -> float:
        """0: go ahead (the attempt is counted already); otherwise the seconds left before the next try."""
        key = (name, address)
        failures, last = self._entries.get(key, (0, now))
        if now - last > self.forget_after:
            failures = 0
        wait = last + self.delay(failures) - now
        if wait > 0:
            return wait
        self._entries[key] = (failures + 1, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:  # a spray of names must not grow memory without end
            self._entries.popitem(last=False)
        return 0.0

    def succeeded(self, name: str, address: str) -> None:
        self._entries.pop((name, address), None)
