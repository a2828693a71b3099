"""Run-time settings: embedded defaults, overridden by HOTLINE_* environment variables.

Secrets (AMI secret, caller-hash key, web passwords, trunk credentials) come only from the environment or
from the secrets file named by HOTLINE_SECRETS_FILE (KEY=value lines, kept out of git); never from YAML.
"""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_ROOT / "conf"
VAR_DIR = PROJECT_ROOT / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", extra="ignore")

    routing_table: Path = CONF_DIR / "routing.yaml"
    ivr_menus: Path = CONF_DIR / "ivr.yaml"
    db_url: str = f"sqlite:///{VAR_DIR / 'hotline.sqlite3'}"
    spool_dir: Path = VAR_DIR / "spool"
    pid_file: Path = VAR_DIR / "hotline.pid"
    # The validated table+menus compiled for classic AGI (routing.config_snapshot); written on first use.
    config_snapshot: Path = VAR_DIR / "cache" / "config-snapshot.json"
    # A dry-run engine (`hotline serve --dry-run`) keeps all its state here and listens on its own port, so
    # testing beside production never touches production's pid file, records or web port.
    dry_run_dir: Path = VAR_DIR / "dry-run"
    dry_run_port: int = 4599
    # `routes check` and the engine's metric warn when a calendar in use has no data this many days ahead.
    calendar_warn_days: int = 60

    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agi_max_sessions: int = 10000            # concurrent calls; the open-files limit is raised to fit at start
    event_loop: str = "auto"                 # auto (uvloop when installed), asyncio, uvloop: scripts.runtime
    # Peers let in (comma-separated addresses/networks: the Asterisk boxes); any other address is closed at
    # accept. Loopback by default, like the AMI permit list; "0.0.0.0/0,::/0" lets every address in.
    agi_allow: str = "127.0.0.0/8,::1"
    agi_max_pending: int = 1024              # connections still sending their agi_* block (never a call slot)
    agi_max_pending_per_address: int = 512

    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "hotline"
    ami_secret: SecretStr | None = None

    web_host: str = "127.0.0.1"
    web_port: int = 8345

    caller_hash_key: SecretStr | None = None
    callback_key: SecretStr | None = None   # Fernet key(s) for callback numbers at rest ("new,old" rotates)


def load_settings() -> Settings:
    """Settings from the environment; the admin's secrets file (HOTLINE_SECRETS_FILE) fills what it leaves unset."""
    secrets_file = os.environ.get("HOTLINE_SECRETS_FILE")
    return Settings(_env_file=secrets_file) if secrets_file else Settings()
