"""PINs keyed on a phone (agents' login codes, override switches): read and compared without being logged.

Read() would log the digits (app_read: `User entered '1234'` at verbose 3); ReadExten logs them only at debug
level. It matches what was keyed against CTX_PIN_ENTRY, which holds patterns of every length 4-12, with or
without the closing #, never a PIN, so keying stops at # or the digit timeout, never at a first wrong digit.
The comparison stays inside the GotoIf expression, so the verbose log shows its result (0 or 1), never a PIN.
"""
from __future__ import annotations

import re

from dialplan.conftext import Exten, Section

CTX_PIN_ENTRY = "hotline-pin-entry"
PIN = re.compile(r"^[0-9]{4,12}$")
PIN_WAIT_SECONDS = 8


def pin_entry_section() -> Section:
    entry = Section(CTX_PIN_ENTRY)
    entry.comment("Only for ReadExten's matching (never dialed into): any 4-12 digits, # or not. Holds no PIN.")
    for digits in range(4, 13):
        for end in ("", "#"):
            entry.exten(Exten(f"_{'X' * digits}{end}").add("NoOp()"))
    return entry


def add_pin_check(exten: Exten, pin: str, prompt: str, refused: str) -> Exten:
    """Ask for the PIN with `prompt`; a wrong one goes to `refused` (context,exten,priority); the right one goes
    on at the label `ok`. HOTLINE_PIN is cleared on both ways."""
    exten.add(f"ReadExten(HOTLINE_PIN,{prompt},{CTX_PIN_ENTRY},,{PIN_WAIT_SECONDS})")
    exten.add(f'GotoIf($["${{FILTER(0-9,${{HOTLINE_PIN}})}}" = "{pin}"]?ok)')
    exten.add("Set(HOTLINE_PIN=)")
    exten.add(f"Goto({refused})")
    return exten.add("Set(HOTLINE_PIN=)", label="ok")


def add_refusal(ctx: Section, what: str, prompt: str) -> None:
    """The `refused` extension a wrong or missing PIN goes to (a pause against guessing, `prompt`, hang up; it
    logs `what` refused, never the digits), and `i` for a code nobody has."""
    ctx.exten(Exten("refused")
              .add(f"NoOp(hotline: {what} refused)")
              .add("Wait(2)")
              .add(f"Playback({prompt})")
              .add("Hangup()"))
    ctx.exten(Exten("i").add("Playback(pbx-invalid)").add("Hangup()"))
