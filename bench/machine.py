"""A fixed amount of pure-Python work, timed: how fast this machine's CPU is right now.

The same build on this machine has measured up to three times faster on one day than on another (the CPU time
of the same requests changed, not the code). The benchmarks print this reference at their start and end so that
figures from different runs can be compared: a figure that moved with the reference moved with the machine.

Run alone: python bench/machine.py
"""
from __future__ import annotations

import json
import time

REPEATS = 5


def _work() -> int:
    """Dicts, strings, JSON and sorting: the kind of work a request does, with no I/O (~50 ms on a quick core)."""
    total = 0
    for round_ in range(40):
        rows = [{"id": i, "name": f"院校{i:05d}", "level": ("初级", "中级", "高级")[i % 3], "score": (i * 7919) % 1000}
                for i in range(500)]
        text = json.dumps(rows, ensure_ascii=False)
        back = json.loads(text)
        back.sort(key=lambda row: (row["score"], row["name"]))
        total += sum(len(row["name"]) for row in back[:100]) + round_
    return total


def reference_ms() -> float:
    """The best of REPEATS timings of the fixed work, in ms (the best is the least disturbed by other work)."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        _work()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def describe(label: str) -> str:
    return f"machine reference ({label}): {reference_ms():.1f} ms for the fixed pure-Python work of bench/machine.py"


if __name__ == "__main__":
    print(describe("now"))
