"""conf/agents.yaml: the agents who log in to the table's queues from their phone, validated like the table.

Parsed with positions (routing.yamlsource), shaped by pydantic models, then checked against the routing table
(every queue an agent names must be one of its queues; no interface or agent number twice). `load_agents`
returns a complete immutable Roster or raises AgentsError with every problem at its file:line.

PINs are secrets: the YAML names the environment variable holding each agent's PIN (`pin_env`), as trunks do
with `secret_env`; a `pin`, `secret` or `password` key is refused.
"""
from __future__ import annotations

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


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class AgentSpec(Strict):
    name: MemberName
    interface: Interface                      # the agent's phone, as AddQueueMember rings it
    state_interface: Interface | None = None  # whose device state says busy (default: the interface)
    pin_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    queues: dict[QueueId, Annotated[int, Field(ge=0, le=100)]] = Field(min_length=1)   # queue -> penalty

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


@dataclass(frozen=True)
class Roster:
    source: str
    version: str                              # content hash of the file, like the table's
    agents: tuple[Agent, ...]                 # in agent number order

    def pin_names(self) -> list[str]:
        return sorted({a.pin_env for a in self.agents})


class AgentsError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


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
    for number, agent in spec.agents.items():
        here = ("agents", raw_keys[number])
        for queue in agent.queues:
            if queue not in table.queues:
                problems.append(doc.problem(here + ("queues", queue), f"agent {number}: queue '{queue}' is not a "
                                            f"queue of the routing table {Path(table.source).name}", key=True))
        other = interfaces.setdefault(agent.interface, number)
        if other != number:
            problems.append(doc.problem(here + ("interface",), f"agent {number}: interface {agent.interface} "
                                        f"is also agent {other}'s (one phone, one agent)"))
    if problems:
        raise AgentsError(problems)
    agents = tuple(Agent(number, a.name, a.interface, a.state_interface, a.pin_env, tuple(sorted(a.queues.items())))
                   for number, a in sorted(spec.agents.items()))
    return Roster(doc.file, hashlib.sha256(doc.text.encode()).hexdigest()[:12], agents)
