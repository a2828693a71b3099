"""Every generated file passes asterisklint 0.4.3, included from the shipped conf/asterisk/ examples.

What asterisklint checks (read from its source): `dialplan-check` parses extensions.conf with its includes and
checks applications and functions exist, argument syntax, expressions, labels, and that every static
Goto/GotoIf target context/extension/priority exists. It has no checker for pjsip/queues/manager/features;
for those its generic config parser (FileConfigParser) applies: line syntax, sections, #include targets,
UTF-8, control characters, whitespace and blank-line layout. Both run in a subprocess because asterisklint
keeps its messages in process-wide state. Nothing is ignored: no ALINT_IGNORE, zero messages expected.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dialplan.options import RenderOptions
from dialplan.render import render, write_files
from routing.agents import load_agents
from routing.loader import load_table

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "conf" / "asterisk"
ASTERISKLINT = Path(sys.executable).parent / "asterisklint"

GENERIC_CHECK = """
import sys
from asterisklint import FileConfigParser
from asterisklint.defines import MessageDefManager
parser = FileConfigParser()
parser.include(sys.argv[1])
sections = [s.name for s in parser]
raised = sum(len(v) for v in MessageDefManager.raised.values())
print(len(sections), raised)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ALINT_IGNORE"}
    return env


def _stage(tmp_path: Path, options: RenderOptions) -> Path:
    table = load_table(ROOT / "conf" / "routing.yaml")
    write_files(render(table, options), tmp_path)
    for example in EXAMPLES.glob("*.conf"):
        shutil.copy(example, tmp_path / example.name)
    return tmp_path


OPTION_SETS = {
    "one-engine": RenderOptions(),
    "engine-list-and-secrets": RenderOptions(
        engines=("agi://10.1.0.5:4573", "agi://10.1.0.6:4573", "hagi://engines.hotline.invalid"),
        secrets={"TRUNK_SEAT_12348_SECRET": "pa;ss", "TRUNK_SEAT_12333_SECRET": "x", "HOTLINE_AMI_SECRET": "y"}),
    "agents": RenderOptions(agents=load_agents(ROOT / "conf" / "agents.yaml", load_table(ROOT / "conf" / "routing.yaml")),
                            secrets={"HOTLINE_AGENT_1001_PIN": "1234"}),   # 1002 without a PIN: the refusing variant
}


@pytest.mark.parametrize("variant", sorted(OPTION_SETS))
def test_dialplan_check_is_clean(tmp_path: Path, variant: str) -> None:
    assert ASTERISKLINT.exists(), "asterisklint (test extra) must be installed in the venv"
    staged = _stage(tmp_path, OPTION_SETS[variant])
    done = subprocess.run([str(ASTERISKLINT), "dialplan-check", "extensions.conf"], cwd=staged, env=_env(),
                          capture_output=True, text=True, timeout=60)
    # asterisklint 0.4.3 models no ReadExten (app_readexten, in Asterisk since 1.6): the one message let through,
    # by its exact text, in the two files that read a PIN with it (dialplan.pin); the real Asterisk runs it in
    # tests/asterisk/test_agents.py and test_switches.py
    unknown_readexten = re.compile(r"^extensions_hotline_(?:agents|switches)\.conf:\d+ E_APP_MISSING: app 'ReadExten' does "
                                   r"not exist, dialplan will halt here!\n", re.MULTILINE)
    rest = unknown_readexten.sub("", done.stderr)
    assert rest == "" and (done.returncode == 0 or rest != done.stderr), done.stderr


def test_dialplan_check_would_catch_a_broken_goto(tmp_path: Path) -> None:
    """The lint is not vacuous: a Goto to a missing context is reported."""
    staged = _stage(tmp_path, RenderOptions())
    path = staged / "extensions_hotline.conf"
    path.write_text(path.read_text().replace("Goto(hotline-queue-general-12345,s,1)",
                                             "Goto(hotline-queue-nowhere,s,1)", 1))
    done = subprocess.run([str(ASTERISKLINT), "dialplan-check", "extensions.conf"], cwd=staged, env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "E_DP_GOTO_NOCONTEXT" in done.stderr


def test_dialplan_check_follows_the_agents_include(tmp_path: Path) -> None:
    """extensions_hotline_agents.conf is linted too (included from extensions_hotline.conf)."""
    staged = _stage(tmp_path, OPTION_SETS["agents"])
    path = staged / "extensions_hotline_agents.conf"
    path.write_text(path.read_text().replace("Goto(hotline-agents,refused,1)", "Goto(hotline-nowhere,refused,1)", 1))
    done = subprocess.run([str(ASTERISKLINT), "dialplan-check", "extensions.conf"], cwd=staged, env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "E_DP_GOTO_NOCONTEXT" in done.stderr


@pytest.mark.parametrize("name", ["pjsip", "queues", "manager", "features"])
@pytest.mark.parametrize("variant", sorted(OPTION_SETS))
def test_other_files_pass_the_generic_config_check(tmp_path: Path, name: str, variant: str) -> None:
    staged = _stage(tmp_path, OPTION_SETS[variant])
    done = subprocess.run([sys.executable, "-c", GENERIC_CHECK, f"{name}.conf"], cwd=staged, env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    sections, raised = map(int, done.stdout.split())
    assert raised == 0
    own = (EXAMPLES / f"{name}.conf").read_text().count("\n[")
    generated = (staged / f"{name}_hotline.conf").read_text().count("\n[")
    assert sections == own + generated >= 1   # the include was followed and every section parsed
