"""Cold wall time of building lessons, both languages, Markdown + HTML (issue 6)."""

from __future__ import annotations

import numpy as np

from benchmarks.conftest import cold_command, report


def test_cold_build_lesson_w_minus_3_squared(benchmark, tmp_path):
    out = tmp_path / "w3"
    seconds = benchmark.pedantic(
        lambda: cold_command(
            "-m", "invoke", "build-lesson", "--loss", "(w-3)**2", "--out", str(out)
        ),
        rounds=3,
        iterations=1,
    )
    report("cold invoke build-lesson (w-3)**2", seconds=seconds, aim_seconds=3.0)


def test_cold_build_mse_lesson(benchmark, tmp_path):
    """Seed 004's noisy line: 100 rows, y = 2x + 3 + noise."""
    rng = np.random.default_rng(42)
    x = rng.uniform(-5, 5, 100)
    y = 2 * x + 3 + 1.5 * rng.standard_normal(100)
    data = tmp_path / "line.csv"
    data.write_text(
        "x,y\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y, strict=True))
    )
    out = tmp_path / "mse"
    args = [
        "-m",
        "derive",
        "lesson",
        "--loss",
        "mean((w*x + b - y)**2)",
        "--data",
        str(data),
        "--lr",
        "0.01",
        "--steps",
        "200",
        "--out",
        str(out),
    ]
    seconds = benchmark.pedantic(lambda: cold_command(*args), rounds=3, iterations=1)
    report("cold MSE lesson (100 rows, 200 steps)", seconds=seconds, aim_seconds=6.0)


def test_cold_python_start_with_imports(benchmark):
    """The floor under any cold build: Python with SymPy, NumPy and matplotlib imported."""
    seconds = benchmark.pedantic(
        lambda: cold_command("-c", "import sympy, numpy, matplotlib.pyplot"), rounds=3, iterations=1
    )
    report("cold python + imports", seconds=seconds)
