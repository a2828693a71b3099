"""`hotline asterisk apply|check` on a real Asterisk 22 that starts with only the admin's own config.

One PBX for the module, changed step by step in file order: first apply (includes added once, files installed,
a call reaches the engine), a second apply that reloads nothing, an option change that reloads only its module,
a failing check that rolls back, --dry-run, then `check` on a good and a broken instance.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import sys

import pytest

from dialplan import apply as ap
from tests.asterisk import harness
from tests.asterisk.harness import Ami, Asterisk, Engine, place_call, vars_after_engine

ROOT = harness.ROOT
PERMITS = ("--ami-permit", "127.0.0.1/255.255.255.255", "--ami-permit", "127.0.0.2")   # the applied change
ADMIN_SECRET = "adminAmiSecret1"
ADMIN_FILES = ("extensions.conf", "pjsip.conf", "queues.conf", "queuerules.conf", "manager.conf", "features.conf")


class Site:
    def __init__(self, workdir, far_end, prompts):
        base = workdir / "apply-site"
        self.table = harness.table_with_far_end(ROOT / "conf" / "routing.yaml", base / "routing.yaml",
                                                far_end.host, far_end.port)
        self.pbx = Asterisk.prepare(base / "pbx", sounds=prompts)
        self.engine = Engine(base / "engine", self.table).start()
        self.db = base / "audit.sqlite3"
        p = self.pbx
        # the admin's own config, as a fresh install has it: no hotline file, no include; an admin AMI user
        p.write("manager.conf", f"[general]\nenabled=yes\nbindaddr=127.0.0.1\nport={p.ami_port}\n[tester]\n"
                                f"secret={harness.TESTER_SECRET}\ndeny=0.0.0.0/0.0.0.0\n"
                                "permit=127.0.0.1/255.255.255.255\nread=all\nwrite=all\n"
                                # the admin user the README's Quickstart asks for: write classes only
                                f"[admin]\nsecret={ADMIN_SECRET}\ndeny=0.0.0.0/0.0.0.0\n"
                                "permit=127.0.0.1/255.255.255.255\nread=\nwrite=system,config,command\n")
        p.write("pjsip.conf", f"[transport-udp]\ntype=transport\nprotocol=udp\nbind={p.sip_host}:{p.sip_port}\n")
        p.write("queues.conf", "[general]\npersistentmembers=no\nautofill=yes\n")
        p.write("extensions.conf", "[general]\nstatic=yes\nwriteprotect=yes\nclearglobalvars=no\n[globals]\n"
                                   f"{harness.TEST_CONTEXTS}\n")
        (p.confdir / "features.conf").unlink(missing_ok=True)
        p.start()

    def hotline(self, *args: str, agi: str | None = None) -> harness.subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_AMI_SECRET=harness.AMI_SECRET,
                   HOTLINE_AMI_ADMIN_SECRET=ADMIN_SECRET, HOTLINE_DB_URL=f"sqlite:///{self.db}",
                   TRUNK_SEAT_12348_SECRET="seat12348pw", TRUNK_SEAT_12333_SECRET="seat12333pw")
        common = ["--table", str(self.table), "--agi", agi or self.engine.url, "--strict", "--confdir",
                  str(self.pbx.confdir), "--ami-port", str(self.pbx.ami_port), "--ami-user", "admin",
                  "--timeout", "5"]
        return harness.run([sys.executable, "-m", "scripts.hotline", "--log-level", "warning", "asterisk", *args,
                            *common], cwd=ROOT, env=env, timeout=120)

    def digest(self) -> str:
        h = hashlib.sha256()
        for path in sorted(self.pbx.confdir.glob("*.conf")):
            h.update(path.name.encode() + path.read_bytes() + oct(path.stat().st_mode).encode())
        return h.hexdigest()

    def ami(self) -> Ami:
        return Ami(self.pbx.ami_port)


@pytest.fixture(scope="module")
def site(workdir, far_end, prompts):
    s = Site(workdir, far_end, prompts)
    yield s
    s.engine.stop()
    s.pbx.stop()


def _reloads(ami: Ami) -> list[str]:
    return [e.get("Module", "") for e in ami.find("Reload")]


def test_first_apply_adds_each_include_once_installs_reloads_and_a_call_reaches_the_engine(site):
    assert "There is no existence of 'hotline-engine' context" in site.pbx.cli("dialplan show hotline-engine")
    res = site.hotline("apply")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "checks passed" in res.stdout
    for name in ADMIN_FILES:
        ours = name.replace(".conf", "_hotline.conf")
        text = (site.pbx.confdir / name).read_text()
        assert text.count(f"#include {ours}") == 1, name
        assert (site.pbx.confdir / ours).exists()
    assert "secret=" + harness.TESTER_SECRET in (site.pbx.confdir / "manager.conf").read_text()   # admin's kept
    assert "[ Context 'hotline-engine' created by 'pbx_config' ]" in site.pbx.cli("dialplan show hotline-engine")
    assert "general-12345 has 0 calls" in site.pbx.cli("queue show general-12345")

    async def call():
        async with site.ami() as ami:
            tag = await place_call(ami, "12345", dtmf="1")
            values = await vars_after_engine(ami, tag)
            await ami.action("Hangup", Channel="/^Local/12345@hotline-from-carrier-.*/")
            return values
    values = asyncio.run(call())
    assert values["HOTLINE_ACTION"] == "queue" and values["HOTLINE_TARGET"] == "general-12345"   # the engine's answer
    rows = sqlite3.connect(site.db).execute(
        "select action, result, params from supervisor_actions").fetchall()
    assert rows and rows[-1][0] == "asterisk_apply" and rows[-1][1] == "ok" and "queues_hotline.conf" in rows[-1][2]


def test_the_quickstart_test_call_reaches_the_engine(site):
    """README Quickstart, word for word: `agi set debug on`, then the `channel originate` test call."""
    async def run():
        async with site.ami() as ami:
            site.pbx.cli("agi set debug on")
            site.pbx.cli("channel originate Local/12345@hotline-from-carrier application Wait 30")
            try:
                # the engine drives the caller's half (12345's menu: it waits for a key)
                return await ami.wait("AGIExecStart", timeout=15, Channel="Local/12345@hotline-from-carrier-.*;2")
            finally:
                await ami.action("Hangup", Channel="/^Local/12345@hotline-from-carrier-.*/")
    assert asyncio.run(run())
    assert "AGI Tx >> agi_network_script: route" in site.pbx.log_text()


def test_second_apply_without_change_reloads_nothing(site):
    async def run():
        async with site.ami() as ami:
            before = site.digest()
            res = await asyncio.to_thread(site.hotline, "apply")
            await asyncio.sleep(0.5)    # a Reload event would be here by now (it follows the reply at once)
            return res, before, _reloads(ami)
    res, before, reloads = asyncio.run(run())
    assert res.returncode == 0, res.stdout + res.stderr
    assert "nothing reloaded" in res.stdout and reloads == [] and site.digest() == before
    for name in ADMIN_FILES:
        ours = name.replace(".conf", "_hotline.conf")
        assert (site.pbx.confdir / name).read_text().count(f"#include {ours}") == 1


def test_a_change_reloads_only_its_module(site):
    async def run():
        async with site.ami() as ami:
            res = await asyncio.to_thread(site.hotline, "apply", *PERMITS)
            await asyncio.sleep(0.5)
            return res, _reloads(ami)
    res, reloads = asyncio.run(run())
    assert res.returncode == 0, res.stdout + res.stderr
    assert "reloaded manager_hotline.conf;" in res.stdout
    assert not any(m.startswith(("app_queue", "res_pjsip", "features")) for m in reloads), reloads
    assert "permit=127.0.0.2" in (site.pbx.confdir / "manager_hotline.conf").read_text()


def test_a_table_change_reloads_only_what_changed(site):
    """A queue setting changes: app_queue and the dialplan (it checks the table version) are reloaded; the other
    files only get the new version in their header comment, installed but not reloaded."""
    text = site.table.read_text(encoding="utf-8")
    site.table.write_text(text.replace("member_timeout: 15", "member_timeout: 12", 1), encoding="utf-8")

    async def run():
        async with site.ami() as ami:
            res = await asyncio.to_thread(site.hotline, "apply", *PERMITS)
            await ami.wait("Reload", Module="app_queue")
            await asyncio.sleep(0.5)
            return res, _reloads(ami)
    res, reloads = asyncio.run(run())
    assert res.returncode == 0, res.stdout + res.stderr
    assert "reloaded queues_hotline.conf, extensions_hotline.conf;" in res.stdout
    assert reloads == ["app_queue"], reloads
    versions = {ap.table_version((site.pbx.confdir / n).read_text()) for n in ap.INCLUDED_FROM}
    assert len(versions) == 1 and versions != {None}
    assert "timeout=12" in (site.pbx.confdir / "queues_hotline.conf").read_text()


def test_a_failing_check_rolls_back_to_the_previous_files(site):
    before = (site.pbx.confdir / "manager_hotline.conf").read_bytes()
    # the engine's AMI user may then only log in from 10.9.9.9: the login check fails on the real Asterisk
    res = site.hotline("apply", "--ami-permit", "10.9.9.9")
    assert res.returncode == 4, res.stdout + res.stderr
    assert "AMI user hotline cannot log in" in res.stderr and "rolled back" in res.stderr
    assert (site.pbx.confdir / "manager_hotline.conf").read_bytes() == before

    async def login():   # the previous file is loaded again: the engine's user logs in
        async with Ami(site.pbx.ami_port, "hotline", harness.AMI_SECRET):
            return True
    assert asyncio.run(login())
    row = sqlite3.connect(site.db).execute(
        "select result, message from supervisor_actions order by at desc limit 1").fetchone()
    assert row[0] == "error" and "rolled back" in row[1]


def test_dry_run_changes_nothing(site):
    before = site.digest()
    res = site.hotline("apply", "--dry-run", "--transport", "transport-other", *PERMITS)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "transport=transport-other" in res.stdout and "dry run: would install pjsip_hotline.conf and reload pjsip_hotline.conf (Reload res_pjsip);" in res.stdout
    assert site.digest() == before


def test_check_on_a_good_and_on_a_broken_instance(site):
    # the options of the last successful apply: the good instance
    args = ("check", *PERMITS)
    good = site.hotline(*args)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("ok:")
    features = site.pbx.confdir / "features.conf"
    kept = features.read_text()
    features.write_text("[general]\n")   # the admin's edit dropped our include
    dead = f"agi://127.0.0.1:{harness.free_port()}"
    bad = site.hotline(*args, agi=dead)
    features.write_text(kept)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "does not #include features_hotline.conf" in bad.stdout
    assert f"engine 127.0.0.1:{dead.rsplit(':', 1)[1]} unreachable" in bad.stdout
    assert "the running dialplan checks table version" not in bad.stdout
    site.pbx.cli("module unload app_queue.so")
    gone = site.hotline(*args)
    assert gone.returncode == 1
    assert "module app_queue is not loaded" in gone.stdout and "app_queue lacks our queues" in gone.stdout
