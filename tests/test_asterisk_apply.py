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
