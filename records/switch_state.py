"""What a switch-state reader sees (records.switches writes it), and a reader without SQLAlchemy.

Kept free of SQLAlchemy so the classic AGI wrapper, a process per call, can read the state with the plain
DB-API driver (sqlite3, psycopg) in a few milliseconds instead of importing an ORM per call.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class SwitchState:
    name: str
    active: bool
    changed_at: datetime
    changed_by: str
    via: str
    why: str
    until: datetime | None = None

    def on_at(self, at: datetime) -> bool:
        """On at `at`: switched on and not expired (an expired switch is off without anyone flipping it)."""
        return self.active and (self.until is None or at < self.until)


@dataclass(frozen=True)
class Snapshot:
    """What a reader saw: every state row and the revision (highest audit id) they include."""

    states: dict[str, SwitchState]
    revision: int

    def active_names(self, at: datetime) -> frozenset[str]:
        return frozenset(name for name, state in self.states.items() if state.on_at(at))


_STATE_SQL = "SELECT name, active, changed_at, changed_by, via, why, until FROM switch_states"
_REVISION_SQL = "SELECT MAX(id) FROM switch_events"


def read_snapshot_light(url: str, timeout: float = 1.0) -> Snapshot:
    """The same Snapshot through the plain DB-API driver (sqlite3, psycopg), without SQLAlchemy: for the classic
    AGI wrapper, a process per call, where importing SQLAlchemy would cost more than the call itself."""
    scheme, sep, rest = url.partition("://")
    backend = scheme.split("+")[0]
    if backend == "sqlite":
        import sqlite3
        path = rest[1:] if rest.startswith("/") else rest          # sqlite:///relative, sqlite:////absolute
        if not sep or not path or path.startswith(":memory:"):
            return Snapshot({}, 0)
        conn = sqlite3.connect(f"file:{path.split('?')[0]}?mode=ro", uri=True, timeout=timeout)
    elif backend == "postgresql":
        import psycopg
        conn = psycopg.connect(f"postgresql://{rest}", connect_timeout=max(1, round(timeout)))
    else:
        raise ValueError(f"unsupported database {backend!r}")
    try:
        rows = conn.execute(_STATE_SQL).fetchall()
        revision = conn.execute(_REVISION_SQL).fetchone()[0] or 0
    finally:
        conn.close()
    states = {}
    for name, active, changed_at, by, via, why, until in rows:
        states[name] = SwitchState(name, bool(active), _utc(changed_at), by, via, why, _utc(until) if until else None)
    return Snapshot(states, int(revision))


def _utc(value) -> datetime:
    """SQLite gives the text of a naive UTC instant (records.schema.UtcDateTime); PostgreSQL an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
