"""`hotline records show UNIQUEID`: one call's timeline from its records (call row, queue legs, transfers,
callback requests, work orders). Masked numbers only: nothing else is stored."""
from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any, Callable, Mapping

from sqlalchemy import Engine, select

from records.schema import callback_requests, calls, transfers, work_orders
from records.types import Outcome

Translate = Callable[..., str]
OUTCOMES = {o.value for o in Outcome}


def load(engine: Engine, uniqueid: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        call = conn.execute(select(calls).where(calls.c.uniqueid == uniqueid)).mappings().first()
        if call is None:
            return None
        moved = conn.execute(select(transfers).where(transfers.c.uniqueid == uniqueid)
                             .order_by(transfers.c.started_at)).mappings().all()
        asked = conn.execute(select(callback_requests.c.queue, callback_requests.c.number_masked,
                                    callback_requests.c.status, callback_requests.c.requested_at,
                                    callback_requests.c.done_at, callback_requests.c.taken_by)
                             .where(callback_requests.c.uniqueid == uniqueid)).mappings().all()
        orders = conn.execute(select(work_orders).where(work_orders.c.uniqueid == uniqueid)).mappings().all()
    row = {k: v for k, v in call.items() if k != "caller_hash"}   # the hash is for lookups, never shown
    return {"call": row, "transfers": [dict(r) for r in moved], "callbacks": [dict(r) for r in asked],
            "work_orders": [dict(r) for r in orders]}


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if value else None


def _wait(seconds: Any) -> str:
    return "-" if seconds is None else f"{float(seconds):.0f}s"


def events(found: Mapping[str, Any], t: Translate, tz: tzinfo, *, line_names: Mapping[str, str],
           queue_names: Mapping[str, str]) -> list[tuple[datetime | None, str]]:
    """(instant, text) in time order; facts without their own instant go with the arrival."""
    call = found["call"]
    arrived = call["arrived_at"]

    def queue(q: str | None) -> str:
        return f"{q} {queue_names.get(q or '', '')}".strip() if q else "-"

    out: list[tuple[datetime | None, str]] = [
        (arrived, t("reports.timeline.arrived", dialed=call["dialed"], line=call["line"],
                    service=line_names.get(call["line"], ""))),
        (arrived, t("reports.timeline.caller", number=call["caller_masked"] or "-")),
    ]
    if call["rule_id"] or call["action"]:
        target = queue(call["target"]) if call["action"] in ("queue", "callback") else (call["target"] or "-")
        out.append((arrived, t("reports.timeline.route", rule=call["rule_id"] or "-",
                               category=call["category"] or "-", action=call["action"] or "-", target=target)))
    if call["ivr_path"]:
        out.append((arrived, t("reports.timeline.ivr", path=call["ivr_path"].replace(">", " → "))))
    for leg in call.get("queue_legs") or ():
        out.append((_instant(leg.get("joined_at")), t("reports.timeline.joined", queue=queue(leg.get("queue")))))
        if leg.get("result"):
            out.append((_instant(leg.get("left_at")),
                        t(f"reports.timeline.left.{leg['result']}", queue=queue(leg.get("queue")),
                          wait=_wait(leg.get("wait")))))
    if call["answered_by"]:
        out.append((call.get("answered_at"), t("reports.timeline.agent", agent=call["answered_by"])))
    for tr in found["transfers"]:
        target = tr["target_trunk"] or (queue(tr["target_queue"]) if tr["target_queue"] else None)
        out.append((tr["started_at"], t("reports.timeline.transfer", kind=tr["kind"],
                                        target=target or tr["work_order"] or "-", outcome=tr["outcome"] or "-")))
    for cb in found["callbacks"]:
        out.append((cb["requested_at"], t("reports.timeline.callback", queue=queue(cb["queue"]),
                                          number=cb["number_masked"], status=cb["status"])))
    for wo in found["work_orders"]:
        out.append((wo["dispatched_at"], t("reports.timeline.work_order", number=wo["number"], target=wo["target"],
                                           status=wo["status"],
                                           deadline=f"{wo['sign_deadline'].astimezone(tz):%Y-%m-%d %H:%M}")))
    if call["outcome"] or call["ended_at"]:
        outcome = t(f"reports.outcome.{call['outcome']}") if call["outcome"] in OUTCOMES else call["outcome"] or "-"
        out.append((call["ended_at"], t("reports.timeline.ended", outcome=outcome,
                                        cause=call["hangup_cause"] or "-")))
    # An event without its own instant stays after the one before it; the sort is stable.
    keys, last = [], arrived
    for at, _text in out:
        last = at or last
        keys.append(last)
    return [item for _key, item in sorted(zip(keys, out), key=lambda pair: pair[0])]


def format_text(found: Mapping[str, Any], t: Translate, tz: tzinfo, *, line_names: Mapping[str, str],
                queue_names: Mapping[str, str]) -> str:
    lines = [t("reports.timeline.title", uniqueid=found["call"]["uniqueid"]) + f"  ({tz})"]
    for at, text in events(found, t, tz, line_names=line_names, queue_names=queue_names):
        stamp = f"{at.astimezone(tz):%Y-%m-%d %H:%M:%S}" if at else " " * 19
        lines.append(f"{stamp}  {text}")
    return "\n".join(lines) + "\n"
