"""A period report as text, CSV and a self-contained HTML page with inline SVG charts. Pure: report in, text out.

Texts come through `t(key, **params)` (the CLI passes supervisor.i18n's, in the user's language), so this
module needs no catalogue of its own. Times are the table's zone, always labelled.

The charts are SVG written here: a supervisor mails the file on and it opens anywhere, offline, with no script
and no CDN; three small bar/line charts do not justify a plotting library and its page weight.
"""
from __future__ import annotations

import csv
import html
from datetime import datetime
from typing import IO, Any, Callable, Sequence

from records.period_report import FIGURES, Report, ReportRow

Translate = Callable[..., str]
CSV_COLUMNS = ("scope", "key", "name", "start_local", "timezone", *FIGURES)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _cells(row: ReportRow) -> list[str]:
    return [str(row.calls), str(row.offered), str(row.answered), str(row.answered_in_sl), str(row.abandoned),
            str(row.overflowed), _pct(row.service_level), _pct(row.abandonment_rate), _sec(row.average_wait),
            _sec(row.p90_wait), str(row.callbacks_requested), str(row.callbacks_done), str(row.work_orders_opened),
            str(row.work_orders_overdue)]


def _headers(t: Translate, sl: int) -> list[str]:
    return [t(f"reports.col.{name}", sl=sl) if name == "answered_in_sl" else t(f"reports.col.{name}")
            for name in FIGURES]


def bucket_label(report: Report, row: ReportRow) -> str:
    at = datetime.fromisoformat(row.key)
    return f"{at:%H:00}" if report.period.kind == "daily" else f"{at:%m-%d}"


def _sections(report: Report, t: Translate) -> list[tuple[str, list[tuple[str, ReportRow]]]]:
    def named(row: ReportRow) -> str:
        return f"{row.key} {row.name}".strip()
    busy = [r for r in report.buckets if r.calls or r.callbacks_requested or r.work_orders_opened]
    return [(t("reports.section.lines"), [(named(r), r) for r in report.lines]),
            (t("reports.section.queues"), [(named(r), r) for r in report.queues]),
            (t("reports.section.hours" if report.period.kind == "daily" else "reports.section.days"),
             [(bucket_label(report, r), r) for r in busy])]


def title(report: Report, t: Translate) -> str:
    return t(f"reports.title.{report.period.kind}", period=report.period.label)


def note(report: Report, t: Translate) -> str:
    tz = report.period.tz
    return t("reports.note", tz=str(tz), sl=report.service_level_seconds,
             as_of=f"{report.as_of.astimezone(tz):%Y-%m-%d %H:%M}")


def _width(text: str) -> int:
    """Columns a terminal gives the text (CJK characters take two)."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def format_text(report: Report, t: Translate) -> str:
    headers = _headers(t, report.service_level_seconds)
    out = [title(report, t), note(report, t)]
    for heading, rows in _sections(report, t) + [(t("reports.total"), [(t("reports.total"), report.total)])]:
        out += ["", f"== {heading}"]
        if not rows:
            out.append(f"  ({t('reports.no_calls')})")
            continue
        labels = [label for label, _ in rows]
        cells = [_cells(row) for _, row in rows]
        first = max([_width(t("reports.col.key"))] + [_width(x) for x in labels])
        widths = [max(_width(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
        out.append("  " + _pad(t("reports.col.key"), first) + "  "
                   + "  ".join(_pad(h, w, True) for h, w in zip(headers, widths)))
        for label, row_cells in zip(labels, cells):
            out.append("  " + _pad(label, first) + "  "
                       + "  ".join(_pad(c, w, True) for c, w in zip(row_cells, widths)))
    return "\n".join(out) + "\n"


def write_csv(report: Report, out: IO[str]) -> int:
    """One row per line, queue, hour (daily) or day, and the total; local start times with their offset, and
    the zone named in a column."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    tz = str(report.period.tz)
    start = report.period.start.isoformat()
    rows = 0
    for row in [*report.lines, *report.queues, *report.buckets, report.total]:
        begins = row.key if row.scope in ("hour", "day") else start
        values = [getattr(row, name) for name in FIGURES]
        writer.writerow([row.scope, row.key, row.name, begins, tz,
                         *("" if v is None else v for v in values)])
        rows += 1
    return rows


# --- HTML ------------------------------------------------------------------------------------------------
COLOURS = {"answered": "#2e7d32", "abandoned": "#c62828", "overflowed": "#f9a825", "offered": "#90a4ae",
           "sl": "#1565c0"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def volume_chart(report: Report, t: Translate, width: int = 760, height: int = 220) -> str:
    """Stacked bars per hour/day: answered, abandoned, overflowed."""
    rows = report.buckets
    top = max([r.answered + r.abandoned + r.overflowed for r in rows] + [1])
    left, bottom, plot_h = 36, 28, height - 48
    step = (width - left - 8) / max(1, len(rows))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{_e(t("reports.chart.volume"))}">']
    for i in range(5):
        y = 12 + plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                     f'{round(top * (4 - i) / 4)}</text>')
    for i, r in enumerate(rows):
        x, y = left + i * step + step * 0.15, 12 + plot_h
        for key in ("answered", "abandoned", "overflowed"):
            h = plot_h * getattr(r, key) / top
            if h:
                y -= h
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                             f'fill="{COLOURS[key]}"><title>{_e(bucket_label(report, r))} '
                             f'{_e(t("reports.col." + key))}: {getattr(r, key)}</title></rect>')
        if len(rows) <= 31 and (report.period.kind != "daily" or i % 2 == 0):
            parts.append(f'<text x="{x + step * 0.35:.1f}" y="{height - 10}" font-size="10" text-anchor="middle">'
                         f'{_e(bucket_label(report, r))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def service_level_chart(report: Report, t: Translate, width: int = 760, height: int = 180) -> str:
    """Service level per hour/day (0-100 %) as a line with points; buckets without offered calls are gaps."""
    rows = report.buckets
    left, plot_h = 40, height - 40
    step = (width - left - 8) / max(1, len(rows))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{_e(t("reports.chart.service_level", sl=report.service_level_seconds))}">']
    for pct in (0, 50, 80, 100):
        y = 10 + plot_h * (1 - pct / 100)
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{pct}%</text>')
    segment: list[str] = []
    segments = []
    for i, r in enumerate(rows):
        x = left + i * step + step / 2
        if r.service_level is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        y = 10 + plot_h * (1 - r.service_level)
        segment.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS["sl"]}"><title>'
                     f'{_e(bucket_label(report, r))}: {_pct(r.service_level)}</title></circle>')
        if len(rows) <= 31 and (report.period.kind != "daily" or i % 2 == 0):
            parts.append(f'<text x="{x:.1f}" y="{height - 8}" font-size="10" text-anchor="middle">'
                         f'{_e(bucket_label(report, r))}</text>')
    if segment:
        segments.append(segment)
    for points in segments:
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{COLOURS["sl"]}" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def lines_chart(report: Report, t: Translate, width: int = 760) -> str:
    """Horizontal bars per line: offered behind, answered in front."""
    rows = [r for r in report.lines if r.offered or r.calls]
    bar, gap, label_w = 16, 8, 220
    height = max(40, len(rows) * (bar + gap) + 16)
    top = max([r.offered for r in rows] + [1])
    span = width - label_w - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{_e(t("reports.chart.lines"))}">']
    for i, r in enumerate(rows):
        y = 8 + i * (bar + gap)
        name = f"{r.key} {r.name}".strip()
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" font-size="11" text-anchor="end">{_e(name[:34])}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{span * r.offered / top:.1f}" height="{bar}" '
                     f'fill="{COLOURS["offered"]}"/>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{span * r.answered / top:.1f}" height="{bar - 6}" '
                     f'fill="{COLOURS["answered"]}"/>'
                     f'<text x="{label_w + span * r.offered / top + 4:.1f}" y="{y + 12}" font-size="11">'
                     f'{r.answered}/{r.offered}</text>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:24px;color:#212121}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}p.note{color:#555;font-size:12px;margin:0}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f5f5f5}tr.total td{font-weight:bold;
background:#fafafa}.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}"""


def _table(rows: Sequence[tuple[str, ReportRow]], headers: Sequence[str], first: str, total: ReportRow | None,
           t: Translate) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in [first, *headers])
    body = "".join(f"<tr><td>{_e(label)}</td>" + "".join(f"<td>{_e(c)}</td>" for c in _cells(row)) + "</tr>"
                   for label, row in rows)
    if total is not None:
        body += (f'<tr class="total"><td>{_e(t("reports.total"))}</td>'
                 + "".join(f"<td>{_e(c)}</td>" for c in _cells(total)) + "</tr>")
    if not rows and total is None:
        body = f'<tr><td colspan="{len(headers) + 1}">{_e(t("reports.no_calls"))}</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def format_html(report: Report, t: Translate, lang: str, generated_at: datetime) -> str:
    headers = _headers(t, report.service_level_seconds)
    legend = "".join(f'<span><i style="background:{COLOURS[k]}"></i>{_e(t("reports.col." + k))}</span>'
                     for k in ("answered", "abandoned", "overflowed"))
    sections = _sections(report, t)
    tables = []
    for i, (heading, rows) in enumerate(sections):
        tables.append(f"<h2>{_e(heading)}</h2>"
                      + _table(rows, headers, t("reports.col.key"), report.total if i < 2 else None, t))
    tz = report.period.tz
    return f"""<!DOCTYPE html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<title>{_e(title(report, t))}</title><style>{CSS}</style></head><body>
<h1>{_e(title(report, t))}</h1>
<p class="note">{_e(note(report, t))}</p>
<p class="note">{_e(t("reports.generated", at=f"{generated_at.astimezone(tz):%Y-%m-%d %H:%M} {tz}"))}</p>
<h2>{_e(t("reports.chart.volume"))}</h2><div class="legend">{legend}</div>{volume_chart(report, t)}
<h2>{_e(t("reports.chart.service_level", sl=report.service_level_seconds))}</h2>{service_level_chart(report, t)}
<h2>{_e(t("reports.chart.lines"))}</h2>{lines_chart(report, t)}
{''.join(tables)}
</body></html>
"""
