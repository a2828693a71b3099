"""Validate a (table, menus) pair in a bounded child process, so a hostile file costs the engine nothing.

The loader's own limits (routing.yamlsource) already refuse alias bombs, deep nesting and oversized files; the
child is the second wall, for whatever a file can still make a parser or validator do: it runs under
RLIMIT_AS and RLIMIT_CPU and a wall-clock timeout, and when it dies the reload is refused. The engine reads
each file once, gives the child that text on stdin and loads the same text itself only when the child found no
problem, so what was validated is what runs (an edit in between cannot slip through).

Run as `python -m ivr.configcheck MEMORY_BYTES CPU_SECONDS` with {"table": [path, text], "menus": [...]} on stdin;
prints {"problems": [...]}.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from routing.yamlsource import Problem, SourceError, read_source

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ChildLimits:
    memory_bytes: int = 1 << 30        # a 2 MB table (the loader's limit) needs about 150 MB; the rest is slack
    cpu_seconds: int = 60
    timeout: float = 90.0              # wall clock, for a child that sleeps or is starved of CPU


def read_pair(table_path: Path | str, menus_path: Path | str) -> tuple[str, str]:
    """Both files' text, within the loader's size limit; SourceError (with its problems) otherwise."""
    problems, texts = [], []
    for path in (table_path, menus_path):
        try:
            texts.append(read_source(Path(path)))
        except SourceError as exc:
            problems += exc.problems
    if problems:
        raise SourceError(problems)
    return texts[0], texts[1]


def validate_in_child(table: tuple[Path | str, str], menus: tuple[Path | str, str],
                      limits: ChildLimits = ChildLimits()) -> list[Problem]:
    """Every problem the pair has ([] when it loads), found by a child that may not exceed `limits`."""
    request = json.dumps({"table": [str(table[0]), table[1]], "menus": [str(menus[0]), menus[1]]})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])))
    where = str(table[0])
    try:
        done = subprocess.run([sys.executable, "-m", "ivr.configcheck", str(limits.memory_bytes),
                               str(limits.cpu_seconds)], input=request, capture_output=True, text=True,
                              timeout=limits.timeout, env=env, cwd=PACKAGE_ROOT)
    except subprocess.TimeoutExpired:
        return [Problem(where, 1, 1, f"validation took longer than {limits.timeout:g} s: refused")]
    except OSError as exc:
        return [Problem(where, 1, 1, f"cannot start the validation process: {exc}")]
    try:
        answer = json.loads(done.stdout) if done.returncode == 0 else None
        return [Problem(**p) for p in answer["problems"]]
    except (TypeError, ValueError, KeyError):
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1][:200]
        return [Problem(where, 1, 1, f"validation failed within its limits ({limits.memory_bytes >> 20} MB, "
                                     f"{limits.cpu_seconds} s of CPU): {last}")]


def _lower_limit(which: int, value: int) -> None:
    """Never above a limit the engine itself already runs under (raising it is not allowed)."""
    _soft, hard = resource.getrlimit(which)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (value, value))


def main(argv: list[str]) -> int:
    _lower_limit(resource.RLIMIT_AS, int(argv[0]))
    _lower_limit(resource.RLIMIT_CPU, int(argv[1]))
    from ivr.engine import ConfigError, load_config
    request = json.load(sys.stdin)
    (table_path, table_text), (menus_path, menus_text) = request["table"], request["menus"]
    try:
        load_config(table_path, menus_path, table_text=table_text, menus_text=menus_text)
        problems: list[Problem] = []
    except ConfigError as exc:
        problems = list(exc.problems)
    json.dump({"problems": [asdict(p) for p in problems]}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
