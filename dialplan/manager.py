"""manager_hotline.conf: the AMI user of the engine, with the least privilege it needs.

Classes needed (Asterisk 22, manager.c / app_queue.c; an action is allowed if the user holds any one of its
classes):
- write `call`: Redirect, Atxfer, BlindTransfer, Bridge, Hangup, Setvar, Getvar, Status;
- write `agent`: QueueAdd, QueueRemove, QueuePause (QueueStatus, QueueSummary, Ping need no class);
- write `originate`: Originate of the three-way leg and of ChanSpy listen-in (not of System/AGI-like apps,
  which would also need `system`: not granted);
- write `reporting`: CoreShowChannels (channel resync after a reconnect; read-only information);
- read `call`: channel and transfer events (Newchannel, Hangup, BridgeEnter, AttendedTransfer, ...);
- read `agent`: queue events (QueueCallerJoin/Leave/Abandon, AgentCalled/Connect/Complete, QueueMember*);
- read `user`: the generated dialplan's UserEvent HotlineQueueLeft after a Queue() that returned (timeout,
  leave-empty: an overflow, which app_queue reports as QueueCallerAbandon too).
Not granted: system, command, config, dialplan (VarSet/Newexten floods), dtmf, security, aoc, cdr.
"""
from __future__ import annotations

import ipaddress

from dialplan.common import RenderError, conf_value, header, join_lines
from dialplan.conftext import Section, document
from dialplan.facts import Facts
from dialplan.options import RenderOptions

FILENAME = "manager_hotline.conf"
READ = "call,agent,user"
WRITE = "call,agent,originate,reporting"


def _permit(value: str) -> str:
    address, _, mask = value.partition("/")
    try:
        ipaddress.ip_address(address)
        if mask:
            if "." in mask:
                ipaddress.ip_address(mask)
            elif not 0 <= int(mask) <= 128:
                raise ValueError(mask)
    except ValueError:
        raise RenderError(f"AMI permit entry {value!r} must be address[/mask]") from None
    return value


def render_manager(facts: Facts, options: RenderOptions) -> str:
    head = header(FILENAME, facts.table, "The engine's AMI user. Include it from manager.conf, whose [general] "
                  "keeps bindaddr=127.0.0.1 unless the engine runs on another host.")
    head += [";", "; Mode 0600: it holds the AMI secret."]
    user = Section(options.ami_username)
    secret = options.secrets.get(options.ami_secret_env)
    if secret:
        user.set("secret", conf_value(secret))
    else:
        user.comment(f"SECRET MISSING: set {options.ami_secret_env} in the environment or the --secrets file "
                     "and render again; until then this user cannot log in.")
    user.note("Only these addresses may log in as this user.")
    user.set("deny", "0.0.0.0/0.0.0.0")
    for entry in options.ami_permit:
        user.set("permit", _permit(entry))
    user.note("Least privilege: see the list in dialplan/manager.py.")
    user.set("read", READ)
    user.set("write", WRITE)
    user.set("writetimeout", 5000)
    user.note("Several engines (scale-out) log in with the same user.")
    user.set("allowmultiplelogin", "yes")
    return join_lines(document(head, [user]))
