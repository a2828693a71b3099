"""conf/agents.yaml: the agents who log in to the table's queues from their phone, validated like the table.

Parsed with positions (routing.yamlsource), shaped by pydantic models, then checked against the routing table
(every queue an agent names must be one of its queues; no interface or agent number twice). `load_agents`
returns a complete immutable Roster or raises AgentsError with every problem at its file:line.

Skills: an agent may carry skills named after the table's line tags (health, housing-fund, ...): calls tagged
with one of its skills ring it first (see `Roster.skill_window`). app_queue knows one penalty per member and
queue, and a caller can only narrow the members it rings to one penalty range (QUEUE_MIN/MAX_PENALTY), so the
skill is carried in the member's penalty: each distinct set of skills gets a band (0, 1, ...) below every agent
without skills (penalty = number of bands + its queue penalty). Skills count in the agent's own queues (penalty
0 there); where it only helps out (penalty > 0) it keeps that penalty above the floor, skills or not. The bands are ordered so that the bands holding
a tag are adjacent (one range per tag); a roster whose skill sets cannot be so ordered is refused.

PINs are secrets: the YAML names the environment variable holding each agent's PIN (`pin_env`), as trunks do
with `secret_env`; a `pin`, `secret` or `password` key is refused.
"""
from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from routing.model import RoutingTable
from routing.schema import ID_PATTERN, Strict
from routing.yamlsource import Problem, SourceError, load_document, problems_from

AgentNumber = Annotated[str, Field(pattern=r"^[0-9]{2,8}$")]   # dialed after the feature code: *91<number>
Interface = Annotated[str, Field(pattern=r"^[A-Za-z]+/[A-Za-z0-9_@.;/-]+$", max_length=128)]
# Shown in `queue show` and the supervisors' view; no character the dialplan would split on (, ; ( ) " $ \ ...).
MemberName = Annotated[str, Field(pattern=r"^[\w .-]+$", min_length=1, max_length=64)]
QueueId = Annotated[str, Field(pattern=ID_PATTERN)]
Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class AgentSpec(Strict):
    name: MemberName
    interface: Interface                      # the agent's phone, as AddQueueMember rings it
    state_interface: Interface | None = None  # whose device state says busy (default: the interface)
    pin_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    queues: dict[QueueId, Annotated[int, Field(ge=0, le=100)]] = Field(min_length=1)   # queue -> penalty
    skills: tuple[Tag, ...] = ()              # line tags whose calls ring this agent first

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("pin", "secret", "password"):
                if key in data:
                    raise ValueError(f"'{key}' does not belong in YAML: name the environment variable with "
                                     "pin_env and keep the PIN in the environment or the secrets file")
        return data


class AgentsSpec(Strict):
    version: Literal[1]
    # How long a call tagged with a skill rings only the agents with that skill before every agent of the queue
    # (a queue rule, queuerules_hotline.conf): the skilled agent is first, never the only one.
    skill_first_seconds: Annotated[int, Field(ge=1, le=600)] = 20
    agents: dict[AgentNumber, AgentSpec]

    @model_validator(mode="before")
    @classmethod
    def _numbers_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("agents"), dict):
            data = {**data, "agents": {_as_text(k): v for k, v in data["agents"].items()}}
        return data


@dataclass(frozen=True)
class Agent:
    number: str
    name: str
    interface: str
    state_interface: str | None
    pin_env: str
    queues: tuple[tuple[str, int], ...]       # (queue id, penalty), in queue id order
    skills: tuple[str, ...] = ()              # sorted line tags


@dataclass(frozen=True)
class Roster:
    source: str
    version: str                              # content hash of the file, like the table's
    agents: tuple[Agent, ...]                 # in agent number order
    skill_first_seconds: int = 20

    def pin_names(self) -> list[str]:
        return sorted({a.pin_env for a in self.agents})

    def find(self, number: str) -> Agent | None:
        return next((a for a in self.agents if a.number == number), None)

    @property
    def skill_bands(self) -> tuple[tuple[str, ...], ...]:
        """The distinct skill sets, in band order (band = index): sets sharing a tag stand side by side."""
        return _band_order({a.skills for a in self.agents if a.skills}) or ()

    @property
    def generalist_floor(self) -> int:
        """The lowest penalty of an agent without skills (= the number of bands): every band ranks above it."""
        return len(self.skill_bands)

    def member_penalty(self, agent: Agent, queue: str) -> int:
        """The penalty AddQueueMember gives `agent` in `queue`: its band, or the floor plus its queue penalty."""
        penalty = dict(agent.queues)[queue]
        if agent.skills and penalty == 0:
            return self.skill_bands.index(agent.skills)
        return self.generalist_floor + penalty

    def skill_window(self, tag: str) -> tuple[int, int] | None:
        """The penalty range (QUEUE_MIN_PENALTY, QUEUE_MAX_PENALTY) of the agents with skill `tag`."""
        bands = [i for i, skills in enumerate(self.skill_bands) if tag in skills]
        return (bands[0], bands[-1]) if bands else None

    def queue_skills(self, queue: str) -> list[str]:
        """The skills of the agents whose own queue `queue` is (penalty 0), sorted: the tags its dialplan looks for."""
        return sorted({s for a in self.agents if dict(a.queues).get(queue) == 0 for s in a.skills})


class AgentsError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _band_order(sets: set[tuple[str, ...]]) -> tuple[tuple[str, ...], ...] | None:
    """An order of the skill sets in which the sets holding any one tag are adjacent, or None if there is none.

    Sorted order works for the usual rosters (single skills, a skill plus a neighbour); otherwise a small search
    (rosters have a handful of distinct sets; beyond 8 only sorted order is tried)."""
    ordered = sorted(sets)
    if _adjacent(ordered):
        return tuple(ordered)
    if len(ordered) <= 8:
        from itertools import permutations
        for order in permutations(ordered):
            if _adjacent(list(order)):
                return tuple(order)
    return None


def _adjacent(order: list[tuple[str, ...]]) -> bool:
    for tag in {t for skills in order for t in skills}:
        bands = [i for i, skills in enumerate(order) if tag in skills]
        if bands[-1] - bands[0] + 1 != len(bands):
            return False
    return True


def table_line_tags(table: RoutingTable) -> set[str]:
    """The tags the table's queued lines carry: the names an agent's skills may take."""
    return {t for line in table.lines.values() for rule in line.rules if rule.queue for t in rule.tags}


def _near(word: str, choices: set[str] | Any) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def default_agents_path(table_path: str | Path) -> Path | None:
    """agents.yaml beside the routing table, when there is one."""
    path = Path(table_path).parent / "agents.yaml"
    return path if path.exists() else None


def load_agents(path: str | Path, table: RoutingTable, *, text: str | None = None) -> Roster:
    try:
        doc = load_document(path, text)
    except SourceError as exc:
        raise AgentsError(exc.problems) from None
    problems = list(doc.problems)
    try:
        spec = AgentsSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise AgentsError(problems + problems_from(doc, exc, AgentsSpec)) from None
    interfaces: dict[str, str] = {}
    raw_keys = {_as_text(k): k for k in doc.data["agents"]}
    tags = table_line_tags(table)
    table_name = Path(table.source).name
    for number, agent in spec.agents.items():
        here = ("agents", raw_keys[number])
        for queue in agent.queues:
            if queue not in table.queues:
                problems.append(doc.problem(here + ("queues", queue), f"agent {number}: queue '{queue}' is not a "
                                            f"queue of the routing table {table_name}{_near(queue, table.queues)}",
                                            key=True))
        seen: set[str] = set()
        for index, skill in enumerate(agent.skills):
            if skill in seen:
                problems.append(doc.problem(here + ("skills", index), f"agent {number}: skill '{skill}' twice"))
            seen.add(skill)
            if skill not in tags:
                problems.append(doc.problem(here + ("skills", index), f"agent {number}: skill '{skill}' is not a "
                                            f"tag of a queued line of {table_name}{_near(skill, tags)}"))
        other = interfaces.setdefault(agent.interface, number)
        if other != number:
            problems.append(doc.problem(here + ("interface",), f"agent {number}: interface {agent.interface} "
                                        f"is also agent {other}'s (one phone, one agent)"))
    sets = {tuple(sorted(set(a.skills))) for a in spec.agents.values() if a.skills}
    if _band_order(sets) is None:
        first = next(n for n, a in sorted(spec.agents.items()) if a.skills)
        problems.append(doc.problem(("agents", raw_keys[first], "skills"), "these skill sets cannot be ranked as "
                                    "app_queue penalty ranges (one range per skill): "
                                    + "; ".join("+".join(s) for s in sorted(sets)) + ". Give fewer combinations"))
    if problems:
        raise AgentsError(problems)
    agents = tuple(Agent(number, a.name, a.interface, a.state_interface, a.pin_env, tuple(sorted(a.queues.items())),
                         tuple(sorted(set(a.skills))))
                   for number, a in sorted(spec.agents.items()))
    return Roster(doc.file, hashlib.sha256(doc.text.encode()).hexdigest()[:12], agents, spec.skill_first_seconds)
