"""Start-up of the `derive` command (issue 14): fresh processes, as ratios to a fresh
`python -c "import sympy"` measured in the same run, runs interleaved so that the machine's
load falls on both alike. CPU-seconds (user + system of the child) are reported with wall time."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time

import pytest

from benchmarks.conftest import ROOT, report

BASELINE = ("-c", "import sympy")
COMMANDS = {
    # name: (arguments, the exit code expected, aim as a ratio to the baseline, rounds)
    "derive check, one answer": (
        ("check", "--loss", "(w-3)**2", "--wrt", "w", "--answer", "2*(w-3)"),
        0,
        1.3,
        7,
    ),
    "derive diff --loss 'w+' (refused)": (("diff", "--loss", "w+"), 2, 1.1, 7),
    "derive diff": (("diff", "--loss", "(w-3)**2"), 0, 1.5, 7),
    "derive --help": (("--help",), 0, None, 7),
    "derive lesson (w-3)**2, one language": (
        ("lesson", "--loss", "(w-3)**2", "--lang", "en", "--out", "{out}"),
        0,
        2.5,
        3,
    ),
}


# A user's Python writes bytecode and reads it on the next run; a shell that forbids it
# (PYTHONDONTWRITEBYTECODE) would charge every run the compilation of derive's modules.
_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _run(args: tuple[str, ...], code: int) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, env=_ENV)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == code, done.stderr.decode()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


@pytest.mark.parametrize("name", COMMANDS)
def test_start_up(benchmark, tmp_path, name):
    arguments, code, aim, rounds = COMMANDS[name]
    command = ("-m", "derive", *(a.format(out=tmp_path / "out") for a in arguments))
    _run(command, code)  # compiled bytecode and the OS's file cache, as a user's second run
    ours, baseline = [], []
    for _ in range(rounds):
        ours.append(_run(command, code))
        baseline.append(_run(BASELINE, 0))
    benchmark.pedantic(lambda: _run(command, code), rounds=1, iterations=1)
    wall = statistics.median(w for w, _ in ours)
    cpu = statistics.median(c for _, c in ours)
    baseline_wall = statistics.median(w for w, _ in baseline)
    baseline_cpu = statistics.median(c for _, c in baseline)
    extra = {} if aim is None else {"aim": aim}
    report(
        name,
        derive_s=wall,
        sympy_s=baseline_wall,
        ratio=wall / baseline_wall,
        cpu_s=cpu,
        sympy_cpu_s=baseline_cpu,
        cpu_ratio=cpu / baseline_cpu,
        **extra,
    )
