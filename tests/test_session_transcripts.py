"""The session reads real Asterisk 22 replies (tests/transcripts/fastagi-*.txt) the way the transcripts show them."""
from __future__ import annotations

from pathlib import Path

import pytest

from ivr.agi.codec import ResponseParser, parse_env
from ivr.agi.commands import ChannelStatus, GetOption, Response
from ivr.agi.transcript import load_transcript
from ivr.session import IvrSession, digits_of, key_of
from routing.decide import decide
from tests.test_session_flows import DAY, MENUS, TABLE, respond

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"


def replies(name: str, command_prefix: bytes) -> list[list[Response]]:
    out = []
    for exchange in load_transcript(TRANSCRIPTS / f"fastagi-{name}.txt").exchanges:
        if exchange.command.startswith(command_prefix):
            out.append(ResponseParser().feed(exchange.reply))
    return out


@pytest.mark.parametrize("name, digits", [("queue-answered", "1"), ("queue-redirect", "2"), ("atxfer", "1")])
def test_get_data_digits_from_real_replies(name, digits):
    answers = [r for r in replies(name, b"GET DATA ") if r]
    assert [digits_of(r[0]) for r in answers] == [digits]


def test_a_fully_played_prompt_is_no_key():
    (played,) = replies("queue-answered", b"STREAM FILE hello-world")
    assert played[0].endpos == 11234 and key_of(played[0]) == "" and not played[0].hungup


@pytest.mark.parametrize("name", ["agi-hangup", "agi-redirect"])
def test_hangup_and_redirect_during_get_data_end_the_session(name):
    (pending,) = replies(name, b"GET DATA ")
    assert pending[0].hungup                       # 200 result=-1; the lone HANGUP line follows
    dead = replies(name, b"STREAM FILE ")[0][-1]
    assert dead.code == 511 and dead.hungup

    script = iter([pending[0]])
    env = parse_env(load_transcript(TRANSCRIPTS / f"fastagi-{name}.txt").env_block)
    session = IvrSession(env, decide(TABLE, "12345", env.get("callerid"), DAY), MENUS, TABLE)
    # the session's probe after -1 (a hang-up, or a sound Asterisk cannot open?) meets the recorded 511
    outcome, sent = respond(session, lambda cmd: next(script) if isinstance(cmd, GetOption)
                            else dead if isinstance(cmd, ChannelStatus) else Response(200, result=1))
    assert outcome.hungup and outcome.ivr_path == ("main",)


def test_the_recorded_environment_names_the_line_for_agents():
    env = parse_env(load_transcript(TRANSCRIPTS / "fastagi-queue-answered.txt").env_block)
    assert env["arg_1"] == "12320" and env["language"] == "en"
    session = IvrSession(env, decide(TABLE, env["arg_1"], env["callerid"], DAY), MENUS, TABLE)
    keys = iter([Response(200, result=ord("1"), endpos=100, raw="200 result=49 endpos=100")])
    outcome, sent = respond(session, lambda cmd: next(keys) if isinstance(cmd, GetOption)
                            else Response(200, result=1))
    assert outcome.variables["CALLERID(name)"] == "[12320] Probe Caller"
    assert outcome.target == "expert-12320" and outcome.variables["HOTLINE_LINE"] == "12320"
