"""YAML with positions: plain Python data plus the line:column of every key and value.

libyaml's parser gives events with marks; we build the data ourselves so that (a) every path into the data
has a source position, (b) a key written twice in one mapping is an error instead of a silent overwrite,
(c) hostile files are refused with a position instead of a traceback or gigabytes: a size limit, a nesting
limit, a budget for what aliases expand to, no over-long integers.
A pydantic ValidationError's `loc` is then mapped back to the closest position (see `problems_from`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

# libyaml's parser without PyYAML's Python-side tag resolution (the slow part on big tables): plain
# scalars are typed by `_plain_scalar` below, with YAML 1.2 rules, so `yes`, `no`, `on` and `14:30` stay text.
class _UntaggedResolver(yaml.resolver.BaseResolver):
    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        return ""


try:
    class _Loader(yaml.cyaml.CParser, yaml.constructor.BaseConstructor, _UntaggedResolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            yaml.cyaml.CParser.__init__(self, stream)
            yaml.constructor.BaseConstructor.__init__(self)
            _UntaggedResolver.__init__(self)
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,  # type: ignore[no-redef]
                  yaml.constructor.BaseConstructor, _UntaggedResolver):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.BaseConstructor.__init__(self)
            _UntaggedResolver.__init__(self)

_scalars = yaml.constructor.SafeConstructor()
_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
_FLOAT = re.compile(r"[-+]?([0-9][0-9_]*)?\.(?=[0-9_]*[0-9])[0-9_]+([eE][-+]?[0-9]+)?")  # a digit after the dot: "._" is text
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]*)?"
                        r"([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)?")
_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


def _plain_scalar(value: str, style: str | None) -> Any:
    if style:  # quoted or block: always text (plain is None in PyYAML, "" in libyaml)
        return value
    if value in _NULLS:
        return None
    if value in _BOOLS:
        return _BOOLS[value]
    if _INT.fullmatch(value):
        return int(value.replace("_", ""))
    if _FLOAT.fullmatch(value):
        return float(value.replace("_", ""))
    if _TIMESTAMP.fullmatch(value):
        try:
            return _scalars.construct_yaml_timestamp(yaml.ScalarNode("tag:yaml.org,2002:timestamp", value))
        except (ValueError, OverflowError):
            # No such date (2021-02-30): keep the text, so the schema reports it with its position
            # alongside every other problem instead of stopping here.
            return value
    return value


Path_ = tuple[Any, ...]


@dataclass(frozen=True, order=True)
class Problem:
    """One finding, printed the way compilers do so editors can jump to it."""

    file: str
    line: int
    column: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.file}:{self.line}:{self.column}: {prefix}{self.message}"


class SourceError(Exception):
    """The file could not be read or parsed; `problems` says where."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Document:
    """Parsed YAML: `data` plus positions keyed by path (keys by name, sequence items by index)."""

    file: str
    text: str
    data: Any
    positions: dict[Path_, tuple[int, int]]
    key_positions: dict[Path_, tuple[int, int]]
    problems: list[Problem]          # found while reading (keys given twice, numbers too long): not fatal alone

    def position(self, path: Iterable[Any]) -> tuple[int, int]:
        """Position of the deepest known node along `path` (1-based line and column)."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def key_position(self, path: Iterable[Any]) -> tuple[int, int]:
        path = tuple(path)
        return self.key_positions.get(path) or self.position(path)

    def problem(self, path: Iterable[Any], message: str, severity: str = "error", key: bool = False) -> Problem:
        line, column = self.key_position(path) if key else self.position(path)
        return Problem(self.file, line, column, message, severity)


# Hard limits: a table or menus file is small, shallow and written out; anything beyond these is a mistake or an
# attack (an alias bomb expands 20 KB into gigabytes; deep nesting exhausts the stack), refused with its position.
MAX_FILE_BYTES = 2_000_000           # the shipped table is 22 KB; a 2,000-line table about 260 KB
MAX_DEPTH = 32                       # the deepest legitimate path is about 7 levels
MAX_ALIAS_VALUES = 10_000            # values all alias uses together may expand to
MAX_NUMBER_DIGITS = 50               # Python refuses int() of more than 4,300 digits; no setting needs 50


def _mark(node: Any) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _line_column(text: str, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(text)))
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


# A key written unquoted with one of YAML's indicators is syntax, not a key: `#: repeat` is a comment and
# `*: previous` an alias. Said with the YAML error, so the admin sees what to write instead.
_INDICATOR_KEY = re.compile(r"^\s*(?:-\s+)?([*&!|>%@`])\s*:")


def _syntax_hint(text: str, line: int) -> str:
    lines = text.splitlines()
    match = _INDICATOR_KEY.match(lines[line - 1]) if 0 < line <= len(lines) else None
    if match:
        key = match.group(1)
        return f" (an unquoted {key} is YAML syntax: quote it: '{key}')"
    return ""


def read_source(path: Path) -> str:
    """The file's text, refused (SourceError) over MAX_FILE_BYTES or when it is not UTF-8."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SourceError([Problem(name, 1, 1, f"cannot read file: {exc}")]) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise SourceError([_too_big(name, path.stat().st_size if path.exists() else len(raw))])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[:exc.start].decode("utf-8", "replace")
        line, column = _line_column(before, len(before))
        raise SourceError([Problem(name, line, column, f"cannot read file: not UTF-8 ({exc.reason} "
                                                         f"at byte {exc.start})")]) from exc


def _too_big(name: str, size: int) -> Problem:
    return Problem(name, 1, 1, f"the file is {size / 1e6:.1f} MB; a table or menus file may be at most "
                               f"{MAX_FILE_BYTES / 1e6:.1f} MB")


def load_document(path: str | Path, text: str | None = None) -> Document:
    """Parse one YAML document with positions, within the limits above; SourceError says where it failed."""
    path = Path(path)
    name = str(path)
    if text is None:
        text = read_source(path)
    elif len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise SourceError([_too_big(name, len(text.encode("utf-8", "surrogatepass")))])
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SourceError([Problem(name, *_line_column(text, exc.start), "not valid text (a lone surrogate)")])
    builder = _Builder(name, text)
    try:
        data = builder.run(yaml.parse(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SourceError([Problem(name, line, col, f"YAML syntax: {exc.problem or exc}"
                                                    f"{_syntax_hint(text, line)}")]) from None
    except yaml.reader.ReaderError as exc:   # a NUL or another control character: libyaml gives its offset
        before = text.encode("utf-8")[:exc.position].decode("utf-8", "ignore")   # in bytes of UTF-8
        line, col = _line_column(before, len(before))
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise SourceError([Problem(name, line, col, f"character {char!r} (U+{ord(char):04X}) is not allowed in "
                                                    f"YAML ({exc.reason})")]) from None
    except yaml.YAMLError as exc:
        raise SourceError([Problem(name, 1, 1, f"YAML: {exc}")]) from None
    return Document(name, text, data, builder.positions, builder.key_positions, builder.problems)


@dataclass
class _Anchor:
    value: Any
    log: list[tuple[Path_, tuple[int, int], bool]]   # positions below the anchored node, relative to it
    height: int                                       # nesting levels below it


@dataclass
class _Frame:
    container: Any                  # dict or list being filled
    here: Path_
    is_map: bool
    anchor: str | None
    log_start: int                  # where this node's positions start in the builder's log
    height: int = 0
    key: Any = None                 # a mapping's key waiting for its value
    expecting_key: bool = True


_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)


class _Builder:
    """Plain data from libyaml's events, iteratively (no recursion to exhaust) and within the limits:
    nesting depth, the values aliases expand to (each alias use costs the size of what it names)."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.key_positions: dict[Path_, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.log: list[tuple[Path_, tuple[int, int], bool]] = []
        self.anchored = 0             # anchored collections open around the current event
        self.anchors: dict[str, _Anchor] = {}
        self.alias_budget = MAX_ALIAS_VALUES

    def fail(self, mark: tuple[int, int], message: str) -> SourceError:
        return SourceError([Problem(self.name, *mark, message)])

    def record(self, here: Path_, mark: tuple[int, int], key: bool = False) -> None:
        (self.key_positions if key else self.positions)[here] = mark
        if self.anchored:          # only what an anchor may have to replay at its aliases is kept in order
            self.log.append((here, mark, key))

    def run(self, events: Iterable[Any]) -> Any:
        stack: list[_Frame] = []
        root: Any = None
        documents = 0
        for event in events:
            kind = type(event)
            if kind is yaml.ScalarEvent or kind is yaml.AliasEvent or kind in _STARTS:
                parent = stack[-1] if stack else None
                if parent is not None and parent.is_map and parent.expecting_key:
                    self._key(parent, event)
                    continue
                here = () if parent is None else parent.here + (parent.key if parent.is_map
                                                                 else len(parent.container),)
                mark = _mark(event)
                if kind is yaml.ScalarEvent:
                    self.record(here, mark)
                    value = self._scalar(event, mark)
                    if event.anchor is not None:
                        self.anchors[event.anchor] = _Anchor(value, [((), mark, False)], 0)
                elif kind is yaml.AliasEvent:
                    value = self._alias(event, here, len(stack))
                else:  # a mapping or a sequence starts
                    if len(stack) >= MAX_DEPTH:
                        raise self.fail(mark, f"nesting deeper than {MAX_DEPTH} levels")
                    if event.anchor is not None:
                        self.anchored += 1
                    self.record(here, mark)
                    value = {} if kind is yaml.MappingStartEvent else []
                    stack.append(_Frame(value, here, kind is yaml.MappingStartEvent, event.anchor,
                                        len(self.log) - 1))
                    self._place(parent, value, completed=False)
                    continue
                if parent is None:
                    root = value
                self._place(parent, value)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = _Anchor(frame.container, self._relative(frame), frame.height)
                    self.anchored -= 1
                if stack:
                    stack[-1].height = max(stack[-1].height, frame.height + 1)
                    if stack[-1].is_map:
                        stack[-1].expecting_key = True
                else:
                    root = frame.container
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.fail(_mark(event), "a file holds one YAML document (this is a second one)")
        return root

    @staticmethod
    def _place(parent: _Frame | None, value: Any, completed: bool = True) -> None:
        """Put `value` in its parent; a completed value makes a mapping wait for its next key."""
        if parent is None:
            return
        if parent.is_map:
            parent.container[parent.key] = value
            parent.expecting_key = completed
        else:
            parent.container.append(value)

    def _key(self, frame: _Frame, event: Any) -> None:
        mark = _mark(event)
        if not isinstance(event, yaml.ScalarEvent):
            raise self.fail(mark, "a mapping key must be a plain value")
        if event.value == "<<" and not event.style:
            raise self.fail(mark, "YAML merge keys (<<) are not supported")
        key = event.value  # keys are names or numbers as written: `12345:` is a phone number
        if key in frame.container:
            first = self.key_positions[frame.here + (key,)]
            self.problems.append(Problem(self.name, *mark,
                                         f"'{key}' is given twice in this mapping (first at line {first[0]})"))
        self.record(frame.here + (key,), mark, key=True)
        if event.anchor is not None:   # `&k name:` then `*k` elsewhere: the key's text
            self.anchors[event.anchor] = _Anchor(key, [((), mark, False)], 0)
        frame.key, frame.expecting_key = key, False

    def _scalar(self, event: Any, mark: tuple[int, int]) -> Any:
        value = event.value
        if not event.style and len(value) > MAX_NUMBER_DIGITS and _INT.fullmatch(value):
            self.problems.append(Problem(self.name, *mark, f"a number of {len(value)} digits is too long "
                                                           f"(at most {MAX_NUMBER_DIGITS}; quote it if it is text)"))
            return value
        return _plain_scalar(value, event.style)

    def _alias(self, event: Any, here: Path_, depth: int) -> Any:
        mark = _mark(event)
        anchor = self.anchors.get(event.anchor)
        if anchor is None:
            raise self.fail(mark, f"alias *{event.anchor} names no anchor (&{event.anchor}) written before it")
        self.alias_budget -= len(anchor.log)
        if self.alias_budget < 0:
            raise self.fail(mark, f"YAML aliases here expand to more than {MAX_ALIAS_VALUES} values in total "
                                  "(an alias bomb?): write the values out")
        if depth + anchor.height >= MAX_DEPTH:
            raise self.fail(mark, f"nesting deeper than {MAX_DEPTH} levels (through alias *{event.anchor})")
        for relative, position, key in anchor.log:
            self.record(here + relative, position, key)
        return anchor.value

    def _relative(self, frame: _Frame) -> list[tuple[Path_, tuple[int, int], bool]]:
        size = len(frame.here)
        return [(path[size:], position, key) for path, position, key in self.log[frame.log_start:]]


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{error['loc'][-1] if error['loc'] else '?'}'"
    if kind == "missing":
        return f"missing required key '{error['loc'][-1]}'"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return f"{loc}: {message}" if loc else message


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The entries of `loc` that are keys or indexes in the data, so the path matches the YAML's: pydantic adds
    its own for unions and validators (`function-after[...]`, `list[str]`), and a key may contain `[` too."""
    out = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            continue
        out.append(part)
    return tuple(out)


def problems_from(doc: Document, error: ValidationError, model: Any = None) -> list[Problem]:
    """The errors of validating `doc.data` (or data with the same paths), each at its position. With the
    validated `model`, an unknown key names the near-miss it probably is (`overfow`: did you mean 'overflow'?)."""
    data = doc.data
    out = []
    for item in error.errors():
        loc = tuple(item["loc"])
        if item["type"] == "missing" and loc:   # the key is not in the data: keep it, point at its mapping
            path = _data_path(data, loc[:-1]) + (loc[-1],)
        else:
            path = _data_path(data, loc)
        message = _describe({**item, "loc": path})
        if item["type"] == "extra_forbidden" and model is not None and loc:
            from routing.suggest import did_you_mean, keys_at
            message += did_you_mean(str(loc[-1]), keys_at(model, loc[:-1]))
        elif item["type"] == "literal_error" and isinstance(item.get("input"), str):
            # pydantic lists every allowed value; the near one is worth naming (strategy: rrmemroy)
            from routing.suggest import did_you_mean
            message += did_you_mean(item["input"], re.findall(r"'([^']*)'", str(item.get("ctx", {}).get("expected"))))
        if item["type"] == "missing":
            path = path[:-1]
        out.append(doc.problem(path, message, key=item["type"] == "extra_forbidden"))
    return out
