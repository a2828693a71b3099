"""The live view's rendering (issue 11 items 1, 4, 8): the table's names and order, zh/en, a link that is down
(frozen figures, since when), callers in the IVR from AMI, agents' state and talk durations, folded lists,
the records' backlog, and the language a user gets."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from records.db import make_engine, upgrade
from records.recorder import CallRecorder
from records.types import CallbackRequest
from records.workorders import dispatch
from routing.loader import load_table
from supervisor import textview
from supervisor.names import Directory, localised
from supervisor.refresh import Refresher
from supervisor.state import IVR_MAX_AGE, LiveState
from tests.db_fixtures import db_url  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
TABLE = load_table(ROOT / "conf" / "routing.yaml")
T0 = 1764547200.0  # 2025-12-01 08:00 Asia/Shanghai


def live(*queues: str) -> LiveState:
    state = LiveState()
    state.directory = Directory.from_table(TABLE)
    state.set_connected("hk", True, T0)
    reply = []
    for q in queues:
        reply += [{"Event": "QueueParams", "Queue": q, "Strategy": "rrmemory"},
                  {"Event": "QueueMember", "Queue": q, "Location": "PJSIP/7001", "Name": "王芳", "Status": "1",
                   "Paused": "0", "InCall": "0"}]
    state.resync("hk", reply, T0)
    return state


def join(state: LiveState, queue: str, uid: str, at: float, line: str = "12345") -> None:
    state.apply("hk", {"Event": "QueueCallerJoin", "Queue": queue, "Uniqueid": uid, "CallerIDNum": "13812345678",
                       "CallerIDName": f"[{line}] x", "Position": "1"}, at)


def test_bilingual_names_split_for_chinese_readers():
    assert localised("未成年人保护热线 (minors protection, inside 12345)", "zh") == "未成年人保护热线"
    assert localised("未成年人保护热线 (minors protection, inside 12345)", "en") == \
        "未成年人保护热线 (minors protection, inside 12345)"
    assert localised("12349 民政服务热线 (civil affairs; annex) -> 未成年人保护热线 inside 12345", "zh") == \
        "12349 民政服务热线 → 未成年人保护热线"
    assert localised("general", "zh") == "general"  # no Chinese: nothing to strip


def test_queues_in_the_tables_order_with_the_tables_names():
    state = live("abuse-review", "minors-protection", "general-12345", "zz-not-in-table", "expert-12320")
    view = state.view(T0, full_numbers=False)
    order = [q["name"] for q in view["servers"][0]["queues"]]
    assert order == ["general-12345", "expert-12320", "minors-protection", "abuse-review", "zz-not-in-table"]
    titles = {q["name"]: q["title"] for q in view["servers"][0]["queues"]}
    assert titles["minors-protection"] == "未成年人保护热线"
    assert titles["zz-not-in-table"] == "zz-not-in-table"  # unknown to the table: its id
    english = state.view(T0, full_numbers=False, lang="en")
    assert english["servers"][0]["queues"][0]["title"] == "12345 综合受理 (general, 24/7)"


def test_lines_carry_their_service_and_the_unified_line_leads():
    state = live("general-12345")
    join(state, "general-12345", "1.1", T0, line="12320")
    join(state, "general-12345", "1.2", T0, line="12345")
    view = state.view(T0 + 1, full_numbers=False)
    assert [r["line"] for r in view["lines"]] == ["12345", "12320"]
    assert view["lines"][1]["service"] == "12320 卫生健康热线"
    caller = view["servers"][0]["queues"][0]["callers"][0]
    assert caller["line"] == "12320" and caller["service"] == "12320 卫生健康热线"


def test_a_link_down_freezes_the_figures_and_says_since_when():
    state = live("general-12345")
    join(state, "general-12345", "1.1", T0)
    state.set_connected("hk", False, T0 + 20)
    for later in (T0 + 21, T0 + 300):
        server = state.view(later, full_numbers=False)["servers"][0]
        assert server["connected"] is False and server["frozen"] is True and server["down_since"] == T0 + 20
        assert server["queues"][0]["longest_wait"] == 20  # the clock stopped when the link dropped
    state.set_connected("hk", True, T0 + 400)
    server = state.view(T0 + 400, full_numbers=False)["servers"][0]
    assert server["down_since"] is None and server["queues"][0]["longest_wait"] == 400


def test_a_server_never_reached_is_down_since_the_view_started():
    state = LiveState()
    state.set_connected("sanya", False, T0)
    server = state.view(T0 + 5, full_numbers=False)["servers"][0]
    assert server["down_since"] == T0 and server["synced_at"] is None


def test_callers_in_the_ivr_counted_from_call_class_events():
    state = live("general-12345")

    def event(name: str, uid: str, at: float, **fields: str) -> None:
        state.apply("hk", {"Event": name, "Uniqueid": uid, **fields}, at)

    for uid in ("2.1", "2.2", "2.3", "2.4", "2.5"):
        event("Newchannel", uid, T0, Context="hotline-from-carrier", Exten="12345")
    event("Newchannel", "2.9", T0, Context="queue-agents", Exten="agent1")  # an agent's leg: not a caller
    event("Newchannel", "2.10", T0, Context="hotline-from-carrier", Channel="Local/12345@hotline-from-carrier-0001;1")
    assert state.view(T0 + 1, full_numbers=False)["in_ivr"] == 5
    join(state, "general-12345", "2.1", T0 + 2)                          # queued
    event("DialBegin", "2.2", T0 + 3, DestUniqueid="2.8")                # transferred / emergency dial
    event("BridgeEnter", "2.3", T0 + 3)
    event("Hangup", "2.4", T0 + 4)                                       # hung up in the menu
    assert state.view(T0 + 5, full_numbers=False)["in_ivr"] == 1
    event("VarSet", "2.5", T0 + 6, Variable="HOTLINE_ACTION", Value="queue")  # read=all: the engine decided
    assert state.view(T0 + 7, full_numbers=False)["in_ivr"] == 0
    event("Newchannel", "2.6", T0, Context="hotline-from-carrier", Exten="12320")
    assert state.view(T0 + IVR_MAX_AGE + 1, full_numbers=False)["in_ivr"] == 0  # its end was lost: aged out
    event("Newchannel", "2.7", T0 + 8, Context="hotline-from-carrier", Exten="12320")
    state.resync("hk", [{"Event": "QueueParams", "Queue": "general-12345"}], T0 + 9)
    assert state.view(T0 + 10, full_numbers=False)["in_ivr"] == 0  # a reconnect counts afresh


def test_calls_already_in_the_ivr_from_core_show_channels():
    state = live("general-12345")
    state.apply("hk", {"Event": "Newchannel", "Uniqueid": "6.9", "Context": "hotline-from-carrier"}, T0 + 50)
    reply = [{"Event": "CoreShowChannel", "Uniqueid": "6.1", "Channel": "PJSIP/carrier-1", "Context":
              "hotline-engine", "Application": "AGI", "Duration": "00:01:05"},
             {"Event": "CoreShowChannel", "Uniqueid": "6.2", "Channel": "PJSIP/carrier-2", "Context":
              "hotline-queue-general-12345", "Application": "Queue", "Duration": "00:03:00"},
             {"Event": "CoreShowChannel", "Uniqueid": "6.3", "Channel": "Local/12345@hotline-engine-1;1",
              "Context": "hotline-engine", "Application": "AGI", "Duration": "00:00:02"},
             {"Event": "CoreShowChannelsComplete"}]
    state.resync_ivr("hk", reply, T0 + 60, sent_at=T0 + 40)
    assert list(state.servers["hk"].in_ivr) == ["6.1", "6.9"]  # AGI in the engine; and one that came meanwhile
    assert state.servers["hk"].in_ivr["6.1"] == T0 - 5


def test_the_inbound_context_is_the_dialplans():
    from dialplan.extensions import CTX_CARRIER, CTX_ENGINE
    from dialplan.manager import READ, WRITE
    from supervisor.state import ENGINE_CONTEXT, INBOUND_CONTEXT, HANDLED_EVENTS

    assert INBOUND_CONTEXT == CTX_CARRIER and ENGINE_CONTEXT == CTX_ENGINE
    assert "reporting" in WRITE  # CoreShowChannels
    assert {"Newchannel", "DialBegin", "BridgeEnter"} <= HANDLED_EVENTS
    assert "call" in READ  # the events the counter relies on reach our AMI user


def test_agents_state_duration_and_talk_time():
    state = live("general-12345")
    state.apply("hk", {"Event": "AgentConnect", "Queue": "general-12345", "Interface": "PJSIP/7001",
                       "Uniqueid": "3.1", "HoldTime": "4"}, T0 + 100)
    member = state.view(T0 + 130, full_numbers=False)["servers"][0]["queues"][0]["members"][0]
    assert member["state"] == "busy" and member["state_for"] == 30 and member["talk_for"] == 30
    assert member["talk_today"] == 30
    state.apply("hk", {"Event": "AgentComplete", "Queue": "general-12345", "Interface": "PJSIP/7001",
                       "Uniqueid": "3.1", "TalkTime": "45"}, T0 + 145)
    state.apply("hk", {"Event": "QueueMemberStatus", "Queue": "general-12345", "Interface": "PJSIP/7001",
                       "Status": "1", "InCall": "0", "Paused": "0"}, T0 + 145)
    member = state.view(T0 + 150, full_numbers=False)["servers"][0]["queues"][0]["members"][0]
    assert member["state"] == "free" and member["state_for"] == 5 and member["talk_for"] is None
    assert member["talk_today"] == 45
    state.apply("hk", {"Event": "QueueMemberPause", "Queue": "general-12345", "Interface": "PJSIP/7001",
                       "Paused": "1", "PausedReason": "午餐"}, T0 + 160)
    member = state.view(T0 + 220, full_numbers=False)["servers"][0]["queues"][0]["members"][0]
    assert member["state"] == "paused" and member["state_for"] == 60 and member["paused_for"] == 60


def test_terminal_frame_in_both_languages_with_names_fold_and_link_down():
    state = live("general-12345", "minors-protection")
    for n in range(12):
        join(state, "general-12345", f"4.{n}", T0 - n)
    state.set_connected("hk", False, T0 + 30)
    view = state.view(T0 + 60, full_numbers=False)
    zh = textview.render(view)
    assert "12345 综合受理 [general-12345]" in zh and "未成年人保护热线 [minors-protection]" in zh
    assert "连接中断，自 2025-12-01 08:00:30 起 - 数据已冻结" in zh
    assert "另有 4 个来电" in zh and zh.count("等候 0:") == textview.FOLD_CALLERS
    assert zh.index("general-12345") < zh.index("minors-protection")
    en = textview.render(state.view(T0 + 60, full_numbers=False, lang="en"), "en")
    assert "LINK DOWN since 2025-12-01 08:00:30 - figures frozen" in en and "+4 more callers" in en
    assert "138****5678" in en and "13812345678" not in en


def test_terminal_first_run_hint_when_no_asterisk_is_configured():
    frame = textview.render(LiveState().view(T0, full_numbers=False), "en")
    assert "No Asterisk (AMI) configured" in frame and "HOTLINE_AMI_SECRET" in frame
    assert "尚未配置 Asterisk" in textview.render(LiveState().view(T0, full_numbers=False))


def seed_backlog(db_url: str, spool: Path, at: datetime) -> None:
    """Three pending callbacks (two for general-12345) and one work order past its sign deadline at `at`."""
    engine = make_engine(db_url)
    upgrade(engine)
    recorder = CallRecorder(db_url, spool, b"k", auto_upgrade=True,
                            callback_key=b"pVsDsoHjZpbLCZ7Ysd_Re-1qQm6tEVRoMSf8RZ-Hcsc=")
    try:
        for n, queue in enumerate(("general-12345", "general-12345", "business-environment")):
            recorder.record_callback(CallbackRequest(uniqueid=f"5.{n}", line="12345", queue=queue,
                                                     number="13987654321", requested_at=at, language="zh"))
        assert recorder.flush() >= 3
    finally:
        recorder.close()
    calendar = TABLE.calendars["cn-mainland"]
    dispatch(engine, line="12366", category="subcenter", target="subcenter-12366", at=at - timedelta(days=5),
             calendar=calendar, tz=TABLE.timezone)
    dispatch(engine, line="12360", category="subcenter", target="subcenter-12360", at=at, calendar=calendar,
             tz=TABLE.timezone)
    engine.dispose()


def test_backlog_counts_pending_callbacks_and_overdue_work_orders(db_url, tmp_path):  # noqa: F811
    at = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    seed_backlog(db_url, tmp_path / "spool", at)
    refresher = Refresher(LiveState(), db_url=db_url, clock=lambda: at.timestamp() + 3600)
    refresher.refresh_backlog()
    assert refresher.backlog["error"] is False and refresher.backlog["available"] is True
    assert refresher.backlog["callbacks_pending"] == 3
    assert refresher.backlog["callbacks_by_queue"] == {"general-12345": 2, "business-environment": 1}
    assert refresher.backlog["workorders_overdue"] == 1


def test_backlog_says_when_the_database_cannot_be_read(tmp_path):
    refresher = Refresher(LiveState(), db_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}")  # no schema
    refresher.refresh_backlog()
    assert refresher.backlog["available"] is True and refresher.backlog["error"] is True


def test_names_reload_when_the_table_file_changes(tmp_path):
    table = tmp_path / "routing.yaml"
    table.write_text((ROOT / "conf" / "routing.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    state = LiveState()
    refresher = Refresher(state, table_path=table)
    assert refresher.refresh_names() is True
    assert state.directory.queue_title("general-12345", "zh") == "12345 综合受理"
    assert refresher.refresh_names() is False  # unchanged: not read again
    table.write_text("not: [valid", encoding="utf-8")
    import os
    os.utime(table, (1, 1))
    assert refresher.refresh_names() is True
    assert state.directory.queue_title("general-12345", "zh") == "general-12345"  # ids, the view goes on


# ---- the language a user gets, over HTTP ------------------------------------------------------------------
from tests.test_supervisor_web import http, login, view, emulator  # noqa: E402,F401


async def test_chinese_by_default_english_by_browser_or_choice_and_remembered(view):  # noqa: F811
    async with http(view) as client:
        page = (await client.get("/login")).text
        assert '<html lang="zh">' in page and "登录" in page
        page = (await client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})).text
        assert '<html lang="en">' in page and "Sign in" in page
        await login(client, "supervisor")
        index = (await client.get("/", headers={"Accept-Language": "zh-CN"})).text
        assert '<html lang="zh">' in index
        catalogue = re.search(r'<script type="application/json" id="messages">(.*?)</script>', index, re.S)[1]
        assert '"view.tile.callers":"等候来电"' in catalogue
        base = f"http://127.0.0.1:{view.port}"
        r = await client.post("/lang", data={"lang": "en", "next": "/"}, headers={"Origin": base})
        assert r.status_code == 303 and r.headers["location"] == "/"
        index = (await client.get("/", headers={"Accept-Language": "zh-CN"})).text  # the choice wins
        assert '<html lang="en">' in index and '"view.tile.callers":"Waiting callers"' in index
        state = (await client.get("/api/state")).json()
        assert state["lang"] == "en" and state["servers"][0]["queues"][0]["title"] == "12345 综合受理 (general, 24/7)"
        r = await client.post("/lang", data={"lang": "zh", "next": "//evil.example/"},
                              headers={"Origin": "http://evil.example"})
        assert r.status_code == 403  # another site cannot flip it
        r = await client.post("/lang", data={"lang": "zh", "next": "//evil.example/"}, headers={"Origin": base})
        assert r.headers["location"] == "/"  # never redirected off-site


async def test_first_run_page_when_no_asterisk_is_configured(tmp_path):
    from scripts.settings import Settings
    from supervisor.service import build_service
    from tests.test_supervisor_web import PASSWORDS

    env = {"HOTLINE_WEB_SUPERVISOR_PASSWORD": PASSWORDS["supervisor"],
           "HOTLINE_WEB_ADMIN_PASSWORD": PASSWORDS["admin"], "HOTLINE_SUPERVISOR_AUDIT": str(tmp_path / "a.jsonl")}
    service = build_service(Settings(), host="127.0.0.1", port=0, environ=env, clients={})
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.port}", timeout=5) as client:
            await login(client, "supervisor")
            state = (await client.get("/api/state")).json()
        assert state["servers"] == []  # the page shows the first-run hint for exactly this (app.js)
    finally:
        await service.stop()


def test_every_text_the_page_and_script_use_is_in_the_catalogue():
    from supervisor import i18n

    catalogue = i18n.catalog()
    static = ROOT / "supervisor"
    script = (static / "static" / "app.js").read_text(encoding="utf-8")
    used = set(re.findall(r'\bt\("([a-z0-9_.]+)"', script))
    for template in (static / "templates").glob("*.html"):
        used |= set(re.findall(r"\{\{t:([a-z0-9_.]+)\}\}", template.read_text(encoding="utf-8")))
    # keys the script builds: view.state.<state>, view.act.<kind>, view.reason.<r>, view.dialog.spy_<kind>
    used |= {f"view.state.{s}" for s in ("free", "busy", "paused", "unavailable")}
    used |= {f"view.act.{k}" for k in ("pause", "unpause", "listen", "whisper", "barge", "remove", "add")}
    used |= {f"view.dialog.spy_{k}" for k in ("listen", "whisper", "barge")}
    used |= {f"view.reason.{r}" for r in re.search(r"PAUSE_REASONS = \[(.*?)\]", script)[1].replace('"', "").split(", ")}
    used |= {f"view.ok.{k}" for k in ("pause", "unpause", "add", "remove", "listen", "whisper", "barge")}
    for module in ("hub.py", "web.py", "textview.py"):  # the codes and keys the server side names
        used |= set(re.findall(r'"(view\.[a-z0-9_]+\.[a-z0-9_.]*[a-z0-9_])"', (static / module).read_text(encoding="utf-8")))
    assert len(used) > 80
    assert sorted(used - set(catalogue)) == []
