"""One call's IVR as a sans-I/O state machine: a generator that yields AGI commands and receives their responses.

The driver (FastAGI or classic AGI adapter) does `cmd = next(gen)`, then `cmd = gen.send(response)` until
StopIteration carries the CallOutcome. No sockets, no clock: tests drive it with Response values.

How menus listen for keys (what a real IVR does, i.e. Asterisk's Background() + WaitExten()):
- one-key menus use GET OPTION: the prompt plays, any telephone key interrupts it (barge-in) and is returned
  at once; after the prompt it waits `timeout` for one key. One round trip per attempt; `#` and `*` work.
- menus with longer keys use GET DATA (prompt with barge-in, then digits until max_digits, `#` or timeout).
- without barge-in the prompt plays as STREAM FILE with no escape digits, then GET OPTION / GET DATA listens
  over a second of silence, so early keys are not taken while the prompt talks.
- the route's own announcements before a menu are STREAM FILE with every key as escape digit: a key pressed
  during the greeting skips the rest and counts as the menu choice.

A response with `.hungup` (result -1, the lone HANGUP line, 511) ends the session: only SET VARIABLE follows,
so that when "hangup" was really a missing sound file (Asterisk answers it with result=-1 too), the dialplan
still finds the decision and the call is not lost. With the generated dialplan's AGIEXITONHANGUP=yes a real
hang-up, an AMI Redirect or the engine timeout closes the session at once (HANGUP, HANGUP, EOF): the driver then
answers every further command as a dead channel (511) without sending it, so the outcome is still computed.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Generator, Mapping

from ivr import calllog
from ivr.agi.commands import (Answer, ChannelStatus, Command, GetData, GetOption, Response, SayDigits, SetVariable,
                              StreamFile)
from ivr.menu_values import DTMF_KEYS, SILENCE, Destination, Kind, Menu, Menus
from routing.decide import overflow_chain, to_queue
from routing.model import Action, Category, Route, RoutingTable
from routing.privacy import mask_number

_RESULT_TEXT = re.compile(r"result=(\S*)")
_CONFIRM_KEYS = "12"
_NO_RESPONSE = Response(code=0)

_LOG = calllog.get_logger("ivr.session")


@dataclass(frozen=True)
class CallOutcome:
    route: Route                 # the Route finally taken (after menu choices)
    action: Action
    target: str | None           # queue id or trunk id
    ivr_path: tuple[str, ...]    # menus visited and keys pressed ("t": no key before the timeout)
    language: str                # "zh" | "en"
    hungup: bool                 # the caller hung up (or was redirected) during the IVR
    callback_number: str | None
    variables: Mapping[str, str]


class _ChannelGone(Exception):
    """The channel hung up (or was redirected): stop talking to it."""


class _PromptUnplayable(Exception):
    """Asterisk could not open a sound file; the channel is alive."""


def key_of(response: Response) -> str:
    """GET OPTION / STREAM FILE: result is the ASCII code of the key pressed, 0 for none.

    "" means no key; "?" a result that is no telephone key (never matches an option, counts as invalid).
    """
    if response.code != 200 or response.result is None or response.result <= 0:
        return ""
    if response.result < 128 and chr(response.result) in DTMF_KEYS:
        return chr(response.result)
    return "?"


def digits_of(response: Response) -> str:
    """GET DATA: `200 result=<digits>` or `200 result=<digits> (timeout)`; "" when nothing was entered.

    The digits are read from the raw line when the codec kept it, because as an integer `result` loses
    leading zeros and cannot hold `*`. Anything but telephone keys comes back as "?" (invalid input).
    """
    if response.code != 200:
        return ""
    match = _RESULT_TEXT.search(response.raw or "")
    if match:
        text = match.group(1)
    elif response.result is not None and response.result >= 0:
        text = str(response.result)
    else:
        text = ""
    if text and any(ch not in DTMF_KEYS for ch in text):
        return "?"
    return text


def tagged_caller_name(line: str, env: Mapping[str, str]) -> str:
    """CALLERID(name) as agents see it: `[line] name` (a name tagged by an earlier pass is tagged once)."""
    name = (env.get("calleridname") or "").strip()
    if name.lower() == "unknown":
        name = ""
    if name.startswith("[") and "] " in name:
        name = name.split("] ", 1)[1]
    return f"[{line}] {name}".rstrip()


def _own_number(callerid: str | None) -> str | None:
    number = (callerid or "").strip().lstrip("+")
    return number if number.isascii() and number.isdigit() and 5 <= len(number) <= 20 else None


class IvrSession:
    def __init__(self, env: Mapping[str, str], route: Route, menus: Menus, table: RoutingTable, *,
                 at: datetime | None = None) -> None:
        """`at`: the instant the route was decided for (optional, never read from a clock). When given, a
        queue chosen in a menu is checked against its hours and follows its when_closed handling."""
        self.env = env
        self.at = at
        self.route = route
        self.menus = menus
        self.table = table
        self.language = menus.default_language
        self.path: list[str] = []
        self._chosen = route                 # best decision so far, kept if the caller hangs up
        self._plays = 0
        self._sent: dict[str, str] = {}      # variables already set during the menus (language changes)
        self.log = _LOG.bind(
            uniqueid=env.get("uniqueid", ""), line=route.line, rule=route.rule_id,
            caller=mask_number(env.get("callerid")))

    # ------------------------------------------------------------------------------------------ driver

    def run(self) -> Generator[Command, Response, CallOutcome]:
        hungup = False
        callback_number: str | None = None
        try:
            final, callback_number = yield from self._call()
        except _ChannelGone:
            hungup = True
            final = self._chosen
            self.log.info("ivr.hungup", ivr_path=">".join(self.path), action=final.action.value,
                          target=final.target)
        except _PromptUnplayable as missing:
            # The caller is still there: never leave them in silence, send them where the call was going (a
            # callback whose number was not captured yet: the queue they wanted a call from).
            final = self._chosen
            if final.action is Action.CALLBACK:
                final = self._queued_instead_of_callback(final)
            self.log.error("ivr.prompt_unplayable", sound=str(missing), ivr_path=">".join(self.path),
                           action=final.action.value, target=final.target,
                           advice="install the sound file (hotline menus prompts --sounds-dir DIR)")
        variables = self._variables(final, callback_number if final.action is Action.CALLBACK else None)
        for name, value in variables.items():
            if self._sent.get(name) != value:
                yield SetVariable(name, value)   # answered 200 even on a dead channel; the reply changes nothing
        variables = {**self._sent, **variables}
        return CallOutcome(route=final, action=final.action, target=final.target, ivr_path=tuple(self.path),
                           language=self.language, hungup=hungup, callback_number=callback_number,
                           variables=MappingProxyType(variables))

    def _do(self, command: Command) -> Generator[Command, Response, Response]:
        response = yield command
        if not isinstance(response, Response):
            response = _NO_RESPONSE
        if response.hungup:
            if isinstance(command, (StreamFile, GetOption)) and response.code == 200 and response.data != "HANGUP":
                # Asterisk answers -1 both for a hang-up and for a sound it cannot open (res_agi STREAM FILE,
                # GET OPTION); only a dead channel refuses CHANNEL STATUS (511). A hang-up that races the
                # probe may still look alive: the outcome is the same (the decision so far is kept).
                status = yield ChannelStatus()
                if isinstance(status, Response) and status.code == 200 and not status.hungup:
                    raise _PromptUnplayable(command.file)
            raise _ChannelGone
        return response

    def _play(self, sound: str) -> Generator[Command, Response, None]:
        yield from self._do(StreamFile(sound, ""))

    # ------------------------------------------------------------------------------------------ the call

    def _call(self) -> Generator[Command, Response, tuple[Route, str | None]]:
        route = self.route
        if route.category is Category.EMERGENCY_LINKAGE:
            # 110/119/120/122: nothing may stand between the caller and the dispatcher, not even ANSWER.
            self.log.info("ivr.destination", action=route.action.value, target=route.target, emergency=True)
            return route, None
        yield from self._do(Answer())
        if self.env.get("language") != self.language:
            yield from self._announce_language()
        menu = self._menu_for(route)
        escape = DTMF_KEYS if menu is not None and menu.barge_in else ""
        first_key = ""
        for prompt in route.prompts:
            response = yield from self._do(StreamFile(prompt, escape))
            first_key = key_of(response) if escape else ""
            if first_key:
                break
        if menu is None:
            return (yield from self._terminal(Destination(Kind.ROUTE)))
        return (yield from self._run_menus(menu, first_key))

    def _menu_for(self, route: Route) -> Menu | None:
        if route.menu is None or route.category is Category.ABUSE:
            return None
        if route.menu not in self.menus:
            # load_menus(table=...) refuses this; if it happens anyway, the caller still reaches the route.
            self.log.warning("ivr.menu_missing", menu=route.menu)
            return None
        return self.menus[route.menu]

    def _run_menus(self, menu: Menu, pending: str) -> Generator[Command, Response, tuple[Route, str | None]]:
        stack = [menu.id]
        self._enter(menu)
        failures = 0
        while True:
            if self._plays >= self.menus.max_menu_plays:
                self.log.info("ivr.menu_limit", menu=menu.id, plays=self._plays)
                return (yield from self._terminal(Destination(Kind.ROUTE)))
            self._plays += 1
            keys = yield from self._read(menu, pending)
            pending = ""
            if not keys:
                self.path.append("t")
                failures += 1
                self.log.info("ivr.timeout", menu=menu.id, attempt=failures)
                if failures <= menu.retries:
                    if menu.timeout_prompt is not None:
                        yield from self._play(menu.timeout_prompt(self.language))
                    continue
                dest = menu.after_retries
            elif keys in menu.options:
                self.path.append(keys)
                dest = menu.options[keys]
                self.log.info("ivr.key", menu=menu.id, key=keys, destination=dest.kind.value, target=dest.target)
            else:
                self.path.append(keys)
                failures += 1
                self.log.info("ivr.invalid", menu=menu.id, key=keys, attempt=failures)
                yield from self._play(menu.invalid_prompt(self.language))
                if failures <= menu.retries:
                    continue
                dest = menu.after_retries
            if dest is menu.after_retries and failures > menu.retries:
                self.log.info("ivr.retries_exhausted", menu=menu.id, destination=dest.kind.value,
                              target=dest.target)
            if dest.kind is Kind.REPEAT:
                failures = 0
            elif dest.kind is Kind.PREVIOUS:
                failures = 0
                if len(stack) > 1:
                    stack.pop()
                    menu = self.menus[stack[-1]]
                    self._enter(menu)
            elif dest.kind is Kind.LANGUAGE:
                failures = 0
                self.language = dest.target or self.language
                self.log.info("ivr.language", menu=menu.id, language=self.language)
                yield from self._announce_language()
            elif dest.kind is Kind.MENU:
                failures = 0
                menu = self.menus[dest.target]
                stack.append(menu.id)
                self._enter(menu)
            else:
                return (yield from self._terminal(dest))

    def _enter(self, menu: Menu) -> None:
        self.path.append(menu.id)
        # debug: entering a menu is not a decision (the key pressed in it is, and ivr.key names the menu).
        self.log.debug("ivr.menu", menu=menu.id, language=self.language)

    def _read(self, menu: Menu, pending: str) -> Generator[Command, Response, str]:
        prompt = menu.prompt(self.language)
        if menu.max_digits == 1:
            if pending:
                return pending
            if not menu.barge_in:
                yield from self._play(prompt)
                prompt = SILENCE
            return key_of((yield from self._do(GetOption(prompt, DTMF_KEYS, menu.timeout_ms))))
        if pending:
            if pending == "#":   # "end of input" with nothing before it
                return ""
            rest = yield from self._do(GetData(SILENCE, menu.timeout_ms, menu.max_digits - 1))
            return pending + digits_of(rest)
        if not menu.barge_in:
            yield from self._play(prompt)
            prompt = SILENCE
        return digits_of((yield from self._do(GetData(prompt, menu.timeout_ms, menu.max_digits))))

    def _announce_language(self) -> Generator[Command, Response, None]:
        # CHANNEL(language) makes Asterisk's own sounds (SAY DIGITS) speak it; HOTLINE_LANG is for the dialplan.
        for name in ("CHANNEL(language)", "HOTLINE_LANG"):
            yield from self._do(SetVariable(name, self.language))
            self._sent[name] = self.language

    # ------------------------------------------------------------------------------------------ endings

    def _terminal(self, dest: Destination) -> Generator[Command, Response, tuple[Route, str | None]]:
        route = self.route
        closed_prompts: tuple[str, ...] = ()
        if dest.kind is Kind.ROUTE:
            chosen = self._derive(route.action, route.target, dest.tags, "the route") if dest.tags else route
        elif dest.kind is Kind.QUEUE and self.at is not None:
            # The chosen queue's hours apply as for a routed call: a closed seat hands over to its when_closed
            # (another queue, or its prompts then a callback request or a hang-up).
            tagged = dataclasses.replace(route, tags=tuple(dict.fromkeys(route.tags + dest.tags)))
            chosen = to_queue(self.table, tagged, dest.target or "", self.at,
                              f"IVR {'>'.join(self.path)}: queue {dest.target}")
            closed_prompts = chosen.prompts
        elif dest.kind is Kind.QUEUE:
            chosen = self._derive(Action.QUEUE, dest.target, dest.tags, f"queue {dest.target}")
        elif dest.kind is Kind.CALLBACK:
            chosen = self._derive(Action.CALLBACK, dest.target, dest.tags, f"callback for {dest.target}")
        else:  # HANGUP
            chosen = self._derive(Action.HANGUP, None, (), "hang-up")
        self._chosen = chosen
        self.log.info("ivr.destination", action=chosen.action.value, target=chosen.target,
                      ivr_path=">".join(self.path))
        if dest.kind is Kind.HANGUP and dest.prompt is not None:
            yield from self._play(dest.prompt(self.language))
        for sound in closed_prompts:
            yield from self._play(sound)
        if chosen.action is Action.CALLBACK:
            return (yield from self._callback(chosen))
        return chosen, None

    def _callback(self, chosen: Route) -> Generator[Command, Response, tuple[Route, str | None]]:
        """Digits for the call-back (# or no input: the calling number), read back, confirmed with 1."""
        cb = self.menus.callback
        own = _own_number(self.env.get("callerid"))
        for attempt in range(1, cb.retries + 2):
            entered = digits_of((yield from self._do(GetData(cb.prompt(self.language), cb.timeout_ms,
                                                              cb.max_digits))))
            if not entered and own:
                number = own
            elif entered.isdigit() and cb.min_digits <= len(entered) <= cb.max_digits:
                number = entered
            else:
                self.log.info("ivr.callback_invalid", attempt=attempt, entered=bool(entered))
                yield from self._play(cb.invalid_prompt(self.language))
                continue
            yield from self._play(cb.confirm_prompt(self.language))
            yield from self._do(SayDigits(number, ""))
            answer = key_of((yield from self._do(GetOption(cb.confirm_options_prompt(self.language),
                                                           _CONFIRM_KEYS, cb.timeout_ms))))
            if answer == "2":
                self.log.info("ivr.callback_reenter", attempt=attempt)
                continue
            yield from self._play(cb.accepted_prompt(self.language))
            self.log.info("ivr.callback", queue=chosen.target, caller_number=mask_number(number),
                          own_number=number == own)
            return chosen, number
        # No usable number: rather than lose the caller, connect them to the queue they wanted a call from.
        fallback = self._chosen = self._queued_instead_of_callback(chosen)
        self.log.info("ivr.destination", action="queue", target=fallback.target, callback_failed=True)
        return fallback, None

    @staticmethod
    def _queued_instead_of_callback(chosen: Route) -> Route:
        return dataclasses.replace(chosen, action=Action.QUEUE,
                                   reason=f"{chosen.reason}; no callback number, queued instead")

    def _derive(self, action: Action, target: str | None, tags: tuple[str, ...], what: str) -> Route:
        """The route after a menu choice: the rule's route with the menu's destination, so records show both."""
        base = self.route
        overflow = base.overflow if target == base.target else overflow_chain(self.table, target or "")
        reason = f"IVR {'>'.join(self.path)}: {what}"
        return dataclasses.replace(base, action=action, target=target,
                                   tags=tuple(dict.fromkeys(base.tags + tags)), overflow=overflow,
                                   reason=f"{base.reason}; {reason}" if base.reason else reason)

    def _variables(self, route: Route, callback_number: str | None) -> dict[str, str]:
        variables = {
            "HOTLINE_TARGET": route.target or "",
            "HOTLINE_LINE": route.line,
            "HOTLINE_TAGS": "+".join(route.tags),
            "HOTLINE_RULE": route.rule_id,
            "HOTLINE_LANG": self.language,
            "HOTLINE_IVR_PATH": ">".join(self.path),
            "HOTLINE_TABLE": self.table.version,
            "CALLERID(name)": tagged_caller_name(route.line, self.env),
        }
        if "CHANNEL(language)" in self._sent:
            variables["CHANNEL(language)"] = self.language
        if callback_number:
            # Masked: the dialplan only needs to know a number was captured; the number itself goes, encrypted,
            # into the callback record, not into channel variables that CDRs and Asterisk's logs keep.
            variables["HOTLINE_CALLBACK"] = mask_number(callback_number)
        # Last on purpose: a session cut short leaves HOTLINE_ACTION empty and the dialplan fails open to 12345.
        variables["HOTLINE_ACTION"] = route.action.value
        return variables
