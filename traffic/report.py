"""Forecast and replay as terminal tables, CSV, JSON and one self-contained HTML file (inline CSS and SVG, no
script, no CDN: a supervisor can mail it). Texts come through `t(key, **params)` (supervisor.i18n.text bound to
a language by the caller), so this module stays below supervisor/; queue names come from the table.
"""
from __future__ import annotations

import csv
import html
import io
import math
from datetime import timezone
from typing import Any, Callable, Mapping

from routing.model import RoutingTable
from traffic.forecast import HOURS_OF_WEEK, Forecast
from traffic.replay import ReplayReport

Text = Callable[..., str]


def _local(at, tz) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _num(value: float | None, places: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "∞"
    return f"{value:.{places}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def weekday_names(t: Text) -> list[str]:
    return t("forecast.weekdays").split(",")


def when(how: int, t: Text) -> str:
    return f"{weekday_names(t)[how // 24]} {how % 24:02d}:00"


# ---- forecast -----------------------------------------------------------------------------------------
def forecast_dict(fc: Forecast, table: RoutingTable) -> dict[str, Any]:
    """For machines: instants in UTC ISO-8601 (labelled), hour of week 0 = Monday 00:00 local."""
    return {
        "period_utc": {"start": fc.start.astimezone(timezone.utc).isoformat(),
                       "end": fc.end.astimezone(timezone.utc).isoformat()},
        "timezone": str(table.timezone), "target": {"share": fc.target.share, "seconds": fc.target.seconds},
        "queues": [vars(q) for q in fc.queues.values()],
        "cells": [{**vars(c), "weekday": c.how // 24 + 1, "hour": c.how % 24}
                  for c in sorted(fc.cells.values(), key=lambda c: (c.queue, c.how))],
        "notes": fc.notes,
    }


CSV_FIELDS = ("queue", "weekday", "hour", "calls_per_hour", "aht", "load", "agents", "service_level",
              "prob_wait", "asa", "rostered", "rostered_service_level", "sim_service_level", "sim_abandoned",
              "sim_overflowed")


def forecast_csv(fc: Forecast) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for c in sorted(fc.cells.values(), key=lambda c: (c.queue, c.how)):
        row = {**vars(c), "weekday": c.how // 24 + 1, "hour": c.how % 24}
        writer.writerow(["" if row[f] is None else (round(row[f], 4) if isinstance(row[f], float) else row[f])
                         for f in CSV_FIELDS])
    return out.getvalue()


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(_width(h), *(_width(r[i]) for r in rows)) if rows else _width(h) for i, h in enumerate(headers)]
    lines = ["  ".join(_pad(h, w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(_pad(c, w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def _width(text: str) -> int:   # CJK characters take two columns in a terminal
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _summary(fc, t) -> tuple[list[str], list[list[str]]]:
    """The per-queue summary table (headers, rows), the same in the terminal and the HTML report."""
    headers = [t("forecast.queue"), t("forecast.calls"), t("forecast.aht"), t("forecast.patience"),
               t("forecast.abandoned"), t("forecast.peak_agents")]
    rows = [[q.name, str(q.calls), _num(q.aht, 0), _num(q.patience, 0) if q.patience else t("forecast.patience_none"),
             str(q.abandoned), str(q.peak_agents)] for q in fc.queues.values()]
    return headers, rows


def forecast_text(fc: Forecast, table: RoutingTable, t: Text) -> str:
    tz = table.timezone
    parts = [t("forecast.title"), t("forecast.period", start=_local(fc.start, tz), end=_local(fc.end, tz), tz=tz),
             t("forecast.target", share=f"{fc.target.share * 100:g}", seconds=f"{fc.target.seconds:g}"), ""]
    if not fc.queues:
        return "\n".join(parts + [t("forecast.no_data")] + fc.notes)
    parts.append(_table(*_summary(fc, t)))
    days = weekday_names(t)
    for q in fc.queues.values():
        agents = fc.agents(q.id)
        label = max(_width(t("forecast.weekday")), *(_width(d) for d in days))
        parts += ["", t("forecast.heatmap", queue=q.name),
                  _pad(t("forecast.weekday"), label) + "".join(f"{h:>3}" for h in range(24))]
        for d in range(7):
            parts.append(_pad(days[d], label) + "".join(f"{agents[d * 24 + h] or '.':>3}" for h in range(24)))
    if any(c.sim_service_level is not None or c.rostered is not None for c in fc.cells.values()):
        parts += ["", t("forecast.cells_title"), _cells_table(fc, t)]
    return "\n".join(parts + fc.notes)


def _cells_table(fc: Forecast, t: Text) -> str:
    names = {q.id: q.name for q in fc.queues.values()}
    rows = [[names.get(c.queue, c.queue), when(c.how, t), _num(c.calls_per_hour), _num(c.load, 2), str(c.agents),
             _pct(c.service_level), "-" if c.rostered is None else str(c.rostered), _pct(c.rostered_service_level),
             _pct(c.sim_service_level), _pct(c.sim_abandoned), _pct(c.sim_overflowed)]
            for c in sorted(fc.cells.values(), key=lambda c: (c.queue, c.how))]
    return _table([t("forecast.queue"), t("forecast.when"), t("forecast.calls_per_hour"), t("forecast.load"),
                   t("forecast.agents"), t("forecast.erlang_sl"), t("forecast.rostered"), t("forecast.rostered_sl"),
                   t("forecast.sim_sl"), t("forecast.sim_abandoned"), t("forecast.sim_overflowed")], rows)


# ---- HTML ---------------------------------------------------------------------------------------------
CSS = """body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC",sans-serif;margin:1.5em;color:#1b1f24}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #d0d7de;padding:2px 6px;font-size:.85em;text-align:right}th{background:#f6f8fa}
td.l,th.l{text-align:left}.heat td{width:1.9em;text-align:center;padding:2px}.note{color:#57606a}
svg text{font-size:10px;fill:#57606a}"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


HEAT_STEPS = 8


def _heat_css() -> str:
    """Classes rather than style attributes: the web view's Content-Security-Policy allows no inline style."""
    rules = []
    for step in range(1, HEAT_STEPS + 1):
        share = step / HEAT_STEPS
        r, g, b = (int(255 - share * (255 - c)) for c in (31, 111, 235))
        ink = "#fff" if share > 0.55 else "#1b1f24"
        rules.append(f".heat td.h{step}{{background:rgb({r},{g},{b});color:{ink}}}")
    return "".join(rules)


def heatmap_html(values: list[int], t: Text) -> str:
    top = max(values, default=0)
    days = weekday_names(t)
    head = "".join(f"<th>{h}</th>" for h in range(24))
    rows = []
    for d in range(7):
        cells = []
        for h in range(24):
            v = values[d * 24 + h]
            step = max(1, math.ceil(v / top * HEAT_STEPS)) if v and top else 0
            cells.append(f'<td class="h{step}">{v or ""}</td>')
        rows.append(f'<tr><th class="l">{_esc(days[d])}</th>{"".join(cells)}</tr>')
    return (f'<table class="heat"><tr><th class="l">{_esc(t("forecast.weekday"))} \\ {_esc(t("forecast.hour"))}'
            f'</th>{head}</tr>{"".join(rows)}</table>')


def bars_svg(values: list[float], labels: Mapping[int, str], width: int = 840, height: int = 140) -> str:
    top = max(values, default=0) or 1
    step = width / max(len(values), 1)
    bars = "".join(
        f'<rect x="{i * step:.1f}" y="{height - 20 - v / top * (height - 30):.1f}" width="{max(step - 1, 1):.1f}" '
        f'height="{v / top * (height - 30):.1f}" fill="#1f6feb"><title>{_esc(labels.get(i, i))}: {v:.1f}</title>'
        f'</rect>' for i, v in enumerate(values))
    ticks = "".join(f'<text x="{i * step:.1f}" y="{height - 5}">{_esc(text)}</text>'
                    for i, text in labels.items())
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">{bars}'
            f'<text x="0" y="10">{top:.1f}</text>{ticks}</svg>')


def report_css() -> str:
    return CSS + _heat_css()


def _page(title: str, lang: str, body: str) -> str:
    return (f'<!doctype html><html lang="{_esc(lang)}"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
            f'<style>{report_css()}</style></head><body>{body}</body></html>\n')


def _html_table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{_esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_esc(c)}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def forecast_section(fc: Forecast, table: RoutingTable, t: Text) -> str:
    """The forecast's HTML body (the report file and the web page share it)."""
    tz = table.timezone
    out = [f"<p>{_esc(t('forecast.period', start=_local(fc.start, tz), end=_local(fc.end, tz), tz=tz))}<br>"
           f"{_esc(t('forecast.target', share=f'{fc.target.share * 100:g}', seconds=f'{fc.target.seconds:g}'))}</p>"]
    if not fc.queues:
        return "".join(out) + f"<p>{_esc(t('forecast.no_data'))}</p>"
    out.append(_html_table(*_summary(fc, t)))
    days = weekday_names(t)
    labels = {d * 24: days[d] for d in range(7)}
    for q in fc.queues.values():
        out.append(f"<h2>{_esc(t('forecast.heatmap', queue=q.name))}</h2>{heatmap_html(fc.agents(q.id), t)}")
        load = [fc.cells[q.id, h].calls_per_hour if (q.id, h) in fc.cells else 0.0 for h in range(HOURS_OF_WEEK)]
        out.append(f"<h2>{_esc(t('forecast.load_chart', queue=q.name))}</h2>{bars_svg(load, labels)}")
    if any(c.sim_service_level is not None or c.rostered is not None for c in fc.cells.values()):
        names = {q.id: q.name for q in fc.queues.values()}
        out.append(f"<h2>{_esc(t('forecast.cells_title'))}</h2>" + _html_table(
            [t("forecast.queue"), t("forecast.when"), t("forecast.calls_per_hour"), t("forecast.load"),
             t("forecast.agents"), t("forecast.erlang_sl"), t("forecast.rostered"), t("forecast.rostered_sl"),
             t("forecast.sim_sl"), t("forecast.sim_abandoned"), t("forecast.sim_overflowed")],
            [[names.get(c.queue, c.queue), when(c.how, t), _num(c.calls_per_hour), _num(c.load, 2), str(c.agents),
              _pct(c.service_level), "-" if c.rostered is None else str(c.rostered),
              _pct(c.rostered_service_level), _pct(c.sim_service_level), _pct(c.sim_abandoned),
              _pct(c.sim_overflowed)] for c in sorted(fc.cells.values(), key=lambda c: (c.queue, c.how))], 2))
    notes = "".join(f"<li>{_esc(n)}</li>" for n in fc.notes)
    out.append(f'<p class="note">{_esc(t("forecast.method"))}</p>' + (f"<ul>{notes}</ul>" if notes else ""))
    return "".join(out)


def forecast_html(fc: Forecast, table: RoutingTable, t: Text, lang: str, generated: str) -> str:
    body = (f"<h1>{_esc(t('forecast.title'))}</h1>{forecast_section(fc, table, t)}"
            f'<p class="note">{_esc(t("forecast.generated", at=generated))}</p>')
    return _page(t("forecast.title"), lang, body)


# ---- replay -------------------------------------------------------------------------------------------
def _queue_name(table: RoutingTable, queue: str | None, t: Text) -> str:
    if queue is None:
        return t("forecast.ended")
    found = table.queues.get(queue)
    return found.name if found else queue


def _by_hour(counter) -> list:
    """(hour, queue...) -> n items in hour order, then by queue ids (None: no queue, first)."""
    return sorted(counter.items(), key=lambda kv: (kv[0][0], *("" if q is None else q for q in kv[0][1:])))


def replay_dict(report: ReplayReport) -> dict[str, Any]:
    return {
        "calls": report.calls, "moved": report.moved, "decisions": report.decisions,
        "moves": [{"hour": h, "from": a, "to": b, "calls": n} for (h, a, b), n in _by_hour(report.moves)],
        "by_queue": [{"hour": h, "queue": q, "calls": n} for (h, q), n in _by_hour(report.by_queue)],
        "closed": [{"hour": h, "queue": q, "calls": n} for (h, q), n in _by_hour(report.closed)],
        "cancelled": dict(report.cancelled), "unknown": dict(report.unknown),
        "vanished_paths": dict(report.vanished_paths), "listing_unknown": report.listing_unknown,
    }


def replay_csv(report: ReplayReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("kind", "hour", "from", "to", "calls"))
    for (h, a, b), n in _by_hour(report.moves):
        writer.writerow(("move", h, a or "", b or "", n))
    for (h, q), n in _by_hour(report.closed):
        writer.writerow(("closed", h, q, "", n))
    for line, n in sorted(report.cancelled.items()):
        writer.writerow(("cancelled", "", line, "", n))
    for dialed, n in sorted(report.unknown.items()):
        writer.writerow(("unknown", "", dialed, "", n))
    for path, n in sorted(report.vanished_paths.items()):
        writer.writerow(("vanished_path", "", path, "", n))
    return out.getvalue()


def _replay_rows(report: ReplayReport, table: RoutingTable, t: Text) -> dict[str, tuple[list[str], list[list[str]]]]:
    name = lambda q: _queue_name(table, q, t)   # noqa: E731
    return {
        "moves": ([t("forecast.hour"), t("forecast.from"), t("forecast.to"), t("forecast.calls")],
                  [[f"{h:02d}:00", name(a), name(b), str(n)] for (h, a, b), n in _by_hour(report.moves)]),
        "closed": ([t("forecast.hour"), t("forecast.queue"), t("forecast.calls")],
                   [[f"{h:02d}:00", name(q), str(n)] for (h, q), n in _by_hour(report.closed)]),
        "cancelled": ([t("forecast.line"), t("forecast.calls")],
                      [[line, str(n)] for line, n in sorted(report.cancelled.items())]),
        "unknown": ([t("forecast.line"), t("forecast.calls")],
                    [[d, str(n)] for d, n in sorted(report.unknown.items())]),
        "vanished": ([t("forecast.path"), t("forecast.calls")],
                     [[p, str(n)] for p, n in sorted(report.vanished_paths.items())]),
    }


def replay_text(report: ReplayReport, table: RoutingTable, t: Text) -> str:
    parts = [t("forecast.replay_title"), t("forecast.replayed", n=report.calls),
             t("forecast.moves_count", n=report.moved)]
    for key, (headers, rows) in _replay_rows(report, table, t).items():
        parts += ["", t(f"forecast.{key}")]
        parts.append(_table(headers, rows) if rows else t("forecast.nothing"))
    return "\n".join(parts)


def replay_html(report: ReplayReport, table: RoutingTable, t: Text, lang: str, generated: str) -> str:
    per_hour = [0.0] * 24
    for (h, _a, _b), n in report.moves.items():
        per_hour[h] += n
    body = [f"<h1>{_esc(t('forecast.replay_title'))}</h1><p>{_esc(t('forecast.replayed', n=report.calls))}; "
            f"{_esc(t('forecast.moves_count', n=report.moved))}</p>",
            f"<h2>{_esc(t('forecast.moves_chart'))}</h2>{bars_svg(per_hour, {h: f'{h:02d}' for h in range(0, 24, 3)}, 480)}"]
    for key, (headers, rows) in _replay_rows(report, table, t).items():
        body.append(f"<h2>{_esc(t(f'forecast.{key}'))}</h2>"
                    + (_html_table(headers, rows, {"moves": 3, "closed": 2}.get(key, 1)) if rows
                       else f"<p>{_esc(t('forecast.nothing'))}</p>"))
    body.append(f'<p class="note">{_esc(t("forecast.generated", at=generated))}</p>')
    return _page(t("forecast.replay_title"), lang, "".join(body))
