"""Classic AGI through pyst2: its rough edges shown raw, then our wrapper; the adapter as a real subprocess
(pipes, SIGHUP) and in-process, answered by the Asterisk emulator's channel."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from asterisk.agi import AGI, AGIUnknownError

from ivr.agi import codec
from ivr.agi.commands import GetVariable, SetVariable
from ivr.classic import ClassicChannel, main
from ivr.emulator import AsteriskChannel, asterisk_env, env_block
from tests.test_fastagi_support import WORKDAY_10H

ROOT = Path(__file__).resolve().parents[1]
ENV = env_block(asterisk_env(dialed="12345"))


@pytest.fixture
def keep_sighup():
    old = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, old)


def raw_agi(stdin_text: str) -> AGI:
    return AGI(stdin=io.StringIO(stdin_text), stdout=io.StringIO(), stderr=io.StringIO())


def test_raw_pyst2_installs_a_sighup_handler_and_echoes_the_caller(keep_sighup):
    before = signal.getsignal(signal.SIGHUP)
    agi = raw_agi(ENV.decode())
    assert signal.getsignal(signal.SIGHUP) != before
    assert "4951234567" in agi.stderr.getvalue()


def test_ours_installs_nothing_unless_asked_and_echoes_nothing(keep_sighup):
    before = signal.getsignal(signal.SIGHUP)
    err = io.StringIO()
    ch = ClassicChannel(io.BytesIO(ENV), io.BytesIO(), err)
    assert signal.getsignal(signal.SIGHUP) == before and err.getvalue() == ""
    assert ch.env["callerid"] == "4951234567"


def test_raw_pyst2_raises_on_the_hangup_line_and_on_511(keep_sighup):
    agi = raw_agi(ENV.decode() + "HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n")
    with pytest.raises(ValueError):
        agi.get_result()
    with pytest.raises(AGIUnknownError):
        agi.get_result()


def test_ours_skips_the_hangup_line_and_reports_511_as_dead():
    stdin = io.BytesIO(ENV + b"200 result=-1\nHANGUP\n200 result=1\n"
                             b"511 Command Not Permitted on a dead channel or intercept routine\n")
    ch = ClassicChannel(stdin, io.BytesIO())
    assert ch.send(GetVariable("X")).result == -1
    assert ch.send(SetVariable("HOTLINE_ACTION", "queue")).result == 1 and ch.hangup_seen
    assert ch.send(GetVariable("X")).hungup


def test_raw_pyst2_quotes_nothing(keep_sighup):
    agi = raw_agi(ENV.decode())
    value = 'say "hi"\nHANGUP'
    agi.send_command("SET VARIABLE", "X", agi._quote(value))
    sent = agi.stdout.getvalue()
    assert sent.count("\n") == 2                                   # a second command slipped through
    assert codec.split_args(sent.splitlines()[0])[3] != value.split("\n")[0]


def test_ours_quotes_as_asterisk_reads_back():
    out = io.BytesIO()
    ch = ClassicChannel(io.BytesIO(ENV + b"200 result=1\n"), out)
    ch.send(SetVariable("CALLERID(name)", 'say "hi"\nHANGUP 张'))
    assert out.getvalue().count(b"\n") == 1
    assert codec.split_args(out.getvalue().decode().rstrip("\n"))[3] == 'say "hi" HANGUP 张'
    assert codec.split_args(ch._quote('a "b"')) == ['a "b"']


def _answer(proc_in, proc_out, channel: AsteriskChannel, on_hangup=None) -> None:
    """Play Asterisk for a classic AGI process: read its commands, write the channel's replies."""
    proc_in.write(env_block(channel.env))
    proc_in.flush()
    while line := proc_out.readline():
        reply = channel.handle(line.decode().rstrip("\n"))
        proc_in.write(reply)
        proc_in.flush()
        if channel.hangup_pending:
            channel.hangup_pending = False
            if on_hangup:
                on_hangup()


SNAPSHOT_DIR = tempfile.mkdtemp(prefix="classic-snapshot-")    # never the project's var/cache


def _subprocess_env(**extra):
    extra.setdefault("HOTLINE_CONFIG_SNAPSHOT", os.path.join(SNAPSHOT_DIR, "snapshot.json"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_ALLOW_TEST_CLOCK="1", **extra)
    return env


def classic_call(env: dict, channel: AsteriskChannel, *python_args: str) -> str:
    """One call through a real `python [python_args] -m ivr.classic` process, Asterisk played by `channel`;
    the process must exit 0. Returns what it wrote on stderr (its log)."""
    proc = subprocess.Popen([sys.executable, *python_args, "-m", "ivr.classic"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        _answer(proc.stdin, proc.stdout, channel)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        err = proc.stderr.read().decode()
    return err


def test_classic_subprocess_writes_the_snapshot_once_then_routes_from_it(tmp_path):
    env = _subprocess_env(HOTLINE_CONFIG_SNAPSHOT=str(tmp_path / "cache" / "snapshot.json"))
    for n in range(2):
        channel = AsteriskChannel(asterisk_env(dialed="12320"), ["1"], variables={"HOTLINE_AT": WORKDAY_10H})
        err = classic_call(env, channel)
        assert ("classic.snapshot_written" in err) == (n == 0)
        assert channel.t.variables["HOTLINE_TARGET"] == "expert-12320"


@pytest.mark.parametrize("junk", [b"\x80\x04not a snapshot", b'{"format": 1, "key": "x"}'])
def test_classic_subprocess_sends_an_emergency_call_on_with_a_junk_snapshot(tmp_path, junk):
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_bytes(junk)
    channel = AsteriskChannel(asterisk_env(dialed="110"))
    classic_call(_subprocess_env(HOTLINE_CONFIG_SNAPSHOT=str(snapshot)), channel)
    assert (channel.t.variables["HOTLINE_ACTION"], channel.t.variables["HOTLINE_TARGET"]) == ("dial", "emergency-110")


def test_classic_subprocess_routes_a_call():
    channel = AsteriskChannel(asterisk_env(dialed="12320"), ["1"], variables={"HOTLINE_AT": WORKDAY_10H})
    err = classic_call(_subprocess_env(), channel)
    assert channel.t.variables["HOTLINE_ACTION"] == "queue"
    assert channel.t.variables["HOTLINE_TARGET"] == "expert-12320"
    assert "4951234567" not in err and "engine.route" in err                  # logged, caller masked


def test_classic_subprocess_survives_sighup_and_still_sets_the_decision():
    proc = subprocess.Popen([sys.executable, "-m", "ivr.classic"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_subprocess_env())
    channel = AsteriskChannel(asterisk_env(dialed="12345"), ["hangup"], variables={"HOTLINE_AT": WORKDAY_10H})
    try:
        _answer(proc.stdin, proc.stdout, channel, on_hangup=lambda: proc.send_signal(signal.SIGHUP))
        assert proc.wait(timeout=20) == 0                                    # not killed by SIGHUP
    finally:
        proc.kill()
        proc.stderr.read()
    assert channel.t.hungup and channel.t.variables["HOTLINE_ACTION"] == "queue"


@pytest.mark.parametrize("dialed", ["12349", "110"])
def test_classic_subprocess_fails_open_on_a_broken_table(tmp_path, dialed):
    """Without a table the engine sets no decision: the dialplan's own fail-open (rendered from the table
    Asterisk runs with) queues 12349 in 12345's queue with its tags and dials 110's trunk at once."""
    broken = tmp_path / "routing.yaml"
    broken.write_text("version: 1\nlines: [\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "ivr.classic"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_subprocess_env(HOTLINE_ROUTING_TABLE=str(broken)))
    channel = AsteriskChannel(asterisk_env(dialed=dialed))
    try:
        _answer(proc.stdin, proc.stdout, channel)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        err = proc.stderr.read().decode()
    assert channel.t.variables == {"HOTLINE_LINE": dialed, "HOTLINE_TAGS": "failopen"}
    assert channel.t.agi_status == "SUCCESS" and "HOTLINE_ACTION" not in channel.t.variables
    assert "classic.config_unusable" in err and "routing.yaml:" in err


@pytest.fixture
def keep_structlog():
    """main() configures logging for its process; give the rest of the suite its configuration back."""
    import structlog
    old = structlog.get_config()
    yield
    structlog.configure(**old)


def test_classic_in_process_with_pipes(keep_sighup, keep_structlog, monkeypatch, tmp_path):
    monkeypatch.setenv("HOTLINE_ALLOW_TEST_CLOCK", "1")
    monkeypatch.setenv("HOTLINE_CONFIG_SNAPSHOT", str(tmp_path / "snapshot.json"))
    to_agi_r, to_agi_w = os.pipe()
    from_agi_r, from_agi_w = os.pipe()
    agi_in, agi_out = os.fdopen(to_agi_r, "rb"), os.fdopen(from_agi_w, "wb")
    ast_in, ast_out = os.fdopen(to_agi_w, "wb"), os.fdopen(from_agi_r, "rb")
    channel = AsteriskChannel(asterisk_env(dialed="12360"), ["2"], variables={"HOTLINE_AT": WORKDAY_10H})

    def asterisk():
        try:
            _answer(ast_in, ast_out, channel)
        finally:
            ast_in.close()
    thread = threading.Thread(target=asterisk, daemon=True)
    thread.start()
    try:
        rc = main([], stdin=agi_in, stdout=agi_out)       # main thread: it installs its SIGHUP handler
    finally:
        agi_out.close()
    thread.join(timeout=20)
    assert not thread.is_alive() and rc == 0
    assert channel.t.variables["HOTLINE_ACTION"] == "queue"
    assert "specialist" in channel.t.variables["HOTLINE_TAGS"].split("+")
    for f in (agi_in, ast_out):
        f.close()


def test_classic_subprocess_routes_with_the_switches_on(tmp_path):
    from datetime import datetime, timezone

    from records.switches import SwitchStore

    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    SwitchStore.for_url(url).flip("force-night", True, by="admin", via="cli", why="test",
                                  at=datetime.now(timezone.utc))
    proc = subprocess.Popen([sys.executable, "-m", "ivr.classic"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_subprocess_env(HOTLINE_DB_URL=url))
    channel = AsteriskChannel(asterisk_env(dialed="12320"), ["1"], variables={"HOTLINE_AT": WORKDAY_10H})
    try:
        _answer(proc.stdin, proc.stdout, channel)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.stderr.read()
    assert channel.t.variables["HOTLINE_TARGET"] == "general-12345"          # the expert seat counts as closed
