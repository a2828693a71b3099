"""YAML with positions: plain Python data plus the line:column of every key and value.

PyYAML's composer gives nodes with marks; we build the data ourselves so that (a) every path into the data
has a source position, (b) a key written twice in one mapping is an error instead of a silent overwrite.
A pydantic ValidationError's `loc` is then mapped back to the closest position (see `problems_from`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

# libyaml's composer without PyYAML's Python-side tag resolution (the slow part on big tables): plain
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
_FLOAT = re.compile(r"[-+]?([0-9][0-9_]*)?\.[0-9_]+([eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]*)?"
                        r"([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)?")
_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


def _plain_scalar(node: yaml.ScalarNode) -> Any:
    value = node.value
    if node.style:  # quoted or block: always text (plain is None in PyYAML, "" in libyaml)
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
            return _scalars.construct_yaml_timestamp(node)
        except ValueError:
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
    duplicates: list[Problem]

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


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_document(path: str | Path, text: str | None = None) -> Document:
    path = Path(path)
    name = str(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError([Problem(name, 1, 1, f"cannot read file: {exc}")]) from exc
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SourceError([Problem(name, line, col, f"YAML syntax: {exc.problem or exc}")]) from exc
    positions: dict[Path_, tuple[int, int]] = {}
    key_positions: dict[Path_, tuple[int, int]] = {}
    duplicates: list[Problem] = []

    def build(node: yaml.Node, here: Path_) -> Any:
        positions[here] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SourceError([Problem(name, *_mark(key_node), "a mapping key must be a plain value")])
                if key_node.value == "<<" and not key_node.style:
                    raise SourceError([Problem(name, *_mark(key_node), "YAML merge keys (<<) are not supported")])
                key = key_node.value  # keys are names or numbers as written: `12345:` is a phone number
                if key in out:
                    first = key_positions[here + (key,)]
                    duplicates.append(Problem(name, *_mark(key_node),
                                              f"'{key}' is given twice in this mapping (first at line {first[0]})"))
                key_positions[here + (key,)] = _mark(key_node)
                out[key] = build(value_node, here + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, here + (i,)) for i, item in enumerate(node.value)]
        return _plain_scalar(node)

    data = build(root, ()) if root is not None else None
    return Document(name, text, data, positions, key_positions, duplicates)


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{error['loc'][-1]}'"
    if kind == "missing":
        return f"missing required key '{error['loc'][-1]}'"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return f"{loc}: {message}" if loc else message


def _data_path(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the entries pydantic adds for unions/validators so the path matches the YAML's."""
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))


def problems_from(doc: Document, error: ValidationError) -> list[Problem]:
    out = []
    for item in error.errors():
        path = _data_path(tuple(item["loc"]))
        message = _describe({**item, "loc": path})
        if item["type"] == "missing":  # point at the mapping that lacks the key
            path = path[:-1]
        out.append(doc.problem(path, message, key=item["type"] == "extra_forbidden"))
    return out
