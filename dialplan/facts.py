"""What the generated files need to know about the table, computed once and in a fixed order."""
from __future__ import annotations

from dataclasses import dataclass

from dialplan.common import RenderError, check_digits, check_id
from routing.model import Category, Line, Queue, RoutingTable, Rule, TransferKind, Trunk

CARRIER = "carrier"
EMERGENCY = "emergency"
DEFAULT_NO_ANSWER = 30


@dataclass(frozen=True)
class Did:
    number: str
    failopen_tags: str             # the line's tags (newest rule) + "failopen", joined with '+'
    emergency_trunk: Trunk | None  # emergency linkage: fail open to this trunk, never to a queue


@dataclass(frozen=True)
class TransferTarget:
    digits: str                    # the extension: AMI Atxfer sends it as DTMF, so digits only
    trunk: Trunk
    no_answer_seconds: int


@dataclass(frozen=True)
class Facts:
    table: RoutingTable
    dids: tuple[Did, ...]
    queues: tuple[Queue, ...]
    dial_trunks: tuple[Trunk, ...]           # HOTLINE_ACTION=dial whitelist (no carrier trunks)
    emergency: tuple[TransferTarget, ...]
    warm: tuple[TransferTarget, ...]
    threeway: tuple[TransferTarget, ...]

    @property
    def general(self) -> str:
        return self.table.general_queue

    def atxfer_no_answer_seconds(self) -> int:
        return max((t.no_answer_seconds for t in self.warm + self.threeway), default=DEFAULT_NO_ANSWER)


def did_sort_key(number: str) -> tuple[int, str]:
    return (len(number), number)


def newest_rule(line: Line) -> Rule:
    """Rules are ordered by start; the last one is what the line becomes going forward.

    The dialplan has no clock, so fail-open tags follow that rule (the engine applies the dated ones).
    """
    return line.rules[-1]


def gather(table: RoutingTable) -> Facts:
    queues = tuple(sorted(table.queues.values(), key=lambda q: q.id))
    for queue in queues:
        check_id("queue", queue.id)
    if table.general_queue not in table.queues:
        raise RenderError(f"general queue {table.general_queue!r} is not a queue of the table")
    trunks = tuple(sorted(table.trunks.values(), key=lambda t: t.id))
    for trunk in trunks:
        check_id("trunk", trunk.id)

    dids = []
    numbers = sorted(set(table.lines) | {"12345"}, key=did_sort_key)
    for number in numbers:
        check_digits(f"line {number!r}", number)
        line = table.lines.get(number)
        rule = newest_rule(line) if line and line.rules else None
        tags = list(rule.tags) if rule else []
        emergency = None
        if rule is not None and rule.category is Category.EMERGENCY_LINKAGE and rule.trunk:
            emergency = table.trunks[rule.trunk]
        dids.append(Did(number, "+".join(tags + ["failopen"]), emergency))

    dial_trunks = tuple(t for t in trunks if t.kind != CARRIER)
    for trunk in dial_trunks:
        check_digits(f"trunk {trunk.id} dial", trunk.dial)

    no_answer: dict[tuple[TransferKind, str], int] = {}
    for line in table.lines.values():
        for rule in line.rules:
            for transfer in rule.transfers:
                if transfer.trunk:
                    key = (transfer.kind, transfer.trunk)
                    no_answer[key] = max(no_answer.get(key, 0), transfer.no_answer_seconds)

    def targets(kinds: set[TransferKind], trunk_kinds: set[str]) -> tuple[TransferTarget, ...]:
        chosen = []
        for trunk in dial_trunks:
            seconds = [no_answer[(k, trunk.id)] for k in kinds if (k, trunk.id) in no_answer]
            if seconds or trunk.kind in trunk_kinds:
                chosen.append(TransferTarget(trunk.dial or "", trunk, max(seconds, default=DEFAULT_NO_ANSWER)))
        _unique_digits(chosen)
        return tuple(chosen)

    facts = Facts(
        table=table,
        dids=tuple(dids),
        queues=queues,
        dial_trunks=dial_trunks,
        emergency=targets({TransferKind.HANDOVER}, {EMERGENCY}),
        warm=targets({TransferKind.ATTENDED}, {"retained_seat"}),
        threeway=targets({TransferKind.THREE_WAY}, {"subcenter", EMERGENCY}),
    )
    emergency_ids = {t.trunk.id for t in facts.emergency}
    for did in facts.dids:
        if did.emergency_trunk and did.emergency_trunk.id not in emergency_ids:
            raise RenderError(f"line {did.number} is emergency linkage over trunk {did.emergency_trunk.id}, "
                              "which is not of kind emergency")
    return facts


def _unique_digits(targets: list[TransferTarget]) -> None:
    seen: dict[str, str] = {}
    for target in targets:
        other = seen.setdefault(target.digits, target.trunk.id)
        if other != target.trunk.id:
            raise RenderError(f"trunks {other} and {target.trunk.id} both dial {target.digits}: "
                              "transfer extensions would clash")
