"""What the transfers need from the generated dialplan (the "dialplan" helper renders these contexts).

- hotline-warm-transfer, exten = the trunk's dial digits (Trunk.dial): Dial the trunk named by ${HOTLINE_XFER_TRUNK}
  with timeout ${HOTLINE_XFER_TIMEOUT} (seconds). Reached by AMI Atxfer from the agent's channel (digits only:
  Atxfer queues DTMF) and by Redirect of the caller for the emergency hand-over. The variables are set with a
  double underscore (__HOTLINE_XFER_TRUNK) on the agent's/caller's channel, so the transfer leg inherits them.
  After a failed Dial on a hand-over, continue into queue ${HOTLINE_XFER_FALLBACK_QUEUE} (never drop an
  emergency caller).
- hotline-threeway, exten `conf`: ConfBridge(${HOTLINE_CONF}) (caller, agent and target meet there; the agent
  may leave). Exten = digits: Dial the trunk ${HOTLINE_XFER_TRUNK} for ${HOTLINE_XFER_TIMEOUT} s (the target leg
  is `Local/<digits>@hotline-threeway`, originated into `conf`).
- hotline-escalate, exten = queue id (expert-12320, expert-12329): Queue(${EXTEN}) keeping HOTLINE_LINE,
  HOTLINE_IVR_PATH and CALLERID(name) that were set on the channel before the Redirect.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TransferDialplan:
    warm_context: str = "hotline-warm-transfer"
    threeway_context: str = "hotline-threeway"
    conf_exten: str = "conf"
    escalate_context: str = "hotline-escalate"
    trunk_var: str = "HOTLINE_XFER_TRUNK"
    timeout_var: str = "HOTLINE_XFER_TIMEOUT"
    conf_var: str = "HOTLINE_CONF"
    fallback_queue_var: str = "HOTLINE_XFER_FALLBACK_QUEUE"


DEFAULT_DIALPLAN = TransferDialplan()
