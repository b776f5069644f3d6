"""Benchmarks report ratios against a baseline measured in the same run (machines are noisy)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def median_seconds(function, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cold_command(*args: str) -> float:
    """Wall time of a fresh process, as a user pays it."""
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - started


def compare(benchmark, name: str, ours, baseline, repeats: int, aim: float | None = None) -> None:
    """Median time of `ours` and of `baseline`, measured in this run, and their ratio."""
    ours()  # first call: one-time costs (compilation, caches) are not what is compared
    derive_s = median_seconds(ours, repeats)
    baseline_s = median_seconds(baseline, repeats)
    benchmark.pedantic(ours, rounds=1, iterations=1)
    extra = {} if aim is None else {"aim": aim}
    report(name, derive_s=derive_s, baseline_s=baseline_s, ratio=derive_s / baseline_s, **extra)


def report(name: str, **values: float) -> None:
    shown = ", ".join(f"{key} = {value:.3g}" for key, value in values.items())
    print(f"\n[bench] {name}: {shown}")
