"""Transfers over AMI: pure state machines (fed replies and events, time passed in) and a thin async driver.

Kinds (routing.model.TransferKind) and how each is done:
- ATTENDED (warm; retained seats 12348/12333): AMI Atxfer on the agent's channel to <trunk dial digits> in
  hotline-warm-transfer (the dialplan maps the digits to the trunk). Atxfer, not Originate+Bridge: Asterisk then keeps the caller on hold, lets the
  agent talk to the seat first and returns the caller to the agent by itself when the leg fails; we only add the
  bound: not answered within no_answer_seconds of the leg's start -> we hang the leg up (if the dialplan's Dial has
  not ended it), Asterisk gives the caller back (RETURNED); a seat that cannot be reached -> FAILED, caller back.
  Needs queue options tT and an atxfer feature code (Atxfer only queues DTMF, hence digits-only targets).
- THREE_WAY (sub-centres 12360/12366/12305, emergency linkage): Originate Local/<digits>@hotline-threeway into
  hotline-threeway,target with HOTLINE_CONF=<room>; only once the target answered are caller and agent moved
  into the same ConfBridge (Setvar HOTLINE_CONF on both, one Redirect: caller -> exten caller, ExtraChannel agent
  -> exten agent). No answer: nothing moved, the caller is still with the agent (NO_ANSWER). Target first, so a
  target that never answers costs the caller nothing; the target waits a moment alone in the room.
- HANDOVER (emergency one-step): Redirect of the caller to hotline-warm-transfer,<digits> (works bridged or not,
  unlike BlindTransfer); the dialplan (hotline-emergency) dials the emergency trunk, retrying. The record's
  first_line says which line took the call first. An unreachable trunk makes no channel and no event: the
  caller's DIALSTATUS (Getvar) and its final Hangup context tell.
- ESCALATE (expert-12320/12329): Setvar HOTLINE_LINE and HOTLINE_IVR_PATH on the caller, then Redirect to
  hotline-escalate,<queue id>; ANSWERED once an expert's AgentConnect is seen; NO_ANSWER when the caller leaves
  the queue unanswered (hung up, or moved on by its overflow: the next QueueCallerJoin names where).

Asterisk hangs the agent up as soon as the caller is Redirected out of the queue bridge (hand-over, escalate):
nothing here expects the agent to stay.

Every attempt ends in exactly one TransferRecord (records.types), reported once to on_record. An AMI link that
drops mid-transfer fails the attempt cleanly (FAILED); nothing is ever re-sent, so no second Originate.
"""
from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import structlog

from ivr.ami.client import AmiClient, AmiError
from ivr.ami.contract import DEFAULT_DIALPLAN, TransferDialplan
from ivr.ami.framing import Message
from records.types import TransferOutcome, TransferRecord, TransferRecordKind
from routing.model import TransferKind

log = structlog.get_logger(__name__)

SETUP_GRACE_SECONDS = 5.0     # beyond no_answer_seconds, for Asterisk to report what happened
CONSULT_LIMIT_SECONDS = 600.0  # warm transfer: how long we follow the agent's talk with the seat before recording
POLL_SECONDS = 1.0            # hand-over: how often the caller's DIALSTATUS is read while no Dial shows


@dataclass(frozen=True)
class TransferRequest:
    kind: TransferKind
    uniqueid: str                         # the call's uniqueid (records key)
    caller_channel: str
    from_line: str                        # the legacy line the call came in on (HOTLINE_LINE)
    first_line: str = "12345"             # the line that took the call first: stays responsible
    agent_channel: str | None = None      # needed for ATTENDED and THREE_WAY
    agent: str | None = None              # agent id for the record (interface or name)
    linkedid: str | None = None           # the call's Linkedid: ATTENDED finds its Local leg by it
    target_trunk: str | None = None       # ATTENDED, THREE_WAY, HANDOVER
    dial: str | None = None               # the trunk's dial digits (Trunk.dial)
    target_queue: str | None = None       # ESCALATE
    no_answer_seconds: float = 30
    ivr_path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        kind = TransferKind(self.kind)
        object.__setattr__(self, "kind", kind)
        if kind in (TransferKind.ATTENDED, TransferKind.THREE_WAY) and not self.agent_channel:
            raise ValueError(f"{kind.value} transfer needs the agent's channel")
        if kind in (TransferKind.ATTENDED, TransferKind.THREE_WAY, TransferKind.HANDOVER):
            if not self.target_trunk or not self.dial or not self.dial.isdigit():
                raise ValueError(f"{kind.value} transfer needs a target trunk with digits to dial, got "
                                 f"trunk={self.target_trunk!r} dial={self.dial!r}")
        if kind is TransferKind.ESCALATE and not self.target_queue:
            raise ValueError("escalation needs a target queue")
        if kind is TransferKind.WORK_ORDER:
            raise ValueError("work orders have no call leg: they are not an AMI transfer")
        if self.no_answer_seconds <= 0:
            raise ValueError("no_answer_seconds must be positive")


@dataclass(frozen=True)
class Send:
    """An AMI action the machine wants sent; its reply (or AmiError) comes back through on_reply(tag, ...)."""

    tag: str
    fields: dict[str, Any]


RECORD_KIND = {TransferKind.ATTENDED: TransferRecordKind.ATTENDED, TransferKind.THREE_WAY: TransferRecordKind.THREE_WAY,
               TransferKind.HANDOVER: TransferRecordKind.HANDOVER, TransferKind.ESCALATE: TransferRecordKind.ESCALATE}


class TransferMachine:
    """Shared life cycle: setup actions one by one (any error -> FAILED), then events until an outcome or the
    deadline. Subclasses say which actions, which events matter, and what the deadline means."""

    def __init__(self, request: TransferRequest, now: datetime, *, attempt_id: str,
                 dialplan: TransferDialplan = DEFAULT_DIALPLAN) -> None:
        self.req, self.dp, self.attempt_id = request, dialplan, attempt_id
        self.started_at = now
        self.ended_at: datetime | None = None
        self.outcome: TransferOutcome | None = None
        self.reason = ""
        self.deadline: datetime | None = None
        self.state = "new"
        self.steps: list[Send] = []
        self.log: list[str] = []          # what happened, for logs and the CLI

    # -- the driver's interface ------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.outcome is not None

    def start(self, now: datetime) -> list[Send]:
        self.state = "setup"
        self.steps = self.setup()
        self.deadline = now + timedelta(seconds=self.req.no_answer_seconds + SETUP_GRACE_SECONDS)
        return self._next_step(now)

    def on_reply(self, tag: str, reply: list[Message] | AmiError, now: datetime) -> list[Send]:
        if self.finished:
            return []
        if isinstance(reply, AmiError):
            return self.step_failed(tag, reply, now)
        self.note(f"{tag}: {reply[0].get('Message') or reply[0].get('Response')}")
        if self.state == "setup":
            return self._next_step(now)
        return self.after_reply(tag, reply, now)

    def on_event(self, event: Message, now: datetime) -> list[Send]:
        return [] if self.finished else self.handle_event(event, now)

    def tick(self, now: datetime) -> list[Send]:
        if self.finished or self.deadline is None or now < self.deadline:
            return []
        return self.deadline_passed(now)

    @property
    def wake_at(self) -> datetime | None:
        """When the driver must call tick() next (None: only an event or a reply can move things on)."""
        return self.deadline

    def on_link_lost(self, now: datetime) -> list[Send]:
        if not self.finished:
            self.finish(TransferOutcome.FAILED, now, "AMI link lost mid-transfer (nothing re-sent)")
        return []

    def record(self) -> TransferRecord:
        return TransferRecord(uniqueid=self.req.uniqueid, kind=RECORD_KIND[self.req.kind],
                              from_line=self.req.from_line, first_line=self.req.first_line,
                              started_at=self.started_at, target_trunk=self.req.target_trunk,
                              target_queue=self.req.target_queue, ended_at=self.ended_at, outcome=self.outcome,
                              agent=self.req.agent)

    # -- helpers for subclasses --------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        self.log.append(text)

    def finish(self, outcome: TransferOutcome, now: datetime, reason: str) -> None:
        if self.outcome is None:
            self.outcome, self.ended_at, self.reason, self.state = outcome, now, reason, "done"
            self.note(f"{outcome.value}: {reason}")

    def _next_step(self, now: datetime) -> list[Send]:
        if self.steps:
            return [self.steps.pop(0)]
        self.state = "waiting"
        return self.setup_done(now)

    def step_failed(self, tag: str, error: AmiError, now: datetime) -> list[Send]:
        self.finish(TransferOutcome.FAILED, now, f"{tag} failed: {error}")
        return []

    def action_id(self, tag: str) -> str:
        return f"{self.attempt_id}-{tag}"

    # -- to override -------------------------------------------------------------------------------------------
    def setup(self) -> list[Send]:
        raise NotImplementedError

    def setup_done(self, now: datetime) -> list[Send]:
        return []

    def after_reply(self, tag: str, reply: list[Message], now: datetime) -> list[Send]:
        return []

    def handle_event(self, event: Message, now: datetime) -> list[Send]:
        return []

    def deadline_passed(self, now: datetime) -> list[Send]:
        self.finish(TransferOutcome.FAILED, now, "Asterisk reported nothing in time")
        return []


def _setvar(channel: str, name: str, value: str) -> dict[str, str]:
    return {"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value}


class AttendedTransfer(TransferMachine):
    """Warm transfer via Atxfer, followed on the events user hotline (read=call,agent) receives (NOTES-2.md).

    Asterisk never sends a DialBegin from the agent for Atxfer. It creates a Local leg
    `Local/<digits>@hotline-warm-transfer-XXXX;1/;2` (Newchannel, Linkedid = the call's), puts ;1 and the agent
    into a consultation bridge, and the leg's ;2 dials the seat (DialBegin Channel=leg;2). Then:
    - completed: AttendedTransfer `Result: Success` (TransferTarget = leg;1) -> ANSWERED, however long they talked;
    - not answered: the dialplan's Dial or our bound (we hang up leg;2 at no_answer_seconds) ends the leg; the
      agent re-enters the original bridge and gets Unhold; no AttendedTransfer at all -> RETURNED;
    - seat unreachable: no seat channel, leg hangs up at once (Cause 3, CHANUNAVAIL) -> FAILED, caller back with
      the agent."""

    target: str | None = None             # the seat's channel (DialBegin of leg;2)
    answered = False
    leg: str | None = None                # leg ;1 (enters the consultation bridge, becomes TransferTarget)
    leg2: str | None = None               # leg ;2 (dials the seat)
    consult_bridge: str | None = None
    original_bridge: str | None = None
    dial_status = ""
    hangup_cause = ""
    optimized = False                     # LocalOptimization replaced the leg by the seat before completion

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.candidates: dict[str, str] = {}      # warm-context ;1 legs of unknown calls: bridge id -> leg;1
        self.early: dict[str, list[Message]] = {}  # events of warm legs not yet known to be ours, by leg name

    def setup(self) -> list[Send]:
        return [Send("atxfer", {"Action": "Atxfer", "Channel": self.req.agent_channel, "Exten": self.req.dial,
                                "Context": self.dp.warm_context})]

    def setup_done(self, now: datetime) -> list[Send]:
        self.state = "ringing"
        if self.leg is None:      # Asterisk plays *2 and the digits first (~0.6 s); the bound runs from the leg
            self.deadline = now + timedelta(seconds=self.req.no_answer_seconds + SETUP_GRACE_SECONDS)
        return []

    def _is_leg(self, channel: str | None) -> bool:
        return bool(channel) and channel in (self.leg, self.leg2)

    def _take_leg(self, leg1: str, now: datetime) -> None:
        if self.leg is None:
            self.leg, self.leg2 = leg1, leg1[:-2] + ";2"
            self.note(f"transfer leg {self.leg}")
            if not self.answered:     # the dialplan's Dial(…, no_answer_seconds) starts now; ours is the backstop
                self.deadline = now + timedelta(seconds=self.req.no_answer_seconds)
            for event in self.early.pop(leg1[:-2], []):       # e.g. leg;2's DialBegin before the agent's BridgeEnter
                if event.get("Event") != "Newchannel":
                    self.handle_event(event, now)
            self.early.clear()

    def handle_event(self, event: Message, now: datetime) -> list[Send]:
        name, agent, channel = event.get("Event"), self.req.agent_channel, event.get("Channel", "")
        warm_leg = channel.startswith(f"Local/{self.req.dial}@{self.dp.warm_context}-")
        if warm_leg and self.leg is None:      # kept until we know which warm leg is ours
            self.early.setdefault(channel[:-2], []).append(event)
        if name == "Newchannel" and warm_leg and channel.endswith(";1") and self.leg is None \
                and self.req.linkedid and event.get("Linkedid") == self.req.linkedid:
            self._take_leg(channel, now)
        elif name == "BridgeEnter" and warm_leg and channel.endswith(";1") and self.consult_bridge is None:
            self.candidates[event.get("BridgeUniqueid", "")] = channel
        elif name == "BridgeLeave" and channel == agent and self.original_bridge is None:
            self.original_bridge = event.get("BridgeUniqueid")
        elif name == "BridgeEnter" and channel == agent:
            bridge = event.get("BridgeUniqueid")
            if bridge == self.original_bridge and self.consult_bridge is not None:
                return self._returned(now, "agent back in the original bridge")
            if self.consult_bridge is None and self.original_bridge is not None and bridge != self.original_bridge:
                self.consult_bridge = bridge
                if bridge in self.candidates:
                    self._take_leg(self.candidates[bridge], now)
                self.note("agent consulting in the transfer bridge")
        elif name == "Unhold" and channel == agent and self.consult_bridge is not None:
            return self._returned(now, "agent taken off hold")
        elif name == "DialBegin" and channel == self.leg2 and self.target is None:
            self.target = event.get("DestChannel")
            self.note(f"ringing {self.target}")
        elif name == "DialEnd" and (channel == self.leg2 or (not channel and event.get("DestChannel") == self.leg)):
            status = event.get("DialStatus", "")
            if status == "ANSWER" and not self.answered:
                self.answered, self.state = True, "consulting"
                self.deadline = now + timedelta(seconds=CONSULT_LIMIT_SECONDS)   # no hurry: they talk
                self.note("seat answered; agent consulting")
            elif status != "ANSWER":
                self.dial_status = status
        elif name == "AttendedTransfer" and (event.get("OrigTransfererChannel") == agent
                                             or (self.leg and event.get("TransferTargetChannel") == self.leg)):
            if event.get("Result") == "Success":
                self.finish(TransferOutcome.ANSWERED, now, f"caller connected to {self.req.target_trunk}"
                                                           f"{' (' + self.target + ')' if self.target else ''}")
            else:
                self.finish(TransferOutcome.RETURNED, now, f"transfer result {event.get('Result')}: caller back "
                                                           "with the agent")
        elif name == "LocalOptimizationBegin" and self.leg and event.get("LocalOneChannel") == self.leg:
            self.optimized = True     # the seat takes leg;1's place: the leg's Hangup that follows is no failure
            self.note(f"leg optimized away: {event.get('SourceChannel')} in its place")
        elif name == "Hangup" and self._is_leg(channel) and self.optimized:
            pass
        elif name == "Hangup" and self._is_leg(channel):
            self.hangup_cause = self.hangup_cause or f"{event.get('Cause', '')} {event.get('Cause-txt', '')}".strip()
            return self._returned(now, "transfer leg ended")
        elif name == "Hangup" and channel == self.req.caller_channel:
            self.finish(TransferOutcome.FAILED, now, "caller hung up during the transfer")
        return []

    def _returned(self, now: datetime, what: str) -> list[Send]:
        """The leg is gone before any AttendedTransfer: Asterisk gives the caller back to the agent."""
        if self.state == "cancelling":
            self.finish(TransferOutcome.RETURNED, now, f"no answer within {self.req.no_answer_seconds:g} s: leg "
                                                       "hung up, caller back with the agent")
        elif self.answered:
            self.finish(TransferOutcome.RETURNED, now, f"{what} after the seat answered, without a transfer: "
                                                       "caller back with the agent")
        elif self.target is None or self.dial_status in ("CHANUNAVAIL", "CONGESTION"):
            detail = self.dial_status or self.hangup_cause or "no seat channel"
            self.finish(TransferOutcome.FAILED, now, f"{self.req.target_trunk} unreachable ({detail}): caller back "
                                                     "with the agent")
        else:
            status = (self.dial_status or "no answer").lower()
            self.finish(TransferOutcome.RETURNED, now, f"{self.req.target_trunk}: {status}: caller back with the "
                                                       "agent")
        return []

    def deadline_passed(self, now: datetime) -> list[Send]:
        if self.state == "setup":
            return super().deadline_passed(now)
        if self.state == "consulting":
            self.finish(TransferOutcome.ANSWERED, now, "the seat answered; completion not seen within "
                                                       f"{CONSULT_LIMIT_SECONDS:g} s of consultation")
            return []
        if self.state == "cancelling":
            self.finish(TransferOutcome.RETURNED, now, f"no answer within {self.req.no_answer_seconds:g} s: leg "
                                                       "hung up")
            return []
        if self.leg is None:
            self.finish(TransferOutcome.FAILED, now, "no transfer leg appeared (Atxfer needs queue options tT and "
                                                     "an atxfer feature code)")
            return []
        self.state = "cancelling"
        self.deadline = now + timedelta(seconds=SETUP_GRACE_SECONDS)
        self.note(f"no answer within {self.req.no_answer_seconds:g} s: hanging up {self.leg2}")
        return [Send("cancel", {"Action": "Hangup", "Channel": self.leg2, "Cause": "19"})]

    def step_failed(self, tag: str, error: AmiError, now: datetime) -> list[Send]:
        if tag == "cancel":          # the leg was gone already: its Hangup or the agent's return follows
            self.note(f"cancel: {error}")
            return []
        return super().step_failed(tag, error, now)


def conference_room(uniqueid: str) -> str:
    return "xfer-" + re.sub(r"[^A-Za-z0-9]", "-", uniqueid)


class ThreeWayTransfer(TransferMachine):
    """Target first, then caller and agent into the target's conference; see the module docstring."""

    target: str | None = None

    def setup(self) -> list[Send]:
        dp, req = self.dp, self.req
        room = conference_room(req.uniqueid)
        return [Send("originate", {
            "Action": "Originate", "ActionID": self.action_id("originate"),
            "Channel": f"Local/{req.dial}@{dp.threeway_context}", "Context": dp.threeway_context,
            "Exten": dp.target_exten, "Priority": "1", "Async": "true",
            "Timeout": str(int(req.no_answer_seconds * 1000)), "CallerID": f'"{req.first_line}" <{req.first_line}>',
            "ChannelId": self.leg_id,
            # The leg reads the citizen's number and presentation from the caller's channel (IMPORT in the
            # dialplan), so the sub-center sees the caller, not the line; CallerID above is only the fallback.
            "Variable": [f"{dp.conf_var}={room}", f"HOTLINE_CALLER_CHANNEL={req.caller_channel}"]})]

    @property
    def leg_id(self) -> str:
        """The target leg's uniqueid, chosen by us (Originate ChannelId): its Newchannel tells us its name early,
        so a leg still ringing can be hung up if the caller goes."""
        return self.action_id("leg")

    def setup_done(self, now: datetime) -> list[Send]:
        if self.state == "waiting":
            self.state = "ringing"
        return self._bridge_if_answered(now)

    leg: str | None = None

    def handle_event(self, event: Message, now: datetime) -> list[Send]:
        if event.get("Event") == "Newchannel" and event.get("Uniqueid") == self.leg_id:
            self.leg = event.get("Channel")
        elif event.get("Event") == "OriginateResponse" and event.get("ActionID") == self.action_id("originate"):
            if event.get("Response") == "Success":
                self.target = event.get("Channel")
                self.note(f"target answered on {self.target}")
                return self._bridge_if_answered(now)
            self.finish(TransferOutcome.NO_ANSWER, now,
                        f"target did not answer (reason {event.get('Reason')}): caller still with the agent")
        elif event.get("Event") == "Hangup" and event.get("Channel") == self.req.caller_channel:
            leg = self.target or self.leg
            self.finish(TransferOutcome.FAILED, now, "caller hung up during the transfer")
            return [Send("cleanup", {"Action": "Hangup", "Channel": leg})] if leg else []
        return []

    def _bridge_if_answered(self, now: datetime) -> list[Send]:
        if self.target is None or self.state != "ringing":
            return []                     # the Originate reply or the answer is still to come
        self.state = "joining"
        dp, req = self.dp, self.req
        room = conference_room(req.uniqueid)
        self.steps = [Send("set-conf-agent", _setvar(req.agent_channel or "", dp.conf_var, room)),
                      Send("join", {"Action": "Redirect", "Channel": req.caller_channel,
                                    "Context": dp.threeway_context, "Exten": dp.caller_exten, "Priority": "1",
                                    "ExtraChannel": req.agent_channel, "ExtraContext": dp.threeway_context,
                                    "ExtraExten": dp.agent_exten, "ExtraPriority": "1"})]
        return [Send("set-conf-caller", _setvar(req.caller_channel, dp.conf_var, room))]

    def after_reply(self, tag: str, reply: list[Message], now: datetime) -> list[Send]:
        if tag == "join":
            self.finish(TransferOutcome.ANSWERED, now, "caller, agent and target in one conference")
            return []
        if self.steps and self.state == "joining":
            return [self.steps.pop(0)]
        return []

    def step_failed(self, tag: str, error: AmiError, now: datetime) -> list[Send]:
        cleanup = ([Send("cleanup", {"Action": "Hangup", "Channel": self.target})]
                   if self.target and tag != "cleanup" else [])
        super().step_failed(tag, error, now)
        return cleanup

    def deadline_passed(self, now: datetime) -> list[Send]:
        self.finish(TransferOutcome.NO_ANSWER if self.target is None else TransferOutcome.FAILED, now,
                    "no answer reported in time" if self.target is None else "could not join the conference")
        return []


class Handover(TransferMachine):
    """Emergency one-step hand-over: Redirect the caller to the emergency trunk; see the module docstring.

    Asterisk hangs the agent up at once (the queue bridge is left). Each Dial the emergency dialplan makes is a
    DialBegin from the caller, except when the trunk is unreachable: then no channel is made, no event at all
    reaches user hotline, and only the caller's DIALSTATUS (polled with Getvar) or its final Hangup in the
    emergency context says the dialplan tried (and went on to its announcement)."""

    target: str | None = None
    attempts = 0
    last_status = ""
    unreachable = ""                      # DIALSTATUS of a Dial that made no channel (CHANUNAVAIL...)

    def setup(self) -> list[Send]:
        caller = self.req.caller_channel
        # cleared first, so the poll below only sees what this hand-over's Dial set
        return [Send("clear-status", _setvar(caller, "DIALSTATUS", "")),
                Send("redirect", {"Action": "Redirect", "Channel": caller, "Context": self.dp.warm_context,
                                  "Exten": self.req.dial, "Priority": "1"})]

    def setup_done(self, now: datetime) -> list[Send]:
        self.state = "dialing"
        self.poll_at = now + timedelta(seconds=POLL_SECONDS)
        return []

    poll_at: datetime | None = None

    def tick(self, now: datetime) -> list[Send]:
        if self.finished:
            return []
        if self.poll_at is not None and now >= self.poll_at and not self.attempts and not self.unreachable:
            self.poll_at = now + timedelta(seconds=POLL_SECONDS)
            return [Send("dialstatus", {"Action": "Getvar", "Channel": self.req.caller_channel,
                                        "Variable": "DIALSTATUS"})]
        return super().tick(now)

    @property
    def wake_at(self) -> datetime | None:
        if self.poll_at is not None and not self.attempts and not self.unreachable and self.deadline:
            return min(self.poll_at, self.deadline)
        return self.deadline

    def after_reply(self, tag: str, reply: list[Message], now: datetime) -> list[Send]:
        status = reply[0].get("Value", "") if tag == "dialstatus" else ""
        if status and status != "ANSWER" and not self.attempts:
            self.unreachable = status
            self.note(f"{self.req.target_trunk} unreachable ({status}): no call could be set up; the emergency "
                      "dialplan retries, then plays its announcement")
        return []

    def step_failed(self, tag: str, error: AmiError, now: datetime) -> list[Send]:
        if tag == "dialstatus":           # the caller is gone: its Hangup event decides
            return []
        return super().step_failed(tag, error, now)

    def handle_event(self, event: Message, now: datetime) -> list[Send]:
        """The emergency dialplan retries: each DialBegin is an attempt, only ANSWER or the caller's end decide."""
        name, caller = event.get("Event"), self.req.caller_channel
        if name == "DialBegin" and event.get("Channel") == caller:
            self.target, self.attempts = event.get("DestChannel"), self.attempts + 1
            self.deadline = now + timedelta(seconds=self.req.no_answer_seconds + SETUP_GRACE_SECONDS)
            self.note(f"attempt {self.attempts}: dialing {self.req.target_trunk}")
        elif name == "DialEnd" and event.get("Channel") == caller and event.get("DestChannel") == self.target:
            if event.get("DialStatus") == "ANSWER":
                self.finish(TransferOutcome.ANSWERED, now, f"{self.req.target_trunk} answered (attempt "
                                                           f"{self.attempts})")
            else:
                self.last_status = event.get("DialStatus", "").lower()
                self.note(f"attempt {self.attempts}: {self.last_status}")
        elif name == "Hangup" and event.get("Channel") == caller and self.state == "dialing":
            in_emergency = event.get("Context") == self.dp.emergency_context
            if self.attempts:
                self.finish(self._not_reached(), now, f"{self.req.target_trunk} not reached after "
                                                      f"{self.attempts} attempt(s) ({self.last_status}); "
                                                      "caller hung up")
            elif self.unreachable or in_emergency:       # a trunk down: a technical failure, like a seat down
                self.finish(TransferOutcome.FAILED, now, f"{self.req.target_trunk} unreachable "
                                                         f"({self.unreachable or 'no call set up'}): the "
                                                         "dialplan's retries and announcement ran, then the "
                                                         "caller hung up")
            else:
                self.finish(TransferOutcome.FAILED, now, "caller hung up before the hand-over was dialed")
        return []

    def _not_reached(self) -> TransferOutcome:
        """Attempts that all failed to set up (congestion, chanunavail) are a trunk down, not a gateway that rang."""
        return TransferOutcome.FAILED if self.last_status in ("congestion", "chanunavail") else \
            TransferOutcome.NO_ANSWER

    def deadline_passed(self, now: datetime) -> list[Send]:
        if self.attempts:
            self.finish(self._not_reached(), now, f"{self.req.target_trunk} did not answer in time "
                                                  f"({self.attempts} attempt(s), {self.last_status or 'ringing'})")
        elif self.unreachable:
            self.finish(TransferOutcome.FAILED, now, f"{self.req.target_trunk} unreachable ({self.unreachable}); "
                                                     "the emergency dialplan goes on with the caller")
        else:
            super().deadline_passed(now)
        return []


class Escalation(TransferMachine):
    """Into an expert queue with the call's context kept; see the module docstring.

    Followed on the queue events: QueueCallerJoin of the expert queue, then AgentConnect there (ANSWERED), or
    QueueCallerLeave without an answer: the caller hung up (Hangup next) or left on the queue's overflow
    (leave-empty, timeout: QueueCallerJoin of the next queue next); both NO_ANSWER, said as they happened."""

    joined = False
    abandoned = False                     # app_queue's QueueCallerAbandon: hung up, leave-empty or timeout
    left_at: datetime | None = None
    hold = ""

    def setup(self) -> list[Send]:
        dp, req = self.dp, self.req
        caller = req.caller_channel
        steps = [Send("set-line", _setvar(caller, "HOTLINE_LINE", req.from_line))]
        if req.ivr_path:        # empty: keep what the IVR session set on the channel
            steps.append(Send("set-path", _setvar(caller, "HOTLINE_IVR_PATH", ">".join(req.ivr_path))))
        return steps + [Send("redirect", {"Action": "Redirect", "Channel": caller, "Context": dp.escalate_context,
                                  "Exten": req.target_queue, "Priority": "1"})]

    def setup_done(self, now: datetime) -> list[Send]:
        self.state = "queued"
        return []

    def handle_event(self, event: Message, now: datetime) -> list[Send]:
        name, caller, queue = event.get("Event"), self.req.caller_channel, self.req.target_queue
        if event.get("Channel") != caller:
            return []
        if name == "QueueCallerJoin" and event.get("Queue") == queue and not self.joined:
            self.joined = True
            self.deadline = now + timedelta(seconds=self.req.no_answer_seconds)
            self.note(f"waiting in {queue} at position {event.get('Position')}")
        elif name == "AgentConnect" and event.get("Queue") == queue:
            self.finish(TransferOutcome.ANSWERED, now, f"expert {event.get('MemberName')} answered in {queue}")
        elif name == "QueueCallerAbandon" and event.get("Queue") == queue:
            self.hold = event.get("HoldTime", "")
            self.abandoned = True
        elif name == "QueueCallerLeave" and event.get("Queue") == queue and self.joined and self.left_at is None \
                and self.abandoned:       # without QueueCallerAbandon first, a Leave is the answer: AgentConnect next
            self.left_at = now
            self.deadline = now + timedelta(seconds=SETUP_GRACE_SECONDS)    # what comes next says why
            self.note(f"left {queue} unanswered{' after ' + self.hold + ' s' if self.hold else ''}")
        elif name == "QueueCallerJoin" and self.left_at is not None:
            self.finish(TransferOutcome.NO_ANSWER, now, f"no expert in {queue}: the caller left it"
                                                        f"{' after ' + self.hold + ' s' if self.hold else ''} and "
                                                        f"went on to {event.get('Queue')} (the queue's overflow)")
        elif name == "Hangup":            # app_queue's Abandon + Leave come just before the Hangup that caused them
            waited = f" after {self.hold} s" if self.hold else ""
            where = f"in {queue}{waited}" if self.joined else f"before reaching {queue}"
            self.finish(TransferOutcome.NO_ANSWER if self.joined else TransferOutcome.FAILED, now,
                        f"caller hung up {where} before an expert answered")
        return []

    def deadline_passed(self, now: datetime) -> list[Send]:
        if self.left_at is not None:
            self.finish(TransferOutcome.NO_ANSWER, now, f"no expert: the caller left {self.req.target_queue}")
        elif self.joined:
            self.finish(TransferOutcome.NO_ANSWER, now, f"no expert within {self.req.no_answer_seconds:g} s; the "
                                                        f"caller keeps waiting in {self.req.target_queue}")
        else:
            self.finish(TransferOutcome.FAILED, now, f"caller never joined {self.req.target_queue}")
        return []


MACHINES: dict[TransferKind, type[TransferMachine]] = {
    TransferKind.ATTENDED: AttendedTransfer, TransferKind.THREE_WAY: ThreeWayTransfer,
    TransferKind.HANDOVER: Handover, TransferKind.ESCALATE: Escalation}


def machine_for(request: TransferRequest, now: datetime, *, attempt_id: str,
                dialplan: TransferDialplan = DEFAULT_DIALPLAN) -> TransferMachine:
    return MACHINES[request.kind](request, now, attempt_id=attempt_id, dialplan=dialplan)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


_attempts = itertools.count(1)


class TransferDriver:
    """Runs one machine over an AmiClient: sends its actions in order, feeds it replies, events and the clock."""

    def __init__(self, client: AmiClient, *, on_record: Callable[[TransferRecord], Any] | None = None,
                 dialplan: TransferDialplan = DEFAULT_DIALPLAN, clock: Callable[[], datetime] = utc_now) -> None:
        self.client, self.on_record, self.dialplan, self.clock = client, on_record, dialplan, clock
        self.last_machine: TransferMachine | None = None

    async def run(self, request: TransferRequest) -> TransferRecord:
        attempt_id = f"xfer-{next(_attempts)}-{request.uniqueid}"
        machine = machine_for(request, self.clock(), attempt_id=attempt_id, dialplan=self.dialplan)
        bound = log.bind(uniqueid=request.uniqueid, kind=request.kind.value, attempt=attempt_id)
        bound.info("transfer.started", from_line=request.from_line, trunk=request.target_trunk,
                   queue=request.target_queue, agent=request.agent)
        outbox: list[Send] = []
        wake = asyncio.Event()
        logins_at_start = self.client.logins
        wake_at = machine.wake_at

        def feed(sends: list[Send]) -> None:
            """Queue what the machine wants sent; wake the loop only when there is something to do (actions, the
            end, or an earlier tick): an event that changes nothing must not make it spin."""
            nonlocal wake_at
            outbox.extend(sends)
            if sends or machine.finished or machine.wake_at != wake_at:
                wake_at = machine.wake_at
                wake.set()

        def on_event(event: Message) -> None:
            feed(machine.on_event(event, self.clock()))

        def on_link_lost() -> None:        # events may have been missed: the attempt cannot be followed any more
            feed(machine.on_link_lost(self.clock()))

        unsubscribe = [self.client.on_event(on_event), self.client.on_disconnected(on_link_lost),
                       self.client.on_connected(on_link_lost)]
        try:
            if not self.client.connected:
                machine.on_link_lost(self.clock())
            else:
                feed(machine.start(self.clock()))
            while not machine.finished:
                while outbox and not machine.finished:
                    send = outbox.pop(0)
                    try:
                        reply: list[Message] | AmiError = await self.client.action(send.fields)
                    except AmiError as exc:
                        reply = exc
                    if self.client.logins != logins_at_start or not self.client.connected:
                        machine.on_link_lost(self.clock())
                        break
                    feed(machine.on_reply(send.tag, reply, self.clock()))
                if machine.finished:
                    break
                wake.clear()
                if outbox:
                    continue
                feed(machine.tick(self.clock()))
                if machine.finished or outbox:
                    continue
                wake_at = machine.wake_at
                timeout = None if wake_at is None else max(0.0, (wake_at - self.clock()).total_seconds())
                try:
                    await asyncio.wait_for(wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
            for send in outbox:          # only the clean-up the machine asked for on its way out (a lonely leg)
                if send.tag != "cleanup" or not self.client.connected:
                    continue
                try:
                    await self.client.action(send.fields)
                except AmiError as exc:
                    bound.warning("transfer.cleanup_failed", action=send.fields.get("Action"), error=str(exc))
        finally:
            for stop in unsubscribe:
                stop()
        record = machine.record()
        bound.info("transfer.finished", outcome=machine.outcome.value if machine.outcome else None,
                   reason=machine.reason, steps=machine.log)
        if self.on_record is not None:
            try:
                result = self.on_record(record)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                bound.exception("transfer.on_record_failed")
        self.last_machine = machine
        return record


def request_from_route(route: Any, table: Any, kind: TransferKind, *, uniqueid: str, caller_channel: str,
                       agent_channel: str | None = None, agent: str | None = None,
                       target: str | None = None, ivr_path: tuple[str, ...] = (),
                       linkedid: str | None = None) -> TransferRequest:
    """The TransferRequest for option `kind` of a decided Route (routing.model), trunk digits from the table.

    `target` picks one trunk/queue when the route offers several of that kind (e.g. emergency-110 vs -119).
    """
    options = [t for t in route.transfers if TransferKind(t.kind) is TransferKind(kind)
               and (target is None or target in (t.trunk, t.queue))]
    if not options:
        offered = ", ".join(f"{t.kind.value}:{t.trunk or t.queue}" for t in route.transfers) or "none"
        raise ValueError(f"line {route.line} offers no {TransferKind(kind).value} transfer"
                         f"{' to ' + target if target else ''} (offered: {offered})")
    option = options[0]
    trunk = table.trunks.get(option.trunk) if option.trunk else None
    if option.trunk and trunk is None:
        raise ValueError(f"trunk {option.trunk} is not in the routing table")
    seconds = option.no_answer_seconds
    queue = table.queues.get(option.queue) if option.queue else None
    if TransferKind(kind) is TransferKind.ESCALATE and queue is not None and queue.overflow is not None:
        # followed until the queue's own overflow has moved the caller on: the record then says where to
        seconds = max(seconds, queue.overflow.after_seconds + SETUP_GRACE_SECONDS)
    return TransferRequest(kind=TransferKind(kind), uniqueid=uniqueid, caller_channel=caller_channel,
                           from_line=route.line, agent_channel=agent_channel, agent=agent, linkedid=linkedid,
                           target_trunk=option.trunk, dial=trunk.dial if trunk else None, target_queue=option.queue,
                           no_answer_seconds=seconds, ivr_path=ivr_path)


def work_order_after(route: Any, kind: TransferKind, outcome: Any, target: str | None = None) -> Any | None:
    """The routing table's follow-up for a transfer nobody answered: when the option used says
    `on_no_answer: work_order`, the route's work-order option (who receives it); None otherwise."""
    if getattr(outcome, "value", outcome) != "no_answer":
        return None
    used = [t for t in route.transfers if TransferKind(t.kind) is TransferKind(kind)
            and (target is None or target in (t.trunk, t.queue))]
    if not used or used[0].on_no_answer != "work_order":
        return None
    return next((t for t in route.transfers if TransferKind(t.kind) is TransferKind.WORK_ORDER), None)


__all__ = ["TransferRequest", "work_order_after", "TransferDriver", "TransferMachine", "AttendedTransfer", "ThreeWayTransfer",
           "Handover", "Escalation", "Send", "machine_for", "request_from_route", "conference_room"]
