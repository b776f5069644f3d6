"""Regenerate the seed course's data files exactly as seed 004 generates its data.

    python examples/seeds/make_data.py

Seed 004 calls np.random.seed(42) and draws with NumPy's legacy global generator; RandomState(42)
is that generator. The quadratic-fit exercise draws without a new seed in the seed's notes; here
it starts again from RandomState(42), so that the file does not depend on what ran before.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def write(name: str, columns: dict[str, np.ndarray]) -> None:
    rows = zip(*columns.values(), strict=True)
    lines = [",".join(columns)] + [",".join(repr(float(v)) for v in row) for row in rows]
    (HERE / name).write_text("\n".join(lines) + "\n")


rng = np.random.RandomState(42)
x = rng.uniform(-5, 5, 100)
write("line.csv", {"x": x, "y": 2 * x + 3 + rng.randn(100) * 1.5})

rng = np.random.RandomState(42)
x = np.linspace(-3, 3, 100)
write("quadratic.csv", {"x": x, "y": 0.5 * x**2 - 2 * x + 1 + rng.randn(100) * 0.5})
