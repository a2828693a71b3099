"""AmiEmulator: an asyncio AMI server that answers like the recorded Asterisk 22 (tests/transcripts/ami-*.txt).

Texts marked "recorded" are byte-for-byte from the transcripts; the others follow main/manager.c and
apps/app_queue.c of Asterisk 22 (not recorded). The telephony behind it is deliberately small: queues with
members and waiting callers, channels, two-party and conference bridges, and scripted targets that answer or not
(`script_target`). Tests drive calls with the helpers (`new_call`, `caller_joins_queue`, `ring_agent`,
`agent_answers`, `agent_no_answer`, `caller_abandons`, `queue_times_out`, `hangup`, `answered_call`) and break the
link with `drop_connections()` or `set_unresponsive(True)` (a half-open link: bytes are read, nothing is answered).

Each session gets only the events of its user's read classes, as manager.c filters them: the `hotline` user
(read=call,agent,user, dialplan/manager.py) gets no VarSet, Newexten or DTMF; `add_user(name, secret, "all")`
makes an observer that gets everything.
"""
from __future__ import annotations

import asyncio
import re
import time
from typing import Awaitable, Callable

import structlog

from ivr.ami.contract import DEFAULT_DIALPLAN, TransferDialplan
from dialplan.manager import READ as HOTLINE_READ
from ivr.ami.framing import AmiDecoder, AmiFramingError, Message, banner_bytes, format_message, values
from ivr.ami.pbx import PbxModel, TargetScript
from ivr.ami.telephony import REASON_FAILED, Channel, Member, QueueState

__all__ = ["AmiEmulator", "TargetScript", "privilege_for"]

log = structlog.get_logger(__name__)

PRIVILEGE = {"FullyBooted": "system,all", "SuccessfulAuth": "security,all", "RequestBadFormat": "security,all",
             "VarSet": "dialplan,all", "Newexten": "dialplan,all", "UserEvent": "user,all",
             "DTMFBegin": "dtmf,all", "DTMFEnd": "dtmf,all", "Reload": "system,all",
             "AGIExecStart": "agi,all", "AGIExecEnd": "agi,all", "Registry": "system,all"}
AGENT_EVENTS = ("Queue", "Agent")


def privilege_for(event_name: str) -> str:
    if event_name in PRIVILEGE:
        return PRIVILEGE[event_name]
    return "agent,all" if event_name.startswith(AGENT_EVENTS) else "call,all"


class _Session:
    def __init__(self, emulator: "AmiEmulator", writer: asyncio.StreamWriter) -> None:
        self.emulator = emulator
        self.writer = writer
        self.authenticated = False
        self.frozen = False                   # half-open: reads, never answers, sends nothing
        self.events = True
        self.read: frozenset[str] = frozenset()   # the user's read classes (manager.conf read=)
        self.username = ""
        self.session_id = f"0x{id(self):x}"
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        local = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        self.remote = f"IPV4/TCP/{peer[0]}/{peer[1]}"
        self.local = f"IPV4/TCP/{local[0]}/{local[1]}"

    def send(self, fields: dict[str, str]) -> None:
        if not self.frozen and not self.writer.transport.is_closing():
            self.writer.write(format_message({k: v.split("\n") for k, v in fields.items()}))

    def reply(self, action: Message, response: str, message: str | None = None, **extra: str) -> None:
        fields = {"Response": response}
        if "ActionID" in action:
            fields["ActionID"] = action["ActionID"]
        if "EventList" in extra:                  # recorded order: EventList before Message
            fields["EventList"] = extra.pop("EventList")
        if message is not None:
            fields["Message"] = message
        fields.update(extra)
        self.send(fields)

    def error(self, action: Message, message: str) -> None:
        self.reply(action, "Error", message)

    def reads(self, privilege: str) -> bool:
        """manager.c: an event reaches a session whose read classes share one of the event's classes."""
        if "all" in self.read:
            return True
        return any(c in self.read for c in privilege.split(",") if c and c != "all")


Handler = Callable[[_Session, Message], Awaitable[bool | None]]


class AmiEmulator(PbxModel):
    def __init__(self, *, username: str = "hotline", secret: str = "secret", bad_login_delay: float = 1.0,
                 host: str = "127.0.0.1", dialplan: TransferDialplan = DEFAULT_DIALPLAN,
                 contexts: tuple[str, ...] = ("from-pstn", "queue-agents", "redirected", "default")) -> None:
        super().__init__(dialplan=dialplan, contexts=contexts)
        self.username, self.secret, self.bad_login_delay, self.host = username, secret, bad_login_delay, host
        self.read = HOTLINE_READ                   # the main user's read classes, as manager_hotline.conf has them
        self.users: dict[str, tuple[str, str]] = {}    # more users: name -> (secret, read)
        self.port = 0
        self.received: list[Message] = []          # every action received (tests count Originates with it)
        self.sessions: set[_Session] = set()
        self.unresponsive = False
        self._server: asyncio.AbstractServer | None = None
        self._handlers: dict[str, Handler] = {
            "login": self._login, "logoff": self._logoff, "ping": self._ping, "queuestatus": self._queue_status,
            "queuesummary": self._queue_summary, "queuepause": self._queue_pause, "queueadd": self._queue_add,
            "queueremove": self._queue_remove, "redirect": self._redirect_action, "atxfer": self._atxfer,
            "blindtransfer": self._blind_transfer, "originate": self._originate, "bridge": self._bridge,
            "hangup": self._hangup_action, "getvar": self._getvar, "setvar": self._setvar,
            "status": self._status, "coreshowchannels": self._core_show_channels, "command": self._command,
            "playdtmf": self._play_dtmf, "pjsipshowendpoint": self._pjsip_show_endpoint,
            "pjsipshowendpoints": self._pjsip_show_endpoints, "reload": self._reload}
        self.modules = {"app_queue", "res_pjsip", "chan_pjsip", "pbx_config", "res_agi", "manager"}
        self.endpoints: dict[str, list[dict[str, str]]] = {}    # name -> its detail events (add_endpoint)

    def add_user(self, username: str, secret: str, read: str = "all") -> None:
        """Another AMI user (e.g. an observer with read=all, as the recordings' `e2e` user)."""
        self.users[username] = (secret, read)

    # -- server -----------------------------------------------------------------------------------------------
    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop_connections(self) -> None:
        """Break every AMI link at once (as a restart or a network cut would): the client sees EOF/reset."""
        for session in list(self.sessions):
            session.writer.transport.abort()
        self.sessions.clear()

    def freeze_connections(self) -> None:
        """Half-open links: the current connections stay up but get nothing more; new connections work normally."""
        for session in self.sessions:
            session.frozen = True

    def set_unresponsive(self, flag: bool = True) -> None:
        """Half-open link: keep the TCP connections but answer nothing and send no events."""
        self.unresponsive = flag

    def count(self, action: str) -> int:
        return sum(1 for a in self.received if a.get("Action", "").lower() == action.lower())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, writer)
        self.sessions.add(session)
        writer.write(banner_bytes())
        decoder = AmiDecoder(expect_banner=False)
        try:
            while not writer.transport.is_closing():
                data = await reader.read(65536)
                if not data:
                    break
                try:
                    actions = decoder.feed(data)
                except AmiFramingError:
                    break
                for action in actions:
                    self.received.append(action)
                    if self.unresponsive or session.frozen:
                        continue
                    if await self._handle(session, action) is False:
                        await writer.drain()
                        writer.close()
                        return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.sessions.discard(session)
            writer.transport.abort()

    async def _handle(self, session: _Session, action: Message) -> bool | None:
        name = action.get("Action", "")
        if not name:
            session.error(action, "Missing action in request")
            return None
        if not session.authenticated and name.lower() not in ("login", "logoff", "challenge"):
            session.error(action, "Permission denied")
            return None
        handler = self._handlers.get(name.lower())
        if handler is None:
            session.error(action, f"Invalid/unknown command: {name}. Use Action: ListCommands to show available "
                                  "commands.")                                                        # recorded
            session.send(self._security_event(session, "RequestBadFormat", Severity="Error",
                                              RequestType=f"Action: {name}"))
            return None
        return await handler(session, action)

    def _security_event(self, session: _Session, name: str, **fields: str) -> dict[str, str]:
        now = _event_tv()
        event = {"Event": name, "Privilege": "security,all", "EventTV": now, "Severity": "Informational",
                 "Service": "AMI", "EventVersion": "1"}
        if name == "SuccessfulAuth":
            event.update(AccountID=session.username, SessionID=session.session_id, LocalAddress=session.local,
                         RemoteAddress=session.remote, UsingPassword="0", SessionTV=now)
        else:
            event.update(SessionID=session.session_id, LocalAddress=session.local, RemoteAddress=session.remote)
        event.update(fields)
        if name == "RequestBadFormat":
            event.update(SessionTV=now, AccountID=session.username)
        return event

    # -- events -----------------------------------------------------------------------------------------------
    def emit(self, event: dict[str, str]) -> None:
        """Send an event to every logged-in session that asked for events (Privilege added when missing)."""
        if "Privilege" not in event and "ActionID" not in event:
            name = event["Event"]
            event = {"Event": name, "Privilege": privilege_for(name), **{k: v for k, v in event.items()
                                                                          if k != "Event"}}
        if self.unresponsive:
            return
        privilege = event.get("Privilege", "")
        for session in list(self.sessions):
            if session.authenticated and session.events and (not privilege or session.reads(privilege)):
                session.send(event)

    # -- actions: session -------------------------------------------------------------------------------------
    async def _login(self, s: _Session, a: Message) -> bool | None:
        secret, read = ((self.secret, self.read) if a.get("Username") == self.username
                        else self.users.get(a.get("Username", ""), (None, "")))
        if secret is None or a.get("Secret") != secret:
            await asyncio.sleep(self.bad_login_delay)                  # recorded: Error after ~1 s, then close
            s.error(a, "Authentication failed")
            return False
        s.authenticated, s.username = True, a["Username"]
        s.read = frozenset(c.strip().lower() for c in read.split(",") if c.strip())
        s.events = a.get("Events", "on").lower() not in ("off", "no", "false", "0")
        s.reply(a, "Success", "Authentication accepted")
        if s.events:
            uptime = str(int(time.time() - self.started))
            if s.reads("system,all"):      # recorded: user hotline (no system class) gets no FullyBooted
                s.send({"Event": "FullyBooted", "Privilege": "system,all", "Uptime": uptime, "LastReload": uptime,
                        "Status": "Fully Booted"})
            if s.reads("security,all"):
                s.send(self._security_event(s, "SuccessfulAuth"))
        return None

    async def _logoff(self, s: _Session, a: Message) -> bool:
        s.reply(a, "Goodbye", "Thanks for all the fish.")                                          # recorded
        return False

    async def _ping(self, s: _Session, a: Message) -> None:
        now = time.time()
        s.reply(a, "Success", None, Ping="Pong", Timestamp=f"{now:.6f}")

    async def _command(self, s: _Session, a: Message) -> None:
        command = a.get("Command", "").strip()
        words = command.split()
        if words[:2] == ["queue", "show"]:
            lines = []
            for q in ([self.queues[words[2]]] if len(words) > 2 and words[2] in self.queues else
                      self.queues.values() if len(words) == 2 else []):
                lines.append(f"{q.name} has {len(q.callers)} calls (max unlimited) in '{q.strategy}' strategy "
                             f"({q.holdtime}s holdtime, {q.talktime}s talktime), W:{q.weight}, C:{q.completed}, "
                             f"A:{q.abandoned}, SL:0.0%, SL2:0.0% within {q.service_level}s")
                lines.append("   Members: " if q.members else "   No Members")
                for m in q.members.values():
                    state = "In use" if m.in_call else "Not in use"
                    paused = f" (paused:{m.paused_reason})" if m.paused else ""
                    lines.append(f"      {m.name} ({m.interface} from {m.state_interface}){paused} "
                                 f"({'ringinuse enabled' if m.ringinuse else 'ringinuse disabled'}) ({state}) "
                                 f"has taken {m.calls_taken} calls")
                lines.append("   Callers: " if q.callers else "   No Callers")
                for pos, name in enumerate(q.callers, 1):
                    lines.append(f"      {pos}. {name} (wait: 0:00, prio: 0)")
                lines += ["", ""]
            if len(words) > 2 and words[2] not in self.queues:
                lines = [f"No such queue: {words[2]}.", ""]
            s.reply(a, "Success", "Command output follows", Output="\n".join(lines))              # recorded
            return
        if words == ["dialplan", "reload"]:
            s.reply(a, "Success", "Command output follows", Output="Dialplan reloaded.")          # recorded
            return                                                               # recorded: no event
        if words[:2] == ["module", "reload"] and len(words) == 3:
            known = words[2].removesuffix(".so") in self.modules
            s.reply(a, "Success", "Command output follows",
                    Output=f"Module '{words[2]}' reloaded successfully." if known
                    else f"The module '{words[2]}' does not exist.")
            if known:
                self.emit({"Event": "Reload", "Module": words[2], "Status": "0"})
            return
        if words[:2] == ["dialplan", "show"]:
            s.reply(a, "Success", "Command output follows", Output="(the emulator models no dialplan text)")
            return
        s.reply(a, "Error", "Command output follows",
                Output=f"No such command '{command}' (type 'core show help {command}' for other possible commands)")

    # -- actions: queues --------------------------------------------------------------------------------------
    def _selected_queues(self, a: Message) -> list[QueueState]:
        name = a.get("Queue")
        if name:
            return [self.queues[name]] if name in self.queues else []
        return list(self.queues.values())

    async def _queue_status(self, s: _Session, a: Message) -> None:
        s.reply(a, "Success", "Queue status will follow", EventList="start")
        # recorded layout: Response carries EventList before Message
        member_filter = a.get("Member", "")
        aid = {"ActionID": a["ActionID"]} if "ActionID" in a else {}
        items = 0
        now = time.time()
        for q in self._selected_queues(a):
            s.send({**q.params(), **aid})
            items += 1
            for m in q.members.values():
                if member_filter and member_filter.lower() not in (m.name.lower(), m.interface.lower()):
                    continue
                s.send({"Event": "QueueMember", "Queue": q.name, **m.fields(for_status=True), **aid})
                items += 1
            for position, name in enumerate(q.callers, 1):
                chan = self.channels[name]
                s.send({"Event": "QueueEntry", "Queue": q.name, "Position": str(position), "Channel": name,
                        "Uniqueid": chan.uniqueid, "CallerIDNum": chan.caller_num, "CallerIDName": chan.caller_name,
                        "ConnectedLineNum": chan.connected_num, "ConnectedLineName": chan.connected_name,
                        "Wait": str(int(now - q.joined.get(name, now))), "Priority": "0", **aid})
                items += 1
        s.send({"Event": "QueueStatusComplete", **aid, "EventList": "Complete", "ListItems": str(items)})

    async def _queue_summary(self, s: _Session, a: Message) -> None:
        s.reply(a, "Success", "Queue summary will follow", EventList="start")
        aid = {"ActionID": a["ActionID"]} if "ActionID" in a else {}
        now = time.time()
        queues = self._selected_queues(a)
        for q in queues:
            logged_in = sum(1 for m in q.members.values() if m.status not in (4, 5))
            longest = max((now - q.joined[c] for c in q.callers if c in q.joined), default=0)
            s.send({"Event": "QueueSummary", "Queue": q.name, "LoggedIn": str(logged_in),
                    "Available": str(q.available()), "Callers": str(len(q.callers)), "HoldTime": str(q.holdtime),
                    "TalkTime": str(q.talktime), "LongestHoldTime": str(int(longest)), **aid})
        s.send({"Event": "QueueSummaryComplete", **aid, "EventList": "Complete", "ListItems": str(len(queues))})

    async def _queue_add(self, s: _Session, a: Message) -> None:
        queue, interface = a.get("Queue"), a.get("Interface")
        if not queue or not interface:
            return s.error(a, "'Queue' and 'Interface' not specified.")
        q = self.queues.get(queue)
        if q is None:
            return s.error(a, "Unable to add interface to queue: No such queue")                   # recorded
        if interface in q.members:
            return s.error(a, "Unable to add interface: Already there")
        paused = a.get("Paused", "false").lower() in ("true", "yes", "1", "on")
        m = Member(interface, a.get("MemberName") or interface, a.get("StateInterface") or interface,
                   membership="dynamic", penalty=int(a.get("Penalty") or 0), login_time=int(time.time()),
                   paused=paused, paused_reason=a.get("Reason", "") if paused else "")
        q.members[interface] = m
        s.reply(a, "Success", "Added interface to queue")                                            # recorded
        self.emit({"Event": "DeviceStateChange", "Device": f"Queue:{queue}_pause_{interface}",
                   "State": "INUSE" if paused else "NOT_INUSE"})
        self._member_event("QueueMemberAdded", q, m)
        self._queue_avail(q)

    async def _queue_remove(self, s: _Session, a: Message) -> None:
        queue, interface = a.get("Queue"), a.get("Interface")
        if not queue or not interface:
            return s.error(a, "Need 'Queue' and 'Interface' parameters.")
        q = self.queues.get(queue)
        if q is None:
            return s.error(a, "Unable to remove interface from queue: No such queue")
        m = q.members.get(interface)
        if m is None:
            return s.error(a, "Unable to remove interface: Not there")
        if m.membership != "dynamic":
            return s.error(a, "Member not dynamic")
        del q.members[interface]
        s.reply(a, "Success", "Removed interface from queue")                                        # recorded
        self._member_event("QueueMemberRemoved", q, m)
        self._queue_avail(q)

    async def _queue_pause(self, s: _Session, a: Message) -> None:
        interface, paused_text = a.get("Interface"), a.get("Paused")
        if not interface or not paused_text:
            return s.error(a, "Need 'Interface' and 'Paused' parameters.")
        paused = paused_text.lower() in ("true", "yes", "1", "on")
        hits = [(q, q.members[interface]) for q in self._selected_queues(a) if interface in q.members]
        if not hits:
            return s.error(a, "Interface not found")
        s.reply(a, "Success", "Interface paused successfully" if paused else "Interface unpaused successfully")
        for q, m in hits:
            m.paused = paused
            m.paused_reason = a.get("Reason", "") if paused else ""
            if paused:
                m.last_pause = int(time.time())
            self.emit({"Event": "DeviceStateChange", "Device": f"Queue:{q.name}_pause_{interface}",
                       "State": "INUSE" if paused else "NOT_INUSE"})
            self._member_event("QueueMemberPause", q, m)

    # -- actions: channels ------------------------------------------------------------------------------------
    async def _redirect_action(self, s: _Session, a: Message) -> None:
        name = a.get("Channel")
        if not name:
            return s.error(a, "Channel not specified")
        if not a.get("Exten") and not a.get("Context"):
            return s.error(a, "Exten not specified")
        chan = self.channels.get(name)
        if chan is None:
            return s.error(a, f"Channel does not exist: {name}")                                    # recorded
        extra = a.get("ExtraChannel")
        if extra and extra not in self.channels:
            return s.error(a, f"ExtraChannel does not exist: {extra}")
        s.reply(a, "Success", "Dual Redirect successful" if extra else "Redirect successful")      # recorded
        priority = int(a.get("Priority") or 1)
        moving = frozenset(n for n in (name, extra) if n)      # moved together: neither is hung up as a peer
        for target, prefix in ((chan, ""), (self.channels.get(extra or ""), "Extra")):
            if target is not None:
                self.redirect(target.name, a.get(f"{prefix}Context") or a.get("Context") or target.context,
                              a.get(f"{prefix}Exten") or a.get("Exten") or target.exten,
                              int(a.get(f"{prefix}Priority") or priority), keep=moving)

    def _transfer_source(self, s: _Session, a: Message) -> tuple[Channel, str] | None:
        """Channel and Exten of a transfer action, or None after the error reply Asterisk sends."""
        name, exten = a.get("Channel"), a.get("Exten")
        if not name:
            s.error(a, "No channel specified")
        elif not exten:
            s.error(a, "No extension specified")
        elif (chan := self.channels.get(name)) is None:
            s.error(a, "Channel specified does not exist")                                           # recorded
        else:
            return chan, exten
        return None

    async def _blind_transfer(self, s: _Session, a: Message) -> None:
        source = self._transfer_source(s, a)
        if source is None:
            return
        chan, exten = source
        peers = [p for p in self._bridge_peers(chan)]
        if not peers:
            return s.error(a, "Transfer failed")
        s.reply(a, "Success", "Transfer succeeded")
        context = a.get("Context") or chan.context
        self.emit({"Event": "BlindTransfer", "Result": "Success", **chan.snapshot("Transferer"),
                   **self.channels[peers[0]].snapshot("Transferee"), "IsExternal": "No", "Context": context,
                   "Extension": exten})
        self.redirect(peers[0], context, exten, 1)

    async def _hangup_action(self, s: _Session, a: Message) -> None:
        name = a.get("Channel")
        if not name:
            return s.error(a, "No channel specified")
        cause = int(a.get("Cause") or 16)
        if len(name) > 2 and name.startswith("/") and name.endswith("/"):     # a regex: every matching channel
            try:
                pattern = re.compile(name[1:-1])
            except re.error:
                return s.error(a, "Invalid regex")
            hit = [n for n in self.channels if pattern.search(n)]
            s.reply(a, "Success", "Channels hung up will follow", EventList="start")                 # recorded
            aid = {"ActionID": a["ActionID"]} if "ActionID" in a else {}
            for n in hit:
                s.send({"Event": "ChannelHungup", "Channel": n, **aid})
            s.send({"Event": "ChannelsHungupListComplete", **aid, "EventList": "Complete",
                    "ListItems": str(len(hit))})
            for n in hit:
                self._hang_up_by_ami(n, cause)
            return None
        if name not in self.channels:
            return s.error(a, "No such channel")                                                     # recorded
        s.reply(a, "Success", "Channel Hungup")                                                      # recorded
        self._hang_up_by_ami(name, cause)

    def _hang_up_by_ami(self, name: str, cause: int) -> None:
        if name in self.channels:
            self.emit({"Event": "SoftHangupRequest", **self.channels[name].snapshot(), "Cause": str(cause)})
            self.hangup(name, cause)

    async def _play_dtmf(self, s: _Session, a: Message) -> None:
        if a.get("Channel") not in self.channels:
            return s.error(a, "Channel not found")                                                   # recorded
        if not a.get("Digit"):
            return s.error(a, "No digit specified")
        s.reply(a, "Success", "DTMF successfully queued")                                            # recorded

    async def _getvar(self, s: _Session, a: Message) -> None:
        variable, name = a.get("Variable"), a.get("Channel")
        if not variable:
            return s.error(a, "No variable specified")
        if name:
            chan = self.channels.get(name)
            if chan is None:
                return s.error(a, "No such channel")
            value = chan.variables.get(variable, "")
        else:
            value = self.global_vars.get(variable, "")
        s.reply(a, "Success", None, Variable=variable, Value=value)                                  # recorded

    async def _setvar(self, s: _Session, a: Message) -> None:
        variable, name = a.get("Variable"), a.get("Channel")
        if not variable:
            return s.error(a, "No variable specified")
        value = a.get("Value", "")
        if name:
            chan = self.channels.get(name)
            if chan is None:
                return s.error(a, "No such channel")
            chan.variables[variable] = value
            s.reply(a, "Success", "Variable Set")
            self.emit({"Event": "VarSet", **chan.snapshot(), "Variable": variable, "Value": value})
        else:
            self.global_vars[variable] = value
            s.reply(a, "Success", "Variable Set")                                                    # recorded

    async def _bridge(self, s: _Session, a: Message) -> None:
        one, two = a.get("Channel1"), a.get("Channel2")
        if not one or not two:
            return s.error(a, "Missing channel parameter in request")
        if one not in self.channels:
            return s.error(a, f"Channel1 does not exists: {one}")
        if two not in self.channels:
            return s.error(a, f"Channel2 does not exists: {two}")
        s.reply(a, "Success", "Channels have been bridged")
        for name in (one, two):
            self._leave_queue(name, abandon=True)
            self._leave_bridge(name, reason="transfer")
        self._bridge_channels(self.ids.bridge_id(), [one, two])

    async def _status(self, s: _Session, a: Message) -> None:
        name = a.get("Channel")
        if name and name not in self.channels:
            return s.error(a, "No such channel")
        s.reply(a, "Success", "Channel status will follow", EventList="start")                      # recorded
        aid = {"ActionID": a["ActionID"]} if "ActionID" in a else {}
        chans = [self.channels[name]] if name else list(self.channels.values())
        now = time.time()
        for chan in chans:
            s.send({"Event": "Status", "Privilege": "Call", **chan.snapshot(), "Type": chan.name.split("/")[0],
                    "DNID": "", "EffectiveConnectedLineNum": chan.connected_num,
                    "EffectiveConnectedLineName": chan.connected_name, "TimeToHangup": "0",
                    "BridgeID": chan.bridge or "", "Application": chan.application, "Data": chan.app_data,
                    "Nativeformats": "(ulaw)", "Readformat": "ulaw", "Readtrans": "", "Writeformat": "ulaw",
                    "Writetrans": "", "Callgroup": "0", "Pickupgroup": "0", "Seconds": str(int(now - chan.created)),
                    **aid})
        s.send({"Event": "StatusComplete", **aid, "EventList": "Complete", "ListItems": str(len(chans)),
                "Items": str(len(chans))})

    async def _core_show_channels(self, s: _Session, a: Message) -> None:
        s.reply(a, "Success", "Channels will follow", EventList="start")                            # recorded
        aid = {"ActionID": a["ActionID"]} if "ActionID" in a else {}
        now = time.time()
        for chan in self.channels.values():
            seconds = int(now - chan.created)
            s.send({"Event": "CoreShowChannel", **aid, **chan.snapshot(), "Application": chan.application,
                    "ApplicationData": chan.app_data,
                    "Duration": f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
                    "BridgeId": chan.bridge or ""})
        s.send({"Event": "CoreShowChannelsComplete", **aid, "EventList": "Complete",
                "ListItems": str(len(self.channels))})

    # -- PJSIP endpoints -------------------------------------------------------------------------------------
    def add_endpoint(self, name: str, *, contact: str = "Reachable", aor: str | None = None) -> None:
        """A PJSIP endpoint for PJSIPShowEndpoint: EndpointDetail, AorDetail, ContactStatusDetail (the recorded
        list, shortened to the fields that say who and how reachable)."""
        aor = aor or name
        self.endpoints[name] = [
            {"Event": "EndpointDetail", "ObjectType": "endpoint", "ObjectName": name, "Aors": aor,
             "Context": "hotline-from-carrier", "DeviceState": "Not in use", "ActiveChannels": ""},
            {"Event": "AorDetail", "ObjectType": "aor", "ObjectName": aor, "MaxContacts": "1",
             "TotalContacts": "1", "ContactsRegistered": "0", "EndpointName": name},
            {"Event": "ContactStatusDetail", "AOR": aor, "URI": f"sip:{name}@127.0.0.2:5060", "Status": contact,
             "RoundtripUsec": "N/A" if contact == "NonQualified" else "1000", "EndpointName": name}]

    async def _reload(self, s: _Session, a: Message) -> None:
        """Reload [Module: X]: the reply, then Event Reload (system class) with Module exactly as sent."""
        module = a.get("Module", "")
        known = not module or module.removesuffix(".so") in self.modules
        if known:
            s.reply(a, "Success", "Module Reloaded")                                               # recorded
        else:
            s.error(a, "No such module")                                                          # recorded
        self.emit({"Event": "Reload", "Module": module or "All", "Status": "0" if known else "2"})

    async def _pjsip_show_endpoints(self, s: _Session, a: Message) -> None:
        s.reply(a, "Success", "A listing of Endpoints follows, presented as EndpointList events",  # recorded
                EventList="start")
        aid = {"ActionID": a["ActionID"]} if "ActionID" in a else {}
        for name, details in self.endpoints.items():
            aor = details[1]["ObjectName"]
            s.send({"Event": "EndpointList", **aid, "ObjectType": "endpoint", "ObjectName": name,
                    "Transport": "transport-udp", "Aor": aor, "Auths": "", "OutboundAuths": "",
                    "Contacts": f"{aor}/{details[2]['URI']},", "DeviceState": "Not in use", "ActiveChannels": "0"})
        s.send({"Event": "EndpointListComplete", **aid, "EventList": "Complete", "ListItems": str(len(self.endpoints))})

    async def _pjsip_show_endpoint(self, s: _Session, a: Message) -> None:
        name = a.get("Endpoint", "")
        if not name:
            return s.error(a, "Endpoint parameter missing.")
        details = self.endpoints.get(name)
        if details is None:           # recorded: this Message line ends with a bare LF, then the blank line
            aid = f"ActionID: {a['ActionID']}\r\n" if "ActionID" in a else ""
            s.writer.write(f"Response: Error\r\n{aid}Message: Unable to retrieve endpoint {name}\n\r\n\r\n".encode())
            return
        s.reply(a, "Success", "Following are Events for each object associated with the Endpoint",  # recorded
                EventList="start")
        aid = {"ActionID": a["ActionID"]} if "ActionID" in a else {}
        for detail in details:
            s.send({"Event": detail["Event"], **aid, **{k: v for k, v in detail.items() if k != "Event"}})
        s.send({"Event": "EndpointDetailComplete", **aid, "EventList": "Complete", "ListItems": str(len(details))})

    # -- Atxfer -----------------------------------------------------------------------------------------------
    async def _atxfer(self, s: _Session, a: Message) -> None:
        source = self._transfer_source(s, a)
        if source is None:
            return
        chan, exten = source
        s.reply(a, "Success", "Atxfer successfully queued")                                          # recorded
        self._later(self._run_atxfer(chan.name, exten, a.get("Context") or chan.context))

    # -- Originate --------------------------------------------------------------------------------------------
    async def _originate(self, s: _Session, a: Message) -> None:
        channel = a.get("Channel")
        if not channel:
            return s.error(a, "Channel not specified")
        application = a.get("Application")
        context, exten, priority = a.get("Context"), a.get("Exten"), a.get("Priority")
        if not application and (not context or not exten or not priority):
            return s.error(a, "Originate with 'Exten' requires 'Context' and 'Priority'")          # recorded
        tech, _, rest = channel.partition("/")
        dial_exten, _, dial_context = rest.partition("@")
        dial_context = dial_context.split("/")[0]
        valid = (tech == "Local" and dial_context in self.contexts) or tech == "PJSIP"
        is_async = a.get("Async", "false").lower() in ("true", "yes", "1")
        timeout = int(a.get("Timeout") or 30000) / 1000
        if not valid:
            if is_async:
                s.reply(a, "Success", "Originate successfully queued")
                self._later(self._originate_failed(a, channel, REASON_FAILED))
            else:
                s.error(a, "Originate failed")                                                       # recorded
            return
        variables = dict(v.split("=", 1) for v in values(a, "Variable") if "=" in v)
        run = self._run_originate(a, channel, tech, dial_exten, dial_context, timeout, variables)
        if is_async:
            s.reply(a, "Success", "Originate successfully queued")                                   # recorded
            self._later(run)
        else:
            ok = await run
            if ok:
                s.reply(a, "Success", "Originate successfully queued")
            else:
                s.error(a, "Originate failed")

def _event_tv() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}+0000"
