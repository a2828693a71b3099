"""The IVR menus (conf/ivr.yaml): load, validate, and freeze into immutable values for `ivr.session`.

An admin sees every problem at once, each as `file:line:column: message`: the pydantic schema (types, unknown
keys, one destination per option), and, over whatever of the file is valid (a broken section or option never
hides the others' problems), the cross-checks that need the whole file (menus that exist, keys a telephone
can send, submenu loops without an exit) and, when a routing table is given, the queues it defines and the
menus its rules name.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ivr.menu_values import (DTMF_KEYS, LANGUAGES, SILENCE, TERMINAL_KINDS, CallbackSettings, Destination,  # noqa: F401
                             Kind, Menu, Menus, Prompt)
from routing.model import RoutingTable
from routing.suggest import did_you_mean
from routing.yamlsource import Document, Problem, SourceError, load_document, problems_from


ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
Id = Annotated[str, Field(pattern=ID_PATTERN)]
SoundName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_/.-]+$", max_length=128)]
Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class MenuError(Exception):
    """conf/ivr.yaml is unusable; `problems` holds every finding (Problem: file, line, column, message)."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------------------------- schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptSpec(_Strict):
    zh: SoundName
    en: SoundName


def _shorthand(value: Any) -> Any:
    # `"0": repeat` reads better than `"0": {repeat: true}` for the destinations that take no argument.
    if value in ("route", "repeat", "previous"):
        return {value: True}
    return value


class DestinationSpec(_Strict):
    menu: Id | None = None
    route: Literal[True] | None = None
    queue: Id | None = None
    callback: Id | None = None
    repeat: Literal[True] | None = None
    previous: Literal[True] | None = None
    language: Literal["zh", "en"] | None = None
    hangup: PromptSpec | None = None
    tags: list[Tag] = []
    label: str = ""

    @model_validator(mode="after")
    def _exactly_one(self) -> "DestinationSpec":
        chosen = [k.value for k in Kind if getattr(self, k.value) is not None]
        if len(chosen) != 1:
            names = ", ".join(k.value for k in Kind)
            found = f" (found {', '.join(chosen)})" if chosen else ""
            raise ValueError(f"a destination takes exactly one of {names}{found}")
        if self.tags and chosen[0] not in ("queue", "callback", "route"):
            raise ValueError("tags belong to queue, callback or route destinations")
        return self

    def kind(self) -> Kind:
        return next(k for k in Kind if getattr(self, k.value) is not None)


Dest = Annotated[DestinationSpec, BeforeValidator(_shorthand)]


class MenuDefaults(_Strict):
    timeout_seconds: float = Field(default=5, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=9)
    max_digits: int = Field(default=1, ge=1, le=8)
    barge_in: bool = True
    invalid_prompt: PromptSpec
    timeout_prompt: PromptSpec | None = None
    after_retries: Dest = DestinationSpec(route=True)


class MenuSpec(_Strict):
    label: str = ""
    prompt: PromptSpec
    options: dict[str, Dest] = Field(min_length=1)
    timeout_seconds: float | None = Field(default=None, gt=0, le=60)
    retries: int | None = Field(default=None, ge=0, le=9)
    max_digits: int | None = Field(default=None, ge=1, le=8)
    barge_in: bool | None = None
    invalid_prompt: PromptSpec | None = None
    timeout_prompt: PromptSpec | None = None
    after_retries: Dest | None = None


class CallbackSpec(_Strict):
    prompt: PromptSpec
    confirm_prompt: PromptSpec
    confirm_options_prompt: PromptSpec
    accepted_prompt: PromptSpec
    invalid_prompt: PromptSpec
    min_digits: int = Field(default=5, ge=3, le=20)
    max_digits: int = Field(default=20, ge=3, le=20)
    timeout_seconds: float = Field(default=8, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=9)

    @model_validator(mode="after")
    def _range(self) -> "CallbackSpec":
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits is larger than max_digits")
        return self


class IvrSpec(_Strict):
    version: Literal[1]
    default_language: Literal["zh", "en"] = "zh"
    max_menu_plays: int = Field(default=12, ge=1, le=100)
    defaults: MenuDefaults
    callback: CallbackSpec
    menus: dict[Id, Any] = Field(min_length=1)   # each menu is validated on its own: see _validate_menus


class _OneMenu(BaseModel):
    menus: dict[str, MenuSpec]


# --------------------------------------------------------------------------------------------- loading


def load_menus(path: str | Path, table: RoutingTable | None = None, *, text: str | None = None) -> Menus:
    """Read and validate conf/ivr.yaml; cross-check queues and menu names against `table` when given.

    Raises MenuError with every problem found, in one go: a broken section or option never hides the
    checks of the others. `text` replaces reading the file (tests, editors).
    """
    try:
        doc = load_document(path, text)
    except SourceError as exc:
        raise MenuError(list(exc.problems)) from None
    problems = list(doc.problems) + _comment_keys(doc)
    if not isinstance(doc.data, dict):
        raise MenuError(problems + [doc.problem((), "the file must be a mapping with version, defaults, "
                                                     "callback and menus")])
    spec = None
    try:
        spec = IvrSpec.model_validate(doc.data)
    except ValidationError as exc:
        problems += problems_from(doc, exc, IvrSpec)
    menus, menu_problems = _validate_menus(doc)
    problems += menu_problems
    problems += _cross_check(doc, _defaults_view(doc.data.get("defaults")), _menu_views(doc), table)
    if problems or spec is None:
        raise MenuError(problems)
    return _build(doc, spec, menus)


# `#: repeat` is a YAML comment: the option vanishes and the file still loads. Such a line is an error.
_COMMENTED_KEY = re.compile(r"^([ \t]*)#[ \t]*:([ \t]|$)")


def _comment_keys(doc: Document) -> list[Problem]:
    return [Problem(doc.file, number, len(match.group(1)) + 1,
                    "YAML reads this line as a comment, so option '#' is dropped: quote it: '#'")
            for number, line in enumerate(doc.text.splitlines(), start=1)
            if (match := _COMMENTED_KEY.match(line))]


def _validate_menus(doc: Document) -> tuple[dict[str, MenuSpec], list[Problem]]:
    """Menu by menu, so a typo in one menu does not hide the problems of the others."""
    raw = doc.data.get("menus")
    menus: dict[str, MenuSpec] = {}
    problems: list[Problem] = []
    for menu_id, body in (raw.items() if isinstance(raw, dict) else ()):
        try:
            menus[menu_id] = _OneMenu.model_validate({"menus": {menu_id: body}}).menus[menu_id]
        except ValidationError as exc:
            problems += problems_from(doc, exc, _OneMenu)
    return menus, problems


_DEST = TypeAdapter(Dest)


def _destination_or_none(raw: Any) -> DestinationSpec | None:
    """A destination that passes the schema, or None (its errors are reported by the schema pass)."""
    try:
        return _DEST.validate_python(raw)
    except ValidationError:
        return None


def _digits_or_none(raw: Any) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= 8 else None


@dataclass(frozen=True)
class _DefaultsView:
    max_digits: int
    after_retries: DestinationSpec | None


@dataclass(frozen=True)
class _MenuView:
    """What the cross-checks need of one menu, taken from whatever of it is valid."""

    max_digits: int | None
    options: dict[str, DestinationSpec | None]
    after_retries: DestinationSpec | None


def _defaults_view(raw: Any) -> _DefaultsView:
    raw = raw if isinstance(raw, dict) else {}
    return _DefaultsView(_digits_or_none(raw.get("max_digits", 1)) or 1,
                         _destination_or_none(raw.get("after_retries", "route")))


def _menu_views(doc: Document) -> dict[str, _MenuView]:
    raw = doc.data.get("menus")
    views = {}
    for menu_id, body in (raw.items() if isinstance(raw, dict) else ()):
        body = body if isinstance(body, dict) else {}
        options = body.get("options")
        views[menu_id] = _MenuView(
            _digits_or_none(body.get("max_digits")),
            {key: _destination_or_none(dest) for key, dest in (options.items() if isinstance(options, dict) else ())},
            _destination_or_none(body["after_retries"]) if body.get("after_retries") is not None else None)
    return views


def _cross_check(doc: Document, defaults: _DefaultsView, menus: dict[str, _MenuView],
                 table: RoutingTable | None) -> list[Problem]:
    """Every menu as written counts as defined; each option is checked if its destination is valid."""
    out: list[Problem] = []
    queues = set(table.queues) if table is not None else None

    def check_destination(dest: DestinationSpec | None, where: tuple[Any, ...]) -> None:
        if dest is None:
            return
        kind = dest.kind()
        if kind is Kind.MENU and dest.menu not in menus:
            out.append(doc.problem(where + ("menu",), f"menu '{dest.menu}' is not defined under menus"
                                   + did_you_mean(dest.menu, menus)))
        if kind in (Kind.QUEUE, Kind.CALLBACK) and queues is not None:
            queue = dest.queue or dest.callback
            if queue not in queues:
                out.append(doc.problem(where + (kind.value,),
                                       f"queue '{queue}' is not in the routing table ({table.source})"
                                       + did_you_mean(queue, queues)))

    def check_after_retries(dest: DestinationSpec | None, where: tuple[Any, ...]) -> None:
        if dest is not None and dest.kind() in (Kind.REPEAT, Kind.PREVIOUS, Kind.LANGUAGE):
            out.append(doc.problem(where, "after_retries must lead somewhere: menu, route, queue, callback or "
                                          "hangup"))
        check_destination(dest, where)

    check_after_retries(defaults.after_retries, ("defaults", "after_retries"))
    for menu_id, menu in menus.items():
        here = ("menus", menu_id)
        max_digits = menu.max_digits or defaults.max_digits
        for key, dest in menu.options.items():
            key_text = str(key)
            if not key_text or any(ch not in DTMF_KEYS for ch in key_text):
                out.append(doc.problem(here + ("options", key), f"option '{key_text}' is not a telephone key "
                                       f"(use {DTMF_KEYS[:10]}, * or #, quoted in YAML)", key=True))
            elif len(key_text) > max_digits:
                out.append(doc.problem(here + ("options", key), f"option '{key_text}' has more digits than "
                                       f"max_digits ({max_digits})", key=True))
            elif max_digits > 1 and "#" in key_text:
                out.append(doc.problem(here + ("options", key), f"option '{key_text}': # ends the input in a "
                                       "menu with max_digits > 1, so it cannot be part of a key", key=True))
            check_destination(dest, here + ("options", key))
        check_after_retries(menu.after_retries, here + ("after_retries",))

    out += _dead_loops(doc, menus)

    if table is not None:
        for line in table.lines.values():
            for rule in line.rules:
                if rule.menu is not None and rule.menu not in menus:
                    out.append(Problem(table.source, rule.source_line or 1, 1,
                                       f"rule '{rule.id}' of line {line.number} names menu '{rule.menu}', "
                                       f"which {doc.file} does not define"))
    return out


def _dead_loops(doc: Document, menus: dict[str, _MenuView]) -> list[Problem]:
    """Submenu loops the caller can never leave by choice (only by failing): an admin's mistake.

    Repeat, previous and language are normal and not exits; after_retries is a fallback, not a choice.
    A loop is a strongly connected set of menus joined by submenu options (or a menu naming itself).
    """
    edges = {m: [d.menu for d in menus[m].options.values() if d is not None and d.kind() is Kind.MENU
                 and d.menu in menus] for m in menus}
    out = []
    for component in _strongly_connected(edges):
        members = set(component)
        cyclic = len(members) > 1 or any(target in members for target in edges[component[0]])
        if not cyclic:
            continue
        has_exit = any(
            d is None or d.kind() in TERMINAL_KINDS or (d.kind() is Kind.MENU and d.menu not in members)
            for m in members for d in menus[m].options.values())
        if not has_exit:
            ordered = sorted(members, key=lambda m: doc.key_position(("menus", m)))
            loop = " -> ".join(ordered + [ordered[0]])
            out.append(doc.problem(("menus", ordered[0]), f"submenu loop {loop} has no way out: no option in it "
                                   "leads to the route, a queue, a callback or a hang-up", key=True))
    return out


def _strongly_connected(edges: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (menus are few, but recursion limits are not ours to spend)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges[node]
            if child < len(targets):
                work.append((node, child + 1))
                nxt = targets[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == node:
                        break
                result.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


def _prompt(spec: PromptSpec) -> Prompt:
    return Prompt(zh=spec.zh, en=spec.en)


def _destination(spec: DestinationSpec) -> Destination:
    kind = spec.kind()
    target = {Kind.MENU: spec.menu, Kind.QUEUE: spec.queue, Kind.CALLBACK: spec.callback,
              Kind.LANGUAGE: spec.language}.get(kind)
    return Destination(kind=kind, target=target, prompt=_prompt(spec.hangup) if spec.hangup else None,
                       tags=tuple(spec.tags), label=spec.label)


def _build(doc: Document, spec: IvrSpec, specs: dict[str, MenuSpec]) -> Menus:
    d = spec.defaults
    menus = {}
    for menu_id, m in specs.items():
        timeout = m.timeout_seconds if m.timeout_seconds is not None else d.timeout_seconds
        timeout_prompt = m.timeout_prompt or d.timeout_prompt
        menus[menu_id] = Menu(
            id=menu_id,
            prompt=_prompt(m.prompt),
            options=MappingProxyType({str(k): _destination(v) for k, v in m.options.items()}),
            timeout_ms=int(timeout * 1000),
            retries=m.retries if m.retries is not None else d.retries,
            max_digits=m.max_digits or d.max_digits,
            barge_in=m.barge_in if m.barge_in is not None else d.barge_in,
            invalid_prompt=_prompt(m.invalid_prompt or d.invalid_prompt),
            timeout_prompt=_prompt(timeout_prompt) if timeout_prompt else None,
            after_retries=_destination(m.after_retries or d.after_retries),
            label=m.label,
            line=doc.key_position(("menus", menu_id))[0],
        )
    cb = spec.callback
    callback = CallbackSettings(
        prompt=_prompt(cb.prompt), confirm_prompt=_prompt(cb.confirm_prompt),
        confirm_options_prompt=_prompt(cb.confirm_options_prompt), accepted_prompt=_prompt(cb.accepted_prompt),
        invalid_prompt=_prompt(cb.invalid_prompt), min_digits=cb.min_digits, max_digits=cb.max_digits,
        timeout_ms=int(cb.timeout_seconds * 1000), retries=cb.retries)
    return Menus(
        source=doc.file,
        version=hashlib.sha256(doc.text.encode("utf-8")).hexdigest()[:12],
        default_language=spec.default_language,
        max_menu_plays=spec.max_menu_plays,
        menus=MappingProxyType(menus),
        callback=callback,
    )
