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
from ivr.ami.telephony import (DEVICE_INUSE, DEVICE_NOT_INUSE, DEVICE_RINGING, HANGUP_CAUSE_TEXT, REASON_ANSWERED,
                               REASON_HUNGUP, REASON_NO_ANSWER, Channel, Ids, Member, QueueCall,
                               QueueState)


@dataclass
class TargetScript:
    """How a dialed target behaves: answers or not, after `delay` s; `consult` s of agent/target talk (Atxfer)."""

    answers: bool = True
    delay: float = 0.01
    consult: float = 0.0
    cause: int = 19


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
        """Atxfer only queues DTMF: with digits the transferer dials the target while the caller is on hold;
        answered -> the target is bridged to the caller (AttendedTransfer); no answer -> back to the agent."""
        transferer = self.channels.get(transferer_name)
        if transferer is None or not exten.isdigit():
            return                                          # DTMF of non-digits goes nowhere: nothing happens
        peers = self._bridge_peers(transferer)
        if not peers:
            return
        transferee = self.channels[peers[0]]
        orig_bridge = transferer.bridge
        self.emit({"Event": "MusicOnHoldStart", **transferee.snapshot(), "Class": "default"})
        target = self._new_channel(f"Local/{exten}@{context}-{self.ids.local_suffix()};1", context, exten,
                                   state=0, linkedid=transferer.linkedid,
                                   variables=_inherited(transferer.variables))
        self.emit({"Event": "DialBegin", **transferer.snapshot(), **target.snapshot("Dest"),
                   "DialString": f"{exten}@{context}"})
        script = self.targets.get(exten, self.default_target)
        answered = await self._ring(target.name, script)
        if not answered or transferer.name not in self.channels or transferee.name not in self.channels:
            self.emit({"Event": "DialEnd", **transferer.snapshot(), **target.snapshot("Dest"),
                       "DialStatus": "NOANSWER"})
            if target.name in self.channels:
                self.hangup(target.name, script.cause)
            if transferee.name in self.channels:
                self.emit({"Event": "MusicOnHoldStop", **transferee.snapshot()})
            return
        target.state = 6
        self.emit({"Event": "Newstate", **target.snapshot()})
        self.emit({"Event": "DialEnd", **transferer.snapshot(), **target.snapshot("Dest"), "DialStatus": "ANSWER"})
        if script.consult:
            await asyncio.sleep(script.consult)
        if transferer.name not in self.channels or transferee.name not in self.channels:
            return
        self.emit({"Event": "AttendedTransfer", "Result": "Success", **transferer.snapshot("OrigTransferer"),
                   **_bridge_fields("OrigBridge", orig_bridge or "", 2),
                   **transferer.snapshot("SecondTransferer"), **_bridge_fields("SecondBridge", "", 0),
                   **transferee.snapshot("Transferee"), **target.snapshot("TransferTarget"),
                   "IsExternal": "No", "DestType": "Bridge", "DestBridgeUniqueid": orig_bridge or ""})
        self.emit({"Event": "MusicOnHoldStop", **transferee.snapshot()})
        self._leave_bridge(transferer.name, reason="transfer")
        self.hangup(transferer.name, 16)
        self._bridge_channels(self.ids.bridge_id(), [transferee.name, target.name])

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
        self.emit({"Event": "OriginateResponse", "Privilege": "call,all", **_aid(a), "Response": "Failure",
                   "Channel": channel, **_originate_dest(a), "Reason": str(reason), "Uniqueid": "<null>",
                   "CallerIDNum": "<unknown>", "CallerIDName": "<unknown>"})

    async def _run_originate(self, a: Message, channel: str, tech: str, dial_exten: str, dial_context: str,
                             timeout: float, variables: dict[str, str]) -> bool:
        suffix = self.ids.local_suffix()
        name = f"{channel}-{suffix};1" if tech == "Local" else f"{channel}-{suffix}"
        caller_num, caller_name = _parse_callerid(a.get("CallerID", ""))
        chan = self._new_channel(name, dial_context or "default", dial_exten or "s", state=0, caller_num=caller_num,
                                 caller_name=caller_name, variables=dict(variables), uniqueid=a.get("ChannelId"))
        script = self.targets.get(dial_exten, self.default_target)
        answered = await self._ring(chan.name, script, timeout)
        if not answered:
            reason = REASON_NO_ANSWER if script.delay >= timeout or script.answers else REASON_HUNGUP
            if chan.name in self.channels:
                self.hangup(chan.name, script.cause)
            await self._originate_failed(a, name, reason)
            return False
        chan.state = 6
        self.emit({"Event": "Newstate", **chan.snapshot()})
        self.emit({"Event": "OriginateResponse", "Privilege": "call,all", **_aid(a), "Response": "Success",
                   "Channel": name, **_originate_dest(a), "Reason": str(REASON_ANSWERED), "Uniqueid": chan.uniqueid,
                   "CallerIDNum": chan.caller_num, "CallerIDName": chan.caller_name})
        if a.get("Application"):
            chan.application, chan.app_data = a["Application"], a.get("Data", "")
        else:
            self.redirect(chan.name, a["Context"], a["Exten"], int(a.get("Priority") or 1), emit_newexten=True)
        return True

    # -- the model: scripting helpers for tests ---------------------------------------------------------------
    def script_target(self, exten: str, answers: bool = True, delay: float = 0.01, consult: float = 0.0) -> None:
        """How dialing `exten` (Atxfer digits, Originate Local/<exten>@..., hand-over Redirect) turns out."""
        self.targets[exten] = TargetScript(answers, delay, consult)

    def add_queue(self, name: str, strategy: str = "ringall") -> QueueState:
        self.queues[name] = QueueState(name, strategy)
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
        q.joined[caller] = time.time()
        q.original_position[caller] = len(q.callers)
        chan.queue, chan.application, chan.app_data = queue, "Queue", queue
        self.emit({"Event": "QueueCallerJoin", **chan.snapshot(), "Queue": queue, "Position": str(len(q.callers)),
                   "Count": str(len(q.callers))})

    def ring_agent(self, caller: str, interface: str) -> Channel:
        chan = self.channels[caller]
        q = self.queues[chan.queue or ""]
        member = q.members[interface]
        agent_context = interface.split("@")[1].split("/")[0] if "@" in interface else "default"
        agent = self._new_channel(f"{member.state_interface}-{self.ids.local_suffix()};1", agent_context,
                                  chan.exten, state=0, caller_num=chan.caller_num, caller_name=chan.caller_name,
                                  linkedid=chan.linkedid)
        chan.queue_call = agent.queue_call = QueueCall(q.name, caller, agent.name, interface, q.joined[caller])
        self.emit({"Event": "AgentCalled", **chan.snapshot(), **agent.snapshot("Dest"), "Queue": q.name,
                   "Interface": interface, "MemberName": member.name})
        member.status = DEVICE_RINGING
        self._member_event("QueueMemberStatus", q, member)
        return agent

    def agent_answers(self, caller: str, agent: str) -> None:
        chan, agent_chan = self.channels[caller], self.channels[agent]
        call = chan.queue_call
        assert call is not None and call.agent == agent, "ring_agent() first"
        q = self.queues[call.queue]
        member = q.members[call.interface]
        now = time.time()
        position = q.callers.index(caller) + 1
        self._leave_queue(caller, abandon=False, position=position)
        agent_chan.state = 6
        call.connected = now
        member.in_call, member.status, member.calls_taken, member.last_call = True, DEVICE_INUSE, \
            member.calls_taken + 1, int(now)
        self.emit({"Event": "AgentConnect", **chan.snapshot(), **agent_chan.snapshot("Dest"), "Queue": q.name,
                   "Interface": call.interface, "MemberName": member.name,
                   "HoldTime": str(int(now - call.joined)), "RingTime": "1"})
        self._member_event("QueueMemberStatus", q, member)
        self._bridge_channels(self.ids.bridge_id(), [caller, agent])

    def agent_no_answer(self, caller: str, agent: str) -> None:
        chan = self.channels[caller]
        call = chan.queue_call
        assert call is not None
        q = self.queues[call.queue]
        member = q.members[call.interface]
        self.emit({"Event": "AgentRingNoAnswer", **chan.snapshot(), **self.channels[agent].snapshot("Dest"),
                   "Queue": q.name, "Interface": call.interface, "MemberName": member.name, "RingTime": "15"})
        chan.queue_call = None
        self.hangup(agent, 19)
        member.status = DEVICE_NOT_INUSE
        self._member_event("QueueMemberStatus", q, member)

    def answered_call(self, queue: str, interface: str, caller_num: str = "4951234567",
                      dialed: str = "12345") -> tuple[Channel, Channel]:
        """A caller that went through the queue and is now talking to the agent at `interface`."""
        caller = self.new_call(caller_num, dialed)
        self.caller_joins_queue(caller.name, queue)
        agent = self.ring_agent(caller.name, interface)
        self.agent_answers(caller.name, agent.name)
        return caller, agent

    def caller_abandons(self, caller: str) -> None:
        self.hangup(caller, 16)

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
        self.channels.pop(name, None)
        self.emit({"Event": "Hangup", **chan.snapshot(), "Cause": str(cause),
                   "Cause-txt": HANGUP_CAUSE_TEXT.get(cause, "Unknown")})

    def redirect(self, name: str, context: str, exten: str, priority: int = 1, *, emit_newexten: bool = True,
                 keep: frozenset[str] = frozenset()) -> None:
        """Move a channel to context,exten,priority and run the little dialplan the transfers rely on."""
        chan = self.channels[name]
        self._leave_queue(name, abandon=True)
        self._leave_bridge(name, reason="transfer", keep=keep)
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
        """Dial of the trunk for a redirected caller (emergency hand-over): one attempt, then the generated
        dialplan's end for an unreachable emergency trunk (a prompt, then hang-up) is a hang-up here."""
        chan = self.channels.get(name)
        if chan is None:
            return
        chan.application, chan.app_data = "Dial", exten
        script = self.targets.get(exten, self.default_target)
        target = self._new_channel(f"Local/{exten}@{chan.context}-{self.ids.local_suffix()};1", chan.context, exten,
                                   state=0, linkedid=chan.linkedid)
        self.emit({"Event": "DialBegin", **chan.snapshot(), **target.snapshot("Dest"), "DialString": exten})
        timeout = self.dial_timeout
        answered = await self._ring(target.name, script, timeout)
        if name not in self.channels:
            self.hangup(target.name, 16)
            return
        if answered:
            target.state = 6
            self.emit({"Event": "DialEnd", **chan.snapshot(), **target.snapshot("Dest"), "DialStatus": "ANSWER"})
            self._bridge_channels(self.ids.bridge_id(), [name, target.name])
            return
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

    def _leave_bridge(self, name: str, *, reason: str, keep: frozenset[str] = frozenset()) -> None:
        """A channel leaves its bridge; a queue call ends (AgentComplete); a two-party bridge's peer hangs up."""
        chan = self.channels.get(name)
        if chan is None or chan.bridge is None:
            return
        bridge_id = chan.bridge
        members = self.bridges.get(bridge_id, set())
        members.discard(name)
        chan.bridge = None
        self.emit({"Event": "BridgeLeave", **_bridge_fields("Bridge", bridge_id, len(members)), **chan.snapshot()})
        call = chan.queue_call
        if call is not None and call.connected is not None:
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
                if reason != "transfer" or (call is not None and peer == call.agent):
                    self.hangup(peer, 16)
        self.emit({"Event": "BridgeDestroy", **_bridge_fields("Bridge", bridge_id, 0)})

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
            member.in_call, member.status = False, DEVICE_NOT_INUSE
            self._member_event("QueueMemberStatus", q, member)


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
