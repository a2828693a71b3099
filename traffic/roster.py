"""The roster: agents scheduled per queue and hour, from CSV or YAML; bad input is refused with file:line.

CSV (header required):            YAML (a list of the same entries):
    queue,weekday,hour,agents         - {queue: general-12345, weekday: "*", hour: 9, agents: 12}
    general-12345,*,9,12              - {queue: expert-12320, weekday: 1-5, hour: 10, agents: 3}
    expert-12320,1-5,10,3
weekday: 1 (Monday) .. 7 (Sunday), a range 1-5, or * for every day; hour: 0..23 local time, or a range 8-17.
A later entry for the same queue and hour replaces an earlier one.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Mapping

import yaml

FIELDS = ("queue", "weekday", "hour", "agents")


class RosterError(ValueError):
    pass


def _span(text: str, low: int, high: int, what: str) -> range:
    text = str(text).strip()
    if text == "*":
        return range(low, high + 1)
    first, _, last = text.partition("-")
    try:
        a, b = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected a number, a range like {low}-{high} or *") from None
    if not (low <= a <= b <= high):
        raise ValueError(f"{what} {text!r}: must lie within {low}..{high}")
    return range(a, b + 1)


def _entries(path: Path) -> Iterable[tuple[int, Mapping]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise RosterError(f"{path}:{mark.line + 1 if mark else 1}: not YAML: {exc}") from None
        finally:
            loader.dispose()
        if node is None:
            return
        if not isinstance(node, yaml.SequenceNode):
            raise RosterError(f"{path}:{node.start_mark.line + 1}: expected a list of entries")
        for item in node.value:
            yield item.start_mark.line + 1, yaml.safe_load(yaml.serialize(item))
        return
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or set(FIELDS) - set(reader.fieldnames):
        raise RosterError(f"{path}:1: the header must name {', '.join(FIELDS)}")
    for row in reader:
        yield reader.line_num, row


def load_roster(path: str | Path, queues: Iterable[str]) -> dict[tuple[str, int], int]:
    path, known = Path(path), set(queues)
    roster: dict[tuple[str, int], int] = {}
    problems: list[str] = []
    for line, entry in _entries(path):
        where = f"{path}:{line}"
        if not isinstance(entry, Mapping) or set(FIELDS) - set(entry):
            problems.append(f"{where}: an entry needs {', '.join(FIELDS)}")
            continue
        queue = str(entry["queue"]).strip()
        if queue not in known:
            problems.append(f"{where}: queue {queue!r} is not in the routing table")
            continue
        try:
            days = _span(entry["weekday"], 1, 7, "weekday")
            hours = _span(entry["hour"], 0, 23, "hour")
            agents = int(str(entry["agents"]).strip())
            if agents < 0:
                raise ValueError(f"agents {agents}: must not be negative")
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        for day in days:
            for hour in hours:
                roster[queue, (day - 1) * 24 + hour] = agents
    if problems:
        raise RosterError("\n".join(problems))
    return roster
