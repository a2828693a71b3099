"""Render the Asterisk configuration from the routing table, write it, or show what a render would change.

`render(table, options)` is pure: the same table and options give the same bytes. Secrets are passed in
`options.secrets`; a missing one is logged by variable name only (never a value).
"""
from __future__ import annotations

import difflib
import os
import re
import tempfile
from pathlib import Path
from typing import Mapping

import structlog

from dialplan.agents import FILENAME as AGENTS, RULES_FILENAME as QUEUERULES, render_agents, render_queue_rules
from dialplan.extensions import FILENAME as EXTENSIONS, render_extensions
from dialplan.facts import Facts, gather
from dialplan.features import FILENAME as FEATURES, render_features
from dialplan.manager import FILENAME as MANAGER, render_manager
from dialplan.options import RenderOptions
from dialplan.pjsip import FILENAME as PJSIP, render_pjsip, trunk_secret_names
from dialplan.queues import FILENAME as QUEUES, render_queues
from dialplan.switches import FILENAME as SWITCHES, render_switches, switch_pin_names
from routing.model import RoutingTable

log = structlog.get_logger()

FILES = (EXTENSIONS, AGENTS, SWITCHES, FEATURES, MANAGER, PJSIP, QUEUERULES, QUEUES)
SECRET_FILES = frozenset({PJSIP, MANAGER, AGENTS, SWITCHES})     # may hold a password or PINs: written 0600
MASK = "********"

_RENDERERS = {
    EXTENSIONS: render_extensions,
    AGENTS: render_agents,
    FEATURES: render_features,
    MANAGER: render_manager,
    PJSIP: render_pjsip,
    QUEUES: render_queues,
    SWITCHES: render_switches,
    QUEUERULES: render_queue_rules,
}


def required_secrets(table: RoutingTable, options: RenderOptions) -> list[str]:
    """Variable names the rendered files need: trunk secrets (Trunk.secret_env), the AMI secret, agents' PINs."""
    pins = set(options.agents.pin_names()) if options.agents else set()
    return sorted(set(trunk_secret_names(gather(table))) | {options.ami_secret_env} | pins)


def secret_names(table: RoutingTable, options: RenderOptions) -> list[str]:
    """Every secret a render may use: the required ones and the override switches' phone PINs, which are optional
    (without one the switch's phone code refuses; the web view and the CLI flip it all the same)."""
    return sorted(set(required_secrets(table, options)) | set(switch_pin_names(table.switches.values())))


def missing_secrets(table: RoutingTable, options: RenderOptions) -> list[str]:
    return [name for name in required_secrets(table, options) if not options.secrets.get(name)]


def render(table: RoutingTable, options: RenderOptions | None = None) -> dict[str, str]:
    options = options or RenderOptions()
    facts: Facts = gather(table)
    for name in missing_secrets(table, options):
        log.warning("dialplan.secret_missing", variable=name,
                    hint="set it in the environment or the --secrets file; a placeholder comment was rendered")
    for name in switch_pin_names(table.switches.values()):
        if not options.secrets.get(name):
            log.warning("dialplan.switch_pin_missing", variable=name,
                        hint="the override switches' phone codes refuse until it is set (web and CLI still work)")
    files = {name: _RENDERERS[name](facts, options) for name in FILES}
    log.info("dialplan.rendered", table_version=table.version, files=len(files))
    return files


def file_mode(name: str) -> int:
    return 0o600 if name in SECRET_FILES else 0o644


def write_files(files: Mapping[str, str], out_dir: str | Path) -> list[str]:
    """Write the files that changed (atomically: temp file + rename); returns their names.

    Secret-bearing files are created 0600 before any byte is written, so a password is never world-readable.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    changed = []
    for name in sorted(files):
        target = out / name
        data = files[name].encode("utf-8")
        mode = file_mode(name)
        if target.exists() and target.read_bytes() == data and (target.stat().st_mode & 0o777) == mode:
            continue
        write_atomic(target, data, mode)
        changed.append(name)
    return changed


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data` at `mode` in one rename: Asterisk never reads half a file, nor a secret file
    that is briefly world-readable (mkstemp creates it 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def diff_files(files: Mapping[str, str], out_dir: str | Path) -> str:
    """Unified diff from what is in `out_dir` to what a render would write; secret values shown as MASK."""
    out = Path(out_dir)
    chunks = []
    for name in sorted(files):
        path = out / name
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        new = files[name]
        if old == new:
            continue
        old, new = mask_secrets(old), mask_secrets(new)   # the file may hold older values
        chunks.extend(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                           fromfile=f"{path}", tofile=f"{path} (rendered)"))
        if old == new:   # only a secret changed: say so without showing it
            chunks.append(f"--- {path}\n+++ {path} (rendered)\n# a secret value changed (not shown)\n")
    return "".join(chunks)


# The only places the renderers put a secret: pjsip auth `password=`, the manager user's `secret=` (and
# `md5_cred=`, which an older or hand-edited file may hold). The value is masked where it stands; never by
# searching the text for the secret, which would mask (and so point at) every other occurrence of its
# characters: a secret "a" would turn every letter a into the mask.
_SECRET_LINE = re.compile(r"^([ \t]*(?:password|secret|md5_cred)[ \t]*=>?[ \t]*)\S.*$", re.MULTILINE | re.IGNORECASE)


# An agent's or a switch's PIN stands in its code's comparison (dialplan/agents.py, dialplan/switches.py).
_PIN_COMPARE = re.compile(r'(\$\{HOTLINE_PIN\}\)\}" = ")[^"]*(")')


def mask_secrets(text: str) -> str:
    """Every password=/secret=/md5_cred= value and agent PIN masked, whatever it is (the file on disk may hold
    an older one)."""
    text = _SECRET_LINE.sub(lambda m: m.group(1) + MASK, text)
    return _PIN_COMPARE.sub(lambda m: m.group(1) + MASK + m.group(2), text)
