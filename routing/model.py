"""The routing table as immutable values. Built by `routing.loader` from validated YAML; read by everyone else.

Nothing here does I/O or reads a clock: every question about time takes the instant as an argument.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Mapping
from zoneinfo import ZoneInfo


class Category(str, enum.Enum):
    """What a line is, in the plan's words (section 二(一))."""

    UNIFIED = "unified"                      # 12345 itself
    CANCELLED = "cancelled"                  # 取消号码: announce, then 12345 (or hang up after the transition)
    DUAL = "dual"                            # 双号并行, seats merged: straight into 12345 with a skill tag
    EXPERT = "expert"                        # 双号并行 + 专家座席 on the provincial platform (12320, 12329)
    RETAINED_SEAT = "retained_seat"          # 双号并行, own seats kept: warm transfer over their trunk
    SUBCENTER = "subcenter"                  # 设分中心: 12345 answers; specialist via three-way or work order
    EMERGENCY_LINKAGE = "emergency_linkage"  # 110/119/120/122: never queued, never behind business hours
    # Decisions that no line's rule names:
    UNKNOWN = "unknown"                      # a number the table does not know: general handling + warning
    ABUSE = "abuse"                          # a listed or rate-limited caller


class Action(str, enum.Enum):
    """What the dialplan does once the engine has decided (after the prompts are played)."""

    QUEUE = "queue"          # Queue(target); overflow chain is in the generated dialplan
    DIAL = "dial"            # Dial() on trunk `target`
    HANGUP = "hangup"        # prompts were the whole answer
    CALLBACK = "callback"    # prompts, then capture a callback request for queue `target`


class TransferKind(str, enum.Enum):
    ATTENDED = "attended"    # warm transfer: agent talks to the target first; caller returns if nobody answers
    THREE_WAY = "three_way"  # caller, agent and target together; the agent may leave
    WORK_ORDER = "work_order"  # no call leg: a work order is dispatched to the target
    HANDOVER = "handover"    # one-step blind hand-over (emergency linkage only)
    ESCALATE = "escalate"    # into an expert-seat queue, context kept


@dataclass(frozen=True)
class Window:
    """[start, end) in absolute time; None means unbounded on that side."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, at: datetime) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)

    def overlaps(self, other: "Window") -> bool:
        starts_before_other_ends = other.end is None or self.start is None or self.start < other.end
        ends_after_other_starts = self.end is None or other.start is None or other.start < self.end
        return starts_before_other_ends and ends_after_other_starts


@dataclass(frozen=True)
class Calendar:
    """Public holidays and adjusted working days (调休): a Saturday or Sunday that is a working day."""

    id: str
    holidays: Mapping[date, str] = field(default_factory=lambda: MappingProxyType({}))
    working_days: frozenset[date] = frozenset()
    covers_until: date | None = None      # last day the data is complete for (routing.hours.covered_until)

    def is_working_day(self, day: date) -> bool:
        if day in self.working_days:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5


@dataclass(frozen=True)
class TimeSpan:
    """Opening hours within one day; `end` None means until midnight."""

    start: time
    end: time | None

    def contains(self, moment: time) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


@dataclass(frozen=True)
class Schedule:
    id: str
    always_open: bool = False
    calendar: str | None = None
    workday: tuple[TimeSpan, ...] = ()
    restday: tuple[TimeSpan, ...] = ()


@dataclass(frozen=True)
class ClosedHandling:
    """What a queue does outside its hours: another queue, or prompts then a callback request or hang-up."""

    action: Action
    queue: str | None = None
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Overflow:
    """After `after_seconds` of waiting (longest wait), the caller moves to queue `to`."""

    after_seconds: int
    to: str


@dataclass(frozen=True)
class Queue:
    id: str
    name: str
    kind: str = "general"
    schedule: str | None = None           # None: always open
    overflow: Overflow | None = None
    when_closed: ClosedHandling | None = None
    strategy: str = "rrmemory"
    member_timeout: int = 15
    wrapup_seconds: int = 5
    service_level_seconds: int = 15
    announce_holdtime: bool = True
    members: tuple[str, ...] = ()         # static members for the generated queues.conf (interfaces)


@dataclass(frozen=True)
class CallerId:
    """What the far end of a trunk we dial learns about the citizen (the table's trunk `caller_id`).

    Asterisk (res_pjsip) builds From and the identity header from the dialing channel's caller ID: `from_user`
    "trunk" sets the endpoint's from_user (the trunk's username or id); "caller" leaves the citizen's number in
    From. `identity` pai/rpid: send_pai/send_rpid. `withheld` "send": trust_id_outbound, so a caller who withheld
    the number (CLIR) still reaches the far end in the identity header, marked `Privacy: id`; "hide": Anonymous.
    Recorded on Asterisk 22: tests/transcripts/NOTES-2.md "Emergency INVITE".
    """

    from_user: str = "caller"             # caller | trunk
    identity: str = "pai"                 # pai | rpid | none
    withheld: str = "hide"                # send | hide

    @classmethod
    def for_kind(cls, kind: str, from_user: str | None = None, identity: str | None = None,
                 withheld: str | None = None) -> "CallerId":
        """The trunk kind's default with whatever the table sets."""
        base = CALLER_ID_DEFAULTS.get(kind, cls())
        return cls(from_user or base.from_user, identity or base.identity, withheld or base.withheld)


# Per trunk kind when the table says nothing. Emergency services always get the number, withheld or not (PAI
# with Privacy: id); retained seats register, and registrars expect their own user in From; other callers'
# withheld numbers stay withheld.
CALLER_ID_DEFAULTS: Mapping[str, CallerId] = MappingProxyType({
    "emergency": CallerId("caller", "pai", "send"),
    "retained_seat": CallerId("trunk", "pai", "hide"),
    "subcenter": CallerId("caller", "pai", "hide"),
    "carrier": CallerId("caller", "none", "hide"),   # inbound only: the hotline never dials the carrier
})


@dataclass(frozen=True)
class Trunk:
    id: str
    name: str
    kind: str                             # carrier | retained_seat | subcenter | emergency
    host: str
    port: int = 5060
    auth: str = "ip"                      # ip | registration
    dial: str | None = None               # number sent over the trunk for its service
    username: str | None = None           # registration: the secret comes from the environment, never here
    secret_env: str | None = None         # name of the environment variable holding the secret
    match: tuple[str, ...] = ()           # ip auth: addresses/networks the trunk's calls come from
    caller_id: CallerId | None = None     # None: CALLER_ID_DEFAULTS[kind] (the loader always fills it in)

    @property
    def identity(self) -> CallerId:
        return self.caller_id or CALLER_ID_DEFAULTS.get(self.kind, CallerId())


@dataclass(frozen=True)
class Transfer:
    """An option the agent (over AMI) has for this call."""

    kind: TransferKind
    trunk: str | None = None
    queue: str | None = None
    no_answer_seconds: int = 30
    on_no_answer: str = "return_to_agent"   # return_to_agent | work_order
    department: str | None = None           # work orders: who receives them


@dataclass(frozen=True)
class Rule:
    """One dated version of a line's handling."""

    id: str
    line: str
    category: Category
    effective: Window
    queue: str | None = None              # where the call lands (None for emergency: a trunk)
    trunk: str | None = None              # emergency linkage: dialed at once
    prompts: tuple[str, ...] = ()         # announcement before connecting
    menu: str | None = None               # IVR menu run first (conf/ivr.yaml)
    tags: tuple[str, ...] = ()
    transfers: tuple[Transfer, ...] = ()
    # cancelled lines
    transition: Window | None = None
    after_transition: Action | None = None          # QUEUE (announce + connect) or HANGUP
    after_prompts: tuple[str, ...] = ()
    source_line: int = 0                  # line in the YAML, for messages


@dataclass(frozen=True)
class Line:
    number: str
    service: str
    seed: str                             # the seed's paragraph that decides this line
    rules: tuple[Rule, ...]               # ordered by start; windows never overlap


@dataclass(frozen=True)
class ListedCaller:
    number: str
    until: datetime | None
    reason: str


@dataclass(frozen=True)
class AbusePolicy:
    """Callers who abuse the platform: listed numbers or a rate limit. Never applies to emergency lines."""

    listed: tuple[ListedCaller, ...] = ()
    max_calls: int | None = None          # more than this many calls ...
    per_minutes: int = 60                 # ... within this many minutes trips the rule
    action: Action = Action.QUEUE
    queue: str | None = None
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmergencyRetry:
    """An emergency trunk that does not answer: `attempts` Dials of at most `ring_seconds`, `pause_seconds`
    apart, all within `within_seconds`; then `announce`, then the trunk `next` (None: hang up after it)."""

    attempts: int = 3
    ring_seconds: int = 15
    pause_seconds: int = 5
    within_seconds: int = 60
    announce: str = "hotline/emergency-unreachable"
    next: str | None = None


@dataclass(frozen=True)
class Switch:
    """A manual override declared in the table; whether it is on is run-time state (records.switches), passed
    to decide() as the set of active names. Emergency linkage is never affected."""

    id: str
    name_zh: str
    name_en: str
    code: str                             # feature codes *95<code> (on) and *96<code> (off)
    pin_env: str                          # the variable holding the phone PIN (a secret, never in YAML)
    lines: tuple[str, ...] = ()           # empty: every line
    prompts: tuple[str, ...] = ()
    queue: str | None = None
    closed: bool = False
    work_orders_only: bool = False
    source_line: int = 0

    def applies_to(self, line: str) -> bool:
        return not self.lines or line in self.lines

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh

    def effects(self) -> str:
        """What it does, in words (explain, list)."""
        parts = []
        if self.prompts:
            parts.append("announce " + ", ".join(self.prompts))
        if self.queue:
            parts.append(f"then queue {self.queue}")
        if self.closed:
            parts.append("opening hours count as closed")
        if self.work_orders_only:
            parts.append("transfers: work orders only")
        where = "lines " + ", ".join(self.lines) if self.lines else "every line"
        return "; ".join(parts) + f" ({where}, never emergency linkage)"


@dataclass(frozen=True)
class RoutingTable:
    version: str                          # content hash of the source files
    source: str
    timezone: ZoneInfo
    general_queue: str
    service_level_seconds: int
    calendars: Mapping[str, Calendar]
    schedules: Mapping[str, Schedule]
    queues: Mapping[str, Queue]
    trunks: Mapping[str, Trunk]
    lines: Mapping[str, Line]
    abuse: AbusePolicy
    unknown_prompts: tuple[str, ...] = ()
    emergency_retry: Mapping[str, EmergencyRetry] = field(default_factory=lambda: MappingProxyType({}))
    switches: Mapping[str, Switch] = field(default_factory=lambda: MappingProxyType({}))

    def retry_for(self, trunk_id: str) -> EmergencyRetry:
        """The emergency retry of a trunk (the defaults when the table says nothing)."""
        return self.emergency_retry.get(trunk_id) or EmergencyRetry()


@dataclass(frozen=True)
class CallerHistory:
    """What the adapter knows about this caller's recent calls (from the records); None: nothing known."""

    calls_in_window: int = 0


@dataclass(frozen=True)
class Route:
    """The decision for one call: what to play, where it goes, and why."""

    dialed: str
    line: str                             # the line whose rule decided ("12345" for unknown numbers)
    service: str
    category: Category
    action: Action
    target: str | None                    # queue id (QUEUE, CALLBACK) or trunk id (DIAL)
    rule_id: str
    effective: Window
    prompts: tuple[str, ...] = ()
    menu: str | None = None
    tags: tuple[str, ...] = ()
    transfers: tuple[Transfer, ...] = ()
    overflow: tuple[Overflow, ...] = ()   # the queue's overflow chain, for explanation and the dialplan
    reason: str = ""
    warnings: tuple[str, ...] = ()
    switches: tuple[str, ...] = ()        # the active switches that applied to this call (routing.decide)
