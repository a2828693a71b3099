"""The IVR menus as immutable values (what `ivr.session` runs and the classic-AGI snapshot stores).

Kept apart from `ivr.menus` (loading and validation, pydantic) so a classic AGI process that runs a
validated snapshot never imports the validators."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

LANGUAGES = ("zh", "en")
DTMF_KEYS = "0123456789*#"
SILENCE = "silence/1"  # Asterisk's stock one-second silence: lets GET OPTION/GET DATA wait without talking

@dataclass(frozen=True)
class Prompt:
    """One sound per language, named as Asterisk plays it (no extension)."""

    zh: str
    en: str

    def __call__(self, language: str) -> str:
        return self.en if language == "en" else self.zh

    def files(self) -> tuple[str, str]:
        return (self.zh, self.en)

class Kind(str, enum.Enum):
    MENU = "menu"            # a submenu
    ROUTE = "route"          # the call's own routed destination
    QUEUE = "queue"          # another queue
    CALLBACK = "callback"    # capture a callback number for a queue
    REPEAT = "repeat"        # play this menu again
    PREVIOUS = "previous"    # back to the menu that led here
    LANGUAGE = "language"    # switch zh/en and replay this menu
    HANGUP = "hangup"        # play a prompt, then hang up

TERMINAL_KINDS = frozenset({Kind.ROUTE, Kind.QUEUE, Kind.CALLBACK, Kind.HANGUP})

@dataclass(frozen=True)
class Destination:
    kind: Kind
    target: str | None = None           # menu id, queue id or language
    prompt: Prompt | None = None        # hangup: what the caller hears first
    tags: tuple[str, ...] = ()          # added to the route's tags (queue, callback, route)
    label: str = ""

@dataclass(frozen=True)
class Menu:
    id: str
    prompt: Prompt
    options: Mapping[str, Destination]
    timeout_ms: int
    retries: int                        # extra attempts after the first (invalid key or no key)
    max_digits: int
    barge_in: bool
    invalid_prompt: Prompt
    timeout_prompt: Prompt | None
    after_retries: Destination
    label: str = ""
    line: int = 0

@dataclass(frozen=True)
class CallbackSettings:
    """How a callback number is captured: enter digits (or # for the calling number), hear them, confirm."""

    prompt: Prompt
    confirm_prompt: Prompt              # "the number is ..." (followed by SAY DIGITS)
    confirm_options_prompt: Prompt      # "press 1 to confirm, 2 to enter it again"
    accepted_prompt: Prompt
    invalid_prompt: Prompt
    min_digits: int
    max_digits: int
    timeout_ms: int
    retries: int

@dataclass(frozen=True)
class Menus:
    source: str
    version: str                        # content hash of the file, for logs and records
    default_language: str
    max_menu_plays: int                 # a caller never loops forever: after this many menu plays, the route
    menus: Mapping[str, Menu]
    callback: CallbackSettings

    def __getitem__(self, menu_id: str) -> Menu:
        return self.menus[menu_id]

    def __contains__(self, menu_id: object) -> bool:
        return menu_id in self.menus

    def prompt_files(self) -> frozenset[str]:
        """Every sound file the menus can play: the list the admin records (conf/prompts.txt)."""
        prompts: list[Prompt] = []
        for menu in self.menus.values():
            prompts += [menu.prompt, menu.invalid_prompt]
            prompts += [p for p in (menu.timeout_prompt,) if p]
            prompts += [d.prompt for d in (*menu.options.values(), menu.after_retries) if d.prompt]
        cb = self.callback
        prompts += [cb.prompt, cb.confirm_prompt, cb.confirm_options_prompt, cb.accepted_prompt, cb.invalid_prompt]
        return frozenset(f for p in prompts for f in p.files())
