"""`hotline ami ping` and `hotline transfer ...` against the emulator (its own event-loop thread) over TCP."""
from __future__ import annotations

import asyncio
import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from ivr.ami.emulator import AmiEmulator
from scripts.hotline import cli

AGENT = "Local/agent1@queue-agents/n"


class EmulatorThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.emu = AmiEmulator(secret="desk-secret")
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, fn, *args, **kwargs):
        async def run():
            return fn(*args, **kwargs)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def __enter__(self) -> "EmulatorThread":
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.emu.start(), self.loop).result(5)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.emu.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def desk(tmp_path):
    with EmulatorThread() as et:
        et.call(et.emu.add_queue, "general-12345")
        et.call(et.emu.add_member, "general-12345", AGENT, "Agent One")
        env = {"HOTLINE_AMI_HOST": "127.0.0.1", "HOTLINE_AMI_PORT": str(et.port), "HOTLINE_AMI_USER": "hotline",
               "HOTLINE_AMI_SECRET": "desk-secret", "HOTLINE_DB_URL": f"sqlite:///{tmp_path / 'r.sqlite3'}",
               "HOTLINE_SPOOL_DIR": str(tmp_path / "spool"), "HOTLINE_CALLER_HASH_KEY": "k" * 32,
               "HOTLINE_SECRETS_FILE": ""}
        yield et, env, tmp_path


def invoke(env, *args):
    return CliRunner().invoke(cli, ["--log-level", "error", *args], env=env, catch_exceptions=False)


def test_ami_ping(desk):
    _, env, _ = desk
    result = invoke(env, "ami", "ping")
    assert result.exit_code == 0, result.output
    assert "Pong" in result.output and "desk-secret" not in result.output


def test_ami_ping_wrong_secret_is_a_clear_error(desk):
    et, env, _ = desk
    et.emu.bad_login_delay = 0.01
    result = invoke({**env, "HOTLINE_AMI_SECRET": "nope"}, "ami", "ping", "--timeout", "1")
    assert result.exit_code == 1 and "cannot log in to AMI" in result.output


def test_transfer_warm_from_the_desk_is_recorded(desk):
    et, env, tmp_path = desk
    caller, agent = et.call(et.emu.answered_call, "general-12345", AGENT, "4951234567", "12348")
    et.call(et.emu.script_target, "12348", True, 0.02)
    result = invoke(env, "transfer", "warm", agent.name, "12348")
    assert result.exit_code == 0, result.output
    assert "warm transfer of" in result.output and "answered" in result.output
    rows = create_engine(env["HOTLINE_DB_URL"]).connect().execute(
        text("select kind, from_line, first_line, target_trunk, outcome, uniqueid from transfers")).all()
    assert [tuple(r) for r in rows] == [("attended", "12348", "12345", "seat-12348", "answered", caller.uniqueid)]


def test_transfer_threeway_nobody_answers_exit_code(desk):
    et, env, _ = desk
    _, agent = et.call(et.emu.answered_call, "general-12345", AGENT, "4951234567", "12360")
    et.call(et.emu.script_target, "12360", False, 0.02)
    result = invoke(env, "transfer", "threeway", agent.name, "12360", "--no-record")
    assert result.exit_code == 3, result.output
    assert "no_answer" in result.output and "(not recorded)" in result.output


def test_transfer_option_the_line_does_not_offer(desk):
    et, env, _ = desk
    _, agent = et.call(et.emu.answered_call, "general-12345", AGENT, "4951234567", "12348")
    result = invoke(env, "transfer", "escalate", agent.name, "12348", "--no-record")
    assert result.exit_code == 1 and "offers no escalate transfer" in result.output


def test_transfer_unknown_channel(desk):
    _, env, _ = desk
    result = invoke(env, "transfer", "handover", "PJSIP/nobody-1", "110", "--no-record")
    assert result.exit_code == 1 and "no such channel" in result.output


def test_threeway_nobody_answers_dispatches_the_tables_work_order(desk, routing_yaml):
    et, env, tmp_path = desk
    table = tmp_path / "routing.yaml"   # the shipped table, with a 1 s ring so the test stays short
    table.write_text(routing_yaml.read_text(encoding="utf-8").replace(
        "{kind: three_way, trunk: subcenter-12366, no_answer_seconds: 45", "{kind: three_way, trunk: subcenter-12366, "
        "no_answer_seconds: 1"), encoding="utf-8")
    caller, agent = et.call(et.emu.answered_call, "general-12345", AGENT, "4951234567", "12366")
    et.call(et.emu.script_target, "12366", False, 0.02)
    result = invoke({**env, "HOTLINE_ROUTING_TABLE": str(table)}, "transfer", "threeway", agent.name, "12366")
    assert result.exit_code == 3, result.output
    assert "no_answer" in result.output and "work order WO-" in result.output
    db = create_engine(env["HOTLINE_DB_URL"])
    orders = db.connect().execute(text("select line, category, target, department, uniqueid, status "
                                       "from work_orders")).all()
    assert [tuple(r) for r in orders] == [("12366", "subcenter", "subcenter-12366",
                                           "国家税务总局海南省税务局 12366 分中心", caller.uniqueid, "dispatched")]


def test_warm_transfer_nobody_answers_returns_without_a_work_order(desk, routing_yaml):
    et, env, tmp_path = desk
    table = tmp_path / "routing.yaml"
    table.write_text(routing_yaml.read_text(encoding="utf-8").replace(
        "trunk: seat-12348, no_answer_seconds: 30", "trunk: seat-12348, no_answer_seconds: 1"), encoding="utf-8")
    caller, agent = et.call(et.emu.answered_call, "general-12345", AGENT, "4951234567", "12348")
    et.call(et.emu.script_target, "12348", False, 0.02)
    result = invoke({**env, "HOTLINE_ROUTING_TABLE": str(table)}, "transfer", "warm", agent.name, "12348")
    assert result.exit_code == 3, result.output
    assert "work order" not in result.output
