"""Plain-text frame of the live view for `hotline queues watch`. Pure: a view dict in, text out.

The same content as the web page, in the same language rules (Chinese unless `--lang en` / HOTLINE_LANG=en),
with the table's names, a line per server whose link is down (since when, figures frozen), a first-run hint
when no Asterisk is configured, and long caller lists folded to FOLD_CALLERS rows plus a count.
"""
from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from supervisor.i18n import text

FOLD_CALLERS = 8


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value * 100:4.0f}%"


def _dur(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}" if m < 60 else f"{m // 60}h{m % 60:02d}"


def _width(value: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in value)


def _pad(value: str, width: int, right: bool = False) -> str:
    """Pad by display width: a Chinese character takes two terminal columns."""
    gap = " " * max(0, width - _width(value))
    return gap + value if right else value + gap


def _clock(ts: float, zone: ZoneInfo, fmt: str = "%H:%M:%S") -> str:
    return datetime.fromtimestamp(ts, timezone.utc).astimezone(zone).strftime(fmt)


def _line_label(line: str, service: str) -> str:
    """"12320 卫生健康热线", not "12320 12320 卫生健康热线": most services start with their number."""
    if not service:
        return line or "?"
    return service if service.startswith(line) else f"{line} {service}"


def _queue_label(q: dict[str, Any]) -> str:
    title = q.get("title") or q["name"]
    return title if title == q["name"] else f"{title} [{q['name']}]"


def render(view: dict[str, Any], lang: str = "zh", backlog: dict[str, Any] | None = None) -> str:
    sl = view["service_level_seconds"]
    zone_name = view.get("timezone", "Asia/Shanghai")
    zone = ZoneInfo(zone_name)
    out = [text("view.text.header", lang, at=_clock(view["now"], zone, "%Y-%m-%d %H:%M:%S"), zone=zone_name, sl=sl)]
    if not view["servers"]:
        out += ["", text("view.firstrun.title", lang), text("view.firstrun.body", lang)]
        return "\n".join(out) + "\n"
    backlog = backlog or view.get("backlog") or {}
    if backlog.get("available") and not backlog.get("error"):
        callbacks, overdue = backlog.get("callbacks_pending", 0), backlog.get("workorders_overdue", 0)
    else:
        callbacks = overdue = "-"
    out.append(text("view.text.counters", lang, ivr=view.get("in_ivr", 0), callbacks=callbacks, overdue=overdue))
    columns = text("view.text.columns", lang).split("|")
    labels = [_queue_label(q) for server in view["servers"] for q in server["queues"]]
    widths = [max([22, _width(columns[0])] + [_width(label) for label in labels]), 5, 7, 5, 5, 5, 6, 5, 5, 5, 8]
    for server in view["servers"]:
        if server["connected"]:
            link = text("view.text.connected", lang)
        else:
            since = _clock(server["down_since"], zone, "%Y-%m-%d %H:%M:%S") if server.get("down_since") else "?"
            link = text("view.text.never" if server.get("synced_at") is None else "view.text.down", lang, since=since)
        out.append("")
        out.append(f"== {server['name']} ({link})")
        out.append("  " + " ".join(_pad(c, w, i > 0) for i, (c, w) in enumerate(zip(columns, widths))))
        for q in server["queues"]:
            by = q["members_by_state"]
            flag = "!" if q["longest_wait"] > sl else " "
            label = _queue_label(q)
            cells = [q["waiting"], _dur(q["longest_wait"]) + flag, by["free"], by["busy"], by["paused"],
                     by["unavailable"], q["answered"], q["abandoned"], q["overflowed"], _pct(q["service_level"])]
            out.append("  " + _pad(label, widths[0]) + " " +
                       " ".join(_pad(str(v), w, True) for v, w in zip(cells, widths[1:])))
            for c in q["callers"][:FOLD_CALLERS]:
                mark = "!" if c["wait"] > sl else " "
                line = _line_label(c["line"], c.get("service", ""))
                out.append(f"      {mark} " + text("view.text.caller", lang, wait=_dur(c["wait"]), line=line,
                                                   number=c["number"], name=c["name"]).rstrip())
            hidden = len(q["callers"]) - FOLD_CALLERS
            if hidden > 0:
                out.append("        " + text("view.tile.more", lang, n=hidden).rstrip(" ▾"))
            for m in q["members"]:
                if m["state"] == "paused":
                    why = f" ({m['reason']})" if m["reason"] else ""
                    out.append("        " + text("view.text.paused", lang, dur=_dur(m["paused_for"]),
                                                 member=m["name"], why=why))
    if view["lines"]:
        out.append("")
        out.append(text("view.text.lines", lang) + ":")
        for r in view["lines"]:
            out.append("  " + text("view.text.line_row", lang, line=_line_label(r["line"], r.get("service", "")),
                                   waiting=r["waiting"], answered=r["answered"], abandoned=r["abandoned"],
                                   overflowed=r["overflowed"]))
    return "\n".join(out) + "\n"
