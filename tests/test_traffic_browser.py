"""The forecast page in Debian's headless Chromium (issue 13): a supervisor opens it from the live view, the
report arrives under the view's Content-Security-Policy without a console error, in Chinese then English;
saves /tmp/forecast-zh.png and /tmp/forecast-en.png."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from records.db import ready_engine
from routing.loader import load_table
from tests.test_supervisor_browser import _need_chromium, browser_page, collect_problems, sign_in
from tests.test_supervisor_web import make_emulator, start_view
from traffic.source import write_calls
from traffic.synth import synthesize

CONF = Path(__file__).resolve().parents[1] / "conf"
pytestmark = pytest.mark.browser


async def test_forecast_page_in_a_real_browser(tmp_path, monkeypatch):
    _need_chromium()
    from playwright.async_api import async_playwright

    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    write_calls(ready_engine(url), synthesize(load_table(CONF / "routing.yaml"), date(2026, 11, 23), 7, seed=1),
                b"k" * 32)
    monkeypatch.setenv("HOTLINE_DB_URL", url)
    monkeypatch.setenv("HOTLINE_ROUTING_TABLE", str(CONF / "routing.yaml"))
    emu = make_emulator()
    await emu.start()
    view = await start_view(emu, tmp_path)
    base = f"http://127.0.0.1:{view.port}"
    try:
        async with async_playwright() as pw:
            async with browser_page(pw, tmp_path / "profile", viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                    timeout_ms=15_000) as page:
                problems = collect_problems(page)
                await page.goto(base + "/login")
                await sign_in(page)
                await page.wait_for_url(base + "/")
                await page.click("a[href='/forecast']")
                await page.wait_for_selector("#forecast table.heat")
                text = await page.inner_text("#forecast")
                assert "所需坐席（星期 × 小时）：12345 综合受理" in text and "服务水平目标" in text
                # the heat map's colours come from the report's stylesheet, not blocked inline styles
                colour = await page.eval_on_selector("#forecast table.heat td.h8",
                                                     "td => getComputedStyle(td).backgroundColor")
                assert colour not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
                await page.screenshot(path="/tmp/forecast-zh.png", full_page=True)
                await page.fill("input[name=from]", "2026-11-23")
                await page.fill("input[name=to]", "2026-11-27")
                await page.click("#other-lang")
                await page.wait_for_selector("#forecast table.heat")
                text = await page.inner_text("#forecast")
                assert "Agents needed (weekday × hour): 12345 综合受理" in text
                assert "Period 2026-11-23 00:00 to 2026-11-28 00:00" in text
                await page.screenshot(path="/tmp/forecast-en.png", full_page=True)
                assert problems == []
    finally:
        await view.stop()
        await emu.stop()
