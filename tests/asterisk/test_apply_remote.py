"""`hotline asterisk apply --remote` on a real Asterisk 22: our files read and written over AMI only.

The command is never given the PBX's config dir (from its point of view the Asterisk is on another host); it logs
in as an admin AMI user with write=system,config,command. The admin has added the `#tryinclude` lines by hand,
once, as the README says. A second PBX gets the same render installed locally (--confdir): Asterisk must show
the same dialplan, queues and endpoints on both.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
import sys

import pytest

from dialplan import apply as ap
from tests.asterisk import harness
from tests.asterisk.harness import Ami, Asterisk, Engine, place_call, vars_after_engine

ROOT = harness.ROOT
ADMIN_SECRET = "adminAmiSecret1"


def _admin_config(p: Asterisk, includes: bool) -> None:
    inc = (lambda name: f"#tryinclude {name.replace('.conf', '_hotline.conf')}\n") if includes else (lambda _n: "")
    p.write("manager.conf", f"[general]\nenabled=yes\nbindaddr=127.0.0.1\nport={p.ami_port}\n[tester]\n"
                            f"secret={harness.TESTER_SECRET}\ndeny=0.0.0.0/0.0.0.0\n"
                            "permit=127.0.0.1/255.255.255.255\nread=all\nwrite=all\n"
                            f"[admin]\nsecret={ADMIN_SECRET}\ndeny=0.0.0.0/0.0.0.0\n"
                            "permit=127.0.0.1/255.255.255.255\nread=\nwrite=system,config,command\n"
                            # an admin user without the config class: it may reload, not write files
                            f"[reloader]\nsecret={ADMIN_SECRET}\ndeny=0.0.0.0/0.0.0.0\n"
                            "permit=127.0.0.1/255.255.255.255\nread=\nwrite=system,command\n"
                            + inc("manager.conf"))
    p.write("pjsip.conf", f"[transport-udp]\ntype=transport\nprotocol=udp\nbind={p.sip_host}:{p.sip_port}\n"
            + inc("pjsip.conf"))
    p.write("queues.conf", "[general]\npersistentmembers=no\nautofill=yes\n" + inc("queues.conf"))
    p.write("queuerules.conf", inc("queuerules.conf"))
    p.write("features.conf", inc("features.conf"))
    p.write("extensions.conf", "[general]\nstatic=yes\nwriteprotect=yes\nclearglobalvars=no\n[globals]\n"
                               f"{harness.TEST_CONTEXTS}\n" + inc("extensions.conf"))


class Site:
    def __init__(self, workdir, far_end, prompts):
        base = workdir / "apply-remote"
        self.table = harness.table_with_far_end(ROOT / "conf" / "routing.yaml", base / "routing.yaml",
                                                far_end.host, far_end.port)
        self.engine = Engine(base / "engine", self.table).start()
        self.db = base / "audit.sqlite3"
        self.remote = Asterisk.prepare(base / "remote", sounds=prompts)
        _admin_config(self.remote, includes=True)
        self.local = Asterisk.prepare(base / "local", sounds=prompts)
        _admin_config(self.local, includes=False)
        for pbx in (self.remote, self.local):
            pbx.start()

    def hotline(self, *args: str, pbx: Asterisk | None = None, user: str = "admin",
                remote: bool = True) -> harness.subprocess.CompletedProcess:
        pbx = pbx or self.remote
        env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_AMI_SECRET=harness.AMI_SECRET,
                   HOTLINE_AMI_ADMIN_SECRET=ADMIN_SECRET, HOTLINE_DB_URL=f"sqlite:///{self.db}",
                   TRUNK_SEAT_12348_SECRET="seat12348pw", TRUNK_SEAT_12333_SECRET="seat12333pw")
        where = ["--remote"] if remote else ["--confdir", str(pbx.confdir)]
        common = ["--table", str(self.table), "--agi", self.engine.url, "--strict", *where,
                  "--ami-port", str(pbx.ami_port), "--ami-user", user, "--timeout", "5"]
        return harness.run([sys.executable, "-m", "scripts.hotline", "--log-level", "warning", "asterisk", *args,
                            *common], cwd=ROOT, env=env, timeout=300)

    def digest(self) -> str:
        h = hashlib.sha256()
        for path in sorted(self.remote.confdir.glob("*.conf")):
            h.update(path.name.encode() + path.read_bytes())
        return h.hexdigest()


@pytest.fixture(scope="module")
def site(workdir, far_end, prompts):
    s = Site(workdir, far_end, prompts)
    yield s
    s.engine.stop()
    s.remote.stop()
    s.local.stop()


def _running(pbx: Asterisk, contexts: list[str]) -> dict[str, str]:
    """What Asterisk runs of ours; the dialplan without its `[file:line]` notes (the remote file has no comments,
    so its line numbers differ, and carries the agents' and switches' contexts inline)."""
    shows = {ctx: re.sub(r"\s*\[[\w.]+\.conf:\d+\]", "", pbx.cli(f"dialplan show {ctx}")) for ctx in contexts}
    # without the counters (a call went through the remote one)
    shows["queues"] = re.sub(r"W:\d+, C:\d+, A:\d+, SL:[\d.]+%, SL2:[\d.]+%", "", pbx.cli("queue show"))
    # and the endpoints' names, AORs, identifies, transports: not their qualify state (timing, not config)
    shows["endpoints"] = "\n".join(re.sub(r"udp( +0){2} +127\.0\.0\.1:\d+", "udp",
                                           re.sub(r"^( Endpoint:\s+\S+).*", r"\1", line))
                                    for line in pbx.cli("pjsip show endpoints").splitlines()
                                    if "Contact:" not in line)
    shows["manager"] = pbx.cli("manager show user hotline")
    return shows


def test_an_admin_user_without_the_config_class_is_told_and_nothing_is_written(site):
    before = site.digest()
    res = site.hotline("apply", user="reloader")
    assert res.returncode == 5, res.stdout + res.stderr
    assert "may not read or write config files over AMI" in res.stderr and "write=system,config,command" in res.stderr
    assert site.digest() == before


def test_dry_run_changes_nothing(site):
    before = site.digest()
    res = site.hotline("apply", "--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "dry run: would write extensions_hotline.conf" in res.stdout
    assert "+exten=" in res.stdout and "(running, over AMI)" in res.stdout
    assert site.digest() == before
    assert "There is no existence of 'hotline-engine' context" in site.remote.cli("dialplan show hotline-engine")


def test_remote_apply_installs_reloads_and_a_call_reaches_the_engine(site):
    res = site.hotline("apply")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "applied over AMI" in res.stdout and "checks passed" in res.stdout
    written = (site.remote.confdir / "extensions_hotline.conf").read_text()
    assert "Generator: Manager" in written     # Asterisk wrote it, not us
    assert "[ Context 'hotline-engine' created by 'pbx_config' ]" in site.remote.cli("dialplan show hotline-engine")

    async def call():
        async with Ami(site.remote.ami_port) as ami:
            tag = await place_call(ami, "12345", dtmf="1")
            values = await vars_after_engine(ami, tag)
            await ami.action("Hangup", Channel="/^Local/12345@hotline-from-carrier-.*/")
            return values
    values = asyncio.run(call())
    assert values["HOTLINE_ACTION"] == "queue" and values["HOTLINE_TARGET"] == "general-12345"
    row = sqlite3.connect(site.db).execute(
        "select action, result, params from supervisor_actions order by at desc limit 1").fetchone()
    assert row[0] == "asterisk_apply" and row[1] == "ok" and '"remote": true' in row[2]


def test_without_the_include_lines_the_remote_apply_says_which_and_rolls_back(site):
    """The second PBX has none of the admin's #include lines yet: the files are written, found missing from the
    admin's files (GetConfig follows #include), nothing is reloaded and each file is written back (empty)."""
    res = site.hotline("apply", pbx=site.local)
    assert res.returncode == 4, res.stdout + res.stderr
    assert ("extensions.conf on the Asterisk host does not #include extensions_hotline.conf: add the line "
            "`#tryinclude extensions_hotline.conf` to it by hand, once") in res.stderr
    assert "rolled back over AMI" in res.stderr and "left empty" in res.stderr
    assert (site.local.confdir / "extensions_hotline.conf").read_text().strip("\n").startswith(";!")
    assert "[" not in (site.local.confdir / "extensions_hotline.conf").read_text()
    assert "There is no existence of 'hotline-engine' context" in site.local.cli("dialplan show hotline-engine")


def test_asterisk_runs_the_same_config_as_a_local_install(site):
    res = site.hotline("apply", pbx=site.local, remote=False)
    assert res.returncode == 0, res.stdout + res.stderr
    rendered = (site.local.confdir / "extensions_hotline.conf").read_text() + "".join(
        (site.local.confdir / name).read_text() for name in ap.INCLUDED_BY_OURS)
    contexts = ap.contexts(rendered)
    assert "hotline-agents" in contexts and len(contexts) > 20
    assert _running(site.remote, contexts) == _running(site.local, contexts)


def test_second_remote_apply_writes_and_reloads_nothing(site):
    before = site.digest()
    res = site.hotline("apply")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "nothing written, nothing reloaded" in res.stdout and site.digest() == before


def test_check_remote_on_a_good_instance_and_after_the_admin_dropped_an_include(site):
    good = site.hotline("check", remote=True)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("ok:")
    features = site.remote.confdir / "features.conf"
    kept = features.read_text()
    features.write_text("[general]\n")
    try:
        bad = site.hotline("check", remote=True)
    finally:
        features.write_text(kept)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "features.conf on the Asterisk host does not #include features_hotline.conf" in bad.stdout
    assert "host differs" not in bad.stdout and "is missing on" not in bad.stdout and bad.stdout.count("problem:") == 1


def test_a_change_reloads_only_its_module_over_ami(site):
    async def run():
        async with Ami(site.remote.ami_port) as ami:
            res = await asyncio.to_thread(site.hotline, "apply", "--ami-permit", "127.0.0.1/255.255.255.255",
                                          "--ami-permit", "127.0.0.2")
            await asyncio.sleep(0.5)   # a Reload event would be here by now (it follows the reply at once)
            return res, [e.get("Module", "") for e in ami.find("Reload")]
    res, reloads = asyncio.run(run())
    assert res.returncode == 0, res.stdout + res.stderr
    assert "will write manager_hotline.conf over AMI and reload manager_hotline.conf" in res.stdout
    assert not any(m.startswith(("app_queue", "res_pjsip", "features")) for m in reloads), reloads
    assert "permit = 127.0.0.2" in (site.remote.confdir / "manager_hotline.conf").read_text()


def test_a_failing_check_rolls_back_over_ami(site):
    """A table change (queues and the dialplan) with an AMI permit that locks the engine's user out: the login
    check fails, the files read over AMI before (GetConfig writes `exten=` for `exten =>`) go back, and Asterisk
    runs exactly the dialplan and queues it ran before."""
    path = site.remote.confdir / "manager_hotline.conf"
    path.chmod(0o600)   # README: the admin may tighten the mode once; writes over AMI keep it
    before = path.read_text()
    contexts = ap.contexts((site.remote.confdir / "extensions_hotline.conf").read_text())
    running = _running(site.remote, contexts)
    text = site.table.read_text(encoding="utf-8")
    site.table.write_text(text.replace("member_timeout: 15", "member_timeout: 12", 1), encoding="utf-8")
    try:
        res = site.hotline("apply", "--ami-permit", "10.9.9.9")   # the engine's user may then not log in from here
    finally:
        site.table.write_text(text, encoding="utf-8")
    assert "extensions_hotline.conf" in res.stdout and "queues_hotline.conf" in res.stdout
    assert _running(site.remote, contexts) == running
    assert res.returncode == 4, res.stdout + res.stderr
    assert "AMI user hotline cannot log in" in res.stderr and "rolled back over AMI" in res.stderr
    after = path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    assert "permit = 127.0.0.1/255.255.255.255" in after and "10.9.9.9" not in after
    assert [l for l in after.splitlines() if not l.startswith(";")] == \
        [l for l in before.splitlines() if not l.startswith(";")]

    async def login():   # the previous file is loaded again: the engine's user logs in
        async with Ami(site.remote.ami_port, "hotline", harness.AMI_SECRET):
            return True
    assert asyncio.run(login())
    row = sqlite3.connect(site.db).execute(
        "select result, message from supervisor_actions order by at desc limit 1").fetchone()
    assert row[0] == "error" and "rolled back" in row[1]
