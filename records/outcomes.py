"""How queued calls ended, from AMI events: a sans-I/O tracker that turns queue events into the outcome
record (revision 1) of each call. Bytes and clocks stay outside: feed it event dicts and their instant.

    tracker = QueueOutcomeTracker()
    ami.on_event(lambda ev: [recorder.record(r) for r in tracker.feed(ev, utc_now())])

The engine's own record (revision 0, written when the IVR has decided) holds the routing facts; this one
adds wait, who answered, outcome and hang-up cause (the database merges them by uniqueid).
One tracker per AMI connection (Asterisk uniqueids are per server).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Mapping

from records.types import CallRecord, Outcome

LINE_IN_NAME = re.compile(r"^\[(\d{3,6})\]")   # CALLERID(name) = "[<line>] <original name>" (engine contract)
MAX_AGE = timedelta(hours=12)                   # a call whose Hangup we never saw (AMI link lost) is dropped


@dataclass
class _Queued:
    uniqueid: str
    dialed: str
    line: str
    caller: str | None
    joined_at: datetime
    queue: str
    queue_joined_at: datetime
    waited: float = 0.0                      # seconds in queues left before this one
    left_after: float | None = None          # left the current queue after this many seconds, unanswered (so far)
    wait: float | None = None
    answered_by: str | None = None
    abandoned: bool = False
    seen: datetime = field(default=None)     # type: ignore[assignment]


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class QueueOutcomeTracker:
    def __init__(self, max_age: timedelta = MAX_AGE) -> None:
        self._calls: dict[str, _Queued] = {}
        self._max_age = max_age

    def __len__(self) -> int:
        return len(self._calls)

    def feed(self, event: Mapping[str, str], at: datetime) -> list[CallRecord]:
        name = event.get("Event")
        uniqueid = event.get("Uniqueid") or ""
        handler = getattr(self, f"_on_{name}", None) if name else None
        out: list[CallRecord] = []
        if handler is not None and uniqueid:
            record = handler(uniqueid, event, at)
            if record is not None:
                out.append(record)
        self._evict(at)
        return out

    def _on_QueueCallerJoin(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        call = self._calls.get(uniqueid)
        if call is None:
            match = LINE_IN_NAME.match(ev.get("CallerIDName") or "")
            dialed = ev.get("Exten") or ""
            call = _Queued(uniqueid=uniqueid, dialed=dialed, line=match.group(1) if match else dialed,
                           caller=ev.get("CallerIDNum") or None, joined_at=at, queue=ev.get("Queue") or "",
                           queue_joined_at=at, seen=at)
            self._calls[uniqueid] = call
        else:   # overflow into the next queue: the wait goes on
            call.waited += call.left_after if call.left_after is not None else 0.0
            call.queue, call.queue_joined_at, call.left_after = ev.get("Queue") or call.queue, at, None
        call.seen = at

    def _on_QueueCallerLeave(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        call = self._calls.get(uniqueid)
        if call is not None and call.answered_by is None and not call.abandoned:
            # Asterisk sends Leave just before AgentConnect too: only Hangup or the next Join settles it.
            call.left_after = (at - call.queue_joined_at).total_seconds()
            call.seen = at

    def _on_AgentConnect(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        call = self._calls.get(uniqueid)
        if call is None:
            return
        hold = _seconds(ev.get("HoldTime"))
        this_queue = hold if hold is not None else (at - call.queue_joined_at).total_seconds()
        call.wait = call.waited + this_queue
        call.answered_by = ev.get("Interface") or ev.get("MemberName") or ev.get("DestChannel")
        call.left_after = None
        call.seen = at

    def _on_QueueCallerAbandon(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        call = self._calls.get(uniqueid)
        if call is None:
            return
        hold = _seconds(ev.get("HoldTime"))
        call.wait = call.waited + (hold if hold is not None else (at - call.queue_joined_at).total_seconds())
        call.abandoned = True
        call.seen = at

    def _on_Hangup(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> CallRecord | None:
        call = self._calls.pop(uniqueid, None)
        if call is None:
            return None
        if call.answered_by is not None:
            outcome = Outcome.ANSWERED
        elif call.abandoned:
            outcome = Outcome.ABANDONED
        elif call.left_after is not None:       # the queue gave up (timeout, no members): not the caller
            outcome = Outcome.NO_ANSWER
            call.wait = call.waited + call.left_after
        else:                                   # hung up while waiting, no Abandon event seen
            outcome = Outcome.ABANDONED
            call.wait = call.waited + (at - call.queue_joined_at).total_seconds()
        cause = " ".join(part for part in (ev.get("Cause"), ev.get("Cause-txt")) if part) or None
        return CallRecord(uniqueid=call.uniqueid, dialed=call.dialed, line=call.line, caller=call.caller,
                          arrived_at=call.joined_at, action="queue", target=call.queue,
                          wait_seconds=max(0.0, call.wait) if call.wait is not None else None,
                          answered_by=call.answered_by, outcome=outcome,
                          hangup_cause=cause,
                          ended_at=at, revision=1)

    def _evict(self, at: datetime) -> None:
        stale = [u for u, c in self._calls.items() if at - c.seen > self._max_age]
        for uniqueid in stale:
            del self._calls[uniqueid]
