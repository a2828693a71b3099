"""Rendering: golden files of the shipped table, determinism, headers, queue/manager/pjsip/features content,
options and bad tables. Regenerate the golden files with UPDATE_GOLDEN=1 after a deliberate change."""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest

from dialplan.common import RenderError
from dialplan.options import OptionsError, RenderOptions, engines_from, read_secrets_file
from dialplan.render import FILES, MASK, SECRET_FILES, diff_files, mask_secrets, render, write_files
from dialplan.walk import parse, run
from routing.loader import load_table
from routing.model import (AbusePolicy, Category, Line, Overflow, Queue, RoutingTable, Rule, Transfer,
                           TransferKind, Trunk, Window)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "dialplan"
SHIPPED = load_table(ROOT / "conf" / "routing.yaml")


def sections(text: str) -> dict[str, dict[str, list[str]]]:
    """A .conf file as {section: {key: [values]}} (comments dropped)."""
    out: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = re.split(r"(?<!\\);", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            current = out.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip().rstrip(">").strip(), []).append(value.strip().lstrip(">").strip())
    return out


# ---- the shipped table ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FILES)
def test_golden_files_of_the_shipped_table(name: str) -> None:
    rendered = render(SHIPPED, RenderOptions())[name].encode("utf-8")
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rendered)
    assert path.exists(), f"missing golden file {path}: run with UPDATE_GOLDEN=1"
    assert rendered == path.read_bytes(), f"{name} differs from its golden file (UPDATE_GOLDEN=1 to accept)"


def test_render_is_deterministic() -> None:
    options = RenderOptions(engines=("agi://10.0.0.1:4573", "agi://10.0.0.2:4573"), secrets={"HOTLINE_AMI_SECRET": "a"})
    first = render(SHIPPED, options)
    again = render(load_table(ROOT / "conf" / "routing.yaml"), dataclasses.replace(options))
    assert first == again
    assert list(first) == sorted(first) == sorted(FILES)


def test_headers_name_the_version_and_say_generated() -> None:
    for name, text in render(SHIPPED).items():
        head = text.splitlines()[:2]
        assert head[0].startswith(f"; {name} - GENERATED") and "DO NOT EDIT" in head[0]
        assert f"version {SHIPPED.version}" in head[1]
        assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text)     # no timestamps
        assert text.endswith("\n") and not text.endswith("\n\n")


def test_queues_conf_matches_the_table_and_the_overflow_rules() -> None:
    conf = sections(render(SHIPPED)["queues_hotline.conf"])
    assert set(conf) == set(SHIPPED.queues)
    for queue in SHIPPED.queues.values():
        section = conf[queue.id]
        assert section["strategy"] == [queue.strategy]
        assert section["timeout"] == [str(queue.member_timeout)]
        assert section["wrapuptime"] == [str(queue.wrapup_seconds)]
        assert section["servicelevel"] == [str(queue.service_level_seconds)]
        assert section["announce-holdtime"] == ["yes" if queue.announce_holdtime else "no"]
        assert section["joinempty"] == ["yes"]
        if queue.id == SHIPPED.general_queue:
            assert section["leavewhenempty"] == ["no"]
        else:
            assert section["leavewhenempty"] == ["unavailable,invalid,unknown"]
    assert conf["abuse-review"]["strategy"] == ["leastrecent"]


def test_manager_least_privilege_and_permit_list() -> None:
    conf = sections(render(SHIPPED, RenderOptions(ami_permit=("127.0.0.1/255.255.255.255", "10.2.0.0/24")))[
        "manager_hotline.conf"])
    user = conf["hotline"]
    assert user["read"] == ["call,agent,user"]  # user: the HotlineQueueLeft overflow event
    assert user["write"] == ["call,agent,originate,reporting"]
    assert user["deny"] == ["0.0.0.0/0.0.0.0"]
    assert user["permit"] == ["127.0.0.1/255.255.255.255", "10.2.0.0/24"]
    assert "secret" not in user                      # missing: placeholder comment only
    for forbidden in ("system", "command", "config", "all", "dialplan"):
        assert forbidden not in user["read"][0].split(",") + user["write"][0].split(",")
    with pytest.raises(RenderError):
        render(SHIPPED, RenderOptions(ami_permit=("0.0.0.0/0; read=all",)))


def with_real_hosts(table: RoutingTable) -> RoutingTable:
    """The shipped table with its placeholder (.invalid) hosts replaced by addresses, as an admin would."""
    trunks = {tid: dataclasses.replace(t, host=f"198.51.100.{i}", match=tuple(f"198.51.100.{i}" for _ in t.match))
              for i, (tid, t) in enumerate(sorted(table.trunks.items()), start=1)}
    return dataclasses.replace(table, trunks=MappingProxyType(trunks))


def test_pjsip_trunks_registration_and_ip_identification() -> None:
    real = with_real_hosts(SHIPPED)
    conf = sections(render(real, RenderOptions(secrets={"TRUNK_SEAT_12348_SECRET": "s"}))["pjsip_hotline.conf"])
    for trunk in real.trunks.values():
        assert conf[trunk.id]["type"] == ["endpoint"]
        assert conf[trunk.id]["context"] == ["hotline-from-carrier"]
        assert conf[f"{trunk.id}-aor"]["contact"] == [f"sip:{trunk.host}:{trunk.port}"]
        if trunk.auth == "ip":
            assert conf[f"{trunk.id}-identify"]["match"] == list(trunk.match)
            assert f"{trunk.id}-reg" not in conf
        else:
            assert conf[f"{trunk.id}-reg"]["server_uri"] == [f"sip:{trunk.host}:{trunk.port}"]
            assert conf[f"{trunk.id}-reg"]["outbound_auth"] == [f"{trunk.id}-auth"]
            assert conf[f"{trunk.id}-auth"]["username"] == [trunk.username]
    assert conf["seat-12348-auth"]["password"] == ["s"]
    assert "password" not in conf["seat-12333-auth"]
    expected = {"carrier-in", "seat-12348", "seat-12333", "subcenter-12360", "subcenter-12366", "subcenter-12305",
                "emergency-110", "emergency-119", "emergency-120", "emergency-122"}
    assert expected <= set(conf)


def test_features_attended_transfer_returns_the_caller_to_the_agent() -> None:
    conf = sections(render(SHIPPED)["features_hotline.conf"])
    assert conf["featuremap"]["atxfer"] == ["*2"]
    general = conf["general"]
    assert general["atxferdropcall"] == ["no"]
    assert general["atxfernoanswertimeout"] == ["45"]          # longest no_answer_seconds in the table
    assert int(general["atxfercallbackretries"][0]) >= 1 and int(general["atxferloopdelay"][0]) > 0


def test_write_modes_and_diff(tmp_path: Path) -> None:
    files = render(SHIPPED, RenderOptions(secrets={"HOTLINE_AMI_SECRET": "am;i"}))
    assert write_files(files, tmp_path) == sorted(files)
    for name in files:
        assert (tmp_path / name).stat().st_mode & 0o777 == (0o600 if name in SECRET_FILES else 0o644)
    assert write_files(files, tmp_path) == []
    assert diff_files(files, tmp_path) == ""
    changed = render(SHIPPED, RenderOptions(secrets={"HOTLINE_AMI_SECRET": "other"}))
    text = diff_files(changed, tmp_path)
    assert "manager_hotline.conf" in text and "am;i" not in text and "am\\;i" not in text and "other" not in text


def test_diff_masks_secret_values_where_they_stand_never_by_substring(tmp_path: Path) -> None:
    """A one-letter secret (or one that also occurs as ordinary text) is masked on its own line only: masking
    by search-and-replace turned every letter `a` of the diff into the mask and so gave the secret away."""
    files = render(SHIPPED, RenderOptions(secrets={"HOTLINE_AMI_SECRET": "a"}))
    write_files(files, tmp_path)
    changed = render(SHIPPED, RenderOptions(secrets={"HOTLINE_AMI_SECRET": "e", "TRUNK_SEAT_12348_SECRET": "1"},
                                            engine_timeout=301))
    text = diff_files(changed, tmp_path)
    masked = [line for line in text.splitlines() if MASK in line]
    assert masked and all(re.fullmatch(r"[-+ ](?:secret|password)=\*{8}", line) for line in masked), masked
    assert "+password=********" in text and "# a secret value changed (not shown)" in text   # pjsip, manager
    before = {line for body in files.values() for line in body.splitlines()}
    after = {line for body in changed.values() for line in body.splitlines()}
    for line in text.splitlines():     # every other line is the files' text as it stands: letters a, e, 1 kept
        if MASK not in line and line[:1] in "+- " and not line.startswith(("---", "+++")):
            assert line[1:] in (before if line[0] == "-" else after if line[0] == "+" else before & after), line
    assert sum(line.count("a") + line.count("e") + line.count("1") for line in text.splitlines()) > 100
    # a hand-edited file: an empty password= line does not swallow the line after it
    assert mask_secrets("password=\nhost=a\n") == "password=\nhost=a\n"
    assert mask_secrets("[x]\n  password => old;v\n") == f"[x]\n  password => {MASK}\n"


# ---- options --------------------------------------------------------------------------------------------

def test_engine_options() -> None:
    assert engines_from() == ("agi://127.0.0.1:4573",)
    assert engines_from(agi="agi://10.0.0.1:4573/") == ("agi://10.0.0.1:4573",)
    assert engines_from(agi_hosts="10.0.0.1:4573, 10.0.0.2:4574") == ("agi://10.0.0.1:4573", "agi://10.0.0.2:4574")
    assert engines_from(hagi="engines.hotline.example") == ("hagi://engines.hotline.example",)
    for bad in (dict(agi="agi://h:4573", hagi="x"), dict(agi="http://h:1"), dict(agi="agi://h:99999"),
                dict(agi_hosts="h1:1,,h2:2"), dict(agi_hosts="h1:1,h)2:2"), dict(hagi="name:4573"),
                dict(agi="agi://a b:1")):
        with pytest.raises(OptionsError):
            engines_from(**bad)
    with pytest.raises(OptionsError):
        RenderOptions(ami_username="hot line")
    assert "s3cr3t-marker" not in repr(RenderOptions(secrets={"X": "s3cr3t-marker"}))


def test_secrets_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    path.write_text("# comment\n\nTRUNK_A='one'\nexport TRUNK_B = two=2\n")
    assert read_secrets_file(path) == {"TRUNK_A": "one", "TRUNK_B": "two=2"}
    path.write_text("TRUNK_A=one\nthis line holds hunter2 without key\n")
    with pytest.raises(OptionsError) as caught:
        read_secrets_file(path)
    assert ":2:" in str(caught.value) and "hunter2" not in str(caught.value)


# ---- a table built from the model: shapes the shipped table does not have ---------------------------------

def model_table(**changes) -> RoutingTable:
    always = Window()
    queues = {
        "general-12345": Queue("general-12345", "general", members=("PJSIP/agent1", "Local/2001@agents")),
        "first": Queue("first", "first", overflow=Overflow(20, "second")),
        "second": Queue("second", "second; with semicolon", overflow=Overflow(30, "third")),
        "third": Queue("third", "no overflow of its own"),
    }
    trunks = {
        "carrier-a": Trunk("carrier-a", "carrier", "carrier", "192.0.2.10", match=("192.0.2.0/28",)),
        "carrier-b": Trunk("carrier-b", "carrier 2", "carrier", "sbc.example", auth="registration",
                           username="hotline", secret_env="CARRIER_B_SECRET"),
        "seat-9": Trunk("seat-9", "seat", "retained_seat", "198.51.100.9", dial="12348"),
        "emergency-110": Trunk("emergency-110", "110", "emergency", "198.51.100.1", dial="110"),
    }
    lines = {
        "12345": Line("12345", "unified", "", (Rule("r0", "12345", Category.UNIFIED, always, queue="general-12345"),)),
        "12320": Line("12320", "expert", "", (
            Rule("r1", "12320", Category.DUAL, Window(None, None), queue="general-12345", tags=("old",)),
            Rule("r2", "12320", Category.EXPERT, always, queue="first", tags=("health", "expert"),
                 transfers=(Transfer(TransferKind.ATTENDED, trunk="seat-9", no_answer_seconds=25),)),
        )),
        "110": Line("110", "police", "", (
            Rule("r3", "110", Category.EMERGENCY_LINKAGE, always, trunk="emergency-110"),)),
    }
    values = dict(version="abc123", source="/somewhere/routing.yaml", timezone=ZoneInfo("Asia/Shanghai"),
                  general_queue="general-12345", service_level_seconds=15, calendars=MappingProxyType({}),
                  schedules=MappingProxyType({}), queues=MappingProxyType(queues),
                  trunks=MappingProxyType(trunks), lines=MappingProxyType(lines), abuse=AbusePolicy())
    values.update(changes)
    return RoutingTable(**values)


def test_model_table_overflow_chain_members_and_tags() -> None:
    files = render(model_table(), RenderOptions(secrets={"CARRIER_B_SECRET": "c;b"}))
    queues = sections(files["queues_hotline.conf"])
    assert queues["general-12345"]["member"] == ["Local/2001@agents", "PJSIP/agent1"]
    named = [l for l in files["queues_hotline.conf"].splitlines() if "with semicolon" in l]
    assert named and all(l.startswith(";") for l in named)      # free-text names only ever in comments
    plan = parse(files["extensions_hotline.conf"])
    result = run(plan, "hotline-from-carrier", "12320", {},
                 {"AGI": lambda c, a: {"AGISTATUS": "SUCCESS", "HOTLINE_ACTION": "queue", "HOTLINE_TARGET": "first"},
                  "Queue": lambda c, a: {"QUEUESTATUS": "TIMEOUT"}})
    assert result.queues[:4] == ["first", "second", "third", "general-12345"]
    failed = run(plan, "hotline-from-carrier", "12320", {},
                 {"AGI": lambda c, a: {"AGISTATUS": "FAILURE"}, "Queue": lambda c, a: {"__end__": "answered"}})
    assert failed.variables["HOTLINE_TAGS"] == "health+expert+failopen"   # the newest rule's tags
    pjsip = sections(files["pjsip_hotline.conf"])
    assert pjsip["carrier-b-auth"]["password"] == ["c\\;b"]                 # ';' would start a comment
    assert pjsip["carrier-a-identify"]["match"] == ["192.0.2.0/28"]
    assert pjsip["carrier-b-reg"]["endpoint"] == ["carrier-b"]
    warm = plan.contexts["hotline-warm-transfer"]["12348"]
    assert [s.args for s in warm if s.app == "Dial"] == ["PJSIP/12348@seat-9,25"]
    assert "routing.yaml version abc123" in files["extensions_hotline.conf"]
    assert "/somewhere" not in "".join(files.values())


@pytest.mark.parametrize("change,message", [
    (lambda t: {"queues": MappingProxyType({**t.queues, "Bad_Id": Queue("Bad_Id", "x")})}, "Bad_Id"),
    (lambda t: {"general_queue": "nope"}, "general queue"),
    (lambda t: {"queues": MappingProxyType({**t.queues, "thi-rd": Queue("thi-rd", "x")})}, "differ only by '-'"),
    (lambda t: {"trunks": MappingProxyType({**t.trunks, "seat-9": Trunk("seat-9", "s", "retained_seat", "h")})},
     "dial must be digits"),
    (lambda t: {"trunks": MappingProxyType({**t.trunks, "x-1": Trunk("x-1", "s", "retained_seat", "h", dial="12348")})},
     "both dial 12348"),
    (lambda t: {"trunks": MappingProxyType({**t.trunks, "r-1": Trunk("r-1", "s", "subcenter", "h", dial="1",
                                                                     auth="registration")})}, "secret_env"),
    (lambda t: {"trunks": MappingProxyType({**t.trunks, "h-1": Trunk("h-1", "s", "subcenter", "h;x", dial="2")})},
     "not a host"),
])
def test_bad_tables_get_a_clear_error(change, message: str) -> None:
    table = model_table()
    with pytest.raises(RenderError, match=message):
        render(dataclasses.replace(table, **change(table)))
