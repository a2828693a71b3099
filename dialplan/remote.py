"""The pure part of `hotline asterisk apply --remote`: our files as AMI UpdateConfig can write them, and back.

How Asterisk 22 writes a file over AMI (main/manager.c action_updateconfig, handle_updates; main/config.c
ast_config_text_file_save2):
- UpdateConfig loads SrcFilename (it must exist: "Config file not found"), applies Action-NNNNNN in order and
  saves the result to DstFilename in its own format (a ";!" generator header, `name = value` lines). Each
  NewCat makes a category whose file is DstFilename; Append adds `Var = Value` at its end, duplicates kept; a
  Value starting with ">" is written as an object: `Var => rest`. So `exten =>` and `same =>` lines, repeated
  keys and their order are written faithfully. Comments are not (UpdateConfig has no comment action).
- CreateConfig creates an empty file (O_EXCL: "File exists" when it is there).
- There is no action that writes an `#include`. An include is only kept when the source file already had it,
  and saving a config that has one truncates and rewrites the included file too. So: (1) each file is written
  from an empty source (SCRATCH), never from itself; (2) the remote variant of extensions_hotline.conf carries
  the agents' and switches' contexts inline instead of including their files; (3) the admin's six files get
  their `#include <ours>` by hand, once (UpdateConfig on them would rewrite the admin's whole file, and every
  file it includes, in the generator's format).
- AMI reads at most 128 header lines of one action (AST_MAX_MANHEADERS): a file goes in several UpdateConfig
  actions of CHUNK operations, the later ones appending to the file as the earlier ones saved it.

GetConfig answers `Category-NNNNNN: name` and `Line-NNNNNN-MMMMMM: name=value` (objects and comments lost):
that is what we read before writing (the diff, and what a rollback writes back).
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

from dialplan.apply import INCLUDED_BY_OURS
from dialplan.extensions import FILENAME as EXTENSIONS

SCRATCH = "hotline_apply_empty.conf"   # the empty source every write starts from (CreateConfig makes it once)
CHUNK = 28                              # operations per UpdateConfig: 4 + 4 * 28 headers < 128

Sections = list[tuple[str, list[tuple[str, str, bool]]]]   # [(category, [(name, value, object)])]

_HEAD = re.compile(r"^\[([^\]]+)\]\s*(?:;.*)?$")
_LINE = re.compile(r"^([^=;\s][^=]*?)\s*=(>?)\s*(.*?)\s*$")


class RemoteFormatError(ValueError):
    """A rendered line UpdateConfig cannot write (an #include, a template, a line outside a section)."""


def remote_files(rendered: Mapping[str, str]) -> dict[str, str]:
    """The files written over AMI: extensions_hotline.conf with the files it includes inline, they not written."""
    files = {name: text for name, text in rendered.items() if name not in INCLUDED_BY_OURS}
    if EXTENSIONS in files:
        text = files[EXTENSIONS]
        for name in INCLUDED_BY_OURS:
            text = re.sub(rf"^[ \t]*#include[ \t]+{re.escape(name)}[ \t]*$\n?", "", text, flags=re.M)
            text += "\n" + rendered.get(name, "")
        files[EXTENSIONS] = text
    return files


def parse(text: str, name: str = "") -> Sections:
    """What Asterisk reads of one of our files, in order: comments (whole-line or trailing) and blank lines
    dropped, as Asterisk drops them. An escaped `\\;` is refused: GetConfig answers it unescaped, so what a
    rollback wrote back would start a comment."""
    found: Sections = []
    for number, raw in enumerate(text.splitlines(), 1):
        if "\\;" in raw:
            raise RemoteFormatError(f"{name}:{number}: an escaped ';' cannot be read back over AMI faithfully")
        line = raw.split(";", 1)[0].strip()
        if not line or line.startswith(";"):
            continue
        head = _HEAD.match(line)
        if head:
            if "(" in line.split("]", 1)[1].split(";", 1)[0]:
                raise RemoteFormatError(f"{name}:{number}: a template section cannot be written over AMI")
            found.append((head.group(1), []))
            continue
        match = _LINE.match(line)
        if line.startswith("#") or not match or not found:
            raise RemoteFormatError(f"{name}:{number}: {line!r} cannot be written with UpdateConfig")
        found[-1][1].append((match.group(1), match.group(3), match.group(2) == ">"))
    return found


def from_getconfig(reply: Mapping[str, str]) -> Sections:
    """GetConfig's answer as sections (no objects: GetConfig writes every line as name=value)."""
    cats: dict[int, str] = {}
    lines: dict[int, list[tuple[int, str, str, bool]]] = {}
    for key, value in reply.items():
        if key.startswith("Category-"):
            cats[int(key[9:])] = value
        elif key.startswith("Line-"):
            cat, number = key[5:].split("-")
            var, _, val = value.partition("=")
            lines.setdefault(int(cat), []).append((int(number), var, val, False))
    return [(cats[i], [(v, val, obj) for _n, v, val, obj in sorted(lines.get(i, []))]) for i in sorted(cats)]


def canonical(sections: Sections) -> str:
    """One text for both sides of a diff: `[cat]` and `name=value` (`=` and `=>` are the same to our modules)."""
    out = []
    for cat, items in sections:
        out.append(f"[{cat}]")
        out.extend(f"{name}={value}" for name, value, _obj in items)
    return "\n".join(out) + ("\n" if out else "")


def update_actions(sections: Sections) -> list[list[dict[str, str]]]:
    """The operations that write `sections` into an empty file, in chunks of at most CHUNK."""
    ops: list[dict[str, str]] = []
    for cat, items in sections:
        ops.append({"Action": "NewCat", "Cat": cat})
        for name, value, obj in items:
            ops.append({"Action": "Append", "Cat": cat, "Var": name, "Value": (">" if obj else "") + value})
    return [ops[i:i + CHUNK] for i in range(0, len(ops), CHUNK)] or [[]]


def update_config(filename: str, ops: Iterable[dict[str, str]], first: bool) -> dict[str, str]:
    """One UpdateConfig action: the first chunk starts from SCRATCH (the file replaced), later ones append."""
    fields = {"Action": "UpdateConfig", "SrcFilename": SCRATCH if first else filename, "DstFilename": filename}
    for i, op in enumerate(ops):
        for key, value in op.items():
            fields[f"{key}-{i:06d}"] = value
    return fields
