"""The AMI transfers and the generated dialplan must agree: every context, extension and variable the transfer
driver sends over AMI exists in what `hotline dialplan render` produces for the shipped table, and leads where
the transfer means to go. A rename on either side fails here, not on a live call."""
from __future__ import annotations

import pytest

from dialplan.render import render
from dialplan.walk import parse, run
from ivr.ami.contract import DEFAULT_DIALPLAN as D
from routing.loader import load_table


@pytest.fixture(scope="module")
def plan(routing_yaml):
    files = render(load_table(routing_yaml))
    return parse(files["extensions_hotline.conf"])


@pytest.fixture(scope="module")
def table(routing_yaml):
    return load_table(routing_yaml)


def test_three_way_room_roles_exist_and_join_the_conference(plan):
    for exten in (D.caller_exten, D.agent_exten, D.target_exten):
        assert plan.match(D.threeway_context, exten) == exten
        call = run(plan, D.threeway_context, exten, {D.conf_var: "42"},
                   effects={"ConfBridge": lambda c, a: {"__end__": "answered"}})
        conf = [s for s in call.trace if s.app == "ConfBridge"]
        assert conf, f"{exten} never joins the room"
        # the room is the AMI-set variable, filtered to safe characters, behind the shared prefix
        assert conf[0].args.startswith(D.room_prefix) and call.variables.get("HOTLINE_ROOM") == "42"


@pytest.mark.parametrize("kind", ["retained_seat", "subcenter", "emergency"])
def test_every_transfer_trunk_is_dialable_by_its_digits(plan, table, kind):
    trunks = [t for t in table.trunks.values() if t.kind == kind]
    assert trunks
    for trunk in trunks:
        context = D.warm_context if kind != "subcenter" else D.threeway_context
        assert plan.match(context, trunk.dial), f"{trunk.dial} missing in {context}"
        call = run(plan, context, trunk.dial, {D.conf_var: "42"},
                   effects={"Dial": lambda c, a: {"__end__": "answered"},
                            "ConfBridge": lambda c, a: {"__end__": "answered"}})
        assert any(trunk.id in d for d in call.dials), (trunk.id, call.dials)
        assert not call.queues, "a transfer leg is never queued"


def test_escalation_reaches_every_expert_queue_with_context_kept(plan, table):
    for queue in ("expert-12320", "expert-12329"):
        call = run(plan, D.escalate_context, queue, {"HOTLINE_LINE": "12320"},
                   effects={"Queue": lambda c, a: {"__end__": "answered"}})
        assert call.queues and call.queues[0].startswith(queue)
        assert call.variables.get("HOTLINE_LINE") == "12320"
