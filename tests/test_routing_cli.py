"""`hotline routes ...` as an admin runs it."""
from __future__ import annotations

import json

from click.testing import CliRunner

from scripts.hotline import cli


def run(*args: str):
    return CliRunner().invoke(cli, ["--log-format", "json", *args], catch_exceptions=False)


def test_check_shipped_table_exits_zero_with_summary():
    result = run("routes", "check")
    assert result.exit_code == 0
    assert "OK, version" in result.output and "24 lines" in result.output


def test_check_broken_table_exits_one_with_every_error(tmp_path, routing_yaml):
    broken = tmp_path / "routing.yaml"
    text = routing_yaml.read_text(encoding="utf-8")
    text = text.replace("    overflow: {after_seconds: 90, to: general-12345}\n",
                        "    overflow: {after_seconds: 90, to: general-99999}\n", 1)
    text = text.replace("        queue: general-12345\n        menu: main\n",
                        "        queue: general-12345\n        menu: main\n        colour: red\n")
    broken.write_text(text, encoding="utf-8")
    result = run("routes", "check", str(broken))
    assert result.exit_code == 1
    lines = [l for l in result.output.splitlines() if l.startswith(str(broken))]
    assert any("queue 'general-99999' is not defined" in l for l in lines)
    assert any("unknown key 'colour'" in l for l in lines)
    assert "2 error(s); nothing was loaded" in result.output


def test_explain_json_names_rule_and_dates():
    result = run("routes", "explain", "12320", "--at", "2021-09-10T03:00", "--json", "--caller", "13812345678")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["caller"] == "138****5678"
    route = data["route"]
    assert route["target"] == "general-12345" and route["rule_id"] == "12320/expert@2021-09-01"
    assert route["effective"]["from"] == "2021-09-01T00:00:00+08:00"
    assert "expert-12320 is closed" in route["reason"]


def test_explain_text_for_a_cancelled_line_on_a_holiday():
    result = run("routes", "explain", "12396", "--at", "2021-10-03T03:00")
    assert result.exit_code == 0
    assert "prompts:   hotline/number-merged-into-12345" in result.output
    assert "then:      queue general-12345" in result.output
    assert "二(一)1 第一类" in result.output


def test_explain_rejects_a_bad_instant():
    result = CliRunner().invoke(cli, ["routes", "explain", "12345", "--at", "yesterday"])
    assert result.exit_code == 2 and "ISO-8601" in result.output


def test_list_shows_state_and_next_change():
    result = run("routes", "list", "--at", "2021-09-10T10:00", "--json")
    rows = {r["number"]: r for r in json.loads(result.output)["lines"]}
    assert rows["12396"]["state"] == "announce, queue general-12345"
    assert rows["12396"]["next_change"] == "2021-11-01T00:00:00+08:00"
    assert rows["110"]["state"] == "dial emergency-110"
    text = run("routes", "list", "--at", "2021-09-10T10:00").output
    assert "12349" in text and "minors-protection" in text
