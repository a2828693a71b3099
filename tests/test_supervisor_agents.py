"""The agents panel of the supervisors' view (supervisor/web_agents.py, static/agents.js) against the AMI
emulator: roles, the AMI actions (penalty from the skills), the audit, zh/en; and in a real Chromium."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.test_supervisor_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium, collect_problems, sign_in
from tests.test_supervisor_web import eventually, http, login, make_emulator, members, start_view

ROOT = Path(__file__).resolve().parents[1]
AGENTS = textwrap.dedent("""\
    version: 1
    agents:
      "1002":
        name: expert desk 1
        interface: PJSIP/agent-1002
        pin_env: PIN_1002
        queues: {expert-12320: 0, general-12345: 5}
        skills: [health]
      "1003":
        name: general desk 2
        interface: PJSIP/agent-1003
        pin_env: PIN_1003
        queues: {general-12345: 0}
""")


@pytest.fixture
def table_dir(tmp_path, monkeypatch) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "routing.yaml").write_text((ROOT / "conf" / "routing.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (conf / "agents.yaml").write_text(AGENTS)
    monkeypatch.setenv("HOTLINE_ROUTING_TABLE", str(conf / "routing.yaml"))
    return conf


@pytest.fixture
async def view(table_dir, tmp_path):
    emu = make_emulator()
    await emu.start()
    service = await start_view(emu, tmp_path)
    yield emu, service
    await service.stop()
    await emu.stop()


async def test_a_supervisor_logs_an_agent_in_to_its_queues_and_out_again_audited(view):
    emu, service = view
    async with http(service) as client:
        csrf = await login(client, "supervisor")
        listed = (await client.get("/api/agents", headers={"Accept-Language": "en"})).json()
        desk = next(a for a in listed["agents"] if a["number"] == "1002")
        assert [q["name"] for q in desk["queues"]] == ["12320 卫生健康专家座席 (health expert seat)",
                                                       "12345 综合受理 (general, 24/7)"]
        assert desk["logged_in"] == {"haikou": []} and listed["may"] == {"login": True, "logout": True}

        r = await client.post("/api/agents/1002/login", json={"server": "haikou"},
                              headers={"X-CSRF-Token": csrf, "Accept-Language": "zh-CN"})
        assert r.status_code == 200 and r.json()["ok"], r.text
        assert r.json()["message"].startswith("expert desk 1 已登录")
        adds = [a for a in emu.received if a.get("Action") == "QueueAdd"]
        assert {(a["Queue"], a["Penalty"], a["MemberName"]) for a in adds} == {
            ("expert-12320", "0", "expert desk 1"), ("general-12345", "6", "expert desk 1")}   # floor 1 + 5
        state = (await client.get("/api/state")).json()
        assert "PJSIP/agent-1002" in members(state, "expert-12320")
        again = (await client.get("/api/agents")).json()
        assert next(a for a in again["agents"] if a["number"] == "1002")["logged_in"]["haikou"] == [
            "expert-12320", "general-12345"]
        entry = service.hub.audit.tail(1)[0]
        assert entry["action"] == "agent_login" and entry["user"] == "supervisor"
        assert entry["params"]["agent"] == "1002" and entry["params"]["queues"] == "expert-12320,general-12345"

        r = await client.post("/api/agents/1002/logout", json={}, headers={"X-CSRF-Token": csrf,
                                                                          "Accept-Language": "en"})
        assert r.json() == {"ok": True, "message": "expert desk 1 logged out: 12320 卫生健康专家座席 (health expert "
                            "seat)、12345 综合受理 (general, 24/7)", "queues": ["expert-12320", "general-12345"]}
        assert "PJSIP/agent-1002" not in members((await client.get("/api/state")).json(), "expert-12320")
        assert service.hub.audit.tail(1)[0]["action"] == "agent_logout"


async def test_without_csrf_or_with_an_unknown_agent_nothing_reaches_asterisk(view):
    emu, service = view
    async with http(service) as client:
        csrf = await login(client, "supervisor")
        assert (await client.post("/api/agents/1002/login", json={})).status_code == 403
        r = await client.post("/api/agents/9999/login", json={}, headers={"X-CSRF-Token": csrf,
                                                                        "Accept-Language": "en"})
        assert r.status_code == 404 and r.json()["message"] == "No agent 9999"
        r = await client.post("/api/agents/1002/fly", json={}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403
        assert not [a for a in emu.received if a.get("Action") in ("QueueAdd", "QueueRemove")]


async def test_a_viewer_sees_the_agents_but_may_not_log_them_in(table_dir, tmp_path):
    from supervisor.auth import hash_password
    emu = make_emulator()
    await emu.start()
    users = tmp_path / "users.txt"
    users.write_text(f"watcher:viewer:{hash_password('watcher-pass-1')}\n")
    service = await start_view(emu, tmp_path, {"HOTLINE_WEB_USERS": str(users)})
    try:
        async with http(service) as client:
            csrf = await login(client, "watcher", "watcher-pass-1")
            assert (await client.get("/api/agents")).json()["may"] == {"login": False, "logout": False}
            r = await client.post("/api/agents/1003/login", json={}, headers={"X-CSRF-Token": csrf})
            assert r.status_code == 403 and "viewer" in r.json()["message"]
            assert not [a for a in emu.received if a.get("Action") == "QueueAdd"]
            assert service.hub.audit.tail(1) == [] or service.hub.audit.tail(1)[0]["action"] != "agent_login"
    finally:
        await service.stop()
        await emu.stop()


@pytest.mark.browser
@pytest.mark.parametrize("locale,logged_in,logout", [("zh-CN", "已登录", "登出"), ("en-US", "Logged in", "Log out")])
async def test_login_and_logout_from_the_browser(view, locale, logged_in, logout):
    _need_chromium()
    from playwright.async_api import async_playwright
    emu, service = view
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale=locale, viewport={"width": 1440, "height": 900})
            page.set_default_timeout(10_000)
            problems = collect_problems(page, console=False)
            page.on("dialog", lambda d: d.accept())           # the confirmation
            await page.goto(f"http://127.0.0.1:{service.port}/login")
            await sign_in(page)
            await page.click('#agents-panel button[data-agent="1003"][data-kind="login"]')
            row = await page.wait_for_selector('#agents-panel tr[data-agent="1003"][data-state="in"]')
            assert logged_in in await row.inner_text()
            # the live view shows the new member from Asterisk's QueueMemberAdded
            await page.wait_for_selector('.tile[data-queue="general-12345"] .member[data-interface="PJSIP/agent-1003"]')
            await page.wait_for_timeout(300)
            shot = Path("/tmp") / f"agents-{locale}.png"
            await page.screenshot(path=str(shot), full_page=True)
            await page.click(f'#agents-panel tr[data-agent="1003"] button[data-kind="logout"]')
            await page.wait_for_selector('#agents-panel tr[data-agent="1003"][data-state="out"]')
            assert logout not in await (await page.query_selector('#agents-panel tr[data-agent="1003"]')).inner_text()
            assert [a["Action"] for a in emu.received if a.get("Interface") == "PJSIP/agent-1003"] == [
                "QueueAdd", "QueueRemove"]
            assert problems == []
        finally:
            await browser.close()


def test_the_agents_script_is_served_and_named_once_in_the_page():
    page = (ROOT / "supervisor" / "templates" / "index.html").read_text(encoding="utf-8")
    assert page.count('<script src="/static/agents.js" defer></script>') == 1 and 'id="agents-panel"' in page
    assert os.path.exists(ROOT / "supervisor" / "static" / "agents.js")
