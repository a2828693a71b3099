"""FastAGI load: the engine as shipped against a bare panoramisk app and the Python floor, in one run.

    .venv/bin/python -m benchmarks.agi_load [--quick] [--only 1,2,3] [--against REV]   # ~3 minutes (--quick: ~1)

Every server is a process of its own pinned to core 0 (taskset); this load generator runs on core 1 (on a
one-core machine both share it, and the print says so). Server CPU is read from /proc/<pid>/stat (all its
threads: the records flusher and any worker threads count), memory from /proc/<pid>/status.

Servers:
- engine (SQLite): `hotline serve` as users run it: records on (spool + SQLite, the embedded default), the abuse
  rule on (the shipped table: 20 calls per 60 min), JSON logs at info level to a file, the web view on, no AMI;
- engine (PostgreSQL): the same with the records in PostgreSQL (HOTLINE_BENCH_PG_URL, default the local server);
- bare panoramisk: panoramisk 1.4's Application on asyncio, sending the very commands our engine sends for the
  call (recorded from the engine in this run), one `send_command` each;
- bare panoramisk on uvloop; protocol floor: a hand-written asyncio.Protocol on uvloop (benchmarks.agi_servers).

--against REV (a commit, tag or branch): section 1 also runs the engine as shipped (SQLite) of that revision,
exported with `git archive` into the run's directory and served by its own code with this venv, in the same
alternating rounds: a before/after measured in one run.

1. Throughput, closed loop: 50 calls in flight, each a 12345 call pressing 2 (12 AGI commands), callers from a
   pool of 200,000 numbers. Alternating runs, server by server; per server the median of CPU us per AGI command
   and of calls/s; the ratios are medians over each run's ratio to the bare app's run in the same round.
2. Held calls: 1,000 new calls/s, every prompt playing 1.33-2 s (three prompts: a time-out, the menu again, key
   2), ~5,000 sessions open at once. Reported: the engine's reaction time (reply in -> next command out, and env
   block in -> first command, measured inside the server) p50/p99 over the steady part, resident memory per held
   session, calls not served.
3. Burst: 2,000 calls opened at once (Asterisk reconnecting after an outage), each holding 1-2 s per prompt:
   served to their route, refused, failed; how long the last connect took.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.agi_client import CallResult, call, callers

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CORE, LOAD_CORE = "0", 1
THROUGHPUT_KEYS = ["2"]
HELD_KEYS = ["timeout", "2"]
BARE_KINDS = ("bare-panoramisk", "bare-panoramisk-uvloop", "protocol-uvloop")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(argv: list[str]) -> list[str]:
    return (["taskset", "-c", SERVER_CORE] if (os.cpu_count() or 1) > 1 else []) + argv


class Server:
    """One server process; `kind` names it in the results. `cwd`: the checkout whose code it runs."""

    def __init__(self, kind: str, argv: list[str], port: int, env: dict[str, str], log: Path,
                 cwd: Path = ROOT) -> None:
        self.kind, self.port, self.log = kind, port, log
        self.proc = subprocess.Popen(pinned(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(log, "ab"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} exited with {self.proc.returncode}; see {log}")
            if listening(port):      # not a probe connection: panoramisk's reader spins forever on its EOF
                return
            time.sleep(0.05)
        raise RuntimeError(f"{kind} did not listen on {port} within 60 s; see {log}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def open_files_limit(self) -> str:
        for line in Path(f"/proc/{self.proc.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft} (hard {hard})"
        return "?"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def engine_env(tmp: Path, name: str, db_url: str | None) -> dict[str, str]:
    from cryptography.fernet import Fernet
    state = tmp / name
    state.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({
        "HOTLINE_DB_URL": db_url or f"sqlite:///{state / 'hotline.sqlite3'}",
        "HOTLINE_SPOOL_DIR": str(state / "spool"), "HOTLINE_PID_FILE": str(state / "hotline.pid"),
        "HOTLINE_WEB_PORT": str(free_port()), "HOTLINE_CALLER_HASH_KEY": "bench-" + os.urandom(16).hex(),
        "HOTLINE_CALLBACK_KEY": Fernet.generate_key().decode(), "HOTLINE_CONFIG_SNAPSHOT": str(state / "snap.json"),
    })
    return env


def start_engine(tmp: Path, name: str, db_url: str | None = None, *, timed: bool = False,
                 root: Path = ROOT) -> Server:
    """`hotline serve` of the checkout at `root` (`python -m` there: its own modules come first on sys.path)."""
    port = free_port()
    env = engine_env(tmp, name, db_url)
    argv = [sys.executable, "-m", "benchmarks.agi_servers", "engine", str(port), str(tmp / f"{name}.stats"),
            *(["--timed"] if timed else []), "--"]
    return Server(name, argv, port, env, tmp / f"{name}.log", cwd=root)


def export_revision(rev: str, into: Path) -> tuple[str, Path]:
    """(short commit id, directory) of `rev`'s tree exported from this repository with `git archive`."""
    commit = subprocess.run(["git", "rev-parse", "--short", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True,
                            text=True)
    if commit.returncode != 0:
        raise SystemExit(f"--against {rev}: not a revision of this repository ({commit.stderr.strip()})")
    short = commit.stdout.strip()
    tree = into / f"rev-{short}"
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "archive", short], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"--against {rev}: git archive failed")
    if not (tree / "benchmarks" / "agi_servers.py").exists():
        raise SystemExit(f"--against {rev}: that revision has no benchmarks/agi_servers.py to serve its engine")
    return short, tree


def start_bare(tmp: Path, kind: str, sequence_file: Path) -> Server:
    port = free_port()
    return Server(kind, [sys.executable, "-m", "benchmarks.agi_servers", kind, str(port), str(sequence_file)],
                  port, dict(os.environ), tmp / f"{kind}.log")


def fresh_pg_database(base_url: str) -> str | None:
    """A new empty database beside `base_url`'s, at the schema's head; None if PostgreSQL is not reachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from records.db import make_engine, upgrade
    url = make_url(base_url)
    name = f"hotline_bench_{os.getpid()}"
    try:
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:      # noqa: BLE001 - the PostgreSQL column is skipped, said in the output
        print(f"   (PostgreSQL at {url.render_as_string(hide_password=True)} unavailable: {exc}; skipped)")
        return None
    target = url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(target)
    upgrade(engine)
    engine.dispose()
    return target


def drop_pg_database(db_url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    url = make_url(db_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


# ------------------------------------------------------------------ load shapes

async def closed_loop(port: int, in_flight: int, seconds: float, next_caller) -> tuple[int, int, int]:
    """(calls routed, calls failed, AGI commands) for `seconds` of `in_flight` back-to-back callers."""
    routed = failed = commands = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal routed, failed, commands
        while time.perf_counter() < deadline:
            result = await call(port, "12345", THROUGHPUT_KEYS, next_caller())
            commands += len(result.commands)
            if result.routed:
                routed += 1
            else:
                failed += 1
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return routed, failed, commands


def throughput(servers: list[Server], runs: int, seconds: float) -> dict[str, dict[str, list[float]]]:
    next_caller = callers(12345)
    results: dict[str, dict[str, list[float]]] = {s.kind: {"cpu_us": [], "rate": []} for s in servers}
    for server in servers:                               # warm-up: imports, caches, first connections
        _run(closed_loop(server.port, 50, 1.0, next_caller))
    for _ in range(runs):
        for server in servers:
            cpu0, t0 = server.cpu_seconds(), time.perf_counter()
            routed, failed, commands = _run(closed_loop(server.port, 50, seconds, next_caller))
            elapsed, cpu = time.perf_counter() - t0, server.cpu_seconds() - cpu0
            if failed:
                print(f"   {server.kind}: {failed} calls not routed", file=sys.stderr)
            results[server.kind]["cpu_us"].append(cpu / max(commands, 1) * 1e6)
            results[server.kind]["rate"].append(routed / elapsed)
    return results


async def open_loop(port: int, rate: float, seconds: float, keys: list[str], delay, next_caller,
                    on_tick=None) -> list[CallResult]:
    """`rate` new calls per second for `seconds`; returns every call's result once all have ended."""
    tasks: list[asyncio.Task] = []
    start = time.perf_counter()
    while (now := time.perf_counter()) - start < seconds:
        due = int((now - start) * rate)
        while len(tasks) < due:
            tasks.append(asyncio.create_task(call(port, "12345", keys, next_caller(), timeout=60,
                                                  prompt_delay=delay)))
        if on_tick is not None:
            on_tick(now - start)
        await asyncio.sleep(0.01)
    return list(await asyncio.gather(*tasks))


def held_calls(server: Server, rate: float, seconds: float, stats_file: Path) -> dict[str, float]:
    rng = random.Random(7)
    open_samples: list[tuple[int, int]] = []
    idle = server.rss_kb()
    steady_from = seconds * 0.45
    window: list[float] = []

    def on_tick(elapsed: float) -> None:
        if elapsed >= steady_from:
            if not window:
                window.append(time.perf_counter())
            open_samples.append((server_open(server), server.rss_kb()))

    limit = server.open_files_limit()
    results = _run(open_loop(server.port, rate, seconds, HELD_KEYS, lambda: rng.uniform(1.33, 2.0),
                             callers(99), on_tick))
    window.append(time.perf_counter() - 2.5)             # arrivals stopped; the tail empties, not steady
    server.stop()
    samples = json.loads(stats_file.read_text()) if stats_file.exists() else []
    steady = sorted(r for t, r in samples if window[0] <= t <= window[1])
    at_open, at_rss = max(open_samples) if open_samples else (0, idle)
    return {"open_files": limit, "calls": len(results), "not_routed": sum(not r.routed for r in results),
            "errors": sorted({r.error for r in results if r.error})[:3], "peak_open": at_open,
            "rss_idle_kb": idle, "rss_peak_kb": at_rss, "kb_per_session": (at_rss - idle) / max(at_open, 1),
            "p50_ms": pct(steady, 0.5) * 1e3, "p99_ms": pct(steady, 0.99) * 1e3,
            "max_ms": (steady[-1] if steady else float("nan")) * 1e3, "replies": len(steady)}


def server_open(server: Server) -> int:
    """Established TCP connections on the server's port."""
    return _sockets(server.port, "01")


def listening(port: int) -> bool:
    return _sockets(port, "0A") > 0


def _sockets(port: int, state: str) -> int:
    """Sockets of local port `port` in TCP state `state` (/proc/net/tcp: 01 established, 0A listen)."""
    port_hex = f"{port:04X}"
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == state and parts[1].endswith(":" + port_hex):
                    count += 1
        except FileNotFoundError:
            continue
    return count


def burst(server: Server, calls: int) -> dict[str, float]:
    rng = random.Random(3)
    next_caller = callers(5)

    async def go() -> list[CallResult]:
        tasks = [asyncio.create_task(call(server.port, "12345", ["2"], next_caller(), timeout=60,
                                          prompt_delay=lambda: rng.uniform(1.0, 2.0))) for _ in range(calls)]
        return list(await asyncio.gather(*tasks))
    t0 = time.perf_counter()
    results = _run(go())
    connects = sorted(r.connected_at - t0 for r in results if r.connected_at)
    return {"calls": calls, "routed": sum(r.routed for r in results),
            "refused": sum(r.error.startswith("connect") for r in results),
            "failed": sum(not r.routed and not r.error.startswith("connect") for r in results),
            "last_connect_s": connects[-1] if connects else float("nan"),
            "errors": sorted({r.error for r in results if r.error})[:3]}


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _run(coro):
    try:
        import uvloop
        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def record_sequence(server: Server, path: Path) -> list[str]:
    result = _run(call(server.port, "12345", THROUGHPUT_KEYS, "13900000001", keep_commands=True))
    if not result.routed:
        raise RuntimeError(f"the engine did not route the benchmark call: {result}")
    sequence = [c.decode() for c in result.commands]
    path.write_text(json.dumps(sequence))
    return sequence


# ------------------------------------------------------------------ report

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.agi_load", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (~1 minute)")
    parser.add_argument("--only", default="1,2,3", help="sections to run, e.g. 1 or 2,3")
    parser.add_argument("--against", metavar="REV", help="also run that revision's engine in section 1")
    args = parser.parse_args(argv)
    quick, only, against = args.quick, set(args.only.split(",")), args.against
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {LOAD_CORE})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)      # the load holds 5,000 sockets too
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = Path(tempfile.mkdtemp(prefix="agi-load-"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    print(f"   {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores ({cpu}), Python "
          f"{sys.version.split()[0]}; servers on core {SERVER_CORE}, load on core {LOAD_CORE}; logs in {tmp}")
    if "1" in only:
        report_throughput(tmp, *((3, 1.5) if quick else (5, 3.0)),
                          against=export_revision(against, tmp) if against else None)
    if "2" in only:
        report_held(tmp, 6.0 if quick else 12.0)
    if "3" in only:
        report_burst(tmp)


def report_throughput(tmp: Path, runs: int, seconds: float, against: tuple[str, Path] | None = None) -> None:
    pg_url = fresh_pg_database(os.environ.get("HOTLINE_BENCH_PG_URL",
                                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    servers = [start_engine(tmp, "engine-sqlite")]
    try:
        sequence = record_sequence(servers[0], tmp / "sequence.json")
        if pg_url:
            servers.append(start_engine(tmp, "engine-postgres", pg_url))
        if against is not None:
            servers.append(start_engine(tmp, f"engine-sqlite@{against[0]}", root=against[1]))
        servers += [start_bare(tmp, kind, tmp / "sequence.json") for kind in BARE_KINDS]
        print(f"1. throughput: 50 calls in flight, 12345 + key 2 = {len(sequence)} AGI commands per call; "
              f"{runs} alternating runs of {seconds:g} s per server")
        res = throughput(servers, runs, seconds)
    finally:
        for server in servers:
            server.stop()
        if pg_url:
            drop_pg_database(pg_url)
    med = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in res.items()}
    base = res["bare-panoramisk"]["cpu_us"]
    floor = res["protocol-uvloop"]["cpu_us"]
    print(f"   {'server':24s} {'CPU us/command':>15s} {'calls/s':>9s} {'x bare panoramisk':>18s} {'x floor':>8s}")
    for kind, r in res.items():
        vs_base = statistics.median(c / b for c, b in zip(r["cpu_us"], base))
        vs_floor = statistics.median(c / f for c, f in zip(r["cpu_us"], floor))
        print(f"   {kind:24s} {med[kind]['cpu_us']:15.1f} {med[kind]['rate']:9.0f} {vs_base:17.2f}x {vs_floor:7.2f}x")
    print("   (medians; CPU of the server process, all threads; PostgreSQL's own processes not counted)")


def report_held(tmp: Path, seconds: float) -> None:
    print(f"2. held calls: 1,000 new calls/s for {seconds:g} s, prompts 1.33-2 s (time-out, menu again, key 2)")
    engine = start_engine(tmp, "engine-held", timed=True)
    try:
        held = held_calls(engine, rate=1000, seconds=seconds, stats_file=tmp / "engine-held.stats")
    finally:
        engine.stop()
    print(f"   calls {held['calls']}, not served {held['not_routed']} {held['errors'] or ''}, sessions open at the "
          f"memory sample {held['peak_open']}; the engine's open-files limit {held['open_files']}")
    print(f"   engine reaction (inside the server, steady part): p50 {held['p50_ms']:.2f} ms, p99 "
          f"{held['p99_ms']:.2f} ms, max {held['max_ms']:.1f} ms over {held['replies']} commands (target p99 <= 5 ms)")
    print(f"   resident memory: idle {held['rss_idle_kb'] / 1024:.0f} MB, {held['rss_peak_kb'] / 1024:.0f} MB with "
          f"{held['peak_open']} open -> {held['kb_per_session']:.1f} KB per held session (target <= 50 KB)")


def report_burst(tmp: Path) -> None:
    print("3. burst: 2,000 calls opened at once, prompts 1-2 s")
    engine = start_engine(tmp, "engine-burst")
    try:
        b = burst(engine, 2000)
    finally:
        engine.stop()
    print(f"   routed {b['routed']} of {b['calls']}, refused at connect {b['refused']}, failed {b['failed']} "
          f"{b['errors'] or ''}; last connect {b['last_connect_s']:.2f} s after the first")

if __name__ == "__main__":
    main()
