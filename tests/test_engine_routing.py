"""Every category of the shipped Hainan table, as calls over real TCP: emulator -> FastAGI server -> engine ->
decide() -> IvrSession, checked by what Asterisk is told (the channel variables) and what the caller heard."""
from __future__ import annotations

import asyncio

import pytest

from routing.decide import decide
from routing.model import TransferKind
from tests.test_fastagi_support import HOLIDAY_3H, IN_TRANSITION, WORKDAY_10H, call, running_engine

CANCELLED = {"12396": "science-technology", "12336": "natural-resources", "12312": "commerce",
             "12301": "tourism", "12300": "telecom", "12356": "line-12356", "96119": "fire-safety",
             "12322": "earthquake"}


def tags(t) -> list[str]:
    return t.variables.get("HOTLINE_TAGS", "").split("+")


@pytest.mark.parametrize("number", sorted(CANCELLED))
async def test_cancelled_line_inside_transition_and_after(number):
    async with running_engine() as (server, _):
        during = await call(server, number, at=IN_TRANSITION)
        after = await call(server, number)                    # no test instant: today, by the engine's clock
    for t in (during, after):
        assert t.closed_by == "server" and not t.error
        assert t.destination == "queue general-12345"
        assert t.variables["HOTLINE_LINE"] == number and CANCELLED[number] in tags(t)
        assert t.variables["CALLERID(name)"] == f"[{number}] Probe Caller"
    assert "hotline/number-merged-into-12345" in during.heard
    assert "hotline/number-cancelled-dial-12345" in after.heard
    assert during.variables["HOTLINE_RULE"] == after.variables["HOTLINE_RULE"]


async def test_12349_lands_in_minors_protection():
    async with running_engine() as (server, _):
        during = await call(server, "12349", at=IN_TRANSITION)
        after = await call(server, "12349", at=WORKDAY_10H)
    assert during.destination == after.destination == "queue minors-protection"
    assert "hotline/minors-protection-now-12345" in after.heard


@pytest.mark.parametrize("number, tag", [("12318", "culture-market"), ("12317", "rural-revitalisation"),
                                         ("12367", "immigration")])
async def test_dual_lines_go_straight_to_12345_with_their_tag(number, tag):
    async with running_engine() as (server, _):
        t = await call(server, number, at=WORKDAY_10H)
    assert t.destination == "queue general-12345" and tag in tags(t)
    assert t.variables["HOTLINE_LINE"] == number


async def test_12320_expert_seat_and_its_menu():
    async with running_engine() as (server, _):
        expert = await call(server, "12320", ["1"], at=WORKDAY_10H)
        general = await call(server, "12320", ["2"], at=WORKDAY_10H)
        night = await call(server, "12320", ["1"], at=HOLIDAY_3H)
    assert expert.destination == "queue expert-12320" and "health" in tags(expert)
    assert any("expert-12320-menu" in h for h in expert.heard)
    assert general.destination == "queue general-12345"
    assert night.destination == "queue general-12345"          # expert seat closed: its when_closed queue


async def test_12329_expert_seat():
    async with running_engine() as (server, _):
        t = await call(server, "12329", at=WORKDAY_10H)
    assert t.destination == "queue expert-12329" and "housing-fund" in tags(t)


class RouteSpy:
    """The real decide(), remembering what it returned per dialed number (to see transfer options)."""

    def __init__(self) -> None:
        self.routes = {}

    def __call__(self, table, dialed, caller, at, history=None):
        route = decide(table, dialed, caller, at, history)
        self.routes[dialed] = route
        return route


@pytest.mark.parametrize("number", ["12348", "12333"])
async def test_retained_seats_answered_by_12345_with_attended_transfer(number):
    spy = RouteSpy()
    async with running_engine(decide_fn=spy) as (server, _):
        t = await call(server, number, at=WORKDAY_10H)
    assert t.destination == "queue general-12345"
    (transfer,) = spy.routes[number].transfers
    assert transfer.kind is TransferKind.ATTENDED and transfer.trunk == f"seat-{number}"


@pytest.mark.parametrize("number, tag", [("12360", "customs"), ("12366", "tax"), ("12305", "postal")])
async def test_subcenters_general_vs_specialist(number, tag):
    spy = RouteSpy()
    async with running_engine(decide_fn=spy) as (server, _):
        general = await call(server, number, ["1"], at=WORKDAY_10H)
        specialist = await call(server, number, ["2"], at=WORKDAY_10H)
    assert general.destination == specialist.destination == "queue general-12345"
    assert tag in tags(general) and "specialist" not in tags(general)
    assert tag in tags(specialist) and "specialist" in tags(specialist)
    assert general.variables["HOTLINE_IVR_PATH"] == "subcenter>1"
    kinds = {tr.kind: tr.trunk for tr in spy.routes[number].transfers}
    assert kinds[TransferKind.THREE_WAY] == f"subcenter-{number}" and TransferKind.WORK_ORDER in kinds


@pytest.mark.parametrize("number", ["110", "119", "120", "122"])
@pytest.mark.parametrize("at", [HOLIDAY_3H, WORKDAY_10H, None])
async def test_emergency_lines_dial_their_trunk_at_any_hour(number, at):
    async with running_engine() as (server, _):
        t = await call(server, number, at=at)
    assert t.destination == f"dial trunk emergency-{number}"
    assert t.heard == [] and t.pressed == []                   # nothing between the caller and the dispatcher
    assert not any(cmd.startswith(("ANSWER", "STREAM", "GET OPTION", "GET DATA")) for cmd, _ in t.exchanges)


async def test_12345_main_menu_choices():
    async with running_engine() as (server, _):
        agent = await call(server, "12345", ["0"], at=WORKDAY_10H)
        complaint = await call(server, "12345", ["2"], at=WORKDAY_10H)
        haikou = await call(server, "12345", ["5", "1"], at=WORKDAY_10H)
        minors = await call(server, "12345", ["4"], at=HOLIDAY_3H)
    assert agent.destination == complaint.destination == "queue general-12345"
    assert "complaint" in tags(complaint)
    assert haikou.destination == "queue city-haikou" and haikou.variables["HOTLINE_IVR_PATH"] == "main>5>cities>1"
    assert minors.destination == "queue general-12345"         # minors seat closed at 03:00: its fallback


async def test_unknown_number_gets_general_handling():
    async with running_engine() as (server, _):
        t = await call(server, "99999", ["0"], at=WORKDAY_10H)
    assert t.destination == "queue general-12345" and t.variables["HOTLINE_LINE"] == "12345"


async def test_hangup_during_a_prompt_then_next_call_is_served():
    async with running_engine() as (server, _):
        gone = await call(server, "12345", ["hangup"], at=WORKDAY_10H)
        nxt = await call(server, "12345", ["2"], at=WORKDAY_10H)
    assert gone.hungup and gone.closed_by == "server"
    # the dialplan still finds a decision (a Redirect looks like a hang-up and must not lose the call)
    assert gone.variables["HOTLINE_ACTION"] == "queue"
    # after result=-1 one CHANNEL STATUS probe (refused: 511, the channel is dead), then only SET VARIABLE
    replies = [r for _, r in gone.exchanges]
    first = next(i for i, r in enumerate(replies) if r.startswith("200 result=-1"))
    after = gone.exchanges[first + 1:]
    assert after[0][0] == "CHANNEL STATUS" and after[0][1].startswith("511")
    assert after[1:] and all(cmd.startswith("SET VARIABLE") for cmd, _ in after[1:])
    assert nxt.destination == "queue general-12345" and "complaint" in tags(nxt)


async def test_hangup_notice_arriving_mid_dead_mode_never_shifts_replies():
    """The lone HANGUP line lands between replies; every later reply still answers its own command."""
    async with running_engine() as (server, _):
        t = await call(server, "12320", [], hangup_at=4, at=WORKDAY_10H, hangup_notice_delay=0.0)
        t2 = await call(server, "12320", [], hangup_at=4, at=WORKDAY_10H, hangup_notice_delay=0.005)
    for tr in (t, t2):
        assert tr.exchanges[4][1] == "200 result=-1 endpos=0"     # GET OPTION: hung up during the menu
        assert tr.hungup and tr.variables["HOTLINE_ACTION"] == "queue"
        assert tr.variables["HOTLINE_TARGET"] == "expert-12320"


async def test_invalid_digits_until_retries_run_out():
    async with running_engine() as (server, _):
        t = await call(server, "12345", ["7", "7", "7"], at=WORKDAY_10H)
    assert t.heard.count("hotline/zh/invalid-choice") == 3
    assert t.variables["HOTLINE_IVR_PATH"] == "main>7>7>7"
    assert t.destination == "queue general-12345"              # after the retries: an agent


async def test_timeouts_until_retries_run_out():
    async with running_engine() as (server, _):
        t = await call(server, "12345", ["timeout", "timeout", "timeout"], at=WORKDAY_10H)
    assert t.pressed == ["timeout"] * 3 and t.heard.count("hotline/zh/no-input") == 2
    assert t.destination == "queue general-12345"


async def test_language_choice():
    async with running_engine() as (server, _):
        t = await call(server, "12345", ["9", "2"], at=WORKDAY_10H)
    assert t.variables["HOTLINE_LANG"] == "en" and t.variables["CHANNEL(language)"] == "en"
    assert "hotline/en/main-menu" in t.heard
    assert t.destination == "queue general-12345"


async def test_calls_in_parallel_do_not_mix():
    async with running_engine() as (server, _):
        numbers = ["12320", "110", "12345", "12349", "12360"] * 4
        results = await asyncio.gather(*(call(server, n, ["1"], at=WORKDAY_10H) for n in numbers))
    for n, t in zip(numbers, results):
        assert t.env["extension"] == n and t.variables["HOTLINE_LINE"] in (n, "12345")
        assert not t.error


async def test_hangup_between_commands_lone_hangup_line_with_nothing_pending():
    """The HANGUP line arrives while no command is pending; the next reply (511) still answers its command."""
    async with running_engine() as (server, _):
        # commands: GET VARIABLE HOTLINE_AT (0), ANSWER (1), SET VARIABLE CHANNEL(language) (2): gone after it
        t = await call(server, "12345", [], hangup_at=2, at=WORKDAY_10H, hangup_notice_delay=0.0)
        nxt = await call(server, "12345", ["2"], at=WORKDAY_10H)
    assert t.hungup and t.variables["HOTLINE_ACTION"] == "queue"
    assert t.exchanges[2] == ("SET VARIABLE CHANNEL(language) zh", "200 result=1")
    assert any(reply.startswith("511") for _, reply in t.exchanges[3:])
    assert nxt.destination == "queue general-12345"
