"""Whatever Asterisk answers (keys, digits, timeouts, hang-ups, 510/511/520, junk), the session never raises,
always ends within a bounded number of commands, and leaves a decision for the dialplan."""
from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.agi.commands import ChannelStatus, HANGUP_NOTICE, Response, SetVariable
from ivr.session import IvrSession
from routing.decide import decide
from routing.model import Action
from tests.test_session_flows import DAY, MENUS, NIGHT, TABLE, custom_menus, env_for

MAX_COMMANDS = 250

KEYS = [Response(200, result=ord(k), endpos=4000, raw=f"200 result={ord(k)} endpos=4000") for k in "0123456789*#"]
FIXED = KEYS + [
    Response(200, result=0, endpos=8000, raw="200 result=0 endpos=8000"),
    Response(200, result=None, data="timeout", raw="200 result= (timeout)"),
    Response(200, result=None, raw="200 result="),
    Response(200, result=13900001111, raw="200 result=13900001111"),
    Response(200, result=None, raw="200 result=*#"),
    Response(200, result=1, data="timeout", raw="200 result=1 (timeout)"),
    Response(200, result=-1, raw="200 result=-1"),
    HANGUP_NOTICE,
    Response(510, raw="510 Invalid or unknown command"),
    Response(511, raw="511 Command Not Permitted on a dead channel or intercept routine"),
    Response(520, usage="Usage: GET DATA", raw="520-Invalid command syntax.  Proper usage follows:\n520 End"),
    Response(200),
    Response(0),
]
digits = st.text(alphabet="0123456789*#x", max_size=24).map(
    lambda d: Response(200, result=int(d) if d.isdigit() else None, raw=f"200 result={d}"))
numbers = st.integers(min_value=-5, max_value=10**6).map(lambda r: Response(200, result=r))
responses = st.lists(st.one_of(st.sampled_from(FIXED), digits, numbers), max_size=80)

ROUTES = [decide(TABLE, number, "13812345678", at) for number in ("12345", "12320", "12366", "110", "12399")
          for at in (DAY, NIGHT)]
ROUTES.append(dataclasses.replace(ROUTES[0], action=Action.CALLBACK, target="general-12345", menu=None))
ROUTES.append(dataclasses.replace(ROUTES[0], prompts=("hotline/welcome-12345",)))
MENU_SETS = [MENUS, custom_menus(), custom_menus(barge=False, digits=1, key="1")]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES), menus=st.sampled_from(MENU_SETS), replies=responses,
       at=st.sampled_from([None, DAY, NIGHT]), caller=st.sampled_from(["13812345678", None]))
def test_any_replies_end_the_session_with_a_decision(route, menus, replies, at, caller):
    if menus is not MENUS and route.menu not in menus:
        route = dataclasses.replace(route, menu="main" if route.menu else None)
    session = IvrSession(env_for(route.dialed, caller=caller), route, menus, TABLE, at=at)
    gen = session.run()
    sent = [next(gen)]
    given_replies = []
    outcome = None
    for i in range(MAX_COMMANDS):
        reply = replies[i] if i < len(replies) else Response(200, result=0, raw="200 result=0")
        given_replies.append(reply)
        try:
            sent.append(gen.send(reply))
        except StopIteration as stop:
            outcome = stop.value
            break
    assert outcome is not None, f"no end after {MAX_COMMANDS} commands"

    assert isinstance(outcome.action, Action)
    assert outcome.variables["HOTLINE_ACTION"] == outcome.action.value
    last_set = [c for c in sent if isinstance(c, SetVariable)][-1]
    assert last_set.name == "HOTLINE_ACTION"
    dead = next((i for i, r in enumerate(given_replies) if r.hungup), None)
    if dead is not None:
        rest = sent[dead + 1:]
        if rest and isinstance(rest[0], ChannelStatus):
            rest = rest[1:]          # the probe: a hang-up, or a sound Asterisk cannot open?
        assert all(isinstance(c, SetVariable) for c in rest)
    if outcome.hungup:
        assert dead is not None
    if outcome.action is Action.CALLBACK and not outcome.hungup:
        assert outcome.callback_number and outcome.callback_number.isdigit()
    if outcome.action in (Action.QUEUE, Action.CALLBACK):
        assert outcome.target in TABLE.queues
    assert all(">" not in step for step in outcome.ivr_path)
