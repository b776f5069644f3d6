"""Derivation cost against n, and lambdified gradients against hand-written NumPy (issue 4)."""

from __future__ import annotations

import numpy as np
from sympy.core.cache import clear_cache

from benchmarks.conftest import compare, median_seconds, report
from derive.app.cli import keep_freed_memory
from derive.core.derivation import differentiate
from derive.core.numeric import numeric
from derive.core.parse import one_hot_targets, parse_loss

keep_freed_memory()  # as the `derive` command does; the baselines run under it too

MSE = "mean((w*x + b - y)**2)"
LOGISTIC = "mean(-(y*log(sigmoid(w*x+b)) + (1-y)*log(1-sigmoid(w*x+b))))"


def columns(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, rows)
    return x, (x + 0.5 * rng.standard_normal(rows) > 0).astype(float)


def derivation_stage(text: str, data: dict[str, np.ndarray]):
    """Parse with the data's columns, derive every partial, compile the NumPy function: cold."""
    clear_cache()  # SymPy's own cache would make every repeat after the first look free
    derivation = differentiate(parse_loss(text, data=tuple(data)))
    return numeric.__wrapped__(derivation)  # compile afresh, bypassing derive's cache


def test_derivation_cost_does_not_grow_with_n(benchmark):
    small, large = (dict(zip("xy", columns(rows), strict=True)) for rows in (10, 1_000_000))
    derivation_stage(MSE, small)
    at_10 = median_seconds(lambda: derivation_stage(MSE, small), 7)
    at_million = median_seconds(lambda: derivation_stage(MSE, large), 7)
    function = derivation_stage(MSE, large)
    evaluation = median_seconds(lambda: function(0.1, 0.2, large["x"], large["y"], 10**6), 7)
    benchmark.pedantic(lambda: derivation_stage(MSE, large), rounds=1, iterations=1)
    report(
        "MSE derivation stage, n=10 vs n=1e6",
        n10_s=at_10,
        n1e6_s=at_million,
        ratio=at_million / at_10,
        aim=1.5,
        then_one_evaluation_at_1e6_s=evaluation,
    )


def hand_mse(w, b, x, y):
    r = w * x + b - y
    return np.mean(r * r), 2 * np.mean(r * x), 2 * np.mean(r)


def hand_logistic(w, b, x, y):
    p = 1 / (1 + np.exp(-(w * x + b)))
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    e = p - y
    return loss, np.mean(e * x), np.mean(e)


def against_numpy(name, text, by_hand, benchmark):
    x, y = columns(1_000_000)
    function = numeric(differentiate(parse_loss(text, data=("x", "y"))))
    assert np.allclose(function(0.3, -0.1, x, y, len(x)), by_hand(0.3, -0.1, x, y), rtol=1e-9)
    compare(
        benchmark,
        f"{name} loss + gradient at n=1e6, vs NumPy",
        lambda: function(0.3, -0.1, x, y, len(x)),
        lambda: by_hand(0.3, -0.1, x, y),
        21,
        aim=1.2,
    )


def test_mse_gradient_vs_numpy(benchmark):
    against_numpy("MSE", MSE, hand_mse, benchmark)


def test_cross_entropy_gradient_vs_numpy(benchmark):
    against_numpy("cross-entropy", LOGISTIC, hand_logistic, benchmark)


HINGE = "mean(max(0, 1 - y*(w*x + b)))"
SOFTMAX = (
    "-mean(y1*log(softmax(1, w1*x+b1, w2*x+b2, w3*x+b3))"
    " + y2*log(softmax(2, w1*x+b1, w2*x+b2, w3*x+b3))"
    " + y3*log(softmax(3, w1*x+b1, w2*x+b2, w3*x+b3)))"
)


def hand_hinge(w, b, x, y):
    margin = 1 - y * (w * x + b)
    step = np.heaviside(margin, 0.5)  # torch.maximum's ½ at a tie
    return np.mean(np.maximum(margin, 0)), -np.mean(step * y * x), -np.mean(step * y)


def test_hinge_gradient_vs_numpy(benchmark):
    x, labels = columns(1_000_000)
    y = 2 * labels - 1
    function = numeric(differentiate(parse_loss(HINGE, data=("x", "y"))))
    assert np.allclose(function(0.3, -0.1, x, y, len(x)), hand_hinge(0.3, -0.1, x, y), rtol=1e-9)
    compare(
        benchmark,
        "hinge loss + gradient at n=1e6, vs NumPy",
        lambda: function(0.3, -0.1, x, y, len(x)),
        lambda: hand_hinge(0.3, -0.1, x, y),
        11,
        aim=1.5,
    )


def hand_softmax(params, x, targets):
    """The 3-class cross-entropy and its textbook gradient (pₖ − yₖ)·x, (pₖ − yₖ)."""
    w, b = params[0::2], params[1::2]
    z = np.outer(x, w) + b
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    error = np.exp(log_p) - targets
    loss = -np.mean((targets * log_p).sum(axis=1))
    gradient = np.empty(6)
    gradient[0::2] = (error * x[:, None]).mean(axis=0)
    gradient[1::2] = error.mean(axis=0)
    return loss, *gradient


def test_softmax_cross_entropy_gradient_vs_numpy(benchmark):
    rng = np.random.default_rng(0)
    x = rng.normal(size=1_000_000)
    classes = rng.integers(0, 3, size=x.size)
    targets = np.eye(3)[classes]
    names = ("x", "y1", "y2", "y3")
    loss = parse_loss(SOFTMAX, data=names)
    loss = one_hot_targets(loss, dict(zip(names, [x, *targets.T], strict=True)))
    function = numeric(differentiate(loss))
    params = [0.3, -0.1, -0.2, 0.4, 0.1, 0.0]  # w1, b1, w2, b2, w3, b3

    def ours():
        return function(*params, x, *targets.T, x.size)

    assert np.allclose(ours(), hand_softmax(np.array(params), x, targets), rtol=1e-9)
    compare(
        benchmark,
        "3-class softmax cross-entropy + gradient at n=1e6, vs NumPy",
        ours,
        lambda: hand_softmax(np.array(params), x, targets),
        11,
        aim=1.5,
    )
