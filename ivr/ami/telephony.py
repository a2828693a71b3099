"""The emulator's small telephony model: channels, queues with members and waiting callers, bridges.

Event field sets and their order follow the recorded Asterisk 22 transcripts (tests/transcripts/ami-*.txt).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
# app_queue member Status values (device states) as seen in QueueMember/QueueMemberStatus
DEVICE_NOT_INUSE, DEVICE_INUSE, DEVICE_INVALID, DEVICE_RINGING = 1, 2, 4, 6
DEVICE_STATE_NAME = {1: "NOT_INUSE", 2: "INUSE", 3: "BUSY", 4: "INVALID", 5: "UNAVAILABLE", 6: "RINGING",
                     7: "RINGINUSE", 8: "ONHOLD"}                  # DeviceStateChange State
HANGUP_CAUSE_TEXT = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "No user responding",
                     21: "Call Rejected", 34: "Circuit/channel congestion"}
# OriginateResponse Reason codes (AST_CONTROL_*): no answer, answered, busy, congestion
REASON_FAILED, REASON_HUNGUP, REASON_NO_ANSWER, REASON_ANSWERED, REASON_BUSY, REASON_CONGESTION = 0, 1, 3, 4, 5, 8


@dataclass
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    priority: int = 1
    state: int = 6
    caller_num: str = "<unknown>"
    caller_name: str = "<unknown>"
    connected_num: str = "<unknown>"
    connected_name: str = "<unknown>"
    language: str = "en"
    account_code: str = ""
    application: str = ""
    app_data: str = ""
    created: float = 0.0
    variables: dict[str, str] = field(default_factory=dict)
    bridge: str | None = None
    queue: str | None = None            # waiting in this queue (caller side)
    queue_call: "QueueCall | None" = None

    def snapshot(self, prefix: str = "") -> dict[str, str]:
        return {f"{prefix}Channel": self.name, f"{prefix}ChannelState": str(self.state),
                f"{prefix}ChannelStateDesc": STATE_DESC.get(self.state, "Unknown"),
                f"{prefix}CallerIDNum": self.caller_num, f"{prefix}CallerIDName": self.caller_name,
                f"{prefix}ConnectedLineNum": self.connected_num, f"{prefix}ConnectedLineName": self.connected_name,
                f"{prefix}Language": self.language, f"{prefix}AccountCode": self.account_code,
                f"{prefix}Context": self.context, f"{prefix}Exten": self.exten,
                f"{prefix}Priority": str(self.priority), f"{prefix}Uniqueid": self.uniqueid,
                f"{prefix}Linkedid": self.linkedid}


@dataclass
class Member:
    interface: str
    name: str
    state_interface: str
    membership: str = "static"
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: bool = False
    status: int = DEVICE_NOT_INUSE
    paused: bool = False
    paused_reason: str = ""
    ringinuse: bool = False
    wrapuptime: int = 0

    def fields(self, *, for_status: bool = False) -> dict[str, str]:
        """QueueMember (QueueStatus list item, for_status) or QueueMember* event fields."""
        head = ({"Name": self.name, "Location": self.interface} if for_status
                else {"MemberName": self.name, "Interface": self.interface})
        body = {"StateInterface": self.state_interface, "Membership": self.membership,
                "Penalty": str(self.penalty), "CallsTaken": str(self.calls_taken), "LastCall": str(self.last_call),
                "LastPause": str(self.last_pause), "LoginTime": str(self.login_time),
                "InCall": str(int(self.in_call)), "Status": str(self.status), "Paused": str(int(self.paused)),
                "PausedReason": self.paused_reason}
        tail = {"Wrapuptime": str(self.wrapuptime)} if for_status else {
            "Ringinuse": str(int(self.ringinuse)), "Wrapuptime": str(self.wrapuptime)}
        return {**head, **body, **tail}


@dataclass
class QueueCall:
    """A caller connected to (or being offered to) an agent by app_queue."""

    queue: str
    caller: str
    agent: str | None
    interface: str
    joined: float
    connected: float | None = None
    rang: float | None = None           # when the member was rung (AgentConnect/AgentRingNoAnswer RingTime)


@dataclass
class QueueState:
    name: str
    strategy: str = "ringall"
    max: int = 0
    weight: int = 0
    service_level: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    callers: list[str] = field(default_factory=list)      # channel names, in position order
    joined: dict[str, float] = field(default_factory=dict)
    original_position: dict[str, int] = field(default_factory=dict)
    completed: int = 0
    abandoned: int = 0
    holdtime: int = 0
    talktime: int = 0
    timeout: float | None = None        # Queue()'s timeout argument: then QUEUESTATUS=TIMEOUT
    leave_when_empty: bool = False      # leavewhenempty=unavailable,invalid,unknown
    overflow_to: str | None = None      # where the generated dialplan sends the caller when Queue() returns
    avail_state: str = ""               # last DeviceStateChange Queue:<name>_avail sent

    def params(self) -> dict[str, str]:
        return {"Event": "QueueParams", "Queue": self.name, "Max": str(self.max), "Strategy": self.strategy,
                "Calls": str(len(self.callers)), "Holdtime": str(self.holdtime), "TalkTime": str(self.talktime),
                "Completed": str(self.completed), "Abandoned": str(self.abandoned),
                "ServiceLevel": str(self.service_level), "ServicelevelPerf": "0.0", "ServicelevelPerf2": "0.0",
                "Weight": str(self.weight)}

    def can_answer(self) -> bool:
        """Some member is not unavailable/invalid (leavewhenempty=unavailable,invalid,unknown keeps the caller)."""
        return any(m.status not in (0, 4, 5) for m in self.members.values())

    def available(self) -> int:
        return sum(1 for m in self.members.values()
                   if not m.paused and not m.in_call and m.status in (DEVICE_NOT_INUSE, DEVICE_INVALID))


class Ids:
    """Uniqueids ('<epoch>.<n>') and Local channel suffixes ('-0000000f') as Asterisk numbers them."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self._unique = itertools.count()
        self._local = itertools.count()
        self._bridge = itertools.count(1)

    def uniqueid(self) -> str:
        return f"{self.epoch}.{next(self._unique)}"

    def local_suffix(self) -> str:
        return f"{next(self._local):08x}"

    def bridge_id(self) -> str:
        return f"00000000-0000-4000-8000-{next(self._bridge):012x}"
