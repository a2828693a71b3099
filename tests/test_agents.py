"""The agents file (routing/agents.py), its login/logout codes (dialplan/agents.py) and `hotline agents`."""
from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialplan.agents import FILENAME
from dialplan.common import RenderError
from dialplan.options import RenderOptions
from dialplan.render import diff_files, file_mode, missing_secrets, render, required_secrets, write_files
from routing.agents import AgentsError, load_agents
from routing.loader import load_table
from scripts.hotline import cli

ROOT = Path(__file__).resolve().parents[1]
TABLE = load_table(ROOT / "conf" / "routing.yaml")


def roster(text: str):
    return load_agents("agents.yaml", TABLE, text=textwrap.dedent(text))


def problems(text: str) -> list[str]:
    with pytest.raises(AgentsError) as exc:
        roster(text)
    return [str(p) for p in exc.value.problems]


GOOD = """\
version: 1
agents:
  1001:
    name: desk 1
    interface: PJSIP/agent-1001
    pin_env: PIN_1001
    queues: {general-12345: 0, expert-12320: 4}
"""


def test_the_shipped_example_is_valid_against_the_shipped_table():
    shipped = load_agents(ROOT / "conf" / "agents.yaml", TABLE)
    assert shipped.agents and all(q in TABLE.queues for a in shipped.agents for q, _ in a.queues)


def test_an_agent_with_its_queues_and_penalties():
    agent, = roster(GOOD).agents
    assert (agent.number, agent.interface, agent.pin_env) == ("1001", "PJSIP/agent-1001", "PIN_1001")
    assert agent.queues == (("expert-12320", 4), ("general-12345", 0))


def test_a_queue_the_table_does_not_have_is_reported_at_its_line():
    found = problems(GOOD.replace("expert-12320", "expert-99999"))
    assert found[0].startswith("agents.yaml:7:32: agent 1001: queue 'expert-99999' is not a queue of the routing "
                               "table routing.yaml")


def test_a_misspelt_queue_gets_the_near_misses():
    found = problems(GOOD.replace("general-12345", "genral-12345"))
    assert found == ["agents.yaml:7:14: agent 1001: queue 'genral-12345' is not a queue of the routing table "
                     "routing.yaml (did you mean 'general-12345'?)"]


SKILLED = GOOD + """\
    skills: [health]
  1002:
    name: desk 2
    interface: PJSIP/agent-1002
    pin_env: PIN_1002
    queues: {general-12345: 1}
"""


def test_a_skill_that_is_no_line_tag_is_reported_at_its_line_with_the_near_misses():
    found = problems(SKILLED.replace("[health]", "[tourism, helth]"))
    assert found == ["agents.yaml:8:23: agent 1001: skill 'helth' is not a tag of a queued line of routing.yaml "
                     "(did you mean 'health'?)"]
    assert problems(SKILLED.replace("[health]", "[emergency]"))[0].endswith(
        "skill 'emergency' is not a tag of a queued line of routing.yaml")      # 110/119/120/122 are never queued


def test_the_skilled_agent_ranks_first_for_its_tag_and_with_the_penalty_0_agents_otherwise():
    r = roster(SKILLED)
    skilled, plain = r.agents
    assert skilled.skills == ("health",) and r.skill_bands == (("health",),) and r.generalist_floor == 1
    assert r.member_penalty(skilled, "general-12345") == 0
    assert r.member_penalty(skilled, "expert-12320") == 5         # only helps out there: floor 1 + 4, skills or not
    assert r.queue_skills("expert-12320") == []
    assert r.member_penalty(plain, "general-12345") == 2          # floor 1 + its penalty 1
    assert r.skill_window("health") == (0, 0) and r.skill_window("tax") is None
    assert r.queue_skills("general-12345") == ["health"] and r.skill_first_seconds == 20


def test_skill_sets_get_bands_in_which_each_tag_is_one_range():
    text = SKILLED.replace("[health]", "[health, housing-fund]") + """\
    skills: [housing-fund]
  1003:
    name: desk 3
    interface: PJSIP/agent-1003
    pin_env: PIN_1003
    queues: {general-12345: 0}
    skills: [tax]
"""
    r = roster(text)
    assert r.skill_bands == (("health", "housing-fund"), ("housing-fund",), ("tax",))
    assert r.skill_window("health") == (0, 0) and r.skill_window("housing-fund") == (0, 1)
    assert r.skill_window("tax") == (2, 2) and r.generalist_floor == 3


def test_skill_sets_no_penalty_range_can_express_are_refused():
    sets = [["health", "tax"], ["tax", "legal"], ["legal", "health"]]     # a cycle: no order keeps each together
    text = "version: 1\nagents:\n" + "".join(
        f"  {1001 + i}: {{name: d{i}, interface: PJSIP/a{i}, pin_env: P{i}, queues: {{general-12345: 0}}, "
        f"skills: [{', '.join(s)}]}}\n" for i, s in enumerate(sets))
    found = problems(text)
    assert len(found) == 1 and "cannot be ranked as app_queue penalty ranges" in found[0]
    assert found[0].startswith("agents.yaml:3:")


def test_a_pin_in_yaml_is_refused():
    found = problems(GOOD.replace("    pin_env: PIN_1001\n", "    pin_env: PIN_1001\n    pin: 1234\n"))
    assert len(found) == 1 and found[0].startswith("agents.yaml:4:5:") and "'pin' does not belong in YAML" in found[0]


def test_one_phone_is_one_agent_and_every_problem_is_reported_at_once():
    text = GOOD + GOOD.split("agents:\n", 1)[1].replace("1001:", "1002:").replace("PIN_1001", "PIN_1002")
    assert problems(text) == ["agents.yaml:10:16: agent 1002: interface PJSIP/agent-1001 is also agent 1001's "
                              "(one phone, one agent)"]
    bad = problems(GOOD.replace("name: desk 1", "name: 'desk, 1'").replace("agent-1001", "agent 1001")
                   .replace("1001:", "1:"))
    assert len(bad) == 3 and all(p.startswith("agents.yaml:") for p in bad), bad


def options(**secrets) -> RenderOptions:
    return RenderOptions(agents=roster(GOOD), secrets=secrets)


def test_login_code_adds_the_agent_to_each_queue_and_the_file_is_0600():
    text = render(TABLE, options(PIN_1001="4321"))[FILENAME]
    assert "exten => *911001,1," in text and "exten => *921001,1," in text
    assert " same => n,AddQueueMember(expert-12320,PJSIP/agent-1001,4,,desk 1)" in text
    assert " same => n,RemoveQueueMember(general-12345,PJSIP/agent-1001)" in text
    assert '"4321"' in text and file_mode(FILENAME) == 0o600
    assert "#include extensions_hotline_agents.conf" in render(TABLE, options())["extensions_hotline.conf"]


def test_pins_are_secrets_a_missing_one_refuses_and_a_diff_masks_them(tmp_path):
    assert "PIN_1001" in required_secrets(TABLE, options()) and "PIN_1001" in missing_secrets(TABLE, options())
    refused = render(TABLE, options())[FILENAME]
    assert "AddQueueMember" not in refused and "PIN_1001 was not set" in refused
    write_files(render(TABLE, options(PIN_1001="4321")), tmp_path)
    assert (tmp_path / FILENAME).stat().st_mode & 0o777 == 0o600
    diff = diff_files(render(TABLE, options(PIN_1001="8765")), tmp_path)
    assert "4321" not in diff and "8765" not in diff and "a secret value changed" in diff


def test_a_pin_that_is_not_digits_is_refused_naming_the_variable_only():
    with pytest.raises(RenderError, match="PIN_1001") as exc:
        render(TABLE, options(PIN_1001="12ab"))
    assert "12ab" not in str(exc.value)


def test_cli_check_list_and_render(tmp_path):
    (tmp_path / "agents.yaml").write_text(GOOD)
    runner = CliRunner()
    ok = runner.invoke(cli, ["agents", "check", "--agents", str(tmp_path / "agents.yaml")])
    assert ok.exit_code == 0 and "1 agents in 2 queues" in ok.output
    listed = runner.invoke(cli, ["agents", "list", "--agents", str(tmp_path / "agents.yaml")], env={"PIN_1001": "1"})
    assert listed.exit_code == 0 and "PIN PIN_1001: set" in listed.output and "*911001" in listed.output
    (tmp_path / "bad.yaml").write_text(GOOD.replace("general-12345", "nowhere"))
    bad = runner.invoke(cli, ["agents", "check", "--agents", str(tmp_path / "bad.yaml")])
    assert bad.exit_code == 2 and "bad.yaml:7:14: agent 1001: queue 'nowhere'" in bad.output
    out = tmp_path / "out"
    done = runner.invoke(cli, ["dialplan", "render", "--out", str(out), "--no-dns", "--agents",
                               str(tmp_path / "agents.yaml")], env={"PIN_1001": "4321"})
    assert done.exit_code == 0, done.output
    assert "AddQueueMember(general-12345,PJSIP/agent-1001,0,,desk 1)" in (out / FILENAME).read_text()
