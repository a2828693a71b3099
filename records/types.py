"""Plain values the engine hands to the recorder. Caller numbers are in full here (memory only); the
recorder masks and hashes them before anything reaches disk (the spool) or SQL.
"""
from __future__ import annotations

import enum
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping


class Outcome(str, enum.Enum):
    """How a call ended, as far as the engine and AMI know."""

    ANSWERED = "answered"        # an agent or the target trunk answered
    ABANDONED = "abandoned"      # the caller hung up while waiting in a queue
    IVR_HANGUP = "ivr_hangup"    # the caller hung up during prompts or menus
    ANNOUNCED = "announced"      # the prompts were the whole answer (e.g. a cancelled line after transition)
    CALLBACK = "callback"        # a callback request was captured
    NO_ANSWER = "no_answer"      # nobody answered (queue timeout, trunk no answer)
    FAILED = "failed"            # a technical failure (trunk down, AGI failure)


class TransferOutcome(str, enum.Enum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    RETURNED = "returned"        # the caller came back to the first line's agent


class TransferRecordKind(str, enum.Enum):
    ATTENDED = "attended"
    THREE_WAY = "three_way"
    WORK_ORDER = "work_order"
    HANDOVER = "handover"
    ESCALATE = "escalate"


class WorkOrderStatus(str, enum.Enum):
    DISPATCHED = "dispatched"
    SIGNED = "signed"
    CLOSED = "closed"


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def _coerce(obj: object, name: str, enum_type: type[enum.Enum], optional: bool = False) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    try:
        object.__setattr__(obj, name, enum_type(value))
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type)  # type: ignore[attr-defined]
        raise ValueError(f"{name}={value!r} is not one of: {allowed}") from None


@dataclass(frozen=True)
class CallRecord:
    """One call as the engine saw it.

    A call may be recorded more than once as it progresses (e.g. revision 0 when the engine has decided,
    revision 1 with the outcome from AMI). The database keeps one row per uniqueid: routing facts from the
    first record that has them, outcome facts from the highest revision. Replaying a revision changes nothing.
    """

    uniqueid: str
    dialed: str                          # the number the caller dialed (the legacy line as dialed)
    line: str                            # the line whose rule decided ("12345" for unknown numbers)
    caller: str | None                   # full number: memory only
    arrived_at: datetime
    category: str | None = None          # routing.model.Category value
    rule_id: str | None = None
    action: str | None = None            # routing.model.Action value
    target: str | None = None            # queue id or trunk id
    ivr_path: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    language: str | None = None
    wait_seconds: float | None = None    # time in queue before answer or abandon
    answered_by: str | None = None       # agent interface or trunk id
    outcome: Outcome | str | None = None
    hangup_cause: str | None = None      # Asterisk's cause code/text
    ended_at: datetime | None = None
    table_version: str | None = None
    revision: int = 0
    queue_legs: tuple[Mapping[str, Any], ...] = ()   # records.figures.leg(): the queues joined, in order
    answered_at: datetime | None = None
    talk_seconds: float | None = None    # an agent's talk time (answered calls), for the traffic forecast

    def __post_init__(self) -> None:
        if not self.uniqueid:
            raise ValueError("uniqueid is required")
        _require_aware("arrived_at", self.arrived_at)
        _require_aware("ended_at", self.ended_at)
        _require_aware("answered_at", self.answered_at)
        _coerce(self, "outcome", Outcome, optional=True)
        if self.wait_seconds is not None and self.wait_seconds < 0:
            raise ValueError(f"wait_seconds must not be negative, got {self.wait_seconds}")

    @property
    def record_id(self) -> str:
        return self.uniqueid


@dataclass(frozen=True)
class TransferRecord:
    """A transfer an agent made (or a work order in place of a call leg). The first line stays responsible."""

    uniqueid: str
    kind: TransferRecordKind | str
    from_line: str
    first_line: str                      # the line that took the call first: it stays responsible
    started_at: datetime
    target_trunk: str | None = None
    target_queue: str | None = None
    ended_at: datetime | None = None
    outcome: TransferOutcome | str | None = None
    agent: str | None = None
    work_order: str | None = None        # WO-... when kind is work_order

    def __post_init__(self) -> None:
        if not self.uniqueid:
            raise ValueError("uniqueid is required")
        _coerce(self, "kind", TransferRecordKind)
        _coerce(self, "outcome", TransferOutcome, optional=True)
        _require_aware("started_at", self.started_at)
        _require_aware("ended_at", self.ended_at)

    @property
    def record_id(self) -> str:
        # Deterministic: recording the same transfer twice (e.g. after a restart) still makes one row.
        target = self.target_trunk or self.target_queue or self.work_order or ""
        return f"{self.uniqueid}/{self.kind.value}/{target}/{self.started_at.isoformat()}"


@dataclass(frozen=True)
class CallbackRequest:
    uniqueid: str
    line: str
    queue: str                           # the queue whose agents call back
    number: str                          # digits the caller entered (or the caller's number): memory only
    requested_at: datetime
    language: str | None = None

    def __post_init__(self) -> None:
        if not self.uniqueid:
            raise ValueError("uniqueid is required")
        _require_aware("requested_at", self.requested_at)

    @property
    def record_id(self) -> str:
        return f"{self.uniqueid}/callback/{self.requested_at.isoformat()}"


@dataclass(frozen=True)
class TableVersion:
    """One routing-table load: the audit trail of who changed what, when."""

    version: str                         # content hash of the source files
    loaded_by: str
    loaded_at: datetime
    source: str
    content: str | None = None           # the text put in force, personal data masked (see records.audit_text)

    def __post_init__(self) -> None:
        _require_aware("loaded_at", self.loaded_at)

    @property
    def record_id(self) -> str:
        return f"{self.version}@{self.loaded_at.isoformat()}"


@dataclass(frozen=True)
class WorkOrder:
    number: str                          # WO-YYYYMMDD-NNNN (date in the routing table's timezone)
    line: str
    category: str
    target: str                          # sub-center trunk id or department id
    department: str | None
    status: WorkOrderStatus | str
    dispatched_at: datetime
    sign_deadline: datetime
    uniqueid: str | None = None
    dispatched_by: str | None = None
    signed_at: datetime | None = None
    signed_by: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    summary: str | None = None

    def __post_init__(self) -> None:
        _coerce(self, "status", WorkOrderStatus)
        for name in ("dispatched_at", "sign_deadline", "signed_at", "closed_at"):
            _require_aware(name, getattr(self, name))

    def is_overdue(self, at: datetime) -> bool:
        """Past its sign deadline at `at` and not signed or closed by then."""
        _require_aware("at", at)

        def done_by(moment: datetime | None) -> bool:
            return moment is not None and moment <= at

        return self.sign_deadline <= at and not done_by(self.signed_at) and not done_by(self.closed_at)


@dataclass(frozen=True)
class SupervisorAction:
    """One action a supervisor (or an agent taking a callback) performed or was refused: who, when, what, result.
    `params` holds queue ids, member interfaces, reasons: never caller numbers."""

    at: datetime
    user: str
    role: str
    action: str
    params: Mapping[str, Any]
    result: str                          # "ok" | "error"
    message: str = ""
    action_id: str = ""                  # unique; made from the clock and randomness when not given

    def __post_init__(self) -> None:
        _require_aware("at", self.at)
        if not self.user or not self.action:
            raise ValueError("user and action are required")
        object.__setattr__(self, "params", {str(k): v for k, v in dict(self.params).items()})
        if not self.action_id:
            # Sorts by creation within a process: ties on `at` keep the order actions were recorded in.
            object.__setattr__(self, "action_id", f"{time.time_ns():020d}-{secrets.token_hex(4)}")

    @property
    def record_id(self) -> str:
        return self.action_id
