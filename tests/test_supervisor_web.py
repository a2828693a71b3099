"""The supervisors' web view over real TCP: uvicorn + Starlette app, AmiClient, the AMI emulator.

Access control (no session gets nothing; a supervisor never receives a full number anywhere; CSRF on every
action), actions reaching Asterisk (the emulator) and the audit trail, live updates by server-sent events,
resync after a broken AMI link, /metrics.
"""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import httpx
import pytest

from ivr.ami.client import AmiClient
from ivr.ami.emulator import AmiEmulator
from scripts.settings import Settings
from supervisor.auth import hash_password
from supervisor.service import SupervisorService, build_service

SECRET = "emu-secret"
FULL = "13812345678"  # a caller's number: only admins may ever receive it
MASKED = "138****5678"
PASSWORDS = {"admin": "admin-password-1", "supervisor": "supervisor-password-1"}


def make_emulator() -> AmiEmulator:
    emu = AmiEmulator(secret=SECRET)
    emu.add_queue("general-12345", "rrmemory")
    emu.add_member("general-12345", "Local/agent2@queue-agents/n", "Agent Two")
    emu.add_member("general-12345", "PJSIP/7001", "Wang Fang")
    emu.add_queue("expert-12320")
    emu.add_member("expert-12320", "Local/agent1@queue-agents/n", "Agent One")
    return emu


async def start_view(emu: AmiEmulator, tmp_path: Path, extra_env: dict[str, str] | None = None,
                     settings: Settings | None = None) -> SupervisorService:
    client = AmiClient("127.0.0.1", emu.port, "hotline", SECRET, reconnect_first_delay=0.05,
                       reconnect_max_delay=0.2, action_timeout=3)
    env = {"HOTLINE_WEB_ADMIN_PASSWORD": PASSWORDS["admin"],
           "HOTLINE_WEB_SUPERVISOR_PASSWORD": PASSWORDS["supervisor"],
           "HOTLINE_SUPERVISOR_AUDIT": str(tmp_path / "audit.jsonl"), **(extra_env or {})}
    settings = settings or Settings(db_url=f"sqlite:///{tmp_path / 'records.sqlite3'}")
    service = build_service(settings, host="127.0.0.1", port=0, environ=env, clients={"haikou": client})
    await service.start()
    assert await service.hub.wait_synced(5)
    return service


@pytest.fixture
async def emulator() -> AsyncIterator[AmiEmulator]:
    emu = make_emulator()
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def view(emulator: AmiEmulator, tmp_path: Path) -> AsyncIterator[SupervisorService]:
    service = await start_view(emulator, tmp_path)
    yield service
    await service.stop()


def http(service: SupervisorService) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.port}", timeout=5)


async def login(client: httpx.AsyncClient, user: str, password: str | None = None) -> str:
    """Log in through the form; returns the page's CSRF token for later actions."""
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    r = await client.post("/login", data={"csrf_token": token, "username": user,
                                          "password": password or PASSWORDS[user]})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    index = await client.get("/")
    assert index.status_code == 200
    return re.search(r'name="csrf-token" content="([^"]+)"', index.text)[1]


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def members(state: dict, queue: str) -> dict[str, dict]:
    for s in state["servers"]:
        for q in s["queues"]:
            if q["name"] == queue:
                return {m["interface"]: m for m in q["members"]}
    return {}


def queue_of(state: dict, queue: str) -> dict:
    return next(q for s in state["servers"] for q in s["queues"] if q["name"] == queue)


async def read_sse_until(client: httpx.AsyncClient, predicate: Callable[[dict], bool], timeout: float = 5.0,
                         on_open: Callable[[], None] | None = None) -> tuple[dict, str]:
    """Read state events until one satisfies `predicate`; returns it and everything received (raw text)."""
    raw = []

    async def run() -> dict:
        async with client.stream("GET", "/api/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            opened = False
            async for line in response.aiter_lines():
                raw.append(line)
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    if not opened and on_open is not None:
                        opened = True
                        on_open()
                    if predicate(data):
                        return data
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(run(), timeout), "\n".join(raw)


# ---- access control ------------------------------------------------------------------------------------
async def test_no_session_gets_nothing(view, emulator):
    async with http(view) as client:
        page = await client.get("/")
        assert page.status_code == 303 and page.headers["location"] == "/login"
        for path in ("/api/state", "/api/events", "/api/history", "/api/audit"):
            r = await client.get(path)
            assert r.status_code == 401, path
            assert "general-12345" not in r.text
        r = await client.post("/api/action/pause", json={"server": "haikou", "queue": "general-12345",
                                                         "interface": "PJSIP/7001"})
        assert r.status_code == 401
    assert not any(a.get("Action") == "QueuePause" for a in emulator.received)
    assert view.hub.audit.tail(10) == []


async def test_wrong_password_and_forged_login_are_refused(view):
    async with http(view) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
        r = await client.post("/login", data={"csrf_token": token, "username": "admin", "password": "nope"})
        assert r.status_code == 401 and "用户名或密码错误" in r.text  # Chinese unless the user asks otherwise
        r = await client.post("/login", data={"csrf_token": token, "username": "nobody", "password": "x"})
        assert r.status_code == 401
        r = await client.post("/login", data={"username": "admin", "password": PASSWORDS["admin"]})
        assert r.status_code == 403  # no CSRF token: a login form posted from elsewhere
        assert (await client.get("/api/state")).status_code == 401


async def test_supervisor_never_receives_a_full_number(view, emulator):
    caller = emulator.new_call(FULL, "12320", caller_name=FULL)  # the name is the number too, as carriers do
    emulator.caller_joins_queue(caller.name, "expert-12320")
    async with http(view) as client:
        csrf = await login(client, "supervisor")
        state = await eventually(lambda: _state_with_caller(client))
        texts = [(await client.get(p)).text for p in ("/", "/api/state", "/api/history", "/api/audit",
                                                       "/metrics", "/static/app.js")]
        frame, raw = await read_sse_until(client, lambda d: queue_of(d, "expert-12320")["waiting"] == 1)
        texts.append(raw)
        # an action whose answer might echo data
        r = await client.post("/api/action/pause", json={"server": "haikou", "queue": "expert-12320",
                                                         "interface": "Local/agent1@queue-agents/n",
                                                         "reason": "break"}, headers={"X-CSRF-Token": csrf})
        texts.append(r.text)
    for text in texts:
        assert FULL not in text
        assert "12345678" not in text  # not even most of it
    shown = queue_of(state, "expert-12320")["callers"][0]
    assert shown["number"] == MASKED and shown["name"] == MASKED and shown["line"] == "12320"
    assert state["full_numbers"] is False and "full_numbers" not in state["user"]["may"]


async def _state_with_caller(client: httpx.AsyncClient) -> dict | None:
    state = (await client.get("/api/state")).json()
    return state if queue_of(state, "expert-12320")["waiting"] == 1 else None


async def test_admin_sees_the_full_number(view, emulator):
    caller = emulator.new_call(FULL, "12320", caller_name="[12320] Zhang San")
    emulator.caller_joins_queue(caller.name, "expert-12320")
    async with http(view) as client:
        await login(client, "admin")
        state = await eventually(lambda: _state_with_caller(client))
        shown = queue_of(state, "expert-12320")["callers"][0]
        assert (shown["number"], shown["name"], shown["line"]) == (FULL, "Zhang San", "12320")
        frame, raw = await read_sse_until(client, lambda d: queue_of(d, "expert-12320")["waiting"] == 1)
        assert FULL in raw


async def test_actions_without_the_csrf_token_are_refused(view, emulator):
    pause = {"server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001", "reason": "lunch"}
    async with http(view) as client:
        csrf = await login(client, "supervisor")
        r = await client.post("/api/action/pause", json=pause)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"] and "页面已过期" in r.json()["message"]
        r = await client.post("/api/action/pause", json=pause, headers={"X-CSRF-Token": "x" * 43})
        assert r.status_code == 403
        r = await client.post("/api/action/pause", json=pause,
                              headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
        assert r.status_code == 403
        r = await client.post("/logout", data={})
        assert r.status_code == 403
        assert not any(a.get("Action") == "QueuePause" for a in emulator.received)
        r = await client.post("/api/action/pause", data={**pause, "csrf_token": csrf})  # the form field works too
        assert r.status_code == 200 and r.json()["ok"]
        r = await client.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert (await client.get("/api/state")).status_code == 401


# ---- actions reach Asterisk and are audited ---------------------------------------------------------
async def test_supervisor_pauses_and_unpauses_through_ami_and_it_is_audited(view, emulator):
    async with http(view) as client:
        csrf = await login(client, "supervisor")
        r = await client.post("/api/action/pause", headers={"X-CSRF-Token": csrf}, json={
            "server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001", "reason": "lunch"})
        # the user reads our words, with the table's queue name; Asterisk's reply is kept as the detail
        assert r.json() == {"ok": True, "message": "已暂停 Wang Fang（12345 综合受理）。", "code": "view.ok.pause",
                            "detail": "Interface paused successfully"}
        sent = [a for a in emulator.received if a.get("Action") == "QueuePause"]
        assert sent and sent[-1]["Interface"] == "PJSIP/7001" and sent[-1]["Reason"] == "lunch"
        assert sent[-1]["Paused"] == "true" and sent[-1]["Queue"] == "general-12345"

        async def paused():
            m = members((await client.get("/api/state")).json(), "general-12345")["PJSIP/7001"]
            return m if m["state"] == "paused" else None
        m = await eventually(paused)
        assert m["reason"] == "lunch" and m["paused_for"] is not None

        r = await client.post("/api/action/unpause", headers={"X-CSRF-Token": csrf}, json={
            "server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001"})
        assert r.json()["ok"]

        async def unpaused():
            m = members((await client.get("/api/state")).json(), "general-12345")["PJSIP/7001"]
            return m["state"] == "free"
        await eventually(unpaused)
        assert (await client.get("/api/audit")).status_code == 403  # the trail is for admins

    entries = view.hub.audit.tail(10)
    assert [(e["user"], e["role"], e["action"], e["result"]) for e in reversed(entries)] == [
        ("supervisor", "supervisor", "pause", "ok"), ("supervisor", "supervisor", "unpause", "ok")]
    assert entries[-1]["params"] == {"server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001",
                                     "reason": "lunch"}
    assert entries[-1]["at"].endswith("+00:00")


async def test_add_and_remove_a_member(view, emulator):
    async with http(view) as client:
        csrf = await login(client, "admin")
        r = await client.post("/api/action/add", headers={"X-CSRF-Token": csrf}, json={
            "server": "haikou", "queue": "general-12345", "interface": "PJSIP/7009", "member_name": "Li Lei",
            "penalty": "2"})
        assert r.json()["message"] == "已将 Li Lei 添加到 12345 综合受理。"
        assert r.json()["detail"] == "Added interface to queue"
        assert "PJSIP/7009" in emulator.queues["general-12345"].members

        async def added():
            return members((await client.get("/api/state")).json(), "general-12345").get("PJSIP/7009")
        assert (await eventually(added))["name"] == "Li Lei"

        r = await client.post("/api/action/remove", headers={"X-CSRF-Token": csrf}, json={
            "server": "haikou", "queue": "general-12345", "interface": "PJSIP/7009"})
        assert r.json()["ok"]

        async def removed():
            return "PJSIP/7009" not in members((await client.get("/api/state")).json(), "general-12345")
        await eventually(removed)
        # Asterisk's own refusal comes back as a clear message and is audited as an error
        r = await client.post("/api/action/remove", headers={"X-CSRF-Token": csrf}, json={
            "server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001"})
        assert r.status_code == 400 and "Member not dynamic" in r.json()["detail"]
        assert "Member not dynamic" not in r.json()["message"]  # Asterisk's words stay out of the toast
        audit = (await client.get("/api/audit")).json()["entries"]
        assert [(e["action"], e["result"]) for e in audit[:3]] == [("remove", "error"), ("remove", "ok"),
                                                                   ("add", "ok")]


@pytest.mark.parametrize("kind,options", [("listen", "qb"), ("whisper", "qbw"), ("barge", "qbB")])
async def test_listen_whisper_barge_originate_chanspy(view, emulator, kind, options):
    emulator.answered_call("general-12345", "Local/agent2@queue-agents/n", caller_num=FULL)
    async with http(view) as client:
        csrf = await login(client, "supervisor")

        async def busy():
            m = members((await client.get("/api/state")).json(), "general-12345")
            return m["Local/agent2@queue-agents/n"]["state"] == "busy"
        await eventually(busy)
        r = await client.post(f"/api/action/{kind}", headers={"X-CSRF-Token": csrf}, json={
            "server": "haikou", "queue": "general-12345", "interface": "Local/agent2@queue-agents/n",
            "phone": "PJSIP/9001"})
        assert r.json()["ok"] is True and r.json()["detail"] == "Originate successfully queued"
        assert "Originate" not in r.json()["message"] and "Agent Two" in r.json()["message"]
    originate = [a for a in emulator.received if a.get("Action") == "Originate"][-1]
    assert originate["Channel"] == "PJSIP/9001" and originate["Application"] == "ChanSpy"
    assert originate["Data"] == f"Local/agent2@queue-agents,{options}"
    entry = view.hub.audit.tail(1)[0]
    assert entry["action"] == kind and entry["params"]["spy"] == originate["Data"]
    assert FULL not in json.dumps(entry)


async def test_bad_requests_are_refused_before_asterisk(view, emulator):
    async with http(view) as client:
        csrf = await login(client, "supervisor")
        h = {"X-CSRF-Token": csrf}
        cases = [
            ("pause", {"server": "elsewhere", "queue": "general-12345", "interface": "PJSIP/7001"}, "unknown server"),
            ("pause", {"server": "haikou", "queue": "general-12345", "interface": "PJSIP/7777"}, "not a member"),
            ("pause", {"server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001\r\nAction: Hangup"},
             "interface"),
            ("pause", {"server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001",
                       "reason": "x\r\nAction: Originate"}, "control characters"),
            ("listen", {"server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001",
                        "phone": "Local/1@x,q"}, "phone"),
            ("explode", {"server": "haikou"}, "unknown action"),
        ]
        for kind, params, expected in cases:
            r = await client.post(f"/api/action/{kind}", headers=h, json=params)
            assert r.status_code == 400 and expected in r.json()["detail"], (kind, r.text)
        r = await client.post("/api/action/pause", headers={**h, "Content-Type": "application/json"},
                              content=b"{not json")
        assert r.status_code == 400
    assert not any(a.get("Action") in ("QueuePause", "Originate", "Hangup") for a in emulator.received)
    assert len(view.hub.audit.tail(100)) == len(cases)  # refusals are audited too


async def test_viewer_role_from_a_users_file_may_not_act(emulator, tmp_path):
    users = tmp_path / "users"
    users.write_text(f"# name:role:hash[:phone]\nwatcher:viewer:{hash_password('watcher-pass-1')}\n"
                     f"boss:admin:{hash_password('boss-pass-123')}:PJSIP/9001\n")
    service = await start_view(emulator, tmp_path, {"HOTLINE_WEB_USERS": str(users)})
    try:
        async with http(service) as client:
            csrf = await login(client, "watcher", "watcher-pass-1")
            r = await client.post("/api/action/pause", headers={"X-CSRF-Token": csrf}, json={
                "server": "haikou", "queue": "general-12345", "interface": "PJSIP/7001"})
            assert r.status_code == 403 and "viewer" in r.json()["message"]
            page = await client.get("/login")  # logged in: the login page sends you on
            assert page.status_code == 303
        async with http(service) as client:
            r = await client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)[1]
            r = await client.post("/login", data={"csrf_token": token, "username": "admin",
                                                  "password": PASSWORDS["admin"]})
            assert r.status_code == 401  # the embedded accounts are off when a users file is given
    finally:
        await service.stop()
    assert not any(a.get("Action") == "QueuePause" for a in emulator.received)
    assert service.hub.audit.tail(1)[0]["result"] == "error"


# ---- live updates, resync, metrics -------------------------------------------------------------------
async def test_event_stream_shows_a_new_caller(view, emulator):
    async with http(view) as client:
        await login(client, "supervisor")

        def join() -> None:
            caller = emulator.new_call(FULL, "12345", caller_name="[12318] Chen")
            emulator.caller_joins_queue(caller.name, "general-12345")

        frame, raw = await read_sse_until(client, lambda d: queue_of(d, "general-12345")["waiting"] == 1,
                                          on_open=join)
    caller = queue_of(frame, "general-12345")["callers"][0]
    assert (caller["number"], caller["line"], caller["name"]) == (MASKED, "12318", "Chen")
    assert frame["lines"] == [{"line": "12318", "waiting": 1, "answered": 0, "abandoned": 0, "overflowed": 0,
                               "answered_in_sl": 0, "service": "12318 文化市场举报"}]  # the table's service


async def test_resync_after_the_ami_link_breaks(view, emulator):
    old_logins = view.hub.clients["haikou"].logins
    emulator.drop_connections()
    # while the link is down a caller joins: no event reaches us, only the QueueStatus after login can tell
    caller = emulator.new_call(FULL, "12320", caller_name="[12320] Zhao")
    emulator.caller_joins_queue(caller.name, "expert-12320")
    async with http(view) as client:
        await login(client, "admin")

        async def resynced():
            state = (await client.get("/api/state")).json()
            return state if view.hub.clients["haikou"].logins > old_logins and \
                queue_of(state, "expert-12320")["waiting"] == 1 else None
        state = await eventually(resynced)
    assert queue_of(state, "expert-12320")["callers"][0]["number"] == FULL
    assert state["servers"][0]["connected"] is True


async def test_metrics(view, emulator):
    emulator.answered_call("general-12345", "Local/agent2@queue-agents/n")
    caller = emulator.new_call(FULL, "12320")
    emulator.caller_joins_queue(caller.name, "expert-12320")
    async with http(view) as client:
        async def scraped():
            text = (await client.get("/metrics")).text
            return text if 'hotline_queue_answered_total{queue="general-12345",server="haikou"} 1.0' in text \
                else None
        text = await eventually(scraped)
    assert 'hotline_queue_waiting_callers{queue="expert-12320",server="haikou"} 1.0' in text
    assert 'hotline_queue_members{queue="general-12345",server="haikou",state="busy"} 1.0' in text
    assert 'hotline_queue_service_level_ratio{queue="general-12345",server="haikou"} 1.0' in text
    assert 'hotline_ami_connected{server="haikou"} 1.0' in text
    assert "hotline_queue_longest_wait_seconds" in text and FULL not in text


async def test_metrics_token(emulator, tmp_path):
    service = await start_view(emulator, tmp_path, {"HOTLINE_METRICS_TOKEN": "scrape-me"})
    try:
        async with http(service) as client:
            assert (await client.get("/metrics")).status_code == 401
            r = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
            assert r.status_code == 200 and "hotline_queue_waiting_callers" in r.text
    finally:
        await service.stop()


async def test_pages_carry_security_headers_and_no_outside_resources(view):
    async with http(view) as client:
        await login(client, "supervisor")
        page = await client.get("/")
        js = await client.get("/static/app.js")
        css = await client.get("/static/app.css")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    cookie_flags = page.request.headers.get("cookie", "")
    assert "hotline_session" in cookie_flags
    for text in (page.text, js.text, css.text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text


async def test_repeated_wrong_passwords_slow_the_name_from_that_address(view):
    async with http(view) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
        view.app.state.throttle.base = 30.0   # the next try waits 30 s: never reached by a slow machine
        for _ in range(view.app.state.throttle.free):
            r = await client.post("/login", data={"csrf_token": token, "username": "admin", "password": "guess"})
            assert r.status_code == 401
        r = await client.post("/login", data={"csrf_token": token, "username": "admin",
                                              "password": PASSWORDS["admin"]})
        assert r.status_code == 429 and "登录失败次数过多" in r.text
        assert (await client.get("/api/state")).status_code == 401


async def test_two_asterisk_servers_feed_one_view_and_actions_go_to_the_right_one(tmp_path):
    haikou, sanya = make_emulator(), make_emulator()
    await haikou.start()
    await sanya.start()
    clients = {name: AmiClient("127.0.0.1", emu.port, "hotline", SECRET, reconnect_first_delay=0.05)
               for name, emu in (("haikou", haikou), ("sanya", sanya))}
    env = {"HOTLINE_WEB_ADMIN_PASSWORD": PASSWORDS["admin"], "HOTLINE_WEB_SUPERVISOR_PASSWORD":
           PASSWORDS["supervisor"], "HOTLINE_SUPERVISOR_AUDIT": str(tmp_path / "audit.jsonl")}
    service = build_service(Settings(db_url=f"sqlite:///{tmp_path / 'records.sqlite3'}"), host="127.0.0.1", port=0, environ=env, clients=clients)
    await service.start()
    try:
        assert await service.hub.wait_synced(5)
        caller = sanya.new_call(FULL, "12366", caller_name="[12366] tax")
        sanya.caller_joins_queue(caller.name, "general-12345")
        async with http(service) as client:
            csrf = await login(client, "supervisor")

            async def both():
                state = (await client.get("/api/state")).json()
                waiting = {s["name"]: sum(q["waiting"] for q in s["queues"]) for s in state["servers"]}
                return state if waiting == {"haikou": 0, "sanya": 1} else None
            state = await eventually(both)
            assert state["lines"][0]["line"] == "12366"
            r = await client.post("/api/action/pause", headers={"X-CSRF-Token": csrf}, json={
                "server": "sanya", "queue": "general-12345", "interface": "PJSIP/7001", "reason": "meeting"})
            assert r.json()["ok"]
        assert sanya.queues["general-12345"].members["PJSIP/7001"].paused
        assert not haikou.queues["general-12345"].members["PJSIP/7001"].paused
    finally:
        await service.stop()
        await haikou.stop()
        await sanya.stop()


async def test_run_beside_the_engine_sharing_its_ami_client(emulator, tmp_path):
    shared = AmiClient("127.0.0.1", emulator.port, "hotline", SECRET)
    await shared.start()
    await shared.wait_connected(5)
    env = {"HOTLINE_WEB_ADMIN_PASSWORD": PASSWORDS["admin"], "HOTLINE_WEB_SUPERVISOR_PASSWORD":
           PASSWORDS["supervisor"], "HOTLINE_SUPERVISOR_AUDIT": str(tmp_path / "audit.jsonl")}
    service = build_service(Settings(db_url=f"sqlite:///{tmp_path / 'records.sqlite3'}"), host="127.0.0.1", port=0, environ=env, clients={"pbx": shared},
                            close_clients=False)
    await service.start()
    try:
        assert await service.hub.wait_synced(5)  # resynced although the login came before we subscribed
        assert {q for q in service.hub.state.servers["pbx"].queues} == {"general-12345", "expert-12320"}
    finally:
        await service.stop()
    assert shared.connected  # the engine's link stays up
    await shared.close()
