"""Generated trunks: the citizen's number towards each far end (caller_id), and placeholder hosts left out so the
shipped table loads without errors. What Asterisk then does with it is proven in tests/asterisk/test_trunks.py."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

from dialplan.options import RenderOptions
from dialplan.render import render
from dialplan.walk import parse, run
from routing.loader import load_table
from routing.model import CallerId
from tests.test_dialplan_render import sections, with_real_hosts

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "conf" / "routing.yaml"
SHIPPED = load_table(TABLE)
REAL = with_real_hosts(SHIPPED)


def pjsip(table=REAL) -> dict[str, dict[str, list[str]]]:
    return sections(render(table, RenderOptions())["pjsip_hotline.conf"])


def test_emergency_trunks_send_the_number_in_from_and_pai_even_when_withheld():
    conf = pjsip()
    for tid in ("emergency-110", "emergency-119", "emergency-120", "emergency-122"):
        endpoint = conf[tid]
        assert "from_user" not in endpoint                 # From carries the caller's number
        assert endpoint["contact_user"] == [tid]           # ... and Contact keeps the trunk's user
        assert endpoint["send_pai"] == ["yes"] and endpoint["trust_id_outbound"] == ["yes"]


def test_retained_seats_keep_their_user_in_from_and_assert_the_caller_in_pai():
    conf = pjsip()
    for tid in ("seat-12348", "seat-12333"):
        assert conf[tid]["from_user"] == ["hotline12345"]  # the registered user: registrars check it
        assert conf[tid]["send_pai"] == ["yes"] and "trust_id_outbound" not in conf[tid]


def test_subcenters_and_a_table_choice_of_rpid_or_trunk_user():
    conf = pjsip()
    assert "from_user" not in conf["subcenter-12360"] and conf["subcenter-12360"]["send_pai"] == ["yes"]
    assert "trust_id_outbound" not in conf["subcenter-12360"]        # a withheld number stays withheld
    changed = dict(REAL.trunks)
    changed["subcenter-12360"] = dataclasses.replace(changed["subcenter-12360"],
                                                     caller_id=CallerId("trunk", "rpid", "send"))
    conf = pjsip(dataclasses.replace(REAL, trunks=MappingProxyType(changed)))
    endpoint = conf["subcenter-12360"]
    assert endpoint["from_user"] == ["subcenter-12360"] and endpoint["send_rpid"] == ["yes"]
    assert "send_pai" not in endpoint and endpoint["trust_id_outbound"] == ["yes"]
    assert "send_pai" not in conf["carrier-in"] and "from_user" not in conf["carrier-in"]   # never dialed


def test_placeholder_hosts_render_no_contact_identify_or_registration():
    conf = pjsip(SHIPPED)
    for trunk in SHIPPED.trunks.values():
        assert conf[trunk.id]["type"] == ["endpoint"]               # the dialplan still names it
        assert "contact" not in conf[f"{trunk.id}-aor"] and "qualify_frequency" not in conf[f"{trunk.id}-aor"]
        assert f"{trunk.id}-identify" not in conf and f"{trunk.id}-reg" not in conf
    text = render(SHIPPED, RenderOptions())["pjsip_hotline.conf"]
    assert "; PLACEHOLDER host emergency-gw.hainan.invalid" in text
    assert ".invalid" not in "".join(line for line in text.splitlines() if not line.startswith(";"))
    real = pjsip()
    assert real["emergency-110-identify"]["match"] and real["seat-12348-reg"]["server_uri"]


def test_transfer_legs_present_the_citizen_and_the_presentation():
    plan = parse(render(REAL, RenderOptions())["extensions_hotline.conf"])
    # warm transfer: the leg inherited the caller's values from the agent's channel (the agent's own caller ID
    # would otherwise reach the seat)
    warm = run(plan, "hotline-warm-transfer", "12348", {"CALLERID(num)": "8001", "HOTLINE_CALLER_NUM": "13800001111",
                                                         "HOTLINE_CALLER_PRES": "prohib"})
    assert warm.dials == ["PJSIP/12348@seat-12348"]
    assert warm.variables["CALLERID(num)"] == "13800001111" and warm.variables["CALLERID(pres)"] == "prohib"
    # three-way: AMI originates the leg and names the caller's channel; the values are read from it
    chan = "Local/12360@hotline-from-carrier-00000001;2"
    three = run(plan, "hotline-threeway", "12360", {
        "CALLERID(num)": "12360", "HOTLINE_CALLER_CHANNEL": chan,
        f"IMPORT({chan},HOTLINE_CALLER_NUM)": "13800001111",
        f"IMPORT({chan},HOTLINE_CALLER_PRES)": "allowed_not_screened"})
    assert three.dials == ["PJSIP/12360@subcenter-12360"]
    assert three.variables["CALLERID(num)"] == "13800001111"
    # nothing known, or a value that is not a number: the leg keeps what it has
    for given in ({}, {"HOTLINE_CALLER_NUM": "x,y)"}):
        kept = run(plan, "hotline-warm-transfer", "12348", {"CALLERID(num)": "8001", **given})
        assert kept.variables["CALLERID(num)"] == "8001" and kept.dials == ["PJSIP/12348@seat-12348"]
    # an agent's attended transfer to 110 goes on to the emergency dial with the citizen's number
    emergency = run(plan, "hotline-warm-transfer", "110", {"HOTLINE_CALLER_NUM": "13800001111"},
                    {"Dial": lambda c, a: {"__end__": "answered"}})
    assert emergency.variables["CALLERID(num)"] == "13800001111" and emergency.dials == ["PJSIP/110@emergency-110"]


def test_the_did_step_keeps_the_number_for_every_channel_the_call_leads_to():
    plan = parse(render(REAL, RenderOptions())["extensions_hotline.conf"])
    call = run(plan, "hotline-from-carrier", "12348",
               {"CALLERID(num)": "13800001111", "CALLERID(pres)": "prohib", "CALLERID(name)": "Caller"},
               {"AGI": lambda c, a: {"__end__": "engine"}})
    assert call.variables["__HOTLINE_CALLER_NUM"] == "13800001111"       # '__': inherited by queue members
    assert call.variables["__HOTLINE_CALLER_PRES"] == "prohib"


def hotline(*args: str, table: Path = TABLE) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRUNK_", "HOTLINE_AMI_SECRET"))}
    env.update(TRUNK_SEAT_12348_SECRET="a", TRUNK_SEAT_12333_SECRET="b", HOTLINE_AMI_SECRET="c")
    return subprocess.run([sys.executable, "-m", "scripts.hotline", "--log-format", "json", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_cli_names_each_placeholder_trunk_and_strict_writes_nothing(tmp_path: Path):
    check = hotline("routes", "check", str(TABLE), "--no-dns")
    # the 10 placeholder trunks, and the calendar running out (2026-12-31) when the clock is near or past it
    calendar = check.stderr.count("warning: calendar 'cn-mainland' has holidays")
    assert check.returncode == 0 and f"{10 + calendar} warning(s)" in check.stdout
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    for trunk in SHIPPED.trunks.values():
        number = next(i for i, l in enumerate(lines, 1) if l.strip() == f"{trunk.id}:") + 3     # its host line
        assert f"{TABLE}:{number}:11: warning: trunk '{trunk.id}': host {trunk.host} is a placeholder" in check.stderr
    strict = hotline("dialplan", "render", "--table", str(TABLE), "--out", str(tmp_path / "s"), "--strict", "--no-dns")
    assert strict.returncode == 3 and not (tmp_path / "s").exists()
    assert "10 trunk host(s) Asterisk cannot use (nothing written)" in strict.stderr
    assert "trunk 'emergency-110': host emergency-gw.hainan.invalid is a placeholder" in strict.stderr
    loose = hotline("dialplan", "render", "--table", str(TABLE), "--out", str(tmp_path / "l"), "--no-dns")
    assert loose.returncode == 0 and (tmp_path / "l" / "pjsip_hotline.conf").exists()
    assert f"{TABLE}:" in loose.stderr and "emergency-110" in loose.stderr
