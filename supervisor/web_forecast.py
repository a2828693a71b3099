"""The forecast page of the supervisors' view (issue 13): agents needed per queue and hour of the week, from
the call records, for admins and supervisors (viewers: 403), in Chinese or English, queue names from the table.

GET /forecast               the page (its form: period and target; forecast.js fetches the report into it)
GET /forecast/section       the report as an HTML fragment (traffic.report.forecast_section)
GET /forecast/report.css    the report's styles (one source with the HTML file `hotline traffic forecast --html`)
GET /api/forecast           the same forecast as JSON (UTC instants, hour of week 0 = Monday 00:00 local)
Mounted by one line in supervisor.web.create_app. The forecast is computed in a thread and kept for
CACHE_SECONDS per (period, target), so reloading the page does not recompute it.
"""
from __future__ import annotations

import asyncio
import html
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from supervisor.i18n import request_language, text

log = structlog.get_logger(__name__)
TEMPLATE = Path(__file__).resolve().parent / "templates" / "forecast.html"
ROLES = ("admin", "supervisor")
CACHE_SECONDS = 300.0
DEFAULT_DAYS = 28

# (start day | None, end day | None, target text) -> (Forecast, RoutingTable)
Provider = Callable[[date | None, date | None, str], Any]


def settings_provider(start: date | None, end: date | None, target: str):
    """The records database and routing table of the settings (HOTLINE_DB_URL, HOTLINE_ROUTING_TABLE)."""
    from records.db import make_engine
    from routing.loader import load_table
    from scripts.settings import load_settings
    from traffic.erlang import Target
    from traffic.forecast import build
    from traffic.source import call_facts, period_of

    settings = load_settings()
    table = load_table(settings.routing_table)
    engine = make_engine(settings.db_url)
    try:
        tz = table.timezone
        known = period_of(engine)
        last = end or (known[1].astimezone(tz).date() if known else datetime.now(tz).date())
        first = start or last - timedelta(days=DEFAULT_DAYS - 1)
        if start is None and known:      # not before the first record: empty days would thin the load out
            first = max(first, known[0].astimezone(tz).date())
        begin = datetime.combine(first, datetime.min.time(), tz)
        finish = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
        goal = Target.parse(target) if target else Target(0.80, float(table.service_level_seconds))
        return build(table, call_facts(engine, begin, finish), begin, finish, goal), table
    finally:
        engine.dispose()


def forecast_routes(current: Callable[[Request], Any], provider: Provider | None = None) -> list[Route]:
    provider = provider or settings_provider
    cache: dict[tuple, tuple[float, Any]] = {}

    def allowed(request: Request, page: bool = False) -> tuple[Any, str] | Response:
        found = current(request)
        lang = request_language(request)
        if found is None:
            return (RedirectResponse("/login", status_code=303) if page
                    else JSONResponse({"error": "login required"}, status_code=401))
        if found[1].role not in ROLES:
            message = text("forecast.forbidden", lang)
            return (HTMLResponse(f"<!doctype html><meta charset=utf-8><p>{html.escape(message)}</p>", status_code=403)
                    if page else JSONResponse({"error": message}, status_code=403))
        return found[1], lang

    def _day(value: str | None) -> date | None:
        return date.fromisoformat(value) if value else None

    async def compute(request: Request):
        q = request.query_params
        key = (q.get("from") or "", q.get("to") or "", q.get("target") or "")
        hit = cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        started = time.monotonic()
        result = await asyncio.to_thread(provider, _day(key[0]), _day(key[1]), key[2])
        cache[key] = (time.monotonic(), result)
        log.info("forecast.computed", start=key[0] or None, end=key[1] or None, target=key[2] or None,
                 seconds=round(time.monotonic() - started, 2))
        return result

    async def page(request: Request) -> Response:
        who = allowed(request, page=True)
        if isinstance(who, Response):
            return who
        user, lang = who
        body = TEMPLATE.read_text(encoding="utf-8")
        q = request.query_params
        values = {"lang": lang, "user": user.name, "role": user.role, "title": text("forecast.title", lang),
                  "back": text("forecast.back", lang), "from_label": text("forecast.from_date", lang),
                  "to_label": text("forecast.to_date", lang), "target_label": text("forecast.target_label", lang),
                  "show": text("forecast.show", lang), "loading": text("forecast.loading", lang),
                  "language": text("language.switch", lang), "other_lang": "en" if lang == "zh" else "zh",
                  "other_name": text("language.name", "en" if lang == "zh" else "zh"),
                  "from": q.get("from", ""), "to": q.get("to", ""), "target": q.get("target", "")}
        for key, value in values.items():
            body = body.replace("{{" + key + "}}", html.escape(value))
        return HTMLResponse(body, headers={"cache-control": "no-store"})

    async def section(request: Request) -> Response:
        who = allowed(request)
        if isinstance(who, Response):
            return who
        _user, lang = who
        from traffic.report import forecast_section
        try:
            fc, table = await compute(request)
        except (ValueError, OSError) as exc:   # a bad date or target, a table that does not load
            return HTMLResponse(f'<p class="error">{html.escape(text("forecast.error", lang, reason=str(exc)))}</p>',
                                status_code=400)
        return HTMLResponse(forecast_section(fc, table, lambda k, **p: text(k, lang, **p)),
                            headers={"cache-control": "no-store"})

    async def api(request: Request) -> Response:
        who = allowed(request)
        if isinstance(who, Response):
            return who
        from traffic.report import forecast_dict
        try:
            fc, table = await compute(request)
        except (ValueError, OSError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(forecast_dict(fc, table))

    async def css(request: Request) -> Response:
        from traffic.report import report_css
        return Response(report_css(), media_type="text/css")

    return [Route("/forecast", page), Route("/forecast/section", section), Route("/forecast/report.css", css),
            Route("/api/forecast", api)]
