"""The pure part of `hotline asterisk apply|check`: what to install, which `#include` lines to add, what to reload,
and what a running Asterisk must show afterwards. No I/O here: the CLI (scripts/cli_asterisk.py) reads the files
and speaks AMI.

The admin's own files (extensions.conf, pjsip.conf...) are only ever appended one `#include <ours>` line, once;
nothing else in them is touched. Our include goes at the end: every *_hotline.conf starts with its own section
header, so whatever section the admin's file ends in is closed, never extended.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from dialplan.extensions import CTX_ENGINE, FILENAME as EXTENSIONS
from dialplan.features import FILENAME as FEATURES
from dialplan.manager import FILENAME as MANAGER
from dialplan.agents import FILENAME as AGENTS, RULES_FILENAME as QUEUERULES
from dialplan.switches import FILENAME as SWITCHES
from dialplan.pjsip import FILENAME as PJSIP
from dialplan.queues import FILENAME as QUEUES

# The admin's file that includes each of ours.
INCLUDED_FROM: dict[str, str] = {
    EXTENSIONS: "extensions.conf",
    FEATURES: "features.conf",
    MANAGER: "manager.conf",
    PJSIP: "pjsip.conf",
    QUEUES: "queues.conf",
    QUEUERULES: "queuerules.conf",
}

INCLUDES: dict[str, str] = {admin: ours for ours, admin in INCLUDED_FROM.items()}   # admin file -> ours

# Ours that another of ours includes (the agents' PINs, 0600): installed beside it and reloaded with its module;
# the admin's files never name them.
INCLUDED_BY_OURS: dict[str, str] = {AGENTS: EXTENSIONS, SWITCHES: EXTENSIONS}

# The AMI action that makes Asterisk read each file again (tests/transcripts/NOTES-2.md "Reload": `dialplan
# reload` answers Output "Dialplan reloaded." and no event; Reload Module answers "Module Reloaded").
# Order: trunks and the AMI user first, the dialplan last, so the dialplan never points at a queue not loaded yet.
RELOADS: dict[str, dict[str, str]] = {
    PJSIP: {"Action": "Reload", "Module": "res_pjsip"},
    MANAGER: {"Action": "Command", "Command": "manager reload"},
    FEATURES: {"Action": "Reload", "Module": "features"},
    QUEUES: {"Action": "Reload", "Module": "app_queue"},
    QUEUERULES: {"Action": "Reload", "Module": "app_queue"},
    EXTENSIONS: {"Action": "Command", "Command": "dialplan reload"},
}

# Modules a hotline Asterisk needs loaded (`hotline asterisk check`, AMI ModuleCheck).
REQUIRED_MODULES = ("pbx_config", "res_agi", "app_queue", "res_pjsip", "chan_pjsip", "res_pjsip_session", "app_dial")

_VERSION = re.compile(r"^; Routing table .* version (\S+)\.$", re.MULTILINE)
_SECTION = re.compile(r"^\[([^\]\s]+)\]", re.MULTILINE)


def include_pattern(name: str) -> re.Pattern[str]:
    """`#include name`, `#include "name"`, `#include <name>` or #tryinclude, alone on its line (not commented)."""
    return re.compile(rf'^[ \t]*#(?:try)?include[ \t]+[<"]?{re.escape(name)}[>"]?[ \t]*$', re.MULTILINE)


def has_include(admin_text: str, ours: str) -> bool:
    return include_pattern(ours).search(admin_text) is not None


def with_include(admin_text: str, ours: str) -> str | None:
    """The admin's file with `#include ours` appended, or None when it already includes it (idempotent)."""
    if has_include(admin_text, ours):
        return None
    sep = "" if admin_text == "" or admin_text.endswith("\n") else "\n"
    return f"{admin_text}{sep}; added by `hotline asterisk apply`: the generated hotline config\n#include {ours}\n"


@dataclass(frozen=True)
class Plan:
    """What an apply changes: our files that differ, admin files that get their include, what to reload."""
    ours: dict[str, str]                       # name -> new text, only those that differ from the confdir
    admin: dict[str, str]                      # admin file name -> text with our include added
    reloads: list[str] = field(default_factory=list)   # our file names whose module is reloaded, in RELOADS order

    @property
    def empty(self) -> bool:
        return not self.ours and not self.admin

    @property
    def touched(self) -> list[str]:
        return sorted(self.ours) + sorted(self.admin)


def plan(rendered: Mapping[str, str], installed: Mapping[str, str | None],
         admin: Mapping[str, str | None]) -> Plan:
    """`installed`: our files as they are in the confdir (None: absent); `admin`: the admin's files (None:
    absent, created with only the include). A module is reloaded when its file's settings or its include
    changed: a file whose only change is a comment (the table version in every header) is installed, not reloaded."""
    ours = {name: text for name, text in rendered.items() if installed.get(name) != text}
    meaningful = {name for name, text in ours.items()
                  if installed.get(name) is None or _settings(installed[name]) != _settings(text)}
    edits: dict[str, str] = {}
    for name in rendered:
        if name in INCLUDED_BY_OURS:
            continue
        admin_name = INCLUDED_FROM[name]
        new = with_include(admin.get(admin_name) or "", name)
        if new is not None:
            edits[admin_name] = new
    changed = ({INCLUDED_BY_OURS.get(name, name) for name in meaningful}
               | {name for name in rendered if INCLUDED_FROM.get(name) in edits})
    reloads = [name for name in RELOADS if name in changed]
    if QUEUES in reloads and QUEUERULES in reloads:   # reloading app_queue reads its rules too: once is enough
        reloads.remove(QUEUERULES)
    return Plan(ours, edits, reloads)


def _settings(text: str) -> list[str]:
    """What Asterisk reads of a file: its lines without full-line comments and blank lines."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith(";")]


def table_version(text: str | None) -> str | None:
    """The routing table version in a generated file's header."""
    match = _VERSION.search(text or "")
    return match.group(1) if match else None


def sections(text: str) -> list[str]:
    return _SECTION.findall(text)


def contexts(extensions_text: str) -> list[str]:
    return [name for name in sections(extensions_text) if name not in ("general", "globals")]


def queues(queues_text: str) -> list[str]:
    return [name for name in sections(queues_text) if name != "general"]


def endpoints(pjsip_text: str) -> list[str]:
    """Sections with type=endpoint."""
    found, current = [], None
    for line in pjsip_text.splitlines():
        head = _SECTION.match(line)
        if head:
            current = head.group(1)
        elif current and re.fullmatch(r"\s*type\s*=\s*endpoint\s*", line):
            found.append(current)
    return found


def ami_users(manager_text: str) -> list[str]:
    return [name for name in sections(manager_text) if name != "general"]


# --- what the running Asterisk answered ------------------------------------------------------------------------

def missing_contexts(dialplan_show: str, wanted: list[str]) -> list[str]:
    """Contexts of ours that `dialplan show` does not list ("[ Context 'x' created by 'pbx_config' ]")."""
    have = set(re.findall(r"\[ Context '([^']+)' created by", dialplan_show))
    return [name for name in wanted if name not in have]


def missing_queues(queue_show: str, wanted: list[str]) -> list[str]:
    """Queues `queue show` does not list ("name has N calls (max ...")."""
    have = set(re.findall(r"^(\S+) has \d+ calls?", queue_show, re.MULTILINE))
    return [name for name in wanted if name not in have]


def engine_table_in_dialplan(dialplan_show: str) -> str | None:
    """The table version the running hotline-engine context compares the engine's answer with."""
    match = re.search(r'"\$\{HOTLINE_SAFE_TABLE\}" = "([-0-9A-Za-z]+)"', dialplan_show)
    return match.group(1) if match else None


ENGINE_CONTEXT = CTX_ENGINE


def engine_urls(extensions_text: str) -> list[str]:
    """The agi:// engines the rendered dialplan calls, in order (hagi:// names are resolved by Asterisk: skipped)."""
    seen: list[str] = []
    for url in re.findall(r"AGI\((agi://[^,)\s]+)", extensions_text):
        if url not in seen:
            seen.append(url)
    return seen
