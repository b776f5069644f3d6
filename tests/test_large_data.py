"""Lessons over large data sets: the figures' loss surface taken from moments of the data
(exact, cost independent of the rows) and a whole lesson over 10⁵ rows in bounded memory."""

import resource
import subprocess
import sys

import numpy as np
import pytest

from derive import api
from derive.core.grid import MOMENT_ROWS, grid_side, loss_function

RNG = np.random.default_rng(7)
ROWS = MOMENT_ROWS + 5_000
X = RNG.normal(2.0, 1.5, ROWS)
Y = 3.0 * X - 1.0 + RNG.normal(0.0, 0.5, ROWS)
LABELS = (RNG.random(ROWS) < 1 / (1 + np.exp(-(X - 2)))).astype(float)
W, B = np.meshgrid(np.linspace(-2, 5, 9), np.linspace(-3, 2, 7))


def _plain(body, w=W, b=B) -> np.ndarray:
    """The loss at each grid point, one point at a time, as a mean over all rows."""
    out = np.empty(w.shape)
    for index in np.ndindex(w.shape):
        out[index] = np.mean(body(w[index], b[index]))
    return out


@pytest.mark.parametrize(
    ("loss", "body"),
    [
        ("mean((w*x+b-y)**2)", lambda w, b: (w * X + b - Y) ** 2),
        ("mean((w*x**2+b*x-y)**2) + 0.1*(w**2+b**2)", None),
        ("mean(abs(w*x+b-y))", lambda w, b: np.abs(w * X + b - Y)),
    ],
)
def test_the_loss_surface_of_a_large_data_set_is_the_mean_over_every_row(loss, body):
    if body is None:

        def body(w, b):
            return (w * X**2 + b * X - Y) ** 2 + 0.1 * (w**2 + b**2)

    derivation = api.differentiate(loss, data={"x": X, "y": Y}, params=["w", "b"])
    surface = loss_function(derivation, {"x": X, "y": Y})
    np.testing.assert_allclose(surface(W, B), _plain(body), rtol=1e-10)


def test_the_surface_of_a_logistic_loss_is_taken_row_by_row_and_right():
    loss = "mean(-y*log(sigmoid(w*x+b)) - (1-y)*log(1-sigmoid(w*x+b)))"
    derivation = api.differentiate(loss, data={"x": X, "y": LABELS}, params=["w", "b"])
    surface = loss_function(derivation, {"x": X, "y": LABELS})

    def body(w, b):
        p = 1 / (1 + np.exp(-(w * X + b)))
        return -LABELS * np.log(p) - (1 - LABELS) * np.log(1 - p)

    w, b = W / 3, B / 3  # σ stays below 1 in floating point: every log is finite
    np.testing.assert_allclose(surface(w, b), _plain(body, w, b), rtol=1e-10)
    # each point costs a pass over the rows, so the contour grid is coarser, never below 40
    assert 40 <= grid_side(surface, 240) < 240


def _two_gigabytes():
    limit = 2 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_a_lesson_over_a_hundred_thousand_rows_finishes_in_two_gigabytes(tmp_path):
    rows = 100_000
    x = np.linspace(-3, 3, rows)
    y = 2 * x + 1 + np.sin(7 * x)  # a fixed cloud, no randomness
    csv = tmp_path / "big.csv"
    np.savetxt(csv, np.column_stack([x, y]), delimiter=",", header="x,y", comments="", fmt="%.6f")
    out = tmp_path / "lesson"
    command = ["lesson", "--loss", "mean((w*x+b-y)**2)", "--data", str(csv), "--lang", "en"]
    done = subprocess.run(
        [sys.executable, "-m", "derive", *command, "--steps", "10", "--out", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=_two_gigabytes,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    page = (out / "lesson.en.md").read_text()
    # the first step's gradient, by a plain mean over the rows: ∂L/∂w = 2·mean((w x + b − y) x)
    grad_w = 2 * np.mean((0 * x + 0 - np.round(y, 6)) * np.round(x, 6))
    assert f"{grad_w:.4f}"[:-1] in page
    # a stochastic epoch over 10⁵ rows would be 10⁵ updates: the comparison says it samples
    assert "runs on 2000 of the examples, drawn at random with seed 0" in page
