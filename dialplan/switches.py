"""extensions_hotline_switches.conf: the override switches flipped from a phone, with a PIN.

`*95<code>` switches the table's switch with that code on, `*96<code>` off; both ask for the PIN first
(dialplan.pin: ReadExten, ends with #, never logged). The PIN is a secret like the agents' (the switch's pin_env,
default HOTLINE_SWITCH_PIN, from the environment or the secrets file), so this file is written 0600;
extensions_hotline.conf includes it. A switch whose PIN is not set cannot be flipped from a phone. After the PIN
the engine's FastAGI script `switch` writes the flip to the records (who: the calling extension; audited) and
answers HOTLINE_SWITCH_RESULT on|off|failed; the phone hears which. Admins' phones reach the codes with
`include => hotline-switches`.
"""
from __future__ import annotations

from dialplan.common import RenderError, header, join_lines
from dialplan.conftext import Exten, Section, document
from dialplan.facts import Facts
from dialplan.options import RenderOptions
from dialplan.pin import PIN, add_pin_check, add_refusal
from routing.model import Switch

FILENAME = "extensions_hotline_switches.conf"
CTX_SWITCHES = "hotline-switches"
ON, OFF = "*95", "*96"
SCRIPT = "switch"                 # the engine's FastAGI entry (ivr.switchboard.SwitchEntry)


def switch_pin_names(switches) -> list[str]:
    return sorted({s.pin_env for s in switches})


def render_switches(facts: Facts, options: RenderOptions) -> str:
    switches = list(facts.table.switches.values())
    head = header(FILENAME, facts.table, f"Override switches from a phone: {ON}<code> on, {OFF}<code> off, with a "
                  "PIN. Included by extensions_hotline.conf. Holds the PINs: mode 0600.")
    ctx = Section(CTX_SWITCHES)
    ctx.comment("include => hotline-switches from the admins' phone context. The engine records who (the calling")
    ctx.comment("extension), when and why (the code); every engine routes with it within 2 s.")
    if not switches:
        ctx.comment("The routing table declares no switches.")
    for switch in switches:
        pin = options.secrets.get(switch.pin_env)
        if pin is not None and not PIN.match(pin):
            raise RenderError(f"{switch.pin_env} (switch {switch.id}'s PIN) must be 4 to 12 digits")
        ctx.exten(_code(switch, True, pin, options))
        ctx.exten(_code(switch, False, pin, options))
    ctx.note("The PIN was right: ask the engine (each in order while it cannot be reached), say what happened.")
    flip = Exten("flip").add("Set(HOTLINE_SWITCH_RESULT=)").add("Set(AGIEXITONHANGUP=yes)")
    for index, engine in enumerate(options.engines):
        if index:
            flip.add('GotoIf($["${AGISTATUS}" != "FAILURE"]?asked)')
        flip.add(f"AGI({engine}/{SCRIPT},${{HOTLINE_SWITCH}},${{HOTLINE_SWITCH_WANT}})")
    flip.add("NoOp(hotline: switch ${HOTLINE_SWITCH} ${HOTLINE_SWITCH_WANT}: ${AGISTATUS} ${HOTLINE_SWITCH_RESULT})",
             label="asked")
    flip.add('GotoIf($["${HOTLINE_SWITCH_RESULT}" = "on"]?on)')
    flip.add('GotoIf($["${HOTLINE_SWITCH_RESULT}" = "off"]?off)')
    flip.add(f"Playback({options.prompt_switch_failed})").add("Hangup()")
    flip.add(f"Playback({options.prompt_switch_on})", label="on").add("Hangup()")
    flip.add(f"Playback({options.prompt_switch_off})", label="off").add("Hangup()")
    ctx.exten(flip)
    ctx.note("A wrong or missing PIN: a pause against guessing, the announcement, hang up; nothing changes.")
    add_refusal(ctx, "switch ${HOTLINE_SWITCH} ${HOTLINE_SWITCH_WANT}", options.prompt_switch_refused)
    return join_lines(document(head, [ctx]))


def _code(switch: Switch, on: bool, pin: str | None, options: RenderOptions) -> Exten:
    word = "on" if on else "off"
    exten = Exten(f"{ON if on else OFF}{switch.code}")
    exten.add(f"NoOp(hotline: switch {switch.id} {word})")
    exten.add(f"Set(HOTLINE_SWITCH={switch.id})")
    exten.add(f"Set(HOTLINE_SWITCH_WANT={word})")
    exten.add("Answer()")
    if pin is None:
        exten.add(f"NoOp(hotline: {switch.pin_env} was not set at render time: switch {switch.id} cannot be "
                  "flipped from a phone)")
        return exten.add(f"Goto({CTX_SWITCHES},refused,1)")
    add_pin_check(exten, pin, options.prompt_agent_pin, f"{CTX_SWITCHES},refused,1")
    return exten.add(f"Goto({CTX_SWITCHES},flip,1)")
