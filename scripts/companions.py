"""What runs beside the FastAGI engine in `hotline serve`: AMI links, call outcomes, the supervisor view, and
the audit of routing-table loads. Each part is optional and fails alone: calls are routed whatever happens here.
"""
from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import os
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from scripts.settings import VAR_DIR, Settings

log = structlog.get_logger()
RELOAD_REQUEST = VAR_DIR / "reload-request.json"
RELOAD_REQUEST_MAX_AGE = 60.0  # seconds: an older note cannot be about this SIGHUP


def operator_name() -> str:
    """The person behind a command: sudo keeps the real user in SUDO_USER."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def note_reload_request(path: Path = RELOAD_REQUEST) -> str:
    """`hotline reload` leaves who asked, so the server's audit entry names a person rather than a signal, and
    a request id the server's reload result answers to. Returns that id."""
    request_id = uuid.uuid4().hex
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"by": operator_name(), "at": time.time(), "id": request_id}), encoding="utf-8")
    return request_id


def take_reload_note(path: Path = RELOAD_REQUEST, now: float | None = None) -> tuple[str, str | None]:
    """(who asked, request id) of the note `hotline reload` left; a plain SIGHUP (systemctl reload) has none."""
    unknown = ("SIGHUP (sender unknown)", None)
    try:
        note = json.loads(path.read_text(encoding="utf-8"))
        path.unlink()
    except (OSError, ValueError):
        return unknown
    if (now or time.time()) - float(note.get("at", 0)) > RELOAD_REQUEST_MAX_AGE:
        return unknown
    return str(note.get("by") or unknown[0]), note.get("id")


def take_reload_request(path: Path = RELOAD_REQUEST, now: float | None = None) -> str:
    return take_reload_note(path, now)[0]


def loaded_text(source: str, version: str, mask: Any = None) -> str | None:
    """The file's text if it is still what was loaded (its hash is the version), for the audit trail."""
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError:
        return None
    if hashlib.sha256(text.encode()).hexdigest()[:len(version)] != version:
        log.warning("audit.source_changed_since_load", source=source, version=version)
        return None
    return mask(text) if mask else text


def record_config_versions(recorder: Any, config: Any, loaded_by: str) -> None:
    """Audit trail: which routing table and menus were put in force, by whom, when, and their text."""
    if recorder is None:
        return
    from records.types import TableVersion

    now = datetime.now(timezone.utc)
    table, menus = config.table, config.menus
    try:
        # The recorder masks the personal data in both texts before they reach the spool (records.audit_text).
        recorder.record_table_version(TableVersion(
            table.version, loaded_by, now, str(table.source), loaded_text(str(table.source), table.version)))
        recorder.record_table_version(TableVersion(
            menus.version, loaded_by, now, str(menus.source), loaded_text(str(menus.source), menus.version)))
    except Exception as exc:  # the audit never stops a reload
        log.error("audit.table_version_failed", error=f"{type(exc).__name__}: {exc}")
    log.info("config.in_force", table=config.table.version, menus=config.menus.version, loaded_by=loaded_by)


def ami_clients(settings: Settings) -> dict[str, Any]:
    """One AMI link per configured Asterisk server; none when no AMI secret is configured (engine alone)."""
    from supervisor.config import ConfigError, ami_servers
    from supervisor.service import make_clients

    try:
        if not any(server.secret for server in ami_servers(settings)):
            log.warning("ami.not_configured",
                        advice="set HOTLINE_AMI_SECRET for call outcomes, transfers and the live queue view")
            return {}
        return make_clients(settings)
    except ConfigError as exc:
        log.error("ami.config_invalid", error=str(exc))
        return {}


def feed_outcomes(clients: dict[str, Any], recorder: Any) -> None:
    """Queue events -> each call's outcome (answered, abandoned, wait) in the records."""
    if recorder is None:
        return
    from records.outcomes import QueueOutcomeTracker

    for name, client in clients.items():
        tracker = QueueOutcomeTracker(server=name)   # queue legs name their Asterisk server

        def on_event(event: dict[str, str], tracker: QueueOutcomeTracker = tracker) -> None:
            for record in tracker.feed(event, datetime.now(timezone.utc)):
                recorder.record(record)

        client.on_event(on_event)


async def start_web(settings: Settings, clients: dict[str, Any]) -> Any:
    """The supervisors' view, sharing the engine's AMI links; None if it cannot start (calls go on)."""
    from supervisor.config import ConfigError
    from supervisor.service import build_service

    try:
        service = build_service(settings, clients=clients, close_clients=False)
        await service.start()
        return service
    except (ConfigError, OSError, RuntimeError) as exc:
        log.error("supervisor.web_unavailable", error=f"{type(exc).__name__}: {exc}")
        return None


async def start_clients(clients: dict[str, Any]) -> None:
    await asyncio.gather(*(client.start() for client in clients.values()), return_exceptions=True)


async def close_clients(clients: dict[str, Any]) -> None:
    await asyncio.gather(*(client.close() for client in clients.values()), return_exceptions=True)
