"""Live queue state for the supervisors, built from AMI events. Pure: no I/O, the time is passed in.

Several Asterisk servers feed one view, so everything is keyed by server name, then queue name.
`apply()` takes the live events (QueueCallerJoin, AgentConnect, QueueMemberPause, ...); `resync()` takes
a QueueStatus reply (QueueParams / QueueMember / QueueEntry), sent after every (re)connect, and replaces
the queues' members and waiting callers with what Asterisk says now.

Today's figures (answered, abandoned, overflowed, service level, per queue and per line) are not Asterisk's
(its Completed/Abandoned run since its last reload): they are records.figures over today's calls, seeded from the
SQL records (`seed()`, at start and after the day rolls at midnight Asia/Shanghai) and kept live by the same
records.outcomes tracker that writes each call's outcome to SQL, one row per uniqueid (never counted twice).

Abandoned vs overflowed (records.outcomes decides, as described here): app_queue sends QueueCallerAbandon whenever a caller leaves without an answer, also on
its timeout or leave-empty (the overflow path of the table). In a real abandon the caller's HangupRequest comes
*before* QueueCallerAbandon (Asterisk 22: tests/transcripts/ami-abandon-while-ringing-local.txt), so that one
counts at once. Any other QueueCallerAbandon is held as pending until what follows decides it: the generated
dialplan's UserEvent HotlineQueueLeft or a QueueCallerJoin of the next queue -> overflowed; the caller's Hangup
within ABANDON_GRACE s -> abandoned (a hang-up request we did not see); a later Hangup -> neither (a Redirect out
of the waiting queue moved the caller on, ami-queue-redirect.txt: not the caller's doing, not the table's).

`view()` renders one JSON-ready snapshot; with `full_numbers=False` caller numbers are masked *here*, on the
server side, so a role that may not see them never receives them. Queues come in the routing table's order with
the table's names (supervisor.names.Directory); a server whose link is down is rendered as it was when the link
dropped (its wait clocks stop: the figures are frozen, not live), flagged with since when.

Callers in the IVR are counted from AMI, not from the engine's memory, so several engines behind one Asterisk
and several Asterisk servers add up (an in-process count would see one engine only). Our AMI user reads the
call, agent and user classes (dialplan/manager.py), so no VarSet or Newexten reaches it: a call enters with its
Newchannel in the carriers' context (hotline-from-carrier, where every trunk delivers and which goes straight
to the engine) and is "in the IVR" until it joins a queue, starts a Dial (transfer, emergency), enters a
bridge or hangs up. With read=all (VarSet) the engine's HOTLINE_ACTION, set when it has decided, ends it too.
A call whose end we missed (link down) ages out after IVR_MAX_AGE; a full resync starts the count afresh, and
`resync_ivr()` takes a CoreShowChannels reply (write=reporting) after each (re)connect: the channels running
AGI in the engine's context are the calls in the IVR right now, so a view started mid-call counts them too.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from records.figures import CallFigures, DayFigures, Tally
from records.outcomes import QueueOutcomeTracker
from routing.privacy import mask_number, mask_text
from supervisor.names import Directory

DEFAULT_SERVICE_LEVEL = 15  # seconds: the national 12345 standard asks for an answer within 15 s
HOTLINE_TZ = ZoneInfo("Asia/Shanghai")

# Asterisk device states (QueueMember/QueueMemberStatus "Status"), app_queue's view of a member's device.
_BUSY_STATES = {2, 3, 6, 7, 8}  # in use, busy, ringing, ring+in use, on hold
_UNAVAILABLE_STATES = {4, 5}  # invalid, unavailable (0 = unknown counts as free, as app_queue does)
_RINGING_STATES = {6, 7}
MEMBER_STATES = ("free", "busy", "paused", "unavailable")

_LINE_PREFIX = re.compile(r"^\[(?P<line>[0-9A-Za-z+*#-]{1,24})\]\s*(?P<name>.*)$")
_RECENT_MAX = 2000  # callers that left the queue, remembered for the AgentConnect that follows
ABANDON_GRACE = 1.0  # s: a Hangup this soon after a pending QueueCallerAbandon makes it an abandon
QUEUE_LEFT_EVENT = "HotlineQueueLeft"  # the generated dialplan's UserEvent (dialplan/extensions.py, _queue)
INBOUND_CONTEXT = "hotline-from-carrier"  # dialplan.extensions.CTX_CARRIER (a test keeps them equal)
ENGINE_CONTEXT = "hotline-engine"  # dialplan.extensions.CTX_ENGINE: where AGI() runs the engine
IVR_DECIDED_VAR = "HOTLINE_ACTION"  # set by the engine last, when the IVR has decided
IVR_MAX_AGE = 900.0  # s: a call "in the IVR" longer than this lost its end to a broken link; not counted


def split_line(callerid_name: str | None) -> tuple[str, str]:
    """"[12320] Zhang San" -> ("12320", "Zhang San"); no bracket prefix -> ("", name)."""
    name = (callerid_name or "").strip()
    if name in ("<unknown>", ""):
        return "", ""
    m = _LINE_PREFIX.match(name)
    return (m["line"], m["name"].strip()) if m else ("", name)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def local_day(now: float) -> date:
    return datetime.fromtimestamp(now, timezone.utc).astimezone(HOTLINE_TZ).date()


@dataclass
class Caller:
    uniqueid: str
    number: str
    name: str
    line: str
    joined_at: float
    position: int = 0


@dataclass
class Member:
    interface: str
    name: str = ""
    state_interface: str = ""
    membership: str = ""
    penalty: int = 0
    status: int = 0
    in_call: bool = False
    paused: bool = False
    reason: str = ""
    paused_since: float | None = None
    calls_taken: int = 0
    ringing_for: str | None = None  # uniqueid of the caller app_queue is ringing this member for (AgentCalled)
    seen_state: str = ""            # the state last seen, so `state_since` moves only when the state does
    state_since: float | None = None
    talk_since: float | None = None  # the current call's AgentConnect
    talk_today: int = 0              # s: AgentComplete TalkTime, local day `talk_day`
    talk_day: date | None = None

    @property
    def state(self) -> str:
        if self.paused:
            return "paused"
        if self.status in _UNAVAILABLE_STATES:
            return "unavailable"
        if self.in_call or self.ringing_for is not None or self.status in _BUSY_STATES:
            return "busy"
        return "free"

    @property
    def spy_prefix(self) -> str:
        """Channel-name prefix for ChanSpy: the device, without the Local channel's '/n' flag."""
        base = self.state_interface or self.interface
        return base[:-2] if base.endswith("/n") else base


@dataclass
class QueueState:
    name: str
    strategy: str = ""
    callers: dict[str, Caller] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    day: date | None = None
    figures: DayFigures | None = field(default=None, repr=False)   # the LiveState's: shared by every queue
    server: str = ""

    def roll_day(self, now: float) -> None:
        self.day = local_day(now)
        if self.figures is not None:
            self.figures.start_day(self.day)

    @property
    def today(self) -> Tally:
        return self.figures.queue(self.server, self.name) if self.figures is not None else Tally()

    @property
    def lines_today(self) -> dict[str, Tally]:
        return self.figures.queue_lines(self.server, self.name) if self.figures is not None else {}

    def _total(self, name: str) -> int:
        return getattr(self.figures.total(self.server, self.name), name) if self.figures is not None else 0

    @property
    def answered_total(self) -> int:  # since this process started: Prometheus counters never go back
        return self._total("answered")

    @property
    def abandoned_total(self) -> int:
        return self._total("abandoned")

    @property
    def overflowed_total(self) -> int:
        return self._total("overflowed")


@dataclass
class PendingAbandon:
    queue: str
    line: str
    at: float


@dataclass
class ServerState:
    name: str
    queues: dict[str, QueueState] = field(default_factory=dict)
    connected: bool = False
    synced_at: float | None = None
    lines: OrderedDict[str, str] = field(default_factory=OrderedDict)  # uniqueid -> HOTLINE_LINE
    recent: OrderedDict[str, Caller] = field(default_factory=OrderedDict)  # left the queue lately
    hanging_up: OrderedDict[str, float] = field(default_factory=OrderedDict)  # waiting callers' HangupRequest
    pending: OrderedDict[str, "PendingAbandon"] = field(default_factory=OrderedDict)  # abandon or overflow?
    figures: DayFigures | None = field(default=None, repr=False)
    tracker: QueueOutcomeTracker | None = field(default=None, repr=False)
    down_since: float | None = None  # link down (or never up) since; None while connected
    in_ivr: OrderedDict[str, float] = field(default_factory=OrderedDict)  # uniqueid -> entered the IVR at

    def __post_init__(self) -> None:
        self.tracker = self.tracker or QueueOutcomeTracker(server=self.name)

    def queue(self, name: str) -> QueueState:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = QueueState(name, figures=self.figures, server=self.name)
        return q


class LiveState:
    def __init__(self, service_level: int = DEFAULT_SERVICE_LEVEL) -> None:
        self.service_level = service_level
        self.servers: dict[str, ServerState] = {}
        self.version = 0  # bumped on every change, so watchers know when to redraw
        self.today = DayFigures(service_level, HOTLINE_TZ)   # today's figures, every server's calls
        self.directory = Directory()  # the table's names and order; ids alone until one is given

    def server(self, name: str) -> ServerState:
        s = self.servers.get(name)
        if s is None:
            s = self.servers[name] = ServerState(name, figures=self.today)
            self.today.sole_server = name if len(self.servers) == 1 else None
        return s

    # ---- today's figures ----------------------------------------------------------------------------
    def roll_day(self, now: float) -> bool:
        """At midnight Asia/Shanghai the figures start again (True: a new day, seed it)."""
        if self.today.start_day(local_day(now)):
            self.version += 1
            return True
        return False

    def seed(self, rows: Iterable[Any], now: float) -> int:
        """Today's calls from the SQL records (records.reports.day_rows): the figures a restart keeps. A call
        already known from live events is not counted again (one row per uniqueid)."""
        self.roll_day(now)
        changed = self.today.seed(rows, now)
        self.version += 1
        return changed

    def seed_failed(self, error: str) -> None:
        self.today.seed_error = error
        self.version += 1

    def _track(self, s: ServerState, event: Mapping[str, str], now: float) -> bool:
        """The event through the outcome tracker (as the engine's records get it): the call's live row."""
        at = datetime.fromtimestamp(now, timezone.utc)
        self.roll_day(now)
        changed = False
        try:
            for record in s.tracker.feed(event, at):
                changed = self.today.put(CallFigures.of(record), live=True) or changed
            current = s.tracker.in_progress(event.get("Uniqueid") or "")
        except ValueError:      # a malformed event (e.g. a negative HoldTime): figures as they were
            return changed
        if current is not None:
            changed = self.today.put(CallFigures.of(current), live=True) or changed
        return changed

    # ---- connection -------------------------------------------------------------------------------
    def set_connected(self, server: str, connected: bool, now: float) -> None:
        s = self.server(server)
        if connected:
            changed, s.down_since = not s.connected, None
        else:
            changed = s.connected or s.down_since is None
            if changed:
                s.down_since = now
        s.connected = connected
        if changed:
            self.version += 1

    # ---- live events ------------------------------------------------------------------------------
    def apply(self, server: str, event: Mapping[str, str], now: float) -> bool:
        """Fold one AMI event in. Returns True when the view changed. Unknown events are ignored."""
        name = event.get("Event", "")
        handler = _HANDLERS.get(name)
        if handler is None and name not in TRACKED_EVENTS:
            return False
        s = self.server(server)
        changed = self._track(s, event, now) if name in TRACKED_EVENTS else False
        changed = (handler(self, s, event, now) if handler is not None else False) or changed
        if changed:
            self.version += 1
            named = s.queues.get(event.get("Queue", ""))
            for q in [named] if named is not None else s.queues.values():
                for member in q.members.values():
                    _mark(member, now)
        return changed

    def _caller_line(self, s: ServerState, ev: Mapping[str, str]) -> tuple[str, str]:
        line, name = split_line(ev.get("CallerIDName"))
        uid = ev.get("Uniqueid", "")
        if not line:
            line = s.lines.get(uid, "")
        if not line and uid in s.recent:
            line = s.recent[uid].line
        if not line:
            exten = ev.get("Exten", "")
            line = exten if exten.isdigit() else ""
        return line, name

    def _on_join(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        uid = ev.get("Uniqueid", "")
        self._settle(s, uid, "overflowed", now)  # no HotlineQueueLeft seen (older dialplan): the join says it
        s.in_ivr.pop(uid, None)
        q = s.queue(ev.get("Queue", ""))
        q.roll_day(now)
        line, name = self._caller_line(s, ev)
        number = ev.get("CallerIDNum", "")
        q.callers[uid] = Caller(uid, "" if number == "<unknown>" else number, name, line, now,
                                _int(ev.get("Position")))
        return True

    def _on_leave(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        q = s.queue(ev.get("Queue", ""))
        caller = q.callers.pop(ev.get("Uniqueid", ""), None)
        if caller is not None:
            s.recent[caller.uniqueid] = caller
            while len(s.recent) > _RECENT_MAX:
                s.recent.popitem(last=False)
        return caller is not None

    def _on_abandon(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        q = s.queue(ev.get("Queue", ""))
        uid = ev.get("Uniqueid", "")
        caller = q.callers.get(uid) or s.recent.get(uid)
        line = caller.line if caller else self._caller_line(s, ev)[0]
        self._stop_ringing_for(s, uid)
        s.pending[uid] = PendingAbandon(q.name, line, now)
        while len(s.pending) > _RECENT_MAX:
            s.pending.popitem(last=False)
        if s.hanging_up.pop(uid, None) is not None:  # the caller hung up: a real abandon
            return self._settle(s, uid, "abandoned", now)
        return False

    def _settle(self, s: ServerState, uid: str, how: str, now: float) -> bool:
        """Count a pending QueueCallerAbandon as `how` (abandoned | overflowed | None: neither)."""
        # The counting itself is records.outcomes' (LiveState._track): here only the pending state is let go.
        pending = s.pending.pop(uid, None)
        return pending is not None and how is not None

    def _on_hangup_request(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        uid = ev.get("Uniqueid", "")
        if any(uid in q.callers for q in s.queues.values()):  # only waiting callers: the set stays small
            s.hanging_up[uid] = now
            while len(s.hanging_up) > _RECENT_MAX:
                s.hanging_up.popitem(last=False)
        return False

    def _on_user_event(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        if ev.get("UserEvent") != QUEUE_LEFT_EVENT:
            return False
        return self._settle(s, ev.get("Uniqueid", ""), "overflowed", now)

    def _on_connect(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        q = s.queue(ev.get("Queue", ""))
        q.roll_day(now)
        uid = ev.get("Uniqueid", "")
        caller = q.callers.pop(uid, None) or s.recent.get(uid)
        member = q.members.get(ev.get("Interface", ""))
        if member is not None:
            member.in_call, member.ringing_for, member.talk_since = True, None, now
        return True

    def _on_agent_called(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        member = s.queue(ev.get("Queue", "")).members.get(ev.get("Interface", ""))
        if member is None:
            return False
        member.ringing_for = ev.get("Uniqueid", "")
        return True

    def _on_ring_no_answer(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        member = s.queue(ev.get("Queue", "")).members.get(ev.get("Interface", ""))
        if member is None or member.ringing_for is None:
            return False
        member.ringing_for = None
        return True

    def _stop_ringing_for(self, s: ServerState, uid: str) -> bool:
        changed = False
        for q in s.queues.values():
            for member in q.members.values():
                if member.ringing_for == uid:
                    member.ringing_for, changed = None, True
        return changed

    def _on_complete(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        member = s.queue(ev.get("Queue", "")).members.get(ev.get("Interface", ""))
        if member is None:
            return False
        day = local_day(now)
        if member.talk_day != day:
            member.talk_day, member.talk_today = day, 0
        member.talk_today += _int(ev.get("TalkTime"))
        member.talk_since, member.in_call = None, False
        return True

    def _on_member(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        q = s.queue(ev.get("Queue", ""))
        interface = ev.get("Interface") or ev.get("Location") or ""
        member = q.members.get(interface) or Member(interface)
        q.members[interface] = member
        _update_member(member, ev, now, event_is_pause=ev.get("Event") in ("QueueMemberPause",
                                                                           "QueueMemberPaused"))
        return True

    def _on_member_removed(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        q = s.queue(ev.get("Queue", ""))
        return q.members.pop(ev.get("Interface") or ev.get("Location") or "", None) is not None

    def _on_varset(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        variable, uid = ev.get("Variable"), ev.get("Uniqueid", "")
        if variable == IVR_DECIDED_VAR and ev.get("Value"):
            return s.in_ivr.pop(uid, None) is not None
        if variable != "HOTLINE_LINE":
            return False
        s.lines[ev.get("Uniqueid", "")] = ev.get("Value", "")
        while len(s.lines) > _RECENT_MAX * 5:
            s.lines.popitem(last=False)
        changed = False
        for q in s.queues.values():  # a line learned after the join still labels the waiting caller
            caller = q.callers.get(ev.get("Uniqueid", ""))
            if caller is not None and not caller.line:
                caller.line, changed = ev.get("Value", ""), True
        return changed

    def _on_new_channel(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        uid, channel = ev.get("Uniqueid", ""), ev.get("Channel", "")
        if ev.get("Context") != INBOUND_CONTEXT or not uid:
            return False
        if channel.startswith("Local/") and channel.endswith(";1"):
            return False  # a Local channel's originating half: its ;2 is the one in the dialplan
        s.in_ivr[uid] = now
        while len(s.in_ivr) > _RECENT_MAX * 5:
            s.in_ivr.popitem(last=False)
        return True

    def _on_left_ivr(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        """DialBegin (Uniqueid: the calling channel) or BridgeEnter: the caller is past the IVR."""
        return s.in_ivr.pop(ev.get("Uniqueid", ""), None) is not None

    def _on_hangup(self, s: ServerState, ev: Mapping[str, str], now: float) -> bool:
        uid = ev.get("Uniqueid", "")
        s.lines.pop(uid, None)
        s.hanging_up.pop(uid, None)
        left_ivr = s.in_ivr.pop(uid, None) is not None
        pending = s.pending.get(uid)
        changed = self._settle(s, uid, "abandoned" if pending and now - pending.at <= ABANDON_GRACE else None, now)
        changed = self._stop_ringing_for(s, uid) or changed or left_ivr
        for q in s.queues.values():  # a QueueCallerLeave lost across a reconnect must not leave a ghost
            if q.callers.pop(uid, None) is not None:
                changed = True
        return changed

    # ---- resynchronisation --------------------------------------------------------------------------
    def resync(self, server: str, reply: list[Mapping[str, str]], now: float,
               queue: str | None = None, sent_at: float | None = None) -> None:
        """Replace members and waiting callers with a QueueStatus reply (all queues, or one if `queue`).

        `sent_at`: when the QueueStatus was sent. A caller whose QueueCallerJoin was folded in after that
        may be missing from the reply (the reply was built first) and is kept."""
        s = self.server(server)
        seen: dict[str, QueueState] = {}
        for item in reply:
            kind = item.get("Event", "")
            name = item.get("Queue", "")
            if kind == "QueueParams":
                fresh = QueueState(name, item.get("Strategy", ""), figures=s.figures, server=s.name)
                fresh.roll_day(now)
                seen[name] = fresh
            elif kind == "QueueMember" and name in seen:
                location = item.get("Location") or item.get("Interface") or ""
                old_q = s.queues.get(name)
                prior = old_q.members.get(location) if old_q else None
                member = Member(location, paused_since=prior.paused_since if prior else None,
                                ringing_for=prior.ringing_for if prior else None)
                if prior is not None:
                    member.seen_state, member.state_since = prior.seen_state, prior.state_since
                    member.talk_since, member.talk_today = prior.talk_since, prior.talk_today
                    member.talk_day = prior.talk_day
                _update_member(member, item, now, event_is_pause=False)
                if not member.in_call:
                    member.talk_since = None
                elif member.talk_since is None:
                    member.talk_since = now  # on a call when we (re)connected: its start is unknown, counted from now
                _mark(member, now)
                seen[name].members[location] = member
            elif kind == "QueueEntry" and name in seen:
                uid = item.get("Uniqueid", "")
                old_q = s.queues.get(name)
                prior = old_q.callers.get(uid) if old_q else None
                line, display = self._caller_line(s, item)
                number = item.get("CallerIDNum", "")
                seen[name].callers[uid] = Caller(
                    uid, "" if number == "<unknown>" else number, display, prior.line if prior else line,
                    prior.joined_at if prior else now - _int(item.get("Wait")), _int(item.get("Position")))
        if sent_at is not None:
            for name, fresh in seen.items():
                old_q = s.queues.get(name)
                for uid, caller in (old_q.callers.items() if old_q else ()):
                    if caller.joined_at >= sent_at and uid not in fresh.callers:
                        fresh.callers[uid] = caller
        if queue is None:
            s.queues = seen
            s.in_ivr.clear()  # their ends may have been lost while the link was down: count afresh
        else:
            s.queues.pop(queue, None)
            s.queues.update(seen)
        s.synced_at = now
        self.version += 1

    def resync_ivr(self, server: str, reply: list[Mapping[str, str]], now: float, sent_at: float) -> None:
        """The calls in the IVR from a CoreShowChannels reply; calls that entered after `sent_at` are kept."""
        s = self.server(server)
        fresh: OrderedDict[str, float] = OrderedDict()
        for item in reply:
            channel = item.get("Channel", "")
            if (item.get("Event") != "CoreShowChannel" or item.get("Application") != "AGI"
                    or item.get("Context") != ENGINE_CONTEXT or channel.endswith(";1")):
                continue
            h, _, rest = item.get("Duration", "0").partition(":")
            m, _, sec = rest.partition(":")
            fresh[item.get("Uniqueid", "")] = now - (_int(h) * 3600 + _int(m) * 60 + _int(sec))
        for uid, entered in s.in_ivr.items():
            if entered >= sent_at:
                fresh.setdefault(uid, entered)
        fresh.pop("", None)
        s.in_ivr = fresh
        self.version += 1

    # ---- the view ---------------------------------------------------------------------------------
    def view(self, now: float, *, full_numbers: bool, lang: str = "zh") -> dict[str, Any]:
        """`lang` only picks the table's names (queue titles, line services); every other text is the
        reader's to translate."""
        names = self.directory
        servers = []
        all_lines: dict[str, dict[str, Any]] = {}
        in_ivr = 0
        for s in sorted(self.servers.values(), key=lambda x: x.name):
            # a server whose link is down is shown as it was when the link dropped: its clocks stop
            at = now if s.connected or s.down_since is None else min(now, s.down_since)
            queues = []
            for q in sorted(s.queues.values(), key=lambda x: names.queue_rank(x.name)):
                q.roll_day(now)
                queues.append(self._queue_view(s, q, at, full_numbers, all_lines, lang))
            ivr = sum(1 for t in s.in_ivr.values() if at - t <= IVR_MAX_AGE)
            in_ivr += ivr if s.connected else 0
            servers.append({"name": s.name, "connected": s.connected, "synced_at": s.synced_at,
                            "down_since": None if s.connected else s.down_since, "frozen": not s.connected,
                            "in_ivr": ivr, "queues": queues})
        for line, row in all_lines.items():
            row["service"] = names.line_service(line, lang)
        return {
            "now": now,
            "timezone": names.timezone,
            "service_level_seconds": self.service_level,
            "full_numbers": full_numbers,
            "servers": servers,
            "in_ivr": in_ivr,
            "lines": [{**v, "line": k} for k, v in sorted(all_lines.items(),
                                                          key=lambda kv: names.line_rank(kv[0]))],
            # where today's figures come from: the SQL records (seeded_at) and live events, or live events only
            "figures": {"day": self.today.day.isoformat() if self.today.day else None,
                        "seeded_at": self.today.seeded_at, "seed_error": self.today.seed_error},
        }

    def _queue_view(self, s: ServerState, q: QueueState, now: float, full: bool,
                    all_lines: dict[str, dict[str, Any]], lang: str) -> dict[str, Any]:
        callers = sorted(q.callers.values(), key=lambda c: c.joined_at)
        waits = [max(0.0, now - c.joined_at) for c in callers]
        by_state = {state: 0 for state in MEMBER_STATES}
        members = []

        def since(t: float | None) -> int | None:
            return None if t is None else max(0, round(now - t))

        for m in sorted(q.members.values(), key=lambda m: (m.name or m.interface)):
            by_state[m.state] += 1
            today = m.talk_today if m.talk_day == local_day(now) else 0
            members.append({
                "interface": m.interface, "name": m.name or m.interface, "state": m.state,
                # a ringing Local member is Status 2 (INUSE), like a call: AgentCalled says it rings
                "ringing": (m.status in _RINGING_STATES or m.ringing_for is not None) and not m.paused,
                "reason": m.reason if m.paused else "",
                "paused_for": round(now - m.paused_since) if m.paused and m.paused_since else None,
                "state_for": since(m.state_since), "talk_for": since(m.talk_since) if m.in_call else None,
                "talk_today": today + ((since(m.talk_since) or 0) if m.in_call else 0),
                "calls_taken": m.calls_taken, "membership": m.membership,
            })
        lines: dict[str, dict[str, int]] = {}

        def bump(line: str, key: str, n: int) -> None:
            line = line if full else mask_text(line)  # a caller's own "[number] name" can become the line
            for table in (lines, all_lines):
                row = table.setdefault(line or "?", {"waiting": 0, "answered": 0, "abandoned": 0,
                                                     "overflowed": 0, "answered_in_sl": 0})
                row[key] += n

        for c in callers:
            bump(c.line, "waiting", 1)
        for line, t in q.lines_today.items():
            bump(line, "answered", t.answered)
            bump(line, "abandoned", t.abandoned)
            bump(line, "overflowed", t.overflowed)
            bump(line, "answered_in_sl", t.answered_in_sl)
        sl = q.today.service_level()
        names = self.directory
        return {
            "server": s.name, "name": q.name, "title": names.queue_title(q.name, lang), "strategy": q.strategy,
            "waiting": len(callers),
            "longest_wait": round(max(waits)) if waits else 0,
            "callers": [{
                "id": c.uniqueid,
                "number": c.number if full else mask_number(c.number),
                "name": c.name if full else mask_text(c.name),
                "line": c.line if full else mask_text(c.line), "wait": round(w), "position": c.position,
                "service": names.line_service(c.line, lang),
            } for c, w in zip(callers, waits)],
            "members": members,
            "members_by_state": by_state,
            "answered": q.today.answered, "abandoned": q.today.abandoned, "overflowed": q.today.overflowed,
            "answered_in_sl": q.today.answered_in_sl,
            "average_wait": round(q.today.hold_total / q.today.answered) if q.today.answered else None,
            "service_level": None if sl is None else round(sl, 4),
            "answered_total": q.answered_total, "abandoned_total": q.abandoned_total,
            "overflowed_total": q.overflowed_total,
            "lines": [{"line": k, **v, "service": names.line_service(k, lang)}
                      for k, v in sorted(lines.items(), key=lambda kv: names.line_rank(kv[0]))],
        }


def _mark(m: Member, now: float) -> None:
    """Start the member's state clock when its state changed (a pause counts from the pause)."""
    state = m.state
    if state != m.seen_state:
        m.seen_state = state
        m.state_since = m.paused_since if state == "paused" and m.paused_since else now


def _update_member(m: Member, ev: Mapping[str, str], now: float, *, event_is_pause: bool) -> None:
    m.name = ev.get("MemberName") or ev.get("Name") or m.name
    m.state_interface = ev.get("StateInterface", m.state_interface)
    m.membership = ev.get("Membership", m.membership)
    m.penalty = _int(ev.get("Penalty"), m.penalty)
    m.status = _int(ev.get("Status"), m.status)
    if m.status not in _BUSY_STATES:
        m.ringing_for = None          # free (or gone) again: whatever rang it is over
    m.in_call = _flag(ev.get("InCall", m.in_call))
    m.calls_taken = _int(ev.get("CallsTaken"), m.calls_taken)
    paused = _flag(ev.get("Paused", m.paused))
    if paused and (event_is_pause or not m.paused or m.paused_since is None):
        last_pause = _int(ev.get("LastPause"))
        # A pause event happens now; a status row only says since when (Asterisk's LastPause) if it knows.
        m.paused_since = now if event_is_pause or not last_pause or last_pause > now else float(last_pause)
    if not paused:
        m.paused_since = None
    m.paused = paused
    m.reason = ev.get("PausedReason", m.reason) if paused else ""


_HANDLERS = {
    "QueueCallerJoin": LiveState._on_join,
    "Join": LiveState._on_join,  # pre-12 name, harmless to accept
    "QueueCallerLeave": LiveState._on_leave,
    "Leave": LiveState._on_leave,
    "QueueCallerAbandon": LiveState._on_abandon,
    "AgentConnect": LiveState._on_connect,
    "AgentCalled": LiveState._on_agent_called,
    "AgentRingNoAnswer": LiveState._on_ring_no_answer,
    "AgentComplete": LiveState._on_complete,
    "QueueMemberStatus": LiveState._on_member,
    "QueueMemberAdded": LiveState._on_member,
    "QueueMemberPause": LiveState._on_member,
    "QueueMemberPaused": LiveState._on_member,
    "QueueMemberRemoved": LiveState._on_member_removed,
    "VarSet": LiveState._on_varset,
    "Hangup": LiveState._on_hangup,
    "HangupRequest": LiveState._on_hangup_request,
    "SoftHangupRequest": LiveState._on_hangup_request,
    "UserEvent": LiveState._on_user_event,
    "Newchannel": LiveState._on_new_channel,
    "DialBegin": LiveState._on_left_ivr,
    "BridgeEnter": LiveState._on_left_ivr,
}
# What records.outcomes needs for each call's row (Newchannel: the arrival).
TRACKED_EVENTS = frozenset({"Newchannel", "QueueCallerJoin", "QueueCallerLeave", "AgentConnect",
                            "QueueCallerAbandon", "HangupRequest", "SoftHangupRequest", "UserEvent", "Hangup"})
HANDLED_EVENTS = frozenset(_HANDLERS) | TRACKED_EVENTS  # what the AMI subscription needs to deliver
