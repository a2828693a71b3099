"""What a render needs besides the routing table: how Asterisk reaches the engine, names, and the secrets.

Secrets travel only inside RenderOptions.secrets (never printed: repr=False) and come from the environment or
the admin's KEY=value file; the routing YAML only names the variables.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from routing.agents import Roster

DEFAULT_AGI = "agi://127.0.0.1:4573"
AGI_SCRIPT = "route"                      # the FastAGI script name of the contract
AMI_SECRET_ENV = "HOTLINE_AMI_SECRET"

_HOST = re.compile(r"^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OptionsError(ValueError):
    """A render option that Asterisk could not use; the message says which and why."""


@dataclass(frozen=True)
class RenderOptions:
    # Engine endpoints tried in order, e.g. ("agi://10.0.0.5:4573", "agi://10.0.0.6:4573") or ("hagi://engines",).
    engines: tuple[str, ...] = (DEFAULT_AGI,)
    # Absolute limit for the whole engine step (IVR menus included); Asterisk then jumps to the `T` extension.
    engine_timeout: int = 300
    # Emergency-linkage DIDs: the engine only logs and dials; if it stalls the caller must not wait long.
    emergency_engine_timeout: int = 10
    transport: str = "transport-udp"      # the admin's pjsip transport section
    codecs: tuple[str, ...] = ("alaw", "ulaw")
    language: str = "zh"
    ami_username: str = "hotline"
    ami_secret_env: str = AMI_SECRET_ENV
    ami_permit: tuple[str, ...] = ("127.0.0.1/255.255.255.255",)
    announce_frequency: int = 60          # seconds between position/hold-time announcements
    prompt_all_busy: str = "hotline/all-agents-busy"
    prompt_agent_pin: str = "hotline/agent-pin"
    prompt_agent_logged_in: str = "hotline/agent-logged-in"
    prompt_agent_logged_out: str = "hotline/agent-logged-out"
    prompt_agent_refused: str = "hotline/agent-refused"
    prompt_switch_on: str = "hotline/switch-on"               # the override switches' phone codes (PIN: agent-pin)
    prompt_switch_off: str = "hotline/switch-off"
    prompt_switch_refused: str = "hotline/switch-refused"
    prompt_switch_failed: str = "hotline/switch-failed"
    # The agents file (routing.agents): their login/logout codes; their PINs are secrets, named by pin_env.
    agents: Roster | None = None
    # The emergency retry (attempts, pace, bound, announcement, next route) is the table's `emergency` section.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.engines:
            raise OptionsError("at least one engine endpoint is needed")
        for url in self.engines:
            _check_engine_url(url)
        if not _KEY.match(self.ami_secret_env):
            raise OptionsError(f"not a variable name: {self.ami_secret_env!r}")
        if not re.match(r"^[A-Za-z0-9_-]+$", self.ami_username):
            raise OptionsError(f"AMI user name must be letters, digits, '_' or '-': {self.ami_username!r}")
        if self.engine_timeout < 1 or self.emergency_engine_timeout < 1:
            raise OptionsError("engine timeouts must be at least 1 second")
        if not re.match(r"^[A-Za-z0-9_.-]+$", self.transport):
            raise OptionsError(f"pjsip transport must be a section name, got {self.transport!r}")


def engines_from(agi: str | None = None, agi_hosts: str | None = None, hagi: str | None = None) -> tuple[str, ...]:
    """The CLI's three mutually exclusive ways to name the engine, as AGI URL bases (no script)."""
    given = [x for x in (agi, agi_hosts, hagi) if x]
    if len(given) > 1:
        raise OptionsError("give only one of --agi, --agi-hosts, --hagi")
    if agi:
        url = agi.rstrip("/")
        _check_engine_url(url)
        if not url.startswith("agi://"):
            raise OptionsError(f"--agi wants agi://host:port, got {agi!r}")
        return (url,)
    if agi_hosts:
        urls = []
        for item in agi_hosts.split(","):
            item = item.strip()
            if not item:
                raise OptionsError(f"empty host in --agi-hosts {agi_hosts!r}")
            urls.append(item if item.startswith("agi://") else f"agi://{item}")
        for url in urls:
            _check_engine_url(url)
        return tuple(urls)
    if hagi:
        name = hagi.removeprefix("hagi://").rstrip("/")
        url = f"hagi://{name}"
        _check_engine_url(url)
        return (url,)
    return (DEFAULT_AGI,)


def _check_engine_url(url: str) -> None:
    """agi://host[:port] or hagi://name (SRV _agi._tcp.name); nothing Asterisk would split on (',', '|', ')')."""
    match = re.match(r"^(agi|hagi)://([^/:]+|\[[^\]]+\])(?::(\d+))?$", url)
    if not match:
        raise OptionsError(f"engine endpoint must be agi://host:port or hagi://name, got {url!r}")
    scheme, host, port = match.groups()
    if not _HOST.match(host):
        raise OptionsError(f"bad host in engine endpoint {url!r}")
    if scheme == "hagi" and port:
        raise OptionsError(f"hagi:// takes no port (DNS SRV _agi._tcp.{host} gives them): {url!r}")
    if port and not 0 < int(port) < 65536:
        raise OptionsError(f"bad port in engine endpoint {url!r}")


def read_secrets_file(path: str | Path) -> dict[str, str]:
    """KEY=value lines; '#' comments and blank lines ignored; surrounding quotes removed.

    Errors name the file and line, never the value.
    """
    values: dict[str, str] = {}
    text = Path(path).read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise OptionsError(f"{path}:{number}: expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def collect_secrets(names: list[str], environ: Mapping[str, str], file_values: Mapping[str, str]) -> dict[str, str]:
    """The environment wins over the secrets file (as in scripts/settings.py); empty values count as missing."""
    found: dict[str, str] = {}
    for name in names:
        value = environ.get(name) or file_values.get(name)
        if value:
            found[name] = value
    return found
