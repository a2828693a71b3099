"""The override switches in the web view: every user sees the active ones (the banner); admins flip them.

Mounted by supervisor.web.create_app with one line. Reads and flips go through records.switches in a worker
thread (the database must not hold up the live view). A flip needs the admin role and the session's CSRF
token, like every other action; it lands in switch_events (who, when, why, until) and in the supervisors'
audit trail. The names come from the routing table (zh/en), read again when the file changes; times are
shown in the table's time zone.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supervisor.i18n import request_language, text

log = structlog.get_logger(__name__)
FLIP_PERMISSION_ROLE = "admin"


class SwitchDesk:
    """The table's switches and the store, loaded lazily from the settings (HOTLINE_ROUTING_TABLE, HOTLINE_DB_URL)."""

    def __init__(self, table_path: Path | None = None, db_url: str | None = None) -> None:
        self.table_path, self.db_url = table_path, db_url
        self._table, self._stamp, self._store = None, None, None

    def _settings(self) -> None:
        if self.table_path is None or self.db_url is None:
            from scripts.settings import load_settings
            settings = load_settings()
            self.table_path = self.table_path or settings.routing_table
            self.db_url = self.db_url or settings.db_url

    def table(self):
        self._settings()
        stamp = Path(self.table_path).stat().st_mtime_ns
        if self._table is None or stamp != self._stamp:
            from routing.loader import load_table
            self._table, self._stamp = load_table(self.table_path), stamp   # a broken edit keeps the last one
        return self._table

    def store(self):
        self._settings()
        if self._store is None:
            from records.switches import SwitchStore
            self._store = SwitchStore.for_url(self.db_url)
        return self._store

    def listing(self, lang: str, now: datetime) -> dict[str, Any]:
        table = self.table()
        snapshot = self.store().snapshot()
        tz = table.timezone

        def local(value: datetime | None) -> str | None:
            return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else None

        rows = []
        for name, sw in table.switches.items():
            state = snapshot.states.get(name)
            on = bool(state and state.on_at(now))
            row = {"name": name, "title": sw.name(lang), "code": sw.code, "on": on, "effects": effects(table, sw, lang),
                   "by": state.changed_by if state else None, "via": state.via if state else None,
                   "at": local(state.changed_at) if state else None, "why": state.why if state else None,
                   "until": local(state.until) if state and state.active else None}
            if on:
                row["banner"] = text("switches.banner" + (".until" if state.until else ""), lang,
                                     title=row["title"], by=row["by"], at=row["at"], why=row["why"],
                                     until=row["until"] or "")
            rows.append(row)
        return {"switches": rows, "timezone": tz.key, "revision": snapshot.revision}

    def flip(self, name: str, active: bool, user: str, why: str, until_text: str, now: datetime):
        table = self.table()
        until = parse_until(until_text, now, table.timezone) if active else None
        return self.store().flip(name, active, by=user, via="web", why=why, at=now, until=until,
                                 known=table.switches)


def effects(table, switch, lang: str) -> str:
    """What a switch does, in the user's language, with the table's names for queues and lines."""
    parts = []
    if switch.prompts:
        parts.append(text("switches.effect.prompts", lang))
    if switch.queue:
        parts.append(text("switches.effect.queue", lang, queue=table.queues[switch.queue].name))
    if switch.closed:
        parts.append(text("switches.effect.closed", lang))
    if switch.work_orders_only:
        parts.append(text("switches.effect.work_orders", lang))
    where = (text("switches.effect.lines", lang, lines="、".join(switch.lines) if lang == "zh" else ", ".join(switch.lines))
             if switch.lines else text("switches.effect.all_lines", lang))
    return ("；" if lang == "zh" else "; ").join(parts) + f" — {where}"


def parse_until(value: str, now: datetime, tz) -> datetime | None:
    """The form's `until`: empty, hours from now ("2"), or a local date-time (2026-12-02T08:00)."""
    from records.switches import SwitchError
    value = (value or "").strip()
    if not value:
        return None
    try:
        return now + timedelta(hours=float(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SwitchError(f"'{value[:40]}' is not a time (2026-12-02T08:00) or a number of hours") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def switch_routes(hub: Any, current_user: Callable, csrf_ok: Callable, session_csrf: Callable,
                  read_form: Callable, desk: SwitchDesk | None = None) -> list[Route]:
    desk = desk or getattr(hub, "switch_desk", None) or SwitchDesk()

    async def api_switches(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        lang = request_language(request)
        try:
            data = await asyncio.to_thread(desk.listing, lang, datetime.now(timezone.utc))
        except Exception as exc:
            # the live view goes on without the switches' state; an admin is told why there is no panel
            log.warning("switches.web_unavailable", error=f"{type(exc).__name__}: {exc}")
            data = {"switches": [], "error": text("switches.unavailable", lang)}
        data["may_flip"] = user.role == FLIP_PERMISSION_ROLE
        data["labels"] = {k: text(f"switches.{k}", lang) for k in ("panel", "on", "off", "why", "until", "turn_on",
                                                                   "turn_off", "state_on", "state_off", "last")}
        return JSONResponse(data)

    async def api_flip(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        lang = request_language(request)
        form = await read_form(request)
        if form is None:
            return JSONResponse({"ok": False, "message": "unreadable request"}, status_code=400)
        if not csrf_ok(request, form, session_csrf(request)):
            return JSONResponse({"ok": False, "message": "CSRF token missing or wrong"}, status_code=403)
        name, word = request.path_params["name"], request.path_params["word"]
        if word not in ("on", "off"):
            return JSONResponse({"ok": False, "message": "on or off"}, status_code=404)
        if user.role != FLIP_PERMISSION_ROLE:
            log.warning("switches.flip_forbidden", user=user.name, role=user.role, switch=name)
            return JSONResponse({"ok": False, "message": text("switches.admins_only", lang)}, status_code=403)
        from records.switches import SwitchError
        now = datetime.now(timezone.utc)
        params = {"switch": name, "why": form.get("why", "")[:500], "until": form.get("until", "")[:40]}
        try:
            state, revision = await asyncio.to_thread(desk.flip, name, word == "on", user.name,
                                                      form.get("why", ""), form.get("until", ""), now)
        except SwitchError as exc:
            return JSONResponse({"ok": False, "message": str(exc)}, status_code=400)
        except Exception as exc:
            log.error("switches.flip_failed", switch=name, error=f"{type(exc).__name__}: {exc}")
            return JSONResponse({"ok": False, "message": text("switches.unavailable", lang)}, status_code=503)
        log.info("switches.flipped", switch=name, on=state.active, by=user.name, via="web", revision=revision)
        apply_locally = getattr(hub, "on_switch_flipped", None)   # the engine in this process (hotline serve)
        if apply_locally is not None:
            apply_locally(state, revision)
        if getattr(hub, "audit", None) is not None:
            try:
                await asyncio.to_thread(hub.audit.record, at=now.timestamp(), user=user.name, role=user.role,
                                        action=f"switch_{word}", params=params, result="ok")
            except Exception as exc:       # the flip itself is already audited in switch_events
                log.error("switches.audit_failed", error=str(exc))
        title = desk.table().switches[name].name(lang)
        return JSONResponse({"ok": True, "revision": revision,
                             "message": text(f"switches.flipped_{word}", lang, title=title)})

    return [Route("/api/switches", api_switches),
            Route("/api/switches/{name}/{word:str}", api_flip, methods=["POST"])]
