"""Switch state in SQL: which override switches are on, by whom, since when, why, until when; every flip audited.

One small table read by every engine (a few rows: the whole table is read at each refresh) and written by the
web view, the CLI and the phone feature code (through the engine). A flip is one transaction: the state row and
its audit row together. The audit row's id is the state's revision: a reader that saw revision N knows it has
every flip up to N.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import Engine, func, insert, select, update

from records.schema import switch_events, switch_states
from records.switch_state import Snapshot, SwitchState

__all__ = ["Snapshot", "SwitchError", "SwitchState", "SwitchStore"]

VIA = ("web", "cli", "phone")
MAX_WHY = 500


class SwitchError(ValueError):
    """A flip refused before anything was written (unknown switch, no reason, expiry in the past)."""


class SwitchStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def for_url(cls, url: str, op_timeout: float = 5.0) -> "SwitchStore":
        from records.db import ready_engine
        return cls(ready_engine(url, op_timeout=op_timeout))

    def snapshot(self) -> Snapshot:
        with self.engine.connect() as conn:
            rows = conn.execute(select(switch_states)).mappings().all()
            revision = conn.execute(select(func.max(switch_events.c.id))).scalar() or 0
        return Snapshot({r["name"]: SwitchState(**r) for r in rows}, int(revision))

    def flip(self, name: str, active: bool, *, by: str, via: str, why: str, at: datetime,
             until: datetime | None = None, known: Iterable[str] | None = None) -> tuple[SwitchState, int]:
        """Set switch `name` on or off; returns the new state and its revision. `known`: the table's switch
        names (a flip of a switch the table does not declare is refused)."""
        why = (why or "").strip()
        if known is not None and name not in set(known):
            raise SwitchError(f"no switch '{name}' in the routing table (known: {', '.join(sorted(known)) or 'none'})")
        if not why:
            raise SwitchError("say why (--why): the audit trail keeps who, when and why")
        if len(why) > MAX_WHY:
            raise SwitchError(f"the reason is longer than {MAX_WHY} characters")
        if via not in VIA:
            raise SwitchError(f"via must be one of {', '.join(VIA)}")
        if at.tzinfo is None or (until is not None and until.tzinfo is None):
            raise SwitchError("instants must carry their time zone")
        if not active:
            until = None
        elif until is not None and until <= at:
            raise SwitchError(f"--until {until.isoformat()} is not in the future")
        values = dict(active=active, changed_at=at.astimezone(timezone.utc), changed_by=by, via=via, why=why,
                      until=until)
        with self.engine.begin() as conn:
            done = conn.execute(update(switch_states).where(switch_states.c.name == name).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(switch_states).values(name=name, **values))
            revision = conn.execute(insert(switch_events).values(
                at=values["changed_at"], name=name, active=active, by=by, via=via, why=why, until=until)
            ).inserted_primary_key[0]
        return SwitchState(name, **values), int(revision)

    def events(self, limit: int = 50, name: str | None = None) -> list[dict]:
        query = select(switch_events).order_by(switch_events.c.id.desc()).limit(limit)
        if name is not None:
            query = query.where(switch_events.c.name == name)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
