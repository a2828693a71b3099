"""Replay benchmark: one million recorded calls re-decided under the shipped table and menus, against a bare
loop over the same rows in the same run (issue 13: under a minute on this machine).

Run: .venv/bin/python -m benchmarks.traffic_bench [--calls N] [--repeats R] [--with-db]
Rows: dialed numbers drawn with the synthetic week's volumes, instants over 30 days, callers from a pool of
50,000 hashes, a tenth with an IVR path. Baseline: the bare loop reads every row and counts it by number (the
least any report over the rows does). Replay starts with an empty cache each repetition. The uncached figure
is decide() on every call of a 20,000-call slice, per call. --with-db also writes the rows to a temporary
SQLite file and times the whole replay from the database once (reading the rows included).
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.menus import load_menus
from routing.loader import load_table
from traffic.replay import RecordedCall, Replayer
from traffic.synth import DAILY_VOLUME

CONF = Path(__file__).resolve().parents[1] / "conf"
SH = ZoneInfo("Asia/Shanghai")
KEY = b"benchmark-key-benchmark-key-0000"
PATHS = ["main>1", "main>2", "main>3", "main>4", "main>5>cities>1", "main>5>cities>2", "main>6", "main>7>t>t",
         "expert-12320>1", "expert-12320>2", "subcenter>1", "subcenter>2"]


def make_rows(n: int, seed: int = 1) -> list[RecordedCall]:
    rng = random.Random(seed)
    numbers, weights = zip(*DAILY_VOLUME.items())
    start = datetime(2026, 10, 26, tzinfo=SH)
    callers = [f"{rng.getrandbits(256):064x}" for _ in range(50_000)]
    dialed = rng.choices(numbers, weights, k=n)
    rows = []
    for i in range(n):
        path = rng.choice(PATHS) if rng.random() < 0.1 else None
        at = start + timedelta(seconds=rng.random() * 30 * 86400)
        rows.append(RecordedCall(dialed[i], at, rng.choice(callers), path, "general-12345", "queue"))
    return rows


def bare_loop(rows) -> Counter:
    counts: Counter = Counter()
    for call in rows:
        counts[call.dialed] += 1
    return counts


def median_seconds(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def with_db(rows, table, menus) -> None:
    from records.db import ready_engine
    from records.schema import calls
    from traffic.source import recorded_calls

    with tempfile.TemporaryDirectory() as tmp:
        engine = ready_engine(f"sqlite:///{tmp}/bench.sqlite3")
        with engine.begin() as conn:
            for at in range(0, len(rows), 50_000):
                conn.execute(calls.insert(), [
                    {"uniqueid": f"b{at + i}", "dialed": c.dialed, "line": c.dialed, "arrived_at": c.arrived_at,
                     "caller_hash": c.caller_hash, "ivr_path": c.ivr_path, "target": c.target, "action": c.action,
                     "revision": 1} for i, c in enumerate(rows[at:at + 50_000])])
        start, end = min(c.arrived_at for c in rows), max(c.arrived_at for c in rows) + timedelta(seconds=1)
        began = time.perf_counter()
        read = sum(1 for _ in recorded_calls(engine, start, end))
        reading = time.perf_counter() - began
        began = time.perf_counter()
        report = Replayer(table, menus, KEY).replay(recorded_calls(engine, start, end))
        whole = time.perf_counter() - began
        engine.dispose()
    print(f"from SQLite: reading {read:,} rows alone {reading:.1f} s; the whole replay {whole:.1f} s "
          f"({report.calls:,} calls)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--with-db", action="store_true")
    args = parser.parse_args()
    table = load_table(CONF / "routing.yaml")
    menus = load_menus(CONF / "ivr.yaml", table)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.calls:,} calls, median of {args.repeats}")
    rows = make_rows(args.calls)
    base = median_seconds(lambda: bare_loop(rows), args.repeats)
    last = {}

    def replay():
        last["report"] = Replayer(table, menus, KEY).replay(rows)
    replayed = median_seconds(replay, args.repeats)
    report = last["report"]
    sample = rows[:20_000]
    plain = Replayer(table, menus, KEY)
    uncached = median_seconds(lambda: [plain.decide_one(c) for c in sample], 3) / len(sample)
    print(f"bare loop over the rows   {base:8.3f} s  ({base / args.calls * 1e6:.2f} µs/call)")
    print(f"replay (cached decisions) {replayed:8.3f} s  ({replayed / args.calls * 1e6:.2f} µs/call, "
          f"{report.decisions:,} decide() calls)")
    print(f"ratio replay / bare loop  {replayed / base:8.1f}")
    print(f"uncached decide()         {uncached * 1e6:8.2f} µs/call -> {uncached * args.calls:.1f} s for all "
          f"({uncached * args.calls / replayed:.1f}x the cached replay)")
    if args.with_db:
        with_db(rows, table, menus)


if __name__ == "__main__":
    main()
