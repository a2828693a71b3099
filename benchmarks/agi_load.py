"""FastAGI load: our engine vs a bare panoramisk app sending the same AGI commands, in the same run.

    .venv/bin/python -m benchmarks.agi_load            # ~1-2 minutes

Both servers run in their own subprocess (CPU read from /proc/<pid>/stat, memory from /proc/<pid>/status);
the load comes from this process, through the Asterisk emulator (ivr.emulator), over TCP on 127.0.0.1.

1. Throughput, closed loop: 50 calls in flight, each a 12345 call pressing 2 (13 AGI commands). Seven
   alternating runs; medians of sessions/s and server CPU us per session; ratio engine/bare (target >= 0.7)
   as the median over (engine run, next bare run) pairs.
2. Held sessions: calls arrive at 200/s; each waits out the menu three times with the peer answering every
   prompt after 1-3 s (~10 s per call), so ~2,000 sessions are open at once. Reported: p99 of the engine's
   reaction time (reply handed over by the codec -> next command written, measured inside the server over
   the last 40% of the run; target < 5 ms) and resident memory per held session (target < 50 KB).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
THROUGHPUT_CALL = ("12345", ["2"])
HELD_CALL = ("12345", ["timeout", "timeout", "timeout"])


# ------------------------------------------------------------------ the servers (subprocess side)

def engine_sequence() -> list[str]:
    """The exact command lines our engine sends for THROUGHPUT_CALL (recorded once, in-process)."""
    from ivr.emulator import AsteriskChannel, asterisk_env
    from ivr.engine import CallFlow, load_config
    from ivr.agi.codec import ResponseParser, command_line
    from datetime import datetime, timezone

    config = load_config(ROOT / "conf/routing.yaml", ROOT / "conf/ivr.yaml")
    env = asterisk_env(dialed=THROUGHPUT_CALL[0])
    channel = AsteriskChannel(env, THROUGHPUT_CALL[1])
    flow = CallFlow(env, config, datetime.now(timezone.utc))
    gen, lines, parser = flow.run(), [], ResponseParser()
    cmd = next(gen)
    try:
        while True:
            line = command_line(cmd)
            lines.append(line)
            (resp,) = parser.feed(channel.handle(line))
            cmd = gen.send(resp)
    except StopIteration:
        return lines


async def serve_engine(port_file: Path, stats_file: Path) -> None:
    import structlog
    from ivr.engine import ConfigHolder, Engine
    from ivr.fastagi import ServerLimits, build_server
    from ivr.fastagi_compat import AgiRequest
    from scripts.logsetup import configure_logging

    configure_logging(level="info", fmt="json", stream=open(os.devnull, "w"))   # logs rendered, as in production
    reactions: list[float] = []
    original = AgiRequest.send

    async def timed_send(self, cmd):           # reaction = previous reply handed over -> this command sent
        last = getattr(self, "_bench_replied", None)
        if last is not None and len(reactions) < 2_000_000:
            reactions.append(time.perf_counter() - last)
        resp = await original(self, cmd)
        self._bench_replied = time.perf_counter()
        return resp
    AgiRequest.send = timed_send

    holder = ConfigHolder.from_files(ROOT / "conf/routing.yaml", ROOT / "conf/ivr.yaml")
    server = build_server(Engine(holder), port=0, limits=ServerLimits(max_sessions=10_000, reply_timeout=30))
    await _run(server.start, server.shutdown, port_file, stats_file, reactions, structlog)


async def serve_bare(port_file: Path, stats_file: Path) -> None:
    from panoramisk.fast_agi import Application

    sequence = engine_sequence()
    app = Application(loop=asyncio.get_running_loop())

    async def route(request):
        for line in sequence:
            await request.send_command(line)
    app.add_route("route", route)
    server = None

    async def start():
        nonlocal server
        server = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=1024)
        return server.sockets[0].getsockname()[1]

    async def stop():
        server.close()
    await _run(start, stop, port_file, stats_file, [], None)


async def _run(start, stop, port_file: Path, stats_file: Path, reactions: list[float], _structlog) -> None:
    port = await start()
    port_file.write_text(str(port))
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGUSR1, reactions.clear)     # start of a measurement window
    await done.wait()
    stats_file.write_text(json.dumps({"reactions": reactions}))
    await stop()


# ------------------------------------------------------------------ the load (this process)

class Server:
    def __init__(self, kind: str, tmp: Path) -> None:
        self.port_file, self.stats_file = tmp / f"{kind}.port", tmp / f"{kind}.stats"
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.agi_load", "--serve", kind,
                                      str(self.port_file), str(self.stats_file)], cwd=ROOT)
        for _ in range(400):
            if self.port_file.exists() and self.port_file.read_text():
                break
            time.sleep(0.025)
        self.port = int(self.port_file.read_text())

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return json.loads(self.stats_file.read_text()) if self.stats_file.exists() else {}


async def closed_loop(port: int, in_flight: int, seconds: float) -> tuple[int, int]:
    from ivr.emulator import place_call
    done = failed = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, failed
        while time.perf_counter() < deadline:
            t = await place_call("127.0.0.1", port, dialed=THROUGHPUT_CALL[0], dtmf=THROUGHPUT_CALL[1], timeout=10)
            if t.error or t.variables.get("HOTLINE_ACTION", "queue") != "queue":
                failed += 1
            else:
                done += 1
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return done, failed


def throughput(servers: dict[str, Server], runs: int, seconds: float) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, list[float]]] = {k: {"rate": [], "cpu_us": []} for k in servers}
    for kind, server in servers.items():                    # warm-up: imports, caches, first connections
        asyncio.run(closed_loop(server.port, 50, 0.5))
    for _ in range(runs):
        for kind, server in servers.items():
            cpu0, t0 = server.cpu_seconds(), time.perf_counter()
            done, failed = asyncio.run(closed_loop(server.port, 50, seconds))
            elapsed, cpu = time.perf_counter() - t0, server.cpu_seconds() - cpu0
            if failed:
                print(f"  {kind}: {failed} calls failed", file=sys.stderr)
            results[kind]["rate"].append(done / elapsed)
            results[kind]["cpu_us"].append(cpu / max(done, 1) * 1e6)
    medians = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in results.items()}
    # Each engine run is paired with the bare run right after it: the ratio of a pair is not moved by the
    # slow drifts of a shared machine the way the ratio of two medians is.
    pairs = [e / b for e, b in zip(results["engine"]["rate"], results["bare-panoramisk"]["rate"])]
    medians["engine"]["pair_ratio"] = statistics.median(pairs)
    medians["engine"]["pair_ratio_range"] = (min(pairs), max(pairs))
    return medians


async def held_load(server: Server, rate: float, seconds: float) -> dict[str, float]:
    from ivr.emulator import place_call
    rng = random.Random(12345)
    peer_reactions: list[float] = []
    open_now = peak = 0
    rss_samples: list[tuple[int, int]] = []

    def delay(line: str) -> float:
        return rng.uniform(1.0, 3.0) if line.startswith(("STREAM FILE", "GET OPTION", "GET DATA")) else 0.0

    async def one() -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            t = await place_call("127.0.0.1", server.port, dialed=HELD_CALL[0], dtmf=HELD_CALL[1],
                                 timeout=60, reply_delay=delay)
            if t.error:
                print("  held call failed:", t.error, file=sys.stderr)
        finally:
            open_now -= 1

    rss_idle = server.rss_kb()
    tasks = []
    start = time.perf_counter()
    n = 0
    measuring = False
    while (now := time.perf_counter()) - start < seconds:
        due = int((now - start) * rate)
        while n < due:
            tasks.append(asyncio.create_task(one()))
            n += 1
        if not measuring and now - start > seconds * 0.6:
            server.proc.send_signal(signal.SIGUSR1)          # the server's reaction times from here on
            measuring = True
        if measuring:
            rss_samples.append((open_now, server.rss_kb()))
        await asyncio.sleep(0.05)
    at_open, at_rss = max(rss_samples)
    await asyncio.gather(*tasks)
    return {"calls": n, "peak_open": peak, "open_at_sample": at_open, "rss_idle_kb": rss_idle,
            "rss_peak_kb": at_rss, "kb_per_session": (at_rss - rss_idle) / max(at_open, 1)}


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix="agi-load-"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    print(f"machine: nproc={os.cpu_count()}, {cpu}, Python {sys.version.split()[0]}")
    servers = {"engine": Server("engine", tmp), "bare-panoramisk": Server("bare", tmp)}
    try:
        print("1. throughput, 50 calls in flight (closed loop), 12345 + key 2 = 13 AGI commands per call")
        res = throughput(servers, runs=7, seconds=2.5)
        for kind, r in res.items():
            print(f"   {kind:16s} {r['rate']:8.0f} sessions/s   {r['cpu_us']:7.0f} us server CPU per session "
                  f"(medians of 7 runs)")
        ratio = res["engine"]["rate"] / res["bare-panoramisk"]["rate"]
        low, high = res["engine"]["pair_ratio_range"]
        cpu_ratio = res["engine"]["cpu_us"] / res["bare-panoramisk"]["cpu_us"]
        print(f"   engine/bare sessions/s: median of paired runs {res['engine']['pair_ratio']:.2f}x "
              f"(pairs {low:.2f}-{high:.2f}x; ratio of medians {ratio:.2f}x; target >= 0.7x); "
              f"server CPU per session {cpu_ratio:.2f}x the bare app's")
    finally:
        servers["bare-panoramisk"].stop()
    engine = servers["engine"]
    try:
        print("2. held sessions: 200 new calls/s, every prompt answered after 1-3 s (~10 s per call)")
        held = asyncio.run(held_load(engine, rate=200, seconds=14.0))
    finally:
        stats = engine.stop()
    reactions = [r * 1000 for r in stats.get("reactions", [])]
    print(f"   calls {held['calls']}, peak open sessions {held['peak_open']}")
    print(f"   engine reaction (reply in -> next command out, in the server): p50 {p(reactions, .5):.3f} ms, "
          f"p99 {p(reactions, .99):.3f} ms, max {max(reactions, default=float('nan')):.1f} ms "
          f"over {len(reactions)} replies (target p99 < 5 ms)")
    print(f"   resident memory: idle {held['rss_idle_kb']} KB, {held['rss_peak_kb']} KB with "
          f"{held['open_at_sample']} sessions open -> {held['kb_per_session']:.1f} KB per held session "
          f"(target < 50 KB)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        runner = serve_engine if sys.argv[2] == "engine" else serve_bare
        asyncio.run(runner(Path(sys.argv[3]), Path(sys.argv[4])))
    else:
        main()
