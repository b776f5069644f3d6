"""Descent: the seeds' worked examples, each against a loop written here by hand."""

from __future__ import annotations

import numpy as np
import pytest

from derive.core.derivation import differentiate
from derive.core.descend import Optimizer, descend
from derive.core.parse import parse_loss


def run(text, start, lr, steps, data=None, names=()):
    loss = parse_loss(text, data=names)
    return descend(differentiate(loss), start, Optimizer.make("sgd", lr=lr), steps, data=data)


def test_seed_000_first_four_steps():
    trace = run("(w-3)**2", {"w": 0}, 0.1, 4)
    w = 0.0
    expected = [w]
    for _ in range(4):
        w = w - 0.1 * 2 * (w - 3)
        expected.append(w)
    assert trace.params[:, 0] == pytest.approx(expected, rel=1e-15)
    assert trace.params[1:, 0] == pytest.approx([0.6, 1.08, 1.464, 1.7712], rel=1e-12)
    assert trace.grad[:4, 0] == pytest.approx([-6.0, -4.8, -3.84, -3.072], rel=1e-12)
    assert trace.loss[0] == 9.0


@pytest.mark.parametrize("lr", [0.01, 0.3, 0.95])
def test_seed_004_x_squared_from_4(lr):
    trace = run("x**2", {"x": 4}, lr, 30)
    x, expected = 4.0, [4.0]
    for _ in range(30):
        x = x - lr * (2 * x)
        expected.append(x)
    assert trace.params[:, 0] == pytest.approx(expected, rel=1e-13)
    assert trace.status == "max_steps"


def test_seed_004_x_squared_diverges_at_lr_1_1():
    trace = run("x**2", {"x": 4}, 1.1, 5)
    # |x| grows by |1 - 2.2| = 1.2 each step: 4 → -4.8 → 5.76 ...
    assert trace.params[1:, 0] == pytest.approx([-4.8, 5.76, -6.912, 8.2944, -9.95328])
    long = run("x**2", {"x": 4}, 1.1, 10_000)
    assert long.status == "diverged"
    assert not np.isfinite(long.loss[-1])
    assert long.steps < 10_000


def test_seed_001_regression_true_epochs():
    """The seed prints epochs 2 and 3 as (0.94, 0.87), (1.13, 0.67); the true values differ."""
    data = {"x": np.array([1.0, 2.0, 3.0]), "y": np.array([2.0, 3.0, 4.0])}
    trace = run("mean((theta0 + theta1*x - y)**2)", {}, 0.1, 100, data, ("x", "y"))
    t0 = t1 = 0.0
    expected = [(t0, t1)]
    for _ in range(100):
        error = [t0 + t1 * xi - yi for xi, yi in zip([1, 2, 3], [2, 3, 4], strict=True)]
        g0 = 2 * sum(error) / 3
        g1 = 2 * sum(e * xi for e, xi in zip(error, [1, 2, 3], strict=True)) / 3
        t0, t1 = t0 - 0.1 * g0, t1 - 0.1 * g1
        expected.append((t0, t1))
    assert trace.params == pytest.approx(np.array(expected), rel=1e-12)
    assert trace.params[1] == pytest.approx([0.6, 4 / 3])
    assert trace.params[2] == pytest.approx([0.546667, 1.182222], abs=1e-6)
    assert trace.params[3] == pytest.approx([0.564444, 1.193481], abs=1e-6)


def test_two_parameters_from_4_3():
    trace = run("x**2 + 2*y**2", {"x": 4, "y": 3}, 0.1, 3)
    x, y = 4.0, 3.0
    for t in range(1, 4):
        x, y = x - 0.1 * 2 * x, y - 0.1 * 4 * y
        assert trace.params[t] == pytest.approx([x, y], rel=1e-15)


def test_tolerance_stops_with_status_converged():
    loss = parse_loss("(w-3)**2")
    trace = descend(differentiate(loss), {"w": 0}, Optimizer.make("sgd"), 1000, tol=1e-6)
    assert trace.status == "converged"
    assert abs(trace.grad[-1, 0]) <= 1e-6
