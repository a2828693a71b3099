"""`hotline traffic synthesize|forecast|replay` end to end on a SQLite file (issue 13)."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from scripts.cli_traffic import traffic
from scripts.hotline import cli

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("traffic")
    url = f"sqlite:///{path / 'records.sqlite3'}"
    env = {"HOTLINE_DB_URL": url, "HOTLINE_ROUTING_TABLE": str(CONF / "routing.yaml"),
           "HOTLINE_IVR_MENUS": str(CONF / "ivr.yaml"), "HOTLINE_CALLER_HASH_KEY": "k" * 32}
    r = CliRunner().invoke(cli, ["traffic", "synthesize", "--days", "7", "--start", "2026-11-23", "--seed", "3"],
                           env=env)
    assert r.exit_code == 0, r.output
    assert re.search(r"wrote \d{5} synthetic calls, 2026-11-23 to 2026-11-29 \(Asia/Shanghai\), seed 3", r.output)
    return env, path


def run(db, *args):
    env, _ = db
    return CliRunner().invoke(cli, ["traffic", *args], env=env)


def test_forecast_tables_in_chinese_and_english(db):
    zh = run(db, "forecast")
    assert zh.exit_code == 0, zh.output
    assert "时段 2026-11-23 00:00 至 2026-11-30 00:00（Asia/Shanghai）" in zh.output
    assert "所需坐席（星期 × 小时）：12345 综合受理 (general, 24/7)" in zh.output
    en = run(db, "forecast", "--lang", "en", "--target", "90/20")
    assert "Service-level target: 90% of calls answered within 20 s" in en.output
    assert "Peak agents needed" in en.output


def test_forecast_csv_json_and_a_self_contained_html(db):
    rows = list(csv.DictReader(io.StringIO(run(db, "forecast", "--csv", "-").output)))
    # the synthetic callers press keys in the menus: the sub-platforms and special seats get calls too
    assert {r["queue"] for r in rows} >= {"general-12345", "expert-12320", "city-haikou", "city-sanya",
                                          "business-environment", "minors-protection"}
    peak = max(rows, key=lambda r: int(r["agents"]))
    assert peak["queue"] == "general-12345" and 8 <= int(peak["hour"]) <= 17
    data = json.loads(run(db, "forecast", "--json", "-").output)
    assert data["period_utc"]["start"] == "2026-11-22T16:00:00+00:00" and len(data["cells"]) == len(rows)
    _, path = db
    out = path / "forecast.html"
    assert run(db, "forecast", "--html", str(out), "--simulate").exit_code == 0
    page = out.read_text(encoding="utf-8")
    assert "<svg" in page and 'class="heat"' in page and "仿真服务水平" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)      # nothing fetched from elsewhere


def test_forecast_with_a_roster_csv_and_yaml(db):
    _, path = db
    roster = path / "roster.csv"
    roster.write_text("queue,weekday,hour,agents\ngeneral-12345,*,0-23,20\nexpert-12320,1-5,8-17,2\n",
                      encoding="utf-8")
    r = run(db, "forecast", "--roster", str(roster), "--lang", "en")
    assert r.exit_code == 0, r.output
    assert "Rostered service level" in r.output and "Simulated abandonment" in r.output
    shipped = run(db, "forecast", "--roster", str(CONF / "roster.example.csv"), "--json", "-")
    assert shipped.exit_code == 0, shipped.output
    cells = json.loads(shipped.output)["cells"]
    assert any(c["rostered"] == 26 and c["queue"] == "general-12345" for c in cells)
    bad = path / "roster.yaml"
    bad.write_text("- {queue: general-12345, weekday: '*', hour: 9, agents: 5}\n"
                   "- {queue: nowhere, weekday: 1, hour: 9, agents: 5}\n"
                   "- {queue: expert-12320, weekday: 8, hour: 9, agents: 5}\n", encoding="utf-8")
    r = run(db, "forecast", "--roster", str(bad))
    assert r.exit_code == 1
    assert f"{bad}:2: queue 'nowhere' is not in the routing table" in r.output
    assert f"{bad}:3: weekday '8': must lie within 1..7" in r.output


def test_replay_under_the_same_table_moves_nothing_and_a_new_one_moves(db):
    same = run(db, "replay", "--table", str(CONF / "routing.yaml"), "--lang", "en")
    assert same.exit_code == 0, same.output
    assert "0 calls move" in same.output and re.search(r"\d{5} calls replayed", same.output)
    _, path = db
    text = (CONF / "routing.yaml").read_text(encoding="utf-8")
    candidate = path / "candidate.yaml"
    candidate.write_text(text.replace("queue: expert-12329\n", "queue: general-12345\n", 1), encoding="utf-8")
    moved = run(db, "replay", "--table", str(candidate), "--json", "-")
    data = json.loads(moved.output)
    assert data["moved"] > 0
    assert {(m["from"], m["to"]) for m in data["moves"]} == {("expert-12329", "general-12345")}
    html_out = path / "replay.html"
    assert run(db, "replay", "--table", str(candidate), "--html", str(html_out)).exit_code == 0
    assert "去向变化" in html_out.read_text(encoding="utf-8")


def test_a_broken_candidate_is_refused_with_file_and_line(db):
    _, path = db
    broken = path / "broken.yaml"
    broken.write_text((CONF / "routing.yaml").read_text(encoding="utf-8").replace(
        "general_queue: general-12345", "general_queue: nowhere-12345"), encoding="utf-8")
    r = run(db, "replay", "--table", str(broken))
    assert r.exit_code == 1 and "the candidate table does not load" in r.output and f"{broken}:" in r.output


def test_an_empty_database_says_what_to_do(tmp_path):
    r = CliRunner().invoke(cli, ["traffic", "forecast"], env={"HOTLINE_DB_URL": f"sqlite:///{tmp_path}/e.db",
                                                             "HOTLINE_ROUTING_TABLE": str(CONF / "routing.yaml")})
    assert r.exit_code == 1 and "hotline traffic synthesize --days 7" in r.output


def test_every_traffic_command_has_examples():
    commands = [traffic, *traffic.commands.values()]
    for command in commands:
        epilog = command.epilog or ""
        assert epilog.startswith("\b\nExamples:") and "\n  hotline " in epilog, command.name
        with click.Context(command) as ctx:
            assert "    hotline traffic" in command.get_help(ctx)         # click kept the lines (\b)
