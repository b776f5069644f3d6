"""Every optimizer and option against reference loops written here from torch.optim's
documented pseudocode (https://pytorch.org/docs/stable/optim.html), not from derive's code.

Where the pseudocode leaves a grouping open, γ·g/d is read as γ·(g/d), as torch's addcdiv
computes it; over 50 Rosenbrock steps the other reading drifts by ~1e-11."""

from __future__ import annotations

import math

import numpy as np
import pytest

from derive.core.derivation import differentiate
from derive.core.descend import DEFAULTS, UPDATE_RULES, Optimizer, descend
from derive.core.parse import parse_loss

STEPS = 50


# -- the references: one function per optimizer, in the documentation's notation ----------------


def sgd(theta, grad, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    b = None
    for t in range(1, STEPS + 1):
        g = grad(theta)
        if weight_decay != 0:
            g = g + weight_decay * theta
        if momentum != 0:
            b = g if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
        yield theta


def adagrad(
    theta, grad, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
):
    state_sum = np.full_like(theta, initial_accumulator_value)
    for t in range(1, STEPS + 1):
        g = grad(theta)
        gamma = lr / (1 + (t - 1) * lr_decay)
        if weight_decay != 0:
            g = g + weight_decay * theta
        state_sum = state_sum + g**2
        theta = theta - gamma * (g / (np.sqrt(state_sum) + eps))
        yield theta


def rmsprop(theta, grad, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    v = np.zeros_like(theta)
    g_ave = np.zeros_like(theta)
    b = np.zeros_like(theta)
    for _ in range(STEPS):
        g = grad(theta)
        if weight_decay != 0:
            g = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * g**2
        v_tilde = v
        if centered:
            g_ave = alpha * g_ave + (1 - alpha) * g
            v_tilde = v_tilde - g_ave**2
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(v_tilde) + eps)
            theta = theta - lr * b
        else:
            theta = theta - lr * (g / (np.sqrt(v_tilde) + eps))
        yield theta


def adam(
    theta, grad, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False
):
    beta1, beta2 = betas
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    v_max = np.zeros_like(theta)
    for t in range(1, STEPS + 1):
        g = grad(theta)
        if decoupled:
            theta = theta - lr * weight_decay * theta
        elif weight_decay != 0:
            g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        if amsgrad:
            # The docs as corrected by pytorch/pytorch#142351 (the code never changed): the
            # maximum is over the raw v_t, bias-corrected afterwards.
            v_max = np.maximum(v_max, v)
            theta = theta - lr * m_hat / (np.sqrt(v_max / (1 - beta2**t)) + eps)
        else:
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        yield theta


def adamw(theta, grad, lr, weight_decay=0.01, **options):
    return adam(theta, grad, lr, weight_decay=weight_decay, decoupled=True, **options)


REFERENCES = {"sgd": sgd, "adagrad": adagrad, "rmsprop": rmsprop, "adam": adam, "adamw": adamw}

# -- the problems, with gradients written by hand ----------------------------------------------

ROSENBROCK = "(1 - x)**2 + 100*(y - x**2)**2"


def rosenbrock_grad(theta):
    x, y = theta
    return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


rng = np.random.default_rng(7)
XS = np.linspace(-2, 2, 40)
YS = 1.5 * XS - 0.5 + 0.3 * rng.standard_normal(40)


def mse_grad(theta):
    w, b = theta
    residual = w * XS + b - YS
    return np.array([2 * np.mean(residual * XS), 2 * np.mean(residual)])


PROBLEMS = {
    "rosenbrock": (ROSENBROCK, rosenbrock_grad, np.array([-1.5, 2.0]), {}, 1e-4),
    "mse": ("mean((w*x + b - y)**2)", mse_grad, np.array([0.0, 0.0]), {"x": XS, "y": YS}, 0.05),
}

CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"weight_decay": 0.1}),
    ("sgd", {"momentum": 0.5, "weight_decay": 0.1, "nesterov": True}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.05}),
    ("adagrad", {"weight_decay": 0.1}),
    ("adagrad", {"initial_accumulator_value": 0.5, "eps": 1e-6}),
    ("rmsprop", {}),
    ("rmsprop", {"alpha": 0.9}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"weight_decay": 0.1}),
    ("adam", {"betas": (0.8, 0.99), "eps": 1e-6}),
    ("adamw", {}),
    ("adamw", {"amsgrad": True}),
    ("adamw", {"weight_decay": 0.5, "betas": (0.5, 0.9)}),
]


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize(("name", "options"), CASES, ids=lambda c: str(c))
def test_update_rule_matches_the_documented_one_to_1e_12(problem, name, options):
    """The same gradient function drives both: any difference is the optimizer's."""
    _, grad, start, _, sgd_lr = PROBLEMS[problem]
    lr = sgd_lr if name == "sgd" else 0.01
    optimizer = Optimizer.make(name, lr=lr, **options)
    rule, state, theta, ours = UPDATE_RULES[name], {}, start.copy(), []
    for t in range(1, STEPS + 1):
        theta = rule(theta, grad(theta), state, t, optimizer.options)
        ours.append(theta)
    expected = list(REFERENCES[name](start.copy(), grad, lr, **options))
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize(("name", "options"), CASES, ids=lambda c: str(c))
def test_descent_from_the_loss_text_matches_the_reference(problem, name, options):
    """End to end, derive's gradient is its own (expanded) formula: last-bit differences from
    the hand-written one grow over 50 Rosenbrock steps to ~1e-11, hence 1e-10 here."""
    text, grad, start, data, sgd_lr = PROBLEMS[problem]
    lr = sgd_lr if name == "sgd" else 0.01
    loss = parse_loss(text, data=tuple(data))
    optimizer = Optimizer.make(name, lr=lr, **options)
    trace = descend(
        differentiate(loss), dict(zip(loss.params, start, strict=True)), optimizer, STEPS, data=data
    )
    expected = np.array([start, *REFERENCES[name](start.copy(), grad, lr, **options)])
    assert trace.status == "max_steps"
    np.testing.assert_allclose(trace.params, expected, rtol=1e-10, atol=0)
    np.testing.assert_allclose(trace.grad, [grad(p) for p in trace.params], rtol=1e-9, atol=1e-9)


def test_defaults_are_torchs():
    assert DEFAULTS["adam"] == {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
    }
    assert DEFAULTS["adamw"]["weight_decay"] == 1e-2
    assert DEFAULTS["rmsprop"] == {
        "lr": 1e-2,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
    }
    assert DEFAULTS["adagrad"] == {
        "lr": 1e-2,
        "lr_decay": 0.0,
        "weight_decay": 0.0,
        "initial_accumulator_value": 0.0,
        "eps": 1e-10,
    }
    assert DEFAULTS["sgd"]["lr"] == 0.1  # the seeds' examples; torch requires lr for SGD


def test_minibatches_follow_a_seeded_permutation_per_epoch():
    loss = parse_loss("mean((w*x + b - y)**2)", data=("x", "y"))
    data = {"x": XS, "y": YS}
    trace = descend(
        differentiate(loss),
        {},
        Optimizer.make("sgd", lr=0.05),
        epochs=3,
        data=data,
        batch_size=16,
        seed=42,
    )
    # 40 rows in batches of 16: 16, 16, 8 per epoch
    assert trace.steps == 9 and trace.batch_size == 16 and trace.seed == 42
    order = np.random.default_rng(42)
    theta = np.zeros(2)
    expected = [theta]
    for _ in range(3):
        permutation = order.permutation(40)
        for k in range(0, 40, 16):
            rows = permutation[k : k + 16]
            residual = theta[0] * XS[rows] + theta[1] - YS[rows]
            g = np.array([2 * np.mean(residual * XS[rows]), 2 * np.mean(residual)])
            theta = theta - 0.05 * g
            expected.append(theta)
    np.testing.assert_allclose(trace.params, expected, rtol=1e-12)
    # loss and gradient are recorded on the full data set
    np.testing.assert_allclose(trace.grad, [mse_grad(p) for p in expected], rtol=1e-12)


def test_same_seed_same_trace_other_seed_other_trace():
    loss = differentiate(parse_loss("mean((w*x + b - y)**2)", data=("x", "y")))
    data = {"x": XS, "y": YS}

    def run(seed):
        return descend(
            loss, {}, Optimizer.make("adam", lr=0.1), 30, data=data, batch_size=1, seed=seed
        ).params

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_divergence_ends_the_run_with_status_and_no_warning():
    loss = differentiate(parse_loss(ROSENBROCK))
    trace = descend(loss, {"x": -1.5, "y": 2}, Optimizer.make("sgd", lr=0.1), 1000)
    assert trace.status == "diverged"
    assert trace.steps < 1000
    assert not math.isfinite(trace.loss[-1]) or not np.all(np.isfinite(trace.params[-1]))
    assert np.all(np.isfinite(trace.loss[:-1]))
