"""extensions_hotline.conf: every DID to the engine, the engine's answer to Asterisk, and fail-open paths.

Naming rule: queue and trunk ids (which contain '-') only ever become *context* names. Asterisk ignores '-'
when it matches non-pattern extension names ("expert-12320" would also match "expert12320" and clash with
look-alikes), so extensions here are only digits, `s`, `i`, `T` and plain words, and the engine's
HOTLINE_TARGET is checked by an explicit GotoIf chain (the whitelist) instead of being used as an extension.
Values set by others (the engine's HOTLINE_*, AMI's HOTLINE_CONF) never enter a $[...] expression raw: a quote
or operator inside them could change the expression. They are first reduced with FILTER() to the characters
an id may have, and a length mismatch (LEN) marks them malformed. A value that is not exactly one of the ids
falls through every comparison to fail-open handling: there is no dead end.
"""
from __future__ import annotations

import re

from dialplan.agents import FILENAME as AGENTS_FILENAME, skill_steps
from dialplan.switches import FILENAME as SWITCHES_FILENAME
from dialplan.common import RenderError, comment_text, header, join_lines
from dialplan.conftext import Exten, Section, document
from dialplan.facts import Facts, TransferTarget
from dialplan.pin import pin_entry_section
from dialplan.options import AGI_SCRIPT, RenderOptions
from routing.decide import UNKNOWN_TAG
from routing.model import EmergencyRetry, Queue, Trunk

FILENAME = "extensions_hotline.conf"

CTX_CARRIER = "hotline-from-carrier"
CTX_ENGINE = "hotline-engine"
CTX_FAILOPEN = "hotline-failopen"
CTX_ACTION = "hotline-action-{}"
CTX_QUEUE = "hotline-queue-{}"
CTX_TRUNK = "hotline-trunk-{}"
CTX_EMERGENCY = "hotline-emergency"
CTX_EMERGENCY_ROUTE = "hotline-emergency-route-{}"
CTX_WARM = "hotline-warm-transfer"
CTX_THREEWAY = "hotline-threeway"
CTX_ESCALATE = "hotline-escalate"

ACTIONS = ("queue", "dial", "hangup", "callback")     # HOTLINE_ACTION values of the contract
QUEUE_OPTIONS = "tT"     # t: the agent may transfer (AMI Atxfer needs it), T: the caller may (see NOTES.md)
DIAL_TIMEOUT = 60        # seconds a trunk may ring for HOTLINE_ACTION=dial (emergency: the table's retry)
GENERAL_TRIES = 3        # the general queue only returns if it is missing or full: retry, then announce


def queue_context(queue_id: str) -> str:
    return CTX_QUEUE.format(queue_id)


def failopen(reason: str) -> list[tuple[str | None, str]]:
    """Steps that send the call to fail-open handling for its dialed line (kept from the DID step)."""
    return [(None, f"Set(HOTLINE_FAILOPEN={reason})"),
            (None, f"Goto({CTX_FAILOPEN},${{HOTLINE_DIALED}},1)")]


def sanitize(raw: str, safe: str, allowed: str, malformed_label: str) -> list[tuple[str | None, str]]:
    """Copy ${raw} into ${safe} keeping only `allowed` (FILTER ranges); jump if anything was dropped."""
    return [(None, f"Set({safe}=${{FILTER({allowed},${{{raw}}})}})"),
            (None, f"GotoIf($[${{LEN(${{{safe}}})}} != ${{LEN(${{{raw}}})}}]?{malformed_label})")]


ID_CHARS = "-0-9a-z"          # FILTER: '-' first is literal, then ranges; queue and trunk ids
VERSION_CHARS = "-0-9A-Za-z"  # the table version the engine reports (a content hash)
ROOM_CHARS = "-0-9A-Za-z_."   # ConfBridge room names from AMI: no ',' (it would add ConfBridge options)
CALLER_CHARS = "+0-9"          # a caller's number as a transfer leg presents it
PRES_CHARS = "_a-z"           # CALLERID(pres) names: allowed_not_screened, prohib, ...


def _add_all(exten: Exten, steps: list[tuple[str | None, str]], first_label: str | None = None) -> None:
    for index, (label, app) in enumerate(steps):
        exten.add(app, first_label if index == 0 and first_label else label)


def render_extensions(facts: Facts, options: RenderOptions) -> str:
    sections = [
        _carrier(facts, options),
        _engine(facts, options),
        _failopen(facts),
        _action_queue(facts),
        _action_dial(facts),
        _action_hangup(),
        _action_callback(),
        *[_queue(facts, options, q) for q in facts.queues],
        *[_trunk(t) for t in facts.dial_trunks if t.kind != "emergency"],
        _emergency(facts),
        *[_emergency_route(facts, target.trunk) for target in _emergency_routes(facts)],
        _warm(facts),
        _threeway(facts),
        _escalate(facts),
        pin_entry_section(),      # where the agents' and switches' PIN entry is matched (dialplan.pin)
    ]
    head = header(FILENAME, facts.table, "Dialplan: DIDs -> FastAGI engine -> queue/trunk, failing open to "
                  f"{facts.general}. Include it from extensions.conf.")
    head += [
        ";",
        "; Channel variables read from the engine (contract): HOTLINE_ACTION queue|dial|hangup|callback,",
        "; HOTLINE_TARGET queue or trunk id, HOTLINE_LINE, HOTLINE_TAGS, HOTLINE_CALLBACK.",
        "; Set here: HOTLINE_DIALED (the DID), HOTLINE_FAILOPEN (why the engine's answer was not used),",
        "; HOTLINE_QUEUE (the queue the caller is in now).",
        "; Extensions are digits or plain words only: Asterisk ignores '-' when matching non-pattern",
        "; extensions, so ids with '-' are compared in GotoIf chains and used in context names (the one",
        "; exception, hotline-escalate, checks at render time that no two ids differ only by '-').",
    ]
    agents = ["", "; Agent login/logout codes (context hotline-agents): a file of their own, 0600, as it holds the PINs.",
              f"#include {AGENTS_FILENAME}",
              "; Override switches from a phone (context hotline-switches): their own file, 0600, for the PINs.",
              f"#include {SWITCHES_FILENAME}"]
    return join_lines(document(head, sections) + agents)


def _carrier(facts: Facts, options: RenderOptions) -> Section:
    ctx = Section(CTX_CARRIER)
    ctx.comment("Inbound DIDs from the carrier trunk(s): every line of the table and 12345.")
    ctx.comment("HOTLINE_FAILOPEN_TAGS is the line's tag set used if the engine cannot answer.")
    for did in facts.dids:
        timeout = options.emergency_engine_timeout if did.emergency_trunk else options.engine_timeout
        ctx.exten(Exten(did.number)
                  .add(f"Set(HOTLINE_FAILOPEN_TAGS={did.failopen_tags})")
                  .add(f"Set(HOTLINE_ENGINE_TIMEOUT={timeout})")
                  .add(f"Goto({CTX_ENGINE},${{EXTEN}},1)"))
    ctx.note("Numbers the table does not know: the engine gives them general handling.")
    ctx.exten(Exten("_X.")
              .add(f"Set(HOTLINE_FAILOPEN_TAGS={UNKNOWN_TAG}+failopen)")
              .add(f"Set(HOTLINE_ENGINE_TIMEOUT={options.engine_timeout})")
              .add(f"Goto({CTX_ENGINE},${{EXTEN}},1)"))
    ctx.note("No usable DID (non-digits, or none): treat as 12345.")
    ctx.exten(Exten("s").add(f"Goto({CTX_CARRIER},12345,1)"))
    ctx.exten(Exten("i").add(f"Goto({CTX_CARRIER},12345,1)"))
    return ctx


def _engine(facts: Facts, options: RenderOptions) -> Section:
    ctx = Section(CTX_ENGINE)
    ctx.comment("The engine runs the IVR over FastAGI and sets HOTLINE_* variables; arg 1 is the dialed number.")
    ctx.comment("Engines are tried in order; the next one only when AGI() could not connect (AGISTATUS=FAILURE:")
    ctx.comment("refused, or no answer within res_agi's 2 s connect limit; hagi:// walks the DNS SRV records).")
    ctx.comment("Stalled engine: AGI() has no time limit of its own, so TIMEOUT(absolute) bounds the step. When it")
    ctx.comment("expires, res_agi sends HANGUP; AGIEXITONHANGUP=yes makes it leave AGI at once instead of waiting")
    ctx.comment("for the engine without limit, and the T extension runs: it carries out a decision the engine had")
    ctx.comment("already set (HOTLINE_ACTION is set last), else fails open. Commands the engine sends after that are")
    ctx.comment("lost (EOF). The timeout is cleared as soon as AGI() returns: it never cuts a queued or connected call.")
    exten = Exten("_X.")
    exten.add("NoOp(hotline: ${EXTEN} to the routing engine)")
    exten.add("Set(HOTLINE_DIALED=${EXTEN})")
    exten.add("Set(HOTLINE_CALLER_NAME=${CALLERID(name)})")
    # The citizen's number and presentation, inherited (__) by every channel this call leads to: queue members,
    # and from the agent's channel the warm-transfer leg, which otherwise presents the agent's caller ID.
    exten.add("Set(__HOTLINE_CALLER_NUM=${CALLERID(num)})")
    exten.add("Set(__HOTLINE_CALLER_PRES=${CALLERID(pres)})")
    exten.add("Set(AGIEXITONHANGUP=yes)")
    exten.add("Set(TIMEOUT(absolute)=${HOTLINE_ENGINE_TIMEOUT})")
    for index, engine in enumerate(options.engines):
        if index:
            exten.add('GotoIf($["${AGISTATUS}" != "FAILURE"]?engine_done)')
            # FAILURE after the engine decided (it sets HOTLINE_ACTION last) is not a dead engine: running the
            # IVR again on the next one would make the caller go through it twice.
            exten.add("GotoIf($[${LEN(${HOTLINE_ACTION})} > 0]?engine_done)")
        exten.add(f"AGI({engine}/{AGI_SCRIPT},${{EXTEN}})")
    exten.add("Set(TIMEOUT(absolute)=0)", "engine_done")
    exten.add("NoOp(engine answered ${AGISTATUS}: ${HOTLINE_ACTION} ${HOTLINE_TARGET})")
    # HANGUP: Asterisk itself ends the dialplan after AGI() returns -1; kept so a change there cannot queue a
    # caller who is gone.
    exten.add('GotoIf($["${AGISTATUS}" = "HANGUP"]?caller_gone)')
    exten.add('GotoIf($["${AGISTATUS}" = "SUCCESS"]?engine_ok)')
    exten.add('GotoIf($["${AGISTATUS}" = "NOTFOUND"]?engine_notfound)')
    # FAILURE: no engine answered, or one answered and a command failed on the live channel (res_agi keeps
    # FAILURE when STREAM FILE/GET OPTION cannot open a sound). A decision the engine finished stands.
    exten.add("GotoIf($[${LEN(${HOTLINE_ACTION})} = 0]?engine_failure)")
    exten.add("Log(WARNING,AGI ended ${AGISTATUS} after the engine decided: "
              "check the engine log for ivr.prompt_unplayable - missing sound files)")
    exten.add("GotoIf($[${LEN(${HOTLINE_ACTION})} = 0]?no_action)", "engine_ok")
    version = facts.table.version
    checks_version = re.match(r"^[-0-9A-Za-z]+$", version) is not None
    if checks_version:
        # The engine names the table it decided with; a different one means this file is stale (or the
        # engine's): say so loudly, and still only obey what the whitelists below accept.
        exten.add(f"Set(HOTLINE_SAFE_TABLE=${{FILTER({VERSION_CHARS},${{HOTLINE_TABLE}})}})")
        exten.add(f'GotoIf($["${{HOTLINE_SAFE_TABLE}}" = "{version}"]?table_ok)')
        exten.add(f"Log(WARNING,engine routing table ${{HOTLINE_SAFE_TABLE}} differs from the dialplan table "
                  f"{version} - render the dialplan again)")
    _add_all(exten, sanitize("HOTLINE_ACTION", "HOTLINE_SAFE_ACTION", "a-z", "unknown_action"),
             "table_ok" if checks_version else None)
    for action in ACTIONS:
        exten.add(f'GotoIf($["${{HOTLINE_SAFE_ACTION}}" = "{action}"]?{CTX_ACTION.format(action)},s,1)')
    _add_all(exten, failopen("unknown-action"), "unknown_action")
    exten.add("Hangup()", "caller_gone")
    _add_all(exten, failopen("engine-failure"), "engine_failure")
    _add_all(exten, failopen("engine-notfound"), "engine_notfound")
    _add_all(exten, failopen("no-action"), "no_action")
    ctx.exten(exten)
    timeout = Exten("T")
    timeout.add("NoOp(engine timed out after ${HOTLINE_ENGINE_TIMEOUT} s: ${HOTLINE_ACTION} ${HOTLINE_TARGET})")
    timeout.add("GotoIf($[${LEN(${HOTLINE_ACTION})} > 0]?decided)")
    _add_all(timeout, failopen("engine-timeout"))
    timeout.add("Log(WARNING,engine step timed out after the engine decided: carrying out its decision)", "decided")
    timeout.add(f"Goto({CTX_ENGINE},${{HOTLINE_DIALED}},engine_ok)")
    ctx.exten(timeout)
    return ctx


def _failopen(facts: Facts) -> Section:
    ctx = Section(CTX_FAILOPEN)
    ctx.comment(f"The engine could not decide: the call still reaches {facts.general} (24/7) with its line and")
    ctx.comment("tags so agents see where it came from. Emergency linkage lines are dialed instead: never queued.")
    general = Exten("_X.")
    general.add(f"NoOp(fail open (${{HOTLINE_FAILOPEN}}): line ${{EXTEN}} to {facts.general})")
    general.add("Set(HOTLINE_LINE=${EXTEN})")
    general.add("Set(HOTLINE_TAGS=${HOTLINE_FAILOPEN_TAGS})")
    general.add("Set(CALLERID(name)=[${EXTEN}] ${HOTLINE_CALLER_NAME})")
    general.add(f"Goto({queue_context(facts.general)},s,1)")
    ctx.exten(general)
    for did in facts.dids:
        if did.emergency_trunk is None:
            continue
        ctx.exten(Exten(did.number)
                  .add(f"NoOp(fail open (${{HOTLINE_FAILOPEN}}): emergency line {did.number} dialed at once)")
                  .add("Set(HOTLINE_LINE=${EXTEN})")
                  .add("Set(HOTLINE_TAGS=${HOTLINE_FAILOPEN_TAGS})")
                  .add(f"Goto({CTX_EMERGENCY},{did.emergency_trunk.dial},1)"))
    ctx.exten(Exten("i").add(f"Goto({CTX_FAILOPEN},12345,1)"))
    return ctx


def _action_queue(facts: Facts) -> Section:
    ctx = Section(CTX_ACTION.format("queue"))
    ctx.comment("HOTLINE_ACTION=queue: HOTLINE_TARGET must be one of the table's queues (generated whitelist).")
    exten = Exten("s")
    _add_all(exten, sanitize("HOTLINE_TARGET", "HOTLINE_SAFE_TARGET", ID_CHARS, "unknown"))
    for queue in facts.queues:
        exten.add(f'GotoIf($["${{HOTLINE_SAFE_TARGET}}" = "{queue.id}"]?{queue_context(queue.id)},s,1)')
    _add_all(exten, failopen("unknown-queue"), "unknown")
    return ctx.exten(exten)


def _action_dial(facts: Facts) -> Section:
    ctx = Section(CTX_ACTION.format("dial"))
    ctx.comment("HOTLINE_ACTION=dial: HOTLINE_TARGET must be one of the table's trunks (the carrier excluded).")
    exten = Exten("s")
    _add_all(exten, sanitize("HOTLINE_TARGET", "HOTLINE_SAFE_TARGET", ID_CHARS, "unknown"))
    for trunk in facts.dial_trunks:
        goto = (f"{CTX_EMERGENCY},{trunk.dial},1" if trunk.kind == "emergency"
                else f"{CTX_TRUNK.format(trunk.id)},s,1")
        exten.add(f'GotoIf($["${{HOTLINE_SAFE_TARGET}}" = "{trunk.id}"]?{goto})')
    _add_all(exten, failopen("unknown-trunk"), "unknown")
    return ctx.exten(exten)


def _action_hangup() -> Section:
    ctx = Section(CTX_ACTION.format("hangup"))
    ctx.comment("HOTLINE_ACTION=hangup: the engine already played the prompts that were the whole answer.")
    return ctx.exten(Exten("s").add("Hangup()"))


def _action_callback() -> Section:
    ctx = Section(CTX_ACTION.format("callback"))
    ctx.comment("HOTLINE_ACTION=callback: the engine captured HOTLINE_CALLBACK, confirmed it to the caller in their")
    ctx.comment("language (the menus' accepted_prompt, the one goodbye) and writes the request: hang up.")
    ctx.comment("No number captured: fail open rather than drop the caller.")
    exten = Exten("s")
    exten.add("GotoIf($[${LEN(${HOTLINE_CALLBACK})} = 0]?no_number)")
    exten.add("Hangup()")
    _add_all(exten, failopen("callback-without-number"), "no_number")
    return ctx.exten(exten)


QUEUE_LEFT_EVENT = "HotlineQueueLeft"  # UserEvent name: overflow, not abandon (see _queue)
QUEUED_EVENT = "HotlineQueued"         # UserEvent name: the caller enters a queue; Dialed: HOTLINE_DIALED


def _queue(facts: Facts, options: RenderOptions, queue: Queue) -> Section:
    ctx = Section(queue_context(queue.id))
    ctx.comment(comment_text(f"{queue.id}: {queue.name}"))
    ctx.comment("Option T lets the caller start a transfer too; the caller's transfer context is this one, whose")
    ctx.comment("only extension is s, so a caller's *2 reaches nothing.")
    ctx.comment(f"{QUEUE_LEFT_EVENT}: the caller is moved on (app_queue's QueueCallerAbandon says so for a hang-up too).")
    ctx.comment(f"{QUEUED_EVENT}: the number the caller dialed, for the outcome record (AMI class user: VarSet is not).")
    exten = Exten("s")
    exten.add(f"Set(HOTLINE_QUEUE={queue.id})")
    exten.add(f"UserEvent({QUEUED_EVENT},Queue: {queue.id},Dialed: ${{HOTLINE_DIALED}})")
    label = "join" if queue.id == facts.general else "queue"
    if queue.id == facts.general:
        exten.add("Set(HOTLINE_GENERAL_TRIES=0)")
    steps = skill_steps(options, queue.id, label)
    for app, step_label in steps:
        exten.add(app, step_label)
    label = label if steps else None
    if queue.overflow is not None:
        ctx.comment(f"Overflow: after {queue.overflow.after_seconds} s unanswered (or nobody logged in) "
                    f"to {queue.overflow.to}.")
        exten.add(f"Queue({queue.id},{QUEUE_OPTIONS},,,{queue.overflow.after_seconds})", label)
        exten.add(_queue_left(queue.id, queue.overflow.to))
        exten.add(f"Goto({queue_context(queue.overflow.to)},s,1)")
    elif queue.id != facts.general:
        ctx.comment(f"No overflow of its own: an unanswered caller goes on to {facts.general}.")
        exten.add(f"Queue({queue.id},{QUEUE_OPTIONS})", label)
        exten.add(_queue_left(queue.id, facts.general))
        exten.add(f"Goto({queue_context(facts.general)},s,1)")
    else:
        ctx.comment("The last resort (joinempty=yes, leavewhenempty=no, no timeout): Queue() only returns if the")
        ctx.comment("queue is missing or full; retry, then a clear announcement rather than silence.")
        exten.add(f"Queue({queue.id},{QUEUE_OPTIONS})", "join")
        exten.add("Set(HOTLINE_GENERAL_TRIES=${INC(HOTLINE_GENERAL_TRIES)})")
        exten.add(_queue_left(queue.id, f"${{IF($[${{HOTLINE_GENERAL_TRIES}} < {GENERAL_TRIES}]?{queue.id}:)}}"))
        exten.add(f"GotoIf($[${{HOTLINE_GENERAL_TRIES}} < {GENERAL_TRIES}]?retry)")
        exten.add(f"Playback({options.prompt_all_busy})")
        exten.add("Hangup()")
        exten.add("Wait(2)", "retry")
        exten.add("Goto(join)")
    return ctx.exten(exten)


def _queue_left(queue_id: str, next_queue: str) -> str:
    """The caller left `queue_id` unanswered and is still on the line: the table sends it on to `next_queue`
    (empty: nowhere, the queues gave up). Read by supervisor/state.py and records/outcomes.py (AMI class user)."""
    return f"UserEvent({QUEUE_LEFT_EVENT},Queue: {queue_id},Status: ${{QUEUESTATUS}},Next: {next_queue})"


def _trunk(trunk: Trunk) -> Section:
    ctx = Section(CTX_TRUNK.format(trunk.id))
    ctx.comment(comment_text(f"HOTLINE_ACTION=dial to {trunk.id}: {trunk.name}. Unanswered: fail open."))
    exten = Exten("s")
    exten.add(f"Dial(PJSIP/{trunk.dial}@{trunk.id},{DIAL_TIMEOUT})")
    exten.add('GotoIf($["${DIALSTATUS}" = "ANSWER"]?done)')
    _add_all(exten, failopen("dial-${DIALSTATUS}"))
    exten.add("Hangup()", "done")
    return ctx.exten(exten)


def _emergency(facts: Facts) -> Section:
    ctx = Section(CTX_EMERGENCY)
    ctx.comment("Emergency linkage: dialed at once, never queued, no business-hours check (no GotoIfTime, no")
    ctx.comment("Queue). Used by HOTLINE_ACTION=dial, by fail-open of the emergency lines and by the agents'")
    ctx.comment("hand-over: AMI Redirect (or BlindTransfer) of the caller to hotline-emergency,<digits>,1.")
    ctx.comment("Each trunk's retry (the table's emergency section) is in its hotline-emergency-route-<trunk> context.")
    for target in facts.emergency:
        ctx.exten(Exten(target.digits)
                  .add(comment_noop(f"emergency linkage {target.digits} over {target.trunk.id}"))
                  .add(f"Goto({CTX_EMERGENCY_ROUTE.format(target.trunk.id)},s,1)"))
    return ctx


def _emergency_routes(facts: Facts) -> list[TransferTarget]:
    """Every emergency trunk (the `next` routes the table names are emergency trunks too: routing.checks)."""
    return sorted(facts.emergency, key=lambda t: t.trunk.id)


def _emergency_route(facts: Facts, trunk: Trunk) -> Section:
    retry: EmergencyRetry = facts.table.retry_for(trunk.id)
    ctx = Section(CTX_EMERGENCY_ROUTE.format(trunk.id))
    then = (f"then {retry.next}" if retry.next else "then hang up")
    ctx.comment(comment_text(f"{trunk.id}: up to {retry.attempts} attempts of at most {retry.ring_seconds} s, "
                             f"{retry.pause_seconds} s apart, all within {retry.within_seconds} s; then "
                             f"{retry.announce}, {then}."))
    ctx.comment("A trunk that fails at once (busy, congestion, down) is retried after the pause, not in a burst;")
    ctx.comment("one that rings out is cut at the overall bound (EPOCH: whole seconds).")
    exten = Exten("s")
    exten.add(comment_noop(f"emergency route {trunk.id}"))
    exten.add("Set(HOTLINE_EMERGENCY_TRIES=0)")
    exten.add(f"Set(HOTLINE_EMERGENCY_UNTIL=$[${{EPOCH}} + {retry.within_seconds}])")
    exten.add("Set(HOTLINE_EMERGENCY_RING=$[${HOTLINE_EMERGENCY_UNTIL} - ${EPOCH}])", "dial")
    exten.add("GotoIf($[${HOTLINE_EMERGENCY_RING} < 1]?unreachable)")
    exten.add(f"GotoIf($[${{HOTLINE_EMERGENCY_RING}} <= {retry.ring_seconds}]?ring)")
    exten.add(f"Set(HOTLINE_EMERGENCY_RING={retry.ring_seconds})")
    exten.add(f"Dial(PJSIP/{trunk.dial}@{trunk.id},${{HOTLINE_EMERGENCY_RING}})", "ring")
    exten.add('GotoIf($["${DIALSTATUS}" = "ANSWER"]?done)')
    exten.add("Set(HOTLINE_EMERGENCY_TRIES=${INC(HOTLINE_EMERGENCY_TRIES)})")
    exten.add(f"GotoIf($[${{HOTLINE_EMERGENCY_TRIES}} >= {retry.attempts}]?unreachable)")
    if retry.pause_seconds:
        exten.add("Ringing()")      # the caller hears ringback through the pause, never silence
        exten.add(f"Wait({retry.pause_seconds})")
    exten.add("Goto(dial)")
    exten.add(f"Playback({retry.announce})", "unreachable")
    if retry.next:
        exten.add(f"Goto({CTX_EMERGENCY_ROUTE.format(retry.next)},s,1)")
    else:
        exten.add("Hangup()")
    exten.add("Hangup()", "done")
    return ctx.exten(exten)


def comment_noop(text: str) -> str:
    return f"NoOp({text})"


def _warm(facts: Facts) -> Section:
    ctx = Section(CTX_WARM)
    ctx.comment("Warm (attended) transfer to the retained seats. AMI: Action Atxfer, Channel=<agent channel>,")
    ctx.comment("Context=hotline-warm-transfer, Exten=<digits> (sent as DTMF after the atxfer code, so digits).")
    ctx.comment("Unanswered within the rule's no_answer_seconds: this leg hangs up and the agent is back with the")
    ctx.comment("caller (features: atxferdropcall=no calls the agent back if they had already hung up).")
    ctx.comment("Emergency digits lead to hotline-emergency (no queue, no time check): an agent's attended")
    ctx.comment("transfer to 110/119/120/122, or a caller Redirected here for the hand-over, is dialed at once.")
    ctx.comment("Unknown digits: a redirected caller (HOTLINE_DIALED set) fails open; an agent's leg hangs up.")
    for target in facts.warm:
        ctx.exten(_transfer_leg(target))
    for target in facts.emergency:
        exten = Exten(target.digits).add(f"NoOp(emergency transfer or hand-over to {target.trunk.id})")
        _add_all(exten, caller_identity("emergency"))
        ctx.exten(exten.add(f"Goto({CTX_EMERGENCY},{target.digits},1)", "emergency"))
    invalid = Exten("i")
    invalid.add("GotoIf($[${LEN(${HOTLINE_DIALED})} = 0]?agent_leg)")
    _add_all(invalid, failopen("unknown-transfer-target"))
    invalid.add("Hangup()", "agent_leg")
    return ctx.exten(invalid)


def _transfer_leg(target: TransferTarget) -> Exten:
    exten = Exten(target.digits).add(comment_noop(f"transfer leg to {target.trunk.id}"))
    _add_all(exten, caller_identity("dial"))
    return (exten.add(f"Dial(PJSIP/{target.digits}@{target.trunk.id},{target.no_answer_seconds})", "dial")
            .add("Hangup()"))


def caller_identity(then: str) -> list[tuple[str | None, str]]:
    """Steps that give a transfer leg the citizen's number and presentation (the trunk's caller_id then decides
    what the far end sees), continuing at label `then`. The number comes inherited from the agent's channel
    (Atxfer), or from the caller's channel named by HOTLINE_CALLER_CHANNEL (legs AMI originates: three-way).
    Reduced with FILTER before use; nothing known: the leg keeps the caller ID it has."""
    return [
        (None, "GotoIf($[${LEN(${HOTLINE_CALLER_CHANNEL})} = 0]?identity)"),
        (None, "Set(HOTLINE_CALLER_NUM=${IMPORT(${HOTLINE_CALLER_CHANNEL},HOTLINE_CALLER_NUM)})"),
        (None, "Set(HOTLINE_CALLER_PRES=${IMPORT(${HOTLINE_CALLER_CHANNEL},HOTLINE_CALLER_PRES)})"),
        ("identity", f"Set(HOTLINE_SAFE_CALLER=${{FILTER({CALLER_CHARS},${{HOTLINE_CALLER_NUM}})}})"),
        (None, f"GotoIf($[${{LEN(${{HOTLINE_SAFE_CALLER}})}} = 0]?{then})"),
        (None, "Set(CALLERID(num)=${HOTLINE_SAFE_CALLER})"),
        (None, f"Set(HOTLINE_SAFE_PRES=${{FILTER({PRES_CHARS},${{HOTLINE_CALLER_PRES}})}})"),
        (None, f"GotoIf($[${{LEN(${{HOTLINE_SAFE_PRES}})}} = 0]?{then})"),
        (None, "Set(CALLERID(pres)=${HOTLINE_SAFE_PRES})"),
    ]


def _threeway(facts: Facts) -> Section:
    ctx = Section(CTX_THREEWAY)
    ctx.comment("Three-way calls (sub-centers, emergency linkage) in a ConfBridge room named hotline-<HOTLINE_CONF>")
    ctx.comment(f"(characters other than {ROOM_CHARS} are dropped).")
    ctx.comment("AMI sequence (ivr/ami/transfers.py): 1. Originate Channel=Local/<digits>@hotline-threeway")
    ctx.comment("Context=hotline-threeway Exten=target Priority=1 Variable=HOTLINE_CONF=<room> (the ;2 half dials")
    ctx.comment("the trunk); only once it answered: 2. Setvar HOTLINE_CONF=<room> on the caller's and the agent's")
    ctx.comment("channels; 3. Redirect Channel=<caller> Context=hotline-threeway Exten=caller Priority=1,")
    ctx.comment("ExtraChannel=<agent> ExtraContext=hotline-threeway ExtraExten=agent ExtraPriority=1.")
    ctx.comment("Caller and target are marked and end_marked_any: when either leaves, the room closes; the agent")
    ctx.comment("may leave at any time without ending it. `conf` joins without a role (the room then closes only")
    ctx.comment("when the last party leaves): prefer caller/agent/target.")
    for role, marked in (("caller", True), ("agent", False), ("target", True), ("conf", False)):
        exten = Exten(role)
        exten.add(f"Set(HOTLINE_ROOM=${{FILTER({ROOM_CHARS},${{HOTLINE_CONF}})}})")
        exten.add("GotoIf($[${LEN(${HOTLINE_ROOM})} = 0]?no_room)")
        if marked:
            exten.add("Set(CONFBRIDGE(user,marked)=yes)")
        exten.add("Set(CONFBRIDGE(user,end_marked_any)=yes)")
        exten.add("Set(CONFBRIDGE(user,quiet)=yes)")
        exten.add("ConfBridge(hotline-${HOTLINE_ROOM})")
        exten.add("Hangup()")
        if role == "caller":
            # A caller sent here without a room must not end up alone in silence.
            _add_all(exten, failopen("threeway-without-room"), "no_room")
        else:
            exten.add("Hangup()", "no_room")
        ctx.exten(exten)
    for target in facts.threeway:
        ctx.exten(_transfer_leg(target))
    return ctx


def _escalate(facts: Facts) -> Section:
    """Queue ids as extensions, made safe: Asterisk ignores '-' when matching a non-pattern extension, so an id
    is only used if no other id equals it with the dashes removed (checked here, a RenderError otherwise)."""
    seen: dict[str, str] = {}
    for queue in facts.queues:
        other = seen.setdefault(queue.id.replace("-", ""), queue.id)
        if other != queue.id:
            raise RenderError(f"queue ids {other} and {queue.id} differ only by '-': Asterisk would match "
                              "either extension for both")
    ctx = Section(CTX_ESCALATE)
    ctx.comment("Move a caller into another queue (escalation to an expert seat, or any table queue), keeping")
    ctx.comment("HOTLINE_LINE, HOTLINE_TAGS, HOTLINE_IVR_PATH and CALLERID(name). AMI: Redirect Channel=<caller>")
    ctx.comment("Context=hotline-escalate Exten=<queue id> Priority=1. The queue context applies its overflow.")
    ctx.comment("Extensions are the queue ids: unique even with '-' ignored (Asterisk's matching), checked at render.")
    for queue in facts.queues:
        ctx.exten(Exten(queue.id)
                  .add(f"NoOp(escalated to {queue.id})")
                  .add(f"Goto({queue_context(queue.id)},s,1)"))
    invalid = Exten("i")
    _add_all(invalid, failopen("unknown-escalation"))
    return ctx.exten(invalid)
