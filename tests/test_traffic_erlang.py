"""Erlang C against a published worked example, and the forecast's monotony in load and target (issue 13)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traffic import erlang
from traffic.erlang import Target


# Call Centre Helper, "Erlang C Formula - Made Simple With an Easy Worked Example"
# (https://www.callcentrehelper.com/erlang-c-formula-example-121281.htm): 100 calls in 30 minutes, average
# handling time 180 s, target answer time 20 s, 80 % service level. Traffic intensity 10 Erlangs; the raw 11
# agents give P(wait) 68.21 % and a service level of 39.0 %; 14 agents are needed (P(wait) 17.41 %, service
# level 88.8 %, ASA 7.8 s). The same figures, to 7 places, in the CRAN package ErlangC's README
# (erlang_c(100, 30 min, 180 s, 20 s, 14): wait_probability 0.1741319, service_level 0.88835,
# average_speed_of_answer 7.83593701177724 s; its process table: 11 agents 0.6821182 / 0.3896138).
CALLS_PER_HOUR, AHT, SECONDS = 200.0, 180.0, 20.0
LOAD = CALLS_PER_HOUR * AHT / 3600


def test_traffic_intensity_of_the_worked_example():
    assert LOAD == pytest.approx(10.0)


@pytest.mark.parametrize("agents, p_wait, sl", [(11, 0.6821182, 0.3896138), (14, 0.1741319, 0.88835)])
def test_probability_of_waiting_and_service_level(agents, p_wait, sl):
    assert erlang.prob_wait(LOAD, agents) == pytest.approx(p_wait, abs=5e-7)
    assert erlang.service_level(LOAD, agents, AHT, SECONDS) == pytest.approx(sl, abs=5e-6)


def test_average_speed_of_answer():
    assert erlang.average_speed_of_answer(LOAD, 14, AHT) == pytest.approx(7.83593701177724, rel=1e-9)


def test_agents_needed_for_80_in_20():
    assert erlang.agents_needed(CALLS_PER_HOUR, AHT, Target(0.80, 20)) == 14
    assert erlang.service_level(LOAD, 13, AHT, SECONDS) < 0.80    # 13 would not do


def test_no_calls_no_agents_and_unstable_queues():
    assert erlang.agents_needed(0, AHT, Target()) == 0
    assert erlang.prob_wait(10, 10) == 1.0 and erlang.service_level(10, 9, AHT, 20) == 0.0


def test_target_parsing():
    assert Target.parse("80/15") == Target(0.80, 15.0) and str(Target.parse("90/20")) == "90/20"
    for bad in ("80", "x/15", "100/15", "80/-1"):
        with pytest.raises(ValueError):
            Target.parse(bad)


@settings(max_examples=150, deadline=None)
@given(rate=st.floats(0.5, 3000), more=st.floats(0, 500), aht=st.floats(10, 900),
       share=st.floats(0.5, 0.95), seconds=st.floats(1, 60))
def test_agents_are_monotone_in_load_and_in_the_target(rate, more, aht, share, seconds):
    base = erlang.agents_needed(rate, aht, Target(share, seconds))
    assert erlang.agents_needed(rate + more, aht, Target(share, seconds)) >= base
    assert erlang.agents_needed(rate, aht, Target(min(share + 0.04, 0.99), seconds)) >= base
    assert erlang.agents_needed(rate, aht, Target(share, max(seconds - 5, 0))) >= base   # a shorter answer time
