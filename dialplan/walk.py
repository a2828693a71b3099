"""Read a generated extensions file back and walk it, the way Asterisk's pbx loop would.

Used by the tests (and handy at a prompt) to show what a call does: which DID reaches AGI, where each engine
answer or failure leads, which queues an unanswered caller passes through. It understands the subset of
dialplan this package generates and raises WalkError on anything else, so a test can never pass by skipping
what it does not understand.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

_EXTEN = re.compile(r"^exten\s*=>\s*([^,]+),([^,]+),(.*)$")
_SAME = re.compile(r"^same\s*=>\s*([^,]+),(.*)$")
_PRIORITY = re.compile(r"^(\d+|n)(?:\(([A-Za-z0-9_]+)\))?$")
_APP = re.compile(r"^([A-Za-z]+)\((.*)\)$")
_VAR = re.compile(r"\$\{([^${}]*)\}")
_EXPR = re.compile(r"\$\[([^\[\]]*)\]")


class WalkError(Exception):
    pass


@dataclass(frozen=True)
class Step:
    context: str
    exten: str
    priority: int
    label: str | None
    app: str
    args: str
    line: int


@dataclass
class Dialplan:
    contexts: dict[str, dict[str, list[Step]]] = field(default_factory=dict)

    def steps(self) -> Iterator[Step]:
        for extens in self.contexts.values():
            for steps in extens.values():
                yield from steps

    def match(self, context: str, exten: str) -> str | None:
        """The extension Asterisk would pick: an exact name first, then the first matching pattern."""
        extens = self.contexts.get(context)
        if extens is None:
            return None
        if exten in extens:
            return exten
        for name in extens:
            if name.startswith("_") and _pattern(name).match(exten):
                return name
        return None


def _pattern(name: str) -> re.Pattern[str]:
    out = []
    chars = iter(name[1:])
    for ch in chars:
        if ch == "X":
            out.append("[0-9]")
        elif ch == "Z":
            out.append("[1-9]")
        elif ch == "N":
            out.append("[2-9]")
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "[":
            group = ""
            for inner in chars:
                if inner == "]":
                    break
                group += inner
            out.append(f"[{group}]")
        else:
            out.append(re.escape(ch))
    return re.compile("^" + "".join(out) + "$")


def parse(text: str) -> Dialplan:
    plan = Dialplan()
    context: str | None = None
    current: list[Step] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.split(r"(?<!\\);", raw, maxsplit=1)[0].strip()
        if not line or line.startswith("#include"):   # an included file is another text: parse it along if needed
            continue
        if line.startswith("[") and line.endswith("]"):
            context = line[1:-1]
            if context in plan.contexts:
                raise WalkError(f"line {number}: context {context} defined twice")
            plan.contexts[context] = {}
            current = None
            continue
        if context is None:
            raise WalkError(f"line {number}: dialplan line outside a context")
        exten_m, same_m = _EXTEN.match(line), _SAME.match(line)
        if exten_m:
            exten, priority, app = exten_m.groups()
            if exten in plan.contexts[context]:
                raise WalkError(f"line {number}: extension {exten} defined twice in {context}")
            current = plan.contexts[context].setdefault(exten, [])
        elif same_m:
            if current is None:
                raise WalkError(f"line {number}: 'same' without an extension")
            priority, app = same_m.groups()
            exten = current[0].exten
        else:
            raise WalkError(f"line {number}: not understood: {line!r}")
        prio_m = _PRIORITY.match(priority.strip())
        app_m = _APP.match(app.strip())
        if not prio_m or not app_m:
            raise WalkError(f"line {number}: bad priority or application: {line!r}")
        value = (current[-1].priority + 1) if prio_m.group(1) == "n" else int(prio_m.group(1))
        if value != len(current) + 1:
            raise WalkError(f"line {number}: priority {value} out of order")
        current.append(Step(context, exten, value, prio_m.group(2), app_m.group(1), app_m.group(2), number))
    return plan


# ---- running a call -------------------------------------------------------------------------------------

@dataclass
class Call:
    """The state of one simulated channel and what happened to it."""

    variables: dict[str, str]
    trace: list[Step] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)       # Queue() calls, in order
    dials: list[str] = field(default_factory=list)        # Dial() targets, in order
    agi: list[str] = field(default_factory=list)          # AGI() URLs tried, in order
    ended: str = ""                                       # hangup | answered | fell-off | no-extension

    def apps(self) -> list[str]:
        return [s.app for s in self.trace]


# An effect gets the call and the substituted argument and returns variables to set on the channel.
# A returned "__end__" ends the walk with that reason (e.g. "answered"); "__timeout__" simulates
# TIMEOUT(absolute) expiring inside the application (Asterisk then jumps to T).
Effect = Callable[[Call, str], Mapping[str, str]]


def run(plan: Dialplan, context: str, exten: str, variables: Mapping[str, str] | None = None,
        effects: Mapping[str, Effect] | None = None, max_steps: int = 1000) -> Call:
    call = Call(dict(variables or {}))
    effects = dict(effects or {})
    position = _enter(plan, call, context, exten, 1)
    steps = 0
    while position is not None:
        steps += 1
        if steps > max_steps:
            raise WalkError(f"more than {max_steps} steps: a loop? last at {call.trace[-1]}")
        ctx, ext_name, dialed, priority = position
        extens = plan.contexts[ctx][ext_name]
        if priority > len(extens):
            call.ended = "fell-off"
            return call
        step = extens[priority - 1]
        call.trace.append(step)
        call.variables["EXTEN"] = dialed
        position = _execute(plan, call, step, dialed, effects)
    return call


def _enter(plan: Dialplan, call: Call, context: str, exten: str, priority: int):
    if context not in plan.contexts:
        raise WalkError(f"Goto to a missing context {context!r}")
    name = plan.match(context, exten)
    if name is None:
        if plan.match(context, "i") == "i":     # Asterisk: invalid extension -> i
            return (context, "i", "i", 1)
        call.ended = "no-extension"
        return None
    return (context, name, exten, priority)


def _goto(plan: Dialplan, call: Call, step: Step, dialed: str, target: str):
    parts = [p.strip() for p in target.split(",")]
    if len(parts) == 3:
        return _enter(plan, call, parts[0], parts[1] or dialed, _priority(plan, step, parts[0], parts[1], parts[2]))
    if len(parts) == 2:
        return _enter(plan, call, step.context, parts[0], _priority(plan, step, step.context, parts[0], parts[1]))
    return (step.context, step.exten, dialed, _priority(plan, step, step.context, step.exten, parts[0], dialed))


def _priority(plan: Dialplan, step: Step, context: str, exten: str, value: str, dialed: str | None = None) -> int:
    if value.isdigit():
        return int(value)
    name = plan.match(context, exten) or exten
    for candidate in plan.contexts.get(context, {}).get(name, []):
        if candidate.label == value:
            return candidate.priority
    raise WalkError(f"line {step.line}: label {value!r} not found in {context},{exten}")


def _execute(plan: Dialplan, call: Call, step: Step, dialed: str, effects: Mapping[str, Effect]):
    nxt = (step.context, step.exten, dialed, step.priority + 1)
    app = step.app
    if app == "GotoIf":
        condition, _, branches = step.args.partition("?")
        true_branch, _, false_branch = branches.partition(":")
        taken = true_branch if _truthy(evaluate(call, condition)) else false_branch
        return _goto(plan, call, step, dialed, evaluate(call, taken)) if taken else nxt
    args = evaluate(call, step.args)
    if app == "Goto":
        return _goto(plan, call, step, dialed, args)
    if app == "Set":
        name, _, value = args.partition("=")
        call.variables[name] = value
        return nxt
    if app == "Hangup":
        call.ended = "hangup"
        return None
    if app == "Queue":
        call.queues.append(args.split(",")[0])
    elif app == "Dial":
        call.dials.append(args.split(",")[0])
    elif app == "AGI":
        call.agi.append(args.split(",")[0])
    elif app not in {"NoOp", "Playback", "Wait", "Ringing", "ConfBridge", "Log", "UserEvent"}:
        raise WalkError(f"line {step.line}: application {app} is not simulated")
    result = dict(effects[app](call, args)) if app in effects else {}
    if "__timeout__" in result:
        # variables set before the timeout stay on the channel (the engine's decision, if it got that far)
        call.variables.update({k: v for k, v in result.items() if not k.startswith("__")})
        if plan.match(step.context, "T") != "T":
            call.ended = "timeout-without-T"
            return None
        return (step.context, "T", "T", 1)
    if "__end__" in result:
        call.ended = result.pop("__end__")
        call.variables.update(result)
        return None
    call.variables.update(result)
    return nxt


def _truthy(value: str) -> bool:
    value = value.strip()
    return bool(value) and value != "0"


def evaluate(call: Call, text: str) -> str:
    """${VAR}, ${VAR:offset}, ${INC(VAR)}, ${CALLERID(name)} and $[a = b] / != / < / > on the result."""
    previous = None
    while previous != text:
        previous = text
        text = _VAR.sub(lambda m: _variable(call, m.group(1)), text, count=1)
    previous = None
    while previous != text:
        previous = text
        text = _EXPR.sub(lambda m: _expression(m.group(1)), text, count=1)
    return text


def _variable(call: Call, name: str) -> str:
    func = re.match(r"^([A-Z_]+)\((.*)\)$", name)
    if func and func.group(1) == "INC":
        value = str(int(call.variables[func.group(2)]) + 1)    # KeyError like Asterisk's "failed to obtain"
        call.variables[func.group(2)] = value
        return value
    if func and func.group(1) == "LEN":
        return str(len(func.group(2)))
    if func and func.group(1) == "FILTER":
        allowed, _, value = func.group(2).partition(",")
        return "".join(ch for ch in value if ch in _filter_set(allowed))
    if func:
        return call.variables.get(name, "")
    if name == "EPOCH":                          # the walk's clock: an effect may advance it
        return call.variables.setdefault("EPOCH", "1700000000")
    base, _, offset = name.partition(":")
    value = call.variables.get(base, "")
    return value[int(offset):] if offset else value


def _filter_set(allowed: str) -> set[str]:
    """FILTER's allowed list: ranges like a-z; a '-' that does not follow a character is literal."""
    chars: set[str] = set()
    index = 0
    while index < len(allowed):
        first = allowed[index]
        if index + 2 < len(allowed) and allowed[index + 1] == "-":
            last = allowed[index + 2]
            chars.update(chr(c) for c in range(ord(first), ord(last) + 1))
            index += 3
        else:
            chars.add(first)
            index += 1
    return chars


def _expression(body: str) -> str:
    # Quoted operands may not contain quotes: a value that would change the expression is refused, since the
    # generated dialplan promises never to put such a value into one.
    match = re.match(r'^\s*"([^"]*)"\s*(=|!=)\s*"([^"]*)"\s*$', body)
    if match:
        left, op, right = match.groups()
        return "1" if (left == right) == (op == "=") else "0"
    match = re.match(r"^\s*(-?\d+)\s*([-+])\s*(-?\d+)\s*$", body)
    if match:
        left, right = int(match.group(1)), int(match.group(3))
        return str(left + right if match.group(2) == "+" else left - right)
    match = re.match(r"^\s*(-?\d+)\s*(<=|>=|<|>|=|!=)\s*(-?\d+)\s*$", body)
    if match:
        left, op, right = int(match.group(1)), match.group(2), int(match.group(3))
        result = {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right,
                  "=": left == right, "!=": left != right}[op]
        return "1" if result else "0"
    raise WalkError(f"expression not simulated: $[{body}]")


# ---- static reachability --------------------------------------------------------------------------------

def reachable(plan: Dialplan, context: str, exten: str) -> list[Step]:
    """Every step a call entering context,exten could run, whatever the variables (variable targets: all
    extensions of the target context)."""
    seen: dict[tuple[str, str, int], Step] = {}
    todo = [(context, exten, 1)]
    while todo:
        ctx, ext, priority = todo.pop()
        names = _candidates(plan, ctx, ext)
        for name in names:
            steps = plan.contexts[ctx][name]
            if not 1 <= priority <= len(steps):
                continue
            step = steps[priority - 1]
            key = (ctx, name, priority)
            if key in seen:
                continue
            seen[key] = step
            if step.app not in {"Goto", "Hangup"}:
                todo.append((ctx, name, priority + 1))
            for target in _targets(step):
                todo.append(_resolve(plan, step, target))
    return sorted(seen.values(), key=lambda s: (s.context, s.exten, s.priority))


def _candidates(plan: Dialplan, ctx: str, ext: str) -> list[str]:
    if ctx not in plan.contexts:
        raise WalkError(f"missing context {ctx!r}")
    if "$" in ext:
        return list(plan.contexts[ctx])
    name = plan.match(ctx, ext)
    if name is None:
        return ["i"] if "i" in plan.contexts[ctx] else []
    return [name]


def _targets(step: Step) -> list[str]:
    if step.app == "Goto":
        return [step.args]
    if step.app == "GotoIf":
        _, _, branches = step.args.partition("?")
        return [b for b in branches.split(":") if b]
    return []


def _resolve(plan: Dialplan, step: Step, target: str) -> tuple[str, str, int]:
    parts = [p.strip() for p in target.split(",")]
    if len(parts) == 1:
        parts = [step.context, step.exten, parts[0]]
    elif len(parts) == 2:
        parts = [step.context] + parts
    ctx, ext, prio = parts
    ext = step.exten if ext == "${EXTEN}" and not step.exten.startswith("_") else ext
    if prio.isdigit():
        return ctx, ext, int(prio)
    for name in _candidates(plan, ctx, ext):
        for candidate in plan.contexts[ctx][name]:
            if candidate.label == prio:
                return ctx, name, candidate.priority
    raise WalkError(f"line {step.line}: label {prio!r} not found")
