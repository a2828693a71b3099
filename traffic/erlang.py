"""Erlang C (M/M/N, no abandonment): probability of waiting, service level, agents for a target.

Written here rather than taken from pyworkforce: its last installable release (0.5.1) pulls in ortools,
pandas and numpy (hundreds of MB) for the few lines below. Erlang B's recursion keeps it exact and stable
for hundreds of agents (no factorials, no overflow); Erlang C follows from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

MAX_AGENTS = 10_000


@dataclass(frozen=True)
class Target:
    """`share` of calls answered within `seconds` (80/15: 0.80 within 15 s)."""

    share: float = 0.80
    seconds: float = 15.0

    @classmethod
    def parse(cls, text: str) -> "Target":
        """'80/15' -> Target(0.80, 15)."""
        try:
            share, seconds = text.split("/")
            target = cls(float(share) / 100.0, float(seconds))
        except ValueError:
            raise ValueError(f"target {text!r}: expected PERCENT/SECONDS, e.g. 80/15") from None
        if not (0 < target.share < 1) or target.seconds < 0:
            raise ValueError(f"target {text!r}: percent must be between 0 and 100, seconds not negative")
        return target

    def __str__(self) -> str:
        return f"{self.share * 100:g}/{self.seconds:g}"


def erlang_b(load: float, agents: int) -> float:
    """Blocking probability of `agents` servers offered `load` Erlangs."""
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def prob_wait(load: float, agents: int) -> float:
    """Erlang C: the share of calls that find every agent busy (1.0 when the queue is unstable)."""
    if load <= 0:
        return 0.0
    if agents <= load:
        return 1.0
    b = erlang_b(load, agents)
    return agents * b / (agents - load * (1 - b))


def service_level(load: float, agents: int, aht: float, seconds: float) -> float:
    """Share of calls answered within `seconds` of waiting."""
    if load <= 0:
        return 1.0
    if agents <= load:
        return 0.0
    return 1.0 - prob_wait(load, agents) * math.exp(-(agents - load) * seconds / aht)


def average_speed_of_answer(load: float, agents: int, aht: float) -> float:
    if load <= 0:
        return 0.0
    if agents <= load:
        return math.inf
    return prob_wait(load, agents) * aht / (agents - load)


def agents_needed(calls_per_hour: float, aht: float, target: Target) -> int:
    """The fewest agents that answer `target.share` of calls within `target.seconds`, by Erlang C."""
    if calls_per_hour <= 0 or aht <= 0:
        return 0
    load = calls_per_hour * aht / 3600.0
    agents = max(1, math.floor(load) + 1)
    while service_level(load, agents, aht, target.seconds) < target.share:
        agents += 1
        if agents > MAX_AGENTS:
            raise ValueError(f"more than {MAX_AGENTS} agents for {calls_per_hour} calls/h of {aht} s")
    return agents
