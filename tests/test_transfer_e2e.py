"""Every transfer kind end to end: TransferDriver -> AmiClient -> real TCP -> AmiEmulator."""
from __future__ import annotations

import asyncio

import pytest

from ivr.ami.client import AmiClient
from ivr.ami.emulator import AmiEmulator
from ivr.ami.transfers import TransferDriver, TransferRequest, conference_room
from records.types import TransferOutcome, TransferRecord, TransferRecordKind
from routing.model import TransferKind

SECRET = "s3cret"
AGENT = "Local/agent1@queue-agents/n"
EXPERT = "Local/expert1@queue-agents/n"


@pytest.fixture
async def emulator():
    emu = AmiEmulator(secret=SECRET)
    emu.add_queue("general-12345", "rrmemory")
    emu.add_member("general-12345", AGENT, "Agent One")
    emu.add_queue("expert-12320")
    emu.add_member("expert-12320", EXPERT, "Expert One")
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def client(emulator):
    c = AmiClient("127.0.0.1", emulator.port, "hotline", SECRET, reconnect_first_delay=0.01,
                  reconnect_max_delay=0.05, action_timeout=2)
    await c.start()
    yield c
    await c.close()


@pytest.fixture
def records() -> list[TransferRecord]:
    return []


@pytest.fixture
def driver(client, records):
    return TransferDriver(client, on_record=records.append)


async def eventually(predicate, timeout: float = 3.0) -> None:
    async def poll():
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def peers(emu: AmiEmulator, channel: str) -> set[str]:
    bridge = emu.channels[channel].bridge
    return set(emu.bridges.get(bridge, set())) - {channel} if bridge else set()


def warm(caller, agent, seconds=2.0, dial="12348") -> TransferRequest:
    return TransferRequest(TransferKind.ATTENDED, uniqueid=caller.uniqueid, caller_channel=caller.name,
                           agent_channel=agent.name, agent=AGENT, from_line=dial, target_trunk=f"seat-{dial}",
                           dial=dial, no_answer_seconds=seconds)


def threeway(caller, agent, seconds=2.0, dial="12360", trunk="subcenter-12360") -> TransferRequest:
    return TransferRequest(TransferKind.THREE_WAY, uniqueid=caller.uniqueid, caller_channel=caller.name,
                           agent_channel=agent.name, agent=AGENT, from_line="12360", target_trunk=trunk,
                           dial=dial, no_answer_seconds=seconds)


# -- warm (attended) -------------------------------------------------------------------------------------------------
async def test_warm_transfer_answered(emulator, driver, records):
    caller, agent = emulator.answered_call("general-12345", AGENT, dialed="12348")
    emulator.script_target("12348", answers=True, delay=0.05)
    record = await asyncio.wait_for(driver.run(warm(caller, agent)), 5)
    assert record.outcome is TransferOutcome.ANSWERED and record.kind is TransferRecordKind.ATTENDED
    assert records == [record]
    assert (record.from_line, record.first_line, record.target_trunk) == ("12348", "12345", "seat-12348")
    assert record.ended_at >= record.started_at
    (target,) = peers(emulator, caller.name)
    assert target.startswith("Local/12348@hotline-warm-transfer-")
    assert agent.name not in emulator.channels                          # the agent is free again
    assert emulator.count("Atxfer") == 1


async def test_warm_transfer_nobody_answers_caller_returns_to_agent(emulator, driver, records):
    caller, agent = emulator.answered_call("general-12345", AGENT, dialed="12348")
    emulator.script_target("12348", answers=True, delay=30)            # would answer, but far too late
    record = await asyncio.wait_for(driver.run(warm(caller, agent, seconds=0.3)), 5)
    assert record.outcome is TransferOutcome.RETURNED
    assert peers(emulator, caller.name) == {agent.name}
    assert emulator.count("Hangup") == 1 and emulator.count("Atxfer") == 1
    assert [r.outcome for r in records] == [TransferOutcome.RETURNED]


async def test_warm_transfer_target_rejects(emulator, driver):
    caller, agent = emulator.answered_call("general-12345", AGENT, dialed="12333")
    emulator.script_target("12333", answers=False, delay=0.05)
    record = await asyncio.wait_for(driver.run(warm(caller, agent, dial="12333")), 5)
    assert record.outcome is TransferOutcome.RETURNED
    assert peers(emulator, caller.name) == {agent.name}


async def test_warm_transfer_fails_cleanly_when_the_link_drops(emulator, client, driver, records):
    caller, agent = emulator.answered_call("general-12345", AGENT, dialed="12348")
    emulator.script_target("12348", answers=True, delay=30)
    run = asyncio.ensure_future(driver.run(warm(caller, agent, seconds=20)))
    await eventually(lambda: emulator.count("Atxfer") == 1 and any(
        c.startswith("Local/12348@") for c in emulator.channels))
    emulator.drop_connections()
    record = await asyncio.wait_for(run, 5)
    assert record.outcome is TransferOutcome.FAILED
    assert records == [record]
    await eventually(lambda: client.connected)
    assert emulator.count("Atxfer") == 1                                # never re-sent


async def test_warm_transfer_on_missing_channel_is_a_recorded_failure(emulator, driver, records):
    caller, agent = emulator.answered_call("general-12345", AGENT)
    request = TransferRequest(TransferKind.ATTENDED, uniqueid=caller.uniqueid, caller_channel=caller.name,
                              agent_channel="Local/gone@queue-agents-00000099;1", from_line="12348",
                              target_trunk="seat-12348", dial="12348")
    record = await asyncio.wait_for(driver.run(request), 5)
    assert record.outcome is TransferOutcome.FAILED
    assert "Channel specified does not exist" in driver.last_machine.reason
    assert records == [record]


# -- three-way -------------------------------------------------------------------------------------------------------
async def test_threeway_answered_puts_all_three_in_one_conference(emulator, driver, records):
    caller, agent = emulator.answered_call("general-12345", AGENT, dialed="12360")
    emulator.script_target("12360", answers=True, delay=0.05)
    record = await asyncio.wait_for(driver.run(threeway(caller, agent)), 5)
    assert record.outcome is TransferOutcome.ANSWERED and record.kind is TransferRecordKind.THREE_WAY
    room = f"conf-hotline-{conference_room(caller.uniqueid)}"
    members = emulator.bridges[room]
    assert {caller.name, agent.name} < members and len(members) == 3
    assert emulator.count("Originate") == 1
    emulator.hangup(agent.name)                                         # the agent may leave
    assert emulator.bridges[room] == members - {agent.name} and caller.name in emulator.channels


async def test_threeway_nobody_answers_caller_stays_with_agent(emulator, driver, records):
    caller, agent = emulator.answered_call("general-12345", AGENT, dialed="12366")
    emulator.script_target("12366", answers=True, delay=30)
    record = await asyncio.wait_for(driver.run(threeway(caller, agent, seconds=0.3, dial="12366",
                                                        trunk="subcenter-12366")), 5)
    assert record.outcome is TransferOutcome.NO_ANSWER
    assert peers(emulator, caller.name) == {agent.name}
    assert emulator.count("Originate") == 1 and emulator.count("Redirect") == 0


async def test_threeway_link_drop_mid_transfer_fails_and_never_originates_twice(emulator, client, driver,
                                                                                records):
    caller, agent = emulator.answered_call("general-12345", AGENT, dialed="12305")
    emulator.script_target("12305", answers=True, delay=0.5)
    run = asyncio.ensure_future(driver.run(threeway(caller, agent, seconds=5, dial="12305",
                                                    trunk="subcenter-12305")))
    await eventually(lambda: emulator.count("Originate") == 1)
    emulator.drop_connections()
    record = await asyncio.wait_for(run, 5)
    assert record.outcome is TransferOutcome.FAILED
    await eventually(lambda: client.connected and client.logins == 2)
    await asyncio.sleep(0.6)                                            # past the moment the target answers
    assert emulator.count("Originate") == 1 and emulator.count("Redirect") == 0
    assert records == [record]
    # after the reconnect a new attempt works on the new link
    emulator.script_target("12305", answers=True, delay=0.02)
    again = await asyncio.wait_for(driver.run(threeway(caller, agent, seconds=5, dial="12305",
                                                       trunk="subcenter-12305")), 5)
    assert again.outcome is TransferOutcome.ANSWERED
    assert [r.outcome for r in records] == [TransferOutcome.FAILED, TransferOutcome.ANSWERED]


async def test_threeway_caller_hangs_up_while_the_target_rings(emulator, driver, records):
    caller, agent = emulator.answered_call("general-12345", AGENT, dialed="12360")
    emulator.script_target("12360", answers=True, delay=30)
    run = asyncio.ensure_future(driver.run(threeway(caller, agent, seconds=20)))
    await eventually(lambda: any(c.startswith("Local/12360@hotline-threeway-") for c in emulator.channels))
    emulator.hangup(caller.name)
    record = await asyncio.wait_for(run, 5)
    assert record.outcome is TransferOutcome.FAILED and records == [record]
    assert not any(c.startswith("Local/12360@") for c in emulator.channels)     # the ringing leg is gone too
    assert emulator.count("Redirect") == 0


async def test_threeway_emergency_linkage(emulator, driver):
    caller, agent = emulator.answered_call("general-12345", AGENT, dialed="12345")
    emulator.script_target("119", answers=True, delay=0.02)
    record = await asyncio.wait_for(driver.run(threeway(caller, agent, dial="119", trunk="emergency-119")), 5)
    assert record.outcome is TransferOutcome.ANSWERED and record.target_trunk == "emergency-119"


# -- emergency hand-over ----------------------------------------------------------------------------------------------
def handover(caller, seconds=2.0, first_line="12345", dial="110") -> TransferRequest:
    return TransferRequest(TransferKind.HANDOVER, uniqueid=caller.uniqueid, caller_channel=caller.name,
                           from_line=dial, first_line=first_line, target_trunk=f"emergency-{dial}", dial=dial,
                           no_answer_seconds=seconds, agent=AGENT)


async def answered_and_seen(emulator, client, **call):
    """A queue call answered, and its events read by the client: the queue's own DialBegin/DialEnd (Channel =
    the caller, as Asterisk sends them) must not reach a machine started afterwards (real calls talk first)."""
    bridged = []
    unsubscribe = client.on_event(lambda e: bridged.append(e) if e.get("Event") == "BridgeEnter" else None)
    try:
        caller, agent = emulator.answered_call("general-12345", AGENT, **call)
        await eventually(lambda: len(bridged) >= 2)
    finally:
        unsubscribe()
    return caller, agent


async def test_handover_answered_records_the_first_line(emulator, client, driver, records):
    caller, agent = await answered_and_seen(emulator, client, dialed="12345")
    emulator.script_target("110", answers=True, delay=0.05)
    record = await asyncio.wait_for(driver.run(handover(caller)), 5)
    assert record.outcome is TransferOutcome.ANSWERED and record.kind is TransferRecordKind.HANDOVER
    assert (record.first_line, record.target_trunk) == ("12345", "emergency-110")
    (target,) = peers(emulator, caller.name)
    assert target.startswith("PJSIP/emergency-110-")                      # dialed from hotline-emergency
    assert agent.name not in emulator.channels


async def test_handover_to_an_unreachable_trunk_is_reported_not_a_hang_up(emulator, client, driver):
    caller, _ = await answered_and_seen(emulator, client, dialed="12345")
    emulator.script_target("110", reachable=False)
    record = await asyncio.wait_for(driver.run(handover(caller)), 5)
    assert record.outcome is TransferOutcome.FAILED
    assert "emergency-110 unreachable" in driver.last_machine.reason
    assert "before the hand-over was dialed" not in driver.last_machine.reason


async def test_handover_nobody_answers_is_recorded_as_no_answer(emulator, client, driver):
    caller, _ = await answered_and_seen(emulator, client, dialed="12345")
    emulator.script_target("120", answers=False, delay=0.05)
    record = await asyncio.wait_for(driver.run(handover(caller, dial="120")), 5)
    assert record.outcome is TransferOutcome.NO_ANSWER
    assert "not reached after 1 attempt(s) (noanswer)" in driver.last_machine.reason


# -- escalation -------------------------------------------------------------------------------------------------------
def escalate(caller, seconds=2.0) -> TransferRequest:
    return TransferRequest(TransferKind.ESCALATE, uniqueid=caller.uniqueid, caller_channel=caller.name,
                           from_line="12320", target_queue="expert-12320", no_answer_seconds=seconds,
                           ivr_path=("main", "1", "expert-12320"), agent=AGENT)


async def test_escalation_keeps_context_and_reaches_an_expert(emulator, driver, records):
    caller, agent = emulator.answered_call("general-12345", AGENT, dialed="12320")
    run = asyncio.ensure_future(driver.run(escalate(caller)))
    await eventually(lambda: caller.name in emulator.queues["expert-12320"].callers)
    assert caller.variables["HOTLINE_LINE"] == "12320"
    assert caller.variables["HOTLINE_IVR_PATH"] == "main>1>expert-12320"
    expert = emulator.ring_agent(caller.name, EXPERT)
    emulator.agent_answers(caller.name, expert.name)
    record = await asyncio.wait_for(run, 5)
    assert record.outcome is TransferOutcome.ANSWERED and record.target_queue == "expert-12320"
    assert agent.name not in emulator.channels


async def test_escalation_without_an_expert_in_time(emulator, driver):
    caller, _ = emulator.answered_call("general-12345", AGENT, dialed="12320")
    record = await asyncio.wait_for(driver.run(escalate(caller, seconds=0.2)), 5)
    assert record.outcome is TransferOutcome.NO_ANSWER
    assert caller.name in emulator.queues["expert-12320"].callers        # still waiting for an expert


async def test_transfer_while_link_down_is_a_recorded_failure(emulator, records):
    c = AmiClient("127.0.0.1", emulator.port, "hotline", SECRET)     # never started
    caller, agent = emulator.answered_call("general-12345", AGENT)
    record = await TransferDriver(c, on_record=records.append).run(warm(caller, agent))
    assert record.outcome is TransferOutcome.FAILED and records == [record]
    assert emulator.count("Atxfer") == 0
