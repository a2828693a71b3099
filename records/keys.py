"""The caller-hash key: from Settings (HOTLINE_CALLER_HASH_KEY or the secrets file), else a key generated
once into var/caller-hash.key (mode 0600). Losing the key means past calls can no longer be found by number.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import structlog

log = structlog.get_logger("records")

KEY_FILE_NAME = "caller-hash.key"


def caller_hash_key(configured: str | None, var_dir: Path) -> bytes:
    """The key's bytes (UTF-8 of the configured text). Generates and stores one if none is configured."""
    if configured:
        return configured.encode("utf-8")
    path = Path(var_dir) / KEY_FILE_NAME
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked: a reader never sees a half-written key.
    tmp = path.with_name(f".{KEY_FILE_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:   # another process generated it first: use theirs
        return _read(path)
    finally:
        tmp.unlink(missing_ok=True)
    log.warning("records.caller_hash_key_generated", path=str(path),
                advice="no HOTLINE_CALLER_HASH_KEY configured; back this file up or set the variable: "
                       "without the same key, earlier calls cannot be found by caller number")
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(f"caller-hash key file {path} is empty")
    return text.encode("utf-8")


def existing_key(configured: str | None, var_dir: Path) -> bytes | None:
    """The key if one is configured or was generated; None otherwise (a lookup must not invent a key)."""
    if configured:
        return configured.encode("utf-8")
    try:
        return _read(Path(var_dir) / KEY_FILE_NAME)
    except FileNotFoundError:
        return None


def key_from_settings(settings) -> bytes:
    from scripts.settings import VAR_DIR

    secret = settings.caller_hash_key.get_secret_value() if settings.caller_hash_key else None
    return caller_hash_key(secret, VAR_DIR)
