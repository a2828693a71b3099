"""What the transfers need from the generated dialplan (dialplan/extensions.py renders these contexts; its
context comments give the same AMI fields).

- hotline-warm-transfer, exten = a trunk's dial digits: Dial(PJSIP/<digits>@<trunk>, <no_answer_seconds>).
  Reached by AMI Atxfer from the agent's channel (digits only: Atxfer queues DTMF; queue options tT and the
  atxfer feature code are generated too). Emergency digits lead on to hotline-emergency: the hand-over is a
  Redirect of the caller to hotline-warm-transfer,<110|119|120|122>,1.
- hotline-threeway: extensions caller / agent / target join ConfBridge room hotline-${HOTLINE_CONF} (caller and
  target "marked": the room ends when either leaves; the agent may leave at any time); exten = digits is the
  target leg (Local/<digits>@hotline-threeway dials the trunk).
- hotline-escalate, exten = queue id: on into that queue, keeping HOTLINE_LINE, HOTLINE_IVR_PATH, CALLERID(name).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TransferDialplan:
    warm_context: str = "hotline-warm-transfer"
    threeway_context: str = "hotline-threeway"
    escalate_context: str = "hotline-escalate"
    emergency_context: str = "hotline-emergency"
    caller_exten: str = "caller"
    agent_exten: str = "agent"
    target_exten: str = "target"
    conf_var: str = "HOTLINE_CONF"
    room_prefix: str = "hotline-"


DEFAULT_DIALPLAN = TransferDialplan()
