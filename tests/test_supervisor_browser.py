"""A real headless Chromium (Debian's) against the live view: log in, see a caller appear within a second of
an emulated QueueCallerJoin, pause an agent and see it paused; saves artifacts/supervisor.png."""
from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import pytest

from tests.test_supervisor_web import FULL, PASSWORDS, make_emulator, start_view

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def _need_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's chromium is required in CI (apt-get install -y chromium)")
        pytest.skip("no /usr/bin/chromium here")

async def sign_in(page, user: str = "supervisor") -> None:
    """Fill the login form the page shows with `user`'s test password and submit it."""
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", PASSWORDS[user])
    await page.click("button[type=submit]")


@contextlib.asynccontextmanager
async def browser_page(pw, profile, *, viewport: dict, locale: str, timeout_ms: int = 10_000):
    """A page of Debian's chromium in its own profile directory (kept cookies, as a user's browser), closed after."""
    context = await pw.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, viewport=viewport,
        locale=locale)
    try:
        page = context.pages[0] if context.pages else await context.new_page()
        page.set_default_timeout(timeout_ms)
        yield page
    finally:
        await context.close()


def collect_problems(page, *, console: bool = True) -> list[str]:
    """The page's errors (and console errors) as they happen, for a test to assert there are none."""
    problems: list[str] = []
    if console:
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def _scene(emu) -> None:
    """A believable moment: calls answered and abandoned today, agents busy, one caller waiting too long."""
    emu.add_member("general-12345", "PJSIP/7002", "Li Na")
    emu.add_member("general-12345", "PJSIP/7003", "Zhou Jie", paused=True, reason="training")
    emu.add_queue("minors-protection")
    emu.add_member("minors-protection", "PJSIP/7101", "Sun Li")
    emu.add_member("minors-protection", "PJSIP/7102", "He Yun")
    emu.queues["minors-protection"].members["PJSIP/7102"].status = 5  # logged off: unavailable
    for number, line in (("13907551234", "12345"), ("18976543210", "12318")):
        caller = emu.new_call(number, line, caller_name=f"[{line}] caller")
        emu.caller_joins_queue(caller.name, "general-12345")
        emu.queues["general-12345"].joined[caller.name] = time.time() - (47 if line == "12345" else 9)
    caller = emu.new_call("13600001111", "12349", caller_name="[12349] Lin")
    emu.caller_joins_queue(caller.name, "minors-protection")
    emu.queues["minors-protection"].joined[caller.name] = time.time() - 4


async def test_supervisor_in_a_real_browser(tmp_path):
    _need_chromium()
    from playwright.async_api import async_playwright

    emu = make_emulator()
    _scene(emu)
    await emu.start()
    view = await start_view(emu, tmp_path)
    view.hub.sample_interval = 0.2  # enough chart points within the test
    base = f"http://127.0.0.1:{view.port}"
    try:
        # today's figures arrive as live events: two answered (one after 20 s), one abandoned
        emu.answered_call("general-12345", "Local/agent2@queue-agents/n", caller_num="13812340000", dialed="12318")
        emu.answered_call("expert-12320", "Local/agent1@queue-agents/n", caller_num="13812340001", dialed="12320")
        late = emu.new_call("13812340002", "12345", caller_name="[12345] x")
        emu.caller_joins_queue(late.name, "general-12345")
        emu.caller_abandons(late.name)
        async with async_playwright() as pw:
            async with browser_page(pw, tmp_path / "profile", viewport={"width": 1440, "height": 900}, locale="zh-CN",
                                    timeout_ms=10_000) as page:  # a zh-CN browser gets Chinese
                problems = collect_problems(page)
                await page.goto(base + "/")
                assert page.url.endswith("/login")
                await sign_in(page)
                try:
                    await page.wait_for_selector('.tile[data-queue="general-12345"] .caller.over')
                except Exception:
                    ARTIFACTS.mkdir(exist_ok=True)
                    await page.screenshot(path=str(ARTIFACTS / "supervisor-failed.png"), full_page=True)
                    raise AssertionError(f"the view did not render; browser said: {problems}") from None

                # a caller joins expert-12320: on screen within a second of the AMI event
                caller = emu.new_call(FULL, "12320", caller_name="[12320] Zhang San")
                emu.caller_joins_queue(caller.name, "expert-12320")
                row = await page.wait_for_selector('.tile[data-queue="expert-12320"] .caller', timeout=1000)
                assert "138****5678" in await row.inner_text()
                assert "12320" in await row.inner_text()

                # pause Wang Fang with a reason; the row turns paused when Asterisk says so
                member = '.tile[data-queue="general-12345"] .member[data-interface="PJSIP/7001"]'
                await page.click(f"{member} button.pause")
                await page.select_option("#dialog select[name=reason_choice]", "午餐")
                await page.click("#dialog-ok")
                paused = await page.wait_for_selector(f'{member}[data-state="paused"]', timeout=5000)
                assert "午餐" in await paused.inner_text()
                assert any(a.get("Action") == "QueuePause" and a.get("Reason") == "午餐" for a in emu.received)
                toast = await page.wait_for_selector("#toast.show")
                assert await toast.inner_text() == "已暂停 Wang Fang（12345 综合受理）。"  # our words, the table's name
                assert view.hub.audit.tail(1)[0]["action"] == "pause"

                # the queues move on for a few seconds, so the charts have something to show
                for number in ("13512345670", "13512345671"):
                    await page.wait_for_timeout(1000)
                    more = emu.new_call(number, "12320", caller_name="[12320] caller")
                    emu.caller_joins_queue(more.name, "expert-12320")
                await page.wait_for_timeout(1000)
                agent = emu.ring_agent(caller.name, "Local/agent1@queue-agents/n")
                emu.agent_answers(caller.name, agent.name)
                await page.wait_for_timeout(1000)
                await page.select_option("#range", "1")  # reloads the history at once
                await page.wait_for_selector("#charts svg .sl-line", state="attached", timeout=5000)
                await page.wait_for_timeout(300)  # let the last frame settle for the picture
                assert FULL not in await page.content()
                assert problems == []
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "supervisor.png"), full_page=True)
                await page.screenshot(path="/tmp/supervisor-zh.png", full_page=True)
    finally:
        await view.stop()
        await emu.stop()


async def test_english_wallboard_folds_counts_the_ivr_and_shows_the_link_down(tmp_path):
    """An en browser: English page, the table's names, queues in the table's order, a busy tile folded with a
    count, callers in the IVR counted; then the AMI link drops: a banner names the server and since when,
    the tiles grey out and the wait clocks stop."""
    _need_chromium()
    from playwright.async_api import async_playwright, expect

    emu = make_emulator()
    emu.add_queue("minors-protection")
    emu.add_queue("abuse-review")
    for n in range(9):  # a busy general queue
        caller = emu.new_call(f"1390000{n:04d}", "12345", caller_name="[12345] caller")
        emu.caller_joins_queue(caller.name, "general-12345")
    await emu.start()
    from datetime import datetime, timezone

    from scripts.settings import Settings
    from tests.test_supervisor_view import seed_backlog
    db_url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    seed_backlog(db_url, tmp_path / "spool", datetime.now(timezone.utc))  # 3 callbacks, 1 overdue work order
    view = await start_view(emu, tmp_path, settings=Settings(db_url=db_url))
    base = f"http://127.0.0.1:{view.port}"
    try:
        async with async_playwright() as pw:
            async with browser_page(pw, tmp_path / "profile", viewport={"width": 1440, "height": 900}, locale="en-US",
                                    timeout_ms=10_000) as page:
                problems = collect_problems(page, console=False)
                await page.goto(base + "/login")
                assert await page.get_attribute("html", "lang") == "en"
                await sign_in(page)
                await page.wait_for_selector('.tile[data-queue="general-12345"] .caller')
                assert await page.get_attribute("html", "lang") == "en"
                order = await page.eval_on_selector_all(".tile", "ts => ts.map(t => t.dataset.queue)")
                assert order == ["general-12345", "expert-12320", "minors-protection", "abuse-review"]
                general = '.tile[data-queue="general-12345"]'
                assert "12345 综合受理 (general, 24/7)" in await page.inner_text(f"{general} h2")
                assert len(await page.query_selector_all(f"{general} .caller")) == 6
                # the records' backlog: totals and, on the tile, where the callbacks wait
                assert await page.inner_text('[data-kpi="callbacks"] b') == "3"
                assert await page.inner_text('[data-kpi="workorders"] b') == "1"
                assert await page.inner_text(f"{general} .tile-callbacks") == "2 callbacks pending"
                fold = await page.inner_text(f"{general} .fold")
                assert fold.startswith("+3 more callers")
                await page.click(f"{general} .fold")
                await expect(page.locator(f"{general} .caller")).to_have_count(9)
                await page.click(f"{general} .fold")  # fold again for the picture

                # two calls arrive from the carrier (and go to the engine's IVR); one then joins a queue
                ivr_calls = [emu.new_call(f"1350000000{n}", "12320", context="hotline-from-carrier")
                             for n in range(2)]
                await expect(page.locator('[data-kpi="in-ivr"] b')).to_have_text("2", timeout=3000)
                emu.caller_joins_queue(ivr_calls[0].name, "expert-12320")
                await expect(page.locator('[data-kpi="in-ivr"] b')).to_have_text("1", timeout=3000)
                assert "waiting callers" in (await page.inner_text(general)).lower()
                await page.screenshot(path="/tmp/supervisor-en.png", full_page=True)

                # the AMI link drops (Asterisk gone): banner, grey tiles, clocks stopped
                await emu.stop()
                banner = await page.wait_for_selector('#banner-links .banner-down[data-server="haikou"]',
                                                      timeout=8000)
                text = await banner.inner_text()
                assert "haikou" in text and "has been down since" in text and "Asia/Shanghai" in text
                assert re.search(r"since 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d \(Asia/Shanghai\)", text), text
                assert "frozen" in text
                assert await page.get_attribute(general, "class") == "tile stale"
                first_wait = f"{general} .caller .wait"
                before = await page.inner_text(first_wait)
                await page.wait_for_timeout(2500)
                assert await page.inner_text(first_wait) == before  # not counting any more
                assert await page.query_selector(f"{general} button.pause") is None  # nothing to act on
                await page.screenshot(path="/tmp/supervisor-en-link-down.png", full_page=True)
                assert problems == []
    finally:
        await view.stop()
        await emu.stop()


async def test_first_run_hint_in_a_real_browser(tmp_path):
    """No AMI configured (the engine alone): the page says what to set instead of an empty wallboard."""
    _need_chromium()
    from playwright.async_api import async_playwright

    from scripts.settings import Settings
    from supervisor.service import build_service

    env = {"HOTLINE_WEB_SUPERVISOR_PASSWORD": PASSWORDS["supervisor"], "HOTLINE_WEB_ADMIN_PASSWORD": "x" * 12,
           "HOTLINE_SUPERVISOR_AUDIT": str(tmp_path / "audit.jsonl")}
    service = build_service(Settings(), host="127.0.0.1", port=0, environ=env, clients={})
    await service.start()
    try:
        async with async_playwright() as pw:
            async with browser_page(pw, tmp_path / "profile", viewport={"width": 1280, "height": 700}, locale="zh-CN",
                                    timeout_ms=10_000) as page:
                await page.goto(f"http://127.0.0.1:{service.port}/login")
                await sign_in(page)
                hint = await page.wait_for_selector("#firstrun")
                text = await hint.inner_text()
                assert "尚未配置 Asterisk" in text and "HOTLINE_AMI_SECRET" in text
                await page.screenshot(path="/tmp/supervisor-zh-first-run.png")
                await page.click('form.lang button[value="en"]')  # the user's choice, kept by the browser
                hint = await page.wait_for_selector("#firstrun")
                assert "No Asterisk (AMI) configured" in await hint.inner_text()
                assert await page.get_attribute("html", "lang") == "en"
                await page.reload()
                assert await page.get_attribute("html", "lang") == "en"
    finally:
        await service.stop()
