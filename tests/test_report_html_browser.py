"""The HTML report in a real headless Chromium (Debian's), offline: it loads nothing from anywhere, draws its
three charts and tables in zh and en; screenshots go to artifacts/report-{zh,en}.png."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest

from records.figures import leg
from records.period_report import build
from records.periods import period
from records.report_output import format_html
from records.types import CallRecord
from supervisor import i18n
from supervisor.state import HOTLINE_TZ
from tests.test_supervisor_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _need_chromium

pytestmark = pytest.mark.browser
DAY = date(2021, 9, 17)
LINES = {"12345": "海南12345政务服务便民热线", "12320": "卫生健康热线", "12349": "未成年人保护热线"}
QUEUES = {"general-12345": "12345 综合受理", "expert-12320": "12320 专家坐席", "minors-protection": "未成年人保护"}


def a_day() -> list[CallRecord]:
    """A believable day: busy mornings and afternoons, some abandons, a few overflows."""
    rng = random.Random(12345)
    out = []
    for i in range(600):
        hour = rng.choices(range(24), weights=[1] * 7 + [6, 9, 10, 9, 6, 4, 7, 9, 9, 8, 6, 3, 2, 2, 1, 1, 1])[0]
        at = datetime(2021, 9, 17, hour, rng.randrange(60), tzinfo=HOTLINE_TZ)
        line = rng.choices(list(LINES), weights=[8, 3, 1])[0]
        queue = {"12345": "general-12345", "12320": "expert-12320", "12349": "minors-protection"}[line]
        wait = rng.expovariate(1 / (12 if 9 <= hour <= 11 else 6))
        outcome = rng.choices(["answered", "abandoned"], weights=[9, 1])[0]
        legs = [leg(queue, at, at + timedelta(seconds=wait), wait, outcome)]
        if line == "12349" and rng.random() < 0.5:
            legs.insert(0, leg("minors-protection", at, at, 0, "overflowed"))
            legs[1]["queue"] = "general-12345"
        out.append(CallRecord(uniqueid=f"c{i}", dialed=line, line=line, caller=None, arrived_at=at, action="queue",
                              target=queue, outcome=outcome, wait_seconds=wait, queue_legs=tuple(legs)))
    return out


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_html_report_renders_offline_in_chromium(tmp_path, lang):
    _need_chromium()
    from playwright.async_api import async_playwright

    report = build(period("daily", DAY, HOTLINE_TZ), a_day(), as_of=datetime(2021, 9, 18, tzinfo=timezone.utc),
                   service_level=15, line_names=LINES, queue_names=QUEUES)
    page_file = tmp_path / f"report-{lang}.html"
    page_file.write_text(format_html(report, lambda key, **kw: i18n.text(key, lang, **kw), lang,
                                     datetime(2021, 9, 18, 1, 0, tzinfo=timezone.utc)), encoding="utf-8")
    fetched: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 900})

            async def refuse(route):
                if not route.request.url.startswith("file://"):
                    fetched.append(route.request.url)
                    await route.abort()
                else:
                    await route.continue_()
            await page.route("**/*", refuse)
            await page.goto(page_file.as_uri())
            assert await page.locator("svg").count() == 3
            bars = await page.locator("svg rect").count()
            assert bars > 40                                   # stacked bars per hour and per line
            assert await page.locator("svg circle").count() >= 15   # service level per busy hour
            heading = await page.locator("h1").inner_text()
            assert heading == ("12345 热线日报 2021-09-17" if lang == "zh" else "12345 hotline daily report 2021-09-17")
            total = page.locator("tr.total").first
            assert (await total.locator("td").nth(1).inner_text()) == "600"
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"report-{lang}.png"), full_page=True)
        finally:
            await browser.close()
    assert fetched == []
