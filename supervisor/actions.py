"""Supervisor actions -> AMI action fields. Pure: validates what a browser sent, builds what Asterisk gets.

Only members the live state knows can be paused, removed or listened to: the browser names a server, a
queue and a member interface, never a raw channel, so a forged request cannot spy on an arbitrary call.
ChanSpy options (apps/app_chanspy.c): q = no beep/name announcement, b = only bridged calls (not while the
agent's phone rings), w = whisper to the agent, B = barge: talk to both agent and caller.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping

from supervisor.state import LiveState

ACTIONS = ("pause", "unpause", "add", "remove", "listen", "whisper", "barge")
SPY_OPTIONS = {"listen": "qb", "whisper": "qbw", "barge": "qbB"}

_QUEUE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # the routing table's queue ids
_INTERFACE = re.compile(r"^[A-Za-z0-9]{1,16}/[A-Za-z0-9_.@+:/-]{1,100}$")
_PHONE = re.compile(r"^(PJSIP|SIP|IAX2|DAHDI|Local)/[A-Za-z0-9_.@+-]{1,80}$")
_MAX_TEXT = 64


class ActionError(ValueError):
    """A request the view refuses before anything reaches Asterisk (the message is shown to the user)."""


@dataclass(frozen=True)
class Request:
    kind: str
    server: str
    fields: dict[str, str]  # the AMI action
    summary: dict[str, str]  # what the audit log records (no secrets, no caller numbers)


def _text(params: Mapping[str, Any], key: str, *, required: bool = False, default: str = "") -> str:
    value = str(params.get(key) if params.get(key) is not None else default).strip()
    if required and not value:
        raise ActionError(f"{key} is required")
    if len(value) > _MAX_TEXT * 2:
        raise ActionError(f"{key} is too long")
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise ActionError(f"{key} contains control characters")
    return value


def build(kind: str, params: Mapping[str, Any], state: LiveState, *, default_phone: str = "") -> Request:
    if kind not in ACTIONS:
        raise ActionError(f"unknown action {kind!r}")
    server = _text(params, "server", required=True)
    if server not in state.servers:
        raise ActionError(f"unknown server {server!r}")
    queue = _text(params, "queue", required=True)
    if not _QUEUE.match(queue):
        raise ActionError("queue must be a queue id such as general-12345")
    interface = _text(params, "interface", required=True)
    if not _INTERFACE.match(interface):
        raise ActionError("interface must look like PJSIP/7001 or Local/agent1@queue-agents/n")
    known_queue = state.servers[server].queues.get(queue)
    member = known_queue.members.get(interface) if known_queue else None
    summary = {"server": server, "queue": queue, "interface": interface}

    if kind == "add":
        if known_queue is None:
            raise ActionError(f"unknown queue {queue!r} on {server}")
        if member is not None:
            raise ActionError(f"{interface} is already a member of {queue}")
        name = _text(params, "member_name") or interface
        penalty = _text(params, "penalty", default="0")
        if not penalty.isdigit() or int(penalty) > 100:
            raise ActionError("penalty must be a number from 0 to 100")
        fields = {"Action": "QueueAdd", "Queue": queue, "Interface": interface, "MemberName": name,
                  "Penalty": penalty, "Paused": "false"}
        return Request(kind, server, fields, {**summary, "member_name": name, "penalty": penalty})

    if member is None:
        raise ActionError(f"{interface} is not a member of {queue} on {server}")
    if kind in ("pause", "unpause"):
        reason = _text(params, "reason")
        if len(reason) > _MAX_TEXT:
            raise ActionError(f"reason is longer than {_MAX_TEXT} characters")
        fields = {"Action": "QueuePause", "Queue": queue, "Interface": interface,
                  "Paused": "true" if kind == "pause" else "false"}
        if reason:
            fields["Reason"] = reason
        return Request(kind, server, fields, {**summary, "reason": reason})
    if kind == "remove":
        return Request(kind, server, {"Action": "QueueRemove", "Queue": queue, "Interface": interface}, summary)

    phone = _text(params, "phone") or default_phone
    if not _PHONE.match(phone):
        raise ActionError("your phone must be a channel such as PJSIP/9001 (it rings, then you hear the call)")
    target = member.spy_prefix
    if "," in target or not target:
        raise ActionError(f"cannot listen to {interface}")
    shown = (member.name or target).replace('"', "")[:40]  # what the supervisor's phone displays
    fields = {"Action": "Originate", "Channel": phone, "Application": "ChanSpy",
              "Data": f"{target},{SPY_OPTIONS[kind]}", "CallerID": f'"{kind}: {shown}" <{kind}>',
              "Async": "true", "Timeout": "30000"}
    return Request(kind, server, fields, {**summary, "phone": phone, "spy": fields["Data"]})
