"""The override switches as one engine routes with them, and the FastAGI entry `switch` of the phone feature code.

Speed (issue 14): no SQL on a call's path. `SwitchBoard.current` is one attribute load; every call takes the
names that are on at its own instant from it (an expiry takes effect on the dot, without a refresh). A
background task reads the small switch_states table every `interval` seconds in a worker thread and swaps
a new snapshot in; a flip made in this process (the phone code) is applied to the board at once; SIGUSR1 (sent
by `hotline switch on|off` to the local engine) refreshes at once and writes `ack_path` with the revision seen,
so the CLI can say the flip is in force before it returns.

Staleness bound: a flip from another process or engine is seen within `interval` (default 2 s) plus one read.
While the database cannot be read, the last snapshot stays in force (and keeps expiring on time); logged once.

A classic AGI process builds a board too (one read per call): asyncio is imported only by what runs in the
daemon's loop, and logging goes through ivr.calllog.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ivr import calllog
from ivr.agi.commands import SetVariable

if TYPE_CHECKING:
    import asyncio

log = calllog.get_logger()
DEFAULT_INTERVAL = 2.0
RESULT_VARIABLE = "HOTLINE_SWITCH_RESULT"     # on | off | failed, read by the feature code's dialplan


def _empty():
    from records.switch_state import Snapshot
    return Snapshot({}, 0)


class SwitchBoard:
    def __init__(self, store: Any = None, *, interval: float = DEFAULT_INTERVAL, ack_path: Path | None = None) -> None:
        self.store = store                 # records.switches.SwitchStore, or None (no database: nothing is on)
        self.interval = interval
        self.ack_path = ack_path
        self.current = _empty()
        self._wake: asyncio.Event | None = None
        self._failing = False

    def active(self, at: datetime) -> frozenset[str]:
        return self.current.active_names(at)

    def refresh(self) -> bool:
        """Read the state (blocking: run it in a thread). A failed read keeps the snapshot in force."""
        if self.store is None:
            return False
        try:
            snapshot = self.store.snapshot()
        except Exception as exc:
            if not self._failing:
                log.warning("switches.refresh_failed", error=f"{type(exc).__name__}: {exc}",
                            effect="the last known switch state stays in force")
            self._failing = True
            return False
        if self._failing:
            log.info("switches.refresh_recovered")
        self._failing = False
        if snapshot.revision != self.current.revision:
            log.info("switches.state", revision=snapshot.revision,
                     on=sorted(snapshot.active_names(datetime.now(timezone.utc))))
        self.current = snapshot
        return True

    def apply(self, state: Any, revision: int) -> None:
        """A flip made in this process: in force for the next call, before any refresh."""
        if revision < self.current.revision:
            return
        states = dict(self.current.states)
        states[state.name] = state
        self.current = replace(self.current, states=states, revision=revision)

    def wake(self) -> None:
        """Refresh now (SIGUSR1 from `hotline switch` on this host)."""
        if self._wake is not None:
            self._wake.set()

    def _write_ack(self) -> None:
        if self.ack_path is None:
            return
        try:
            self.ack_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.ack_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "revision": self.current.revision}), encoding="utf-8")
            os.replace(tmp, self.ack_path)
        except OSError as exc:
            log.warning("switches.ack_failed", error=str(exc))

    async def run(self) -> None:
        """Refresh every `interval` seconds (or at once when woken) until cancelled."""
        import asyncio

        self._wake = asyncio.Event()
        while True:
            woken = self._wake.is_set()
            self._wake.clear()
            await asyncio.to_thread(self.refresh)
            if woken:
                await asyncio.to_thread(self._write_ack)
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass


def phone_operator(env: dict[str, str]) -> str:
    """Who flipped it from a phone: the calling extension (an admin's desk phone, not a citizen)."""
    number = (env.get("callerid") or "").strip()
    return f"phone {number}" if number and number.lower() != "unknown" else "phone (unknown extension)"


class SwitchEntry:
    """FastAGI script `switch`: AGI(agi://engine/switch,NAME,on|off) from the PIN-checked feature code."""

    def __init__(self, config: Any, board: SwitchBoard, clock: Callable[[], datetime]) -> None:
        self.config, self.board, self.clock = config, board, clock

    def _flip(self, name: str, active: bool, env: dict[str, str]) -> tuple[Any, int]:
        table = self.config.current.table
        code = table.switches[name].code if name in table.switches else "?"
        return self.board.store.flip(name, active, by=phone_operator(env), via="phone", at=self.clock(),
                                     why=f"feature code *{95 if active else 96}{code}", known=table.switches)

    async def handle(self, request: Any) -> str:
        import asyncio

        env = request.env
        name, word = (env.get("arg_1") or "").strip(), (env.get("arg_2") or "").strip().lower()
        result = "failed"
        try:
            if word not in ("on", "off"):
                raise ValueError(f"arg_2 must be on or off, got {word!r}")
            if self.board.store is None:
                raise RuntimeError("no records database: switches cannot be flipped")
            state, revision = await asyncio.to_thread(self._flip, name, word == "on", env)
            self.board.apply(state, revision)
            result = word
            log.info("switches.flipped", switch=name, on=state.active, by=state.changed_by, via="phone",
                     revision=revision)
        except Exception as exc:
            log.error("switches.flip_failed", switch=name, wanted=word, error=f"{type(exc).__name__}: {exc}")
        try:
            await request.send(SetVariable(RESULT_VARIABLE, result))
        finally:
            request.writer.close()
        return result
