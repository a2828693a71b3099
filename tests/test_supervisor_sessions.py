"""Logins, sessions and masking of the supervisors' view against a real uvicorn on loopback (issue 10, 7-10).

Parallel guesses meet the back-off (checked and counted before the slow hash); the back-off is per name and
address (no lock-out of `admin` from elsewhere, none for a whole NAT); a cookie copied before logout opens
nothing afterwards, the cookie is never re-issued, and a session ends when idle and at its absolute lifetime
(the store's clock injected, no sleeps); numbers written with separators in caller names, and a caller's own
"[number]" that would become the line, are masked in the page, /api/state and the event stream.
"""
from __future__ import annotations

import asyncio
import re

import httpx

from supervisor.auth import hash_password
from tests.test_supervisor_web import (PASSWORDS, emulator, http, login, queue_of, read_sse_until,  # noqa: F401
                                       start_view, view)

__all__ = ["emulator", "view"]  # the fixtures, imported for pytest


async def login_token(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]


async def try_login(client: httpx.AsyncClient, token: str, user: str, password: str) -> httpx.Response:
    return await client.post("/login", data={"csrf_token": token, "username": user, "password": password})


def from_address(service, address: str) -> httpx.AsyncClient:
    """A client whose connections come from another loopback address (127.0.0.0/8 is all this machine)."""
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.port}", timeout=10,
                             transport=httpx.AsyncHTTPTransport(local_address=address))


# ---- 7: parallel guesses ---------------------------------------------------------------------------------
async def test_sixty_parallel_wrong_passwords_meet_the_back_off(view):
    throttle = view.app.state.throttle
    throttle.base = 30.0    # first wait 30 s, not 2: a loaded machine may take seconds to deliver all 60
    free = throttle.free
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{view.port}", timeout=30,
                                 limits=httpx.Limits(max_connections=60)) as client:
        token = await login_token(client)
        replies = await asyncio.gather(*(try_login(client, token, "admin", f"guess-{i}") for i in range(60)))
        codes = [r.status_code for r in replies]
        assert codes.count(401) == free and codes.count(429) == 60 - free, codes
        # the right password now waits too, and the page says for how long
        r = await try_login(client, token, "admin", PASSWORDS["admin"])
        assert r.status_code == 429 and "登录失败次数过多" in r.text  # Chinese by default
        seconds = int(r.headers["retry-after"])
        assert 1 <= seconds <= 30 and f"请 {seconds} 秒后再试" in r.text
        assert (await client.get("/api/state")).status_code == 401


# ---- 10: per name + address --------------------------------------------------------------------------------
async def test_back_off_slows_only_the_name_from_that_address(view):
    view.app.state.throttle.base = 30.0
    free = view.app.state.throttle.free
    async with from_address(view, "127.0.0.1") as attacker:
        token = await login_token(attacker)
        for _ in range(free):
            assert (await try_login(attacker, token, "admin", "guess")).status_code == 401
        assert (await try_login(attacker, token, "admin", PASSWORDS["admin"])).status_code == 429
        # another name from the same address (a colleague behind the same NAT) is not slowed
        r = await try_login(attacker, token, "supervisor", PASSWORDS["supervisor"])
        assert r.status_code == 303 and r.headers["location"] == "/"
    async with from_address(view, "127.0.0.2") as admin:   # the same name from elsewhere: not locked out
        await login(admin, "admin")
        assert (await admin.get("/api/state")).status_code == 200


# ---- 8: server-side sessions ---------------------------------------------------------------------------------
async def test_a_cookie_copied_before_logout_opens_nothing_after_it(view, emulator):
    async with http(view) as client:
        csrf = await login(client, "supervisor")
        stolen = client.cookies["hotline_session"]
        async with http(view) as thief:
            thief.cookies.set("hotline_session", stolen)
            assert (await thief.get("/api/state")).status_code == 200   # a copy works while the session lives

            async def stream_ends() -> None:
                async with thief.stream("GET", "/api/events") as response:
                    assert response.status_code == 200
                    async for _ in response.aiter_lines():
                        pass

            streaming = asyncio.create_task(stream_ends())
            await asyncio.sleep(0.2)
            r = await client.post("/logout", data={"csrf_token": csrf})
            assert r.status_code == 303 and r.headers["location"] == "/login"
            await asyncio.wait_for(streaming, 5)               # the open event stream of the copy ends too
            assert (await thief.get("/api/state")).status_code == 401
            page = await thief.get("/")
            assert page.status_code == 303 and page.headers["location"] == "/login"
            r = await thief.post("/api/action/pause", json={"server": "haikou", "queue": "general-12345",
                                                            "interface": "PJSIP/7001"},
                                 headers={"X-CSRF-Token": csrf})
            assert r.status_code == 401
    assert not any(a.get("Action") == "QueuePause" for a in emulator.received)


async def test_the_cookie_is_set_once_at_login_and_never_reissued(view):
    async with http(view) as client:
        await login(client, "supervisor")
        for path in ("/", "/api/state", "/api/history"):
            r = await client.get(path)
            assert r.status_code == 200 and "set-cookie" not in r.headers, path


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_session_ends_when_idle_and_at_its_absolute_lifetime(view):
    store = view.app.state.sessions
    clock = store.clock = FakeClock()
    async with http(view) as client:
        await login(client, "supervisor")
        clock.now += store.idle - 1
        assert (await client.get("/api/state")).status_code == 200
        clock.now += store.idle                                   # no request for the idle time
        assert (await client.get("/api/state")).status_code == 401
    async with http(view) as client:
        await login(client, "supervisor")
        started = clock.now
        while clock.now + store.idle / 2 < started + store.lifetime:   # busy all shift long
            clock.now += store.idle / 2
            assert (await client.get("/api/state")).status_code == 200
        clock.now = started + store.lifetime
        assert (await client.get("/api/state")).status_code == 401    # however busy


# ---- 9: masking in what a supervisor receives -----------------------------------------------------------------
async def test_numbers_with_separators_and_a_callers_own_line_tag_are_masked_for_a_supervisor(view, emulator):
    names = ["Wang 138 0013 8000", "138-0013-8000", "138.0013.8000", "[13800138000] x"]
    for i, name in enumerate(names):
        caller = emulator.new_call(f"1390000000{i}", "12320", caller_name=name)
        emulator.caller_joins_queue(caller.name, "expert-12320")
    async with http(view) as client:
        await login(client, "supervisor")
        frame, raw = await read_sse_until(client, lambda d: queue_of(d, "expert-12320")["waiting"] == 4)
        texts = [raw, (await client.get("/api/state")).text, (await client.get("/")).text]
    for text in texts:
        assert "0013" not in text and "13800138000" not in text and "1390000000" not in text
    shown = queue_of(frame, "expert-12320")
    assert {(c["line"], c["name"]) for c in shown["callers"]} == {
        ("12320", "Wang 138 **** 8000"), ("12320", "138-****-8000"), ("12320", "138.****.8000"), ("138****8000", "x")}
    assert "138****8000" in {row["line"] for row in shown["lines"]}


async def test_a_password_changed_in_the_users_file_ends_that_users_sessions(emulator, tmp_path):
    users = tmp_path / "users"
    users.write_text(f"ann:supervisor:{hash_password('ann-password-1')}\n"
                     f"bob:supervisor:{hash_password('bob-password-1')}\n")
    service = await start_view(emulator, tmp_path, {"HOTLINE_WEB_USERS": str(users)})
    try:
        async with http(service) as ann, http(service) as bob:
            await login(ann, "ann", "ann-password-1")
            await login(bob, "bob", "bob-password-1")
            assert (await ann.get("/api/state")).status_code == 200
            users.write_text(f"ann:supervisor:{hash_password('ann-password-2')}\n"
                             f"bob:supervisor:{bob_hash(users)}\n")
            assert (await ann.get("/api/state")).status_code == 401      # opened with the old password
            assert (await bob.get("/api/state")).status_code == 200      # bob's password did not change
            await login(ann, "ann", "ann-password-2")
            users.write_text("ann:supervisor:not-a-hash\n")              # a broken file keeps the users
            assert (await ann.get("/api/state")).status_code == 200
    finally:
        await service.stop()


def bob_hash(users) -> str:
    return next(line.split(":", 2)[2] for line in users.read_text().splitlines() if line.startswith("bob:"))
