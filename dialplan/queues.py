"""queues_hotline.conf: one section per table queue, tuned so overflow and fail-open can work.

joinempty / leavewhenempty (app_queue: a list of member states under which a caller may not join / must leave):
- queues with an overflow (and every queue that is not the last resort): `joinempty=yes` lets the caller in
  even with nobody logged in, so the join is visible (QueueCallerJoin, queue_log) and the dialplan's timeout
  starts; `leavewhenempty=unavailable,invalid,unknown` moves them on as soon as no member could ever answer
  (none configured, all unreachable or logged off) instead of waiting out the overflow timer. Busy, ringing,
  wrap-up or paused agents do not count: they will be free soon, and the overflow timer covers long waits.
  Queue() then returns (QUEUESTATUS=LEAVEEMPTY or TIMEOUT) and the dialplan goes on to the next queue.
- the general queue (last resort, 24/7): `joinempty=yes`, `leavewhenempty=no`: nobody is ever turned away;
  callers wait until an agent logs in.
"""
from __future__ import annotations

from dialplan.agents import SKILL_RULE, queue_has_skills
from dialplan.common import comment_text, conf_value, header, join_lines
from dialplan.conftext import Section, document
from dialplan.facts import Facts
from dialplan.options import RenderOptions
from routing.model import Queue

FILENAME = "queues_hotline.conf"
LEAVE_WHEN_NOBODY_CAN_ANSWER = "unavailable,invalid,unknown"


def render_queues(facts: Facts, options: RenderOptions) -> str:
    head = header(FILENAME, facts.table, "Queues of the routing table. Include it from queues.conf "
                  "(which keeps its own [general]).")
    head += [
        ";",
        "; Queue() is called from extensions_hotline.conf with options tT (agent and caller may transfer;",
        "; AMI Atxfer needs them) and, for queues with overflow, the overflow time as its timeout.",
        "; timeoutpriority=app: that timeout wins over the member ring timeout.",
    ]
    return join_lines(document(head, [_queue(facts, options, q) for q in facts.queues]))


def _queue(facts: Facts, options: RenderOptions, queue: Queue) -> Section:
    last_resort = queue.id == facts.general
    section = Section(queue.id)
    section.comment(comment_text(queue.name))
    if queue.overflow is not None:
        section.comment(f"overflow after {queue.overflow.after_seconds} s to {queue.overflow.to} (in the dialplan)")
    elif last_resort:
        section.comment("last resort of every overflow chain and of fail-open: never turns a caller away")
    section.set("strategy", queue.strategy)
    section.set("timeout", queue.member_timeout)
    section.set("retry", 5)
    section.set("timeoutpriority", "app")
    section.set("wrapuptime", queue.wrapup_seconds)
    section.set("servicelevel", queue.service_level_seconds)
    announce = queue.announce_holdtime
    section.set("announce-holdtime", "yes" if announce else "no")
    section.set("announce-position", "no")
    section.set("announce-frequency", options.announce_frequency if announce else 0)
    section.set("joinempty", "yes")
    section.set("leavewhenempty", "no" if last_resort else LEAVE_WHEN_NOBODY_CAN_ANSWER)
    section.set("ringinuse", "no")
    section.set("setinterfacevar", "yes")      # MEMBERINTERFACE etc. on the caller's channel for the engine
    section.set("setqueuevar", "yes")          # QUEUENAME, QUEUEHOLDTIME, ... for records
    if queue_has_skills(options, queue.id):    # opens a skilled call to every member after a while
        section.set("defaultrule", SKILL_RULE)
    for member in sorted(queue.members):
        section.body.append(f"member => {conf_value(member)}")
    return section
