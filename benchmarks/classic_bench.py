"""Classic AGI benchmark: the cost of one call as a process of its own, against a bare pyst2 script, same run.

Run: .venv/bin/python -m benchmarks.classic_bench [runs]
One call (12320, key 1: the expert menu, 13 AGI commands) is recorded once against the Asterisk emulator
(ivr.emulator). Each run then starts a real process, feeds it the recorded agi_* block and every reply on
stdin, and checks it sent exactly the recorded commands and exited 0. Three programs, alternating run by run:
- pyst2: a bare classic AGI script (asterisk.agi.AGI only) sending the same 13 commands;
- classic: `python -m ivr.classic` as the shipped wrapper runs it, the compiled snapshot in place;
- classic, no snapshot: the same with a snapshot path it cannot use (it validates both YAML files itself, as
  every call did before the snapshot).
Prints per program the median wall time and CPU time (user+sys of the child) per call, and the ratios.
The project's bytecode is compiled first, as `make install` leaves it: with PYTHONDONTWRITEBYTECODE set (or an
edited source) every process would otherwise compile the stale modules again, a cost no installed engine pays.
"""
from __future__ import annotations

import compileall
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ivr.emulator import AsteriskChannel, asterisk_env, env_block

ROOT = Path(__file__).resolve().parents[1]
AT = "2026-11-26T10:00:00+08:00"           # a working day, 10:00 in Beijing: the expert seat is open

BARE_PYST2 = '''import sys
from asterisk.agi import AGI
agi = AGI()
for line in sys.argv[1:]:
    agi.send_command(line)
    agi.get_result()
'''


def record_call(env: dict[str, str]) -> tuple[bytes, list[str]]:
    """The stdin of one call (agi_* block and the replies, in order) and the commands the engine sent."""
    proc = subprocess.Popen([sys.executable, "-m", "ivr.classic"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    channel = AsteriskChannel(asterisk_env(dialed="12320"), ["1"], variables={"HOTLINE_AT": AT})
    stdin, commands = env_block(channel.env), []
    proc.stdin.write(stdin)
    proc.stdin.flush()
    while line := proc.stdout.readline():
        reply = channel.handle(line.decode().rstrip("\n"))
        commands.append(line.decode().rstrip("\n"))
        stdin += reply
        proc.stdin.write(reply)
        proc.stdin.flush()
    if proc.wait(timeout=30) != 0 or channel.t.variables.get("HOTLINE_TARGET") != "expert-12320":
        raise RuntimeError("the recorded call did not route to expert-12320")
    return stdin, commands


def run_once(argv: list[str], stdin: bytes, env: dict[str, str], expected: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process fed `stdin`; it must send exactly `expected`."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=out,
                                stderr=subprocess.DEVNULL)
        proc.stdin.write(stdin)
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        sent = out.read().decode().splitlines()
    if proc.returncode != 0 or sent != expected:
        raise RuntimeError(f"{argv[1:3]} exited {proc.returncode} after {len(sent)} commands")
    return wall, usage.ru_utime + usage.ru_stime


def main(runs: int = 15) -> dict[str, tuple[float, float]]:
    for package in ("ivr", "routing", "records", "scripts"):
        compileall.compile_dir(ROOT / package, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        base = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env = dict(base, HOTLINE_ALLOW_TEST_CLOCK="1", HOTLINE_DB_URL=f"sqlite:///{tmp}/none.sqlite3",
                   HOTLINE_CONFIG_SNAPSHOT=f"{tmp}/snapshot.json", HOTLINE_LOG_LEVEL="info")
        # a directory where the snapshot should be: it can be neither read nor written
        cold = dict(env, HOTLINE_CONFIG_SNAPSHOT=tmp)
        stdin, commands = record_call(env)            # also writes the snapshot, as the first call does
        script = Path(tmp) / "bare_pyst2.py"
        script.write_text(BARE_PYST2, encoding="utf-8")
        programs = {
            "pyst2 bare script": ([sys.executable, str(script), *commands], base),
            "classic (snapshot)": ([sys.executable, "-m", "ivr.classic"], env),
            "classic (no snapshot)": ([sys.executable, "-m", "ivr.classic"], cold),
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in programs}
        for name, (argv, penv) in programs.items():    # warm the page cache once
            run_once(argv, stdin, penv, commands)
        for _ in range(runs):
            for name, (argv, penv) in programs.items():
                times[name].append(run_once(argv, stdin, penv, commands))
    medians = {name: (statistics.median(w for w, _ in ts), statistics.median(c for _, c in ts))
               for name, ts in times.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {runs} runs each, alternating; one call = {len(commands)} "
          f"AGI commands")
    bare_wall, bare_cpu = medians["pyst2 bare script"]
    for name, (wall, cpu) in medians.items():
        print(f"  {name:24s} wall {wall * 1000:6.1f} ms  cpu {cpu * 1000:6.1f} ms  "
              f"({wall / bare_wall:4.2f}x / {cpu / bare_cpu:4.2f}x bare pyst2)")
    return medians


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
