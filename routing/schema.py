"""The YAML schema of conf/routing.yaml, as pydantic models: types, required keys, unknown keys refused.

Only the shape and single-field rules live here; references between sections and the routing graph are
checked in `routing.checks`, where every problem can be reported at once with its position.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-(([01]\d|2[0-3]):([0-5]\d)|24:00)$")


def _as_number(value: Any) -> Any:
    # YAML reads 12345 as an integer; a phone number is text. Leading zeros cannot survive that, so they
    # must be quoted, which the pattern below enforces for anything but plain digits.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Number = Annotated[str, BeforeValidator(_as_number), Field(pattern=r"^\+?[0-9]{3,20}$")]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
Prompt = Annotated[str, Field(pattern=r"^[A-Za-z0-9_/.-]+$", max_length=128)]
Instant = date | datetime


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dated(Strict):
    """`from` inclusive; `until` inclusive when a date (the whole day), exclusive when a date-time."""

    from_: Instant | None = Field(default=None, alias="from")
    until: Instant | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Dated":
        if self.from_ is not None and self.until is not None and _as_sortable(self.until) < _as_sortable(self.from_):
            raise ValueError(f"the range ends ({self.until}) before it starts ({self.from_})")
        return self


def _as_sortable(value: Instant) -> tuple:
    if isinstance(value, datetime):
        return (value.date(), value.time().replace(tzinfo=None))
    return (value, datetime.min.time())


class Holiday(Strict):
    name: str
    from_: date = Field(alias="from")
    to: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Holiday":
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"the holiday ends ({self.to}) before it starts ({self.from_})")
        return self


class CalendarSpec(Strict):
    holidays: tuple[Holiday, ...] = ()
    working_days: tuple[date, ...] = ()  # 调休: weekend days that are working days
    # The last day the lists are complete for (the notices entered so far); default: 31 December of the year
    # of the last day listed. Past it, `routes check` warns (routing.hours).
    covers_until: date | None = None


class ScheduleSpec(Strict):
    always: bool = False
    calendar: Id | None = None
    workday: tuple[str, ...] = ()
    restday: tuple[str, ...] = ()

    @field_validator("workday", "restday")
    @classmethod
    def _spans(cls, spans: tuple[str, ...]) -> tuple[str, ...]:
        for span in spans:
            match = SPAN.match(span)
            if not match:
                raise ValueError(f"'{span}' is not an opening span like 08:30-12:00")
            if match.group(3) != "24:00" and match.group(3) <= f"{match.group(1)}:{match.group(2)}":
                raise ValueError(f"'{span}' ends before it starts")
        return spans

    @model_validator(mode="after")
    def _meaningful(self) -> "ScheduleSpec":
        if self.always and (self.workday or self.restday):
            raise ValueError("a schedule that is always open takes no opening spans")
        if not self.always and self.calendar is None:
            raise ValueError("a schedule with opening hours needs a calendar (holidays and adjusted working days)")
        return self


class OverflowSpec(Strict):
    after_seconds: int = Field(gt=0, le=3600)
    to: Id


class ClosedSpec(Strict):
    """Outside hours: another queue, or prompts then a callback request or a hang-up."""

    queue: Id | None = None
    callback: Id | None = None
    prompts: tuple[Prompt, ...] = ()
    hangup: bool = False

    @model_validator(mode="after")
    def _one_action(self) -> "ClosedSpec":
        chosen = [k for k in ("queue", "callback") if getattr(self, k)] + (["hangup"] if self.hangup else [])
        if len(chosen) != 1:
            raise ValueError("when_closed takes exactly one of queue, callback or hangup: true")
        if self.hangup and not self.prompts:
            raise ValueError("when_closed with hangup needs prompts: a caller never meets silence")
        return self


class QueueSpec(Strict):
    name: str
    kind: Literal["general", "expert", "minors", "business", "sub_platform", "abuse"] = "general"
    schedule: Id | None = None
    overflow: OverflowSpec | None = None
    when_closed: ClosedSpec | None = None
    strategy: Literal["ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom",
                      "rrordered"] = "rrmemory"
    member_timeout: int = Field(default=15, gt=0, le=300)
    wrapup_seconds: int = Field(default=5, ge=0, le=600)
    service_level_seconds: int | None = Field(default=None, gt=0, le=600)
    announce_holdtime: bool = True
    members: tuple[Annotated[str, Field(pattern=r"^[A-Za-z]+/[A-Za-z0-9_@.;/-]+$")], ...] = ()


class CallerIdSpec(Strict):
    """What the far end of a trunk we dial learns about the citizen; unset keys take the trunk kind's default
    (routing.model.CALLER_ID_DEFAULTS). Combinations that would lose the number are refused in routing.checks."""

    from_: Literal["caller", "trunk"] | None = Field(default=None, alias="from")  # From's user part
    identity: Literal["pai", "rpid", "none"] | None = None   # P-Asserted-Identity, Remote-Party-ID or neither
    withheld: Literal["send", "hide"] | None = None          # CLIR callers: number in the identity header
    #                                                          with Privacy: id, or Anonymous and no number


class TrunkSpec(Strict):
    name: str
    kind: Literal["carrier", "retained_seat", "subcenter", "emergency"]
    host: str = Field(pattern=r"^[A-Za-z0-9.:-]+$")
    port: int = Field(default=5060, gt=0, lt=65536)
    auth: Literal["ip", "registration"] = "ip"
    dial: Number | None = None
    username: str | None = None
    secret_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")] | None = None
    match: tuple[str, ...] = ()
    caller_id: CallerIdSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("secret", "password"):
                if key in data:
                    raise ValueError(f"'{key}' does not belong in YAML: name the environment variable with "
                                     "secret_env and keep the value in the environment or the secrets file")
        return data

    @model_validator(mode="after")
    def _auth_complete(self) -> "TrunkSpec":
        if self.auth == "registration" and not (self.username and self.secret_env):
            raise ValueError("registration needs username and secret_env")
        return self


class TransferSpec(Strict):
    kind: Literal["attended", "three_way", "work_order", "handover", "escalate"]
    trunk: Id | None = None
    queue: Id | None = None
    no_answer_seconds: int = Field(default=30, gt=0, le=600)
    on_no_answer: Literal["return_to_agent", "work_order"] = "return_to_agent"
    department: str | None = None

    @model_validator(mode="after")
    def _target(self) -> "TransferSpec":
        needs = {"attended": "trunk", "three_way": "trunk", "handover": "trunk", "escalate": "queue",
                 "work_order": "department"}[self.kind]
        if getattr(self, needs) is None:
            raise ValueError(f"a {self.kind} transfer needs '{needs}'")
        return self


Category = Literal["unified", "cancelled", "dual", "expert", "retained_seat", "subcenter", "emergency_linkage"]


class RuleSpec(Dated):
    id: Id | None = None
    category: Category
    queue: Id | None = None
    trunk: Id | None = None
    prompts: tuple[Prompt, ...] = ()
    menu: Id | None = None
    tags: tuple[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")], ...] = ()
    transfers: tuple[TransferSpec, ...] = ()
    transition: Dated | None = None
    after_transition: Literal["connect", "hangup"] | None = None
    after_prompts: tuple[Prompt, ...] = ()

    @model_validator(mode="after")
    def _category_fields(self) -> "RuleSpec":
        if self.category == "emergency_linkage":
            if self.trunk is None:
                raise ValueError("an emergency_linkage rule needs 'trunk': it is dialed at once, never queued")
            if self.queue or self.menu or self.prompts:
                raise ValueError("an emergency_linkage rule takes no queue, menu or prompts")
        elif self.queue is None:
            raise ValueError(f"a {self.category} rule needs 'queue'")
        if self.category == "cancelled":
            if self.transition is None or self.transition.from_ is None or self.transition.until is None:
                raise ValueError("a cancelled rule needs 'transition' with 'from' and 'until'")
            if not self.prompts:
                raise ValueError("a cancelled rule needs prompts: the caller must hear that the number is now 12345")
            if self.after_transition is None:
                raise ValueError("a cancelled rule needs 'after_transition': connect or hangup")
            if self.after_transition == "hangup" and not (self.after_prompts or self.prompts):
                raise ValueError("after_transition: hangup needs after_prompts")
        elif self.transition or self.after_transition or self.after_prompts:
            raise ValueError("transition, after_transition and after_prompts belong to cancelled rules only")
        return self


class LineSpec(Strict):
    service: str
    seed: str = Field(min_length=1)
    rules: list[RuleSpec] = Field(min_length=1)


class ListedCallerSpec(Strict):
    number: Number
    until: Instant | None = None
    reason: str


class AbuseSpec(Strict):
    listed: tuple[ListedCallerSpec, ...] = ()
    max_calls: int | None = Field(default=None, gt=0)
    per_minutes: int = Field(default=60, gt=0, le=7 * 24 * 60)
    queue: Id | None = None
    hangup: bool = False
    prompts: tuple[Prompt, ...] = ()

    @model_validator(mode="after")
    def _action(self) -> "AbuseSpec":
        if (self.listed or self.max_calls) and (self.queue is None) == (not self.hangup):
            raise ValueError("the abuse rule takes exactly one of queue or hangup: true")
        if self.hangup and not self.prompts:
            raise ValueError("an abuse hang-up needs prompts (a warning announcement)")
        return self


class UnknownSpec(Strict):
    prompts: tuple[Prompt, ...] = ()


# -- emergency linkage retry (its own block: paced attempts within a bound, then the announcement and the next route)

class EmergencyRetrySpec(Strict):
    """How an emergency trunk is retried when it does not answer; unset fields come from `emergency.retry`."""

    attempts: int | None = Field(default=None, ge=1, le=10)
    ring_seconds: int | None = Field(default=None, gt=0, le=120)      # one attempt rings at most this long
    pause_seconds: int | None = Field(default=None, ge=0, le=60)      # between attempts: never a burst
    within_seconds: int | None = Field(default=None, gt=0, le=600)    # all attempts of this trunk together
    announce: Prompt | None = None                                    # played once the attempts are over


class EmergencyRouteSpec(EmergencyRetrySpec):
    next: Id | None = None          # another emergency trunk tried after the announcement


class EmergencySpec(Strict):
    retry: EmergencyRetrySpec = EmergencyRetrySpec()
    trunks: dict[Id, EmergencyRouteSpec] = {}


# -- manual override switches (an admin flips them at run time; the table says what each one does)

class SwitchNameSpec(Strict):
    zh: str = Field(min_length=1, max_length=80)
    en: str = Field(min_length=1, max_length=80)


def _as_code(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class SwitchSpec(Strict):
    """What a switch does to every non-emergency call of its lines while it is on (routing.decide)."""

    name: SwitchNameSpec
    code: Annotated[str, BeforeValidator(_as_code), Field(pattern=r"^[0-9]{1,2}$")]  # phone: *95<code> / *96<code>
    pin_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")] = "HOTLINE_SWITCH_PIN"
    lines: tuple[Number, ...] = ()        # empty: every line (emergency linkage never)
    prompts: tuple[Prompt, ...] = ()      # announced first
    queue: Id | None = None               # then this queue instead of the line's (its menu skipped)
    closed: bool = False                  # every schedule with opening hours counts as closed (night mode)
    work_orders_only: bool = False        # the lines' transfers keep only work orders (a sub-center is down)

    @model_validator(mode="before")
    @classmethod
    def _no_pin(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pin" in data:
            raise ValueError("'pin' does not belong in YAML: name the variable with pin_env and keep the PIN "
                             "in the environment or the secrets file")
        return data

    @model_validator(mode="after")
    def _does_something(self) -> "SwitchSpec":
        if not (self.prompts or self.queue or self.closed or self.work_orders_only):
            raise ValueError("a switch needs at least one of prompts, queue, closed: true, work_orders_only: true")
        if self.work_orders_only and not self.lines:
            raise ValueError("work_orders_only needs 'lines': the lines whose transfers become work orders")
        return self


class TableSpec(Strict):
    version: Literal[1]
    timezone: str
    general_queue: Id
    service_level_seconds: int = Field(default=15, gt=0, le=600)
    calendars: dict[Id, CalendarSpec] = {}
    schedules: dict[Id, ScheduleSpec] = {}
    queues: dict[Id, QueueSpec]
    trunks: dict[Id, TrunkSpec] = {}
    lines: dict[Number, LineSpec]
    abuse: AbuseSpec = AbuseSpec()
    unknown_number: UnknownSpec = UnknownSpec()
    emergency: EmergencySpec = EmergencySpec()
    switches: dict[Id, SwitchSpec] = {}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{name}' is not a known time zone (e.g. Asia/Shanghai)") from None
        return name
