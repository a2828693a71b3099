"""Where the supervisor view finds its Asterisk servers and its own settings.

HOTLINE_AMI_SERVERS lists several servers: `haikou=10.0.0.5:5038,sanya=user@10.0.1.5:5038` (name=[user@]host:port,
separated by commas or spaces). Each server's secret is HOTLINE_AMI_SECRET_<NAME> (name upper-cased, '-' -> '_'),
else the common HOTLINE_AMI_SECRET; likewise its user. Without HOTLINE_AMI_SERVERS the one server of
scripts.settings (HOTLINE_AMI_HOST/PORT/USER/SECRET) is used, named by HOTLINE_AMI_NAME (default "pbx").
Secrets may also sit in the HOTLINE_SECRETS_FILE (KEY=value lines), like every other secret.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from scripts.settings import VAR_DIR, Settings
from supervisor.state import DEFAULT_SERVICE_LEVEL

_ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9_-]{1,32})=(?:(?P<user>[^@\s]+)@)?(?P<host>[^:\s]+):(?P<port>\d{1,5})$")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class AmiServer:
    name: str
    host: str
    port: int
    user: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class WebOptions:
    service_level: int = DEFAULT_SERVICE_LEVEL
    secure_cookie: bool = False  # HOTLINE_WEB_SECURE_COOKIE=1 behind HTTPS
    metrics_token: str | None = None  # HOTLINE_METRICS_TOKEN: require "Authorization: Bearer <token>" on /metrics
    audit_path: Path = VAR_DIR / "supervisor-audit.jsonl"
    history_hours: float = 6.0
    sample_interval: float = 5.0


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment over the secrets file's KEY=value lines (the environment wins)."""
    environ = dict(os.environ if environ is None else environ)
    merged: dict[str, str] = {}
    secrets_file = environ.get("HOTLINE_SECRETS_FILE")
    if secrets_file and Path(secrets_file).exists():
        for line in Path(secrets_file).read_text(encoding="utf-8").splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                merged[key.strip()] = value.strip().strip('"').strip("'")
    merged.update(environ)
    return merged


def _per_server(env: Mapping[str, str], key: str, name: str) -> str | None:
    return env.get(f"HOTLINE_AMI_{key}_{name.upper().replace('-', '_')}")


def ami_servers(settings: Settings, environ: Mapping[str, str] | None = None) -> list[AmiServer]:
    env = environment(environ)
    common_secret = settings.ami_secret.get_secret_value() if settings.ami_secret else env.get("HOTLINE_AMI_SECRET", "")
    listed = env.get("HOTLINE_AMI_SERVERS", "").strip()
    if not listed:
        name = env.get("HOTLINE_AMI_NAME", "pbx")
        return [AmiServer(name, settings.ami_host, settings.ami_port, settings.ami_user,
                          _per_server(env, "SECRET", name) or common_secret)]
    servers: list[AmiServer] = []
    for item in re.split(r"[,\s]+", listed):
        if not item:
            continue
        m = _ENTRY.match(item)
        if m is None:
            raise ConfigError(f"HOTLINE_AMI_SERVERS: {item!r} is not name=[user@]host:port")
        name = m["name"]
        if any(s.name == name for s in servers):
            raise ConfigError(f"HOTLINE_AMI_SERVERS: server {name!r} listed twice")
        user = m["user"] or _per_server(env, "USER", name) or settings.ami_user
        servers.append(AmiServer(name, m["host"], int(m["port"]), user,
                                 _per_server(env, "SECRET", name) or common_secret))
    return servers


def web_options(environ: Mapping[str, str] | None = None) -> WebOptions:
    env = environment(environ)
    try:
        service_level = int(env.get("HOTLINE_SERVICE_LEVEL", DEFAULT_SERVICE_LEVEL))
    except ValueError:
        raise ConfigError("HOTLINE_SERVICE_LEVEL must be a whole number of seconds") from None
    audit = env.get("HOTLINE_SUPERVISOR_AUDIT")
    return WebOptions(
        service_level=service_level,
        secure_cookie=env.get("HOTLINE_WEB_SECURE_COOKIE", "").lower() in ("1", "true", "yes"),
        metrics_token=env.get("HOTLINE_METRICS_TOKEN") or None,
        audit_path=Path(audit) if audit else WebOptions.audit_path,
    )
