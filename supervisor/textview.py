"""Plain-text frame of the live view for `hotline queues watch`. Pure: a view dict in, text out."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from supervisor.state import HOTLINE_TZ


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value * 100:4.0f}%"


def _dur(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}" if m < 60 else f"{m // 60}h{m % 60:02d}"


def render(view: dict[str, Any]) -> str:
    sl = view["service_level_seconds"]
    at = datetime.fromtimestamp(view["now"], timezone.utc).astimezone(HOTLINE_TZ)
    out = [f"12345 queues  {at:%Y-%m-%d %H:%M:%S} Asia/Shanghai   service level = answered within {sl} s"]
    if not view["servers"]:
        out.append("(no Asterisk server configured)")
    for server in view["servers"]:
        link = "connected" if server["connected"] else "NOT CONNECTED - figures may be stale"
        out.append("")
        out.append(f"== {server['name']} ({link})")
        out.append(f"  {'queue':<22} {'wait':>4} {'longest':>7} {'free':>4} {'busy':>4} {'paused':>6} {'unav':>4}"
                   f" {'answ':>5} {'aband':>5} {'ovfl':>5} {'SL':>5}")
        for q in server["queues"]:
            by = q["members_by_state"]
            flag = " !" if q["longest_wait"] > sl else "  "
            out.append(f"  {q['name']:<22} {q['waiting']:>4} {_dur(q['longest_wait']):>7}{flag[1:]}"
                       f"{by['free']:>4} {by['busy']:>4} {by['paused']:>6} {by['unavailable']:>4}"
                       f" {q['answered']:>5} {q['abandoned']:>5} {q['overflowed']:>5} {_pct(q['service_level'])}")
            for c in q["callers"]:
                mark = "!" if c["wait"] > sl else " "
                out.append(f"      {mark} waiting {_dur(c['wait']):>6}  line {c['line'] or '?':<6} {c['number']:<16}"
                           f" {c['name']}")
            for m in q["members"]:
                if m["state"] == "paused":
                    why = f" ({m['reason']})" if m["reason"] else ""
                    out.append(f"        paused {_dur(m['paused_for']):>6}  {m['name']}{why}")
    if view["lines"]:
        out.append("")
        out.append("per legacy line today:  " + "   ".join(
            f"{r['line']}: {r['waiting']} waiting, {r['answered']} answered, {r['abandoned']} abandoned, "
            f"{r['overflowed']} overflowed"
            for r in view["lines"]))
    return "\n".join(out) + "\n"
