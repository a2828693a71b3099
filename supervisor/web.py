"""The supervisors' web view: an ASGI app (Starlette), served by uvicorn.

Login with roles and a back-off per name and address, a server-side session (supervisor.sessions: the cookie is
a random id, revocable, with an idle and an absolute lifetime), a CSRF token in the session that every POST must
echo (X-CSRF-Token header or csrf_token form field; before login a double-submit cookie), masked caller numbers
for every role but admin (masked in the data sent, not in the browser), live updates by server-sent events,
actions sent through the AmiClient and audited. Everything (HTML, JS, CSS) is served from this package: no CDN.

Language: Chinese unless the user chose English (the `hotline_lang` cookie, set by the page's language buttons
and kept a year) or, without a choice, the browser's Accept-Language asks for English first. The pages are
filled from supervisor/messages/*.yaml (`{{t:key}}`), and the page carries the catalogue of its language as a
JSON data block for app.js, so the server and the browser speak with one voice.
"""
from __future__ import annotations

import asyncio
import html
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response,
                                 StreamingResponse)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from supervisor import i18n, metrics, web_agents
from supervisor.actions import ACTIONS
from supervisor.auth import LoginThrottle, User, authenticate
from supervisor.hub import SupervisorHub
from supervisor.sessions import Session, SessionStore
from supervisor.web_forecast import forecast_routes
from supervisor.web_switches import switch_routes

log = structlog.get_logger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MAX_BODY = 16 * 1024
SESSION_COOKIE = "hotline_session"
LOGIN_COOKIE = "hotline_login"  # the login form's CSRF token (double submit), before there is a session
LANG_MAX_AGE = 365 * 24 * 3600
_TEXT_SLOT = re.compile(r"\{\{t:([a-z0-9_.]+)\}\}")


def fill(template: str, lang: str, values: Mapping[str, str], raw: Mapping[str, str] | None = None) -> str:
    """`{{t:key}}` -> the message in `lang`; `{{name}}` -> values (escaped) or raw (trusted HTML/JSON)."""
    body = _TEXT_SLOT.sub(lambda m: html.escape(i18n.text(m[1], lang)), template)
    for key, value in values.items():
        body = body.replace("{{" + key + "}}", html.escape(value))
    for key, value in (raw or {}).items():
        body = body.replace("{{" + key + "}}", value)
    return body


def catalogue_json(lang: str) -> str:
    """The catalogue as a JSON data block: '<' escaped so no text can close the script element."""
    return json.dumps(i18n.messages_for(lang), ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def language_switch(lang: str, next_path: str) -> str:
    buttons = "".join(
        f'<button type="submit" name="lang" value="{code}" aria-pressed="{str(code == lang).lower()}"'
        f' lang="{code}">{html.escape(i18n.text("language.name", code))}</button>' for code in i18n.LANGUAGES)
    return (f'<form method="post" action="/lang" class="lang" aria-label="{html.escape(i18n.text("language.switch", lang))}">'
            f'<input type="hidden" name="next" value="{html.escape(next_path)}">{buttons}</form>')
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium send Origin: null on form posts
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    """Pure ASGI middleware (never buffers, so the event stream flows)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS.items():
                    if key.lower().encode() not in present:
                        headers.append((key.lower().encode(), value.encode()))
                if scope["path"].startswith("/api/") or scope["path"] in ("/", "/login"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(hub: SupervisorHub, users: Mapping[str, User], *, secure_cookie: bool = False,
               metrics_token: str | None = None, sessions: SessionStore | None = None,
               throttle: LoginThrottle | None = None, refresher: Any = None) -> Starlette:
    registry = metrics.make_registry(hub.state, hub.clock)
    sessions = sessions or SessionStore()
    throttle = throttle or LoginThrottle()

    # ---- session helpers ------------------------------------------------------------------------------
    def current(request: Request) -> tuple[Session, User] | None:
        return sessions.get(request.cookies.get(SESSION_COOKIE), users)

    def current_user(request: Request) -> User | None:
        found = current(request)
        return found[1] if found else None

    def set_cookie(response: Response, name: str, value: str, max_age: float | None, path: str = "/") -> None:
        response.set_cookie(name, value, max_age=None if max_age is None else int(max_age), path=path,
                            httponly=True, samesite="strict", secure=secure_cookie)

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if not origin or origin == "null":
            return origin is None  # "null" (sandboxed/file) is never ours
        return urlsplit(origin).netloc == request.headers.get("host", "")

    async def read_form(request: Request) -> dict[str, str] | None:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return None
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind == "application/json":
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return None
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in parsed.items()}

    def csrf_ok(request: Request, form: Mapping[str, str], expected: str | None) -> bool:
        given = request.headers.get("x-csrf-token") or form.get("csrf_token") or ""
        return (isinstance(expected, str) and len(expected) >= 32 and secrets.compare_digest(expected, given)
                and same_origin(request))

    def session_csrf(request: Request) -> str | None:
        found = current(request)
        return found[0].csrf if found else None

    def unauthorised(request: Request) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "login required"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    # ---- pages ----------------------------------------------------------------------------------------
    def login_page(request: Request, message: str = "", status: int = 200,
                   headers: Mapping[str, str] | None = None, **params: Any) -> Response:
        token = request.cookies.get(LOGIN_COOKIE, "")
        if len(token) < 32:
            token = secrets.token_urlsafe(32)
        lang = i18n.request_language(request)
        body = fill((TEMPLATES_DIR / "login.html").read_text(encoding="utf-8"), lang,
                    {"csrf": token, "lang": lang, "message": i18n.text(message, lang, **params) if message else ""},
                    {"lang_switch": language_switch(lang, "/login")})
        response = HTMLResponse(body, status_code=status, headers=dict(headers or {}))
        set_cookie(response, LOGIN_COOKIE, token, None, path="/login")
        return response

    async def login_get(request: Request) -> Response:
        if current_user(request):
            return RedirectResponse("/", status_code=303)
        return login_page(request)

    async def login_post(request: Request) -> Response:
        form = await read_form(request)
        if form is None or not csrf_ok(request, form, request.cookies.get(LOGIN_COOKIE)):
            return login_page(request, "view.login.expired", 403)
        name, password = form.get("username", "").strip()[:64], form.get("password", "")[:256]
        address = request.client.host if request.client else "?"
        # checked and counted in one step before the slow hash: parallel guesses cannot all get through
        wait = throttle.attempt(name, address, time.monotonic())
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            log.debug("supervisor.login_throttled", user=name, address=address, wait=seconds)  # cheap, so many
            return login_page(request, "view.login.throttled", 429, {"Retry-After": str(seconds)}, n=seconds)
        user = await asyncio.to_thread(authenticate, users, name, password) if name and password else None
        if user is None:
            log.warning("supervisor.login_failed", user=name, address=address)
            return login_page(request, "view.login.wrong", 401)
        throttle.succeeded(name, address)
        log.info("supervisor.login", user=user.name, role=user.role)
        sessions.end(request.cookies.get(SESSION_COOKIE))  # a fresh session (and CSRF token) at every login
        session = sessions.open(user)
        response = RedirectResponse("/", status_code=303)
        set_cookie(response, SESSION_COOKIE, session.id, sessions.lifetime)
        return response

    async def logout(request: Request) -> Response:
        form = await read_form(request) or {}
        found = current(request)
        if found is not None and not csrf_ok(request, form, found[0].csrf):
            return PlainTextResponse("CSRF token missing or wrong", status_code=403)
        if found is not None:
            sessions.end(found[0].id)  # the id is dead on the server: a copy of the cookie opens nothing
            log.info("supervisor.logout", user=found[1].name)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=secure_cookie)
        return response

    async def index(request: Request) -> Response:
        found = current(request)
        if found is None:
            return unauthorised(request)
        session, user = found
        lang = i18n.request_language(request)
        role_key = f"view.role.{user.role}"
        body = fill((TEMPLATES_DIR / "index.html").read_text(encoding="utf-8"), lang,
                    {"csrf": session.csrf, "user": user.name, "role": user.role, "lang": lang,
                     "role_label": i18n.text(role_key, lang) if role_key in i18n.catalog() else user.role,
                     "phone": user.phone, "sl": str(hub.state.service_level),
                     "zone": hub.state.directory.timezone},
                    {"messages": catalogue_json(lang), "lang_switch": language_switch(lang, "/")})
        return HTMLResponse(body)

    async def set_language(request: Request) -> Response:
        form = await read_form(request) or {}
        if not same_origin(request):  # no token needed for a harmless choice, but only from our own pages
            return PlainTextResponse("cross-site request refused", status_code=403)
        target = form.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        response = RedirectResponse(target, status_code=303)
        chosen = form.get("lang", "")
        if chosen in i18n.LANGUAGES:
            response.set_cookie(i18n.LANG_COOKIE, chosen, max_age=LANG_MAX_AGE, path="/", httponly=True,
                                samesite="lax", secure=secure_cookie)
        return response

    # ---- data -----------------------------------------------------------------------------------------
    def view_for(user: User, lang: str) -> dict[str, Any]:
        view = hub.state.view(hub.clock(), full_numbers=user.may("full_numbers"), lang=lang)
        view["lang"] = lang
        view["backlog"] = refresher.backlog if refresher is not None else {"available": False}
        view["user"] = {"name": user.name, "role": user.role,
                        "may": sorted(p for p in ("pause", "unpause", "add", "remove", "listen", "whisper",
                                                  "barge", "audit", "full_numbers") if user.may(p))}
        return view

    async def api_state(request: Request) -> Response:
        user = current_user(request)
        return JSONResponse(view_for(user, i18n.request_language(request))) if user else unauthorised(request)

    async def api_history(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return unauthorised(request)
        try:
            hours = min(max(float(request.query_params.get("hours", "3")), 0.05), hub.history.max_age / 3600)
        except ValueError:
            hours = 3.0
        return JSONResponse({"now": hub.clock(), "hours": hours,
                             "series": hub.history.series(hub.clock(), hours * 3600)})

    async def api_events(request: Request) -> Response:
        found = current(request)
        if found is None:
            return unauthorised(request)
        session_id, user = found[0].id, found[1]
        lang = i18n.request_language(request)

        async def stream():
            yield "retry: 2000\n\n"
            # the stream lives as long as its session: logout, a password change or expiry end it too
            while sessions.get(session_id, users) is not None:
                version = hub.state.version
                yield f"event: state\ndata: {json.dumps(view_for(user, lang), separators=(',', ':'))}\n\n"
                # wake on the next AMI change (or one that came while sending); otherwise once a second so
                # the wait clocks move
                if hub.state.version != version or await hub.wait_change(1.0):
                    await asyncio.sleep(0.05)  # fold a burst of events into one frame

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def api_action(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return unauthorised(request)
        lang = i18n.request_language(request)
        form = await read_form(request)
        if form is None:
            return JSONResponse({"ok": False, "message": i18n.text("view.err.invalid", lang, detail="?"),
                                 "detail": "unreadable request"}, status_code=400)
        if not csrf_ok(request, form, session_csrf(request)):
            return JSONResponse({"ok": False, "message": i18n.text("view.err.csrf", lang),
                                 "detail": "CSRF token missing or wrong"}, status_code=403)
        kind = request.path_params["kind"]
        names = action_names(form, lang)  # before the action: a removed member is gone afterwards
        result = await hub.perform(user, kind, form)
        forbidden = kind in ACTIONS and not user.may(kind)
        status = 200 if result["ok"] else (403 if forbidden else 400)
        # the user reads our words in their language; Asterisk's own reply stays in `detail` and the audit
        message = i18n.text(result.get("code", "view.err.invalid"), lang, role=user.role,
                            detail=result["message"], **names)
        return JSONResponse({**result, "message": message, "detail": result["message"]}, status_code=status)

    def action_names(form: Mapping[str, str], lang: str) -> dict[str, str]:
        queue = str(form.get("queue", ""))[:64]
        interface = str(form.get("interface", ""))[:120]
        server = hub.state.servers.get(str(form.get("server", "")))
        known = server.queues.get(queue) if server else None
        member = known.members.get(interface) if known else None
        shown = (member.name if member and member.name else form.get("member_name") or interface)[:64]
        return {"member": shown, "queue": hub.state.directory.queue_title(queue, lang)}

    async def api_audit(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return unauthorised(request)
        if not user.may("audit"):
            return JSONResponse({"error": "admins only"}, status_code=403)
        # in a thread: with the SQL trail a slow database must not hold up the live view
        entries = await asyncio.to_thread(hub.audit.tail, 200) if hub.audit else []
        return JSONResponse({"entries": entries})

    async def prometheus(request: Request) -> Response:
        if metrics_token:
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given, f"Bearer {metrics_token}"):
                return PlainTextResponse("bearer token required", status_code=401)
        return Response(metrics.render(registry), media_type=metrics.CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"servers": {name: s.connected for name, s in hub.state.servers.items()}})

    routes = [
        Route("/", index),
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang", set_language, methods=["POST"]),
        Route("/api/state", api_state),
        Route("/api/history", api_history),
        Route("/api/events", api_events),
        Route("/api/audit", api_audit),
        Route("/api/action/{kind}", api_action, methods=["POST"]),
        Route("/metrics", prometheus),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    routes[-1:-1] = switch_routes(hub, current_user, csrf_ok, session_csrf, read_form)   # override switches
    routes[-1:-1] = web_agents.routes(hub, current_user=current_user, read_form=read_form,    # agents' login
                                      csrf_ok=lambda r, f: csrf_ok(r, f, session_csrf(r)))
    routes[-1:-1] = forecast_routes(current)   # /forecast, /api/forecast (issue 13): admins and supervisors
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.sessions, app.state.throttle = sessions, throttle
    return app
