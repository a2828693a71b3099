"""The override switches in the web view: every role sees the active ones (banner texts zh/en with who, when,
why), only admins flip them (CSRF like every action), each flip audited (switch_events + the actions trail)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from records.switches import SwitchStore
from tests.test_supervisor_web import emulator, http, login, start_view  # noqa: F401 (fixture)


@pytest.fixture
async def view(emulator, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HOTLINE_DB_URL", f"sqlite:///{tmp_path / 'records.sqlite3'}")
    service = await start_view(emulator, tmp_path)
    yield service
    await service.stop()


async def test_admin_flips_with_csrf_and_everyone_sees_the_banner(view, tmp_path):
    async with http(view) as admin, http(view) as supervisor:
        token = await login(admin, "admin")
        listed = (await admin.get("/api/switches?lang=en")).json()
        assert listed["may_flip"] is True and listed["timezone"] == "Asia/Shanghai"
        assert {s["name"]: s["on"] for s in listed["switches"]} == {"typhoon": False, "subcenter-12366-down": False,
                                                                    "force-night": False}
        no_csrf = await admin.post("/api/switches/typhoon/on", data={"why": "typhoon"})
        assert no_csrf.status_code == 403
        no_why = await admin.post("/api/switches/typhoon/on", data={"why": " "}, headers={"X-CSRF-Token": token})
        assert no_why.status_code == 400 and "say why" in no_why.json()["message"]
        done = await admin.post("/api/switches/typhoon/on?lang=zh", data={"why": "台风“摩羯”", "until": "6"},
                                headers={"X-CSRF-Token": token})
        assert done.status_code == 200 and done.json()["message"] == "已打开：台风停工公告"

        await login(supervisor, "supervisor")
        seen = (await supervisor.get("/api/switches", headers={"Accept-Language": "zh-CN,zh;q=0.9"})).json()
        assert seen["may_flip"] is False
        (typhoon,) = [s for s in seen["switches"] if s["on"]]
        assert typhoon["banner"].startswith("开关已打开：台风停工公告（admin 于 ")
        assert "原因：台风“摩羯”；至 " in typhoon["banner"] and typhoon["by"] == "admin" and typhoon["via"] == "web"
        english = (await supervisor.get("/api/switches?lang=en")).json()
        assert [s["banner"] for s in english["switches"] if s["on"]][0].startswith(
            "Switch on: Typhoon closure announcement (by admin at ")

        audit = (await admin.get("/api/audit")).json()["entries"]
        assert audit[0]["action"] == "switch_on" and audit[0]["user"] == "admin"
        assert audit[0]["params"]["why"] == "台风“摩羯”"
    (event,) = SwitchStore.for_url(f"sqlite:///{tmp_path / 'records.sqlite3'}").events()
    assert (event["name"], event["active"], event["by"], event["via"]) == ("typhoon", True, "admin", "web")
    assert event["until"] is not None


async def test_a_supervisor_cannot_flip_even_with_a_valid_csrf_token(view, tmp_path):
    async with http(view) as supervisor, http(view) as anonymous:
        token = await login(supervisor, "supervisor")
        refused = await supervisor.post("/api/switches/force-night/on?lang=en", data={"why": "x"},
                                        headers={"X-CSRF-Token": token})
        assert refused.status_code == 403 and refused.json()["message"] == "Only admins may flip a switch."
        assert (await anonymous.get("/api/switches")).status_code == 401
        assert (await anonymous.post("/api/switches/force-night/on", data={"why": "x"})).status_code == 401
    assert SwitchStore.for_url(f"sqlite:///{tmp_path / 'records.sqlite3'}").snapshot().revision == 0


async def test_unknown_switch_and_expiry_in_the_past_are_refused(view):
    async with http(view) as admin:
        token = await login(admin, "admin")
        unknown = await admin.post("/api/switches/typoon/on", data={"why": "x"}, headers={"X-CSRF-Token": token})
        assert unknown.status_code == 400 and "no switch 'typoon'" in unknown.json()["message"]
        past = await admin.post("/api/switches/typhoon/on", data={"why": "x", "until": "2020-01-01T00:00"},
                                headers={"X-CSRF-Token": token})
        assert past.status_code == 400 and "not in the future" in past.json()["message"]
        bad_word = await admin.post("/api/switches/typhoon/maybe", data={"why": "x"}, headers={"X-CSRF-Token": token})
        assert bad_word.status_code == 404
