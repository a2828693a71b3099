"""On a valid table the decision never raises and always names a destination, for any input."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from routing.decide import decide
from routing.loader import load_table
from routing.model import Action, CallerHistory
from tests.conftest import CONF

TABLE = load_table(CONF / "routing.yaml")
KNOWN = sorted(TABLE.lines)

numbers = st.one_of(st.sampled_from(KNOWN), st.text(max_size=24), st.from_regex(r"\+?[0-9 -]{0,20}", fullmatch=True))
instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                        timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=8)), TABLE.timezone]))
histories = st.one_of(st.none(), st.builds(CallerHistory, st.integers(min_value=0, max_value=10_000)))


@settings(max_examples=400, deadline=None)
@given(numbers, st.one_of(st.none(), st.text(max_size=20)), instants, histories)
def test_decision_is_total(dialed, caller, at, history):
    route = decide(TABLE, dialed, caller, at, history)
    if route.action in (Action.QUEUE, Action.CALLBACK):
        assert route.target in TABLE.queues
    elif route.action is Action.DIAL:
        assert route.target in TABLE.trunks
    else:
        assert route.prompts, "a hang-up always comes after an announcement"
    assert route.rule_id and route.reason


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["110", "119", "120", "122"]), instants, histories)
def test_emergency_is_always_dialed(number, at, history):
    route = decide(TABLE, number, "13800000000", at, history)
    assert route.action is Action.DIAL and route.target == f"emergency-{number}"
