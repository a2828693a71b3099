"""The pure part of `hotline asterisk apply`: includes added once, what is reloaded, what a check reads."""
from __future__ import annotations

from dialplan import apply as ap
from dialplan.render import render
from routing.loader import load_table
from scripts.settings import CONF_DIR


def _rendered() -> dict[str, str]:
    return render(load_table(CONF_DIR / "routing.yaml"))


def test_include_is_appended_once_and_recognised_in_every_spelling():
    text = "[general]\nstatic=yes\n"
    once = ap.with_include(text, "extensions_hotline.conf")
    assert once.startswith(text) and once.endswith("#include extensions_hotline.conf\n")
    assert ap.with_include(once, "extensions_hotline.conf") is None
    for line in ("#include <queues_hotline.conf>", '#include "queues_hotline.conf"', "  #tryinclude queues_hotline.conf"):
        assert ap.has_include(f"[general]\n{line}\n", "queues_hotline.conf")
    assert not ap.has_include(";#include queues_hotline.conf\n", "queues_hotline.conf")
    assert ap.with_include("[x]", "a.conf") == "[x]\n; added by `hotline asterisk apply`: the generated hotline config\n#include a.conf\n"


def test_first_apply_installs_everything_and_reloads_every_module_dialplan_last():
    files = _rendered()
    todo = ap.plan(files, {n: None for n in files}, {a: "[general]\n" for a in ap.INCLUDED_FROM.values()})
    assert set(todo.ours) == set(files) and set(todo.admin) == set(ap.INCLUDED_FROM.values())
    # app_queue reloaded once for its queues and rules
    assert todo.reloads[-1] == "extensions_hotline.conf"
    assert set(todo.reloads) == set(files) - set(ap.INCLUDED_BY_OURS) - {ap.QUEUERULES}


def test_the_agents_file_is_installed_with_the_dialplan_and_never_named_in_an_admin_file():
    files = _rendered()
    assert ap.AGENTS in files                       # the shipped conf/agents.yaml beside the table
    admin = {a: f"#include {o}\n" for o, a in ap.INCLUDED_FROM.items()}
    changed = dict(files, **{ap.AGENTS: files[ap.AGENTS] + "exten => 9,1,NoOp()\n"})
    todo = ap.plan(changed, dict(files), admin)
    assert set(todo.ours) == {ap.AGENTS} and todo.admin == {} and todo.reloads == ["extensions_hotline.conf"]


def test_a_changed_skill_rule_alone_reloads_app_queue():
    files = _rendered()
    admin = {a: f"#include {o}\n" for o, a in ap.INCLUDED_FROM.items()}
    changed = dict(files, **{ap.QUEUERULES: files[ap.QUEUERULES] + "penaltychange => 5,+1\n"})
    todo = ap.plan(changed, dict(files), admin)
    assert set(todo.ours) == {ap.QUEUERULES} and todo.reloads == [ap.QUEUERULES]
    assert ap.RELOADS[ap.QUEUERULES] == {"Action": "Reload", "Module": "app_queue"}


def test_nothing_changed_means_nothing_to_do():
    files = _rendered()
    admin = {a: f"#include {o}\n" for o, a in ap.INCLUDED_FROM.items()}
    todo = ap.plan(files, dict(files), admin)
    assert todo.empty and todo.reloads == []


def test_only_the_changed_module_is_reloaded_and_a_comment_change_reloads_nothing():
    files = _rendered()
    admin = {a: f"#include {o}\n" for o, a in ap.INCLUDED_FROM.items()}
    installed = dict(files, **{"queues_hotline.conf": files["queues_hotline.conf"].replace("strategy=rrmemory",
                                                                                       "strategy=ringall", 1)})
    assert ap.plan(files, installed, admin).reloads == ["queues_hotline.conf"]
    comment_only = dict(files, **{"pjsip_hotline.conf": files["pjsip_hotline.conf"].replace(
        "version", "version-old", 1)})
    todo = ap.plan(files, comment_only, admin)
    assert list(todo.ours) == ["pjsip_hotline.conf"] and todo.reloads == []
    # an include added to the admin's file reloads that module even if our file is already there
    assert ap.plan(files, dict(files), dict(admin, **{"features.conf": "[general]\n"})).reloads == ["features_hotline.conf"]


def test_what_the_checks_read_from_the_rendered_files():
    files = _rendered()
    assert "hotline-engine" in ap.contexts(files["extensions_hotline.conf"])
    assert "general-12345" in ap.queues(files["queues_hotline.conf"])
    assert "carrier-in" in ap.endpoints(files["pjsip_hotline.conf"])
    assert "carrier-in-aor" not in ap.endpoints(files["pjsip_hotline.conf"])
    assert ap.ami_users(files["manager_hotline.conf"]) == ["hotline"]
    assert ap.engine_urls(files["extensions_hotline.conf"]) == ["agi://127.0.0.1:4573/route"]
    assert ap.table_version(files["queues_hotline.conf"]) == load_table(CONF_DIR / "routing.yaml").version


def test_what_the_checks_read_from_asterisk_answers():
    show = "[ Context 'hotline-engine' created by 'pbx_config' ]\n  's' => 1. GotoIf($[\"${HOTLINE_SAFE_TABLE}\" = \"abc123\"]?table_ok)\n"
    assert ap.missing_contexts(show, ["hotline-engine", "hotline-x"]) == ["hotline-x"]
    assert ap.engine_table_in_dialplan(show) == "abc123"
    queue_show = "general-12345 has 0 calls (max unlimited) in 'rrmemory' strategy\n   No Members\n"
    assert ap.missing_queues(queue_show, ["general-12345", "expert-12320"]) == ["expert-12320"]


def test_a_failed_write_puts_everything_back_and_reloads_nothing(tmp_path, monkeypatch):
    """Our files are written, then the admin's file cannot be (disk full, permissions): exit 2, our new files
    removed again, the admin's file as it was, AMI never asked to reload."""
    import asyncio

    from scripts import cli_asterisk

    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "extensions.conf").write_text("[general]\n")
    files = _rendered()
    todo = ap.plan(files, {n: None for n in files}, {"extensions.conf": "[general]\n"})
    sent = []

    class FakeClient:
        async def action(self, fields, timeout=None):
            sent.append(fields)
            raise AssertionError("no AMI action after a failed write")

        async def close(self):
            pass

    async def login(*_a, **_k):
        return FakeClient()

    def no_space(path, data, mode):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cli_asterisk, "_login", login)
    monkeypatch.setattr(cli_asterisk, "write_atomic", no_space)
    code = asyncio.run(cli_asterisk._apply("v1", files, todo, conf, "127.0.0.1", 1, "admin", "x", 1, None, None))
    assert code == 2 and sent == []
    assert sorted(p.name for p in conf.iterdir()) == ["extensions.conf"]
    assert (conf / "extensions.conf").read_text() == "[general]\n"


# --- the remote variant (dialplan/remote.py): what UpdateConfig is asked to write --------------------------------

import pytest  # noqa: E402

from dialplan import remote as rm   # noqa: E402


def test_remote_parse_keeps_order_duplicates_and_objects_and_drops_comments():
    text = ("; header\n[ctx]\nexten => 1,1,NoOp(a=b)\n same => n,Hangup() ; why\n\nexten => 1,3,NoOp()\n"
            "[q]\nk=v\nk = w\n")
    assert rm.parse(text) == [("ctx", [("exten", "1,1,NoOp(a=b)", True), ("same", "n,Hangup()", True),
                                       ("exten", "1,3,NoOp()", True)]),
                              ("q", [("k", "v", False), ("k", "w", False)])]


def test_remote_parse_refuses_what_updateconfig_cannot_write_with_file_and_line():
    for text, line in (("[a]\n#include x.conf\n", 2), ("[t](!)\nk=v\n", 1), ("k=v\n", 1), ("[a]\nk=a\\;b\n", 2)):
        with pytest.raises(rm.RemoteFormatError, match=rf"^f.conf:{line}: "):
            rm.parse(text, "f.conf")


def test_remote_files_carry_the_included_contexts_inline():
    rendered = {"extensions_hotline.conf": "[a]\nexten => 1,1,NoOp()\n#include extensions_hotline_agents.conf\n"
                                           "#include extensions_hotline_switches.conf\n",
                "extensions_hotline_agents.conf": "[hotline-agents]\nexten => 2,1,NoOp()\n",
                "extensions_hotline_switches.conf": "[hotline-switches]\nexten => 3,1,NoOp()\n"}
    files = rm.remote_files(rendered)
    assert list(files) == ["extensions_hotline.conf"]
    assert [cat for cat, _ in rm.parse(files["extensions_hotline.conf"])] == ["a", "hotline-agents", "hotline-switches"]


def test_update_actions_chunk_under_amis_header_limit_and_mark_objects():
    sections = [("c", [("exten", f"{i},1,NoOp()", True) for i in range(100)])]
    chunks = rm.update_actions(sections)
    assert sum(len(c) for c in chunks) == 101 and all(len(c) <= rm.CHUNK for c in chunks)
    first, later = rm.update_config("x.conf", chunks[0], True), rm.update_config("x.conf", chunks[1], False)
    assert len(first) + 1 < 128   # + the ActionID
    assert first["SrcFilename"] == rm.SCRATCH and later["SrcFilename"] == "x.conf"
    assert first["Action-000000"] == "NewCat" and first["Value-000001"] == ">0,1,NoOp()"
    assert rm.update_actions([]) == [[]]   # an empty file: one UpdateConfig with no operation


def test_getconfig_answer_reads_back_to_the_same_canonical_text():
    reply = {"Response": "Success", "Category-000000": "ctx", "Line-000000-000000": "exten=1,1,NoOp(a=b)",
             "Line-000000-000001": "same=n,Hangup()", "Category-000001": "empty"}
    assert rm.canonical(rm.from_getconfig(reply)) == "[ctx]\nexten=1,1,NoOp(a=b)\nsame=n,Hangup()\n[empty]\n"
    assert rm.canonical(rm.parse("[ctx]\nexten => 1,1,NoOp(a=b)\nsame => n,Hangup()\n[empty]\n")) == \
        rm.canonical(rm.from_getconfig(reply))


def test_the_engines_generated_ami_user_never_gets_the_config_class():
    """apply --remote needs write=config; only the admin's own AMI user may have it."""
    from dialplan.manager import WRITE
    assert "config" not in WRITE and "system" not in WRITE and "command" not in WRITE


def test_a_non_local_ami_host_without_confdir_means_remote(tmp_path, monkeypatch):
    """No --confdir and an AMI host elsewhere: the remote path (it asks for the admin secret and never looks for
    /etc/asterisk); the same host with a --confdir: the local path (which checks that directory first)."""
    from click.testing import CliRunner
    from scripts.hotline import cli
    monkeypatch.delenv("HOTLINE_AMI_ADMIN_SECRET", raising=False)
    base = ["--log-level", "warning", "asterisk", "apply", "--table", "conf/routing.yaml", "--ami-host", "10.255.0.9"]
    remote = CliRunner().invoke(cli, base)
    assert remote.exit_code == 2 and "set HOTLINE_AMI_ADMIN_SECRET" in remote.output
    assert "not a directory" not in remote.output
    local = CliRunner().invoke(cli, [*base, "--confdir", str(tmp_path / "nowhere")])
    assert local.exit_code == 2 and "is not a directory" in local.output
