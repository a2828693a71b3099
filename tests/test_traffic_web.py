"""The forecast page of the supervisors' view (issue 13): admins and supervisors only, zh and en, queue names
from the table, the forecast of the records database named by the settings."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from records.db import ready_engine
from routing.loader import load_table
from supervisor.auth import User, hash_password
from supervisor.hub import SupervisorHub
from supervisor.web import create_app
from traffic.source import write_calls
from traffic.synth import Model, synthesize

CONF = Path(__file__).resolve().parents[1] / "conf"
PASSWORD = "forecast-password-1"


@pytest.fixture(scope="module")
def users():
    hashed = hash_password(PASSWORD)
    return {name: User(name, name, hashed) for name in ("admin", "supervisor", "viewer")}


@pytest.fixture
def app(tmp_path, monkeypatch, users):
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    table = load_table(CONF / "routing.yaml")
    write_calls(ready_engine(url), synthesize(table, date(2026, 11, 23), 2, seed=1,
                                              model=Model(volumes={"12345": 800, "12320": 200})), b"k" * 32)
    monkeypatch.setenv("HOTLINE_DB_URL", url)
    monkeypatch.setenv("HOTLINE_ROUTING_TABLE", str(CONF / "routing.yaml"))
    return create_app(SupervisorHub({}), users)


def logged_in(app, name: str) -> TestClient:
    client = TestClient(app, base_url="http://testserver")
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    r = client.post("/login", data={"csrf_token": token, "username": name, "password": PASSWORD},
                    headers={"origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


@pytest.mark.parametrize("role", ["admin", "supervisor"])
def test_admins_and_supervisors_see_the_forecast_in_chinese_by_default(app, role):
    client = logged_in(app, role)
    page = client.get("/forecast")
    assert page.status_code == 200 and "话务预测" in page.text and "/static/forecast.js" in page.text
    section = client.get("/forecast/section")
    assert section.status_code == 200
    assert "所需坐席（星期 × 小时）：12345 综合受理 (general, 24/7)" in section.text     # the table's names
    assert "12320 卫生健康专家座席" in section.text and "style=" not in section.text    # CSP: no inline style
    data = client.get("/api/forecast?from=2026-11-23&to=2026-11-24").json()
    assert data["timezone"] == "Asia/Shanghai" and data["period_utc"]["start"].startswith("2026-11-22T16:00")
    assert {q["id"] for q in data["queues"]} >= {"general-12345", "expert-12320"}
    assert all(c["agents"] >= 1 for c in data["cells"])


def test_english_by_choice_or_by_the_browser(app):
    client = logged_in(app, "supervisor")
    assert "Agents needed (weekday × hour)" in client.get("/forecast/section?lang=en").text
    en = client.get("/forecast/section", headers={"accept-language": "en-GB,en;q=0.9"})
    assert "Service-level target: 80% of calls answered within 15 s" in en.text
    assert 'lang="en"' in client.get("/forecast", headers={"accept-language": "en"}).text
    assert "90%" in client.get("/forecast/section?lang=en&target=90/20").text


def test_viewers_and_strangers_get_nothing(app):
    viewer = logged_in(app, "viewer")
    assert viewer.get("/forecast").status_code == 403
    assert viewer.get("/forecast/section").status_code == 403
    assert viewer.get("/api/forecast").status_code == 403
    stranger = TestClient(app)
    assert stranger.get("/forecast", follow_redirects=False).status_code == 303
    assert stranger.get("/api/forecast").status_code == 401


def test_a_bad_target_is_a_clear_error(app):
    client = logged_in(app, "admin")
    r = client.get("/forecast/section?lang=en&target=eighty")
    assert r.status_code == 400 and "PERCENT/SECONDS" in r.text
