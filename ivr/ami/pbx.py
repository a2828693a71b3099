"""The emulator's telephony: the state and the transitions behind the AMI actions, plus helpers to script calls.

Events are produced through `self.emit` (the AMI server, ivr/ami/emulator.py, sends them to its sessions). The
event field sets follow the recorded Asterisk 22 transcripts; the little "dialplan" modelled here is the part
of the generated one the transfers use (ivr/ami/contract.py).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Awaitable

from ivr.ami.contract import DEFAULT_DIALPLAN, TransferDialplan
from ivr.ami.framing import Message
from ivr.ami.telephony import (DEVICE_INUSE, DEVICE_NOT_INUSE, DEVICE_RINGING, DEVICE_STATE_NAME, HANGUP_CAUSE_TEXT,
                               REASON_ANSWERED, REASON_HUNGUP, REASON_NO_ANSWER, Channel, Ids, Member, QueueCall,
                               QueueState)

QUEUE_LEFT_EVENT = "HotlineQueueLeft"   # the generated dialplan's UserEvent after Queue() returns (dialplan/extensions.py)


@dataclass
class TargetScript:
    """How a dialed target behaves: answers or not, after `delay` s; `consult` s of agent/target talk (Atxfer)."""

    answers: bool = True
    delay: float = 0.01
    consult: float = 0.0
    cause: int = 19
    reachable: bool = True       # False: no channel can be made (CHANUNAVAIL, cause 3), as for a seat down


class PbxModel:
    """Queues, members, waiting callers, channels and bridges; every change is announced with `emit`."""

    def __init__(self, *, dialplan: TransferDialplan = DEFAULT_DIALPLAN,
                 contexts: tuple[str, ...] = ("from-pstn", "queue-agents", "redirected", "default")) -> None:
        self.dialplan = dialplan
        self.contexts = set(contexts) | {dialplan.warm_context, dialplan.threeway_context, dialplan.escalate_context}
        self.started = time.time()
        self.ids = Ids(int(self.started))
        self.queues: dict[str, QueueState] = {}
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, set[str]] = {}
        self.global_vars: dict[str, str] = {}
        self.targets: dict[str, TargetScript] = {}
        self.default_target = TargetScript()
        self.dial_timeout = 30.0                   # the dialplan's Dial() timeout for redirected callers
        self._tasks: set[asyncio.Task] = set()
        self._ringing: dict[str, asyncio.Event] = {}   # target channel -> set when hung up while ringing
        self.deferred: dict[str, tuple[QueueCall, bool]] = {}  # caller -> queue call left by Redirect, channel fields?

    def emit(self, event: dict[str, str]) -> None:
        raise NotImplementedError

    def _later(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _member_event(self, name: str, q: QueueState, m: Member) -> None:
        self.emit({"Event": name, "Queue": q.name, **m.fields()})

    # -- Atxfer and Originate, after the AMI reply ----------------------------------------------------------
    async def _run_atxfer(self, transferer_name: str, exten: str, context: str) -> None:
        """Atxfer as Asterisk 22 does it (NOTES-2.md "Warm (attended) transfer"): DTMFEnd per key, Hold, a Local
        leg `Local/<digits>@<context>-XXXX;1/;2` whose ;1 shares a consultation bridge with the agent and whose
        ;2 dials the seat. Answered: after the script's `consult` s the agent hangs up -> BridgeMerge,
        AttendedTransfer, AgentComplete `transfer`, LocalOptimization. No answer / unreachable: the leg hangs up,
        the agent goes back to the original bridge (Unhold); no AttendedTransfer."""
        transferer = self.channels.get(transferer_name)
        if transferer is None or not exten.isdigit():
            return                                          # DTMF of non-digits goes nowhere: nothing happens
        peers = self._bridge_peers(transferer)
        if not peers:
            return
        transferee = self.channels[peers[0]]
        orig_bridge = transferer.bridge or ""
        for digit in "*2" + exten:
            self.emit({"Event": "DTMFEnd", "Privilege": "dtmf,all", **transferer.snapshot(), "Digit": digit,
                       "DurationMs": "0", "Direction": "Received"})
        self.emit({"Event": "Hold", **transferer.snapshot()})
        self.emit({"Event": "MusicOnHoldStart", **transferee.snapshot(), "Class": "default"})
        base = f"Local/{exten}@{context}-{self.ids.local_suffix()}"
        leg1 = self._new_channel(base + ";1", context, exten, state=0, linkedid=transferer.linkedid,
                                 variables=_inherited(transferer.variables))
        leg2 = self._new_channel(base + ";2", context, exten, state=4, linkedid=transferer.linkedid,
                                 variables=_inherited(transferer.variables))
        for leg in (leg1, leg2):
            for name in ("ATTENDEDTRANSFER", "TRANSFERERNAME"):
                leg.variables[name] = transferer.name
                self.emit({"Event": "VarSet", **leg.snapshot(), "Variable": name, "Value": transferer.name})
        consult = self.ids.bridge_id()
        self._bridge_channels(consult, [leg1.name])
        self._move(transferer.name, consult)
        script = self.targets.get(exten, self.default_target)
        if not script.reachable:            # no seat channel, no DialBegin: CHANUNAVAIL, the leg ends (cause 3)
            leg2.variables["DIALSTATUS"] = "CHANUNAVAIL"
            await asyncio.sleep(0.002)
            self._atxfer_failed(leg1, leg2, 3, transferer.name, transferee.name, orig_bridge, consult)
            return
        seat = self._new_channel(f"PJSIP/{exten}-{self.ids.local_suffix()}", "hotline-from-carrier", exten,
                                 state=0, linkedid=transferer.linkedid)
        self.emit({"Event": "DialBegin", **leg2.snapshot(), **seat.snapshot("Dest"),
                   "DialString": f"{exten}@{exten}"})
        seat.state = 5
        self.emit({"Event": "Newstate", **seat.snapshot()})
        self.emit({"Event": "DialState", **_dest_only(leg1), "DialStatus": "RINGING"})
        self.emit({"Event": "DialState", **leg2.snapshot(), **seat.snapshot("Dest"), "DialStatus": "RINGING"})
        answered = await self._ring(leg2.name, script, self.dial_timeout)
        if leg2.name not in self.channels or transferer.name not in self.channels:
            if seat.name in self.channels:                 # e.g. our AMI Hangup of leg;2 (the no-answer bound)
                self.emit({"Event": "DialEnd", **leg2.snapshot(), **seat.snapshot("Dest"), "DialStatus": "CANCEL"})
                self.hangup(seat.name, 0)
            self._atxfer_failed(leg1, leg2, 16, transferer.name, transferee.name, orig_bridge, consult)
            return
        if not answered:                                   # the dialplan's Dial(…, no_answer_seconds) gave up
            leg2.variables["DIALSTATUS"] = "NOANSWER"
            self.emit({"Event": "DialEnd", **leg2.snapshot(), **seat.snapshot("Dest"), "DialStatus": "NOANSWER"})
            self.hangup(seat.name, 0)
            self._atxfer_failed(leg1, leg2, 16, transferer.name, transferee.name, orig_bridge, consult)
            return
        seat.state = leg1.state = leg2.state = 6
        self.emit({"Event": "Newstate", **seat.snapshot()})
        self.emit({"Event": "DialEnd", **leg2.snapshot(), **seat.snapshot("Dest"), "DialStatus": "ANSWER"})
        seat_bridge = self.ids.bridge_id()                 # recorded order: its BridgeCreate before the core's DialEnd
        self.bridges[seat_bridge] = set()
        self.emit({"Event": "BridgeCreate", **_bridge_fields("Bridge", seat_bridge, 0)})
        self.emit({"Event": "DialEnd", **_dest_only(leg1), "DialStatus": "ANSWER"})
        self._bridge_channels(seat_bridge, [seat.name, leg2.name])
        await asyncio.sleep(script.consult)                # the agent talks to the seat, then hangs up
        if transferer.name not in self.channels or transferee.name not in self.channels:
            return
        self._complete_atxfer(transferer, transferee, leg1, leg2, seat, orig_bridge, consult)

    def _complete_atxfer(self, transferer: Channel, transferee: Channel, leg1: Channel, leg2: Channel,
                         seat: Channel, orig_bridge: str, consult: str) -> None:
        self._unbridge(transferer.name)
        self.emit({"Event": "BridgeMerge", **_bridge_fields("ToBridge", orig_bridge, 1),
                   **_bridge_fields("FromBridge", consult, 1)})
        self._move(leg1.name, orig_bridge)
        self.emit({"Event": "MusicOnHoldStop", **transferee.snapshot()})
        self.emit({"Event": "AttendedTransfer", "Result": "Success", **transferer.snapshot("OrigTransferer"),
                   **_bridge_fields("OrigBridge", orig_bridge, 2), **transferer.snapshot("SecondTransferer"),
                   **_bridge_fields("SecondBridge", consult, 0), **transferee.snapshot("Transferee"),
                   **leg1.snapshot("TransferTarget"), "IsExternal": "No", "DestType": "Bridge",
                   "DestBridgeUniqueid": orig_bridge})
        call = transferer.queue_call
        if call is not None and call.connected is not None:
            self._complete_queue_call(call, "transfer")
        self.bridges.pop(consult, None)
        self.emit({"Event": "BridgeDestroy", **_bridge_fields("Bridge", consult, 0)})
        self.channels.pop(transferer.name, None)
        self.emit({"Event": "Hangup", **transferer.snapshot(), "Cause": "16", "Cause-txt": HANGUP_CAUSE_TEXT[16]})
        self._later(self._local_optimization(leg1, leg2, seat, orig_bridge))

    async def _local_optimization(self, leg1: Channel, leg2: Channel, seat: Channel, bridge: str) -> None:
        """~0.5 s after the transfer the seat replaces the Local leg in the caller's bridge (shorter here)."""
        await asyncio.sleep(0.05)
        if leg1.name not in self.channels or seat.name not in self.channels:
            return
        self.emit({"Event": "LocalOptimizationBegin", **leg1.snapshot("LocalOne"), **leg2.snapshot("LocalTwo"),
                   **seat.snapshot("Source"), "DestUniqueId": leg2.uniqueid, "Id": "0"})
        self._unbridge(seat.name)
        self._move(leg1.name, None)
        self.bridges.setdefault(bridge, set()).add(seat.name)
        seat.bridge = bridge
        self.emit({"Event": "BridgeEnter", **_bridge_fields("Bridge", bridge, len(self.bridges[bridge])),
                   **seat.snapshot()})
        self.emit({"Event": "LocalOptimizationEnd", **leg1.snapshot("LocalOne"), **leg2.snapshot("LocalTwo"),
                   "Success": "Yes", "Id": "0"})
        self._gone(leg1.name, 16)
        leg_bridge = leg2.bridge
        self._unbridge(leg2.name)
        if leg_bridge is not None and not self.bridges.get(leg_bridge):
            self.bridges.pop(leg_bridge, None)
            self.emit({"Event": "BridgeDestroy", **_bridge_fields("Bridge", leg_bridge, 0)})
        self._gone(leg2.name, 16)

    def _move(self, name: str, bridge_id: str | None) -> None:
        """A channel changes bridge without the side effects of _leave_bridge (no hang-up of peers)."""
        self._unbridge(name)
        if bridge_id is not None:
            self._bridge_channels(bridge_id, [name])

    def _unbridge(self, name: str) -> None:
        chan = self.channels.get(name)
        if chan is None or chan.bridge is None:
            return
        members = self.bridges.get(chan.bridge, set())
        members.discard(name)
        self.emit({"Event": "BridgeLeave", **_bridge_fields("Bridge", chan.bridge, len(members)), **chan.snapshot()})
        chan.bridge = None

    def _gone(self, name: str, cause: int) -> None:
        """A transfer leg's channel hangs up (out of any bridge already): just its Hangup."""
        chan = self.channels.pop(name, None)
        if chan is None:
            return
        ringing = self._ringing.get(name)
        if ringing is not None:
            ringing.set()
        self.emit({"Event": "Hangup", **chan.snapshot(), "Cause": str(cause),
                   "Cause-txt": _CAUSE_TEXT.get(cause, "Unknown")})

    def _atxfer_failed(self, leg1: Channel, leg2: Channel, cause: int, transferer: str, transferee: str,
                       orig_bridge: str, consult: str) -> None:
        """A failed attended transfer as recorded (warm-noanswer, warm-unreachable): leg;2 hangs up, leg;1 leaves
        the consultation bridge, the agent goes back to the original bridge, MusicOnHoldStop, Unhold,
        BridgeDestroy, then leg;1's Hangup. No AttendedTransfer event."""
        self._gone(leg2.name, cause)
        self._unbridge(leg1.name)
        if transferer in self.channels:
            self._move(transferer, orig_bridge)
        if transferee in self.channels:
            self.emit({"Event": "MusicOnHoldStop", **self.channels[transferee].snapshot()})
        if transferer in self.channels:
            self.emit({"Event": "Unhold", **self.channels[transferer].snapshot()})
        if consult in self.bridges:
            self.bridges.pop(consult, None)
            self.emit({"Event": "BridgeDestroy", **_bridge_fields("Bridge", consult, 0)})
        self._gone(leg1.name, cause)

    async def _ring(self, target_name: str, script: TargetScript, timeout: float | None = None) -> bool:
        """Wait the script's delay (bounded by `timeout`); False if not answered or hung up meanwhile."""
        hung_up = self._ringing[target_name] = asyncio.Event()
        wait = script.delay if timeout is None else min(script.delay, timeout)
        try:
            await asyncio.wait_for(hung_up.wait(), wait)
            return False                                     # hung up (AMI Hangup) while ringing
        except asyncio.TimeoutError:
            return script.answers and (timeout is None or script.delay <= timeout)
        finally:
            self._ringing.pop(target_name, None)


    async def _originate_failed(self, a: Message, channel: str, reason: int) -> None:
        """Recorded (threeway-noanswer): Channel is the dial string as sent (no -XXXXXXXX;1 suffix), Uniqueid the
        ChannelId asked for (<null> without one)."""
        self.emit({"Event": "OriginateResponse", "Privilege": "call,all", **_aid(a), "Response": "Failure",
                   "Channel": a.get("Channel") or channel, **_originate_dest(a), "Reason": str(reason),
                   "Uniqueid": a.get("ChannelId") or "<null>", "CallerIDNum": "<unknown>",
                   "CallerIDName": "<unknown>"})

    async def _run_originate(self, a: Message, channel: str, tech: str, dial_exten: str, dial_context: str,
                             timeout: float, variables: dict[str, str]) -> bool:
        suffix = self.ids.local_suffix()
        name = f"{channel}-{suffix};1" if tech == "Local" else f"{channel}-{suffix}"
        caller_num, caller_name = _parse_callerid(a.get("CallerID", ""))
        chan = self._new_channel(name, dial_context or "default", dial_exten or "s", state=0, caller_num=caller_num,
                                 caller_name=caller_name, variables=dict(variables), uniqueid=a.get("ChannelId"))
        legs = self._threeway_leg(chan, dial_exten) if tech == "Local" and \
            dial_context == self.dialplan.threeway_context else None
        script = self.targets.get(dial_exten, self.default_target)
        answered = await self._ring(chan.name, script, timeout)
        if not answered:
            reason = REASON_NO_ANSWER if script.delay >= timeout or script.answers else REASON_HUNGUP
            await self._originate_failed(a, channel, reason)      # recorded: the response, then the leg's Hangup
            if chan.name in self.channels:
                self.hangup(chan.name, script.cause)
            if legs is not None:
                leg2, seat = legs
                self.emit({"Event": "DialEnd", **chan.snapshot("Dest"), "DialStatus": "CANCEL"})
                self._gone(seat.name, 0)
                self._gone(leg2.name, 16)
            return False
        chan.state = 6
        self.emit({"Event": "Newstate", **chan.snapshot()})
        self.emit({"Event": "OriginateResponse", "Privilege": "call,all", **_aid(a), "Response": "Success",
                   "Channel": name, **_originate_dest(a), "Reason": str(REASON_ANSWERED), "Uniqueid": chan.uniqueid,
                   "CallerIDNum": chan.caller_num, "CallerIDName": chan.caller_name})
        if legs is not None:
            leg2, seat = legs
            seat.state = leg2.state = 6
            self.emit({"Event": "DialEnd", **leg2.snapshot(), **seat.snapshot("Dest"), "DialStatus": "ANSWER"})
            self.emit({"Event": "DialEnd", **chan.snapshot("Dest"), "DialStatus": "ANSWER"})
            self._bridge_channels(self.ids.bridge_id(), [seat.name, leg2.name])
        if a.get("Application"):
            chan.application, chan.app_data = a["Application"], a.get("Data", "")
        else:
            self.redirect(chan.name, a["Context"], a["Exten"], int(a.get("Priority") or 1), emit_newexten=True)
        return True

    def _threeway_leg(self, leg1: Channel, exten: str) -> tuple[Channel, Channel]:
        """The three-way Originate's Local leg as recorded (ami-threeway-answered.txt): its ;2 (Uniqueid
        <ChannelId>;2), the core's DialBegin of ;1 (no Channel fields) and ;2's DialBegin to the trunk."""
        leg2 = self._new_channel(leg1.name[:-2] + ";2", leg1.context, exten, state=4, linkedid=leg1.linkedid,
                                 uniqueid=f"{leg1.uniqueid};2", variables=dict(leg1.variables))
        self.emit({"Event": "DialBegin", **leg1.snapshot("Dest"), "DialString": leg1.name[:-2].rsplit("-", 1)[0]})
        seat = self._new_channel(f"PJSIP/{exten}-{self.ids.local_suffix()}", "hotline-from-carrier", exten, state=0,
                                 linkedid=leg1.linkedid)
        self.emit({"Event": "DialBegin", **leg2.snapshot(), **seat.snapshot("Dest"), "DialString": exten})
        return leg2, seat

    # -- the model: scripting helpers for tests ---------------------------------------------------------------
    def script_target(self, exten: str, answers: bool = True, delay: float = 0.01, consult: float = 0.0,
                      reachable: bool = True) -> None:
        """How dialing `exten` (Atxfer digits, Originate Local/<exten>@..., hand-over Redirect) turns out."""
        self.targets[exten] = TargetScript(answers, delay, consult, reachable=reachable)

    def add_queue(self, name: str, strategy: str = "ringall", *, timeout: float | None = None,
                  leave_when_empty: bool = False, overflow_to: str | None = None) -> QueueState:
        """A queue as the generated config makes it: `timeout` = Queue()'s timeout argument (the table's
        overflow after_seconds), `leave_when_empty` = leavewhenempty=unavailable,invalid,unknown, and
        `overflow_to` = the queue the generated dialplan sends the caller on to once Queue() returns."""
        self.queues[name] = QueueState(name, strategy, timeout=timeout, leave_when_empty=leave_when_empty,
                                       overflow_to=overflow_to)
        return self.queues[name]

    def add_member(self, queue: str, interface: str, name: str, *, state_interface: str | None = None,
                   membership: str = "static", penalty: int = 0, paused: bool = False, reason: str = "") -> Member:
        member = Member(interface, name, state_interface or interface.removesuffix("/n"), membership, penalty,
                        login_time=int(self.started), paused=paused, paused_reason=reason if paused else "")
        self.queues[queue].members[interface] = member
        return member

    def new_call(self, caller_num: str, dialed: str, *, caller_name: str | None = None,
                 channel: str | None = None, context: str = "from-pstn") -> Channel:
        name = channel or f"PJSIP/caller-{self.ids.local_suffix()}"
        return self._new_channel(name, context, dialed, state=6, caller_num=caller_num,
                                 caller_name=caller_name or caller_num)

    def caller_joins_queue(self, caller: str, queue: str) -> None:
        chan, q = self.channels[caller], self.queues[queue]
        q.callers.append(caller)
        joined = q.joined[caller] = time.time()
        q.original_position[caller] = len(q.callers)
        chan.queue, chan.application, chan.app_data = queue, "Queue", queue
        if chan.variables.pop("ABANDONED", None) is not None:    # recorded: cleared as the next queue is joined
            self.emit({"Event": "VarSet", **chan.snapshot(), "Variable": "ABANDONED", "Value": ""})
        self.emit({"Event": "QueueCallerJoin", **chan.snapshot(), "Queue": queue, "Position": str(len(q.callers)),
                   "Count": str(len(q.callers))})
        if q.leave_when_empty and not q.can_answer():
            self.queue_gives_up(caller, "LEAVEEMPTY")      # recorded: Join, Abandon, Leave within 1 ms
        elif q.timeout is not None and _loop_running():
            self._later(self._queue_timeout(caller, queue, joined))

    async def _queue_timeout(self, caller: str, queue: str, joined: float) -> None:
        await asyncio.sleep(max(0.0, joined + (self.queues[queue].timeout or 0) - time.time()))
        chan = self.channels.get(caller)
        if chan is not None and chan.queue == queue and self.queues[queue].joined.get(caller) == joined:
            self.queue_gives_up(caller, "TIMEOUT")

    def queue_times_out(self, caller: str) -> None:
        """Queue()'s timeout now (tests that do not wait for `timeout`)."""
        self.queue_gives_up(caller, "TIMEOUT")

    def queue_gives_up(self, caller: str, status: str) -> None:
        """Queue() returns with QUEUESTATUS=status (TIMEOUT, LEAVEEMPTY): app_queue reports QueueCallerAbandon
        (recorded), then the generated dialplan says so (UserEvent HotlineQueueLeft) and joins the next queue."""
        chan = self.channels[caller]
        q = self.queues[chan.queue or ""]
        call = chan.queue_call
        if status == "TIMEOUT" and call is not None and call.connected is None and call.agent in self.channels:
            self._ring_not_answered(chan, self.channels[call.agent or ""], free_later=True)   # recorded order
        self._leave_queue(caller, abandon=True)
        chan.variables["QUEUESTATUS"] = status
        self.emit({"Event": "VarSet", **chan.snapshot(), "Variable": "QUEUESTATUS", "Value": status})
        chan.application, chan.app_data = "UserEvent", QUEUE_LEFT_EVENT
        self.emit({"Event": "UserEvent", **chan.snapshot(), "UserEvent": QUEUE_LEFT_EVENT, "Queue": q.name,
                   "Status": status, "Next": q.overflow_to or ""})
        if q.overflow_to in self.queues:
            self.caller_joins_queue(caller, q.overflow_to)

    def ring_agent(self, caller: str, interface: str, *, ringing: bool = True) -> Channel:
        """app_queue rings a member: AgentCalled, DialBegin, the member's device state (a Local member is
        INUSE, 2; a PJSIP one RINGING, 6), DialState RINGING (recorded order). `ringing=False`: a member that
        answers at once (Local Answer() first) signals no ringing, so no DialState."""
        chan = self.channels[caller]
        q = self.queues[chan.queue or ""]
        member = q.members[interface]
        tech, _, rest = interface.partition("/")
        if tech == "Local":
            exten, _, agent_context = rest.partition("@")
            agent_context = agent_context.split("/")[0] or "default"
            agent = self._new_channel(f"{member.state_interface}-{self.ids.local_suffix()};1", agent_context,
                                      exten, state=0, caller_num=chan.caller_num, caller_name=chan.caller_name,
                                      linkedid=chan.linkedid)
            agent.exten = "s"                               # recorded: AgentCalled has DestExten s
        else:
            agent = self._new_channel(f"{member.state_interface}-{self.ids.local_suffix()}", "default", "s",
                                      state=0, caller_num=chan.caller_num, caller_name=chan.caller_name,
                                      linkedid=chan.linkedid)
        chan.queue_call = agent.queue_call = QueueCall(q.name, caller, agent.name, interface, q.joined[caller],
                                                       rang=time.time())
        self.emit({"Event": "AgentCalled", **chan.snapshot(), **agent.snapshot("Dest"), "Queue": q.name,
                   "Interface": interface, "MemberName": member.name})
        self.emit({"Event": "DialBegin", **chan.snapshot(), **agent.snapshot("Dest"), "DialString": rest})
        if tech == "Local":
            self._member_device(q, member, DEVICE_INUSE)
        else:
            agent.state = 5
            self.emit({"Event": "Newstate", **agent.snapshot()})
            self._member_device(q, member, DEVICE_RINGING)
        if ringing:
            self.emit({"Event": "DialState", **chan.snapshot(), **agent.snapshot("Dest"), "DialStatus": "RINGING"})
        return agent

    def agent_answers(self, caller: str, agent: str) -> None:
        chan, agent_chan = self.channels[caller], self.channels[agent]
        call = chan.queue_call
        assert call is not None and call.agent == agent, "ring_agent() first"
        q = self.queues[call.queue]
        member = q.members[call.interface]
        now = time.time()
        position = q.callers.index(caller) + 1
        agent_chan.state = 6
        self.emit({"Event": "DialEnd", **chan.snapshot(), **agent_chan.snapshot("Dest"), "DialStatus": "ANSWER"})
        self._leave_queue(caller, abandon=False, position=position)
        call.connected = now
        member.in_call, member.calls_taken, member.last_call = True, member.calls_taken + 1, int(now)
        self.emit({"Event": "AgentConnect", **chan.snapshot(), **agent_chan.snapshot("Dest"), "Queue": q.name,
                   "Interface": call.interface, "MemberName": member.name,
                   "HoldTime": str(int(now - call.joined)),
                   "RingTime": str(int(now - (call.rang or now)))})     # recorded: seconds here
        self._member_device(q, member, DEVICE_INUSE)       # PJSIP 6 -> 2; a Local member stays 2: no event
        self._bridge_channels(self.ids.bridge_id(), [caller, agent])

    def agent_no_answer(self, caller: str, agent: str) -> None:
        """The member's ring times out: AgentRingNoAnswer (RingTime in ms), DialEnd NOANSWER then CANCEL, the
        member leg hung up (cause 0), the member free again (recorded order)."""
        chan = self.channels[caller]
        assert chan.queue_call is not None
        self._ring_not_answered(chan, self.channels[agent], free_later=False)

    def _ring_not_answered(self, chan: Channel, agent_chan: Channel, *, free_later: bool) -> None:
        """The member's ring ends unanswered (its ring timeout, or Queue()'s timeout while it rings)."""
        call = chan.queue_call
        assert call is not None
        q = self.queues[call.queue]
        member = q.members[call.interface]
        ring_ms = int((time.time() - (call.rang or time.time())) * 1000)
        self.emit({"Event": "AgentRingNoAnswer", **chan.snapshot(), **agent_chan.snapshot("Dest"),
                   "Queue": q.name, "Interface": call.interface, "MemberName": member.name,
                   "RingTime": str(ring_ms)})
        for status in ("NOANSWER", "CANCEL"):
            self.emit({"Event": "DialEnd", **chan.snapshot(), **agent_chan.snapshot("Dest"), "DialStatus": status})
        chan.queue_call = agent_chan.queue_call = None
        self.hangup(agent_chan.name, 0)
        self._free_member(q, member, later=free_later)

    def _free_member(self, q: QueueState, member: Member, *, later: bool) -> None:
        """QueueMemberStatus 1 once the member's leg is gone: right away, or (the device-state thread) after the
        events of the caller that follow (recorded: after the abandon, after the next queue's join)."""
        if later and _loop_running():
            async def freed() -> None:
                self._member_device(q, member, DEVICE_NOT_INUSE)
            self._later(freed())
        else:
            self._member_device(q, member, DEVICE_NOT_INUSE)

    def _member_device(self, q: QueueState, member: Member, status: int) -> None:
        """QueueMemberStatus is a device-state event: only a change of Status sends it (recorded)."""
        if member.status == status:
            return
        member.status = status
        self.emit({"Event": "DeviceStateChange", "Device": member.state_interface,
                   "State": DEVICE_STATE_NAME.get(status, "UNKNOWN")})
        self._member_event("QueueMemberStatus", q, member)
        self._queue_avail(q)

    def _queue_avail(self, q: QueueState) -> None:
        """DeviceStateChange Queue:<queue>_avail: NOT_INUSE while a member could take a call, else INUSE."""
        state = "NOT_INUSE" if q.available() else "INUSE"
        if q.avail_state != state:
            q.avail_state = state
            self.emit({"Event": "DeviceStateChange", "Device": f"Queue:{q.name}_avail", "State": state})

    def _cancel_ring(self, caller: Channel) -> None:
        """The caller leaves the queue while a member rings: two DialEnd CANCEL, the member leg hung up with cause
        0 before QueueCallerAbandon; the member's QueueMemberStatus 1 comes asynchronously, after (recorded)."""
        call = caller.queue_call
        if call is None or call.connected is not None or call.agent not in self.channels:
            return
        agent = self.channels[call.agent or ""]
        for _ in range(2):
            self.emit({"Event": "DialEnd", **caller.snapshot(), **agent.snapshot("Dest"), "DialStatus": "CANCEL"})
        caller.queue_call = agent.queue_call = None
        self.hangup(agent.name, 0)
        q, member = self.queues[call.queue], self.queues[call.queue].members.get(call.interface)
        if member is not None:
            self._free_member(q, member, later=True)

    def answered_call(self, queue: str, interface: str, caller_num: str = "4951234567",
                      dialed: str = "12345") -> tuple[Channel, Channel]:
        """A caller that went through the queue and is now talking to the agent at `interface`."""
        caller = self.new_call(caller_num, dialed)
        self.caller_joins_queue(caller.name, queue)
        agent = self.ring_agent(caller.name, interface)
        self.agent_answers(caller.name, agent.name)
        return caller, agent

    def caller_abandons(self, caller: str, cause: int = 16) -> None:
        """The caller hangs up (its phone, the Local ;1 half, goes on-hook): HangupRequest first, then while waiting
        (see `_cancel_ring`) Abandon, Leave, Hangup; while talking, the end of the queue call (Reason caller)."""
        self.emit({"Event": "HangupRequest", **self.channels[caller].snapshot(), "Cause": str(cause)})
        self.hangup(caller, cause)

    def set_var(self, channel: str, name: str, value: str) -> None:
        self.channels[channel].variables[name] = value

    # -- the model: transitions -------------------------------------------------------------------------------
    def _new_channel(self, name: str, context: str, exten: str, *, state: int, caller_num: str = "<unknown>",
                     caller_name: str = "<unknown>", linkedid: str | None = None,
                     variables: dict[str, str] | None = None, uniqueid: str | None = None) -> Channel:
        uniqueid = uniqueid or self.ids.uniqueid()          # Originate's ChannelId names it in advance
        chan = Channel(name, uniqueid, linkedid or uniqueid, context, exten, state=state, caller_num=caller_num,
                       caller_name=caller_name, created=time.time(), variables=variables or {})
        self.channels[name] = chan
        self.emit({"Event": "Newchannel", **chan.snapshot()})
        return chan

    def hangup(self, name: str, cause: int = 16) -> None:
        chan = self.channels.get(name)
        if chan is None:
            return
        ringing = self._ringing.get(name)
        if ringing is not None:
            ringing.set()
        self._leave_queue(name, abandon=True)
        self._leave_bridge(name, reason="caller" if chan.queue_call and chan.queue_call.caller == name else "agent")
        self._complete_deferred(name)
        self.channels.pop(name, None)
        self.emit({"Event": "Hangup", **chan.snapshot(), "Cause": str(cause),
                   "Cause-txt": HANGUP_CAUSE_TEXT.get(cause, "Unknown")})

    def redirect(self, name: str, context: str, exten: str, priority: int = 1, *, emit_newexten: bool = True,
                 keep: frozenset[str] = frozenset()) -> None:
        """Move a channel to context,exten,priority and run the little dialplan the transfers rely on."""
        chan = self.channels[name]
        self._leave_queue(name, abandon=True)
        # out of the queue bridge: Asterisk hangs the agent up at once (unless moved too) and sends the queue
        # call's AgentComplete only at the caller's final hang-up, Reason caller (see _complete_deferred)
        self._leave_bridge(name, reason="transfer", keep=keep, defer=True,
                           requeued=context == self.dialplan.escalate_context)
        chan.context, chan.exten, chan.priority = context, exten, priority
        chan.application, chan.app_data = "", ""
        if emit_newexten:
            self.emit({"Event": "Newexten", **chan.snapshot(), "Extension": exten, "Application": "NoOp",
                       "AppData": ""})
        dp = self.dialplan
        if context == dp.threeway_context and exten in (dp.caller_exten, dp.agent_exten, dp.target_exten, "conf"):
            room = dp.room_prefix + (_var(chan, dp.conf_var) or "")
            chan.application, chan.app_data = "ConfBridge", room
            self._bridge_channels(f"conf-{room}", [name])
        elif context == dp.escalate_context and exten in self.queues:
            self.caller_joins_queue(name, exten)
        elif context == dp.warm_context and exten.isdigit():
            self._later(self._dial_from_dialplan(name, exten))

    async def _dial_from_dialplan(self, name: str, exten: str) -> None:
        """Dial of the trunk for a redirected caller (emergency hand-over), as recorded in ami-handover.txt: the
        caller, now in hotline-emergency for emergency digits, dials PJSIP/<trunk>. Unreachable trunk (script
        reachable=False): no channel, no DialBegin, DIALSTATUS=CHANUNAVAIL, then the generated dialplan's end
        for it (its attempts, the announcement, the hang-up). No answer: one attempt here, then the hang-up."""
        chan = self.channels.get(name)
        if chan is None:
            return
        emergency = exten in EMERGENCY_DIGITS
        if emergency:
            chan.context = self.dialplan.emergency_context
        chan.application, chan.app_data = "Dial", exten
        script = self.targets.get(exten, self.default_target)
        if not script.reachable:
            chan.variables["DIALSTATUS"] = "CHANUNAVAIL"
            await asyncio.sleep(0.01)                      # the attempts and the (short) announcement
            self.hangup(name, 16)
            return
        trunk = f"PJSIP/emergency-{exten}" if emergency else f"Local/{exten}@{chan.context}"
        target = self._new_channel(f"{trunk}-{self.ids.local_suffix()}" + ("" if emergency else ";1"),
                                   chan.context, exten, state=0, linkedid=chan.linkedid)
        self.emit({"Event": "DialBegin", **chan.snapshot(), **target.snapshot("Dest"), "DialString": exten})
        timeout = self.dial_timeout
        answered = await self._ring(target.name, script, timeout)
        if name not in self.channels:
            self.hangup(target.name, 16)
            return
        if answered:
            target.state = 6
            chan.variables["DIALSTATUS"] = "ANSWER"
            self.emit({"Event": "DialEnd", **chan.snapshot(), **target.snapshot("Dest"), "DialStatus": "ANSWER"})
            self._bridge_channels(self.ids.bridge_id(), [name, target.name])
            return
        chan.variables["DIALSTATUS"] = "NOANSWER"
        self.emit({"Event": "DialEnd", **chan.snapshot(), **target.snapshot("Dest"), "DialStatus": "NOANSWER"})
        self.hangup(target.name, script.cause)
        self.hangup(name, 16)

    def _leave_queue(self, name: str, *, abandon: bool, position: int | None = None) -> None:
        chan = self.channels.get(name)
        if chan is None or chan.queue is None:
            return
        q = self.queues[chan.queue]
        if name in q.callers:
            position = position or q.callers.index(name) + 1
            if abandon:
                self._cancel_ring(chan)
                chan.variables["ABANDONED"] = "TRUE"          # recorded: set on timeout and leave-empty too
                self.emit({"Event": "VarSet", **chan.snapshot(), "Variable": "ABANDONED", "Value": "TRUE"})
            q.callers.remove(name)
            joined = q.joined.pop(name, time.time())
            if abandon:
                q.abandoned += 1
                self.emit({"Event": "QueueCallerAbandon", **chan.snapshot(), "Queue": q.name,
                           "Position": str(position), "OriginalPosition": str(q.original_position.get(name, position)),
                           "HoldTime": str(int(time.time() - joined))})
            self.emit({"Event": "QueueCallerLeave", **chan.snapshot(), "Queue": q.name, "Position": str(position),
                       "Count": str(len(q.callers))})
        chan.queue = None

    def _bridge_peers(self, chan: Channel) -> list[str]:
        if chan.bridge is None:
            return []
        return sorted(self.bridges.get(chan.bridge, set()) - {chan.name})

    def _bridge_channels(self, bridge_id: str, names: list[str]) -> None:
        if bridge_id not in self.bridges:
            self.bridges[bridge_id] = set()
            self.emit({"Event": "BridgeCreate", **_bridge_fields("Bridge", bridge_id, 0)})
        members = self.bridges[bridge_id]
        for name in names:
            members.add(name)
            chan = self.channels[name]
            chan.bridge = bridge_id
            self.emit({"Event": "BridgeEnter", **_bridge_fields("Bridge", bridge_id, len(members)),
                       **chan.snapshot()})

    def _leave_bridge(self, name: str, *, reason: str, keep: frozenset[str] = frozenset(), defer: bool = False,
                      requeued: bool = False) -> None:
        """A channel leaves its bridge; a queue call ends (AgentComplete, or deferred to the caller's hang-up when
        `defer`: a Redirect out of the queue bridge); a two-party bridge's peer hangs up."""
        chan = self.channels.get(name)
        if chan is None or chan.bridge is None:
            return
        bridge_id = chan.bridge
        members = self.bridges.get(bridge_id, set())
        members.discard(name)
        chan.bridge = None
        self.emit({"Event": "BridgeLeave", **_bridge_fields("Bridge", bridge_id, len(members)), **chan.snapshot()})
        call = chan.queue_call
        if call is not None and call.connected is not None and defer:
            for party in (call.caller, call.agent or ""):
                if party in self.channels:
                    self.channels[party].queue_call = None
            self.deferred[call.caller] = (call, not requeued)
        elif call is not None and call.connected is not None:
            self._complete_queue_call(call, reason)
        if bridge_id.startswith("conf-"):
            if not members:
                self.bridges.pop(bridge_id, None)
                self.emit({"Event": "BridgeDestroy", **_bridge_fields("Bridge", bridge_id, 0)})
            return
        self.bridges.pop(bridge_id, None)
        for peer in list(members):
            peer_chan = self.channels.get(peer)
            if peer_chan is not None:
                peer_chan.bridge = None
                if peer in keep:
                    continue
                if defer and call is not None and peer == call.agent:
                    # redirected away from its agent: BridgeLeave, BridgeDestroy, the agent hung up, member free
                    self.emit({"Event": "BridgeLeave", **_bridge_fields("Bridge", bridge_id, 0),
                               **peer_chan.snapshot()})
                    self.emit({"Event": "BridgeDestroy", **_bridge_fields("Bridge", bridge_id, 0)})
                    self.hangup(peer, 16)
                    self._member_free(call)
                    return
                if reason != "transfer" or (call is not None and peer == call.agent):
                    self.hangup(peer, 16)
        self.emit({"Event": "BridgeDestroy", **_bridge_fields("Bridge", bridge_id, 0)})

    def _member_free(self, call: QueueCall) -> None:
        member = self.queues[call.queue].members.get(call.interface)
        if member is not None and (member.in_call or member.status != DEVICE_NOT_INUSE):
            member.in_call, member.status = False, DEVICE_NOT_INUSE
            self._member_event("QueueMemberStatus", self.queues[call.queue], member)

    def _complete_deferred(self, caller: str) -> None:
        """The AgentComplete of a queue call left by Redirect, at the caller's final hang-up: Reason caller,
        TalkTime until now; no channel fields at all after an escalation into another queue, the caller's (and
        the agent's as Dest* if it is still up, as in a conference) otherwise (recorded in ami-escalate.txt,
        ami-handover.txt, ami-threeway-answered.txt)."""
        pending = self.deferred.pop(caller, None)
        chan = self.channels.get(caller)
        if pending is None or chan is None:
            return
        call, with_channel = pending
        q = self.queues[call.queue]
        member = q.members.get(call.interface)
        now = time.time()
        q.completed += 1
        agent = self.channels.get(call.agent or "")       # still up after a dual Redirect (three-way): Dest* too
        fields = {**chan.snapshot(), **(agent.snapshot("Dest") if agent else {})} if with_channel else {}
        self.emit({"Event": "AgentComplete", **fields, "Queue": q.name,
                   "Interface": call.interface, "MemberName": member.name if member else call.interface,
                   "HoldTime": str(int((call.connected or now) - call.joined)),
                   "TalkTime": str(int(now - (call.connected or now))), "Reason": "caller"})
        self._member_free(call)

    def _complete_queue_call(self, call: QueueCall, reason: str) -> None:
        caller, agent = self.channels.get(call.caller), self.channels.get(call.agent or "")
        for chan in (caller, agent):
            if chan is not None:
                chan.queue_call = None
        q = self.queues[call.queue]
        member = q.members.get(call.interface)
        now = time.time()
        q.completed += 1
        if caller is not None and agent is not None and member is not None:
            self.emit({"Event": "AgentComplete", **caller.snapshot(), **agent.snapshot("Dest"), "Queue": q.name,
                       "Interface": call.interface, "MemberName": member.name,
                       "HoldTime": str(int((call.connected or now) - call.joined)),
                       "TalkTime": str(int(now - (call.connected or now))), "Reason": reason})
        if member is not None:
            member.in_call = False
            self._member_device(q, member, DEVICE_NOT_INUSE)      # only a device-state change sends the event


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def _inherited(variables: dict[str, str]) -> dict[str, str]:
    """Variables a new channel inherits: '__X' (kept as such) and '_X' (as X), as Asterisk does."""
    out = {}
    for key, value in variables.items():
        if key.startswith("__"):
            out[key] = value
            out[key[2:]] = value
        elif key.startswith("_"):
            out[key[1:]] = value
    return out


_CAUSE_TEXT = {**HANGUP_CAUSE_TEXT, 3: "No route to destination"}
EMERGENCY_DIGITS = ("110", "119", "120", "122")      # hotline-warm-transfer sends these on to hotline-emergency


def _dest_only(chan: Channel) -> dict[str, str]:
    """DialState/DialEnd of the transfer core dialling a Local leg: no Channel fields, only Dest*."""
    return chan.snapshot("Dest")


def _var(chan: Channel, name: str) -> str | None:
    for key in (name, f"_{name}", f"__{name}"):
        if key in chan.variables:
            return chan.variables[key]
    return None


def _aid(a: Message) -> dict[str, str]:
    return {"ActionID": a["ActionID"]} if "ActionID" in a else {}


def _originate_dest(a: Message) -> dict[str, str]:
    if a.get("Application"):
        return {"Application": a["Application"], "Data": a.get("Data", "")}
    return {"Context": a.get("Context", ""), "Exten": a.get("Exten", "")}


def _parse_callerid(text: str) -> tuple[str, str]:
    if "<" in text and text.endswith(">"):
        name, _, num = text[:-1].partition("<")
        return num.strip() or "<unknown>", name.strip().strip('"') or "<unknown>"
    return (text or "<unknown>"), "<unknown>"


def _bridge_fields(prefix: str, bridge_id: str, count: int) -> dict[str, str]:
    return {f"{prefix}Uniqueid": bridge_id, f"{prefix}Type": "basic", f"{prefix}Technology": "simple_bridge",
            f"{prefix}Creator": "<unknown>", f"{prefix}Name": "<unknown>", f"{prefix}NumChannels": str(count),
            f"{prefix}VideoSourceMode": "none"}
