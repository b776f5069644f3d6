"""Descent speed, as ratios to hand-written loops measured in the same run (issue 5)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from benchmarks.conftest import compare
from derive.app.cli import keep_freed_memory
from derive.core.derivation import differentiate
from derive.core.descend import descend
from derive.core.optimizers import Optimizer
from derive.core.parse import parse_loss
from derive.core.schedules import parse_schedule

keep_freed_memory()  # as the `derive` command does; the baselines run under it too

ROWS = 100_000
rng = np.random.default_rng(0)
X = rng.uniform(-5, 5, ROWS)
Y = 2 * X + 3 + rng.standard_normal(ROWS)
MSE = differentiate(parse_loss("mean((w*x + b - y)**2)", data=("x", "y")))


def numpy_adam(steps: int = 1000, lr: float = 0.1, rates=None):
    """Adam by hand, recording loss and gradient each step as a trace does; `rates`: the rate
    of each step, from a schedule."""
    p, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    params, losses, grads = [p], [], []
    for t in range(1, steps + 2):
        r = p[0] * X + p[1] - Y
        g = np.array([2 * np.mean(r * X), 2 * np.mean(r)])
        losses.append(np.mean(r * r))
        grads.append(g)
        if t == steps + 1:
            break
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        rate = lr if rates is None else rates[t - 1]
        p = p - rate / (1 - 0.9**t) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**t) + 1e-8)
        params.append(p)
    return params


def derive_adam():
    return descend(MSE, {}, Optimizer.make("adam", lr=0.1), 1000, data={"x": X, "y": Y})


def test_adam_1000_steps_mse_1e5_rows(benchmark):
    assert np.allclose(derive_adam().params[-1], numpy_adam()[-1], rtol=1e-9)
    compare(benchmark, "Adam 1000 steps, MSE, n=1e5, vs NumPy", derive_adam, numpy_adam, 5, aim=1.3)


COSINE = [0.05 * (1 + np.cos(np.pi * t / 1000)) for t in range(1000)]  # lr 0.1, T_max 1000


def derive_adam_cosine():
    return descend(
        MSE,
        {},
        Optimizer.make("adam", lr=0.1),
        1000,
        data={"x": X, "y": Y},
        schedule=parse_schedule("cosine"),
    )


def test_adam_1000_steps_cosine_schedule_mse_1e5_rows(benchmark):
    """A schedule costs one dict of options per step: nothing next to 10⁵ rows."""
    np.testing.assert_allclose(derive_adam_cosine().lr[:1000], COSINE, rtol=1e-12)
    assert np.allclose(derive_adam_cosine().params[-1], numpy_adam(rates=COSINE)[-1], rtol=1e-9)
    compare(
        benchmark,
        "Adam + cosine schedule 1000 steps, MSE, n=1e5, vs NumPy",
        derive_adam_cosine,
        lambda: numpy_adam(rates=COSINE),
        5,
        aim=1.3,
    )


def float_loop(steps: int = 10_000):
    w, params, losses, grads = 0.0, [0.0], [], []
    for _ in range(steps):
        g = 2 * (w - 3)
        losses.append((w - 3) ** 2)
        grads.append(g)
        w = w - 0.1 * g
        params.append(w)
    return params


W3 = differentiate(parse_loss("(w-3)**2"))


def derive_plain():
    return descend(W3, {"w": 0}, Optimizer.make("sgd"), 10_000)


def test_plain_10000_steps_w_minus_3_squared(benchmark):
    compare(
        benchmark,
        "plain GD 10,000 steps, (w-3)**2, vs Python floats",
        derive_plain,
        float_loop,
        9,
        aim=10,
    )


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_adam_against_torch_optim(benchmark):
    import torch

    x, y = torch.tensor(X), torch.tensor(Y)

    def torch_adam():
        p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.Adam([p], lr=0.1)
        for _ in range(1000):
            optimizer.zero_grad()
            loss = torch.mean((p[0] * x + p[1] - y) ** 2)
            loss.backward()
            optimizer.step()
        return p

    compare(benchmark, "Adam vs torch.optim (CPU)", derive_adam, torch_adam, 5)
