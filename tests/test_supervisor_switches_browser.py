"""The override switches in a real headless Chromium: an admin switches typhoon on from the panel (reason,
expiry), the banner appears for the admin and for a supervisor (who gets no panel), in zh and in en;
screenshots in /tmp/switches-*.png."""
from __future__ import annotations

import pytest

from tests.test_supervisor_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium, collect_problems, sign_in
from tests.test_supervisor_web import make_emulator, start_view

pytestmark = pytest.mark.browser


async def _login(context, base: str, user: str):
    page = await context.new_page()
    page.set_default_timeout(10_000)
    problems = collect_problems(page)
    await page.goto(base + "/login")
    await sign_in(page, user)
    await page.wait_for_url(base + "/")
    return page, problems


async def _in(page, lang: str) -> None:
    """The page in `lang`, chosen as a user does: the header's language button (the whole page follows)."""
    if await page.evaluate("document.documentElement.lang") != lang:
        await page.click(f'form.lang button[value="{lang}"]')
        await page.wait_for_function(f"document.documentElement.lang === '{lang}'")
    await page.locator("#banner-switches").wait_for(state="attached")


async def test_admin_switches_typhoon_on_and_everyone_sees_the_banner(tmp_path, monkeypatch):
    _need_chromium()
    from playwright.async_api import async_playwright

    monkeypatch.setenv("HOTLINE_DB_URL", f"sqlite:///{tmp_path / 'records.sqlite3'}")
    emu = make_emulator()
    await emu.start()
    view = await start_view(emu, tmp_path)
    base = f"http://127.0.0.1:{view.port}"
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                admin_ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
                admin, admin_problems = await _login(admin_ctx, base, "admin")
                await _in(admin, "zh")
                await admin.click("#banners details.switch-panel summary")
                row = admin.locator('form.switch-row[data-switch="typhoon"]')
                await row.locator("input[name=why]").fill("台风“摩羯”登陆，全省停工")
                await row.locator("input[name=until]").fill("12")
                await row.locator("button[type=submit]").click()
                banner = admin.locator('.switch-banner[data-switch="typhoon"]')
                await banner.wait_for()
                text = await banner.text_content()
                assert text.startswith("开关已打开：台风停工公告（admin 于 ") and "台风“摩羯”登陆，全省停工" in text
                assert "；至 " in text
                await admin.locator('form.switch-row.is-on[data-switch="typhoon"]').wait_for()
                await admin.screenshot(path="/tmp/switches-admin-zh.png")
                await _in(admin, "en")
                await admin.locator('.switch-banner:text-matches("^Switch on: Typhoon closure announcement")').wait_for()
                await admin.locator("#banners details.switch-panel").evaluate("d => d.open = true")
                await admin.screenshot(path="/tmp/switches-admin-en.png")

                super_ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
                supervisor, super_problems = await _login(super_ctx, base, "supervisor")
                await _in(supervisor, "zh")
                await supervisor.locator('.switch-banner[data-switch="typhoon"]').wait_for()
                assert await supervisor.locator("#banners details.switch-panel").count() == 0
                await supervisor.screenshot(path="/tmp/switches-supervisor-zh.png")

                await _in(admin, "zh")
                await admin.locator("#banners details.switch-panel").evaluate("d => d.open = true")
                row = admin.locator('form.switch-row[data-switch="typhoon"]')
                await row.locator("input[name=why]").fill("台风过境")
                await row.locator("button[type=submit]").click()
                await admin.locator('.switch-banner').wait_for(state="detached")
                await _in(supervisor, "en")
                await supervisor.locator('.switch-banner').wait_for(state="detached")
                assert admin_problems == [] and super_problems == []
            finally:
                await browser.close()
    finally:
        await view.stop()
        await emu.stop()
