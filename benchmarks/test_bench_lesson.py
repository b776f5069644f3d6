"""Cold wall time of building a lesson, both languages, Markdown + HTML."""

from __future__ import annotations

from benchmarks.conftest import cold_command, report


def test_cold_build_lesson_w_minus_3_squared(benchmark, tmp_path):
    out = tmp_path / "w3"
    seconds = benchmark.pedantic(
        lambda: cold_command("-m", "derive", "lesson", "--loss", "(w-3)**2", "--out", str(out)),
        rounds=3,
        iterations=1,
    )
    report("cold build-lesson (w-3)**2", seconds=seconds, aim_seconds=3.0)


def test_cold_python_start_with_imports(benchmark):
    """The floor under any cold build: Python with SymPy, NumPy and matplotlib imported."""
    benchmark.pedantic(
        lambda: cold_command("-c", "import sympy, numpy, matplotlib.pyplot"),
        rounds=3,
        iterations=1,
    )
