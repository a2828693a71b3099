"""The deployment's secret keys: from Settings (the environment or the secrets file), else a key generated once
into var/<name>.key (mode 0600) with a warning to back it up.

- caller-hash key (HOTLINE_CALLER_HASH_KEY, var/caller-hash.key): HMAC key of caller numbers. Losing it means
  past calls can no longer be found by number.
- callback key (HOTLINE_CALLBACK_KEY, var/callback.key): Fernet key that encrypts callback numbers at rest.
  Losing it means pending callbacks can no longer be called back. Several keys separated by commas rotate it:
  the first encrypts, all decrypt (records.callbacks).
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import structlog

log = structlog.get_logger("records")


@dataclass(frozen=True)
class KeySpec:
    label: str                       # for messages: "caller-hash key"
    file_name: str                   # under var/
    env_var: str                     # the setting that overrides the file
    generate: Callable[[], str]      # a fresh key as text
    warning: str                     # the event logged when a key had to be generated
    advice: str


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


CALLER_HASH = KeySpec(
    "caller-hash key", "caller-hash.key", "HOTLINE_CALLER_HASH_KEY", lambda: secrets.token_hex(32),
    "records.caller_hash_key_generated",
    "no HOTLINE_CALLER_HASH_KEY configured; back this file up or set the variable: without the same key, "
    "earlier calls cannot be found by caller number")
CALLBACK = KeySpec(
    "callback key", "callback.key", "HOTLINE_CALLBACK_KEY", _fernet_key,
    "records.callback_key_generated",
    "no HOTLINE_CALLBACK_KEY configured; back this file up or set the variable: without the same key, "
    "pending callback numbers cannot be decrypted and nobody can call those citizens back")

KEY_FILE_NAME = CALLER_HASH.file_name
CALLBACK_KEY_FILE_NAME = CALLBACK.file_name


def load_or_generate(spec: KeySpec, configured: str | None, var_dir: Path) -> bytes:
    """The key's bytes (UTF-8 of the configured text). Generates and stores one if none is configured."""
    if configured:
        return configured.encode("utf-8")
    path = Path(var_dir) / spec.file_name
    try:
        return _read(spec, path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked: a reader never sees a half-written key.
    tmp = path.with_name(f".{spec.file_name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(spec.generate() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:   # another process generated it first: use theirs
        return _read(spec, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.warning(spec.warning, path=str(path), advice=spec.advice)
    return _read(spec, path)


def existing(spec: KeySpec, configured: str | None, var_dir: Path) -> bytes | None:
    """The key if one is configured or was generated; None otherwise (a lookup must not invent a key)."""
    if configured:
        return configured.encode("utf-8")
    try:
        return _read(spec, Path(var_dir) / spec.file_name)
    except FileNotFoundError:
        return None


def _read(spec: KeySpec, path: Path) -> bytes:
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(f"{spec.label} file {path} is empty")
    return text.encode("utf-8")


# --- the caller-hash key -----------------------------------------------------------------------------
def caller_hash_key(configured: str | None, var_dir: Path) -> bytes:
    return load_or_generate(CALLER_HASH, configured, var_dir)


def existing_key(configured: str | None, var_dir: Path) -> bytes | None:
    return existing(CALLER_HASH, configured, var_dir)


def key_from_settings(settings) -> bytes:
    from scripts.settings import VAR_DIR

    secret = settings.caller_hash_key.get_secret_value() if settings.caller_hash_key else None
    return caller_hash_key(secret, VAR_DIR)


# --- the callback key --------------------------------------------------------------------------------
def configured_callback_key(settings=None) -> str | None:
    """HOTLINE_CALLBACK_KEY, from the environment or the secrets file (HOTLINE_SECRETS_FILE), via Settings."""
    if settings is None:
        from scripts.settings import load_settings
        settings = load_settings()
    return settings.callback_key.get_secret_value() if settings.callback_key else None


def callback_key_from_settings(settings=None) -> bytes:
    """The callback key (generated into var/callback.key when none is configured): for the recorder."""
    from scripts.settings import VAR_DIR

    return load_or_generate(CALLBACK, configured_callback_key(settings), VAR_DIR)


def existing_callback_key(settings=None, var_dir: Path | None = None) -> bytes | None:
    """The callback key if configured or generated before; None otherwise (reading must not invent a key)."""
    if var_dir is None:
        from scripts.settings import VAR_DIR as var_dir
    return existing(CALLBACK, configured_callback_key(settings), var_dir)
