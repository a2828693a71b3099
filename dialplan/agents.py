"""extensions_hotline_agents.conf: agents log in to and out of their queues from their phone, with a PIN.

`*91<agent>` logs the agent in (AddQueueMember to each of its queues, with its penalty, name and state
interface), `*92<agent>` logs it out (RemoveQueueMember); both ask for the PIN first (ReadExten, ends with #
or the digit timeout: Read would put the digits in the verbose log).
The PIN each extension compares with comes from the secrets (the agent's pin_env), so this file is written
0600 like pjsip_hotline.conf; extensions_hotline.conf includes it. An agent whose PIN is not set cannot log in.

Membership survives an Asterisk restart through app_queue itself: with `persistentmembers=yes` in queues.conf
[general], every dynamic member added or removed is stored in the astdb (Queue/PersistentMembers/<queue>)
and added back when app_queue loads.
Phones reach the codes when their context has `include => hotline-agents`.

Skills (routing.agents): the member's penalty carries its skill band (`Roster.member_penalty`); each queue
context with skilled agents sets, before Queue(), QUEUE_MIN/MAX_PENALTY to the band range of the first skill
the call's HOTLINE_TAGS names (`skill_steps`), or for a call with none to the agents without skills (QUEUE_MIN_
PENALTY = the floor: the skilled stay free for their calls). queuerules_hotline.conf opens every call of such
a queue to every member after `skill_first_seconds` (app_queue's penaltychange; the queue's defaultrule).
"""
from __future__ import annotations

from pathlib import PurePath

from dialplan.common import RenderError, comment_text, header, join_lines
from dialplan.conftext import Exten, Section, document
from dialplan.facts import Facts
from dialplan.options import RenderOptions
from dialplan.pin import PIN, add_pin_check, add_refusal
from routing.agents import Agent

FILENAME = "extensions_hotline_agents.conf"
RULES_FILENAME = "queuerules_hotline.conf"
SKILL_RULE = "hotline-skills"
WIDE_OPEN = 1000          # QUEUE_MAX_PENALTY once a skilled call is opened to everyone (penalties are <= 100 + bands)
CTX_AGENTS = "hotline-agents"
LOGIN, LOGOUT = "*91", "*92"


def render_agents(facts: Facts, options: RenderOptions) -> str:
    roster = options.agents
    head = header(FILENAME, facts.table, f"Agent login ({LOGIN}<agent>) and logout ({LOGOUT}<agent>) with a PIN. "
                  "Included by extensions_hotline.conf. Holds the PINs: mode 0600.")
    ctx = Section(CTX_AGENTS)
    ctx.comment("include => hotline-agents from the agents' phone context. persistentmembers=yes in queues.conf")
    ctx.comment("keeps logged-in agents across an Asterisk restart (app_queue stores them in the astdb).")
    if roster is None:
        ctx.comment("No agents file was given to the render: every code is refused.")
    else:
        ctx.comment(f"Agents file {comment_text(PurePath(roster.source).name)} version {roster.version}.")
        for agent in roster.agents:
            pin = options.secrets.get(agent.pin_env)
            if pin is not None and not PIN.match(pin):
                raise RenderError(f"{agent.pin_env} (agent {agent.number}'s PIN) must be 4 to 12 digits")
            ctx.exten(_code(LOGIN, agent, pin, options))
            ctx.exten(_code(LOGOUT, agent, pin, options))
    ctx.note("A wrong or missing PIN: a pause against guessing, the announcement, hang up.")
    add_refusal(ctx, "agent ${HOTLINE_AGENT} ${HOTLINE_AGENT_CODE}", options.prompt_agent_refused)
    return join_lines(document(head, [ctx]))


def _code(code: str, agent: Agent, pin: str | None, options: RenderOptions) -> Exten:
    login = code == LOGIN
    what = "login" if login else "logout"
    exten = Exten(f"{code}{agent.number}")
    exten.add(f"NoOp(hotline: agent {agent.number} {what})")
    exten.add(f"Set(HOTLINE_AGENT={agent.number})")
    exten.add(f"Set(HOTLINE_AGENT_CODE={what})")
    exten.add("Answer()")
    if pin is None:
        exten.add(f"NoOp(hotline: {agent.pin_env} was not set at render time: agent {agent.number} cannot log in)")
        return exten.add(f"Goto({CTX_AGENTS},refused,1)")
    add_pin_check(exten, pin, options.prompt_agent_pin, f"{CTX_AGENTS},refused,1")
    for queue, _ in agent.queues:
        penalty = options.agents.member_penalty(agent, queue)
        if login:
            state = f",{agent.state_interface}" if agent.state_interface else ""
            exten.add(f"AddQueueMember({queue},{agent.interface},{penalty},,{agent.name}{state})")
            exten.add(f"NoOp(hotline: agent {agent.number} {queue} ${{AQMSTATUS}})")
        else:
            exten.add(f"RemoveQueueMember({queue},{agent.interface})")
            exten.add(f"NoOp(hotline: agent {agent.number} {queue} ${{RQMSTATUS}})")
    exten.add(f"Playback({options.prompt_agent_logged_in if login else options.prompt_agent_logged_out})")
    return exten.add("Hangup()")


def render_queue_rules(facts: Facts, options: RenderOptions) -> str:
    """queuerules_hotline.conf: the rule that opens a skilled call to every member of its queue after a while."""
    roster = options.agents
    head = header(RULES_FILENAME, facts.table, "Queue rules of the agents' skills. Include it from "
                  "queuerules.conf; queues with skilled agents name it as defaultrule.")
    section = Section(SKILL_RULE)
    if roster is None or not roster.skill_bands:
        section.comment("No agent has a skill: no queue uses this rule.")
    else:
        seconds, floor = roster.skill_first_seconds, roster.generalist_floor
        section.comment(f"After {seconds} s every call of a queue with skilled agents rings every member (min 0, max "
                        f"{WIDE_OPEN}); skilled agents then rank with penalty-0 agents (raise to {floor}).")
        section.comment("Until then a call rings the agents of its skill, or without skills (the queue context).")
    # an empty rule is valid: app_queue keeps the variables as the dialplan set them
    if roster is not None and roster.skill_bands:
        section.body.append(f"penaltychange => {roster.skill_first_seconds},{WIDE_OPEN},0,{roster.generalist_floor}")
    return join_lines(document(head, [section]))


def queue_has_skills(options: RenderOptions, queue_id: str) -> bool:
    return options.agents is not None and bool(options.agents.queue_skills(queue_id))


def skill_steps(options: RenderOptions, queue_id: str, queue_label: str) -> list[tuple[str, str | None]]:
    """(application, label) lines a queue context runs before Queue() (at `queue_label`) to apply skills."""
    roster = options.agents
    if roster is None or not roster.queue_skills(queue_id):
        return []
    skills = roster.queue_skills(queue_id)
    steps: list[tuple[str, str | None]] = [
        (f"NoOp(hotline: skills in {queue_id}: {' '.join(skills)} - tagged calls ring those agents first)", None),
    ]
    for index, skill in enumerate(skills, 1):
        steps.append((f"GotoIf($[${{FIELDNUM(HOTLINE_TAGS,+,{skill})}} > 0]?skill_{index})", None))
    # A call with no skill tag rings the agents without skills first (the skilled stay free for their calls);
    # the same rule opens it to everyone. Set here, all three, so that the rule may change them.
    steps += [(f"Set(QUEUE_MIN_PENALTY={roster.generalist_floor})", None),
              (f"Set(QUEUE_MAX_PENALTY={WIDE_OPEN})", None),
              ("Set(QUEUE_RAISE_PENALTY=0)", None)]
    steps.append((f"Goto({queue_label})", None))
    for index, skill in enumerate(skills, 1):
        low, high = roster.skill_window(skill)
        steps += [(f"Set(QUEUE_MIN_PENALTY={low})", f"skill_{index}"),
                  (f"Set(QUEUE_MAX_PENALTY={high})", None),
                  ("Set(QUEUE_RAISE_PENALTY=0)", None),
                  (f"NoOp(hotline: skill {skill}: penalties {low}-{high} first, all after "
                   f"{roster.skill_first_seconds} s)", None),
                  (f"Goto({queue_label})", None)]
    return steps
