"""Routing benchmark: decision time and load+validate time, each against a baseline in the same run.

Run: .venv/bin/python -m benchmarks.routing_bench
Baselines: a bare dict lookup of the dialed number (the least any router does) for decisions, and a bare
libyaml parse of the same text for load+validate. Figures are medians of several repetitions.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from routing.decide import decide
from routing.loader import load_table

CONF = Path(__file__).resolve().parents[1] / "conf" / "routing.yaml"
SH = ZoneInfo("Asia/Shanghai")
CATEGORIES = [
    "{category: dual, queue: general-12345, from: 2021-09-01, tags: [t]}",
    "{category: expert, queue: expert-12320, from: 2021-09-01}",
    "{category: retained_seat, queue: general-12345, transfers: [{kind: attended, trunk: seat-12348}]}",
    "{category: cancelled, queue: general-12345, prompts: [p], transition: {from: 2021-09-01, until: 2021-10-31}, "
    "after_transition: hangup, after_prompts: [q]}",
]


def generated_table_text(lines: int) -> str:
    text = CONF.read_text(encoding="utf-8")
    extra = []
    for i in range(lines - text.count("\n  \"") ):
        number = f"{960000 + i}"
        rule = CATEGORIES[i % len(CATEGORIES)]
        extra.append(f'  "{number}":\n    service: generated {i}\n    seed: benchmark\n    rules:\n      - {rule}\n')
    return text + "".join(extra)


def median_us(fn, calls: int, repeats: int = 7) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(calls)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def decision_bench(table, label: str) -> None:
    numbers = sorted(table.lines)
    instants = [datetime(2021, 9, 10, 3, tzinfo=SH) + timedelta(hours=7 * i) for i in range(97)]
    cases = [(numbers[i % len(numbers)], instants[i % len(instants)]) for i in range(5000)]

    def routed(n):
        for i in range(n):
            number, at = cases[i % 5000]
            decide(table, number, "13800000000", at)

    def baseline(n):
        lines = table.lines
        for i in range(n):
            number, _ = cases[i % 5000]
            lines.get(number)

    ours, base = median_us(routed, 20000), median_us(baseline, 20000)
    print(f"decision  {label:<22} median {ours:7.2f} µs/call   baseline dict lookup {base:6.3f} µs   "
          f"ratio {ours / base:6.1f}x")


def load_bench(text: str, label: str) -> None:
    def ours(_):
        load_table("bench.yaml", text=text)

    def base(_):
        yaml.load(text, Loader=yaml.CSafeLoader)

    ours_ms, base_ms = median_us(ours, 1, 5) / 1000, median_us(base, 1, 5) / 1000
    print(f"load      {label:<22} median {ours_ms:7.1f} ms        baseline bare libyaml parse {base_ms:6.1f} ms   "
          f"ratio {ours_ms / base_ms:4.1f}x")


def main() -> None:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}")
    shipped_text = CONF.read_text(encoding="utf-8")
    big_text = generated_table_text(2000)
    shipped, big = load_table(CONF), load_table("big.yaml", text=big_text)
    print(f"tables: shipped {len(shipped.lines)} lines; generated {len(big.lines)} lines")
    decision_bench(shipped, "shipped table")
    decision_bench(big, "2,000-line table")
    load_bench(shipped_text, "shipped table")
    load_bench(big_text, "2,000-line table")


if __name__ == "__main__":
    main()
