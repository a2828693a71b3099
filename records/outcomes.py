"""How queued calls ended, from AMI events: a sans-I/O tracker that turns queue events into the outcome
record (revision 1) of each call. Bytes and clocks stay outside: feed it event dicts and their instant.

    tracker = QueueOutcomeTracker()
    ami.on_event(lambda ev: [recorder.record(r) for r in tracker.feed(ev, utc_now())])

The engine's own record (revision 0, written when the IVR has decided) holds the routing facts; this one
adds wait, who answered, outcome and hang-up cause (the database merges them by uniqueid).
One tracker per AMI connection (Asterisk uniqueids are per server).

Dialed number and arrival: the generated dialplan queues from hotline-queue-<id>,s, so QueueCallerJoin's Exten
is "s"; its UserEvent HotlineQueued (before Queue()) carries HOTLINE_DIALED, and the caller channel's Newchannel
is the call's arrival (a stalled engine or an IVR may have held it long before the queue).

Outcomes: answered (an agent of any queue on the way answered), abandoned (the caller hung up while waiting),
no_answer (the queues gave up: the caller was moved on by the table with no queue left, or out of the queue by a
Redirect, and no agent answered). app_queue sends QueueCallerAbandon on timeout and leave-empty too, so an
Abandon is the caller's only when the caller's HangupRequest came before it (as Asterisk 22 sends it) or its
Hangup follows within ABANDON_GRACE; the generated dialplan's UserEvent HotlineQueueLeft or the next queue's
QueueCallerJoin make it an overflow (see supervisor/state.py, which tells them apart the same way).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from records.figures import ABANDONED, ANSWERED, LEFT, OVERFLOWED, leg
from records.types import CallRecord, Outcome

LINE_IN_NAME = re.compile(r"^\[(\d{3,6})\]")   # CALLERID(name) = "[<line>] <original name>" (engine contract)
MAX_AGE = timedelta(hours=12)                   # a call whose Hangup we never saw (AMI link lost) is dropped
ABANDON_GRACE = timedelta(seconds=1)            # a Hangup this soon after a QueueCallerAbandon: the caller's
QUEUE_LEFT_EVENT = "HotlineQueueLeft"           # the generated dialplan's UserEvent after Queue() returned
QUEUED_EVENT = "HotlineQueued"                  # the generated dialplan's UserEvent before Queue(): Dialed: the DID


@dataclass
class _Channel:
    """What we know of a channel before it queues: when it was created (its Newchannel: the call's real
    arrival) and the number it dialed (HotlineQueued's Dialed, the dialplan's HOTLINE_DIALED)."""
    seen: datetime
    created_at: datetime | None = None
    dialed: str | None = None


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
    hanging_up: bool = False                 # the caller's HangupRequest seen: an Abandon now is the caller's
    abandon_at: datetime | None = None       # a QueueCallerAbandon not yet known as abandon or overflow
    connected_at: datetime | None = None     # AgentConnect: the talk starts
    talk: float | None = None                # AgentComplete's TalkTime, when it comes before the Hangup
    seen: datetime = field(default=None)     # type: ignore[assignment]
    legs: list[dict[str, Any]] = field(default_factory=list)   # queues left so far (records.figures.leg)
    answered_at: datetime | None = None
    moved_on: bool = False                   # the dialplan's HotlineQueueLeft: the table moves the caller on
    leg_answered: bool = False               # an agent of the current queue answered
    leg_answered_at: datetime | None = None

    server: str | None = None                # the AMI server's name: its queue of that name

    def leg(self, left_at: datetime | None, wait: float | None, result: str | None) -> dict[str, Any]:
        return leg(self.queue, self.queue_joined_at, left_at, wait, result, self.server)

    def legs_with(self, current: dict[str, Any] | None) -> tuple[dict[str, Any], ...]:
        return tuple(self.legs) + ((current,) if current else ())


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class QueueOutcomeTracker:
    def __init__(self, max_age: timedelta = MAX_AGE, server: str | None = None) -> None:
        self._server = server
        self._calls: dict[str, _Queued] = {}
        self._channels: dict[str, _Channel] = {}     # insertion order is time order: evicted from the front
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

    def _on_Newchannel(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        self._channels[uniqueid] = _Channel(seen=at, created_at=at)

    def _on_QueueCallerJoin(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        call = self._calls.get(uniqueid)
        if call is None:
            known = self._channels.get(uniqueid)
            match = LINE_IN_NAME.match(ev.get("CallerIDName") or "")
            exten = ev.get("Exten") or ""
            # The generated dialplan queues from hotline-queue-<id>,s: Exten is "s" there, the number dialed
            # comes from its HotlineQueued event (older dialplans: the line of the engine's tag).
            dialed = (known.dialed if known and known.dialed else
                      exten if exten.isdigit() else match.group(1) if match else exten)
            line = match.group(1) if match else dialed
            # Arrival is the channel's creation (its Newchannel); the join only if we never saw it (AMI link
            # up after the call arrived).
            arrived = known.created_at if known and known.created_at else at
            call = _Queued(uniqueid=uniqueid, dialed=dialed, line=line,
                           caller=ev.get("CallerIDNum") or None, joined_at=arrived, queue=ev.get("Queue") or "",
                           queue_joined_at=at, seen=at, server=self._server)
            self._calls[uniqueid] = call
        elif call.leg_answered:     # answered here, then put into another queue (an escalation): a new leg
            this_queue = (call.wait or 0.0) - call.waited
            call.legs.append(call.leg(call.leg_answered_at, this_queue, ANSWERED))
            call.waited = call.wait or call.waited
            call.queue, call.queue_joined_at, call.left_after = ev.get("Queue") or call.queue, at, None
            call.leg_answered = call.hanging_up = call.moved_on = False
        else:   # overflow into the next queue: the wait goes on
            call.abandon_at = None              # an overflow (HotlineQueueLeft not seen: the join says it)
            left = call.left_after if call.left_after is not None else (at - call.queue_joined_at).total_seconds()
            call.legs.append(call.leg(call.queue_joined_at + timedelta(seconds=left), left, OVERFLOWED))
            call.waited += call.left_after if call.left_after is not None else 0.0
            call.queue, call.queue_joined_at, call.left_after = ev.get("Queue") or call.queue, at, None
            call.hanging_up = call.moved_on = False
        call.seen = at

    def _on_QueueCallerLeave(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        call = self._calls.get(uniqueid)
        if call is not None and call.answered_by is None and not call.abandoned and call.abandon_at is None:
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
        call.answered_at = call.answered_at or at
        call.leg_answered, call.leg_answered_at = True, at
        call.left_after = None
        call.connected_at = at
        call.seen = at

    def _on_AgentComplete(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        call = self._calls.get(uniqueid)
        if call is not None and call.answered_by is not None:
            call.talk = _seconds(ev.get("TalkTime"))
            call.seen = at

    def _on_QueueCallerAbandon(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        call = self._calls.get(uniqueid)
        if call is None:
            return
        hold = _seconds(ev.get("HoldTime"))
        this_queue = hold if hold is not None else (at - call.queue_joined_at).total_seconds()
        call.wait = call.waited + this_queue
        if call.hanging_up:
            call.abandoned = True
        else:                                   # timeout, leave-empty or Redirect: what follows decides
            call.abandon_at, call.left_after = at, this_queue
        call.seen = at

    def _on_HangupRequest(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        call = self._calls.get(uniqueid)
        if call is not None and call.answered_by is None:
            call.hanging_up = True

    _on_SoftHangupRequest = _on_HangupRequest

    def _on_UserEvent(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> None:
        if ev.get("UserEvent") == QUEUED_EVENT:
            dialed = (ev.get("Dialed") or "").strip()
            if dialed:
                known = self._channels.setdefault(uniqueid, _Channel(seen=at))
                known.dialed, known.seen = dialed, at
            return
        call = self._calls.get(uniqueid)
        if call is None or ev.get("UserEvent") != QUEUE_LEFT_EVENT or call.answered_by is not None:
            return
        call.abandon_at = None                  # an overflow: the table moves the caller on
        call.moved_on = True
        if call.left_after is None:             # Queue() returned without a join (full, missing)
            call.left_after = (at - call.queue_joined_at).total_seconds()
        call.seen = at

    def _on_Hangup(self, uniqueid: str, ev: Mapping[str, str], at: datetime) -> CallRecord | None:
        self._channels.pop(uniqueid, None)
        call = self._calls.pop(uniqueid, None)
        if call is None:
            return None
        if call.abandon_at is not None and at - call.abandon_at <= ABANDON_GRACE:
            call.abandoned = True               # its hang-up request was not seen, the hang-up itself was
        if call.answered_by is not None:
            outcome = Outcome.ANSWERED
        elif call.abandoned:
            outcome = Outcome.ABANDONED
        elif call.left_after is not None:       # the queues gave up (or a Redirect moved it on): not the caller
            outcome = Outcome.NO_ANSWER
            call.wait = call.waited + call.left_after
        else:                                   # hung up while waiting, no Abandon event seen
            outcome = Outcome.ABANDONED
            call.wait = call.waited + (at - call.queue_joined_at).total_seconds()
        cause = " ".join(part for part in (ev.get("Cause"), ev.get("Cause-txt")) if part) or None
        return self._record(call, outcome, cause, at)

    def in_progress(self, uniqueid: str) -> CallRecord | None:
        """What is known of a call still being tracked, for today's live figures: answered as soon as an agent
        answered, the queues it overflowed from; no outcome yet otherwise. Never written to the records."""
        call = self._calls.get(uniqueid)
        if call is None:
            return None
        known = (Outcome.ANSWERED if call.answered_by is not None else
                 Outcome.ABANDONED if call.abandoned else None)     # the caller's hang-up request came first
        return self._record(call, known, None, None)

    @staticmethod
    def _record(call: _Queued, outcome: Outcome | None, cause: str | None, ended: datetime | None) -> CallRecord:
        this_queue = (call.wait - call.waited) if call.wait is not None else None
        result = _leg_result(call, final=ended is not None)
        left = call.leg_answered_at if result == ANSWERED else ended
        current = call.leg(left, this_queue if result else None, result)
        # Talk time for the forecast's handle time: Asterisk's own count, else connect to hang-up (an
        # AgentComplete deferred past the caller's Hangup, or one we missed).
        talk = call.talk if call.talk is not None else (
            max(0.0, (ended - call.connected_at).total_seconds())
            if call.connected_at is not None and ended is not None else None)
        return CallRecord(uniqueid=call.uniqueid, dialed=call.dialed, line=call.line, caller=call.caller,
                          arrived_at=call.joined_at, action="queue", target=call.queue,
                          wait_seconds=max(0.0, call.wait) if call.wait is not None else None,
                          answered_by=call.answered_by, outcome=outcome,
                          hangup_cause=cause, ended_at=ended, revision=1,
                          talk_seconds=talk if call.answered_by is not None else None,
                          queue_legs=call.legs_with(current), answered_at=call.answered_at)

    def _evict(self, at: datetime) -> None:
        while self._channels:
            uniqueid, oldest = next(iter(self._channels.items()))
            if at - oldest.seen <= self._max_age:
                break
            del self._channels[uniqueid]
        stale = [u for u, c in self._calls.items() if at - c.seen > self._max_age]
        for uniqueid in stale:
            del self._calls[uniqueid]


def _leg_result(call: _Queued, *, final: bool) -> str | None:
    """How the call left its current queue: answered there, abandoned there (as soon as known), else at the
    hang-up: moved on by the table (HotlineQueueLeft), taken out by someone (a Redirect), or hung up waiting."""
    if call.leg_answered:
        return ANSWERED
    if call.abandoned:
        return ABANDONED
    if not final:
        return None
    if call.left_after is not None:
        return OVERFLOWED if call.moved_on else LEFT
    return ABANDONED
