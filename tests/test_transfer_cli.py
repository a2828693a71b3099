"""`hotline transfer` records what it did: a three-way transfer nobody answered names the work order it
dispatched (defect 8); emulator over TCP, as in tests/test_ami_cli.py."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.test_ami_cli import AGENT, desk, invoke  # noqa: F401  (desk is a fixture)


def test_threeway_record_names_the_work_order_it_dispatched(desk, routing_yaml):  # noqa: F811
    et, env, tmp_path = desk
    table = tmp_path / "routing.yaml"
    table.write_text(routing_yaml.read_text(encoding="utf-8").replace(
        "{kind: three_way, trunk: subcenter-12360, no_answer_seconds: 45", "{kind: three_way, trunk: subcenter-12360, "
        "no_answer_seconds: 1"), encoding="utf-8")
    caller, agent = et.call(et.emu.answered_call, "general-12345", AGENT, "4951234567", "12360")
    et.call(et.emu.script_target, "12360", False, 0.02)
    result = invoke({**env, "HOTLINE_ROUTING_TABLE": str(table)}, "transfer", "threeway", agent.name, "12360")
    assert result.exit_code == 3, result.output
    db = create_engine(env["HOTLINE_DB_URL"])
    with db.connect() as conn:
        (number,) = conn.execute(text("select number from work_orders")).one()
        rows = conn.execute(text("select kind, outcome, uniqueid, work_order from transfers")).all()
    assert [tuple(r) for r in rows] == [("three_way", "no_answer", caller.uniqueid, number)]
    assert f"work order {number} dispatched" in result.output


def test_answered_transfer_records_no_work_order(desk):  # noqa: F811
    et, env, _ = desk
    _, agent = et.call(et.emu.answered_call, "general-12345", AGENT, "4951234567", "12360")
    et.call(et.emu.script_target, "12360", True, 0.02)
    result = invoke(env, "transfer", "threeway", agent.name, "12360")
    assert result.exit_code == 0, result.output
    rows = create_engine(env["HOTLINE_DB_URL"]).connect().execute(
        text("select kind, outcome, work_order from transfers")).all()
    assert [tuple(r) for r in rows] == [("three_way", "answered", None)]


def test_a_subcenter_down_switch_leaves_the_agent_only_the_work_order(desk):  # noqa: F811
    from datetime import datetime, timezone

    from records.switches import SwitchStore

    et, env, _ = desk
    _, agent = et.call(et.emu.answered_call, "general-12345", AGENT, "4951234567", "12366")
    SwitchStore.for_url(env["HOTLINE_DB_URL"]).flip("subcenter-12366-down", True, by="admin", via="cli",
                                                   why="outage", at=datetime.now(timezone.utc))
    result = invoke(env, "transfer", "threeway", agent.name, "12366")
    assert result.exit_code == 1 and "line 12366 offers no three_way transfer (offered: work_order:None)" in \
        result.output, result.output
