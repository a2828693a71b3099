"""The rig itself: our rendered config loads on Asterisk 22, a call reaches the engine and an agent answers."""
from __future__ import annotations

import re

import pytest

from tests.asterisk.harness import place_call, vars_after_engine


@pytest.fixture(scope="module")
def rig(make_rig):
    return make_rig("smoke")


async def test_config_loads_without_errors(rig):
    log = rig.pbx.log_text("messages")
    assert "Unable to load config file 'extensions" not in log
    assert "hotline-from-carrier" in rig.pbx.cli("dialplan show hotline-from-carrier")
    assert "general-12345" in rig.pbx.cli("queue show general-12345")


async def test_12345_reaches_engine_and_an_agent_answers(rig):
    async with rig.ami() as ami:
        await ami.action("QueueAdd", Queue="general-12345", Interface="Local/ag1@test-agent/n", MemberName="ag1")
        try:
            tag = await place_call(ami, "12345", dtmf="1")
            values = await vars_after_engine(ami, tag)
            assert values["HOTLINE_ACTION"] == "queue"
            assert values["HOTLINE_TARGET"] == "general-12345"
            await ami.wait("QueueCallerJoin", Queue="general-12345", Uniqueid=re.escape(tag), timeout=10)
            await ami.wait("AgentConnect", Queue="general-12345", Uniqueid=re.escape(tag), timeout=10)
        finally:
            await ami.action("QueueRemove", Queue="general-12345", Interface="Local/ag1@test-agent/n")
            await ami.action("Hangup", Channel="/^Local/12345@hotline-from-carrier-.*/")
